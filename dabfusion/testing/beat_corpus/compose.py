"""Compose the corpus's excerpts: style patterns -> notes on a tempo map + exact beat annotations.

Why composed music: a beat tracker's failure modes (off-beat locks on house hats, tempo octaves
on drum and bass and half-time trap, lost phase in a drumless intro) can only be measured against
beats that are known exactly, and the only beats known exactly are the ones we wrote. Every note
sits on an integer MIDI tick (:data:`.midi.TPQ` per notated beat) and every beat time is computed
from the same integer tempo map the MIDI file carries, so the annotation *is* the score: the
notated grid, not a guess. Humanisation changes velocities freely but moves notes by at most
:data:`MAX_JITTER_S`, which the annotation ignores (the grid stays the truth).

An excerpt is a :class:`Composition`: notes on roles (bass, chords, pad, lead, arp, drums on MIDI
channel 10), GM programs for the fluidsynth render, the tempo map, beats per bar and where the
first bar line falls (excerpts may start on a pick-up, so "the first beat is a downbeat" is not a
free answer). :func:`compose` is deterministic in ``(style, variant, seed)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .midi import TPQ

#: Roles are MIDI channels; the numpy renderer picks its voice by role, fluidsynth by program.
BASS, CHORDS, PAD, LEAD, ARP, DRUMS = 0, 1, 2, 3, 4, 9
ROLE_NAMES = {BASS: "bass", CHORDS: "chords", PAD: "pad", LEAD: "lead", ARP: "arp", DRUMS: "drums"}
#: Timing humanisation bound: notes move by at most this much from the notated grid.
MAX_JITTER_S = 0.003

# General MIDI percussion keys used by the patterns.
KICK, KICK2, STICK, SNARE, CLAP, SNARE2 = 36, 35, 37, 38, 39, 40
HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE, RIDE_BELL = 42, 44, 46, 49, 51, 53
TAMB, COWBELL, BONGO_HI, BONGO_LO, CONGA_MUTE, CONGA_OPEN, CONGA_LO = 54, 56, 60, 61, 62, 63, 64
TIMBALE_HI, CABASA, MARACAS, CLAVES, GUIRO, SHAKER = 65, 69, 70, 75, 73, 82
#: Drum keys with a sharp attack: the grid check times the audio on these (kick, snare, ...).
ANCHOR_KEYS = frozenset({KICK, KICK2, STICK, SNARE, CLAP, SNARE2, COWBELL, CLAVES,
                         CONGA_MUTE, CONGA_OPEN, CONGA_LO, BONGO_HI, BONGO_LO, TIMBALE_HI})
#: GM drum kits (program on channel 10): standard, room, power, electronic, TR-808, jazz, brush.
KITS = {"standard": 0, "room": 8, "power": 16, "electronic": 24, "tr808": 25, "jazz": 32,
        "brush": 40}

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = {
    "major": ((1, 5, 6, 4), (1, 6, 4, 5), (1, 4, 5, 4), (6, 4, 1, 5), (2, 5, 1, 1), (1, 1, 4, 5)),
    "minor": ((1, 6, 3, 7), (1, 4, 5, 1), (1, 7, 6, 7), (1, 6, 7, 1), (4, 5, 1, 1), (1, 1, 6, 5)),
}


@dataclass(frozen=True)
class Note:
    """One note: ``beat`` is the notated onset in beats from the excerpt's first beat (swing
    included), ``length`` in beats, ``jitter_s`` the humanisation offset (seconds)."""

    beat: float
    length: float
    pitch: int
    velocity: int
    channel: int
    jitter_s: float = 0.0


@dataclass
class TempoMap:
    """Piecewise-constant tempo: ``(start_tick, microseconds per beat)`` segments, first at 0.

    Integer microseconds, as in the MIDI file, so the seconds computed here are the player's."""

    segments: list[tuple[int, int]]

    def seconds(self, ticks) -> np.ndarray:
        ticks = np.asarray(ticks, dtype=np.float64)
        starts = np.array([s for s, _ in self.segments], np.float64)
        us = np.array([u for _, u in self.segments], np.float64)
        seg_s = np.diff(starts) * us[:-1] / TPQ * 1e-6
        at = np.concatenate([[0.0], np.cumsum(seg_s)])
        i = np.clip(np.searchsorted(starts, ticks, side="right") - 1, 0, len(starts) - 1)
        return at[i] + (ticks - starts[i]) * us[i] / TPQ * 1e-6

    def bpm_at(self, tick: float) -> float:
        us = [u for s, u in self.segments if s <= tick]
        return 60e6 / (us[-1] if us else self.segments[0][1])


