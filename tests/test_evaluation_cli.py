"""`python -m dabfusion.evaluate` end to end on SynthDance tiny with tiny random-weight checkpoints."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dabfusion.testing import eval_weights as testing

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from dabfusion.diffusion import PRESETS, UNet3D, flow_ae_identity, save_diffusion
    from dabfusion.flow_ae import FlowAutoEncoder, get_config, save_flow_ae
    from dabfusion.music import MusicEncoder
    from dabfusion.synth import generate

    root = tmp_path_factory.mktemp("eval")
    data = generate(root / "synthdance", "tiny", 0, workers=2, progress=False)
    torch.manual_seed(0)
    ae = save_flow_ae(root / "flow_ae.safetensors", FlowAutoEncoder(get_config("tiny")))
    spec = MusicEncoder.default().spec
    paths = {}
    for name, beats in (("diffusion", True), ("nobeats", False)):
        config = PRESETS["tiny"].with_flow_ae(flow_ae_identity(ae)).with_music(spec, beat_features=beats)
        model = UNet3D(config)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)  # random flows that move
        paths[name] = save_diffusion(root / f"{name}.safetensors", model, {"data": {"fps": 30.0}})
    weights = {"--lpips": str(testing.write_random_lpips(root / "lpips")),
               "--clip": str(testing.write_random_clip(root / "clip")),
               "--wav2clip": str(testing.write_random_wav2clip(root / "Wav2CLIP.pt"))}
    return {"root": root, "data": data, "ae": ae, "paths": paths, "weights": weights}


def _args(world, out: Path) -> list[str]:
    args = ["--data", str(world["data"]), "--flow-ae", str(world["ae"]), "--diffusion", str(world["paths"]["diffusion"]),
            "--ablation-diffusion", str(world["paths"]["nobeats"]), "--out", str(out), "--limit", "2",
            "--frames", "8", "16", "--steps", "4", "--threads", "1", "--clip-frames", "3"]
    for k, v in world["weights"].items():
        args += [k, v]
    return args


def test_the_module_is_the_command(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "dabfusion.evaluate", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--ablation-diffusion" in proc.stdout and "--i3d" in proc.stdout


def test_evaluate_end_to_end_writes_the_papers_tables(world, capsys):
    from dabfusion.evaluate import build_parser, main, run

    out = world["root"] / "out"
    assert main(_args(world, out)) == 0
    assert "### Table 1: video quality (8 generated frames)" in capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    t = res["tables"]
    assert list(t) == ["table1_quality", "table2_camera", "table3_alignment", "table4_genre", "table5_length",
                       "table6_beats"]
    assert t["table1_quality"]["columns"] == ["model", "videos", "lpips", "psnr", "ssim"]  # FVD: no --i3d
    assert t["table3_alignment"]["columns"] == ["model", "videos", "clip_score", "mm_align", "av_align",
                                                "av_align_original"]
    assert t["table5_length"]["columns"][-1] == "av_align_original"
    assert [r[:2] for r in t["table6_beats"]["rows"]] == [["DabFusion (ours)", "✗"], ["DabFusion (ours)", "✓"]]
    assert [r[0] for r in t["table3_alignment"]["rows"]] == ["Ground Truth", "DabFusion (ours)"]
    for key in ("table1_quality", "table3_alignment", "table5_length", "table6_beats"):
        for row in t[key]["rows"]:
            nums = row[t[key]["columns"].index("videos"):]
            assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in nums), (key, row)
    assert [r[:2] for r in t["table2_camera"]["rows"]] == [["C01", 1], ["C05", 1]]  # two tracks, two cameras
    assert len({r["track"] for r in res["per_video"]}) == 2
    assert any("FVD (needs --i3d)" in n for n in t["table1_quality"]["notes"])
    assert res["settings"]["notes"] and res["settings"]["notes"][0].startswith("FVD skipped")
    assert len(res["per_video"]) == 2 * 2 * 2  # videos x lengths x models
    for name in t:
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.md").is_file()
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000
    assert "Skipped metrics" in (out / "report.md").read_text()
    # 16-frame clips were sampled once per model and video; the 8-frame clips are their prefixes
    assert res["timing"]["clips_sampled"] == 4 and len(list((out / "generated").glob("*.npy"))) == 4

    # a second run re-uses the generated clips and reproduces the numbers
    again = run(build_parser().parse_args(_args(world, out) + ["--no-plots", "--quiet"]))
    assert again["timing"]["clips_sampled"] == 0 and again["timing"]["clips_from_cache"] == 4
    a = [r["psnr"] for r in res["per_video"]]
    assert np.allclose(a, [r["psnr"] for r in again["per_video"]])


def test_evaluate_reports_user_errors_without_a_traceback(world, capsys):
    from dabfusion.evaluate import main

    code = main(["--data", str(world["data"]), "--flow-ae", str(world["ae"]), "--out", str(world["root"] / "bad")])
    assert code == 2 and "--diffusion" in capsys.readouterr().err
    code = main(["--data", str(world["data"]), "--flow-ae", str(world["ae"]), "--diffusion",
                 str(world["paths"]["diffusion"]), "--i3d", str(world["root"] / "missing.pt"),
                 "--out", str(world["root"] / "bad"), "--limit", "1", "--frames", "8"])
    assert code == 2 and "missing.pt" in capsys.readouterr().err


def test_the_alignment_scores_tell_the_true_music_from_other_music_and_a_late_beat(world):
    """2D-MM Align of the ground truth through the evaluation's own scoring path: its music scores
    above other music and above the same music half a beat late, or no score in Table 3 means anything.
    (AV-Align is left out: it rewards motion peaks on audio onsets, and a half-beat-late track puts
    the onsets on the peaks of motion that turns on the beat.)"""
    from dabfusion.diffusion import pad_front
    from dabfusion.evaluation.generate import TestSet
    from dabfusion.evaluation.scoring import alignment

    test = TestSet(world["data"], fps=30.0, size=64, cache_dir=world["root"] / "frames")
    clips = test.clips(2, 150)  # 5 s: several beats
    tracks = sorted({c.track for c in clips})
    assert len(tracks) == 2
    own, other, late = [], [], []
    for c in clips:
        frames, beats = np.asarray(c.frames[:150]), test.beat_times(c.track)
        wave, sr = test.wave(c.track), test.sample_rate
        half = float(np.median(np.diff(beats))) / 2
        rest = tracks[1 - tracks.index(c.track)]
        own.append(alignment(frames, 30.0, wave, sr, beats))
        other.append(alignment(frames, 30.0, test.wave(rest), sr, test.beat_times(rest)))
        late.append(alignment(frames, 30.0, pad_front(wave, half, sr), sr, beats + half))
    mean = {k: float(np.mean([r["mm_align"] for r in rows])) for k, rows in (("own", own), ("other", other),
                                                                            ("late", late))}
    assert mean["own"] > mean["other"] + 0.1, mean
    assert mean["own"] > mean["late"] + 0.1, mean
