"""AV-Align: the IoU of peak lists (both reference-code variants), peak picking, and whole clips."""

from __future__ import annotations

import numpy as np
import pytest

from dabfusion.testing.dance_toy import render_video
from dabfusion.metrics.av_align import (audio_peaks, av_align, av_align_iou, count_hits, reference_trajectory,
                                        video_peaks, video_peaks_from_trajectory)

FPS = 24.0
SR = 22050


def test_iou_of_hand_made_peak_lists():
    fps = 30.0
    audio = [0.10, 0.50, 0.90]
    video = [0.11, 0.52, 1.50]  # two within a frame (33 ms), one far
    assert count_hits(audio, video, fps) == 2
    assert av_align_iou(audio, video, fps) == pytest.approx(2 / (3 + 3 - 2))
    assert av_align_iou(audio, audio, fps) == 1.0
    assert av_align_iou(audio, [2.0, 3.0], fps) == 0.0
    assert av_align_iou([], [], fps) == 0.0  # the reference code would divide by zero
    # strictly within one frame: exactly one frame away is not a hit
    assert count_hits([1.0], [1.0 + 1 / fps + 1e-9], fps) == 0
    assert count_hits([1.0], [1.0 + 0.99 / fps], fps) == 1


def test_original_variant_counts_a_video_peak_many_times():
    fps = 30.0
    audio = [1.000, 1.010, 1.020]  # three onsets within one frame of a single motion peak
    video = [1.005]
    assert count_hits(audio, video, fps, "original") == 3
    assert av_align_iou(audio, video, fps, "original") == pytest.approx(3.0)  # > 1: TempoTokens issue #11
    assert count_hits(audio, video, fps, "corrected") == 1
    assert av_align_iou(audio, video, fps, "corrected") == pytest.approx(1 / 3)
    # both agree when peaks pair up one to one
    a, v = [0.1, 0.5, 0.9], [0.1, 0.5, 2.0]
    assert av_align_iou(a, v, fps, "original") == av_align_iou(a, v, fps, "corrected") == pytest.approx(0.5)
    with pytest.raises(ValueError):
        count_hits(a, v, fps, "other")


def test_video_peaks_are_strict_local_maxima_above_threshold():
    traj = np.array([0.5, 0.5, 0.9, 0.2, 0.3, 0.3, 0.1, 0.05, 0.09, 0.02, 0.4])
    # index 2: peak; 4-5: plateau (not strict); 8: below 0.1; 10: last sample (one-sided)
    np.testing.assert_allclose(video_peaks_from_trajectory(traj, 10.0), [0.2])
    np.testing.assert_allclose(video_peaks_from_trajectory(traj, 10.0, threshold=0.0), [0.2, 0.8])
    # the reference trajectory repeats the first interval, so frame 1 can never be a peak
    np.testing.assert_allclose(reference_trajectory([2.0, 1.0, 3.0, 1.0]), [2.0, 2.0, 1.0, 3.0, 1.0])
    assert video_peaks_from_trajectory(reference_trajectory([2.0, 1.0, 3.0, 1.0]), 1.0).tolist() == [3.0]


def _bursts(n: int, centres: list[int], size: int = 64) -> np.ndarray:
    """A square that darts during the interval (c-1 -> c) for each centre c and rests otherwise."""
    step = np.full(n - 1, 0.002)
    for c in centres:
        for i, w in ((c - 2, 0.3), (c - 1, 1.0), (c, 0.3)):
            if 0 <= i < n - 1:
                step[i] += 0.12 * w
    sign = np.ones(n - 1)
    for k, c in enumerate(centres):  # alternate direction so the square stays in the frame
        sign[max(c - 2, 0):] = (-1) ** (k + 1)
    xs = np.concatenate([[-0.15], -0.15 + np.cumsum(step * -sign)])
    return render_video(xs, size, seed=3)


