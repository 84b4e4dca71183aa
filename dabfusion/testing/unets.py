"""U-Nets with fixed random weights for sampler and generation tests (zero-initialised output layers
would make every sample the same, so every weight is drawn)."""

from __future__ import annotations

import torch

from ..diffusion.unet3d import UNet3D


def random_unet(config, seed: int = 0, scale: float = 0.1) -> UNet3D:
    model = UNet3D(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()
