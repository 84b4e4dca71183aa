"""A weight-free frozen encoder of librosa statistics: the stand-in for CLAP/Wav2CLIP.

The pretrained encoders' weights cannot be downloaded here (nor by many users offline), and
random-weight copies carry little genre information. This encoder needs no file at all and still
hears what separates dance genres: timbre (log-mel band means and spread), the rhythm pattern
within a beat (onset autocorrelation at quarter-beat lags, so the same groove at another tempo
looks the same) and the global rhythm summary e_b. An adapter trained on it is recorded as
``branch="mel"`` with ``encoder.kind="mel"`` in its config, so nobody mistakes it for a CLAP
adapter. It follows the same protocol as the neural branches (``embed_clips``, ``embed``,
``identity``) so the encoder and the training script treat all of them alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._audio import mono_at, window_starts
from .beats import ANALYSIS_SR, GLOBAL_COLUMNS, HOP, analyze_beats, global_beat_vector

N_MELS = 64
PATTERN_LAGS = 8  # quarter-beat lags 1/4 .. 2 beats
CLIP_SECONDS = 10.0
VERSION = "mel-stats-v1"
DIM = 2 * N_MELS + PATTERN_LAGS + len(GLOBAL_COLUMNS)


def _rhythm_pattern(env: np.ndarray, period_s: float) -> np.ndarray:
    """Normalised autocorrelation of the onset envelope at k/4 beats, k = 1..PATTERN_LAGS."""
    out = np.zeros(PATTERN_LAGS, np.float32)
    if period_s <= 0 or env.size < 8:
        return out
    x = env - env.mean()
    denom = float(np.dot(x, x))
    if denom <= 0:
        return out
    for k in range(1, PATTERN_LAGS + 1):
        lag = k * period_s / 4 * ANALYSIS_SR / HOP
        lo = int(np.floor(lag))
        if lo + 1 >= len(x):
            break
        frac = lag - lo
        a = np.dot(x[:-lo or None], x[lo:]) if lo else denom
        b = np.dot(x[:-(lo + 1)], x[lo + 1:])
        out[k - 1] = ((1 - frac) * a + frac * b) / denom
    return out


def mel_statistics(clip: np.ndarray) -> np.ndarray:
    """Feature vector [DIM] of one mono 22.05 kHz clip (see the module doc for the parts)."""
    import librosa

    clip = np.asarray(clip, np.float32)
    out = np.zeros(DIM, np.float32)
    if clip.size < 2048 or np.max(np.abs(clip)) < 1e-4:
        return out  # silence / too short: all zero, like the beat features
    mel = librosa.feature.melspectrogram(y=clip, sr=ANALYSIS_SR, n_fft=2048, hop_length=HOP,
                                         n_mels=N_MELS)
    db = librosa.power_to_db(mel, ref=np.max, top_db=80.0)  # relative to the clip's loudest bin
    out[:N_MELS] = (db.mean(axis=1) + 80.0) / 80.0
    out[N_MELS: 2 * N_MELS] = db.std(axis=1) / 20.0
    analysis = analyze_beats(clip, ANALYSIS_SR)
    out[2 * N_MELS: 2 * N_MELS + PATTERN_LAGS] = _rhythm_pattern(analysis.onset_env, analysis.beat_period)
    out[2 * N_MELS + PATTERN_LAGS:] = global_beat_vector(analysis)
    return out


class MelStatsEncoder:
    """Weight-free "frozen encoder" over :func:`mel_statistics` (same protocol as the others)."""

    name = "mel"
    sample_rate = ANALYSIS_SR
    dim = DIM
    fingerprint = VERSION
    source = None

    def __init__(self) -> None:
        self.clip_samples = int(CLIP_SECONDS * ANALYSIS_SR)

    def to(self, *_: Any, **__: Any) -> "MelStatsEncoder":
        return self

    def embed_clips(self, clips: Sequence[np.ndarray], batch_size: int = 1) -> np.ndarray:
        rows = [mel_statistics(np.asarray(c, np.float32)[: self.clip_samples]) for c in clips]
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)

    def embed(self, wave: Any, sr: int) -> np.ndarray:
        """Mean feature vector over evenly spaced 10 s windows of the audio."""
        y = mono_at(wave, sr, self.sample_rate)
        starts = window_starts(len(y), self.clip_samples)
        return np.mean([self.embed_clips([y[s: s + self.clip_samples]])[0] for s in starts],
                       axis=0).astype(np.float32)

    def identity(self) -> dict:
        return {"kind": "mel", "dim": self.dim, "sample_rate": self.sample_rate,
                "fingerprint": VERSION, "file": None, "random_weights": False}
