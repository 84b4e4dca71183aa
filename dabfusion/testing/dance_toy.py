"""A tiny AIST++-layout data set with exact ground truth, for tests and smoke runs.

Every track is a click track (a short decaying tone on every beat after a silent lead-in) at its
own tempo; every video shows a textured square that swings left and right so that it turns
round - speed zero, a kinematic beat - exactly on the music's beats. Names follow AIST++
(``videos/gBR_sBM_c01_d01_mBR1_ch01.mp4``, ``music/mBR1.wav``), so the real data readers,
caches and scripts run on it unchanged. SynthDance (``training/make_synthetic.py``) is the
real data world; this is its minimal stand-in with known answers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

SAMPLE_RATE = 22050


def beat_times(bpm: float, duration: float, lead_in: float = 0.5) -> np.ndarray:
    period = 60.0 / bpm
    return np.arange(lead_in, duration - 0.25, period)


def click_track(bpm: float, duration: float, *, lead_in: float = 0.5, sample_rate: int = SAMPLE_RATE,
                delay: float = 0.0) -> np.ndarray:
    """Mono float32 clicks (40 ms decaying 880 Hz tone + a noise transient) on every beat."""
    n = int(round(duration * sample_rate))
    wave = np.zeros(n, np.float32)
    k = int(0.04 * sample_rate)
    t = np.arange(k) / sample_rate
    rng = np.random.default_rng(0)
    click = (np.sin(2 * np.pi * 880 * t) * 0.6 + rng.normal(0, 0.3, k)) * np.exp(-t / 0.008)
    for b in beat_times(bpm, duration, lead_in) + delay:
        i = int(round(b * sample_rate))
        if 0 <= i < n:
            m = min(k, n - i)
            wave[i:i + m] += click[:m].astype(np.float32)
    return np.clip(wave, -1, 1)


def dancer_positions(bpm: float, n_frames: int, fps: float, *, lead_in: float = 0.5,
                     amplitude: float = 0.3) -> np.ndarray:
    """x offset in [-amplitude, amplitude] (fraction of the frame) per frame: turns on each beat."""
    t = np.arange(n_frames) / fps
    phase = np.clip((t - lead_in) * bpm / 60.0, 0.0, None)
    return amplitude * np.cos(np.pi * phase)


def render_video(xs: np.ndarray, size: int, *, seed: int = 0) -> np.ndarray:
    """uint8 [N, size, size, 3]: a textured square at horizontal offsets ``xs`` on a gradient."""
    import cv2

    rng = np.random.default_rng(seed)
    side = max(4, size // 3)
    tex = (rng.random((side, side, 3)) * 180 + 60).astype(np.uint8)
    bg = np.zeros((size, size, 3), np.uint8)
    bg[..., 0] = np.linspace(30, 90, size, dtype=np.uint8)[None, :]
    bg[..., 1] = 40
    bg[..., 2] = np.linspace(90, 30, size, dtype=np.uint8)[:, None]
    out = np.empty((len(xs), size, size, 3), np.uint8)
    for i, x in enumerate(xs):
        cx = (size - side) / 2 + x * size
        m = np.float32([[1, 0, cx], [0, 1, (size - side) / 2]])
        fg = cv2.warpAffine(tex, m, (size, size), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(np.full((side, side), 255, np.uint8), m, (size, size), flags=cv2.INTER_LINEAR)
        a = alpha[..., None].astype(np.float32) / 255.0
        out[i] = (bg * (1 - a) + fg * a + 0.5).astype(np.uint8)
    return out


DEFAULT_TRACKS = {"mBR0": 100.0, "mBR1": 120.0, "mPO0": 90.0, "mPO1": 110.0}


def write_toy_dataset(root: str | os.PathLike, *, tracks: dict[str, float] | None = None,
                      dancers: Sequence[int] = (1, 2), duration: float = 4.0, fps: float = 20.0,
                      size: int = 64) -> Path:
    """Write the data set under ``root`` and return it. Track names pick the genre."""
    import soundfile as sf

    from ..media.video import write_mp4

    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "music").mkdir(parents=True, exist_ok=True)
    tracks = dict(tracks or DEFAULT_TRACKS)
    n = int(round(duration * fps))
    for k, (track, bpm) in enumerate(sorted(tracks.items())):
        sf.write(root / "music" / f"{track}.wav", click_track(bpm, duration), SAMPLE_RATE)
        genre = track[1:3]
        for d in dancers:
            xs = dancer_positions(bpm, n, fps, amplitude=0.22 + 0.04 * d)
            stem = f"g{genre}_sBM_c01_d{d:02d}_{track}_ch{k + 1:02d}"
            write_mp4(root / "videos" / f"{stem}.mp4", render_video(xs, size, seed=10 * k + d), fps,
                      preset="ultrafast")
    return root
