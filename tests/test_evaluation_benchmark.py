"""benchmarks/bench_pipeline.py on the tiny configuration with one repeat: rows, ratios, the report."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


def _load():
    spec = importlib.util.spec_from_file_location("bench_pipeline", ROOT / "benchmarks" / "bench_pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the file executes
    spec.loader.exec_module(mod)
    return mod


def test_bench_pipeline_smoke(tmp_path):
    bench = _load()
    out, raw = tmp_path / "benchmarks.md", tmp_path / "rows.json"
    rows = bench.main(["--configs", "tiny", "--devices", "cpu", "--repeats", "1", "--max-clip-s", "0.3",
                       "--out", str(out), "--json", str(raw)])
    assert [(r["mode"], r["sampler"]) for r in rows] == [
        ("reference", "DDPM-1000"), ("fp32", "DDPM-1000"), ("fp32", "DDIM-50"), ("fp32", "DPM-Solver++-25")]
    ref = rows[0]
    assert ref["speedup_vs_reference"] == 1.0 and ref["extrapolated"] and ref["measured_steps"] < 1000
    assert ref["windows"] == 7 and ref["window_frames"] == 8  # 40 frames in windows of 8, overlap 2
    for r in rows:
        assert r["step_ms"] > 0 and r["clip_s"] > r["codec_s"] > 0 and math.isfinite(r["peak_mb"])
        assert math.isclose(r["speedup_vs_reference"], ref["clip_s"] / r["clip_s"])
    dpm, ddpm = rows[3], rows[1]
    assert dpm["speedup_vs_reference"] > 5 * ddpm["speedup_vs_reference"]  # 25 steps against 1000
    text = out.read_text()
    assert "| config | U-Net params |" in text and " cores; torch " in text
    assert text.count("| tiny |") == 4 and "measured" in text and "x" in text and "Speed-up" in text
    assert "torch " + torch.__version__ in text
    assert len(json.loads(raw.read_text())) == 4


def test_every_eager_mode_sets_up_and_steps_on_cpu():
    """Each benchmark mode's model and U-Net step run (the channels-last set-up once crashed on CUDA
    with 'required rank 5 tensor to use channels_last_3d format'; the layout call is the same here)."""
    bench = _load()
    setup = bench.Setup("tiny", torch.device("cpu"))
    for name, mode in bench.MODES.items():
        if mode.compile:
            continue  # needs a C++ toolchain for inductor on CPU; set up the same way otherwise
        run = setup.step(setup.model_for(mode), mode)
        run()
        weight = setup.unet.init_frame.weight
        assert weight.is_contiguous(memory_format=torch.channels_last if mode.channels_last
                                    else torch.contiguous_format), name
