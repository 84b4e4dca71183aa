"""Loss-curve PNG from a metrics CSV (matplotlib, headless)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable


def plot_loss_curves(csv_path: str | os.PathLike, png_path: str | os.PathLike,
                     columns: Iterable[str] | None = None, title: str = "training loss",
                     smooth: int = 0, log_y: bool = True) -> Path | None:
    """Plot each column (default: those whose name contains "loss" or ends in a term) vs step.

    ``smooth``: moving-average window (points) drawn over the raw curve. Returns the PNG path, or
    ``None`` when there is nothing to plot yet. The PNG is written atomically.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None
    names = list(columns) if columns is not None else [
        k for k in rows[0].keys() if k != "step" and ("loss" in k or k.startswith("term/"))]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    plotted = 0
    for name in names:
        pts = [(float(r["step"]), float(r[name])) for r in rows if r.get(name) not in (None, "")]
        if not pts:
            continue
        xs, ys = zip(*pts)
        line, = ax.plot(xs, ys, lw=0.8, alpha=0.45 if smooth > 1 else 1.0, label=name)
        if smooth > 1 and len(ys) >= smooth:
            sm = [sum(ys[max(0, i - smooth + 1): i + 1]) / len(ys[max(0, i - smooth + 1): i + 1])
                  for i in range(len(ys))]
            ax.plot(xs, sm, lw=1.6, color=line.get_color())
        plotted += 1
    if not plotted:
        plt.close(fig)
        return None
    if log_y and all(float(r[n]) > 0 for r in rows for n in names if r.get(n) not in (None, "")):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png_path = Path(png_path)
    tmp = png_path.with_name(f".{png_path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)
    return png_path
