"""The scoring helpers of benchmarks/bench_dance_on_corpus.py (the benchmark itself generates videos: not here)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_dance_on_corpus as bench  # noqa: E402

FPS = 30.0


def excerpt(name: str, style: str, *, seconds: float = 24.0, period: float = 0.5, first: float = 0.3,
            per_bar: int = 4, meta: dict | None = None) -> bench.Excerpt:
    beats = first + period * np.arange(int((seconds - first) / period) + 1)
    return bench.Excerpt(name=name, style=style, split="test", sr=22050,
                         audio=np.zeros(int(seconds * 22050), np.float32), beats=beats, downbeats=beats[::per_bar],
                         meta=dict(meta or {}))


def test_midpoints_and_clip_time():
    b = np.array([1.0, 1.5, 2.0, 2.6])
    assert np.allclose(bench.midpoints(b), [1.25, 1.75, 2.3])
    assert bench.midpoints([1.0]).size == 0
    assert np.allclose(bench.in_clip(b, 1.2, 1.0), [0.3, 0.8])  # 1.0 is before the clip, 2.6 after it


def test_f_measure_tells_an_off_beat_lock():
    true = np.arange(0.0, 8.01, 0.5)
    off = bench.midpoints(true)
    assert bench.f_measure_in_clip(true + 0.02, true, 8.0) == pytest.approx(1.0)
    assert bench.f_measure_in_clip(off, true, 8.0) == 0.0
    assert bench.f_measure_in_clip(off, off, 8.0) == pytest.approx(1.0)
    # beats outside [0, seconds] count for neither side, unless they match one inside (a pair across an edge)
    assert bench.f_measure_in_clip(np.r_[-0.5, true, 8.5], true, 8.0) == pytest.approx(1.0)
    assert bench.f_measure_in_clip(true[1:] - 0.03, true, 8.0) == pytest.approx(2 * 16 / (16 + 17))
    assert bench.f_measure_in_clip([8.05], [7.99], 8.0) == 1.0 and bench.f_measure_in_clip([8.05], [7.5], 8.0) == 0.0


def test_start_is_a_downbeat_after_the_intro_with_room_for_the_clip():
    ex = excerpt("a", "house")
    start, how = bench.choose_start(ex, 8.0)
    assert start in ex.downbeats and start + 8.0 + bench.EXTRA_SECONDS <= ex.duration
    assert abs(start - (ex.duration - 9.0) / 2) <= 1.0 and "middle" in how  # a 2 s bar: within half a bar
    first, _ = bench.choose_start(ex, 8.0, "first")
    assert first == ex.downbeats[0]
    intro = excerpt("b", "breakdown", meta={"intro_bars": 4})  # drums from the 5th downbeat (8.3 s)
    s, how = bench.choose_start(intro, 8.0, "first")
    assert s == pytest.approx(intro.downbeats[4]) and "intro" in how
    s, _ = bench.choose_start(intro, 8.0)
    assert intro.downbeats[4] <= s <= intro.duration - 9.0
    long_intro = excerpt("d", "breakdown", seconds=16.0, meta={"intro_bars": 6})  # drums from 12.3 s, room to 7 s
    s, how = bench.choose_start(long_intro, 8.0)
    assert s == pytest.approx(6.3) and "last downbeat" in how
    short = excerpt("c", "house", seconds=8.5)
    assert bench.choose_start(short, 8.0)[0] == 0.0


def test_excerpts_are_chosen_round_robin_over_styles():
    pool = [excerpt(f"{s}_{k}", s) for s in ("c", "a", "b") for k in (2, 1)]
    picked = bench.choose_excerpts(pool, 4, None, None)
    assert [e.name for e in picked] == ["a_1", "b_1", "c_1", "a_2"]
    assert len(bench.choose_excerpts(pool, None, None, None)) == 6  # default: at least 12, all there are
    assert [e.name for e in bench.choose_excerpts(pool, 5, ["b"], None)] == ["b_1", "b_2"]
    assert [e.name for e in bench.choose_excerpts(pool, 1, None, ["c_2"])] == ["c_2"]
    with pytest.raises(SystemExit):
        bench.choose_excerpts(pool, 1, ["nope"], None)


def dancing_blob(beats: np.ndarray, n_frames: int, size: int = 64) -> np.ndarray:
    """A blob swinging back and forth once per beat, at rest on every beat (speed minima on the beats)."""
    t = np.arange(n_frames) / FPS
    k = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, beats.size - 2)
    u = k + (t - beats[k]) / (beats[k + 1] - beats[k])
    x = size / 2 - 6 + 12 * (1 - np.cos(np.pi * u)) / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for i, cx in enumerate(x):
        blob = np.exp(-((xx - cx) ** 2 + (yy - size / 2) ** 2) / (2 * 5.0**2))
        stripes = 0.5 + 0.5 * np.sin((xx - cx) * 1.3) * np.cos(yy * 0.9)  # texture for the optical flow
        frames[i] = (255 * blob * (0.6 + 0.4 * stripes))[..., None].astype(np.uint8)
    return frames


def test_score_video_tells_on_the_beat_from_half_a_beat_later():
    beats = 0.2 + 0.5 * np.arange(-1, 10)
    frames = dancing_blob(beats, 120)
    wave = np.zeros((1, 22050 * 4), np.float32)
    wave[0, ::2205] = 1.0
    s = bench.score_video(frames, FPS, wave, 22050, {"true": beats, "half": bench.midpoints(beats),
                                                     "tracker": beats + 0.5 / FPS})
    assert s["kinematic_beats"] >= 6
    assert s["mm_true"] > 0.8 and s["mm_half"] < 0.3 and s["mm_tracker"] > 0.7
    assert s["music_beats_true"] == 8  # beats at 0.2 .. 3.7 s inside the 120 frames


def row(style: str, true: float, half: float) -> dict:
    return {"name": f"{style}_{true}", "style": style, "mm_true": true, "mm_half": half, "margin": true - half,
            "passes_margin": true - half >= bench.MIN_MARGIN, "mm_tracker": true, "f_measure": 1.0, "f_offbeat": 0.0,
            "generate_s": 60.0, "start": 1.0, "start_how": "downbeat nearest the middle", "tempo_true": 120.0,
            "tempo_tracker": 120.0, "kinematic_beats": 10}


def test_summary_applies_the_issue_criteria():
    rows = [row(f"s{i % 6}", 0.8, 0.2) for i in range(11)] + [row("s0", 0.5, 0.45)]
    out = bench.summarize(rows)
    c = out["criteria"]
    assert c["mean_true"]["value"] == pytest.approx((11 * 0.8 + 0.5) / 12) and c["mean_true"]["pass"]
    assert c["margin"]["count"] == 11 and c["margin"]["pass"]  # 11/12 = 92 %
    assert c["coverage"]["styles"] == 6 and c["all_pass"]
    assert out["styles"]["s0"]["n"] == 3 and out["styles"]["s0"]["passes_margin"] == 2
    worse = bench.summarize(rows[:10] + [row("s0", 0.5, 0.45)] * 2)  # 10/12 = 83 %
    assert not worse["criteria"]["margin"]["pass"] and not worse["criteria"]["all_pass"]
    few = bench.summarize(rows[:5])
    assert not few["criteria"]["coverage"]["pass"]
    meta = {"tracker": "default", "command": "python benchmarks/bench_dance_on_corpus.py", "date": "today",
            "machine": {"cpu": "cpu", "cores": 2, "torch": "x", "threads": 2}, "device": "cpu", "wall_s": 60.0,
            "model": "m", "model_sha": "0", "sampler": "dpm++", "steps": 25, "guidance": 1.5, "seed": 0,
            "corpus": "c", "split": "test", "seconds": 8.0, "start_rule": "r", "hook": "h", "metric_size": None,
            "sigma": 3.0, "n": 12, "generated": 12, "cache": "out"}
    md = bench.markdown(rows, out, meta)
    assert md.count("**pass**") == 3 and "| s0 | 3 |" in md and "0.500 | 0.450 | 0.050 ✗" in md
