"""SynthDance music: one synthesised track per ``m{GENRE}{k}``, with its exact beat grid.

Each genre has its own drum pattern, swing, bass line, chord instrument, progression and mode
(:data:`STYLES`), so genres differ by ear and by classifier, and every track keeps a constant
tempo so its ground-truth beats are exact: beat ``i`` sits at ``lead_in + i * 60 / tempo``
seconds. The lead-in is a soft pad swell without attacks (no beats), like a count-in.
Kick or bass lands on every beat in every genre, which is what lets librosa track them.

Patterns are 16 steps per 4/4 bar; a character is a hit's loudness: ``X`` 1.0, ``x`` 0.7,
``o`` 0.35, ``.`` none. Bass characters: ``R`` root, ``3``/``5``/``7`` chord tones, ``O``
octave, ``W`` walking (root, third, fifth, approach note on the four beats), ``-`` holds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import instruments as ins

SAMPLE_RATE = 22050
#: The music stops one beat after its last listed beat and rings out until the end of the file.
#: Beat trackers (librosa's included) drop beats in the last second of a file, so ground truth
#: beats stop this long before the end; videos end near the last beat (see ``world.py``).
TAIL_S = 1.5
_VEL = {"X": 1.0, "x": 0.7, "o": 0.35}
_QUALITY = {
    "M": (0, 4, 7), "m": (0, 3, 7), "M7": (0, 4, 7, 11), "m7": (0, 3, 7, 10),
    "7": (0, 4, 7, 10), "m9": (0, 3, 7, 10, 14), "sus": (0, 5, 7),
}


@dataclass(frozen=True)
class MusicStyle:
    """How a genre sounds. Drum strings are 16 steps; ``drums`` maps voice -> pattern."""

    drums: tuple[tuple[str, str], ...]
    swing8: float = 0.0  # delay of off-beat 8ths, in 16th steps (0.67 = triplet swing)
    swing16: float = 0.0  # delay of odd 16ths, in 16th steps
    bass: str = "R.......R......."
    bass_wave: str = "saw"
    bass_cutoff: float = 700.0
    bass_octave: int = 36
    bass_gate: float = 0.9
    chord_inst: str = "pad"
    chord_rhythm: str = "x---------------"
    progression: tuple[tuple[int, str], ...] = ((0, "m"), (0, "m"), (5, "m"), (7, "m"))
    mode: str = "minor"
    lead: str = "none"
    kick_pitch: float = 52.0
    kick_decay: float = 0.3
    drive: float = 0.0
    crackle: float = 0.0


STYLES: dict[str, MusicStyle] = {
    "BR": MusicStyle(  # breakbeat funk: syncopated kick, ghost snares, brass stabs
        drums=(("kick", "X.......X..o...."), ("snare", "....X.o.....X..."), ("hat", "X.x.X.x.X.x.X.x."),
               ("hat_open", "..............x.")),
        swing16=0.1, bass="R.......R.R.....", bass_wave="saw", bass_cutoff=650,
        chord_inst="brass", chord_rhythm="X.......x.......",
        progression=((0, "m7"), (0, "m7"), (5, "7"), (3, "M")), mode="minor", crackle=0.02),
    "PO": MusicStyle(  # pop: four on the floor, pumping 8th bass, bright plucks and an arp
        drums=(("kick", "X...X...X...X..."), ("clap", "....X.......X..."), ("snare", "....x.......x..."),
               ("hat", "X.x.X.x.X.x.X.x.")),
        bass="R.R.R.R.R.R.R.R.", bass_wave="saw", bass_cutoff=900, bass_gate=0.6,
        chord_inst="pluck", chord_rhythm="x..x..x...x..x..",
        progression=((0, "M"), (7, "M"), (9, "m"), (5, "M")), mode="major", lead="arp", kick_pitch=55),
    "LO": MusicStyle(  # 70s funk for locking: cowbell quarters, clav off-beats, slap octaves
        drums=(("kick", "X.....x.X.x....."), ("snare", "....X.......X..."), ("hat", "XoxoXoxoXoxoXoxo"),
               ("cowbell", "x...x...x...x...")),
        bass="R...O.R.R...O.5.", bass_wave="slap", bass_cutoff=1400, bass_gate=0.5,
        chord_inst="clav", chord_rhythm="..x...x...x...x.",
        progression=((0, "7"), (0, "7"), (5, "7"), (0, "7")), mode="mixolydian"),
    "MH": MusicStyle(  # 90s boom bap: swung hats, deep sine bass, dusty piano, vinyl crackle
        drums=(("kick", "X......xX.x....."), ("snare", "....X.......X..."), ("hat", "X.x.X.x.X.x.X.x.")),
        swing8=0.35, bass="R......RR.R.....", bass_wave="sine", bass_cutoff=300, bass_octave=33,
        chord_inst="piano", chord_rhythm="x.......x.......",
        progression=((0, "m7"), (8, "M7"), (0, "m7"), (7, "m7")), mode="minor", kick_decay=0.4,
        crackle=0.06),
    "LH": MusicStyle(  # West-coast g-funk: claps, gliding square bass, long pad, whiny lead
        drums=(("kick", "X.......X.x....."), ("clap", "....X.......X..."), ("hat", "XoxoXoxoXoxoXoxo"),
               ("shaker", "x...x...x...x...")),
        bass="R.....R.R.5.R...", bass_wave="square", bass_cutoff=450,
        chord_inst="pad", chord_rhythm="x---------------",
        progression=((0, "m7"), (5, "m7"), (0, "m7"), (10, "M")), mode="minor", lead="whine"),
    "HO": MusicStyle(  # house: four on the floor, open hats on the off-beat, organ stabs, off-beat bass
        drums=(("kick", "X...X...X...X..."), ("clap", "....X.......X..."), ("hat", "x.o.x.o.x.o.x.o."),
               ("hat_open", "..x...x...x...x.")),
        swing16=0.08, bass="..R...R...R...R.", bass_wave="sine", bass_cutoff=400, bass_gate=0.5,
        chord_inst="organ", chord_rhythm="x..x..x...x..x..",
        progression=((0, "m7"), (0, "m7"), (10, "M"), (8, "M7")), mode="minor", kick_pitch=50,
        kick_decay=0.25),
    "WA": MusicStyle(  # disco: four on the floor, octave bass, lush strings
        drums=(("kick", "X...X...X...X..."), ("snare", "....X.......X..."), ("hat", "XoxoXoxoXoxoXoxo"),
               ("hat_open", "..x...x...x...x.")),
        bass="R.O.R.O.R.O.R.O.", bass_wave="saw", bass_cutoff=1500, bass_gate=0.45,
        chord_inst="strings", chord_rhythm="x-------x-------",
        progression=((0, "M7"), (2, "m7"), (4, "m7"), (2, "m7")), mode="major"),
    "KR": MusicStyle(  # krump: heavy distorted kicks and bass, dark brass hits, rims
        drums=(("kick", "X...X...X...X..."), ("snare", "....X.......X..."), ("hat", "X.x.X.x.X.x.X.x."),
               ("rim", "......x.......x.")),
        bass="R--R--R-R--R----", bass_wave="saw", bass_cutoff=260, bass_octave=31,
        chord_inst="brass", chord_rhythm="X.......X.......",
        progression=((0, "m"), (0, "m"), (1, "M"), (0, "m")), mode="phrygian", kick_decay=0.45, drive=0.6),
    "JS": MusicStyle(  # street jazz / R&B: triplet swing, e-piano ninths
        drums=(("kick", "X...x...X...x..."), ("snare", "....X.......X..."), ("hat", "X.o.X.o.X.o.X.o."),
               ("rim", "..............o.")),
        swing8=0.67, bass="R...R...R...5...", bass_wave="sine", bass_cutoff=500,
        chord_inst="epiano", chord_rhythm="x.......x...x...",
        progression=((0, "m9"), (5, "m9"), (10, "7"), (3, "M7")), mode="dorian"),
    "JB": MusicStyle(  # ballet jazz: swing ride, brushes, walking upright bass, piano comping
        drums=(("ride", "X...X.o.X...X.o."), ("kick", "x...x...x...x..."), ("brush", "....o.......o..."),
               ("hat", "....o.......o...")),
        swing8=0.67, bass="W...W...W...W...", bass_wave="upright", bass_cutoff=900, bass_octave=38,
        bass_gate=0.95, chord_inst="piano", chord_rhythm="o...o...o...o...",
        progression=((2, "m7"), (7, "7"), (0, "M7"), (9, "7")), mode="major"),
}

_DRUM_GAIN = {"kick": 0.9, "snare": 0.4, "clap": 0.4, "hat": 0.22, "hat_open": 0.22, "ride": 0.3,
              "cowbell": 0.25, "rim": 0.3, "shaker": 0.12, "brush": 0.35, "crash": 0.1}


@dataclass(frozen=True)
class TrackSpec:
    """Everything that decides a track; the manifest stores it and :func:`render_track` replays it."""

    id: str
    genre: str
    k: int
    tempo_bpm: float
    lead_in_s: float
    duration_s: float
    key: int  # root pitch class, 0 = C
    mode: str  # "major" / "minor", from the genre's progression
    seed: int
    split: str

    def to_json(self) -> dict:
        return asdict(self)


def beat_grid(spec: TrackSpec) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth beat and downbeat times (s): every quarter note from the end of the lead-in.

    Beats end ``TAIL_S`` before the end of the file so that each listed beat is audible.
    """
    period = 60.0 / spec.tempo_bpm
    n = int(math.floor((spec.duration_s - TAIL_S - spec.lead_in_s) / period + 1e-9)) + 1
    beats = spec.lead_in_s + period * np.arange(max(n, 0))
    return beats, beats[::4]


