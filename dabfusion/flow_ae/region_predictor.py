"""Region predictor (MRAA): K soft regions, each summarised by a centre and an affine frame.

An hourglass turns the (downscaled) frame into K heatmaps, a spatial softmax with a temperature
makes each a distribution, and its mean (the region's *shift*) and covariance follow. The affine
frame is ``A = U diag(sqrt(S))`` from the eigen-decomposition ``covar = U S U^T`` (MRAA's
PCA-based affine). LFDM moves that SVD to the CPU; here the 2x2 symmetric eigenproblem is
solved in closed form, batched on whatever device the model runs on, in float32, with gradients
that stay finite (see :func:`covariance_to_affine`).
"""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Hourglass, param_dtype, resize
from .config import FlowAEConfig
from .warp import identity_grid

RegionParams = Dict[str, torch.Tensor]

#: variance floor (normalised units^2); a region is never thinner than ~1/100 of the frame.
EIG_EPS = 1e-5


def heatmap_to_params(heatmap: torch.Tensor) -> RegionParams:
    """Shift ``[B,K,2]`` and covariance ``[B,K,2,2]`` of normalised heatmaps ``[B,K,h,w]``."""
    _, _, h, w = heatmap.shape
    grid = identity_grid(h, w, device=heatmap.device, dtype=heatmap.dtype)  # [h,w,2]
    weights = heatmap.unsqueeze(-1)  # [B,K,h,w,1]
    shift = (weights * grid).sum(dim=(2, 3))  # [B,K,2]
    centred = grid - shift[:, :, None, None, :]  # [B,K,h,w,2]
    covar = torch.einsum("bkhw,bkhwi,bkhwj->bkij", heatmap, centred, centred)
    return {"shift": shift, "covar": covar}


def symmetric_eig2x2(covar: torch.Tensor, eps: float = EIG_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) ``[...,2]`` and eigenvectors (columns) ``[...,2,2]`` of 2x2 SPD.

    Closed form: with ``a, b, c`` the entries, ``cos 2t = (a-c)/r`` and ``sin 2t = 2b/r``
    (``r = sqrt((a-c)^2 + 4 b^2)``, floored); the principal direction ``(cos t, sin t)`` is the
    normalised half-angle vector, taken from ``(1 + cos 2t, sin 2t)`` or ``(sin 2t, 1 - cos 2t)``
    (whichever is longer, so the division is never by less than sqrt(2)). The principal axis
    always has ``x >= 0`` (sign convention; MRAA folds the rest with ``revert_axis_swap``).
    """
    a, b, c = covar[..., 0, 0], covar[..., 0, 1], covar[..., 1, 1]
    half_diff = 0.5 * (a - c)
    r = torch.sqrt(half_diff * half_diff + b * b + eps * eps)  # half of the eigenvalue gap
    mean = 0.5 * (a + c)
    lam1 = (mean + r).clamp_min(eps)
    lam2 = (mean - r).clamp_min(eps)
    cos2, sin2 = half_diff / r, b / r
    v_a = torch.stack([1 + cos2, sin2], dim=-1)
    v_b = torch.stack([sin2, 1 - cos2], dim=-1) * torch.where(sin2 < 0, -1.0, 1.0).unsqueeze(-1)
    use_a = (cos2 >= 0).unsqueeze(-1)  # |cos t| >= |sin t|
    v = torch.where(use_a, v_a, v_b)
    v = v / v.norm(dim=-1, keepdim=True)
    v1 = v  # principal
    v2 = torch.stack([-v[..., 1], v[..., 0]], dim=-1)
    vecs = torch.stack([v1, v2], dim=-1)  # columns
    return torch.stack([lam1, lam2], dim=-1), vecs


def covariance_to_affine(covar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A = U diag(sqrt(S))`` and its inverse ``diag(1/sqrt(S)) U^T``, both ``[...,2,2]``."""
    vals, vecs = symmetric_eig2x2(covar)
    sqrt = vals.sqrt()
    affine = vecs * sqrt.unsqueeze(-2)
    affine_inv = vecs.transpose(-1, -2) / sqrt.unsqueeze(-1)
    return affine, affine_inv


def inverse2x2(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of ``[...,2,2]`` matrices (no LAPACK call, any device)."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    inv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2)
    return inv / det[..., None, None]


class RegionPredictor(nn.Module):
    """Frames ``[B,3,H,W]`` (0..1) -> region parameters (shift, covar, affine, affine_inv, heatmap)."""

    def __init__(self, config: FlowAEConfig) -> None:
        super().__init__()
        self.config = config
        self.hourglass = Hourglass(config.in_channels, config.region_block_expansion,
                                   config.region_num_blocks, config.region_max_features, config.norm)
        self.to_heatmap = nn.Conv2d(self.hourglass.out_channels, config.num_regions, 7, padding=3)
        self.temperature = config.region_temperature
        self.size = config.region_size

    def forward(self, frames: torch.Tensor) -> RegionParams:
        x = resize(frames, self.size).to(param_dtype(self))
        logits = self.to_heatmap(self.hourglass(x))
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits = logits.float() / self.temperature
            b, k, h, w = logits.shape
            heatmap = F.softmax(logits.view(b, k, h * w), dim=-1).view(b, k, h, w)
            params = heatmap_to_params(heatmap)
            params["affine"], params["affine_inv"] = covariance_to_affine(params["covar"])
        params["heatmap"] = heatmap
        return params
