"""The paper's tables from per-video scores: aggregation, Markdown, CSV and PNG plots.

Input: the rows of :func:`dabfusion.evaluation.scoring.score_all` (one per generated clip, with
``model``, ``frames``, ``video``, ``genre``, ``camera`` and the metrics of the clip and of its
ground truth, ``gt_*``) and the I3D features by clip. Means are over videos (NaN-aware); FVD is
computed per group from the features of that group's generated and ground-truth clips (>= 2
videos, else ``n/a``).

========  ==========================================================================
table     rows
========  ==========================================================================
1         the model: FVD, LPIPS, PSNR, SSIM (clips of the baseline length)
2         one per camera: the same columns
3         ground truth and the model: CS, 2D-MM Align, AV-Align (corrected, original)
4         per genre, ground truth and the model: the alignment columns
5         one per clip length (the model, then the ground truth): alignment + FVD
6         without and with beat features (ablation model, model): alignment + FVD
========  ==========================================================================

Columns of metrics that were skipped (no weights given) are left out and the tables say so.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .fvd import fvd as fvd_of

QUALITY = (("fvd", "FVD ↓"), ("lpips", "LPIPS ↓"), ("psnr", "PSNR ↑"), ("ssim", "SSIM ↑"))
ALIGNMENT = (("clip_score", "CS ↑"), ("mm_align", "2D-MM Align ↑"), ("av_align", "AV-Align ↑"),
             ("av_align_original", "AV-Align (original code) ↑"))
OPTIONAL = {"fvd": "fvd", "lpips": "lpips", "clip_score": "clip_score"}
SKIPPED = {"fvd": ("FVD", "--i3d"), "lpips": ("LPIPS", "--lpips"), "clip_score": ("CLIP-Score", "--clip and --wav2clip")}
GROUND_TRUTH = "Ground Truth"
DECIMALS = {"fvd": 2, "psnr": 2}


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]          # headers
    keys: list[str]             # machine names of the columns (CSV header)
    rows: list[list[Any]]
    label_columns: int
    notes: list[str] = field(default_factory=list)

    def cell(self, value: Any, key: str) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        if isinstance(value, float):
            return f"{value:.{DECIMALS.get(key, 3)}f}"
        return str(value)

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" if i < self.label_columns else "---:" for i in range(len(self.columns))) + "|"]
        lines += ["| " + " | ".join(self.cell(v, k) for v, k in zip(r, self.keys)) + " |" for r in self.rows]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def write_csv(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(self.keys)
            for r in self.rows:
                w.writerow(["" if (isinstance(v, float) and not math.isfinite(v)) else v for v in r])
        return p

    def plot(self, path: str | os.PathLike) -> Path | None:
        """Bar charts, one panel per metric column, one bar per row; ``None`` if nothing to plot
        (or matplotlib, an optional dependency, is not installed)."""
        try:
            import matplotlib
        except ImportError:
            return None

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        metric_cols = [i for i in range(self.label_columns, len(self.keys)) if self.keys[i] != "videos"]
        if not metric_cols or not self.rows:
            return None
        labels = [" / ".join(str(v) for v in r[:self.label_columns]) for r in self.rows]
        fig, axes = plt.subplots(1, len(metric_cols), figsize=(max(3.2 * len(metric_cols), 5), 3.2 + 0.12 * len(labels)),
                                 squeeze=False)
        colors = [("#8c8c8c" if GROUND_TRUTH in lab else "#3b75af") for lab in labels]
        for ax, i in zip(axes[0], metric_cols):
            vals = [float(r[i]) if isinstance(r[i], (int, float)) and math.isfinite(float(r[i])) else np.nan
                    for r in self.rows]
            ax.barh(range(len(vals)), np.nan_to_num(vals), color=colors)
            for y, v in enumerate(vals):
                ax.text(0, y, " n/a" if not np.isfinite(v) else f" {v:.3g}", va="center", fontsize=7)
            ax.set_yticks(range(len(labels)))
            ax.set_yticklabels(labels if ax is axes[0][0] else [""] * len(labels), fontsize=7)
            ax.invert_yaxis()
            ax.set_title(self.columns[i], fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
        fig.suptitle(self.title, fontsize=10)
        fig.tight_layout()
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=110)
        plt.close(fig)
        return p


def _mean(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    vals = np.array([float(r[key]) for r in rows if key in r and r[key] is not None], dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")


class Aggregator:
    """Turns scores into :class:`Table` objects."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], *, gen_features: Mapping | None = None,
                 gt_features: Mapping | None = None, available: Mapping[str, bool] | None = None,
                 labels: Mapping[str, str] | None = None,
                 main: str = "main", ablation: str = "ablation", frames: Sequence[int] | None = None,
                 beats: Mapping[str, bool] | None = None) -> None:
        self.rows = list(rows)
        self.gen_features = dict(gen_features or {})
        self.gt_features = dict(gt_features or {})
        self.available = {"fvd": False, "lpips": False, "clip_score": False, **dict(available or {})}
        self.labels = {"main": "DabFusion (ours)", "ablation": "DabFusion (ours)", **dict(labels or {})}
        self.main, self.ablation = main, ablation
        self.frames = list(frames) if frames else sorted({int(r["frames"]) for r in self.rows})
        self.base = self.frames[0]
        self.beats = {"main": True, "ablation": False, **dict(beats or {})}

    # ------------------------------------------------------------------ helpers
    def select(self, model: str, frames: int, **where: Any) -> list[Mapping[str, Any]]:
        return [r for r in self.rows if r["model"] == model and int(r["frames"]) == int(frames)
                and all(r.get(k) == v for k, v in where.items())]

    def metrics(self, spec: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, h) for k, h in spec if self.available.get(OPTIONAL.get(k, ""), True)]

    def fvd(self, model: str, frames: int, stems: Sequence[str]) -> float:
        gen = self.gen_features.get((model, frames), {})
        gt = self.gt_features.get(frames, {})
        stems = [s for s in stems if s in gen and s in gt]
        if len(stems) < 2:
            return float("nan")
        return fvd_of(np.stack([gen[s] for s in stems]), np.stack([gt[s] for s in stems]))

    def values(self, rows: Sequence[Mapping[str, Any]], spec: Sequence[tuple[str, str]], *, model: str,
               frames: int, gt: bool = False) -> list[Any]:
        out: list[Any] = []
        for k, _ in spec:
            if k == "fvd":
                out.append(float("nan") if gt else self.fvd(model, frames, [r["video"] for r in rows]))
            else:
                out.append(_mean(rows, f"gt_{k}" if gt else k))
        return out

    def notes(self, spec: Sequence[tuple[str, str]], extra: Sequence[str] = ()) -> list[str]:
        keys = [k for k, _ in spec]
        skipped = [f"{SKIPPED[k][0]} (needs {SKIPPED[k][1]})" for k in keys
                   if k in SKIPPED and not self.available.get(k)]
        notes = [f"Not computed, no weights given: {', '.join(skipped)}."] if skipped else []
        if "fvd" in keys and self.available.get("fvd"):
            notes.append("FVD from I3D features of whole clips (reference frame included); groups of fewer than 2 "
                         "videos show n/a, and FVD of few videos is biased upwards: compare equal counts only.")
        return notes + list(extra)

    # ------------------------------------------------------------------ tables
    def table1(self) -> Table:
        spec = self.metrics(QUALITY)
        rows = self.select(self.main, self.base)
        return Table("table1_quality", f"Table 1: video quality ({self.base} generated frames)",
                     ["Model", "Videos"] + [h for _, h in spec], ["model", "videos"] + [k for k, _ in spec],
                     [[self.labels[self.main], len(rows)] + self.values(rows, spec, model=self.main, frames=self.base)],
                     1, self.notes(QUALITY))

    def table2(self) -> Table:
        spec = self.metrics(QUALITY)
        out = []
        for cam in sorted({r["camera"] for r in self.select(self.main, self.base)}):
            rows = self.select(self.main, self.base, camera=cam)
            out.append([cam.upper(), len(rows)] + self.values(rows, spec, model=self.main, frames=self.base))
        return Table("table2_camera", f"Table 2: video quality per camera ({self.labels[self.main]}, {self.base} frames)",
                     ["Camera", "Videos"] + [h for _, h in spec], ["camera", "videos"] + [k for k, _ in spec],
                     out, 1, self.notes(QUALITY))

    def table3(self) -> Table:
        spec = self.metrics(ALIGNMENT)
        rows = self.select(self.main, self.base)
        body = [[GROUND_TRUTH, len(rows)] + self.values(rows, spec, model=self.main, frames=self.base, gt=True),
                [self.labels[self.main], len(rows)] + self.values(rows, spec, model=self.main, frames=self.base)]
        return Table("table3_alignment", f"Table 3: alignment ({self.base} generated frames)",
                     ["Model", "Videos"] + [h for _, h in spec], ["model", "videos"] + [k for k, _ in spec],
                     body, 1, self.notes(ALIGNMENT, [self._av_note()]))

    def table4(self) -> Table:
        from ..data.aist_names import genre_name

        spec = self.metrics(ALIGNMENT)
        out = []
        for g in sorted({r["genre"] for r in self.select(self.main, self.base)}):
            rows = self.select(self.main, self.base, genre=g)
            name = genre_name(g)
            out.append([name, GROUND_TRUTH, len(rows)] + self.values(rows, spec, model=self.main, frames=self.base, gt=True))
            out.append([name, self.labels[self.main], len(rows)] + self.values(rows, spec, model=self.main, frames=self.base))
        return Table("table4_genre", f"Table 4: alignment per dance style ({self.base} frames)",
                     ["Dance style", "Model", "Videos"] + [h for _, h in spec],
                     ["genre", "model", "videos"] + [k for k, _ in spec], out, 2, self.notes(ALIGNMENT))

    def table5(self) -> Table:
        spec = self.metrics(ALIGNMENT + (("fvd", "FVD ↓"),))
        out = []
        for n in self.frames:
            rows = self.select(self.main, n)
            out.append([f"{n} frames", GROUND_TRUTH, len(rows)] + self.values(rows, spec, model=self.main, frames=n, gt=True))
            out.append([f"{n} frames", self.labels[self.main], len(rows)] + self.values(rows, spec, model=self.main, frames=n))
        notes = ["One model generates every length (windows of its training length); the paper trained one model per "
                 "length. Clips of each length start at the same frame with the same seed."]
        if len(self.frames) < 2:
            notes.append("Only one length was evaluated; pass --frames 40 80 for the comparison.")
        return Table("table5_length", "Table 5: clip length", ["Length", "Model", "Videos"] + [h for _, h in spec],
                     ["frames", "model", "videos"] + [k for k, _ in spec], out, 2,
                     self.notes(ALIGNMENT + (("fvd", ""),), notes))

    def table6(self) -> Table:
        spec = self.metrics(ALIGNMENT + (("fvd", "FVD ↓"),))
        out = []
        for model in (self.ablation, self.main):
            rows = self.select(model, self.base)
            if not rows:
                continue
            out.append([self.labels[model], "✓" if self.beats.get(model) else "✗", len(rows)]
                       + self.values(rows, spec, model=model, frames=self.base))
        notes = []
        if not self.select(self.ablation, self.base):
            notes.append("No ablation model: pass --ablation-diffusion CKPT (a model trained with "
                         "--no-beat-features) for the row without beat features.")
        elif self.beats.get(self.ablation) == self.beats.get(self.main):
            notes.append("Both models have the same beat-feature setting: this is not the beat ablation.")
        else:
            notes.append("Both models sample every clip from the same seed.")
        return Table("table6_beats", f"Table 6: beat features ({self.base} frames)",
                     ["Model", "Beat", "Videos"] + [h for _, h in spec], ["model", "beat", "videos"] + [k for k, _ in spec],
                     out, 2, self.notes(ALIGNMENT + (("fvd", ""),), notes))

    @staticmethod
    def _av_note() -> str:
        return ("AV-Align: the corrected reference code (Feb 2025, each video peak matched once, an IoU in [0, 1]) and "
                "the original release (a video peak may count for several audio peaks).")

    def tables(self) -> list[Table]:
        return [self.table1(), self.table2(), self.table3(), self.table4(), self.table5(), self.table6()]


def write_tables(tables: Sequence[Table], out: str | os.PathLike, *, plots: bool = True) -> dict[str, dict[str, str]]:
    """``<out>/<key>.csv``, ``.md`` and ``plots/<key>.png`` for every table; returns the paths."""
    root = Path(out)
    paths: dict[str, dict[str, str]] = {}
    for t in tables:
        entry = {"csv": str(t.write_csv(root / f"{t.key}.csv"))}
        md = root / f"{t.key}.md"
        md.write_text(t.to_markdown(), encoding="utf-8")
        entry["md"] = str(md)
        if plots:
            png = t.plot(root / "plots" / f"{t.key}.png")
            if png is not None:
                entry["png"] = str(png)
        paths[t.key] = entry
    return paths


def write_rows_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Every per-video row (the union of their keys as columns)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in keys})
    return p
