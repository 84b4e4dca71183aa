"""Tiny procedural "videos" of moving shapes, for tests and smoke runs without a data set.

Each video is a fixed background gradient with two coloured shapes (a disc and a square) that
move along smooth periodic paths; a pair is two frames of one video at times drawn from
(seed, epoch, index), so items are identical in any DataLoader worker and after a resume, like
:class:`dabfusion.data.PairDataset`. Items have the same keys (``reference``, ``driving``,
``video``...).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def render_shapes_frame(video: int, t: float, size: int, seed: int = 0) -> torch.Tensor:
    """Frame ``[3,size,size]`` in 0..1 of toy video ``video`` at time ``t`` (0..1 is one loop)."""
    rng = np.random.default_rng([seed, video])
    bg0, bg1 = rng.uniform(0.1, 0.5, 3), rng.uniform(0.5, 0.9, 3)
    colours = rng.uniform(0.0, 1.0, (2, 3))
    phase = rng.uniform(0, 2 * math.pi, 4)
    radius = rng.uniform(0.12, 0.2, 2)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    ramp = (ys + 1) / 2
    img = torch.stack([torch.as_tensor(bg0[c] + (bg1[c] - bg0[c]), dtype=torch.float32) * ramp
                       + float(bg0[c]) * (1 - ramp) for c in range(3)])
    w = 2 * math.pi * t
    cx = [0.5 * math.cos(w + phase[0]), 0.45 * math.sin(2 * w + phase[1])]
    cy = [0.5 * math.sin(w + phase[2]), 0.45 * math.cos(w + phase[3])]
    disc = ((xs - cx[0]) ** 2 + (ys - cy[0]) ** 2).sqrt() < radius[0] * 2
    square = ((xs - cx[1]).abs() < radius[1] * 1.6) & ((ys - cy[1]).abs() < radius[1] * 1.6)
    for mask, col in ((disc, colours[0]), (square, colours[1])):
        img = torch.where(mask, torch.as_tensor(col, dtype=torch.float32).view(3, 1, 1), img)
    return img.clamp(0, 1)


class ShapesPairDataset(Dataset):
    """``n_videos * pairs_per_video`` (reference, driving) pairs of moving-shape videos."""

    def __init__(self, n_videos: int = 8, size: int = 32, *, pairs_per_video: int = 4, seed: int = 0,
                 n_frames: int = 30) -> None:
        self.n_videos, self.size, self.pairs_per_video = n_videos, size, pairs_per_video
        self.seed, self.epoch, self.n_frames = seed, 0, n_frames

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_videos * self.pairs_per_video

    def __getitem__(self, index: int) -> dict[str, Any]:
        v = index // self.pairs_per_video
        rng = np.random.default_rng([self.seed, self.epoch, index])
        ref, drv = (int(i) for i in rng.integers(0, self.n_frames, 2))
        return {"reference": render_shapes_frame(v, ref / self.n_frames, self.size, self.seed),
                "driving": render_shapes_frame(v, drv / self.n_frames, self.size, self.seed),
                "ref_frame": ref, "drv_frame": drv, "video": f"shapes_{v:03d}", "dancer_id": v}