@dataclass
class Composition:
    """An excerpt's score and its truth: the beats are the notated beats 0..n_beats-1."""

    name: str
    style: str
    variant: int
    seed: int
    bpm: float                  # nominal tempo (bpm of the notated beat at the start)
    beats_per_bar: int
    n_beats: int
    first_downbeat: int         # index of the first beat that starts a bar
    lead_ticks: int             # silence before beat 0 (ticks)
    tempo: TempoMap
    notes: list[Note]
    programs: dict[int, int]    # channel -> GM program (channel 9: drum kit)
    meta: dict = field(default_factory=dict)

    def note_tick(self, n: Note) -> int:
        base = self.lead_ticks + int(round(n.beat * TPQ))
        if n.jitter_s == 0.0:
            return base
        sec_per_tick = 60.0 / self.tempo.bpm_at(base) / TPQ
        return max(0, base + int(round(n.jitter_s / sec_per_tick)))

    @property
    def end_tick(self) -> int:
        return self.lead_ticks + self.n_beats * TPQ

    @property
    def beats(self) -> np.ndarray:
        """Annotated beat times (s) of the score (before any renderer latency)."""
        return self.tempo.seconds(self.lead_ticks + np.arange(self.n_beats) * TPQ)

    @property
    def downbeats(self) -> np.ndarray:
        return self.beats[self.first_downbeat::self.beats_per_bar]

    @property
    def duration(self) -> float:
        return float(self.tempo.seconds(self.end_tick))

    def anchor_beats(self) -> np.ndarray:
        """Indices of beats on which a sharp-attack drum (kick, snare, clave...) is notated."""
        idx = {int(round(n.beat)) for n in self.notes
               if n.channel == DRUMS and n.pitch in ANCHOR_KEYS and abs(n.beat - round(n.beat)) < 1e-9}
        return np.array(sorted(i for i in idx if 0 <= i < self.n_beats), dtype=np.int64)


def derive_seed(*parts) -> int:
    """A stable 32-bit seed from strings and ints (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


class Song:
    """The composing desk the style functions write on: bar/position addressing, swing, harmony,
    which bars have drums, and the tempo curve."""

    def __init__(self, rng: np.random.Generator, bpm: float, beats_per_bar: int, n_bars: int,
                 *, mode: str | None = None) -> None:
        self.rng = rng
        self.bpm = float(bpm)
        self.bpb = int(beats_per_bar)
        self.n_bars = int(n_bars)
        self.swing = 0.0            # delay of the off-beat 8th, as a fraction of an 8th
        self.swing16 = 0.0          # delay of the off-beat 16ths, as a fraction of a 16th
        self.key = int(rng.integers(0, 12))
        self.mode = mode or ("major" if rng.random() < 0.5 else "minor")
        progs = PROGRESSIONS[self.mode]
        self.progression = progs[int(rng.integers(len(progs)))]
        self.bars_per_chord = 1 if self.n_bars < 10 or rng.random() < 0.6 else 2
        self.drum_bars = set(range(self.n_bars))
        self.programs: dict[int, int] = {DRUMS: KITS["standard"]}
        self.notes: list[Note] = []
        #: tempo curve: bpm as a function of the beat (float) -> None means constant
        self.tempo_curve: Callable[[float], float] | None = None

    # -- time --------------------------------------------------------------------------------
    def beat(self, bar: int, pos: float) -> float:
        """Notated beat of ``pos`` (beats) in ``bar``, swing applied to off-beat 8ths/16ths."""
        whole = np.floor(pos + 1e-9)
        frac = pos - whole
        if self.swing and abs(frac - 0.5) < 1e-9:
            frac = 0.5 + 0.5 * self.swing
        elif self.swing16 and (abs(frac - 0.25) < 1e-9 or abs(frac - 0.75) < 1e-9):
            frac = frac + 0.25 * self.swing16
        return bar * self.bpb + whole + frac

    # -- harmony -----------------------------------------------------------------------------
    def degree_pitch(self, degree: int, octave: int) -> int:
        scale = MAJOR if self.mode == "major" else MINOR
        d = degree - 1
        return 12 * (octave + 1) + self.key + scale[d % 7] + 12 * (d // 7)

    def chord(self, bar: int, octave: int = 4, size: int = 3) -> list[int]:
        deg = self.progression[(bar // self.bars_per_chord) % len(self.progression)]
        return [self.degree_pitch(deg + 2 * i, octave) for i in range(size)]

    def root(self, bar: int, octave: int = 2) -> int:
        deg = self.progression[(bar // self.bars_per_chord) % len(self.progression)]
        return self.degree_pitch(deg, octave)

    # -- writing -----------------------------------------------------------------------------
    def hit(self, bar: int, pos: float, key: int, vel: float, length: float = 0.25) -> None:
        if bar in self.drum_bars:
            self.notes.append(Note(self.beat(bar, pos), length, key, int(vel), DRUMS))

    def hits(self, bar: int, positions, key: int, vel: float, accent: float = 1.0) -> None:
        for p in positions:
            v = vel * (accent if abs(p - round(p)) < 1e-9 else 1.0)
            self.hit(bar, p, key, v)

    def note(self, channel: int, bar: int, pos: float, length: float, pitch: int, vel: float) -> None:
        self.notes.append(Note(self.beat(bar, pos), length, int(pitch), int(vel), channel))

    def chord_hit(self, channel: int, bar: int, pos: float, length: float, pitches, vel: float) -> None:
        for p in pitches:
            self.note(channel, bar, pos, length, p, vel)

    def pad(self, bar: int, vel: float = 70, octave: int = 4, size: int = 3) -> None:
        """A sustained chord over the whole bar (tonal content without attacks on beats)."""
        self.chord_hit(PAD, bar, 0.0, self.bpb - 0.05, self.chord(bar, octave, size), vel)

    def melody(self, bar: int, rhythm, vel: float = 90, octave: int = 5, legato: float = 0.95) -> None:
        """A lead line on chord tones and scale steps; ``rhythm`` = [(pos, length)]."""
        deg = self.progression[(bar // self.bars_per_chord) % len(self.progression)]
        for pos, length in rhythm:
            step = int(self.rng.choice([0, 2, 4, 1, 7, 5]))
            self.note(LEAD, bar, pos, length * legato, self.degree_pitch(deg + step, octave), vel)


# --------------------------------------------------------------------------------------------
# Style patterns. Positions are beats within the bar; every function writes all bars of a Song.
# --------------------------------------------------------------------------------------------

def _choose(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _tonal_layers(s: Song, bar: int, *, pad: bool, lead: bool, pad_vel: float = 62) -> None:
    if pad:
        s.pad(bar, pad_vel)
    if lead and bar % 2 == 0:
        rhythm = _choose(s.rng, [[(0.5, 1.5), (2.0, 2.0)], [(0.0, 3.0), (3.5, 0.5)],
                                 [(1.5, 1.0), (2.5, 1.5)], [(0.0, 1.0), (1.0, 1.0), (2.5, 1.5)]])
        s.melody(bar, [(p, l) for p, l in rhythm if p + l <= s.bpb], vel=88)


def house(s: Song, v: int) -> None:
    """Four on the floor, open hats and chord stabs on the off-beats, claps on 2 and 4: the
    pattern on which a broadband onset function locks half a beat late."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["electronic"], KITS["tr808"], KITS["standard"]]),
                       BASS: _choose(rng, [38, 39, 33]), CHORDS: _choose(rng, [4, 16, 0, 81]),
                       PAD: _choose(rng, [89, 88, 50]), LEAD: _choose(rng, [53, 54, 85])})
    sixteenths = v % 2 == 1
    stabs = rng.random() < 0.7
    for b in range(s.n_bars):
        s.hits(b, [0, 1, 2, 3], KICK, 112)
        s.hits(b, [0.5, 1.5, 2.5, 3.5], OPEN_HAT, 100)
        s.hits(b, [1, 3], CLAP, 96)
        if sixteenths:
            s.hits(b, [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75], HAT, 70)
        r = s.root(b)
        for p in (0.5, 1.5, 2.5, 3.5):
            s.note(BASS, b, p, 0.4, r + (12 if p == 2.5 and v % 3 == 0 else 0), 100)
        if stabs:
            for p in (0.5, 1.5, 2.5, 3.5) if v % 2 == 0 else (0.5, 1.75, 2.5, 3.75):
                s.chord_hit(CHORDS, b, p, 0.3, s.chord(b, 4), 92)
        _tonal_layers(s, b, pad=not stabs or v >= 3, lead=v % 3 == 2)


