"""Render a :class:`.compose.Composition` to audio: fluidsynth with the FluidR3 GM soundfont (real
instrument samples), or a small numpy synthesiser (so the benchmark is not one renderer's sound).

Both renderers return *stems*: drums (MIDI channel 10) and everything tonal, as float32 mono at
the requested rate. The excerpt's audio is their sum (with per-style gains, :func:`mix`), and the
drum stem is what the grid check times (:mod:`.gridcheck`): its attacks are the composition's kicks
and snares with nothing tonal smeared over them.

fluidsynth applies MIDI events at the start of its 64-sample blocks and samples have their own
attack times, so its audio lags the score by a few milliseconds: :func:`measure_latency` measures
that on isolated hits, and the corpus shifts the annotation by the measured value.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .compose import BASS, CHORDS, DRUMS, LEAD, PAD, Composition, TempoMap
from .midi import TPQ, midi_bytes, note_events, program_event, tempo_event

SOUNDFONT_CANDIDATES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2")
FLUID_GAIN = 0.6


def soundfont_path() -> Path | None:
    """FluidR3_GM.sf2 (``$DABFUSION_SOUNDFONT`` first), or None when it is not installed."""
    env = os.environ.get("DABFUSION_SOUNDFONT")
    for p in ([env] if env else []) + list(SOUNDFONT_CANDIDATES):
        if p and Path(p).is_file():
            return Path(p)
    return None


def fluidsynth_available() -> bool:
    return shutil.which("fluidsynth") is not None and soundfont_path() is not None


def fluidsynth_version() -> str:
    try:
        out = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True, timeout=20)
        return out.stdout.splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unavailable"


def render_midi_bytes(data: bytes, sr: int, n_samples: int) -> np.ndarray:
    """fluidsynth's float render of a MIDI file, mono (mean of L and R), exactly ``n_samples``."""
    import soundfile as sf
    sf2 = soundfont_path()
    if sf2 is None or shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth and FluidR3_GM.sf2 are needed to render the beat corpus "
                           "(Debian: apt-get install fluidsynth fluid-soundfont-gm)")
    with tempfile.TemporaryDirectory(prefix="beat_corpus_") as tmp:
        mid = Path(tmp) / "song.mid"
        wav = Path(tmp) / "out.wav"
        mid.write_bytes(data)
        cmd = ["fluidsynth", "-ni", "-q", "-g", str(FLUID_GAIN), "-r", str(sr), "-O", "float",
               "-o", "synth.cpu-cores=1", "-F", str(wav), str(sf2), str(mid)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"fluidsynth failed ({proc.returncode}): {proc.stderr[-500:]}")
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if rate != sr:
        raise RuntimeError(f"fluidsynth rendered at {rate} Hz, asked for {sr}")
    y = audio.mean(axis=1)
    out = np.zeros(n_samples, np.float32)
    out[:min(n_samples, len(y))] = y[:n_samples]
    return out


def _events(c: Composition, channels):
    from .compose import composition_events
    return composition_events(c, channels)


def render_fluidsynth(c: Composition, sr: int) -> dict[str, np.ndarray]:
    """``{"drums": ..., "tonal": ...}`` stems of ``c`` rendered by fluidsynth (untrimmed tail)."""
    n = int(np.ceil(c.duration * sr))
    tonal_ch = sorted(ch for ch in {n_.channel for n_ in c.notes} if ch != DRUMS)
    drums = render_midi_bytes(midi_bytes(_events(c, [DRUMS])), sr, n)
    tonal = render_midi_bytes(midi_bytes(_events(c, tonal_ch)), sr, n) if tonal_ch else np.zeros(n, np.float32)
    return {"drums": drums, "tonal": tonal}


