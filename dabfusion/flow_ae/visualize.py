"""Pictures of what the flow AE does: sample grids of reference | driving | output | flow | occlusion."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from .warp import flow_to_pixels


def flow_to_rgb(flow: torch.Tensor) -> torch.Tensor:
    """Colour-code flows ``[B,2,h,w]`` (normalised offsets) as float RGB ``[B,3,h,w]`` in 0..1.

    torchvision's Middlebury wheel: hue = direction, saturation = magnitude (white = still),
    normalised by the largest displacement in the batch.
    """
    from torchvision.utils import flow_to_image

    return flow_to_image(flow_to_pixels(flow.float().cpu())).float() / 255.0


def sample_grid(reference: torch.Tensor, driving: torch.Tensor, output: torch.Tensor,
                flow: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
    """One row per example: reference | driving | output | flow | occlusion, float ``[3,H',W']``."""
    h, w = reference.shape[-2:]

    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x.float().cpu(), size=(h, w), mode="nearest")

    cols = [reference.float().cpu().clamp(0, 1), driving.float().cpu().clamp(0, 1),
            output.float().cpu().clamp(0, 1), up(flow_to_rgb(flow)), up(occlusion).clamp(0, 1).expand(-1, 3, -1, -1)]
    pad = 2
    rows = []
    for i in range(reference.shape[0]):
        row = [F.pad(c[i], (pad, pad, pad, pad), value=1.0) for c in cols]
        rows.append(torch.cat(row, dim=2))
    return torch.cat(rows, dim=1)


def save_sample_grid(path: str | os.PathLike, reference: torch.Tensor, driving: torch.Tensor,
                     output: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor) -> Path:
    """Write :func:`sample_grid` as a PNG (atomically); returns the path."""
    from PIL import Image

    grid = sample_grid(reference, driving, output, flow, occlusion)
    arr = (grid.permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype("uint8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    Image.fromarray(arr).save(tmp)
    os.replace(tmp, path)
    return path