def disco(s: Song, v: int) -> None:
    """Four on the floor, 8th or 16th hats with the open hat on every off-beat, octave bass on
    8ths (the high octave on the off-beats), snare on 2 and 4, strings and guitar chops."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["standard"], KITS["room"]]),
                       BASS: _choose(rng, [33, 34, 38]), CHORDS: _choose(rng, [27, 28, 4]),
                       PAD: _choose(rng, [48, 49, 50]), LEAD: _choose(rng, [61, 56, 52])})
    for b in range(s.n_bars):
        s.hits(b, [0, 1, 2, 3], KICK, 108)
        s.hits(b, [1, 3], SNARE, 100)
        s.hits(b, [0.5, 1.5, 2.5, 3.5], OPEN_HAT, 96)
        s.hits(b, [0, 1, 2, 3] + ([0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75] if v % 2 else []),
               HAT, 66)
        if v % 3 == 1:
            s.hits(b, [0.5, 1.5, 2.5, 3.5], TAMB, 70)
        r = s.root(b)
        for i in range(8):
            s.note(BASS, b, i * 0.5, 0.4, r + (12 if i % 2 else 0), 100 if i % 2 else 92)
        for p in (0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75):
            if rng.random() < 0.6:
                s.chord_hit(CHORDS, b, p, 0.15, s.chord(b, 4), 70)
        _tonal_layers(s, b, pad=True, lead=v % 2 == 0, pad_vel=66)


def backbeat(s: Song, v: int) -> None:
    """Pop/rock: kick on 1 and 3 (sometimes 3-and), snare on 2 and 4, 8th hats or ride,
    a crash every four bars, root 8ths on the bass, chords on the beats or held."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["standard"], KITS["room"], KITS["power"]]),
                       BASS: _choose(rng, [33, 34, 32]), CHORDS: _choose(rng, [0, 29, 25, 30, 4]),
                       PAD: _choose(rng, [48, 89, 19]), LEAD: _choose(rng, [52, 65, 73, 53])})
    kick = _choose(rng, [[0, 2], [0, 2, 2.5], [0, 1.5, 2], [0, 0.5, 2]])
    cymbal = RIDE if v % 4 == 3 else HAT
    for b in range(s.n_bars):
        s.hits(b, kick, KICK, 110)
        s.hits(b, [1, 3], SNARE, 108)
        s.hits(b, [i * 0.5 for i in range(8)], cymbal, 72, accent=1.25)
        if b % 4 == 0:
            s.hit(b, 0, CRASH, 96)
        r = s.root(b)
        for i in range(8):
            s.note(BASS, b, i * 0.5, 0.45, r, 96)
        if v % 2 == 0:
            for p in (0, 1, 2, 3):
                s.chord_hit(CHORDS, b, p, 0.9, s.chord(b, 4), 80)
        else:
            s.chord_hit(CHORDS, b, 0, 1.4, s.chord(b, 4), 84)
            s.chord_hit(CHORDS, b, 1.5, 2.4, s.chord(b, 4), 78)
        _tonal_layers(s, b, pad=v % 3 == 1, lead=v % 2 == 1)


