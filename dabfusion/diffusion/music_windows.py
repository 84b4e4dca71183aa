"""Music as the diffusion model's conditioning, window by window: the sources a sampler reads.

- :class:`MusicWindows`: one track through a :class:`dabfusion.music.MusicEncoder`, encoded for
  any span of frames (or, for a beat-time model, as :class:`.beat_time.BeatMusic`);
- :class:`StaticMusic`: fixed features (tests, benchmarks, precomputed embeddings);
- :func:`pad_front`: a track delayed by silence (a delayed clip, the half-beat test).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from .beat_time import BeatMusic


class MusicSource(Protocol):
    """Music conditioning for ``n_frames`` frames starting at frame ``start`` of the clip."""

    def window(self, start: int, n_frames: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ...


class MusicWindows:
    """Windows of one piece of music through a :class:`dabfusion.music.MusicEncoder`.

    Frame ``i`` of the clip shows time ``offset + i / fps`` of ``wave`` (``[S]`` or ``[C, S]`` at
    ``sample_rate``). ``offset`` may be negative (a delayed clip: frames before the music get the
    encoder's all-zero "no music" rows). ``encoder.encode`` caches the beat analysis, so many
    windows of one track cost one analysis. ``beat_edit``: a creator's
    :class:`dabfusion.music.beat_grid.BeatGridEdit` of the tracker's grid, used by every window (a beat
    list moves with the music when the track is delayed).
    """

    def __init__(self, encoder: Any, wave: Any, sample_rate: int, fps: float, offset: float = 0.0,
                 beat_edit: Any = None) -> None:
        self.encoder, self.wave, self.sample_rate = encoder, wave, int(sample_rate)
        self.fps, self.offset = float(fps), float(offset)
        self.beat_edit = None if beat_edit is None or beat_edit.is_identity else beat_edit

    def _edit_kw(self, delay: float = 0.0) -> dict:
        return {} if self.beat_edit is None else {"beat_edit": self.beat_edit.shifted(delay)}

    def window(self, start: int, n_frames: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        t0 = self.offset + start / self.fps
        wave, delay = self.wave, 0.0
        if t0 < 0:  # encode() wants start >= 0: pad the front with silence instead
            wave, delay = pad_front(wave, -t0, self.sample_rate), -t0
            t0 = 0.0
        emb = self.encoder.encode(wave, self.sample_rate, n_frames=n_frames, fps=self.fps, start=t0,
                                  **self._edit_kw(delay))
        return emb.as_torch()

    def beat_music(self) -> BeatMusic:
        """The track in beat time, for beat-time models (a delayed clip's track starts with silence)."""
        wave, origin, delay = self.wave, self.offset, 0.0
        if origin < 0:
            wave, delay, origin = pad_front(wave, -origin, self.sample_rate), -origin, 0.0
        return BeatMusic(self.encoder, wave, self.sample_rate, self.fps, origin, **self._edit_kw(delay))


def pad_front(wave: Any, seconds: float, sample_rate: int) -> np.ndarray:
    """``wave`` (``[S]`` or ``[C, S]``) after ``seconds`` of silence: the music delayed."""
    arr = np.asarray(wave, dtype=np.float32)
    pad = int(round(seconds * sample_rate))
    return np.concatenate([np.zeros(arr.shape[:-1] + (pad,), np.float32), arr], axis=-1)


class StaticMusic:
    """Fixed conditioning (tests, precomputed embeddings): ``window`` slices per-frame features."""

    def __init__(self, global_vec: torch.Tensor | None, frame_features: torch.Tensor | None = None) -> None:
        self.global_vec, self.frame_features = global_vec, frame_features

    def window(self, start: int, n_frames: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        f = self.frame_features
        if f is None:
            return self.global_vec, None
        out = torch.zeros(n_frames, f.shape[-1], dtype=f.dtype)
        part = f[start:start + n_frames]
        out[:part.shape[0]] = part
        return self.global_vec, out
