"""Motion amplitude in the beat-following evaluation: mean Farneback speed of a clip over its ground truth's."""

from __future__ import annotations

import math

import numpy as np

from dabfusion.metrics.optical_flow_motion import motion_speed
from training.evaluate_beat_following import (MOTION_AMPLITUDE_RANGE, format_report, mean_speed_per_frame,
                                              motion_amplitudes, summarise_main)

FPS = 30.0


def moving_texture(px_per_frame: float, frames: int = 24, size: int = 64) -> np.ndarray:
    """A smooth random texture sliding right by ``px_per_frame`` each frame (uint8 [N, H, W, 3])."""
    rng = np.random.default_rng(0)
    big = rng.random((size // 4, 2 * size // 4))
    big = np.kron(big, np.ones((4, 4)))  # blocks, so that Farneback finds structure at 64x64
    import cv2

    big = cv2.GaussianBlur(big.astype(np.float32), (0, 0), 1.5)
    out = []
    for i in range(frames):
        shift = i * px_per_frame
        m = np.float32([[1, 0, -shift], [0, 1, 0]])
        f = cv2.warpAffine(big, m, (big.shape[1], big.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        out.append(f[:, :size])
    v = (np.stack(out) * 255).clip(0, 255).astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=-1)


def test_mean_speed_is_pixels_per_frame():
    assert mean_speed_per_frame(np.array([30.0, 60.0]), FPS) == 1.5
    assert math.isnan(mean_speed_per_frame(np.array([]), FPS))
    # Farneback on a texture sliding 1 px per frame reads about 1 px per frame
    v = moving_texture(1.0)
    assert 0.7 < mean_speed_per_frame(motion_speed(v, FPS), FPS) < 1.3


def test_amplitude_is_the_ratio_to_the_ground_truth_of_the_same_clip():
    slow, fast = moving_texture(0.5), moving_texture(1.5)
    s_slow = mean_speed_per_frame(motion_speed(slow, FPS), FPS)
    s_fast = mean_speed_per_frame(motion_speed(fast, FPS), FPS)
    row = {"gt_mean_speed": s_fast, "gen_mean_speed": s_slow, "rec_mean_speed": s_fast}
    amp = motion_amplitudes(row)
    assert 0.2 < amp["motion_amplitude"] < 0.5  # a third of the motion, as issue 23 reports for the shipped model
    assert amp["motion_amplitude_rec"] == 1.0
    assert not MOTION_AMPLITUDE_RANGE[0] <= amp["motion_amplitude"] <= MOTION_AMPLITUDE_RANGE[1]
    assert math.isnan(motion_amplitudes({"gt_mean_speed": 0.0, "gen_mean_speed": 1.0,
                                         "rec_mean_speed": 1.0})["motion_amplitude"])


def test_summary_and_report_show_it():
    base = {"gen_mm_align": 0.8, "gt_mm_align": 0.9, "rec_mm_align": 0.9, "mis_mm_align": 0.4, "gen_av_align": 0.1,
            "gt_av_align": 0.2, "rec_av_align": 0.2, "mis_av_align": 0.1}
    rows = [{**base, "gt_mean_speed": 0.2, "gen_mean_speed": 0.1, "rec_mean_speed": 0.2},
            {**base, "gt_mean_speed": 0.1, "gen_mean_speed": 0.1, "rec_mean_speed": 0.1}]
    rows = [{**r, **motion_amplitudes(r)} for r in rows]
    s = summarise_main(rows)
    assert s["motion_amplitude"] == 0.75  # the mean of the clips' ratios (0.5, 1)
    assert abs(s["motion_amplitude_of_means"] - 0.1 / 0.15) < 1e-12
    assert abs(s["motion_amplitude_over_rec"] - 0.1 / 0.15) < 1e-12  # generated over the flow AE's ceiling
    r = {"videos": 2, "clip_frames": 240, "fps": 30.0, "sampler": "dpm++", "steps": 25, "guidance_scale": 1.5,
         "main": {"summary": s},
         "samplers": {"summary": {"ddpm_steps": 1000, "dpm_steps": 25, "ddpm_mm_align": 0.8, "dpm++_mm_align": 0.79,
                                  "ddpm_motion_amplitude": 0.9, "dpm++_motion_amplitude": 0.85}}}
    report = format_report(r)
    assert "motion amplitude (mean Farneback speed, generated / ground truth, same clips): 0.750" in report
    assert "target 0.8-1.25" in report
    assert "| DDPM | 1000 | 0.800 | n/a | 0.900 |" in report and "| motion amplitude |" in report
    # results written before motion amplitude existed still format
    old = {k: v for k, v in s.items() if "speed" not in k and "amplitude" not in k}
    assert "motion amplitude" not in format_report({**r, "main": {"summary": old}}).split("## DPM")[0]
