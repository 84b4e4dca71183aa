"""Dense motion network (MRAA's pixel-wise flow predictor): regions -> backward flow + occlusion.

For each region k the driving->reference motion near it is affine,
``T_k(p) = A_ref,k A_drv,k^-1 (p - mu_drv,k) + mu_ref,k``, and the background does not move.
An hourglass sees, per region, the difference of the two regions' Gaussians and the reference
frame warped by ``T_k``, and predicts soft masks that blend the K+1 motions into one dense
sampling grid, plus an occlusion map (sigmoid, 1 = visible). Both are returned at the latent
resolution, the flow as offsets in normalised coordinates (see :mod:`.warp`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import DownBlock2d, Hourglass, param_dtype, resize
from .config import FlowAEConfig
from .region_predictor import RegionParams, inverse2x2
from .warp import grid_sample, grid_to_flow, identity_grid

PADDING_MODE_SPARSE = "zeros"


def region_gaussians(shift: torch.Tensor, covar: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Gaussians ``[B,K,h,w]`` with the regions' means and covariances (unnormalised, peak 1)."""
    grid = identity_grid(h, w, device=shift.device, dtype=shift.dtype)
    d = grid - shift[:, :, None, None, :]  # [B,K,h,w,2]
    eye = torch.eye(2, device=covar.device, dtype=covar.dtype)
    inv = inverse2x2(covar + 1e-6 * eye)
    mahal = torch.einsum("bkhwi,bkij,bkhwj->bkhw", d, inv, d)
    return torch.exp(-0.5 * mahal)


class BackgroundMotionPredictor(nn.Module):
    """MRAA's BG motion predictor: (reference, driving) -> background affine ``[B,2,3]``.

    Maps driving coordinates to reference coordinates; initialised to the identity (zero weights,
    identity bias) so training starts from a still background.
    """

    def __init__(self, config: FlowAEConfig) -> None:
        super().__init__()
        widths = [min(config.bg_max_features, config.bg_block_expansion * 2 ** (i + 1))
                  for i in range(config.bg_num_blocks)]
        blocks, cin = [], 2 * config.in_channels
        for cout in widths:
            blocks.append(DownBlock2d(cin, cout, config.norm))
            cin = cout
        self.encoder = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, 6)
        nn.init.zeros_(self.fc.weight)
        with torch.no_grad():
            self.fc.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
        self.size = config.region_size

    def forward(self, reference: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        x = torch.cat([resize(reference, self.size), resize(driving, self.size)], dim=1)
        feats = self.encoder(x.to(param_dtype(self))).mean(dim=(2, 3))
        with torch.autocast(device_type=feats.device.type, enabled=False):  # coordinates need fp32
            return F.linear(feats.float(), self.fc.weight.float(), self.fc.bias.float()).view(-1, 2, 3)


class DenseMotionNetwork(nn.Module):
    """(reference, driving, their region params) -> (flow ``[B,2,h,w]``, occlusion ``[B,1,h,w]``)."""

    def __init__(self, config: FlowAEConfig) -> None:
        super().__init__()
        self.config = config
        k = config.num_regions
        in_ch = (k + 1) * (config.in_channels + 1)
        self.hourglass = Hourglass(in_ch, config.motion_block_expansion, config.motion_num_blocks,
                                   config.motion_max_features, config.norm)
        self.mask = nn.Conv2d(self.hourglass.out_channels, k + 1, 7, padding=3)
        self.occlusion = nn.Conv2d(self.hourglass.out_channels, 1, 7, padding=3)
        # Start close to "nothing moves, everything visible": the background (identity) motion
        # gets about half of the mask (logit log K over K regions) and the occlusion map about
        # 0.9, so early training learns the auto-encoder on top of a sensible copy of the
        # reference and the regions then learn where it has to move.
        with torch.no_grad():
            self.mask.bias.zero_()
            self.mask.bias[0] = math.log(k)
            self.occlusion.bias.fill_(2.0)
        self.size = config.motion_size
        self.out_size = config.latent_size
        self.revert_axis_swap = config.revert_axis_swap
        self.background = BackgroundMotionPredictor(config) if config.bg_motion == "affine" else None

    def sparse_motions(self, ref: RegionParams, drv: RegionParams, h: int, w: int,
                       bg_affine: torch.Tensor | None = None) -> torch.Tensor:
        """Absolute sampling grids ``[B,K+1,h,w,2]``: background identity, then one per region."""
        b, k, _ = ref["shift"].shape
        grid = identity_grid(h, w, device=ref["shift"].device, dtype=torch.float32)
        affine = ref["affine"] @ drv["affine_inv"]  # [B,K,2,2]
        if self.revert_axis_swap:
            affine = affine * torch.sign(affine[..., 0:1, 0:1]).detach()
        rel = grid[None, None] - drv["shift"][:, :, None, None, :]  # [B,K,h,w,2]
        moved = torch.einsum("bkij,bkhwj->bkhwi", affine, rel) + ref["shift"][:, :, None, None, :]
        if bg_affine is None:
            background = grid.expand(b, 1, h, w, 2)
        else:
            background = (torch.einsum("bij,hwj->bhwi", bg_affine[:, :, :2], grid)
                          + bg_affine[:, None, None, :, 2]).unsqueeze(1)
        return torch.cat([background, moved], dim=1)

    def forward(self, reference: torch.Tensor, driving: torch.Tensor, ref: RegionParams,
                drv: RegionParams) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = param_dtype(self.hourglass)
        bg_affine = self.background(reference, driving) if self.background is not None else None
        src = resize(reference, self.size)
        b, c, h, w = src.shape
        k = self.config.num_regions
        with torch.autocast(device_type=src.device.type, enabled=False):
            ref32 = {n: t.float() for n, t in ref.items() if n != "heatmap"}
            drv32 = {n: t.float() for n, t in drv.items() if n != "heatmap"}
            heat = (region_gaussians(drv32["shift"], drv32["covar"], h, w)
                    - region_gaussians(ref32["shift"], ref32["covar"], h, w))
            heat = torch.cat([heat.new_zeros(b, 1, h, w), heat], dim=1)  # [B,K+1,h,w]
            motions = self.sparse_motions(ref32, drv32, h, w, bg_affine)  # [B,K+1,h,w,2]
            deformed = grid_sample(src.float().repeat_interleave(k + 1, dim=0),
                                   motions.reshape(b * (k + 1), h, w, 2), padding_mode=PADDING_MODE_SPARSE)
            deformed = deformed.view(b, k + 1, c, h, w)
            inp = torch.cat([heat.unsqueeze(2), deformed], dim=2).view(b, (k + 1) * (c + 1), h, w)
        feats = self.hourglass(inp.to(dtype))
        mask_logits = self.mask(feats)
        occ_logits = self.occlusion(feats)
        with torch.autocast(device_type=src.device.type, enabled=False):
            mask = F.softmax(mask_logits.float(), dim=1)  # [B,K+1,h,w]
            grid = torch.einsum("bkhw,bkhwi->bhwi", mask, motions)
            flow = grid_to_flow(grid)
            occlusion = torch.sigmoid(occ_logits.float())
            flow = resize(flow, self.out_size)
            occlusion = resize(occlusion, self.out_size).clamp(0.0, 1.0)
        return flow, occlusion