def funk(s: Song, v: int) -> None:
    """Syncopated kick (1, 1-a, 3-and ...), snare 2 and 4 with ghost notes, 16th hats, slap bass
    and clav-like stabs on 16th off-beats: many onsets between the beats."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["standard"], KITS["room"]]),
                       BASS: _choose(rng, [36, 37, 33]), CHORDS: _choose(rng, [7, 27, 4]),
                       PAD: _choose(rng, [61, 62, 16]), LEAD: _choose(rng, [61, 65, 56])})
    kicks = _choose(rng, [[0, 0.75, 2.5], [0, 1.75, 2.5, 3.25], [0, 0.5, 2.25, 2.75], [0, 2, 2.75]])
    ghosts = [p for p in (0.75, 1.75, 2.25, 3.25, 3.75) if rng.random() < 0.6 and p not in kicks]
    bass_rhythm = _choose(rng, [[0, 0.75, 1.5, 2.5, 3.25], [0, 0.5, 1.75, 2.5, 3.5], [0, 1.25, 2, 2.75, 3.5]])
    for b in range(s.n_bars):
        s.hits(b, kicks, KICK, 112)
        s.hits(b, [1, 3], SNARE, 110)
        s.hits(b, ghosts, SNARE, 38)
        s.hits(b, [i * 0.25 for i in range(16)], HAT, 60, accent=1.4)
        r = s.root(b)
        for p in bass_rhythm:
            s.note(BASS, b, p, 0.2, r + (12 if p in (1.5, 3.5) else 0), 104)
        for p in (0.25, 0.75, 1.5, 2.25, 3.5):
            if rng.random() < 0.7:
                s.chord_hit(CHORDS, b, p, 0.12, s.chord(b, 4), 86)
        _tonal_layers(s, b, pad=v % 3 == 0, lead=v % 3 == 1)


def breakbeat(s: Song, v: int) -> None:
    """Breaks: a two-bar syncopated kick/snare figure (snares on 2 and 4 plus pushed hits),
    busy 8th or 16th hats and ride, a syncopated sub bass."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["standard"], KITS["room"], KITS["power"]]),
                       BASS: _choose(rng, [38, 39, 34]), CHORDS: _choose(rng, [4, 90, 16]),
                       PAD: _choose(rng, [89, 94, 50]), LEAD: _choose(rng, [54, 81, 85])})
    figures = [
        ([[0, 0.5, 2.5], [0.5, 2.25, 2.5]], [[1, 1.75, 3, 3.75], [1, 1.75, 3, 3.75]]),   # "amen"-like
        ([[0, 0.75, 2.25], [0, 1.5, 2.5]], [[1, 3, 3.5], [1, 2.75, 3]]),                  # funky drummer-ish
        ([[0, 1.5, 2.5], [0, 0.75, 2.5, 3.25]], [[1, 3], [1, 3.5]]),                      # 2-step breaks
    ]
    kicks, snares = figures[v % len(figures)]
    for b in range(s.n_bars):
        s.hits(b, kicks[b % 2], KICK, 112)
        s.hits(b, snares[b % 2], SNARE, 104, accent=1.05)
        step = 0.25 if v % 2 else 0.5
        s.hits(b, list(np.arange(0, 4, step)), HAT if v % 3 else RIDE, 64, accent=1.3)
        r = s.root(b)
        for p in (0, 0.75, 2.5):
            s.note(BASS, b, p, 0.6, r, 100)
        _tonal_layers(s, b, pad=True, lead=v % 2 == 0, pad_vel=58)


