"""One clip's music-motion alignment in one call: both scores, the music's tempo and beats, the curves.

The Beat Alignment node's library half. It composes the metric functions rather than re-implementing
them, and it runs one optical-flow pass for both scores (as :func:`dabfusion.evaluation.scoring.alignment`
does):

- music: :func:`dabfusion.music.beats.analyze_beats` on the whole audio (tempo, beat times), cached per
  audio (:func:`dabfusion.music.beat_grid.tracked_analysis`), with a creator's beat grid edit applied
  when given (``beat_edit``: the same grid the video was generated on);
- 2D-MM Align: :func:`.mm_align.mm_align_from_speed` on the Farneback speed
  (:mod:`.optical_flow_motion`), music beats inside the clip's span;
- AV-Align (corrected variant): :func:`.av_align.audio_peaks` of the audio trimmed to the video,
  :func:`.av_align.video_peaks_from_trajectory` of the same flow magnitudes.

The audio starts with the first frame (what Video Combine muxes). The flow is computed in chunks
of frames with a ``progress(done, total)`` call after each, so a host can show progress and stop a
long clip between chunks (the chunks share their border frame, so the result does not depend on
the chunk size).

Inputs that cannot give a score raise :class:`dabfusion.errors.MediaError` naming the input:
fewer than :data:`MIN_FRAMES` frames, fps <= 0, silent audio, or audio in which no beat can be
tracked (shorter than :data:`dabfusion.music.beats.MIN_BEAT_SECONDS` or without two beats). Music
is checked first, so bad audio fails before the flow is computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MediaError
from .alignment import DEFAULT_SIGMA, DEFAULT_SMOOTH_SIGMA, smooth_gaussian
from .av_align import (MIN_ONSETS, audio_peaks, av_align_iou, chance_iou, count_hits, reference_trajectory,
                       video_peaks_from_trajectory)
from .mm_align import clip_beats_in_frames, mm_align_from_speed
from .optical_flow_motion import as_uint8_frames, flow_magnitudes, speed_from_magnitudes

#: A kinematic beat is a speed minimum between two neighbours: fewer frames cannot have one.
MIN_FRAMES = 3
#: Frames per optical-flow chunk between two progress calls.
CHUNK_FRAMES = 16

Progress = Callable[[int, int], Any]


@dataclass
class BeatReport:
    """Alignment of one clip with its music; times in seconds from the first frame."""

    mm_align: float               # 2D-MM Align (DabFusion eq. 7), 0..1
    av_align: float               # AV-Align (corrected), 0..1
    tempo: float                  # bpm of the whole audio (librosa)
    beat_times: np.ndarray        # music beats inside the clip (s)
    all_beat_times: np.ndarray    # every music beat of the audio (s)
    speed: np.ndarray             # per-frame motion speed (pixels/s)
    smooth_speed: np.ndarray      # the speed the kinematic beats are minima of
    kinematic_beats: np.ndarray   # frame indices
    audio_peaks: np.ndarray       # AV-Align's audio onsets (s)
    video_peaks: np.ndarray       # AV-Align's motion peaks (s)
    av_hits: int
    fps: float
    n_frames: int
    audio_seconds: float
    sigma: float = DEFAULT_SIGMA

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    @property
    def av_chance(self) -> float:
        """AV-Align that motion peaks at random times would get against these onsets (:func:`.av_align.chance_iou`)."""
        return chance_iou(self.audio_peaks.size, self.video_peaks.size, self.fps, self.duration)

    @property
    def av_measurable(self) -> bool:
        """Enough audio onsets (:data:`.av_align.MIN_ONSETS`) for AV-Align to tell alignment from chance."""
        return self.audio_peaks.size >= MIN_ONSETS

    def beat_times_text(self) -> str:
        """The clip's beat times as comma-separated seconds (3 decimals), e.g. ``"0.500, 1.000"``."""
        return ", ".join(f"{t:.3f}" for t in self.beat_times)

    def summary(self) -> str:
        """A short human-readable report (a few lines)."""
        lines = [
            f"2D-MM Align {self.mm_align:.3f}  (sigma {self.sigma:g} frames; {self.kinematic_beats.size} kinematic "
            f"beats vs {self.beat_times.size} music beats)",
            f"AV-Align    {self.av_align:.3f}  ({self.av_hits} hits; {self.audio_peaks.size} audio onsets, "
            f"{self.video_peaks.size} motion peaks; motion peaks at random times: {self.av_chance:.3f})",
            f"tempo {self.tempo:.1f} BPM; clip {self.n_frames} frames at {self.fps:g} fps = {self.duration:.2f} s, "
            f"audio {self.audio_seconds:.2f} s",
        ]
        if self.audio_seconds + 1e-6 < self.duration:
            lines.append("note: the audio ends before the video; the frames after it have no beats to meet")
        if self.beat_times.size == 0:
            lines.append("note: no music beat falls inside the clip, so 2D-MM Align is 0")
        if not self.av_measurable:
            lines.append(f"note: AV-Align cannot be measured on this clip: it has {self.audio_peaks.size} audio "
                         f"onset{'s' * (self.audio_peaks.size != 1)} and AV-Align needs {MIN_ONSETS} or more (a hit is "
                         "a motion peak within one frame of an onset, so a few onsets score 0 or a few tenths by "
                         "luck); score a longer clip (8 s or more)")
        return "\n".join(lines)


