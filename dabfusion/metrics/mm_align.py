"""2D-MM Align (DabFusion eq. 7) computed from a video's pixels and its music.

    2D-MM Align = 1/|B_x| sum_{x in B_x} exp(-min_{y in B_y} |x - y|^2 / (2 sigma^2))

- kinematic beats B_x: local minima of the Gaussian-smoothed motion speed, the speed measured
  with dense optical flow (:mod:`.optical_flow_motion`) because generated videos have no joints;
- music beats B_y: librosa's beat tracker (:func:`dabfusion.music.beats.analyze_beats`) on the
  whole track, then the beats inside the clip's span, in frames of the video;
- sigma = 3 frames, mean over kinematic beats (AIST++'s convention, which the paper follows);
  ``average_over="music"`` gives Bailando's variant. The score itself is
  :func:`dabfusion.metrics.alignment.beat_alignment_score` - one implementation for joints and pixels.

Beat tracking needs context, so pass the whole track and the clip's ``start`` (seconds) rather
than a cut-out segment when you have it. Music beats outside the clip are dropped; kinematic
beats of the first and last frame cannot exist (a minimum needs both neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .alignment import DEFAULT_SIGMA, DEFAULT_SMOOTH_SIGMA, beat_alignment_score, kinematic_beats, times_to_frames
from .optical_flow_motion import motion_speed


@dataclass
class MMAlignResult:
    score: float
    kinematic_beats: np.ndarray   # frame indices
    music_beats: np.ndarray       # fractional frame positions inside the clip
    speed: np.ndarray             # per-frame speed (pixels/s)


def music_beat_times(wave: Any, sample_rate: int) -> np.ndarray:
    """Beat times (s) that librosa finds in ``wave`` (``[S]`` or ``[C, S]``)."""
    from ..music.beats import analyze_beats

    return np.asarray(analyze_beats(wave, int(sample_rate)).beats, dtype=np.float64)


def clip_beats_in_frames(beat_times: Any, fps: float, n_frames: int, start: float = 0.0) -> np.ndarray:
    """Beat times of the track -> fractional frames of a clip starting at ``start`` s, inside it."""
    frames = times_to_frames(np.asarray(beat_times, dtype=np.float64) - float(start), fps)
    return frames[(frames >= 0) & (frames <= n_frames - 1)]


def mm_align_from_speed(speed: Any, music_beat_frames: Any, *, sigma: float = DEFAULT_SIGMA,
                        smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
                        average_over: Literal["kinematic", "music"] = "kinematic") -> MMAlignResult:
    speed = np.asarray(speed, dtype=np.float64)
    kin = kinematic_beats(speed, smooth_sigma=smooth_sigma)
    mus = np.asarray(music_beat_frames, dtype=np.float64)
    return MMAlignResult(beat_alignment_score(kin, mus, sigma, average_over=average_over), kin, mus, speed)


def mm_align(frames: Any, fps: float, *, beat_times: Any = None, wave: Any = None,
             sample_rate: int | None = None, start: float = 0.0, sigma: float = DEFAULT_SIGMA,
             smooth_sigma: float = DEFAULT_SMOOTH_SIGMA, size: int | None = None,
             average_over: Literal["kinematic", "music"] = "kinematic") -> MMAlignResult:
    """2D-MM Align of ``frames`` (uint8 ``[N, H, W, 3]``) at ``fps`` against music beats.

    Give the beats as ``beat_times`` (seconds of the track), or the track as ``wave`` +
    ``sample_rate`` (beat-tracked here). ``start``: the time of the track the clip's first
    frame shows.
    """
    if beat_times is None:
        if wave is None or sample_rate is None:
            raise ValueError("give beat_times, or wave and sample_rate")
        beat_times = music_beat_times(wave, sample_rate)
    speed = motion_speed(frames, fps, size=size)
    mus = clip_beats_in_frames(beat_times, fps, len(speed), start)
    return mm_align_from_speed(speed, mus, sigma=sigma, smooth_sigma=smooth_sigma, average_over=average_over)


def estimate_lag(speed_a: Any, speed_b: Any, max_lag: int, min_lag: int | None = None) -> int:
    """The lag (frames) that best aligns ``speed_b`` to ``speed_a`` (b delayed by lag -> positive).

    Normalised cross-correlation of the mean-removed speed curves over lags in
    ``[min_lag, max_lag]`` (default ``[-max_lag, max_lag]``); used to measure how far delaying the
    music delays the motion. Motion with one accent per beat looks the same delayed or advanced by
    half a beat, so when the direction is known search ``[0, period)``.
    """
    a = np.asarray(speed_a, dtype=np.float64)
    b = np.asarray(speed_b, dtype=np.float64)
    n = min(a.size, b.size)
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    best, best_lag = -np.inf, 0
    for lag in range(-max_lag if min_lag is None else int(min_lag), max_lag + 1):
        if lag >= 0:
            x, y = a[: n - lag], b[lag:]
        else:
            x, y = a[-lag:], b[: n + lag]
        if x.size < 3:
            continue
        den = np.sqrt((x * x).sum() * (y * y).sum())
        c = (x * y).sum() / den if den > 0 else -np.inf
        if c > best:
            best, best_lag = c, lag
    return int(best_lag)


def beat_phase_of(frames_idx: Any, beat_frames: Any) -> np.ndarray:
    """Phase in [0, 1) of each frame index within the beat interval that contains it."""
    k = np.asarray(frames_idx, dtype=np.float64).reshape(-1)
    b = np.sort(np.asarray(beat_frames, dtype=np.float64).reshape(-1))
    if b.size < 2 or k.size == 0:
        return np.zeros(0)
    period = float(np.median(np.diff(b)))
    j = np.clip(np.searchsorted(b, k, side="right") - 1, 0, b.size - 1)
    return np.mod((k - b[j]) / period, 1.0)


def circular_phase_shift(kin_a: Any, kin_b: Any, beat_frames: Any) -> float:
    """How far (in beats, in [0, 1)) the kinematic beats ``kin_b`` sit after ``kin_a`` on the beat grid.

    The circular mean of each set's beat phase; delaying the motion by half a beat gives 0.5.
    NaN when either set is empty.
    """
    pa, pb = beat_phase_of(kin_a, beat_frames), beat_phase_of(kin_b, beat_frames)
    if pa.size == 0 or pb.size == 0:
        return float("nan")
    ma = np.angle(np.exp(2j * np.pi * pa).mean())
    mb = np.angle(np.exp(2j * np.pi * pb).mean())
    return float(np.mod((mb - ma) / (2 * np.pi), 1.0))
