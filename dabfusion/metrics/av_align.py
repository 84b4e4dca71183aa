"""AV-Align (Yariv et al., AAAI 2024): do the video's motion peaks meet the audio's onsets?

    AV-Align = hits / (|A| + |V| - hits)      (an intersection over union of peak sets)

- audio peaks A: ``librosa.onset.onset_detect`` on ``librosa.onset.onset_strength`` of the mono
  audio at 22050 Hz (what ``librosa.load`` gives the reference code), librosa's defaults;
- video peaks V: strict local maxima of the mean Farneback flow magnitude between consecutive
  frames, kept when the magnitude is >= 0.1 pixel. The trajectory is the reference code's:
  ``[m(0,1), m(0,1), m(1,2), ..., m(N-2,N-1)]`` (the first interval is repeated so the
  trajectory has N entries; entry i is the motion *arriving* at frame i, time i / fps);
- a hit: an audio peak with a video peak strictly within one frame (``|a - v| < 1 / fps``),
  i.e. inside the three-frame window the DabFusion paper describes.

Two variants of the reference code (``variant=``), both documented in its repository
(github.com/guyyariv/TempoTokens, ``av_align.py``):

- ``"original"``: the code as first released (Oct 2023, commit 34d9502). ``calc_intersection_
  over_union`` counts every audio peak that has *any* video peak nearby, so one video peak can
  be counted for several audio peaks and the score can exceed 1 (issue #11, "Bug in AV-Align").
  That release also used an undefined ``n`` in ``find_local_max_indexes`` (read as
  ``len(arr)``, as every fork that ran it does) and had no magnitude threshold in the released
  file; the threshold was part of the authors' evaluation ("this has always been the case").
- ``"corrected"`` (default): the fix of Feb 2025 (commit bf0b1e3): each video peak is matched
  to at most one audio peak (greedy, in time order of the audio peaks), so the score is an IoU
  in [0, 1]; threshold ``>= 0.1``.

Our additions, the same for both variants: the audio is trimmed to the video's duration
(``trim_audio=True``; the reference code reads a separate wav that it assumes matches the
video); with no peak at all the score is 0.0 (the reference divides by zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

from .optical_flow_motion import flow_magnitudes

Variant = Literal["original", "corrected"]
VARIANTS = ("original", "corrected")
#: Mean flow magnitude (pixels) below which a local maximum is not a motion peak.
VIDEO_PEAK_THRESHOLD = 0.1
AUDIO_SR = 22050  # librosa.load's default rate, at which the reference code detects onsets


@dataclass
class AVAlignResult:
    score: float
    audio_peaks: np.ndarray       # seconds
    video_peaks: np.ndarray       # seconds
    hits: int
    trajectory: np.ndarray        # per-frame flow magnitude (reference layout)


def audio_peaks(wave: Any, sample_rate: int, *, duration: float | None = None) -> np.ndarray:
    """Onset times (s) of ``wave`` (``[S]`` or ``[C, S]``), trimmed to ``duration`` seconds."""
    import librosa

    y = np.asarray(wave, dtype=np.float32)
    if y.ndim > 1:
        y = y.reshape(-1, y.shape[-1]).mean(axis=0)
    if int(sample_rate) != AUDIO_SR:
        y = librosa.resample(y, orig_sr=int(sample_rate), target_sr=AUDIO_SR)
    if duration is not None:
        y = y[: int(round(float(duration) * AUDIO_SR))]
    if y.size < 2048 or not np.any(y):
        return np.zeros(0)
    env = librosa.onset.onset_strength(y=y, sr=AUDIO_SR)
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=AUDIO_SR)
    return np.asarray(librosa.frames_to_time(frames, sr=AUDIO_SR), dtype=np.float64)


def reference_trajectory(magnitudes: Any) -> np.ndarray:
    """``[m0, m0, m1, ..., m_{N-2}]`` from interval magnitudes ``m_i = m(i, i+1)`` (N entries)."""
    m = np.asarray(magnitudes, dtype=np.float64).reshape(-1)
    return np.concatenate([m[:1], m]) if m.size else m


def video_peaks_from_trajectory(trajectory: Any, fps: float, *, threshold: float = VIDEO_PEAK_THRESHOLD) -> np.ndarray:
    """Times (s) of strict local maxima of the trajectory with value >= ``threshold``."""
    arr = np.asarray(trajectory, dtype=np.float64)
    if arr.size < 3:
        return np.zeros(0)
    mid = arr[1:-1]
    idx = np.flatnonzero((arr[:-2] < mid) & (mid > arr[2:]) & (mid >= threshold)) + 1
    return idx / float(fps)


def video_peaks(frames: Any, fps: float, *, threshold: float = VIDEO_PEAK_THRESHOLD,
                size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(trajectory ``[N]``, peak times) of a video (uint8 ``[N, H, W, 3]``)."""
    traj = reference_trajectory(flow_magnitudes(frames, size=size))
    return traj, video_peaks_from_trajectory(traj, fps, threshold=threshold)


