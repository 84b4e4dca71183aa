"""`python -m dabfusion generate`: end to end on a random-weight bundle, path printed last; user errors
are one line on stderr and exit status 2, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from dabfusion.__main__ import EXIT_USER_ERROR, main
from dabfusion.testing.random_bundle import make_random_bundle

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "dabfusion" / "assets" / "examples"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    bundle = make_random_bundle(d / "model")
    Image.fromarray((np.random.default_rng(0).random((40, 30, 3)) * 255).astype(np.uint8)).save(d / "me.png")
    sr = 22050
    t = np.arange(3 * sr) / sr
    sf.write(str(d / "song.wav"), (0.3 * np.sin(2 * np.pi * 330 * t) * (np.sin(2 * np.pi * 2 * t) > 0)), sr)
    sf.write(str(d / "silence.wav"), np.zeros(sr, np.float32), sr)
    return d, bundle


def test_generate_end_to_end_prints_the_path_last(inputs, capsys):
    d, bundle = inputs
    out = d / "out" / "dance.mp4"
    code = main(["generate", "--image", str(d / "me.png"), "--music", str(d / "song.wav"), "--out", str(out),
                 "--frames", "10", "--steps", "2", "--sampler", "dpmpp", "--checkpoint", str(bundle),
                 "--device", "cpu", "--seed", "1", "--start", "0.5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip().splitlines()[-1] == str(out.resolve())
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 10 and len(c.streams.audio) == 1
        assert c.streams.video[0].width == 32


@pytest.mark.parametrize("args,message", [
    (["--music", "{d}/silence.wav"], "silent"),
    (["--music", "{d}/nope.wav"], "file not found"),
    (["--sampler", "euler"], "Unknown sampler"),
    (["--checkpoint", "{d}/no_model"], "not found"),
    (["--device", "tpu:7"], "device"),
    (["--device", "cuda:9"], "not available"),
    (["--out", "/proc/forbidden/out.mp4"], "cannot create the output folder"),
])
def test_user_errors_exit_2_with_one_message(inputs, capsys, args, message):
    d, bundle = inputs
    argv = {"--image": str(d / "me.png"), "--music": str(d / "song.wav"), "--out": str(d / "x.mp4"),
            "--checkpoint": str(bundle), "--frames": "4", "--steps": "1"}
    for k, v in zip(args[::2], args[1::2]):
        argv[k] = v.format(d=d)
    code = main(["generate", *[x for kv in argv.items() for x in kv], "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert message in err and "Traceback" not in err


def test_module_entry_point_refuses_bad_input_without_traceback(inputs):
    d, _ = inputs
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "dabfusion", "generate", "--image", str(d / "missing.png"),
                          "--music", str(EXAMPLES / "dance_any_beat_music.ogg"), "--out", str(d / "y.mp4")],
                         capture_output=True, text=True, env=env, cwd=str(d), timeout=120)
    assert run.returncode == EXIT_USER_ERROR
    assert "missing.png" in run.stderr and "Traceback" not in run.stderr
    bad = subprocess.run([sys.executable, "-m", "dabfusion", "generate", "--image", "a", "--music", "b",
                          "--out", "c", "--frames", "0"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "at least 1" in bad.stderr


def test_progress_outside_a_terminal_is_a_few_lines():
    import io

    from dabfusion.__main__ import ProgressBar

    log = io.StringIO()  # not a terminal
    bar = ProgressBar(enabled=True, stream=log)
    for i in range(1, 388):
        bar(i, 387)
    bar.close()
    lines = log.getvalue().splitlines()
    assert 5 <= len(lines) <= 11 and lines[-1] == "dancing: 100% (387/387 steps)"
