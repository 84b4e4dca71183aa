"""A picture of a :class:`~.beat_report.BeatReport`: the motion-speed curve against the beat grid.

Drawn with Pillow's ImageDraw (a core dependency) rather than matplotlib, which is a training
extra: the Beat Alignment node must work in a plain ComfyUI install. What it shows:

- orange vertical lines: the music's beats (librosa);
- light blue: the raw per-frame motion speed; dark blue: the smoothed speed whose local minima
  are the kinematic beats (green dots) - a dot on an orange line is a beat that is danced;
- short purple ticks along the bottom: the audio onsets AV-Align uses;
- the title: both scores and the tempo; the x axis in seconds.
"""

from __future__ import annotations

import numpy as np

from .beat_report import BeatReport

WHITE = (255, 255, 255)
AXIS = (90, 90, 90)
GRID = (232, 232, 232)
BEAT = (235, 130, 30)
RAW = (160, 190, 235)
SMOOTH = (30, 70, 170)
KINEMATIC = (20, 150, 60)
ONSET = (140, 60, 170)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:  # older Pillow: the small bitmap font
        return ImageFont.load_default()


def _nice_step(span: float, target: int = 8) -> float:
    """A 1/2/5 x 10^k step giving about ``target`` ticks over ``span``."""
    raw = max(span, 1e-9) / target
    base = 10.0 ** np.floor(np.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * base >= raw:
            return float(m * base)
    return float(10.0 * base)


def plot_beat_report(report: BeatReport, width: int = 768, height: int = 288) -> np.ndarray:
    """uint8 RGB ``[height, width, 3]`` picture of the report (see the module docstring)."""
    from PIL import Image, ImageDraw

    width, height = max(int(width), 160), max(int(height), 96)
    img = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(img)
    fs = max(9, height // 22)
    font = _font(fs)
    left, right, top, bottom = 3 * fs + 8, 10, 2 * fs + 12, 2 * fs + 10
    x0, x1, y0, y1 = left, width - right, top, height - bottom  # plot box (y grows downwards)

    t_end = max(report.duration, 1e-6)
    times = np.arange(report.n_frames) / report.fps
    peak = float(max(report.speed.max(initial=0.0), report.smooth_speed.max(initial=0.0)))
    y_top = peak * 1.08 if peak > 0 else 1.0

    def px(t):
        return x0 + (np.asarray(t, np.float64) / t_end) * (x1 - x0)

    def py(v):
        return y1 - (np.asarray(v, np.float64) / y_top) * (y1 - y0)

    step = _nice_step(t_end)
    for t in np.arange(0.0, t_end + 1e-9, step):  # x grid, ticks and labels in seconds
        x = float(px(t))
        draw.line([(x, y0), (x, y1)], fill=GRID)
        draw.line([(x, y1), (x, y1 + 4)], fill=AXIS)
        label = f"{t:g}"
        w = draw.textlength(label, font=font)
        draw.text((x - w / 2, y1 + 6), label, fill=AXIS, font=font)
    draw.text((x1 - draw.textlength("s", font=font), y1 + 6 + fs), "s", fill=AXIS, font=font)

    lw = max(1, height // 144)
    for t in report.beat_times:
        x = float(px(t))
        draw.line([(x, y0), (x, y1)], fill=BEAT, width=lw)
    for t in report.audio_peaks:
        if 0 <= t <= t_end:
            x = float(px(t))
            draw.line([(x, y1 - max(4, fs // 2)), (x, y1)], fill=ONSET, width=lw)

    if report.n_frames >= 2:
        xs = px(times)
        draw.line(list(zip(xs.tolist(), py(report.speed).tolist())), fill=RAW, width=lw)
        draw.line(list(zip(xs.tolist(), py(report.smooth_speed).tolist())), fill=SMOOTH, width=2 * lw)
    r = max(3, fs // 3)
    for k in report.kinematic_beats:
        x, y = float(px(times[k])), float(py(report.smooth_speed[k]))
        draw.ellipse([(x - r, y - r), (x + r, y + r)], fill=KINEMATIC)

    draw.rectangle([(x0, y0), (x1, y1)], outline=AXIS)
    draw.text((4, y0), "speed", fill=AXIS, font=font)
    title = (f"2D-MM Align {report.mm_align:.3f}   AV-Align {report.av_align:.3f}   "
             f"{report.tempo:.1f} BPM   {report.beat_times.size} beats")
    draw.text((x0, 4), title, fill=(0, 0, 0), font=font)
    legend = [("beats", BEAT), ("speed", SMOOTH), ("kinematic beats", KINEMATIC), ("onsets", ONSET)]
    x = float(x0)
    y = 6 + fs
    for name, colour in legend:
        draw.rectangle([(x, y + fs * 0.3), (x + fs, y + fs * 0.8)], fill=colour)
        draw.text((x + fs + 4, y), name, fill=AXIS, font=font)
        x += fs + 16 + draw.textlength(name, font=font)
    return np.asarray(img, dtype=np.uint8).copy()