def measure_latency(sr: int, keys=(36, 38, 37, 39, 75, 56, 63), kits=(0, 24, 25, 40),
                    hits: int = 6, bpm: float = 100.0) -> dict:
    """Measured lag (s) of fluidsynth's audio after the notated time, per drum key and kit.

    Each key is struck ``hits`` times alone (0.6 s apart, velocities 60-127) at a tempo where
    ticks do not fall on fluidsynth's 64-sample blocks, and its attack is found with the grid check's own detector, so
    the number includes block quantisation and the sample's own attack. Returns ``{"median_s",
    "per_key": {key: median}, "all": [...]}``."""
    from .gridcheck import attack_times
    us = int(round(60e6 / bpm))
    tempo = TempoMap([(0, us)])
    events = [tempo_event(0, us)]
    ticks: list[int] = []
    owners: list[tuple[int, int]] = []
    tick = TPQ
    gap = int(TPQ * 1.0)          # 0.6 s at 100 bpm
    for kit in kits:
        events.append(program_event(tick, 9, kit))
        tick += gap
        for key in keys:
            for h in range(hits):
                t = tick + h * 7   # tiny offsets: hits land on different sub-block phases
                events += note_events(t, TPQ // 4, 9, key, (60, 85, 110, 127)[h % 4])
                ticks.append(t)
                owners.append((kit, key))
                tick += gap
    n = int(np.ceil((tempo.seconds(tick) + 1.0) * sr))
    y = render_midi_bytes(midi_bytes(events), sr, n)
    notated = tempo.seconds(np.array(ticks))
    found = attack_times(y, sr, notated, search_s=0.03)
    lags = found - notated
    per_key: dict[str, float] = {}
    for key in keys:
        sel = np.array([k == key for _, k in owners]) & np.isfinite(lags)
        per_key[str(key)] = float(np.median(lags[sel])) if sel.any() else float("nan")
    per_kit: dict[str, float] = {}
    for kit in kits:
        sel = np.array([k == kit for k, _ in owners]) & np.isfinite(lags)
        per_kit[str(kit)] = float(np.median(lags[sel])) if sel.any() else float("nan")
    ok = np.isfinite(lags)
    from .gridcheck import detector_bias
    return {"detector_bias_s": detector_bias(sr), "median_s": float(np.median(lags[ok])), "min_s": float(lags[ok].min()),
            "max_s": float(lags[ok].max()), "per_key": per_key, "per_kit": per_kit,
            "n": int(ok.sum()), "fluidsynth": fluidsynth_version()}


# --------------------------------------------------------------------------------------------
# numpy synthesiser
# --------------------------------------------------------------------------------------------

def _env(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    a = np.clip(t / max(attack, 1e-4), 0.0, 1.0)
    return a * np.exp(-t / decay)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def _highpass(x: np.ndarray, times: int = 2) -> np.ndarray:
    for _ in range(times):
        x = np.diff(x, prepend=x[:1])
    return x


def _bandpass(x: np.ndarray, sr: int, f: float, q: float) -> np.ndarray:
    from scipy.signal import iirpeak, lfilter
    b, a = iirpeak(min(f, sr * 0.45), q, fs=sr)
    return lfilter(b, a, x)


def _drum(key: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One drum hit (peak ~1), sharp attack at sample 0."""
    def tone(freqs, dur, decay, drop=0.0, drop_t=0.03):
        n = int(dur * sr)
        t = np.arange(n) / sr
        out = np.zeros(n)
        for f, amp in freqs:
            inst = f * (1 + drop * np.exp(-t / drop_t))
            out += amp * np.sin(2 * np.pi * np.cumsum(inst) / sr)
        return out * _env(n, sr, 0.0005, decay)

    def noise(dur, decay, hp=2, attack=0.0005):
        n = int(dur * sr)
        return _highpass(_noise(rng, n), hp) / (2.0 ** hp) * _env(n, sr, attack, decay)

    if key in (35, 36):
        k = tone([(48.0, 1.0)], 0.45, 0.22, drop=2.2, drop_t=0.03)
        k[:int(0.004 * sr)] += noise(0.004, 0.002, hp=1) * 0.6
        return k
    if key in (38, 40):
        body = tone([(185.0, 0.6), (330.0, 0.3)], 0.25, 0.06)
        nz = _bandpass(noise(0.3, 0.11, hp=1), sr, 3500, 0.7)
        out = np.zeros(max(len(body), len(nz)))
        out[:len(body)] += body
        out[:len(nz)] += 1.2 * nz / (np.abs(nz).max() + 1e-9)
        return out
    if key == 37:
        return tone([(1700.0, 0.5), (420.0, 0.7)], 0.08, 0.018)
    if key == 39:
        n = int(0.25 * sr)
        out = np.zeros(n)
        for i, d in enumerate((0.0, 0.009, 0.018)):
            seg = noise(0.25 - d, 0.012 if i < 2 else 0.09, hp=1)
            out[int(d * sr):int(d * sr) + len(seg)] += seg
        return _bandpass(out, sr, 1400, 1.2)
    if key in (42, 44, 46):
        decay = {42: 0.03, 44: 0.02, 46: 0.28}[key]
        return noise(0.05 + 4 * decay, decay, hp=3) * (0.6 if key == 44 else 1.0)
    if key in (49, 51, 53):
        metal = tone([(f, 0.2) for f in (3150.0, 4270.0, 5380.0, 6110.0)], 1.2, 0.7 if key != 49 else 1.1)
        nz = noise(1.2, 0.5 if key != 49 else 1.0, hp=3)
        return metal * (0.4 if key == 49 else 0.8) + nz * (1.0 if key == 49 else 0.5)
    if key in (54, 69, 70, 82, 73):
        attack = 0.008 if key in (82, 70) else 0.001
        return _bandpass(noise(0.12, 0.035, hp=1, attack=attack), sr, 6000, 0.8)
    if key == 56:
        return tone([(540.0, 0.6), (800.0, 0.5)], 0.25, 0.07)
    if key in (75, 76, 77):
        return tone([(2500.0 if key == 75 else 1800.0, 1.0)], 0.08, 0.02)
    if key in (60, 61, 62, 63, 64, 65):
        f = {60: 420.0, 61: 300.0, 62: 340.0, 63: 330.0, 64: 220.0, 65: 520.0}[key]
        d = 0.05 if key == 62 else 0.16
        out = tone([(f, 1.0), (f * 1.5, 0.25)], 0.35, d, drop=0.15, drop_t=0.02)
        out[:int(0.01 * sr)] += noise(0.01, 0.004, hp=1) * 0.5
        return out
    return noise(0.1, 0.03, hp=2)


def _peak1(x: np.ndarray) -> np.ndarray:
    return x / (float(np.abs(x).max()) or 1.0)


_DRUM_GAIN = {36: 1.0, 35: 1.0, 38: 0.7, 40: 0.7, 37: 0.45, 39: 0.6, 42: 0.28, 44: 0.2, 46: 0.25,
              49: 0.25, 51: 0.22, 53: 0.22, 56: 0.3, 75: 0.35}


def _voice(role: int, pitch: int, length_s: float, sr: int, rng: np.random.Generator,
           variant: int) -> np.ndarray:
    """One tonal note; slow attacks on pads and the voice-like lead (sustained tonal content)."""
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    if role == PAD:
        attack, release, tail = 0.35, 0.4, 0.4
    elif role == LEAD:
        attack, release, tail = 0.08, 0.15, 0.15
    else:
        attack, release, tail = 0.004, 0.05, 0.05
    n = int((length_s + tail) * sr)
    t = np.arange(n) / sr
    if role == LEAD:
        vib = 1 + 0.006 * np.sin(2 * np.pi * 5.3 * t) * np.clip(t / 0.4, 0, 1)
        phase = 2 * np.pi * np.cumsum(f0 * vib) / sr
        src = np.zeros(n)
        for k in range(1, int(sr * 0.45 / f0)):
            src += np.sin(k * phase) / k
        vowels = ((800, 1150, 2900), (450, 800, 2830), (400, 1700, 2600), (350, 600, 2700))
        y = np.zeros(n)
        for f, g in zip(vowels[(pitch + variant) % len(vowels)], (1.0, 0.6, 0.25)):
            y += g * _bandpass(src, sr, f, 6.0)
    elif role == PAD:
        y = np.zeros(n)
        for det in (-0.004, 0.0, 0.005):
            ph = 2 * np.pi * f0 * (1 + det) * t + rng.uniform(0, 2 * np.pi)
            for k in range(1, min(10, int(sr * 0.45 / f0))):
                y += np.sin(k * ph) / k ** 1.3
    elif role == BASS:
        y = np.zeros(n)
        for k in range(1, min(8, int(sr * 0.45 / f0))):
            y += np.sin(2 * np.pi * k * f0 * t) / k * np.exp(-t * (k - 1) * 1.5)
    elif role == CHORDS:
        y = (np.sin(2 * np.pi * f0 * t) + 0.35 * np.sin(4 * np.pi * f0 * t)
             + 0.12 * np.sin(6 * np.pi * f0 * t)) * np.exp(-t / 0.9)
    else:   # arp / pluck
        y = np.zeros(n)
        for k in range(1, min(12, int(sr * 0.45 / f0))):
            y += np.sin(2 * np.pi * k * f0 * t) / k * np.exp(-t * (2.0 + 1.2 * k))
    env = np.clip(t / attack, 0, 1)
    rel = np.clip((length_s + release - t) / release, 0, 1)
    return y * env * rel


_ROLE_GAIN = {BASS: 0.5, CHORDS: 0.16, PAD: 0.06, LEAD: 0.12, 4: 0.14}


def render_numpy(c: Composition, sr: int) -> dict[str, np.ndarray]:
    """``{"drums", "tonal"}`` stems synthesised in numpy (sample-exact: no latency)."""
    from .compose import derive_seed
    rng = np.random.default_rng(derive_seed("numpy_synth", c.name, c.seed))
    n = int(np.ceil(c.duration * sr))
    stems = {"drums": np.zeros(n + sr * 2), "tonal": np.zeros(n + sr * 2)}
    hit_cache: dict[int, list[np.ndarray]] = {}
    ticks = np.array([c.note_tick(nt) for nt in c.notes])
    starts = c.tempo.seconds(ticks)
    ends = c.tempo.seconds(ticks + np.array([int(round(nt.length * TPQ)) for nt in c.notes]))
    for nt, t0, t1 in zip(c.notes, starts, ends):
        i0 = int(round(t0 * sr))
        amp = (nt.velocity / 127.0) ** 1.6
        if nt.channel == DRUMS:
            variants = hit_cache.setdefault(nt.pitch, [_peak1(_drum(nt.pitch, sr, rng)) for _ in range(3)])
            y = variants[int(rng.integers(3))] * amp * _DRUM_GAIN.get(nt.pitch, 0.25)
            stem = stems["drums"]
        else:
            y = _voice(nt.channel, nt.pitch, max(t1 - t0, 0.05), sr, rng, c.variant)
            y = y * amp * _ROLE_GAIN.get(nt.channel, 0.1)
            stem = stems["tonal"]
        m = min(len(y), len(stem) - i0)
        if m > 0:
            stem[i0:i0 + m] += y[:m]
    return {k: v[:n].astype(np.float32) for k, v in stems.items()}


def mix(stems: dict[str, np.ndarray], sr: int, *, tonal_gain: float = 1.0,
        peak: float = 0.9) -> tuple[np.ndarray, float]:
    """The excerpt's audio (drums + tonal_gain * tonal, peak-normalised, 20 ms fade-out) and the
    normalising factor (so stems can be scaled the same way)."""
    y = stems["drums"].astype(np.float64) + tonal_gain * stems["tonal"].astype(np.float64)
    m = float(np.abs(y).max()) or 1.0
    y *= peak / m
    fade = min(len(y), int(0.02 * sr))
    if fade:
        y[-fade:] *= np.linspace(1.0, 0.0, fade)
    return y.astype(np.float32), peak / m


__all__ = ["render_fluidsynth", "render_numpy", "measure_latency", "mix", "fluidsynth_available",
           "soundfont_path"]
