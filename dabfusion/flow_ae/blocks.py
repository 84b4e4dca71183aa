"""Convolutional building blocks shared by the encoder, decoder and both motion networks.

They follow FOMM/MRAA/LFDM (conv -> norm -> ReLU, average pooling down, nearest upsampling up,
an hourglass with skip concatenation) with the normalisation made a choice (see
:attr:`FlowAEConfig.norm`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def make_norm(kind: str, channels: int) -> nn.Module:
    """GroupNorm with the largest group count <= 32 that leaves >= 2 channels a group, or BatchNorm."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    for groups in (32, 16, 8, 4, 2, 1):
        if channels % groups == 0 and (channels // groups >= 2 or groups == 1):
            return nn.GroupNorm(groups, channels)
    raise AssertionError("unreachable")


class SameBlock2d(nn.Module):
    """conv -> norm -> ReLU at the same resolution."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, norm: str = "group") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2)
        self.norm = make_norm(norm, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    """conv -> norm -> ReLU -> 2x2 average pooling (halves the resolution)."""

    def __init__(self, cin: int, cout: int, norm: str = "group") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = make_norm(norm, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), 2)


class UpBlock2d(nn.Module):
    """2x nearest upsampling -> conv -> norm -> ReLU."""

    def __init__(self, cin: int, cout: int, norm: str = "group") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = make_norm(norm, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(x)))


class ResBlock2d(nn.Module):
    """Pre-activation residual block (norm -> ReLU -> conv, twice), channels unchanged."""

    def __init__(self, channels: int, norm: str = "group") -> None:
        super().__init__()
        self.norm1 = make_norm(norm, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = make_norm(norm, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return x + out


class Hourglass(nn.Module):
    """U-Net-like encoder/decoder; the output is the last decoder map concatenated with the input.

    Channel widths are ``min(max_features, block_expansion * 2**(i+1))`` going down, as in MRAA.
    ``out_channels`` = ``block_expansion + in_channels``.
    """

    def __init__(self, in_channels: int, block_expansion: int, num_blocks: int,
                 max_features: int, norm: str = "group") -> None:
        super().__init__()

        def width(i: int) -> int:
            return min(max_features, block_expansion * 2 ** i)

        self.down = nn.ModuleList(
            DownBlock2d(in_channels if i == 0 else width(i), width(i + 1), norm) for i in range(num_blocks))
        up = []
        for i in reversed(range(num_blocks)):
            cin = (1 if i == num_blocks - 1 else 2) * width(i + 1)
            up.append(UpBlock2d(cin, width(i), norm))
        self.up = nn.ModuleList(up)
        self.out_channels = block_expansion + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [x]
        for block in self.down:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.up:
            out = block(out)
            out = torch.cat([out, skips.pop()], dim=1)
        return out


def param_dtype(module: nn.Module) -> torch.dtype:
    """The floating dtype a module's weights are stored in (what its inputs must be cast to)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (antialiased when shrinking), computed in float32 for any input dtype.

    float32 keeps the op available on every device/dtype (antialiased bf16 kernels are missing on
    some backends) and the cost is negligible at these sizes.
    """
    if isinstance(size, int):
        size = (size, size)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    with torch.autocast(device_type=x.device.type, enabled=False):
        out = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return out.to(x.dtype)