def dnb(s: Song, v: int) -> None:
    """Drum and bass at 170-176 bpm: two-step kick (1 and 3-and) and snare on 2 and 4, 8th hats or
    ride, a long sustained reese/sub bass and pads: the tempo octave trap (85 vs 170)."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["electronic"], KITS["standard"], KITS["tr808"]]),
                       BASS: _choose(rng, [38, 39, 87]), CHORDS: _choose(rng, [4, 11, 88]),
                       PAD: _choose(rng, [89, 94, 91, 92]), LEAD: _choose(rng, [54, 91, 53])})
    kicks = _choose(rng, [[0, 2.5], [0, 2.25], [0, 1.75, 2.5]])
    for b in range(s.n_bars):
        s.hits(b, kicks, KICK, 114)
        s.hits(b, [1, 3], SNARE, 110)
        if v % 2:
            s.hits(b, [1.75, 3.25], SNARE, 40)   # ghosts
        s.hits(b, [i * 0.5 for i in range(8)], HAT if v % 3 else RIDE, 66, accent=0.8)
        if v % 3 == 2:
            s.hits(b, [i * 0.25 for i in range(16)], SHAKER, 45)
        if b % 2 == 0:
            s.note(BASS, b, 0, 2 * s.bpb - 0.1, s.root(b), 100)
        _tonal_layers(s, b, pad=True, lead=v % 2 == 0, pad_vel=64)


def trap(s: Song, v: int) -> None:
    """Half-time trap, notated at 130-150 bpm: snare/clap only on beat 3, 808 kicks and long 808
    bass, hats in 8ths with 16th and triplet rolls: the tempo octave trap the other way."""
    rng = s.rng
    s.programs.update({DRUMS: KITS["tr808"] if v % 3 else KITS["electronic"],
                       BASS: _choose(rng, [38, 39]), CHORDS: _choose(rng, [11, 10, 8, 0]),
                       PAD: _choose(rng, [89, 94, 52]), LEAD: _choose(rng, [79, 72, 54])})
    for b in range(s.n_bars):
        kicks = _choose(rng, [[0, 0.75, 2.5], [0, 1.5, 3.25], [0, 0.5, 1.75, 3.5]])
        s.hits(b, kicks, KICK, 116)
        s.hits(b, [2], CLAP if v % 2 else SNARE, 112)
        if v % 2 == 0:
            s.hit(b, 2, SNARE, 90)
        hats = [i * 0.5 for i in range(8)]
        if b % 2 == 1:   # a roll in the second half of every other bar
            roll = _choose(rng, [[3 + i / 4 for i in range(4)], [3 + i / 6 for i in range(6)],
                                 [2.5 + i / 4 for i in range(6)]])
            hats = [h for h in hats if h < roll[0]] + roll
        s.hits(b, hats, HAT, 74, accent=1.15)
        s.note(BASS, b, 0, 2.4, s.root(b, 1), 110)
        if 2.5 in kicks or 3.5 in kicks:
            s.note(BASS, b, max(k for k in kicks if k > 2), 0.9, s.root(b, 1) + 7, 96)
        for i, p in enumerate((0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5)):   # bell/piano arpeggio in 8ths
            if v % 3 != 1:
                s.note(ARP, b, p, 0.45, s.chord(b, 5)[i % 3], 62)
        _tonal_layers(s, b, pad=v % 2 == 1, lead=False)
    s.programs[ARP] = _choose(rng, [11, 10, 8])


def reggae(s: Song, v: int) -> None:
    """One drop: kick with rim/snare only on beat 3, nothing on 1; skank chords and hats on the
    off-beats; a melodic bass that rests on the downbeat. Notated at 68-84 bpm."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["standard"], KITS["room"]]),
                       BASS: _choose(rng, [33, 34, 38]), CHORDS: _choose(rng, [27, 16, 18]),
                       PAD: _choose(rng, [16, 17, 48]), LEAD: _choose(rng, [56, 65, 53])})
    for b in range(s.n_bars):
        s.hits(b, [2], KICK, 112)
        s.hits(b, [2], STICK if v % 2 else SNARE, 104)
        s.hits(b, [0.5, 1.5, 2.5, 3.5] if v % 3 else [i * 0.5 for i in range(8)], HAT, 72)
        if v % 3 == 2:
            s.hits(b, [0.75, 3.75], OPEN_HAT, 60)
        for p in (0.5, 1.5, 2.5, 3.5):
            s.chord_hit(CHORDS, b, p, 0.2, s.chord(b, 4), 88)
        if v % 2 == 0:   # organ bubble
            for p in (0.75, 1.75, 2.75, 3.75):
                s.chord_hit(ARP, b, p, 0.2, s.chord(b, 3), 60)
        r = s.root(b)
        for p, d, o in ((0.5, 0.4, 0), (1.0, 0.4, 7), (1.5, 0.9, 12), (2.5, 0.4, 7), (3.0, 0.9, 3)):
            s.note(BASS, b, p, d, r + o, 100)
        _tonal_layers(s, b, pad=False, lead=v % 3 == 0)
    s.programs[ARP] = 16


