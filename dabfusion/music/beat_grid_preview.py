"""A picture of a beat grid on its music: does the grid sit on the kicks? Check it before sampling.

:func:`draw_beat_grid` draws, row by row (at most :data:`ROW_SECONDS` s per row, so beats stay far
enough apart to see at any length; longer music gets more rows, up to :data:`MAX_ROWS`):

- light grey: the waveform's envelope (peak amplitude per pixel column), centred on the row;
- dark blue: the attack envelope (the fine onset strength the beats are timed with) rising from the
  row's floor: kicks and snares are its tall peaks;
- orange lines: the beats; thick red lines with the bar number: the downbeats (bar starts);
- the time axis in seconds under each row, and a title with the tempo, the number of beats and
  bars, the length, and the edit applied (or "as tracked").

A grid that sits on the music has an orange line through the foot of each tall blue peak; a grid
on the off-beat has its lines half-way between them (try beat offset 0.5); a grid with twice or half
as many lines as peaks wants tempo halve or double.

Drawn with Pillow (a core dependency), like the Beat Alignment plot (:mod:`dabfusion.metrics.beat_plot`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

WHITE = (255, 255, 255)
ROW_BG = (248, 248, 250)
AXIS = (90, 90, 90)
WAVE = (200, 200, 205)
ATTACK = (30, 70, 170)
BEAT = (235, 130, 30)
DOWNBEAT = (205, 25, 55)
TEXT = (0, 0, 0)

#: At most this many seconds in one row of the picture (a beat at 180 BPM is then 27 px apart at 1024 px).
ROW_SECONDS = 12.0
#: At most this many rows; longer music gets more seconds per row.
MAX_ROWS = 8


@dataclass(frozen=True)
class GridLayout:
    """Where things go in the picture: rows of ``row_seconds`` each, the plot box of each row."""

    width: int
    duration: float
    row_seconds: float
    rows: int
    left: int
    right: int
    top: int          # y of the first row's plot box
    row_height: int   # plot box height
    row_gap: int      # axis labels between rows
    font_size: int

    @classmethod
    def for_music(cls, duration: float, width: int = 1024, row_height: int = 120) -> "GridLayout":
        width = max(int(width), 320)
        duration = max(float(duration), 1e-3)
        rows = max(1, math.ceil(duration / ROW_SECONDS - 1e-9))
        if rows > MAX_ROWS:
            rows = MAX_ROWS
        row_seconds = duration if rows == 1 else math.ceil(duration / rows)
        rows = max(1, math.ceil(duration / row_seconds - 1e-9))
        fs = max(11, min(16, width // 64))
        return cls(width=width, duration=duration, row_seconds=float(row_seconds), rows=rows, left=12,
                   right=12, top=2 * fs + 22, row_height=int(row_height), row_gap=fs + 12, font_size=fs)

    @property
    def height(self) -> int:
        return self.top + self.rows * (self.row_height + self.row_gap) + 4

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    def row_of(self, t: float) -> int:
        return int(min(max(math.floor(float(t) / self.row_seconds), 0), self.rows - 1))

    def row_box(self, row: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a row's plot box."""
        y0 = self.top + row * (self.row_height + self.row_gap)
        return self.left, y0, self.width - self.right, y0 + self.row_height

    def x_of(self, t: float) -> int:
        """Pixel column of time ``t`` (s) in its row."""
        row = self.row_of(t)
        frac = (float(t) - row * self.row_seconds) / self.row_seconds
        return int(round(self.left + frac * (self.plot_width - 1)))

    def column_times(self, row: int) -> np.ndarray:
        """[plot_width + 1] time edges of a row's pixel columns."""
        return row * self.row_seconds + np.linspace(0.0, self.row_seconds, self.plot_width + 1)


def _column_max(values: np.ndarray, rate: float, edges: np.ndarray) -> np.ndarray:
    """Max of ``values`` (sampled at ``rate`` per second from t = 0) over each column ``edges[i] .. edges[i+1]``;
    columns past the end are 0."""
    out = np.zeros(len(edges) - 1, np.float64)
    if values.size == 0:
        return out
    idx = np.clip(np.floor(edges * rate).astype(np.int64), 0, values.size)
    for i, (a, b) in enumerate(zip(idx[:-1], idx[1:])):
        if a < values.size:
            out[i] = values[a: max(b, a + 1)].max()
    return out


