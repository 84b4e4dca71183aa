"""Frames from flows: every frame is ``decode(warp(z0, flow_i, occlusion_i))`` of the one reference latent."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch


@torch.no_grad()
def render_frames(flow_ae: Any, z0: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
    """``decode(warp(z0, flow_i, occ_i))`` for every frame: ``[L, 3, H, W]`` float in 0..1.

    ``z0`` [1, C, h, w] (the original reference latent, broadcast over frames), ``flow``
    [L, 2, h, w], ``occlusion`` [L, 1, h, w]; ``flow_ae`` is a :class:`dabfusion.flow_ae.FlowAE`.
    """
    if z0.shape[0] != 1:
        raise ValueError("render_frames takes one reference latent [1, C, h, w]; loop over a batch")
    return flow_ae.decode(flow_ae.warp(z0, flow, occlusion))


@torch.no_grad()
def render_video(flow_ae: Any, z0: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor, *, chunk: int = 16,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """:func:`render_frames` ``chunk`` frames at a time (bounded memory): uint8 ``[L, H, W, 3]``.

    ``progress(done_chunks, total_chunks)`` is called after each chunk when given.
    """
    n = int(flow.shape[0])
    out = np.empty((n, flow_ae.image_size, flow_ae.image_size, 3), np.uint8)
    total = -(-n // chunk)
    for k, i in enumerate(range(0, n, chunk)):
        out[i:i + chunk] = frames_to_uint8(render_frames(flow_ae, z0, flow[i:i + chunk], occlusion[i:i + chunk]))
        if progress is not None:
            progress(k + 1, total)
    return out


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` floats in 0..1 -> uint8 ``[N, H, W, 3]`` (the media convention)."""
    return (frames.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