def count_hits(audio: Sequence[float], video: Sequence[float], fps: float, variant: Variant = "corrected") -> int:
    """Audio peaks with a video peak strictly within one frame (see the variants)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    tol = 1.0 / float(fps)
    used = [False] * len(video)
    hits = 0
    for a in audio:
        for j, v in enumerate(video):
            if variant == "corrected" and used[j]:
                continue
            if v - tol < a < v + tol:
                hits += 1
                used[j] = True
                break
    return hits


#: Audio onsets below which AV-Align cannot tell alignment from chance: with a hit window of +-1 frame, a
#: clip of a few onsets scores 0 or a few tenths by luck (a 2 s clip of the example music has 4 onsets).
MIN_ONSETS = 8


def chance_iou(n_audio: int, n_video: int, fps: float, duration: float) -> float:
    """AV-Align expected if the ``n_video`` motion peaks fell at random times in ``duration`` seconds: each
    audio onset then has a peak within one frame (a window of 2 / fps s) with probability
    ``1 - (1 - 2 / (fps * duration)) ** n_video``; the expected hits h give ``h / (|A| + |V| - h)``."""
    if n_audio <= 0 or n_video <= 0 or duration <= 0:
        return 0.0
    p = 1.0 - (1.0 - min(1.0, 2.0 / (float(fps) * float(duration)))) ** int(n_video)
    hits = min(float(n_audio), float(n_video), n_audio * p)
    return hits / (n_audio + n_video - hits)


def av_align_iou(audio: Sequence[float], video: Sequence[float], fps: float, variant: Variant = "corrected") -> float:
    """hits / (|A| + |V| - hits); 0.0 when there are no peaks at all."""
    hits = count_hits(audio, video, fps, variant)
    den = len(audio) + len(video) - hits
    return hits / den if den > 0 else 0.0


def av_align(frames: Any, fps: float, wave: Any, sample_rate: int, *, variant: Variant = "corrected",
             trim_audio: bool = True, threshold: float = VIDEO_PEAK_THRESHOLD,
             size: int | None = None) -> AVAlignResult:
    """AV-Align of a video (uint8 ``[N, H, W, 3]`` at ``fps``) and the audio that plays with it.

    ``wave`` starts with the video's first frame; with ``trim_audio`` only its first N / fps
    seconds count.
    """
    frames_arr = frames
    n = len(frames_arr)
    traj, vp = video_peaks(frames_arr, fps, threshold=threshold, size=size)
    ap = audio_peaks(wave, sample_rate, duration=n / float(fps) if trim_audio else None)
    hits = count_hits(ap, vp, fps, variant)
    den = len(ap) + len(vp) - hits
    return AVAlignResult(hits / den if den > 0 else 0.0, ap, vp, hits, traj)
