"""Turn whatever audio a caller has into the mono float32 signal one analysis needs.

Every branch of the music encoder wants mono audio at its own rate (beats: 22.05 kHz, CLAP:
48 kHz, Wav2CLIP: 16 kHz). Callers hand over numpy or torch arrays shaped ``[S]``, ``[C, S]`` or
ComfyUI's ``[1, C, S]``; this module is the one place that normalises that.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from ..errors import MediaError

#: Lowest and highest input rates we promise to handle (telephone audio to studio masters).
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000


def as_array(wave: Any) -> np.ndarray:
    """numpy float32 view of a numpy array, torch tensor or list."""
    if hasattr(wave, "detach"):
        wave = wave.detach().cpu().numpy()
    return np.asarray(wave, dtype=np.float32)


def to_mono_1d(wave: Any) -> np.ndarray:
    """``[S]``, ``[C, S]`` or ``[1, C, S]`` -> mono ``[S]`` float32 (channel average, NaN/inf -> 0)."""
    arr = as_array(wave)
    if arr.ndim == 3:
        if arr.shape[0] != 1:
            raise MediaError(
                f"music encoder takes one clip at a time; got a batch of {arr.shape[0]} "
                f"(shape {tuple(arr.shape)}). Encode the items one by one."
            )
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr.mean(axis=0, dtype=np.float32) if arr.shape[0] > 1 else arr[0]
    elif arr.ndim != 1:
        raise MediaError(f"audio must be [samples], [channels, samples] or [1, channels, samples], "
                         f"got shape {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(arr, dtype=np.float32)


def check_rate(sr: Any) -> int:
    try:
        rate = int(sr)
    except (TypeError, ValueError):
        raise MediaError(f"sample rate must be an integer number of Hz, got {sr!r}") from None
    if rate != sr or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise MediaError(f"sample rate {sr!r} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")
    return rate


def mono_at(wave: Any, sr: Any, target_sr: int) -> np.ndarray:
    """Mono float32 ``[S']`` at ``target_sr`` (soxr, band-limited); empty input stays empty."""
    rate = check_rate(sr)
    mono = to_mono_1d(wave)
    if rate == target_sr:
        return mono
    if mono.size == 0:
        return mono
    from ..media.audio import resample

    return np.ascontiguousarray(resample(mono, rate, target_sr), dtype=np.float32)


def repeat_pad(x: np.ndarray, length: int) -> np.ndarray:
    """CLAP's "repeatpad": repeat whole copies while they fit, then zero-pad to ``length``."""
    if x.size == 0:
        return np.zeros(length, np.float32)
    if x.size >= length:
        return x[:length]
    reps = length // x.size
    out = np.zeros(length, np.float32)
    out[: reps * x.size] = np.tile(x, reps)
    return out


def window_starts(n_samples: int, window: int) -> list[int]:
    """Evenly spaced starts of full windows covering ``n_samples`` (one window if it fits)."""
    if n_samples <= window:
        return [0]
    n = math.ceil(n_samples / window)
    return [int(round(s)) for s in np.linspace(0, n_samples - window, n)]



def audio_digest(wave: Any, sr: Any) -> str:
    """sha256 of the samples and the rate: the cache key part that identifies a piece of audio."""
    arr = np.ascontiguousarray(as_array(wave))
    h = hashlib.sha256()
    h.update(f"{arr.shape}|{int(sr)}|".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()
