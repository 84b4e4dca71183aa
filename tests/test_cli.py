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


def test_generate_uses_the_model_folders_settings_says_so_and_cuts_a_length_to_the_music(tmp_path, inputs, capsys,
                                                                                         caplog):
    """Options left out take the model folder's recommendation (printed with the values used); --seconds past
    the music's end gives a video as long as the music and a warning."""
    d, _ = inputs
    bundle = make_random_bundle(tmp_path / "model", defaults={"sampler": "ddim", "steps": 2, "guidance": 2.5})
    out = tmp_path / "dance.mp4"
    code = main(["generate", "--image", str(d / "me.png"), "--music", str(d / "song.wav"), "--out", str(out),
                 "--seconds", "9", "--fps", "5", "--checkpoint", str(bundle), "--device", "cpu", "--seed", "4"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "sampling: ddim (model default), 2 steps (model default), guidance 2.5 (model default), seed 4" in captured.err
    assert "45 frames (9.00 s) were asked for, but the music has only 3.00 s" in caplog.text
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 15  # the 3 s of music at 5 fps
    code = main(["generate", "--image", str(d / "me.png"), "--music", str(d / "song.wav"), "--out", str(out),
                 "--frames", "3", "--guidance", "1", "--checkpoint", str(bundle), "--device", "cpu"])
    assert code == 0
    assert "sampling: ddim (model default), 2 steps (model default), guidance 1, seed 0" in capsys.readouterr().err


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


# ------------------------------------------------------------------------------ the beat grid options


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    from dabfusion.testing.dance_toy import click_track

    d = tmp_path_factory.mktemp("clicks")
    sf.write(str(d / "clicks.wav"), click_track(120.0, 6.0, sample_rate=22050), 22050)
    return d / "clicks.wav"


def beat_lines(text: str) -> list[tuple[float, bool]]:
    return [(float(line.split()[0]), line.endswith("downbeat")) for line in text.splitlines()
            if line and not line.startswith("#")]


def test_beats_prints_a_beat_file_and_draws_the_grid(clicks, tmp_path, capsys):
    preview = tmp_path / "grid.png"
    assert main(["beats", str(clicks), "--preview", str(preview)]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0]
    assert head.startswith("# clicks.wav (0 .. 6.00 s): ") and f"# preview: {preview.resolve()}" in out
    assert float(head.split(": ")[1].split(" BPM")[0]) == pytest.approx(120.0, abs=0.5)
    tracked = beat_lines(out)
    assert np.allclose([t for t, _ in tracked][:4], [0.5, 1.0, 1.5, 2.0], atol=0.012)
    assert sum(d for _, d in tracked) >= 2
    with Image.open(preview) as img:
        assert img.size[0] == 1024 and img.size[1] > 150
    # the same grid moved by half a beat; and the printed list, given back with --beats, is the same grid
    assert main(["beats", str(clicks), "--beat-offset", "0.5"]) == 0
    moved = beat_lines(capsys.readouterr().out)
    assert np.allclose([t for t, _ in moved][:3], [t + 0.25 for t, _ in tracked][:3], atol=0.002)
    (tmp_path / "mine.txt").write_text(out, encoding="utf-8")
    assert main(["beats", str(clicks), "--beats", str(tmp_path / "mine.txt")]) == 0
    again = capsys.readouterr().out
    assert beat_lines(again) == tracked and "grid: " in again and "beats from mine.txt" in again
    # a cut (--start) prints times of the file, so the list still reads back
    assert main(["beats", str(clicks), "--start", "1.2", "--seconds", "3", "--tempo", "halve"]) == 0
    cut = beat_lines(capsys.readouterr().out)
    assert all(1.2 <= t <= 4.2 for t, _ in cut) and np.allclose(np.diff([t for t, _ in cut]), 1.0, atol=0.02)
    assert main(["beats", str(clicks), "--bpm", "128"]) == 0
    assert np.allclose(np.diff([t for t, _ in beat_lines(capsys.readouterr().out)]), 60 / 128, atol=1e-3)


@pytest.mark.parametrize("content,line", [("0.5\n1.0\nabc\n", 3), ("0.5\n0.4\n", 2), ("0.5\n99\n", 2), ("", None)])
def test_a_bad_beat_file_is_one_line_before_any_work(inputs, clicks, tmp_path, capsys, content, line):
    d, _ = inputs
    bad = tmp_path / "bad.txt"
    bad.write_text(content, encoding="utf-8")
    for argv in (["beats", str(clicks), "--beats", str(bad)],
                 ["generate", "--image", str(d / "me.png"), "--music", str(clicks), "--out", str(tmp_path / "o.mp4"),
                  "--beats", str(bad), "--checkpoint", str(tmp_path / "no_model"), "--quiet"]):
        assert main(argv) == EXIT_USER_ERROR
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"error: beat file {bad}")
        assert (f"line {line}:" in err) if line else "no beat times" in err
    with pytest.raises(SystemExit) as stop:  # argparse
        main(["beats", str(clicks), "--tempo", "triple"])
    assert stop.value.code == 2
    assert "as-tracked, halve, double" in capsys.readouterr().err


def test_generate_follows_the_edited_grid(inputs, clicks, tmp_path, capsys, monkeypatch):
    """--beats (file times) is cut with --start and reaches the pipeline as one edit; the MP4 records it."""
    import json

    import dabfusion.pipeline as pipeline

    d, bundle = inputs
    (tmp_path / "b.txt").write_text("0.5\n1.0\n1.5\n2.0\n2.5 downbeat\n3.0\n", encoding="utf-8")
    seen = []
    real = pipeline.DabFusionPipeline.encode_music

    def spy(self, wave, sr, **kw):
        clip = real(self, wave, sr, **kw)
        seen.append(clip)
        return clip

    monkeypatch.setattr(pipeline.DabFusionPipeline, "encode_music", spy)
    out = tmp_path / "dance.mp4"
    code = main(["generate", "--image", str(d / "me.png"), "--music", str(clicks), "--out", str(out),
                 "--frames", "60", "--steps", "1", "--checkpoint", str(bundle), "--device", "cpu", "--start", "1.0",
                 "--beats", str(tmp_path / "b.txt"), "--beat-offset", "0.5", "--quiet"])
    assert code == 0, capsys.readouterr().err
    clip = seen[0]
    assert np.allclose(clip.beat_edit.beats, [0.0, 0.5, 1.0, 1.5, 2.0])  # 1.0 .. 3.0 s of the file
    assert np.allclose(clip.beat_analysis.beats[:4], [0.25, 0.75, 1.25, 1.75])
    assert clip.beat_analysis.downbeats[0] == pytest.approx(1.75)
    with av.open(str(out)) as c:
        info = json.loads(c.metadata["dabfusion"])
    assert info["beat_grid"] == "5 beats from b.txt, offset +0.5 beat"