def _step_times(bar_start: float, beat: float, swing8: float, swing16: float) -> np.ndarray:
    step = beat / 4.0
    s = np.arange(16)
    delay = np.where(s % 4 == 2, swing8, 0.0) + np.where(s % 2 == 1, swing16, 0.0)
    return bar_start + (s + delay) * step


def _chord_notes(key_root: int, degree: int, quality: str) -> list[int]:
    return [key_root + degree + i for i in _QUALITY[quality]]


def render_stems(spec: TrackSpec, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """The track's parts (drums, bass, chords, lead, noise) at their mix levels, unnormalised."""
    style = STYLES[spec.genre]
    rng = np.random.default_rng(spec.seed)
    sr = sample_rate
    n = int(round(spec.duration_s * sr))
    drums = np.zeros(n)
    bass = np.zeros(n)
    chords = np.zeros(n)
    lead = np.zeros(n)
    beat = 60.0 / spec.tempo_bpm
    beats, downbeats = beat_grid(spec)
    n_bars = int(math.ceil(len(beats) / 4))

    tune = float(rng.uniform(0.92, 1.08))
    samples = {
        "kick": ins.kick(sr, rng, pitch=style.kick_pitch * tune, decay=style.kick_decay, drive=style.drive),
        "snare": ins.snare(sr, rng, tone=190 * tune),
        "clap": ins.clap(sr, rng),
        "hat": ins.hat(sr, rng),
        "hat_open": ins.hat(sr, rng, decay=0.18),
        "ride": ins.ride(sr, rng),
        "cowbell": ins.cowbell(sr, rng),
        "rim": ins.rim(sr, rng),
        "shaker": ins.shaker(sr, rng),
        "brush": ins.brush(sr, rng),
        "crash": ins.crash(sr, rng),
    }
    samples = {name: ins.fade_tail(sig) for name, sig in samples.items()}
    key_root = 60 + spec.key - (12 if spec.key > 5 else 0)  # chords around middle C
    inst = ins.INSTRUMENTS[style.chord_inst]
    # the band stops on the last listed beat ("button" ending) and the file rings out after it
    music_end = beats[-1] + 0.02 if len(beats) else spec.duration_s

    for bar in range(n_bars):
        t0 = spec.lead_in_s + bar * 4 * beat
        times = _step_times(t0, beat, style.swing8, style.swing16)
        for voice, pattern in style.drums:
            for s, ch in enumerate(pattern):
                if ch in _VEL and times[s] < music_end:
                    vel = _VEL[ch] * float(rng.uniform(0.9, 1.0))
                    ins.add_at(drums, samples[voice], times[s], sr, _DRUM_GAIN[voice] * vel)
        if bar % 4 == 0:
            ins.add_at(drums, samples["crash"], t0, sr, _DRUM_GAIN["crash"])
        degree, quality = style.progression[bar % len(style.progression)]
        tones = _chord_notes(key_root, degree, quality)
        _play_bass(bass, style, spec, tones, degree, times, beat, sr, music_end)
        _play_chords(chords, inst, style.chord_rhythm, tones, times, beat, sr, music_end)
        if style.lead != "none":
            _play_lead(lead, style.lead, tones, times, beat, bar, sr, music_end)

    # The first and the last beat are the loudest hits of the track (crash + kick + chord):
    # beat trackers such as librosa's drop leading/trailing beats weaker than a typical beat.
    for i, b in ((0, beats[0]), (len(beats) - 1, beats[-1])) if len(beats) else ():
        ins.add_at(drums, samples["crash"], b, sr, 0.45)
        ins.add_at(drums, samples["kick"], b, sr, _DRUM_GAIN["kick"])
        degree, quality = style.progression[(i // 4) % len(style.progression)]
        ring = 1.0 if i else 0.3
        for p in _chord_notes(key_root, degree, quality):
            sig = ins.note(inst[0], ins.midi_hz(p), ring, sr, attack=0.003, decay=0.5, sustain=0.3, release=0.3)
            ins.add_at(chords, sig, b, sr, 0.5)

    # lead-in: the first chord swells in softly, with no attack a beat tracker could hear
    if spec.lead_in_s > 0.05:
        degree, quality = style.progression[0]
        t = np.arange(int(spec.lead_in_s * sr)) / sr
        swell = sum(np.sin(ins.TAU * ins.midi_hz(p) * t) for p in _chord_notes(key_root, degree, quality))
        chords[: t.size] += 0.06 * swell * (t / spec.lead_in_s) ** 2

    bass = ins.filt(bass, "low", style.bass_cutoff, sr)
    if style.drive > 0:
        bass = np.tanh(bass * (1 + 3 * style.drive)) / (1 + style.drive)
    chords = ins.filt(chords, "low", inst[4], sr)
    stems = {"drums": drums, "bass": 0.5 * bass, "chords": inst[5] * 0.45 * chords, "lead": 0.16 * lead}
    if style.crackle > 0:
        pops = (rng.random(n) < 0.0015) * rng.standard_normal(n)
        stems["crackle"] = style.crackle * (0.15 * ins.filt(rng.standard_normal(n), "high", 3000, sr) + pops)
    return stems


def render_track(spec: TrackSpec, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Synthesise a track: float32 mono waveform in [-1, 1] of ``duration_s`` seconds."""
    mix = sum(render_stems(spec, sample_rate).values())
    n = mix.size
    fade = min(n, int(0.05 * sample_rate))
    mix[n - fade:] *= np.linspace(1.0, 0.0, fade)
    peak = np.max(np.abs(mix)) or 1.0
    return (0.89 * mix / peak).astype(np.float32)


def _play_bass(buf, style: MusicStyle, spec: TrackSpec, tones, degree, times, beat, sr, end) -> None:
    root = style.bass_octave + (spec.key + degree) % 12
    pat = style.bass
    walk = [root, root + tones[1] - tones[0], root + 7, root + 6]  # root, third, fifth, approach
    for s, ch in enumerate(pat):
        if ch in ".-" or times[s] >= end:
            continue
        hold = 1
        while s + hold < 16 and pat[s + hold] == "-":
            hold += 1
        if ch == "W":
            pitch, hold = walk[(s // 4) % 4], 4
        else:
            pitch = {"R": root, "O": root + 12, "5": root + 7, "3": root + tones[1] - tones[0],
                     "7": root + 10}[ch]
        dur = hold * beat / 4 * style.bass_gate
        sig = ins.note(style.bass_wave, ins.midi_hz(pitch), dur, sr, attack=0.004, decay=0.25, sustain=0.6)
        ins.add_at(buf, sig, times[s], sr)


def _play_chords(buf, inst, rhythm: str, tones, times, beat, sr, end) -> None:
    wave, attack, decay, sustain, _, _ = inst
    for s, ch in enumerate(rhythm):
        if ch not in _VEL or times[s] >= end:
            continue
        hold = 1
        while s + hold < 16 and rhythm[s + hold] == "-":
            hold += 1
        dur = max(hold * beat / 4, 0.12)
        for p in tones:
            sig = ins.note(wave, ins.midi_hz(p), dur, sr, attack=attack, decay=decay, sustain=sustain)
            ins.add_at(buf, sig, times[s], sr, 0.5 * _VEL[ch])


def _play_lead(buf, kind: str, tones, times, beat, bar, sr, end) -> None:
    if kind == "arp":  # 8th-note arpeggio an octave up
        for i, s in enumerate(range(0, 16, 2)):
            if times[s] < end:
                p = tones[i % len(tones)] + 12
                ins.add_at(buf, ins.note("square", ins.midi_hz(p), beat / 2 * 0.8, sr, attack=0.003,
                                         decay=0.1, sustain=0.2), times[s], sr, 0.5)
    elif kind == "whine":  # a sustained sine with vibrato, two notes per bar
        for half in range(2):
            s = 8 * half
            if times[s] >= end:
                continue
            dur = 2 * beat * 0.95
            t = np.arange(int(dur * sr)) / sr
            f = ins.midi_hz(tones[(bar + half) % len(tones)] + 12)
            phase = ins.TAU * np.cumsum(f * (1 + 0.012 * np.sin(ins.TAU * 5.5 * t))) / sr
            env = ins.envelope(t.size, sr, 0.08, 1.0, 0.7, 0.05)
            ins.add_at(buf, np.sin(phase) * env, times[s], sr, 0.8)
