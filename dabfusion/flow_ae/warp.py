"""Coordinates, flows and back-warping: the one place that fixes the conventions.

Conventions (used by every module of the flow AE and by the diffusion stage):

- Normalised coordinates in [-1, 1], ``x`` first then ``y``, with ``align_corners=False``:
  pixel ``i`` of a side of ``n`` pixels has its *centre* at ``(2 i + 1) / n - 1``. The same point
  of the picture has the same coordinate at every resolution, so heatmaps, region centres and
  flows can move between 64x64, 32x32 and 16x16 maps without rescaling.
- A flow is a tensor ``[B, 2, h, w]`` of *offsets* of the sampling position, in those normalised
  units: channel 0 is x, channel 1 is y. It is a backward flow: output pixel ``p`` takes the value
  of the source at ``p + flow(p)``. An offset of ``2 / w`` in x is one pixel of that map; zero flow
  is the identity. (MRAA/LFDM store the absolute sampling grid instead; the offset is that grid
  minus :func:`identity_grid`, and is centred on 0, which is what the diffusion model wants.)
- Sampling is bilinear ``grid_sample`` with ``align_corners=False`` and ``padding_mode="zeros"``
  (as LFDM); positions outside the map read zeros, which the decoder treats like occlusion.
- With these conventions zero flow is bit-exact identity for power-of-two sizes (the pixel-centre
  coordinates are dyadic fractions) and identity within float rounding otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ALIGN_CORNERS = False
PADDING_MODE = "zeros"


def coordinate_axis(n: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Centres of ``n`` pixels in normalised coordinates: ``(2 i + 1) / n - 1``."""
    i = torch.arange(n, device=device, dtype=torch.float64)
    return ((2 * i + 1) / n - 1).to(dtype)


def identity_grid(h: int, w: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """The identity sampling grid ``[h, w, 2]`` (x, y) for ``grid_sample(align_corners=False)``."""
    ys = coordinate_axis(h, device=device, dtype=dtype)
    xs = coordinate_axis(w, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


def flow_to_grid(flow: torch.Tensor) -> torch.Tensor:
    """Flow offsets ``[B, 2, h, w]`` -> absolute sampling grid ``[B, h, w, 2]``."""
    _, _, h, w = flow.shape
    return identity_grid(h, w, device=flow.device, dtype=flow.dtype) + flow.permute(0, 2, 3, 1)


def grid_to_flow(grid: torch.Tensor) -> torch.Tensor:
    """Absolute sampling grid ``[B, h, w, 2]`` -> flow offsets ``[B, 2, h, w]``."""
    _, h, w, _ = grid.shape
    return (grid - identity_grid(h, w, device=grid.device, dtype=grid.dtype)).permute(0, 3, 1, 2)


def flow_to_pixels(flow: torch.Tensor) -> torch.Tensor:
    """Normalised flow offsets -> displacements in pixels of the flow's own resolution."""
    _, _, h, w = flow.shape
    scale = torch.tensor([w / 2.0, h / 2.0], device=flow.device, dtype=flow.dtype).view(1, 2, 1, 1)
    return flow * scale


def pixels_to_flow(pixels: torch.Tensor) -> torch.Tensor:
    """Displacements in pixels of the map's resolution -> normalised flow offsets."""
    _, _, h, w = pixels.shape
    scale = torch.tensor([2.0 / w, 2.0 / h], device=pixels.device, dtype=pixels.dtype).view(1, 2, 1, 1)
    return pixels * scale


def grid_sample(x: torch.Tensor, grid: torch.Tensor, padding_mode: str = PADDING_MODE) -> torch.Tensor:
    """``F.grid_sample`` with the project's conventions, in float32, returned in ``x``'s dtype."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        out = F.grid_sample(x.float(), grid.float(), mode="bilinear", padding_mode=padding_mode,
                            align_corners=ALIGN_CORNERS)
    return out.to(x.dtype)


def warp(z: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor | None = None) -> torch.Tensor:
    """``z~ = occlusion * back_warp(z, flow)`` (paper eq. 1).

    ``z`` ``[B, C, h, w]``; ``flow`` ``[B, 2, h', w']`` and ``occlusion`` ``[B, 1, h', w']`` (1 =
    visible) are resized to ``h x w`` when they differ. Sampling runs in float32 whatever the dtype
    of ``z`` (flows need the precision); the result has ``z``'s dtype.
    """
    if z.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"warp expects z [B,C,h,w] and flow [B,2,h,w], got {tuple(z.shape)} and "
                         f"{tuple(flow.shape)}")
    if flow.shape[0] != z.shape[0]:
        raise ValueError(f"warp: batch of z ({z.shape[0]}) and flow ({flow.shape[0]}) differ")
    h, w = z.shape[-2:]
    flow = _resize_to(flow.float(), h, w)
    out = grid_sample(z, flow_to_grid(flow))
    if occlusion is not None:
        occlusion = _resize_to(occlusion.float(), h, w)
        out = (out.float() * occlusion).to(z.dtype)
    return out


def _resize_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if tuple(x.shape[-2:]) == (h, w):
        return x
    shrink = h < x.shape[-2] or w < x.shape[-1]
    with torch.autocast(device_type=x.device.type, enabled=False):
        return F.interpolate(x.float(), size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)
