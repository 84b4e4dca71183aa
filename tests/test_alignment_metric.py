"""Beat Alignment Score and kinematic beats on constructed signals with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dabfusion.metrics.alignment import (
    beat_f_measure,
    beat_alignment_score,
    kinematic_beats,
    local_minima,
    motion_music_alignment,
    motion_speed_from_joints,
    times_to_frames,
)


def test_perfectly_aligned_scores_one():
    beats = np.arange(10, 200, 15)
    assert beat_alignment_score(beats, beats) == pytest.approx(1.0)
    assert beat_alignment_score(beats, beats, average_over="music") == pytest.approx(1.0)


def test_offset_by_sigma_scores_exp_minus_half():
    music = np.arange(10, 200, 20).astype(float)
    kin = music + 3.0
    assert beat_alignment_score(kin, music, sigma=3.0) == pytest.approx(math.exp(-0.5))
    assert beat_alignment_score(music - 2.0, music, sigma=2.0) == pytest.approx(math.exp(-0.5))


def test_empty_inputs_score_zero():
    assert beat_alignment_score([], [1, 2, 3]) == 0.0
    assert beat_alignment_score([1, 2, 3], []) == 0.0
    assert beat_alignment_score([], []) == 0.0
    assert beat_alignment_score([], [5.0], average_over="music") == 0.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        beat_alignment_score([1], [1], average_over="both")
    with pytest.raises(ValueError):
        beat_alignment_score([1], [1], sigma=0)


def test_averaging_conventions_differ_when_they_should():
    music = np.arange(0, 160, 16).astype(float)  # 10 music beats
    kin = music[:2]  # the motion hits only the first two, exactly
    by_kin = beat_alignment_score(kin, music)
    by_music = beat_alignment_score(kin, music, average_over="music")
    assert by_kin == pytest.approx(1.0)
    assert by_music < 0.3
    # and symmetric: many kinematic beats, few music beats -> the other way round
    assert beat_alignment_score(music, kin) < 0.3
    assert beat_alignment_score(music, kin, average_over="music") == pytest.approx(1.0)


def test_times_to_frames_keeps_fractions():
    np.testing.assert_allclose(times_to_frames([0.0, 0.5, 1.0], 25), [0.0, 12.5, 25.0])
    np.testing.assert_array_equal(times_to_frames([0.5, 1.02], 30, round_to_int=True), [15, 31])


def test_speed_minima_found_on_sine_speed():
    period, n = 15.0, 300
    t = np.arange(n)
    speed = 1.0 + np.cos(2 * np.pi * (t - 7) / period)  # minima at 7 + 7.5 + k*15
    found = kinematic_beats(speed, smooth_sigma=2.0)
    expected = 7 + period / 2 + period * np.arange(20)
    expected = expected[(expected > 1) & (expected < n - 2)]
    assert len(found) == len(expected)
    assert np.abs(found - expected).max() <= 0.5


def test_local_minima_plateau_and_prominence():
    v = np.array([3, 1, 1, 1, 3, 2.9, 3, 0, 4], dtype=float)
    np.testing.assert_array_equal(local_minima(v), [2, 5, 7])
    np.testing.assert_array_equal(local_minima(v, min_prominence=0.5), [2, 7])
    assert local_minima([1.0, 2.0]).size == 0


def test_joint_speed_and_end_to_end_alignment():
    fps, period = 30.0, 15
    t = np.arange(240)
    # one joint swinging with an eased move per beat: speed ~ |sin(pi t / period)|, zero on beats
    x = (period / np.pi) * (2 * (t // period) + 1 - np.cos(np.pi * (t % period) / period))
    joints = np.stack([np.stack([x, np.zeros_like(x)], -1), np.stack([x, np.ones_like(x)], -1)], 1)
    speed = motion_speed_from_joints(joints, fps)
    assert speed.shape == (240,)
    assert speed[15] < 0.2 * speed[22]
    beat_times = np.arange(0, 240, period) / fps
    score = motion_music_alignment(joints, beat_times, fps)
    off = motion_music_alignment(joints, beat_times + 7.5 / fps, fps)
    print(f"aligned {score:.3f} half-beat off {off:.3f}")
    assert score > 0.95
    assert off < 0.25


def test_beat_f_measure():
    ref = np.arange(1.0, 9.0, 0.5)  # 16 beats
    assert beat_f_measure(ref + 0.03, ref) == pytest.approx(1.0)
    assert beat_f_measure(ref + 0.1, ref) == 0.0  # outside the 70 ms window
    # every other beat found: precision 1, recall 0.5
    assert beat_f_measure(ref[::2], ref) == pytest.approx(2 * 0.5 / 1.5)
    # double tempo: recall 1, precision 0.5 (each estimate matches one reference only)
    doubled = np.sort(np.concatenate([ref, ref + 0.25]))
    assert beat_f_measure(doubled, ref) == pytest.approx(2 * 0.5 / 1.5)
    assert beat_f_measure([], []) == 1.0
    assert beat_f_measure([], ref) == 0.0
