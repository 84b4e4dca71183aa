"""Image encoder and decoder of the flow AE (LFDM's generator, split at the latent).

Encoder: 7x7 conv block, then ``num_down_blocks`` down blocks (x2 each) -> z ``[B,C,H/4,W/4]``.
Decoder: ``num_bottleneck_blocks`` residual blocks on z~, up blocks, 7x7 conv, sigmoid. It sees
only z~ (no skip connections from the reference), so what the occlusion map zeroes has to be
inpainted from context, and the diffusion stage can decode from z0 and generated flows alone.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d, param_dtype
from .config import FlowAEConfig


def _widths(config: FlowAEConfig) -> list[int]:
    return [min(config.max_features, config.block_expansion * 2 ** i) for i in range(config.num_down_blocks + 1)]


class ImageEncoder(nn.Module):
    """Frames ``[B,3,H,W]`` in 0..1 -> latent ``[B,C,H/2^n,W/2^n]``."""

    def __init__(self, config: FlowAEConfig) -> None:
        super().__init__()
        w = _widths(config)
        self.first = SameBlock2d(config.in_channels, w[0], kernel_size=7, norm=config.norm)
        self.down = nn.Sequential(*[DownBlock2d(w[i], w[i + 1], config.norm) for i in range(config.num_down_blocks)])

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.down(self.first(frames.to(param_dtype(self))))


class ImageDecoder(nn.Module):
    """Warped latent ``[B,C,h,w]`` -> frames ``[B,3,H,W]`` in 0..1."""

    def __init__(self, config: FlowAEConfig) -> None:
        super().__init__()
        w = _widths(config)
        self.bottleneck = nn.Sequential(*[ResBlock2d(w[-1], config.norm) for _ in range(config.num_bottleneck_blocks)])
        self.up = nn.Sequential(*[UpBlock2d(w[i + 1], w[i], config.norm) for i in reversed(range(config.num_down_blocks))])
        self.final = nn.Conv2d(w[0], config.in_channels, 7, padding=3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.final(self.up(self.bottleneck(z.to(param_dtype(self))))))
