"""Tiny vectorised synthesiser voices: drums, basses and chord instruments (numpy + scipy filters).

Nothing here knows about genres; :mod:`.music` decides what plays when. Every voice returns a
float64 mono array at the given sample rate; noise comes from the caller's generator so a track
is deterministic for its seed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import butter, lfilter

TAU = 2.0 * np.pi


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


@lru_cache(maxsize=64)
def _butter(kind: str, cutoff: float | tuple[float, float], sr: int, order: int):
    nyq = sr / 2.0
    wn = tuple(min(c / nyq, 0.99) for c in cutoff) if isinstance(cutoff, tuple) else min(cutoff / nyq, 0.99)
    return butter(order, wn, btype=kind)


def filt(x: np.ndarray, kind: str, cutoff, sr: int, order: int = 2) -> np.ndarray:
    """Butterworth low/high/band-pass (``kind`` in 'low', 'high', 'band')."""
    b, a = _butter(kind, tuple(cutoff) if isinstance(cutoff, (list, tuple)) else float(cutoff), sr, order)
    return lfilter(b, a, x)


def _t(dur: float, sr: int) -> np.ndarray:
    return np.arange(max(1, int(dur * sr))) / sr


def envelope(n: int, sr: int, attack: float, decay: float, sustain: float = 0.0,
             release: float = 0.01) -> np.ndarray:
    """Attack ramp, exponential decay towards ``sustain``, and a short release at the end (no clicks)."""
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / max(attack, 1e-4)) * (sustain + (1.0 - sustain) * np.exp(-t / max(decay, 1e-4)))
    r = min(n, max(1, int(release * sr)))
    env[n - r:] *= np.linspace(1.0, 0.0, r)
    return env


# ------------------------------------------------------------------------------------ drums


def kick(sr: int, rng: np.random.Generator, *, pitch: float = 55.0, sweep: float = 120.0,
         decay: float = 0.3, click: float = 0.8, drive: float = 0.0) -> np.ndarray:
    """Sine with a fast downward pitch sweep (the classic 808/909 body) plus a click transient."""
    t = _t(decay * 2.5, sr)
    freq = pitch + sweep * np.exp(-t / 0.035)
    phase = TAU * np.cumsum(freq) / sr
    body = np.sin(phase) * np.exp(-t / decay)
    body[: int(0.002 * sr)] *= np.linspace(0, 1, int(0.002 * sr))
    clk = rng.standard_normal(t.size) * np.exp(-t / 0.004) * click
    out = body + filt(clk, "high", 1500, sr)
    if drive > 0:
        out = np.tanh(out * (1 + 4 * drive)) / np.tanh(1 + 4 * drive)
    return out


def snare(sr: int, rng: np.random.Generator, *, tone: float = 190.0, decay: float = 0.13,
          brightness: float = 1.0) -> np.ndarray:
    """Drum tone plus band-limited noise burst."""
    t = _t(decay * 3, sr)
    body = 0.5 * np.sin(TAU * tone * t) * np.exp(-t / 0.05)
    noise = filt(rng.standard_normal(t.size), "band", (1200.0, min(9000.0 * brightness, sr / 2.2)), sr)
    return body + 1.2 * noise * np.exp(-t / decay)


def clap(sr: int, rng: np.random.Generator, *, decay: float = 0.12) -> np.ndarray:
    """Three quick noise bursts then a tail: a hand clap."""
    t = _t(decay * 3 + 0.03, sr)
    env = np.exp(-t / decay) * 0.7
    for d in (0.0, 0.011, 0.022):
        env += (t >= d) * np.exp(-np.maximum(t - d, 0) / 0.004)
    noise = filt(rng.standard_normal(t.size), "band", (900.0, 3500.0), sr)
    return 1.5 * noise * env


def hat(sr: int, rng: np.random.Generator, *, decay: float = 0.035) -> np.ndarray:
    """High-passed noise; a short decay is a closed hat, a long one an open hat."""
    t = _t(decay * 4, sr)
    return filt(rng.standard_normal(t.size), "high", 7000.0, sr) * np.exp(-t / decay)


def ride(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Inharmonic metallic partials plus a noise wash: a jazz ride cymbal ping."""
    t = _t(1.0, sr)
    partials = sum(np.sin(TAU * f * t) * a for f, a in ((3150, 0.5), (4270, 0.35), (5580, 0.25), (6890, 0.2)))
    wash = filt(rng.standard_normal(t.size), "high", 5000.0, sr) * 0.6
    return (partials * np.exp(-t / 0.12) + wash * np.exp(-t / 0.35)) * 0.7