def draw_beat_grid(analysis: Any, wave: Any = None, sample_rate: int | None = None, *, edit: Any = None,
                   width: int = 1024, row_height: int = 120, tracked_tempo: float | None = None) -> np.ndarray:
    """uint8 RGB ``[H, width, 3]`` picture of ``analysis``'s beat grid over its music (module docstring).

    ``wave`` (``[S]`` or ``[C, S]`` at ``sample_rate``): draws its envelope too (optional). ``edit``: the
    :class:`~.beat_grid.BeatGridEdit` applied, named in the title; ``tracked_tempo``: the tracker's tempo,
    shown beside an edited one.
    """
    from PIL import Image, ImageDraw

    from ..metrics.beat_plot import _font, _nice_step
    from .beats import ANALYSIS_SR, HOP, REFINE_HOP

    lay = GridLayout.for_music(analysis.duration, width, row_height)
    img = Image.new("RGB", (lay.width, lay.height), WHITE)
    draw = ImageDraw.Draw(img)
    fs = lay.font_size
    font = _font(fs)

    peaks = None
    if wave is not None and sample_rate:
        from ._audio import to_mono_1d

        mono = np.abs(to_mono_1d(wave)).astype(np.float64)
        top = float(mono.max()) if mono.size else 0.0
        peaks = (mono / top if top > 0 else mono, float(sample_rate))
    env = np.asarray(getattr(analysis, "attack_env", np.zeros(0)), np.float64)
    env_rate, env_ref = ANALYSIS_SR / REFINE_HOP, float(getattr(analysis, "attack_ref", 1.0) or 1.0)
    if env.size == 0:
        env, env_rate = np.asarray(analysis.onset_env, np.float64), ANALYSIS_SR / HOP
        env_ref = float(getattr(analysis, "onset_ref", 1.0) or 1.0)
    env = np.clip(env / max(env_ref, 1e-9), 0.0, 1.0) if env.size else env

    beats = np.asarray(analysis.beats, np.float64)
    downbeats = np.asarray(analysis.downbeats, np.float64)
    down_set = {round(float(t), 6) for t in downbeats}
    per_bar = max(int(getattr(analysis, "beats_per_bar", 4) or 4), 1)
    step = _nice_step(lay.row_seconds, target=max(4, lay.plot_width // 110))
    lw_beat = 1 if lay.plot_width / lay.row_seconds * 60 / max(analysis.tempo, 1) < 14 else 2
    for row in range(lay.rows):
        x0, y0, x1, y1 = lay.row_box(row)
        t0 = row * lay.row_seconds
        t1 = min(t0 + lay.row_seconds, lay.duration)
        draw.rectangle([(x0, y0), (x1, y1)], fill=ROW_BG)
        edges = lay.column_times(row)
        mid = (y0 + y1) / 2
        if peaks is not None:
            col = _column_max(peaks[0], peaks[1], edges)
            half = (y1 - y0) * 0.45
            for i, v in enumerate(col):
                if v > 0 and edges[i] < lay.duration:
                    h = max(1.0, v * half)
                    draw.line([(x0 + i, mid - h), (x0 + i, mid + h)], fill=WAVE)
        in_row = beats[(beats >= t0 - 1e-9) & (beats < t0 + lay.row_seconds - 1e-9)]
        for t in in_row:
            if round(float(t), 6) in down_set:
                continue
            x = lay.x_of(t)
            draw.line([(x, y0), (x, y1)], fill=BEAT, width=lw_beat)
        for t in in_row:
            if round(float(t), 6) not in down_set:
                continue
            x = lay.x_of(t)
            draw.rectangle([(x - 1, y0), (x + 1, y1)], fill=DOWNBEAT)
            bar = int(np.searchsorted(downbeats, t - 1e-9)) + 1
            draw.text((x + 4, y0 + 1), str(bar), fill=DOWNBEAT, font=font)
        if env.size:
            col = _column_max(env, env_rate, edges)
            pts = [(x0 + i, y1 - v * (y1 - y0) * 0.9) for i, v in enumerate(col) if edges[i] < lay.duration]
            if len(pts) >= 2:
                draw.line(pts, fill=ATTACK, width=2 if lay.plot_width / lay.row_seconds > 40 else 1)
        if t1 < t0 + lay.row_seconds:  # the music ends in this row
            xe = lay.left + (t1 - t0) / lay.row_seconds * (lay.plot_width - 1)
            draw.rectangle([(xe + 1, y0), (x1, y1)], fill=WHITE)
        draw.rectangle([(x0, y0), (x1, y1)], outline=AXIS)
        for tick in np.arange(math.ceil(t0 / step - 1e-9) * step, t0 + lay.row_seconds + 1e-9, step):
            if tick > lay.duration + 1e-9:
                break
            x = lay.left + (tick - t0) / lay.row_seconds * (lay.plot_width - 1)
            draw.line([(x, y1), (x, y1 + 4)], fill=AXIS)
            label = f"{tick:g} s" if abs(tick - t0) < 1e-9 else f"{tick:g}"
            w = draw.textlength(label, font=font)
            draw.text((min(max(x - w / 2, 0), lay.width - w - 1), y1 + 5), label, fill=AXIS, font=font)

    tempo = float(getattr(analysis, "tempo", 0.0))
    n_bars = downbeats.size
    what = "as tracked" if edit is None or getattr(edit, "is_identity", False) else edit.describe()
    tempo_text = f"{tempo:.1f} BPM" if beats.size >= 2 else "no beats"
    if tracked_tempo is not None and what != "as tracked" and abs(tracked_tempo - tempo) > 0.05:
        tempo_text += f" (tracker: {tracked_tempo:.1f})"
    title = (f"Beat grid: {tempo_text}   {beats.size} beat{'s' * (beats.size != 1)}   "
             f"{n_bars} bar{'s' * (n_bars != 1)} of {per_bar}   "
             f"{lay.duration:.1f} s   grid: {what}")
    draw.text((lay.left, 4), title, fill=TEXT, font=font)
    legend = [("waveform", WAVE), ("attacks", ATTACK), ("beats", BEAT), ("downbeats (bar no.)", DOWNBEAT)]
    x, y = float(lay.left), 8 + fs
    for name, colour in legend:
        draw.rectangle([(x, y + fs * 0.25), (x + fs, y + fs * 0.85)], fill=colour)
        draw.text((x + fs + 4, y), name, fill=AXIS, font=font)
        x += fs + 18 + draw.textlength(name, font=font)
    return np.asarray(img, dtype=np.uint8).copy()


__all__ = ["GridLayout", "MAX_ROWS", "ROW_SECONDS", "draw_beat_grid"]
