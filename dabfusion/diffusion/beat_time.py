"""Beat time: the diffusion generates motion on the music's beat grid, frames are read off it.

Why. Trained on video frames, the diffusion had to find the beat in per-frame features and put
its motion accents there; measured, it did not (docs/diffusion_lab_log.md): its speed minima
followed the window seams and the noise, never the music. In beat time the timing is part of
the representation instead of something to learn: sample ``j`` of a clip lies at beat phase
``u0 + j / S`` (``S`` samples per beat), so at every tempo a beat is every ``S`` samples and one
training window always holds the same number of beats. The model learns *what* to do within a
beat (the per-sample phase features say where the beat falls); *when* comes from the music,
through the beat tracker, when the samples are put back on the video's frames.

- :class:`BeatClock`: the continuous beat count ``u(t)`` of a track - 0, 1, 2, ... on librosa's
  beats, linear in between, extrapolated with the median period outside them (and a fixed
  120 bpm pulse for music without beats, so any sound still gets a grid).
- :class:`BeatGrid`: the samples of one clip: sample 0 is the clip's first frame (the reference),
  sample ``j`` is ``u0 + j / S`` beats later; frame ``i`` sits at the fractional sample
  ``(u(t_i) - u0) * S``.
- :func:`resample_linear` reads a frame-rate sequence at fractional positions (training targets
  onto the grid); :func:`resample_cubic` reads the generated grid back at the frames
  (Catmull-Rom: continuous velocity, so no speed kinks at the samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: Beat period assumed for music without two beats (120 bpm): the grid still exists.
FALLBACK_PERIOD = 0.5


class BeatClock:
    """``u(t)``: beats elapsed at time ``t`` (s) of a track, and its inverse ``t(u)``."""

    def __init__(self, beats: Any, fallback_period: float = FALLBACK_PERIOD) -> None:
        b = np.unique(np.asarray(beats, dtype=np.float64).reshape(-1))
        if b.size >= 2:
            self.beats = b
            self.period = float(np.median(np.diff(b)))
        else:  # no tempo: a steady pulse anchored at the single beat (or at 0)
            self.beats = b[:1] if b.size else np.zeros(1)
            self.period = float(fallback_period)
        self.has_beats = b.size >= 2

    @classmethod
    def from_analysis(cls, analysis: Any) -> "BeatClock":
        return cls(analysis.beats if getattr(analysis, "has_beats", False) else np.zeros(0))

    @property
    def tempo(self) -> float:
        return 60.0 / self.period

    def phase(self, t: Any) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        b = self.beats
        k = np.arange(b.size, dtype=np.float64)
        u = np.interp(t, b, k) if b.size >= 2 else np.zeros_like(t)
        u = np.where(t < b[0], (t - b[0]) / self.period, u)
        return np.where(t > b[-1], k[-1] + (t - b[-1]) / self.period, u)

    def time(self, u: Any) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        b = self.beats
        k = np.arange(b.size, dtype=np.float64)
        t = np.interp(u, k, b) if b.size >= 2 else np.full_like(u, b[0])
        t = np.where(u < 0, b[0] + u * self.period, t)
        return np.where(u > k[-1], b[-1] + (u - k[-1]) * self.period, t)


@dataclass(frozen=True)
class BeatGrid:
    """The beat-time samples of one clip (see the module docstring)."""

    clock: BeatClock
    u0: float                # beat phase of sample 0 (= the clip's first frame)
    samples_per_beat: int
    n_samples: int

    @classmethod
    def for_clip(cls, clock: BeatClock, start: float, n_frames: int, fps: float,
                 samples_per_beat: int) -> "BeatGrid":
        """Enough samples to cover frames ``start + i / fps`` (track time), plus one for the cubic."""
        u0 = float(clock.phase(start))
        u_end = float(clock.phase(start + (max(int(n_frames), 1) - 1) / float(fps)))
        n = int(math.floor((u_end - u0) * samples_per_beat + 1e-9)) + 2
        return cls(clock, u0, int(samples_per_beat), n)

    def phases(self, first: int = 0, count: int | None = None) -> np.ndarray:
        count = self.n_samples - first if count is None else int(count)
        return self.u0 + (first + np.arange(count)) / self.samples_per_beat

    def times(self, first: int = 0, count: int | None = None) -> np.ndarray:
        """Track times (s) of samples ``first .. first + count - 1``."""
        return self.clock.time(self.phases(first, count))

    def positions(self, times: Any) -> np.ndarray:
        """Fractional sample index of each track time."""
        return (self.clock.phase(times) - self.u0) * self.samples_per_beat

    def frame_positions(self, start: float, n_frames: int, fps: float) -> np.ndarray:
        return self.positions(float(start) + np.arange(int(n_frames)) / float(fps))


def _taps(positions: Any, length: int) -> tuple[np.ndarray, np.ndarray]:
    p = np.clip(np.asarray(positions, dtype=np.float64), 0.0, max(length - 1, 0))
    i0 = np.clip(np.floor(p).astype(np.int64), 0, max(length - 2, 0))
    return p, i0


def resample_linear(values: torch.Tensor, positions: Any, dim: int = 0) -> torch.Tensor:
    """``values`` read at fractional ``positions`` along ``dim`` (linear; clamped to the ends)."""
    n = values.shape[dim]
    if n == 1:
        return values.index_select(dim, torch.zeros(len(positions), dtype=torch.long, device=values.device))
    p, i0 = _taps(positions, n)
    w = torch.as_tensor(p - i0, dtype=values.dtype, device=values.device)
    shape = [1] * values.dim()
    shape[dim] = -1
    w = w.view(shape)
    a = values.index_select(dim, torch.as_tensor(i0, device=values.device))
    b = values.index_select(dim, torch.as_tensor(i0 + 1, device=values.device))
    return a + (b - a) * w


def resample_cubic(values: torch.Tensor, positions: Any, dim: int = 0) -> torch.Tensor:
    """``values`` read at fractional ``positions`` along ``dim`` with Catmull-Rom splines.

    Exact at integer positions (sample 0 stays the reference exactly), continuous first
    derivative in between; past the ends the spline continues the edge's straight line (ghost
    samples ``2 v[0] - v[1]`` and ``2 v[-1] - v[-2]``).
    """
    n = values.shape[dim]
    if n < 3:
        return resample_linear(values, positions, dim)
    first, last = values.narrow(dim, 0, 1), values.narrow(dim, n - 1, 1)
    ghosts = (2 * first - values.narrow(dim, 1, 1), 2 * last - values.narrow(dim, n - 2, 1))
    values = torch.cat([ghosts[0], values, ghosts[1]], dim=dim)  # sample k is now at k + 1
    p, i1 = _taps(positions, n)
    s = p - i1
    idx = [i1 + 1 + k for k in (-1, 0, 1, 2)]
    s2, s3 = s * s, s * s * s
    weights = [(-s3 + 2 * s2 - s) / 2, (3 * s3 - 5 * s2 + 2) / 2, (-3 * s3 + 4 * s2 + s) / 2, (s3 - s2) / 2]
    shape = [1] * values.dim()
    shape[dim] = -1
    out = None
    for i, w in zip(idx, weights):
        term = values.index_select(dim, torch.as_tensor(i, device=values.device)) * \
            torch.as_tensor(w, dtype=values.dtype, device=values.device).view(shape)
        out = term if out is None else out + term
    return out


class BeatMusic:
    """One track read in beat time: its clock, per-sample beat features, per-window global vectors.

    ``origin``: the track time (s) of the clip's frame 0. ``beat_edit``: a creator's
    :class:`dabfusion.music.beat_grid.BeatGridEdit` of the tracker's grid; the clock, the features and the
    global vectors then all read the edited grid. Global vectors are the encoder's for the
    ``context_hop`` grid point nearest a window's centre (the encoder rounds its context the same
    way), so training (:class:`dabfusion.diffusion.data.BeatWindowDataset`) and sampling read the
    very same vectors; they are cached per grid point.
    """

    def __init__(self, encoder: Any, wave: Any, sample_rate: int, fps: float, origin: float = 0.0,
                 beat_edit: Any = None) -> None:
        self.encoder, self.wave, self.sample_rate = encoder, wave, int(sample_rate)
        self.fps, self.origin = float(fps), float(origin)
        self.beat_edit = None if beat_edit is None or beat_edit.is_identity else beat_edit
        self._edit_kw = {} if self.beat_edit is None else {"beat_edit": self.beat_edit}
        self.frame_dim = int(getattr(encoder, "frame_dim", 0))
        self.analysis = encoder.beat_analysis(wave, self.sample_rate, **self._edit_kw)
        self.clock = BeatClock.from_analysis(self.analysis)
        self.hop = float(getattr(encoder, "context_hop", 0.5) or 0.5)
        self.last_point = int(math.ceil(self.analysis.duration / self.hop))
        self._globals: dict[int, np.ndarray] = {}

    def features(self, times: Any) -> np.ndarray | None:
        """``[K, F]`` per-sample beat features at track ``times`` (None without a beats branch)."""
        from ..music.beats import beat_features_at

        if not self.frame_dim:
            return None
        return beat_features_at(self.analysis, times, self.fps)

    def precompute(self) -> "BeatMusic":
        """Every global vector of the track, so that a pickled copy (DataLoader workers) needs no encoder."""
        for k in range(self.last_point + 1):
            self.global_vector(k * self.hop, k * self.hop)
        return self

    def __getstate__(self) -> dict:
        return {**self.__dict__, "encoder": None, "wave": None}

    def global_vector(self, t0: float, t1: float) -> np.ndarray:
        k = int(np.clip(round((float(t0) + float(t1)) / 2 / self.hop), 0, self.last_point))
        vec = self._globals.get(k)
        if vec is None:
            if self.encoder is None:
                raise RuntimeError("this BeatMusic was pickled without precompute(): its encoder is gone")
            start = max(k * self.hop - 0.5 / self.fps, 0.0)
            vec = self._globals[k] = self.encoder.encode(self.wave, self.sample_rate, n_frames=1, fps=self.fps,
                                                         start=start, **self._edit_kw).global_vec
        return vec

    def grid(self, n_frames: int, samples_per_beat: int) -> BeatGrid:
        return BeatGrid.for_clip(self.clock, self.origin, n_frames, self.fps, samples_per_beat)