def crash(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(0.9, sr)
    return filt(rng.standard_normal(t.size), "high", 5000.0, sr) * np.exp(-t / 0.25)


def cowbell(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(0.3, sr)
    sq = np.sign(np.sin(TAU * 540 * t)) + np.sign(np.sin(TAU * 800 * t))
    return filt(sq, "band", (500.0, 2500.0), sr) * np.exp(-t / 0.07) * 0.6


def rim(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(0.08, sr)
    return (np.sin(TAU * 1700 * t) + 0.5 * np.sin(TAU * 480 * t)) * np.exp(-t / 0.012)


def shaker(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(0.12, sr)
    env = np.minimum(1, t / 0.012) * np.exp(-t / 0.03)
    return filt(rng.standard_normal(t.size), "high", 5000.0, sr) * env


def brush(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(0.35, sr)
    env = np.minimum(1, t / 0.01) * np.exp(-t / 0.09)
    return filt(rng.standard_normal(t.size), "band", (1500.0, 7000.0), sr) * env


DRUMS = {
    "kick": kick, "snare": snare, "clap": clap, "hat": hat, "ride": ride, "crash": crash,
    "cowbell": cowbell, "rim": rim, "shaker": shaker, "brush": brush,
}


# ---------------------------------------------------------------------------------- pitched


def osc(wave: str, freq: float, t: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Basic oscillators; 'upright' and 'epiano' are a few harmonics with their own decays."""
    ph = freq * t
    if wave == "sine":
        return np.sin(TAU * ph)
    if wave == "saw":
        return 2.0 * (ph % 1.0) - 1.0
    if wave == "square":
        return np.where((ph % 1.0) < 0.5, 1.0, -1.0)
    if wave == "tri":
        return 4.0 * np.abs((ph % 1.0) - 0.5) - 1.0
    if wave == "organ":
        return sum(a * np.sin(TAU * h * ph) for h, a in ((1, 1.0), (2, 0.7), (3, 0.45), (4, 0.3), (6, 0.15)))
    if wave == "epiano":
        return np.sin(TAU * ph) + 0.35 * np.sin(TAU * 2 * ph) * np.exp(-t / 0.15) + 0.2 * np.sin(TAU * 7 * ph) * np.exp(-t / 0.03)
    if wave == "piano":
        return sum((0.9 ** h) / h * np.sin(TAU * h * ph) * np.exp(-t * h / 1.2) for h in range(1, 7))
    if wave == "pluck":
        return sum(np.sin(TAU * h * ph) * np.exp(-t * h / 0.25) / h for h in range(1, 6))
    if wave == "upright":
        return np.sin(TAU * ph) + 0.4 * np.sin(TAU * 2 * ph) * np.exp(-t / 0.2) + 0.15 * np.sin(TAU * 3 * ph) * np.exp(-t / 0.08)
    if wave == "slap":
        return (2.0 * (ph % 1.0) - 1.0) * (0.35 + 0.65 * np.exp(-t / 0.06))
    if wave == "supersaw":
        return sum(2.0 * ((freq * d * t + o) % 1.0) - 1.0 for d, o in ((1.0, 0.0), (1.006, 0.31), (0.994, 0.67))) / 2.0
    raise ValueError(f"unknown oscillator {wave!r}")


#: Chord instruments: oscillator, attack, decay, sustain, low-pass cutoff (Hz), level.
INSTRUMENTS: dict[str, tuple[str, float, float, float, float, float]] = {
    "organ": ("organ", 0.005, 0.3, 0.7, 4000.0, 0.30),
    "epiano": ("epiano", 0.003, 0.6, 0.15, 5000.0, 0.55),
    "piano": ("piano", 0.002, 0.8, 0.0, 6000.0, 0.75),
    "pad": ("supersaw", 0.12, 1.0, 0.8, 1800.0, 0.30),
    "strings": ("supersaw", 0.06, 0.8, 0.8, 3000.0, 0.26),
    "brass": ("saw", 0.02, 0.18, 0.45, 2400.0, 0.40),
    "pluck": ("pluck", 0.002, 0.3, 0.0, 5000.0, 0.70),
    "clav": ("square", 0.002, 0.09, 0.0, 3500.0, 0.30),
}


def note(wave: str, freq: float, dur: float, sr: int, *, attack: float, decay: float,
         sustain: float, release: float = 0.02) -> np.ndarray:
    t = _t(dur + release, sr)
    return osc(wave, freq, t) * envelope(t.size, sr, attack, decay, sustain, release)


def fade_tail(sig: np.ndarray, fraction: float = 0.4) -> np.ndarray:
    """Fade the last part of a one-shot to zero: a cut-off tail is a click, and clicks are onsets."""
    r = max(1, int(sig.size * fraction))
    out = sig.copy()
    out[-r:] *= np.linspace(1.0, 0.0, r) ** 2
    return out


def add_at(buf: np.ndarray, sig: np.ndarray, start: float, sr: int, gain: float = 1.0) -> None:
    """Mix ``sig`` into ``buf`` starting at ``start`` seconds (clipped at the buffer's end)."""
    i = int(round(start * sr))
    if i >= buf.size or i < 0:
        return
    n = min(sig.size, buf.size - i)
    buf[i:i + n] += gain * sig[:n]