def _clicks(times: np.ndarray, seconds: float) -> np.ndarray:
    from dabfusion.testing.dance_toy import click_track

    wave = np.zeros(int(seconds * SR), np.float32)
    one = click_track(60.0, 1.0, lead_in=0.0)[: int(0.05 * SR)]
    for t in times:
        i = int(round(t * SR))
        wave[i:i + one.size] += one[: wave.size - i]
    return wave


@pytest.fixture(scope="module")
def clip():
    n = int(4 * FPS)
    centres = list(range(12, n - 4, 12))
    return _bursts(n, centres), np.array(centres) / FPS


def test_audio_peaks_of_a_click_track(clip):
    _, times = clip
    wave = _clicks(times, 4.0)
    peaks = audio_peaks(wave, SR)
    assert len(peaks) == len(times)
    assert np.abs(peaks - times).max() < 0.03  # one onset hop is 23 ms
    assert len(audio_peaks(wave, SR, duration=2.0)) == int(np.sum(times < 2.0 - 0.05))
    resampled = audio_peaks(_resample(wave, SR, 16000), 16000)
    assert len(resampled) == len(times)


def _resample(wave, a, b):
    import librosa

    return librosa.resample(wave, orig_sr=a, target_sr=b)


def test_motion_peaks_of_a_darting_square(clip):
    video, times = clip
    traj, peaks = video_peaks(video, FPS)
    assert traj.shape == (len(video),)
    np.testing.assert_allclose(peaks, times, atol=1e-9)


def test_av_align_of_synchronised_and_shifted_clips(clip):
    video, times = clip
    synced = av_align(video, FPS, _clicks(times, 4.0), SR)
    shifted = av_align(video, FPS, _clicks(times + 0.25, 4.0), SR)
    assert synced.score > 0.8
    assert shifted.score < 0.2
    # audio beyond the clip does not count when trimmed
    longer = _clicks(np.concatenate([times, [4.5, 5.0, 5.5]]), 6.0)
    assert av_align(video, FPS, longer, SR).score == pytest.approx(synced.score)
    assert av_align(video, FPS, longer, SR, trim_audio=False).score < synced.score


def test_a_clip_with_too_few_onsets_says_av_align_cannot_be_measured():
    """Issue 21: a 2 s clip of the example music has 4 onsets; its AV-Align of 0 is chance, and the report
    says so; with 8 onsets or more there is no such note. The chance level is what random peaks get."""
    from dabfusion.metrics.av_align import MIN_ONSETS, chance_iou
    from dabfusion.metrics.beat_report import BeatReport

    def report(n_onsets: int, seconds: float) -> BeatReport:
        fps = 30.0
        n = int(seconds * fps)
        return BeatReport(mm_align=0.5, av_align=0.0, tempo=120.0, beat_times=np.arange(0.5, seconds, 0.5),
                          all_beat_times=np.arange(0.5, seconds, 0.5), speed=np.zeros(n), smooth_speed=np.zeros(n),
                          kinematic_beats=np.zeros(0, int), audio_peaks=np.linspace(0.2, seconds - 0.2, n_onsets),
                          video_peaks=np.linspace(0.1, seconds - 0.1, 6), av_hits=0, fps=fps, n_frames=n,
                          audio_seconds=seconds)

    short = report(4, 2.0)
    assert not short.av_measurable and "AV-Align cannot be measured on this clip: it has 4 audio onsets" in short.summary()
    long = report(MIN_ONSETS, 8.0)
    assert long.av_measurable and "cannot be measured" not in long.summary()
    assert f"motion peaks at random times: {long.av_chance:.3f}" in long.summary()
    # 4 onsets, 6 peaks in 2 s at 30 fps: each onset has a peak within a frame with p = 1 - (1 - 1/30) ** 6
    p = 1 - (1 - 1 / 30) ** 6
    assert chance_iou(4, 6, 30.0, 2.0) == pytest.approx(4 * p / (10 - 4 * p))
    assert chance_iou(0, 6, 30.0, 2.0) == 0.0