def _check_fps(fps: Any) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise MediaError(f"fps must be a number of frames per second, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise MediaError(f"fps must be > 0, got {fps!r}")
    return value


def analyze_music(wave: Any, sample_rate: int, beat_edit: Any = None):
    """Beat analysis of the audio (with ``beat_edit`` applied), or a clear error when it has no beats to align to."""
    from ..music.beat_grid import tracked_analysis
    from ..music.beats import MIN_BEAT_SECONDS

    analysis = tracked_analysis(wave, int(sample_rate))
    if analysis.silent:
        raise MediaError("audio is silent: Beat Alignment needs the music the video was made for")
    if analysis.duration < MIN_BEAT_SECONDS:
        raise MediaError(f"audio is only {analysis.duration:.2f} s long: beat tracking needs at least "
                         f"{MIN_BEAT_SECONDS:g} s of music (two beats or more)")
    if beat_edit is not None:  # a BPM or a beat list needs no tracked beats; the edit says when it has none
        analysis = beat_edit.apply(analysis)
    if not analysis.has_beats:
        raise MediaError(f"audio: no beats found in {analysis.duration:.2f} s of audio; Beat Alignment needs "
                         "music with a pulse (two beats or more)")
    return analysis


def chunked_flow_magnitudes(frames: np.ndarray, *, size: int | None = None, chunk: int = CHUNK_FRAMES,
                            progress: Progress | None = None, steps_before: int = 0,
                            total: int | None = None) -> np.ndarray:
    """:func:`flow_magnitudes` in chunks of ``chunk`` intervals, ``progress`` after each chunk."""
    n = len(frames)
    chunk = max(1, int(chunk))
    starts = range(0, max(n - 1, 0), chunk)
    total = total if total is not None else steps_before + len(starts)
    mags = np.zeros(max(n - 1, 0), np.float64)
    for k, i0 in enumerate(starts):
        i1 = min(i0 + chunk, n - 1)
        mags[i0:i1] = flow_magnitudes(frames[i0: i1 + 1], size=size)  # frames i0..i1 -> intervals i0..i1-1
        if progress is not None:
            progress(steps_before + k + 1, total)
    return mags


def scores_from_magnitudes(mags: np.ndarray, fps: float, beat_times: Any, wave: Any, sample_rate: int, *,
                           sigma: float = DEFAULT_SIGMA, smooth_sigma: float = DEFAULT_SMOOTH_SIGMA):
    """Both scores from one optical-flow pass (``mags``: the ``N - 1`` interval magnitudes of ``N``
    frames; the audio starts with frame 0): ``(speed, mm, audio_peaks, video_peaks)``, ``mm`` the
    2D-MM Align result against the beats inside the clip, the peaks AV-Align's."""
    n = len(mags) + 1
    speed = speed_from_magnitudes(mags, fps)
    mm = mm_align_from_speed(speed, clip_beats_in_frames(beat_times, fps, n), sigma=sigma, smooth_sigma=smooth_sigma)
    video = video_peaks_from_trajectory(reference_trajectory(mags), fps)
    audio = audio_peaks(wave, sample_rate, duration=n / float(fps))
    return speed, mm, audio, video


def beat_report(frames: Any, fps: float, wave: Any, sample_rate: int, *, sigma: float = DEFAULT_SIGMA,
                smooth_sigma: float = DEFAULT_SMOOTH_SIGMA, size: int | None = None,
                chunk: int = CHUNK_FRAMES, progress: Progress | None = None, beat_edit: Any = None) -> BeatReport:
    """Alignment of ``frames`` (uint8 ``[N, H, W, 3]``, or what :func:`as_uint8_frames` takes) at
    ``fps`` with ``wave`` (``[S]`` or ``[C, S]`` at ``sample_rate``), which starts with frame 0.

    ``size`` resizes frames to ``size`` x ``size`` before the optical flow (128 = the paper's
    resolution; None = as they are). ``progress(done, total)`` is called after the music analysis
    and after every flow chunk; raising from it stops the computation. ``beat_edit``: a
    :class:`dabfusion.music.beat_grid.BeatGridEdit` of the tracker's grid (times in ``wave``'s seconds):
    the scores, tempo and beat times are then those of the edited grid.
    """
    fps = _check_fps(fps)
    if sigma <= 0:
        raise MediaError(f"sigma must be > 0 frames, got {sigma}")
    n = len(frames) if hasattr(frames, "__len__") else 0
    if n < MIN_FRAMES:
        raise MediaError(f"images: {n} frame(s); Beat Alignment needs at least {MIN_FRAMES} frames "
                         "(a kinematic beat is a slow-down between two frames)")
    video = as_uint8_frames(frames)
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size == 0:
        raise MediaError("audio is empty: Beat Alignment needs the music the video was made for")
    n_chunks = len(range(0, n - 1, max(1, int(chunk))))
    total = n_chunks + 1

    analysis = analyze_music(wave, sample_rate, beat_edit)
    if progress is not None:
        progress(1, total)
    mags = chunked_flow_magnitudes(video, size=size, chunk=chunk, progress=progress, steps_before=1, total=total)

    speed, mm, ap, vp = scores_from_magnitudes(mags, fps, analysis.beats, wave, sample_rate, sigma=sigma,
                                               smooth_sigma=smooth_sigma)
    return BeatReport(
        mm_align=float(mm.score), av_align=float(av_align_iou(ap, vp, fps)), tempo=float(analysis.tempo),
        beat_times=mm.music_beats / fps, all_beat_times=np.asarray(analysis.beats, np.float64),
        speed=speed, smooth_speed=smooth_gaussian(speed, smooth_sigma), kinematic_beats=mm.kinematic_beats,
        audio_peaks=ap, video_peaks=vp, av_hits=count_hits(ap, vp, fps), fps=fps, n_frames=n,
        audio_seconds=float(analysis.duration), sigma=float(sigma))
