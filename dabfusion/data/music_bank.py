"""Music tracks held in memory at one sample rate, cut into segments aligned with video time.

A data set has few tracks (AIST++: 60) but many windows per track, so each track is decoded and
resampled once, when the data set is built, and every window just slices it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import DabFusionError, DataError


def load_track(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """One track as mono float32 [S] at ``sample_rate`` (the one place that decodes music)."""
    from ..media.audio import load_audio

    wave, _ = load_audio(path, sample_rate=sample_rate, mono=True)
    return np.ascontiguousarray(np.asarray(wave, dtype=np.float32).reshape(-1))


class MusicBank:
    """Tracks by name (``"mBR0"``) at ``sample_rate``; :meth:`segment` cuts a window's audio.

    Time 0 of a track is time 0 of every video that uses it (AIST++ and SynthDance are recorded
    that way), so a window starting at video time ``t0`` gets the samples from ``round(t0 * sr)``.
    """

    def __init__(self, files: Mapping[str, str | os.PathLike], sample_rate: int) -> None:
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise DataError(f"audio_sample_rate must be a positive integer, got {sample_rate!r}.")
        self.sample_rate = int(sample_rate)
        self.tracks: dict[str, np.ndarray] = {}
        for name, path in sorted(files.items()):
            try:
                self.tracks[name] = load_track(path, self.sample_rate)
            except DabFusionError:
                raise
            except Exception as e:  # noqa: BLE001 - name the file for the user
                raise DataError(f"Could not load the music file {Path(path)}: {e}") from e

    def n_samples(self, seconds: float) -> int:
        """Samples in a span of ``seconds`` (the same for every window of a data set)."""
        return int(round(seconds * self.sample_rate))

    def segment(self, track: str, t0: float, n_samples: int) -> np.ndarray:
        """float32 [n_samples] from time ``t0``; zero past the end of the track."""
        wave = self.tracks[track]
        start = int(round(t0 * self.sample_rate))
        out = np.zeros(n_samples, dtype=np.float32)
        piece = wave[max(start, 0): max(start + n_samples, 0)]
        off = max(-start, 0)
        out[off: off + len(piece)] = piece[: n_samples - off]
        return out

    def duration(self, track: str) -> float:
        return len(self.tracks[track]) / self.sample_rate
