"""2D-MM Align from pixels on constructed videos whose kinematic beats are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dabfusion.testing.dance_toy import beat_times, click_track, dancer_positions, render_video
from dabfusion.metrics.alignment import kinematic_beats
from dabfusion.metrics.mm_align import circular_phase_shift, clip_beats_in_frames, estimate_lag, mm_align
from dabfusion.metrics.optical_flow_motion import as_uint8_frames, motion_speed, speed_from_magnitudes

FPS, BPM, SECONDS, SIZE = 30.0, 120.0, 4.0, 64


@pytest.fixture(scope="module")
def dance():
    """A square that turns round (speed 0) exactly on every beat of a 120 bpm click track."""
    n = int(SECONDS * FPS)
    video = render_video(dancer_positions(BPM, n, FPS), SIZE, seed=1)
    return video, beat_times(BPM, SECONDS), click_track(BPM, SECONDS)


def test_speed_minima_are_the_turning_frames(dance):
    video, beats, _ = dance
    speed = motion_speed(video, FPS)
    assert speed.shape == (len(video),) and (speed >= 0).all()
    kin = kinematic_beats(speed)
    expected = clip_beats_in_frames(beats, FPS, len(video))  # 15, 30, ... (0.5 s lead-in)
    assert len(kin) >= len(expected) - 1
    d = np.abs(kin[:, None] - expected[None, :]).min(axis=1)
    assert np.all(d <= 1.0)


def test_aligned_scores_high_and_shifted_scores_low(dance):
    video, beats, _ = dance
    aligned = mm_align(video, FPS, beat_times=beats).score
    half = mm_align(video, FPS, beat_times=beats + 0.25).score  # half a beat late
    other = mm_align(video, FPS, beat_times=beat_times(90.0, SECONDS)).score
    assert aligned > 0.9
    assert half < 0.3
    assert other < aligned - 0.3


def test_music_beats_from_librosa(dance):
    video, _, wave = dance
    res = mm_align(video, FPS, wave=wave, sample_rate=22050)
    assert res.music_beats.size >= 5
    assert res.score > 0.8


def test_clip_start_and_sigma(dance):
    video, beats, _ = dance
    # the clip shows the track from 1.0 s: the beats move with it
    start = 1.0
    shift = int(start * FPS)
    late = mm_align(video[shift:], FPS, beat_times=beats, start=start).score
    assert late > 0.9
    narrow = mm_align(video, FPS, beat_times=beats + 2 / FPS, sigma=1.0).score
    wide = mm_align(video, FPS, beat_times=beats + 2 / FPS, sigma=5.0).score
    assert narrow < wide


def test_lag_of_a_delayed_motion(dance):
    video, _, _ = dance
    speed = motion_speed(video, FPS)
    delayed = np.concatenate([np.full(4, speed[0]), speed[:-4]])
    assert estimate_lag(speed, delayed, 7) == 4
    assert estimate_lag(delayed, speed, 7) == -4
    # half a beat (7.5 frames at 120 bpm, 30 fps) looks the same both ways; searched in [0, beat) it is found
    half = np.concatenate([np.full(8, speed[0]), speed[:-8]])
    assert estimate_lag(speed, half, 14, min_lag=0) == 8


def test_phase_shift_of_kinematic_beats():
    beats = np.arange(0, 200, 15.0)
    assert circular_phase_shift(beats[2:10] + 1, beats[3:9] + 8.5, beats) == pytest.approx(0.5)
    assert circular_phase_shift(beats[2:10] + 14, beats[3:9] + 1, beats) == pytest.approx(2 / 15)  # wraps round
    assert np.isnan(circular_phase_shift([], beats[3:9], beats))


def test_frame_formats_agree(dance):
    video, _, _ = dance
    as_torch = torch.from_numpy(video[:10]).permute(0, 3, 1, 2).float() / 255.0
    assert np.array_equal(as_uint8_frames(as_torch), video[:10])
    np.testing.assert_allclose(motion_speed(as_torch, FPS), motion_speed(video[:10], FPS))
    np.testing.assert_allclose(speed_from_magnitudes(np.array([1.0, 3.0, 5.0]), 2.0), [2.0, 4.0, 8.0, 10.0])