def swing(s: Song, v: int) -> None:
    """Swing and shuffle: jazz ride "ding, ding-a ding" with hi-hat on 2 and 4 and walking bass
    (odd variants), or a shuffle backbeat with triplet-swung hats (even variants). Swing amount
    varies from light to full triplet."""
    rng = s.rng
    s.swing = float(rng.uniform(0.12, 1.0 / 3.0))
    jazz = v % 2 == 1
    s.programs.update({DRUMS: _choose(rng, [KITS["jazz"], KITS["brush"]]) if jazz else
                       _choose(rng, [KITS["standard"], KITS["room"]]),
                       BASS: 32 if jazz else _choose(rng, [33, 34]), CHORDS: _choose(rng, [0, 4, 26]),
                       PAD: _choose(rng, [16, 61, 48]), LEAD: _choose(rng, [65, 56, 66, 11])})
    for b in range(s.n_bars):
        if jazz:
            s.hits(b, [0, 1, 1.5, 2, 3, 3.5], RIDE, 84, accent=1.1)
            s.hits(b, [1, 3], PEDAL_HAT, 80)
            s.hits(b, [0, 2], KICK, 70)           # feathered bass drum
            s.hits(b, [1, 3], STICK, 64)
            chord = s.chord(b, 2, 4)
            walk = [chord[0], chord[1], chord[2], chord[0] + 11]
            for i in range(s.bpb):
                s.note(BASS, b, i, 0.9, walk[i], 96)
            for p in _choose(rng, [[1.5, 3], [0.5, 2.5], [1, 2.5, 3.5]]):
                s.chord_hit(CHORDS, b, p, 0.4, s.chord(b, 4, 4), 76)
        else:
            s.hits(b, [0, 2, 2.5] if v % 4 == 2 else [0, 2], KICK, 108)
            s.hits(b, [1, 3], SNARE, 104)
            s.hits(b, [i * 0.5 for i in range(8)], HAT, 74, accent=1.2)
            r = s.root(b)
            for i in range(8):   # boogie shuffle bass
                s.note(BASS, b, i * 0.5, 0.4, r + (0, 0, 4 if s.mode == "major" else 3, 4, 7, 7, 9, 7)[i], 94)
            s.chord_hit(CHORDS, b, 0.5, 0.3, s.chord(b, 4), 70)
            s.chord_hit(CHORDS, b, 2.5, 0.3, s.chord(b, 4), 70)
        _tonal_layers(s, b, pad=v % 3 == 2, lead=v % 3 == 0)


def waltz(s: Song, v: int) -> None:
    """3/4: bass on 1, chords on 2 and 3 (oom-pah-pah), light drums (kick 1, snare/brush 2 and 3),
    strings/accordion/piano, a legato melody."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["brush"], KITS["standard"], KITS["jazz"]]),
                       BASS: _choose(rng, [32, 58, 43]), CHORDS: _choose(rng, [0, 21, 24, 46]),
                       PAD: _choose(rng, [48, 49, 52]), LEAD: _choose(rng, [40, 73, 71, 21])})
    for b in range(s.n_bars):
        s.hits(b, [0], KICK, 100)
        s.hits(b, [1, 2], STICK if v % 2 else SNARE, 70)
        if v % 3 == 0:
            s.hits(b, [0.5, 1.5, 2.5], HAT, 48)
        s.note(BASS, b, 0, 0.9, s.root(b), 100)
        for p in (1, 2):
            s.chord_hit(CHORDS, b, p, 0.7, s.chord(b, 4), 78)
        if v % 2 == 0:
            s.pad(b, 56)
        s.melody(b, _choose(rng, [[(0, 2), (2, 1)], [(0, 1), (1, 1), (2, 1)], [(0, 3)],
                                  [(0, 1.5), (1.5, 0.5), (2, 1)]]), vel=84)


def six_eight(s: Song, v: int) -> None:
    """6/8 counted in dotted quarters (2 beats per bar, 3 eighths per beat): kick on 1, snare on
    the second dotted quarter, eighth hats, arpeggiated chords in eighths (ballad, folk, blues)."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["standard"], KITS["room"], KITS["brush"]]),
                       BASS: _choose(rng, [33, 32, 34]), CHORDS: _choose(rng, [0, 24, 25, 46]),
                       PAD: _choose(rng, [48, 49, 89]), LEAD: _choose(rng, [73, 52, 65, 22])})
    e = 1.0 / 3.0
    for b in range(s.n_bars):
        s.hits(b, [0] if v % 2 else [0, 5 * e], KICK, 108)
        s.hits(b, [1], SNARE, 104)
        s.hits(b, [i * e for i in range(6)], HAT if v % 3 else RIDE, 66, accent=1.25)
        s.note(BASS, b, 0, 0.95, s.root(b), 98)
        s.note(BASS, b, 1, 0.95, s.root(b) + 7, 90)
        chord = s.chord(b, 4)
        for i in range(6):
            s.note(ARP, b, i * e, e * 0.95, (chord + [chord[0] + 12, chord[1] + 12, chord[2] + 12])[
                (0, 1, 2, 3, 2, 1)[i]], 74)
        _tonal_layers(s, b, pad=v % 2 == 0, lead=False)
        if b % 2 == 0:
            s.melody(b, [(0, 1), (1, 1)], vel=84)
    s.programs[ARP] = s.programs[CHORDS]


