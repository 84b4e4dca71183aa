"""The creator's hand on the beat grid: move it, halve or double its tempo, set a BPM, or give the beats.

The tracker (:func:`dabfusion.music.analyze_beats`) is right most of the time, but not always: it can
lock onto the off-beat (hi-hats between the kicks), count at half or double the tempo, or simply not
be what a creator wants to dance to. :class:`BeatGridEdit` is a small frozen value that says how to
change its grid, and :meth:`BeatGridEdit.apply` turns the tracker's :class:`~.beats.BeatAnalysis`
into a new one with the edited beats, tempo and bar phase (the onset data is untouched). Every part
of a run that needs the grid reads the *edited* analysis (the diffusion's beat clock and per-sample
beat features, best-of-N scoring, Beat Alignment, the beat overlay), and the tracker's raw
analysis is what is cached (:func:`tracked_analysis`), so an edit never leaks into another run.

Order of operations (each step works on the result of the one before):

1. the source of the grid: the tracker's beats, or a **beat list** (``beats``: replaces the
   tracker; tempo = 60 / median interval; bar phase from a beat marked as a downbeat, else the
   first beat starts a bar), or a **BPM** (``bpm``: a regular grid at that tempo over the whole
   music, its phase put where the music's attacks are strongest; bars where the strongest beats
   are). A list and a BPM together are refused;
2. **tempo**: ``"halve"`` keeps every other beat (the set holding the downbeats), ``"double"``
   puts a beat half-way between each pair (and one half a beat before the first / after the last
   where the music has room);
3. **offset** (``offset_beats``, in beats of the grid from step 2): every beat moves by that many
   local beat periods (interpolated along the grid, extrapolated with its median period past its
   ends); 0.5 puts the grid on the off-beats, -0.5 back; bars move with their beats. Beats that
   leave the music are dropped.

Beat lists come from files or text (:func:`read_beat_file`, :func:`parse_beat_list`): one time in
seconds per line (blank lines and ``#`` comments allowed; anything after the time on a line, e.g.
Audacity label-track columns or a ``time,label`` CSV marker export, is a label; a label with the
word "downbeat" or "bar" marks a bar start), several comma-separated times on a line, or a JSON list
of numbers or of objects with a ``"time"`` (and optionally ``"downbeat": true``). A list that is
empty, unsorted, non-numeric, or outside the music gets a one-line :class:`~dabfusion.errors.BeatGridError`
naming the file and the line.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import BeatGridError
from .embedding_cache import LRUCache

#: The tempo choices (``BeatGridEdit.tempo``), as the node's combo and the CLI offer them.
TEMPO_CHOICES: tuple[str, ...] = ("as tracked", "halve", "double")
_TEMPO_ALIASES = {"as tracked": "as tracked", "as_tracked": "as tracked", "tracked": "as tracked",
                  "keep": "as tracked", "none": "as tracked", "": "as tracked",
                  "halve": "halve", "half": "halve", "double": "double"}
#: A BPM outside this range is refused (a typo, not a tempo).
BPM_RANGE = (10.0, 1000.0)
#: A beat list may reach this far (s) past the music's end (rounding in a DAW's export).
END_SLACK = 0.005
#: Phase resolution (s) when a BPM grid is fitted to the music.
_PHASE_STEP = 0.004
_DOWNBEAT_WORDS = re.compile(r"\b(downbeat|down|bar)\b", re.IGNORECASE)
_HEADER_WORDS = {"time", "times", "seconds", "second", "sec", "s", "start", "position", "beat", "beats",
                 "onset", "#"}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BeatGridEdit:
    """How to change the tracker's beat grid (see the module docstring for the order of operations).

    ``offset_beats``: move the grid by this many beats (0.5 = onto the off-beats). ``tempo``: one of
    :data:`TEMPO_CHOICES`. ``bpm``: a regular grid at this tempo (None or 0: the tracker's).
    ``beats``: beat times (s, from the start of the audio the edit is applied to) that replace the
    tracker; ``downbeat``: the index in ``beats`` of a beat that starts a bar; ``source``: where the
    list came from (a file name), for messages and the preview's title.
    """

    offset_beats: float = 0.0
    tempo: str = "as tracked"
    bpm: float | None = None
    beats: tuple[float, ...] | None = None
    downbeat: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            offset = float(self.offset_beats)
        except (TypeError, ValueError):
            raise BeatGridError(f"beat offset must be a number of beats, got {self.offset_beats!r}") from None
        if not math.isfinite(offset):
            raise BeatGridError(f"beat offset must be a finite number of beats, got {self.offset_beats!r}")
        set_(self, "offset_beats", offset)
        tempo = _TEMPO_ALIASES.get(str(self.tempo).strip().lower())
        if tempo is None:
            raise BeatGridError(f"tempo must be one of {', '.join(TEMPO_CHOICES)}, got {self.tempo!r}")
        set_(self, "tempo", tempo)
        bpm = self.bpm
        if bpm is not None:
            try:
                bpm = float(bpm)
            except (TypeError, ValueError):
                raise BeatGridError(f"bpm must be a number of beats per minute, got {self.bpm!r}") from None
            if bpm == 0:
                bpm = None
            elif not (math.isfinite(bpm) and BPM_RANGE[0] <= bpm <= BPM_RANGE[1]):
                raise BeatGridError(f"bpm must be between {BPM_RANGE[0]:g} and {BPM_RANGE[1]:g} "
                                    f"(0 = the tracker's tempo), got {self.bpm!r}")
        set_(self, "bpm", bpm)
        if self.beats is not None:
            b = np.asarray(self.beats, dtype=np.float64).reshape(-1)
            where = f" ({self.source})" if self.source else ""
            if not np.isfinite(b).all():
                raise BeatGridError(f"the beat list{where} holds a value that is not a finite time")
            if b.size and np.any(np.diff(b) <= 0):
                i = int(np.argmax(np.diff(b) <= 0)) + 1
                raise BeatGridError(f"the beat list{where} is not increasing: beat {i + 1} ({b[i]:.3f} s) is "
                                    f"not after beat {i} ({b[i - 1]:.3f} s)")
            set_(self, "beats", tuple(float(x) for x in b))
            if bpm is not None:
                raise BeatGridError("give either a beat list or a BPM, not both: the list replaces the tracker "
                                    "and so sets the tempo itself")
        set_(self, "downbeat", int(self.downbeat))
        set_(self, "source", str(self.source or ""))

    # ------------------------------------------------------------------ what it is

    @property
    def is_identity(self) -> bool:
        """True when applying it changes nothing (the tracker's grid as it is)."""
        return self.offset_beats == 0 and self.tempo == "as tracked" and self.bpm is None and self.beats is None

    def key(self) -> tuple:
        """A hashable, JSON-able identity for caches (None parts for the defaults)."""
        return ("beat-grid-edit-v1", round(self.offset_beats, 9), self.tempo,
                None if self.bpm is None else round(self.bpm, 9),
                None if self.beats is None else [round(t, 9) for t in self.beats], self.downbeat)

    def describe(self) -> str:
        """A few words for titles and logs, e.g. ``"128 BPM, halved, offset +0.5 beat"``."""
        parts = []
        if self.beats is not None:
            parts.append(f"{len(self.beats)} beats from {self.source or 'a list'}")
        if self.bpm is not None:
            parts.append(f"{self.bpm:g} BPM")
        if self.tempo != "as tracked":
            parts.append({"halve": "tempo halved", "double": "tempo doubled"}[self.tempo])
        if self.offset_beats:
            parts.append(f"offset {self.offset_beats:+g} beat")
        return ", ".join(parts) if parts else "as tracked"

    # ------------------------------------------------------------------ moving its beat list in time

    def shifted(self, seconds: float) -> "BeatGridEdit":
        """The same edit for the audio delayed by ``seconds`` (a beat list moves with the music)."""
        if self.beats is None or not seconds:
            return self
        return dataclasses.replace(self, beats=tuple(t + float(seconds) for t in self.beats))

    def cut(self, start: float, length: float | None = None) -> "BeatGridEdit":
        """The same edit for the part of the music from ``start`` (s) lasting ``length`` s (None: to its end).

        A beat list (in the times of the whole music file) moves to the cut's times and keeps only its
        beats inside the cut; the bar phase follows. Fewer than two beats left is an error.
        """
        if self.beats is None or (not start and length is None):
            return self
        b = np.asarray(self.beats) - float(start)
        end = np.inf if length is None else float(length) + END_SLACK
        keep = (b >= -1e-9) & (b <= end)
        if keep.sum() < 2:
            span = f"{start:.2f} s .. {'the end' if length is None else f'{start + length:.2f} s'}"
            raise BeatGridError(f"the beat list{f' ({self.source})' if self.source else ''} has "
                                f"{int(keep.sum())} beat(s) in the music used ({span}): a beat grid needs two")
        first = int(np.argmax(keep))
        return dataclasses.replace(self, beats=tuple(float(max(t, 0.0)) for t in b[keep]),
                                   downbeat=self.downbeat - first)

    # ------------------------------------------------------------------ applying it

    def apply(self, analysis: Any) -> Any:
        """A new :class:`~.beats.BeatAnalysis` with the edited grid (``analysis`` is not changed)."""
        if self.is_identity:
            return analysis
        duration = float(analysis.duration)
        per_bar = max(int(getattr(analysis, "beats_per_bar", 4) or 4), 1)
        if self.beats is not None:
            beats = np.asarray(self.beats, dtype=np.float64)
            inside = (beats >= 0) & (beats <= duration + END_SLACK)
            front = int(np.argmax(inside)) if inside.any() else 0
            beats = np.minimum(beats[inside], duration)
            down = max(self.downbeat - front, 0)  # a real bar start of the list (not reduced: features count 4)
            origin = f"the beat list{f' ({self.source})' if self.source else ''}"
        elif self.bpm is not None:
            beats, down = regular_grid(analysis, 60.0 / self.bpm, per_bar)
            origin = f"a {self.bpm:g} BPM grid"
        else:
            beats = np.asarray(analysis.beats, dtype=np.float64)
            bars = getattr(analysis, "bar_offset", None)  # the bars the preview showed the creator
            down = int(analysis.downbeat_offset if bars is None else bars) % per_bar
            origin = "the tracker"
            if beats.size < 2:
                raise BeatGridError(f"the beat tracker found {beats.size} beat(s) in {duration:.2f} s of music, so "
                                    "there is no grid to move or re-time: give a BPM or a beat list instead")
        if self.tempo == "halve":
            beats, down = halve(beats, down, per_bar)
        elif self.tempo == "double":
            beats, down = double(beats, down, per_bar, duration)
        if self.offset_beats:
            beats, down = offset(beats, down, per_bar, self.offset_beats, duration)
        if beats.size < 2:
            what = self.describe() if origin != "the tracker" else f"the tracker's grid with {self.describe()}"
            raise BeatGridError(f"{what} leaves {beats.size} beat(s) in "
                                f"{duration:.2f} s of music: a beat grid needs at least two")
        tempo = 60.0 / float(np.median(np.diff(beats)))
        # one bar start for the display (bars of per_bar) and the features (bars of 4): a real downbeat
        return dataclasses.replace(analysis, beats=beats, tempo=tempo, downbeat_offset=int(down) % 4,
                                   bar_offset=int(down) % per_bar)


def make_edit(edit: BeatGridEdit | None = None, **kw: Any) -> BeatGridEdit | None:
    """``edit`` or a :class:`BeatGridEdit` from keywords; None when it would change nothing."""
    if edit is None and kw:
        edit = BeatGridEdit(**kw)
    return None if edit is None or edit.is_identity else edit


# --------------------------------------------------------------------------- the operations


def halve(beats: np.ndarray, down: int, per_bar: int) -> tuple[np.ndarray, int]:
    """Every other beat: the set holding the first downbeat (with an even bar, all of them)."""
    parity = int(down) % 2
    return beats[parity::2].copy(), (int(down) // 2) % per_bar


def double(beats: np.ndarray, down: int, per_bar: int, duration: float) -> tuple[np.ndarray, int]:
    """A beat half-way between each pair, and half a period before the first / after the last where it fits."""
    if beats.size < 2:
        return beats.copy(), down
    out = np.empty(2 * beats.size - 1)
    out[0::2] = beats
    out[1::2] = (beats[:-1] + beats[1:]) / 2
    half = float(np.median(np.diff(beats))) / 2
    front = beats[0] - half >= 0
    if front:
        out = np.concatenate([[beats[0] - half], out])
    if beats[-1] + half <= duration:
        out = np.concatenate([out, [beats[-1] + half]])
    return out, (2 * int(down) + int(front)) % per_bar


def offset(beats: np.ndarray, down: int, per_bar: int, beats_offset: float,
           duration: float) -> tuple[np.ndarray, int]:
    """Every beat moved by ``beats_offset`` local beat periods; beats that leave ``[0, duration]`` dropped."""
    if beats.size < 2:
        return beats.copy(), down
    n = beats.size
    idx = np.arange(n, dtype=np.float64)
    # a shift by whole beats brings in as many beats at the end it moves away from (the grid goes on at
    # its median period), so offset 1 moves the bars by one beat without losing a beat of the music
    whole = int(np.floor(abs(float(beats_offset))))
    lo = -whole if beats_offset > 0 else 0
    k = np.arange(lo, n + (whole if beats_offset < 0 else 0), dtype=np.float64)
    u = k + float(beats_offset)
    period = float(np.median(np.diff(beats)))
    t = np.interp(u, idx, beats)
    t = np.where(u < 0, beats[0] + u * period, t)
    t = np.where(u > n - 1, beats[-1] + (u - (n - 1)) * period, t)
    keep = (t >= 0) & (t <= duration)
    front = int(np.argmax(keep)) if keep.any() else 0
    return t[keep], (int(down) - lo - front) % per_bar


def _strength_at(analysis: Any) -> tuple[np.ndarray, float]:
    """(envelope, frames per second) to score a grid with: the fine attack envelope, else the onset envelope;
    smoothed with a small triangle (+-3 frames), so a grid a few milliseconds off a peak still sees it and
    the best phase is still the peak itself."""
    from .beats import ANALYSIS_SR, HOP, REFINE_HOP

    env = np.asarray(getattr(analysis, "attack_env", np.zeros(0)), dtype=np.float64)
    rate = ANALYSIS_SR / REFINE_HOP
    if env.size == 0 or not env.max() > 0:
        env = np.asarray(analysis.onset_env, dtype=np.float64)
        rate = ANALYSIS_SR / HOP
    if env.size == 0:
        return env, rate
    kernel = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0]) / 16.0
    return np.convolve(np.pad(env, 3, mode="edge"), kernel, mode="valid"), rate


def regular_grid(analysis: Any, period: float, per_bar: int = 4) -> tuple[np.ndarray, int]:
    """Beats every ``period`` s over the whole music, phased where the attacks are strongest; and the bar phase.

    The phase maximises the mean attack strength on the grid's beats; music without attacks keeps the
    tracker's first beat (or starts at 0). The bar phase is the one of ``per_bar`` whose beats carry the
    most attack energy.
    """
    duration = float(analysis.duration)
    env, rate = _strength_at(analysis)
    n_beats = int(math.floor(duration / period)) + 1
    k = np.arange(n_beats, dtype=np.float64) * period
    if env.size and env.max() > 0:
        phases = np.arange(0.0, period, _PHASE_STEP)
        t = phases[:, None] + k[None, :]                       # [P, K]
        inside = t <= duration
        idx = np.clip(np.rint(t * rate).astype(np.int64), 0, env.size - 1)
        score = np.where(inside, env[idx], 0.0).sum(1) / np.maximum(inside.sum(1), 1)
        phase = float(phases[int(np.argmax(score))])
    elif getattr(analysis, "beats", np.zeros(0)).size:
        phase = float(np.mod(analysis.beats[0], period))
    else:
        phase = 0.0
    beats = phase + k
    beats = beats[beats <= duration]
    down = 0
    if env.size and env.max() > 0 and beats.size >= 2 * per_bar:
        strength = env[np.clip(np.rint(beats * rate).astype(np.int64), 0, env.size - 1)]
        down = int(np.argmax([strength[j::per_bar].mean() for j in range(per_bar)]))
    return beats, down


# --------------------------------------------------------------------------- the tracker's analysis, cached

#: The tracker's raw analyses by audio digest, shared by the music encoder and every node that needs a grid
#: (Load Music's preview, Video Combine's overlay, Beat Alignment), so one piece of music is analysed once.
#: Edits are applied after it and never stored in it.
TRACKED_ANALYSES = LRUCache(4)


def tracked_analysis(wave: Any, sample_rate: int, *, progress: Progress | None = None) -> Any:
    """:func:`~.beats.analyze_beats` of ``wave`` (``[S]``, ``[C, S]`` or ``[1, C, S]``), cached per audio."""
    from ._audio import audio_digest, check_rate, to_mono_1d
    from .beats import analyze_beats

    rate = check_rate(sample_rate)
    mono = to_mono_1d(wave)
    return TRACKED_ANALYSES.get_or_compute(audio_digest(mono, rate),
                                           lambda: analyze_beats(mono, rate, progress=progress))


def edited_analysis(wave: Any, sample_rate: int, edit: BeatGridEdit | None = None, *,
                    progress: Progress | None = None) -> Any:
    """The tracker's analysis of ``wave`` (cached) with ``edit`` applied: the grid a run uses."""
    raw = tracked_analysis(wave, sample_rate, progress=progress)
    return raw if edit is None else edit.apply(raw)


# --------------------------------------------------------------------------- beat lists from text and files


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _json_items(text: str, where: str) -> list[tuple[Any, int]]:
    """The elements of a JSON list with the line each starts on (for errors that name the line)."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    pos = ws.match(text, 0).end()
    if text[pos: pos + 1] != "[":
        raise BeatGridError(f"{where}, line {_line_of(text, pos)}: a JSON beat list must be a list [ ... ]")
    pos = ws.match(text, pos + 1).end()
    items: list[tuple[Any, int]] = []
    if text[pos: pos + 1] == "]":
        return items
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise BeatGridError(f"{where}, line {_line_of(text, err.pos)}: not valid JSON ({err.msg})") from None
        items.append((value, _line_of(text, pos)))
        pos = ws.match(text, end).end()
        ch = text[pos: pos + 1]
        if ch == "]":
            rest = text[pos + 1:].strip()
            if rest:
                raise BeatGridError(f"{where}, line {_line_of(text, pos + 1 + text[pos + 1:].index(rest[0]))}: "
                                    "unexpected text after the JSON list")
            return items
        if ch != ",":
            raise BeatGridError(f"{where}, line {_line_of(text, pos)}: not valid JSON (expected ',' or ']')")
        pos = ws.match(text, pos + 1).end()


def _json_beats(text: str, where: str) -> list[tuple[float, int, bool, str]]:
    out = []
    for value, line in _json_items(text, where):
        down = False
        if isinstance(value, dict):
            if "time" not in value:
                raise BeatGridError(f"{where}, line {line}: a beat object needs a \"time\" (seconds), got "
                                    f"{json.dumps(value)[:60]}")
            down = bool(value.get("downbeat")) or bool(_DOWNBEAT_WORDS.search(str(value.get("label", ""))))
            value = value["time"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise BeatGridError(f"{where}, line {line}: {json.dumps(value)[:40]} is not a time in seconds")
        out.append((float(value), line, down, json.dumps(value)))
    return out


def _line_beats(text: str, where: str, labels: bool = True) -> list[tuple[float, int, bool, str]]:
    out: list[tuple[float, int, bool, str]] = []
    first_content = True
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip().lstrip("\ufeff")
        if not line:
            continue
        header_ok, first_content = first_content, False
        if "," in line:
            fields = [f.strip() for f in line.split(",")]
            numbers = [_number(f) for f in fields]
            if not labels:  # a typed list: every field is a time
                bad = next((f for f, n in zip(fields, numbers) if n is None), None)
                if bad is not None:
                    raise BeatGridError(f"{where}, line {line_no}: {bad[:40]!r} is not a time in seconds")
            if all(n is not None for n in numbers) and len(fields) > 1:  # "0.5, 1.0, 1.5": several times
                out.extend((n, line_no, False, f) for n, f in zip(numbers, fields))
                continue
        else:
            fields = line.replace(";", " ").split()
        token, label = fields[0], " ".join(f for f in fields[1:] if _number(f) is None)
        if not labels and len(fields) > 1:
            raise BeatGridError(f"{where}, line {line_no}: {line[:40]!r} is not a time in seconds")
        value = _number(token)
        if value is None:
            if header_ok and token.strip("\"'").lower() in _HEADER_WORDS:
                continue  # a CSV header ("time,label")
            raise BeatGridError(f"{where}, line {line_no}: {token[:40]!r} is not a time in seconds")
        out.append((value, line_no, bool(_DOWNBEAT_WORDS.search(label)), token))
    return out


def parse_beat_list(text: str, duration: float | None = None, *, source: str = "the beat list",
                    labels: bool = True) -> BeatGridEdit:
    """Beat times from text (the file format of the module docstring) as a :class:`BeatGridEdit`.

    ``duration``: the music's length (s); a time beyond it is refused. ``source`` names the list in
    errors (a file path: ``"beat file beats.txt, line 4: ..."``). ``labels=False``: no labels after the
    times (a list typed by hand: a typo is an error, not a label).
    """
    where = source
    stripped = text.lstrip("\ufeff").lstrip()
    items = _json_beats(text.lstrip("\ufeff"), where) if stripped.startswith("[") else \
        _line_beats(text, where, labels)
    if not items:
        raise BeatGridError(f"{where}: no beat times in it (one time in seconds per line, or a JSON list)")
    prev = None
    for value, line, _, token in items:
        if value < 0:
            raise BeatGridError(f"{where}, line {line}: {token} s is before the start of the music (times are "
                                "seconds from its start)")
        if duration is not None and value > float(duration) + END_SLACK:
            raise BeatGridError(f"{where}, line {line}: {token} s is after the end of the music "
                                f"({float(duration):.2f} s long)")
        if prev is not None and value <= prev[0]:
            same = "repeats" if value == prev[0] else "comes before"
            raise BeatGridError(f"{where}, line {line}: {token} s {same} the beat before it ({prev[3]} s on line "
                                f"{prev[1]}); beat times must increase")
        prev = (value, line, False, token)
    if len(items) < 2:
        raise BeatGridError(f"{where}, line {items[0][1]}: the only beat time; a beat grid needs at least two")
    downs = [i for i, (_, _, d, _) in enumerate(items) if d]
    return BeatGridEdit(beats=tuple(v for v, *_ in items), downbeat=downs[0] if downs else 0,
                        source=source)


def read_beat_file(path: str | os.PathLike, duration: float | None = None) -> BeatGridEdit:
    """:func:`parse_beat_list` of a file; errors name the file (``beat file PATH, line N: ...``)."""
    p = Path(path).expanduser()
    where = f"beat file {p}"
    if not p.is_file():
        raise BeatGridError(f"{where}: not found" if not p.exists() else f"{where}: is a folder, not a file")
    try:
        data = p.read_bytes()
    except OSError as err:
        raise BeatGridError(f"{where}: cannot be read ({err.strerror or err})") from None
    if b"\x00" in data[:4096]:
        raise BeatGridError(f"{where}: is not a text file (one time in seconds per line, or a JSON list)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    edit = parse_beat_list(text, duration, source=where)
    return dataclasses.replace(edit, source=p.name)


def format_beat_list(analysis: Any, *, shift: float = 0.0, decimals: int = 3) -> str:
    """The grid as a beat file (one time per line, ``downbeat`` after a bar's first beat), times + ``shift``:
    what :func:`read_beat_file` reads back."""
    downs = set(np.round(np.asarray(analysis.downbeats) + shift, decimals).tolist())
    lines = []
    for t in np.asarray(analysis.beats) + shift:
        r = round(float(t), decimals)
        lines.append(f"{r:.{decimals}f}" + (" downbeat" if r in downs else ""))
    return "\n".join(lines) + ("\n" if lines else "")


def looks_like_beat_list(text: str) -> bool:
    """True for text that is a list of times (JSON, several lines, or numbers with commas), not a file name."""
    s = text.strip()
    if not s:
        return False
    if s.startswith("[") or "\n" in s:
        return True
    # "0.5, 1.0, ...": the first item is a number (a file name is not)
    return _number(s.replace(";", ",").split(",")[0].strip()) is not None


__all__ = ["BPM_RANGE", "BeatGridEdit", "TEMPO_CHOICES", "TRACKED_ANALYSES", "double", "edited_analysis",
           "format_beat_list", "halve", "looks_like_beat_list", "make_edit", "offset", "parse_beat_list",
           "read_beat_file", "regular_grid", "tracked_analysis"]