def latin(s: Song, v: int) -> None:
    """Son or rumba clave (3-2 or 2-3) on claves, tumbao conga and the anticipated tumbao bass
    (on 2-and and 4, never on 1), piano montuno in syncopated 8ths, cowbell or guiro, kick on 4."""
    rng = s.rng
    s.programs.update({DRUMS: _choose(rng, [KITS["standard"], KITS["room"]]),
                       BASS: _choose(rng, [32, 33]), CHORDS: _choose(rng, [0, 1, 4]),
                       PAD: _choose(rng, [61, 48]), LEAD: _choose(rng, [56, 73, 65])})
    son = [0, 1.5, 3, 5, 6]
    rumba = [0, 1.5, 3.5, 5, 6]
    clave = son if v % 2 == 0 else rumba
    if v % 3 == 1:   # 2-3 clave
        clave = sorted((c + 4) % 8 for c in clave)
    for b in range(s.n_bars):
        s.hits(b, [c - 4 * (b % 2) for c in clave if 4 * (b % 2) <= c < 4 * (b % 2) + 4], CLAVES, 104)
        s.hits(b, [1, 3], CONGA_MUTE, 92)            # slaps on 2 and 4
        s.hits(b, [3.5], CONGA_OPEN, 100)
        s.hits(b, [3.75], CONGA_LO, 90)
        s.hits(b, [0, 0.5, 2, 2.5], CONGA_MUTE, 50)   # heel-toe
        s.hits(b, [1.5, 3], KICK, 96)
        if v % 2:
            s.hits(b, [0, 1, 2, 3], COWBELL, 84)
        else:
            s.hits(b, [i * 0.5 for i in range(8)], GUIRO if v % 3 == 0 else MARACAS, 58)
        r = s.root(b)
        s.note(BASS, b, 1.5, 1.4, r + 7, 104)
        s.note(BASS, b, 3, 1.4, r + 12 if b % 2 else r, 104)
        chord = s.chord(b, 4)
        montuno = _choose(rng, [[0, 0.5, 1.5, 2, 3, 3.5], [0.5, 1, 2, 2.5, 3.5]])
        for i, p in enumerate(montuno):
            s.chord_hit(CHORDS, b, p, 0.35, [chord[i % 3], chord[i % 3] + 12], 84)
        _tonal_layers(s, b, pad=v % 3 == 2, lead=v % 3 == 0)


def breakdown(s: Song, v: int) -> None:
    """An intro of 4-8 bars with no drums (pad and bass, sometimes a pulsing chord) before the
    groove comes in, and for longer excerpts a 2-4 bar breakdown in the middle: the tracker must
    keep the phase through tonal-only sections."""
    rng = s.rng
    intro = int(min(s.n_bars // 2, _choose(rng, [4, 6, 8])))
    drum_bars = set(range(intro, s.n_bars))
    if s.n_bars - intro >= 8 and v % 2 == 1:
        start = intro + 4
        drum_bars -= set(range(start, start + 2 + int(rng.integers(0, 3))))
    s.drum_bars = drum_bars
    groove = house if v % 3 == 0 else backbeat if v % 3 == 1 else funk
    groove(s, v)
    s.meta_intro_bars = intro


def ramp(s: Song, v: int) -> None:
    """Accelerando or ritardando over the middle of the excerpt (tempo changes every 16th, so
    the MIDI tempo map is a staircase fine enough to be a ramp; the beats are exact on it)."""
    rng = s.rng
    factor = float(rng.uniform(1.15, 1.35))
    up = v % 2 == 0
    total = s.n_bars * s.bpb
    a, z = total * 0.2, total * 0.8
    start = s.bpm
    end = start * factor if up else start / factor

    def curve(beat: float) -> float:
        u = min(max((beat - a) / (z - a), 0.0), 1.0)
        return start * (end / start) ** u   # geometric: perceptually even

    s.tempo_curve = curve
    s.meta_tempo_end = end
    groove = backbeat if v % 3 != 2 else house
    groove(s, v)


def tonal(s: Song, v: int) -> None:
    """Sustained tonal content over the drums: loud pads, choir/voice-like leads with slow attacks,
    legato bass lines, quiet drums (their velocities are lowered after writing)."""
    rng = s.rng
    groove = backbeat if v % 2 == 0 else house
    groove(s, v)
    s.programs.update({PAD: _choose(rng, [52, 91, 89, 49]), LEAD: _choose(rng, [53, 52, 54, 85])})
    notes = [n for n in s.notes if n.channel not in (PAD, LEAD)]
    s.notes = [Note(n.beat, n.length, n.pitch, int(n.velocity * 0.6), n.channel)
               if n.channel == DRUMS else n for n in notes]
    for b in range(s.n_bars):
        s.pad(b, 110, octave=4, size=4)
        s.pad(b, 96, octave=3, size=3)
        s.melody(b, _choose(rng, [[(0, 2), (2, 2)], [(0.5, 3.5)], [(0, 1.5), (1.5, 2.5)]]), vel=112,
                 legato=1.0)


@dataclass(frozen=True)
class Style:
    name: str
    fn: Callable[[Song, int], None]
    bpm: tuple[float, float]
    beats_per_bar: int = 4
    desc: str = ""


STYLES: dict[str, Style] = {st.name: st for st in [
    Style("house", house, (118, 128), desc="four on the floor, off-beat open hats and stabs, claps 2/4"),
    Style("disco", disco, (110, 126), desc="four on the floor, octave bass, off-beat open hats"),
    Style("backbeat", backbeat, (84, 140), desc="pop/rock: kick 1 and 3, snare 2 and 4"),
    Style("funk", funk, (92, 112), desc="syncopated kick, ghost notes, 16th hats, slap bass"),
    Style("breakbeat", breakbeat, (126, 140), desc="syncopated two-bar break figures"),
    Style("dnb", dnb, (170, 176), desc="drum and bass: two-step at 170-176 bpm"),
    Style("trap", trap, (130, 150), desc="half-time trap: snare on 3, 808, hat rolls"),
    Style("reggae", reggae, (68, 84), desc="one drop: kick+rim on 3, off-beat skank"),
    Style("swing", swing, (96, 176), desc="jazz ride/walking bass and shuffle backbeat, swung 8ths"),
    Style("waltz", waltz, (90, 170), 3, desc="3/4 oom-pah-pah"),
    Style("six_eight", six_eight, (52, 72), 2, desc="6/8, beat = dotted quarter, 2 per bar"),
    Style("latin", latin, (92, 124), desc="son/rumba clave, tumbao bass and congas"),
    Style("breakdown", breakdown, (100, 128), desc="drumless intro (4-8 bars) and breakdowns"),
    Style("ramp", ramp, (88, 120), desc="accelerando / ritardando by 15-35 %"),
    Style("tonal", tonal, (90, 128), desc="loud pads, voice-like leads, quiet drums"),
]}


def _tempo_map(s: Song, lead_ticks: int, n_beats: int) -> TempoMap:
    """Integer-microsecond tempo map: constant, or a 16th-note staircase following the curve."""
    if s.tempo_curve is None:
        return TempoMap([(0, int(round(60e6 / s.bpm)))])
    segs: list[tuple[int, int]] = [(0, int(round(60e6 / s.tempo_curve(0.0))))]
    step = TPQ // 4
    for k in range(0, n_beats * 4 + 4):
        beat = k / 4
        us = int(round(60e6 / s.tempo_curve(beat + 0.125)))
        tick = lead_ticks + k * step
        if us != segs[-1][1]:
            segs.append((tick, us))
    return TempoMap(segs)


def compose(style: str, variant: int, seed: int = 0, *, duration: tuple[float, float] = (20.0, 28.0),
            humanise: bool | None = None) -> Composition:
    """The excerpt ``variant`` of ``style``: deterministic in ``(style, variant, seed)``.

    ``duration`` bounds the length in seconds (whole bars; a pick-up may shorten the first bar).
    """
    st = STYLES[style]
    rng = np.random.default_rng(derive_seed("beat_corpus", style, variant, seed))
    bpm = float(np.round(rng.uniform(*st.bpm), 1))
    bar_s = 60.0 / bpm * st.beats_per_bar
    target = rng.uniform(*duration)
    n_bars = max(4, int(round(target / bar_s)))
    if style == "ramp":   # the ramp changes the bar length: size from the mean tempo
        n_bars = max(4, int(round(target / (bar_s / 1.12))))
    s = Song(rng, bpm, st.beats_per_bar, n_bars + 1)   # one extra bar: the pick-up is cut from it
    st.fn(s, variant)
    if humanise is None:
        humanise = variant % 2 == 0
    pickup = int(rng.integers(1, st.beats_per_bar)) if rng.random() < 0.5 else 0
    # cut the pick-up: drop notes before it and move everything so that beat `pickup` is beat 0;
    # drop the extra bar at the end.
    n_beats = n_bars * st.beats_per_bar
    lead_ticks = int(round(rng.uniform(0.25, 1.0) * 4)) * TPQ // 4
    vel_spread = 0.12 if humanise else 0.0
    notes: list[Note] = []
    for n in sorted(s.notes, key=lambda n: (n.beat, n.channel, n.pitch)):
        beat = n.beat - pickup
        if beat < -1e-9 or beat >= n_beats - 1e-9:
            continue
        length = min(n.length, n_beats - beat)
        vel = n.velocity * (1.0 + vel_spread * rng.standard_normal()) if humanise else n.velocity
        jitter = float(rng.uniform(-MAX_JITTER_S, MAX_JITTER_S)) if humanise else 0.0
        notes.append(Note(beat, length, n.pitch, int(np.clip(round(vel), 20, 127)), n.channel, jitter))
    if s.tempo_curve is not None:
        curve = s.tempo_curve
        s.tempo_curve = lambda beat: curve(beat + pickup)
    tempo = _tempo_map(s, lead_ticks, n_beats)
    meta = {"swing": round(s.swing, 4), "humanise": bool(humanise), "key": s.key, "mode": s.mode,
            "pickup": pickup, "progression": list(s.progression), "desc": st.desc}
    for k in ("meta_intro_bars", "meta_tempo_end"):
        if hasattr(s, k):
            meta[k[5:]] = getattr(s, k)
    return Composition(name=f"{style}_{variant}", style=style, variant=variant, seed=seed,
                       bpm=float(tempo.bpm_at(lead_ticks)), beats_per_bar=st.beats_per_bar,
                       n_beats=n_beats, first_downbeat=(st.beats_per_bar - pickup) % st.beats_per_bar,
                       lead_ticks=lead_ticks, tempo=tempo, notes=notes,
                       programs=dict(s.programs), meta=meta)


def composition_events(c: Composition, channels=None):
    """MIDI events of ``c`` (only ``channels`` if given): tempo map, programs, notes."""
    from .midi import control_event, note_events, program_event, tempo_event
    events = [tempo_event(t, us) for t, us in c.tempo.segments]
    for ch, prog in c.programs.items():
        if channels is None or ch in channels:
            events.append(program_event(0, ch, prog))
            events.append(control_event(0, ch, 7, 100))   # channel volume
    for n in c.notes:
        if channels is not None and n.channel not in channels:
            continue
        tick = c.note_tick(n)
        events += note_events(tick, int(round(n.length * TPQ)), n.channel, n.pitch, n.velocity)
    return events
