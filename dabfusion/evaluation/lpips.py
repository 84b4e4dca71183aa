"""LPIPS (Zhang et al. 2018) rebuilt from torchvision's backbones and the lpips package's weights.

The ``lpips`` package would fetch its ImageNet backbone from the internet
(``torchvision.models.alexnet(pretrained=True)``) and is not a dependency of this project, so the
network is rebuilt here from two files the user provides (:data:`~.weights.LPIPS`,
:data:`~.weights.LPIPS_BACKBONE`):

- the linear-layer weights of lpips v0.1, ``alex.pth`` (or ``vgg.pth``): a state dict
  ``lin{0..4}.model.1.weight`` of shape ``[1, C_l, 1, 1]`` (layer ``model.0`` is a dropout);
- torchvision's ImageNet backbone, ``alexnet-owt-7be5be79.pth`` (``vgg16-397923af.pth``), looked
  for next to the linear weights and in torch's hub cache when not given explicitly.

The computation is lpips v0.1's: inputs in [-1, 1] shifted and scaled by its ScalingLayer
(shift ``[-.030, -.088, -.188]``, scale ``[.458, .448, .450]``), features after the ReLU that
closes each of five backbone slices, unit-normalised over channels (eps 1e-10), squared
difference, the 1x1 linear layer, the spatial mean, summed over layers. One value per image
pair; the videos' LPIPS is the mean over frames.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModelFileError
from .weights import LPIPS as LPIPS_FILE
from .weights import LPIPS_BACKBONE, check_state_dict, load_state_dict_file, require_file, skip_note

NETS = {
    # net: (torchvision builder, slice ends in .features, channels per slice, backbone file name)
    "alex": ("alexnet", (2, 5, 8, 10, 12), (64, 192, 384, 256, 256), "alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16", (4, 9, 16, 23, 30), (64, 128, 256, 512, 512), "vgg16-397923af.pth"),
}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class _Lin(nn.Module):
    """lpips' NetLinLayer: dropout (inactive in eval) + 1x1 conv to one channel, no bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 with an AlexNet (``alex``) or VGG-16 (``vgg``) trunk; random until loaded."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        import torchvision

        if net not in NETS:
            raise ValueError(f"net must be one of {sorted(NETS)}, got {net!r}")
        builder, ends, chans, _ = NETS[net]
        self.net_name = net
        self.features = getattr(torchvision.models, builder)(weights=None).features
        self.ends = ends
        for i, c in enumerate(chans):
            setattr(self, f"lin{i}", _Lin(c))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, start = [], 0
        for end in self.ends:
            for i in range(start, end):
                x = self.features[i](x)
            out.append(x)
            start = end
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distance per pair ``[B]`` of images ``[B, 3, H, W]`` in 0..1."""
        if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
            raise ValueError(f"LPIPS takes two [B, 3, H, W] tensors of one shape, got {tuple(a.shape)}, {tuple(b.shape)}")
        fa = self.layers(((a * 2 - 1) - self.shift) / self.scale)
        fb = self.layers(((b * 2 - 1) - self.shift) / self.scale)
        total = torch.zeros(a.shape[0], device=a.device, dtype=torch.float32)
        for i, (x, y) in enumerate(zip(fa, fb)):
            x = x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            y = y / (y.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{i}")((x - y) ** 2).mean(dim=(1, 2, 3)).float()
        return total

    @torch.inference_mode()
    def video(self, generated: Any, real: Any, chunk: int = 32) -> float:
        """Mean LPIPS over the frames of two videos (uint8 ``[N, H, W, 3]``)."""
        dev = self.shift.device
        vals = []
        for i in range(0, len(generated), chunk):
            a = _to_tensor(generated[i:i + chunk]).to(dev)
            b = _to_tensor(real[i:i + chunk]).to(dev)
            vals.append(self(a, b))
        return float(torch.cat(vals).mean()) if vals else float("nan")


def _to_tensor(frames: Any) -> torch.Tensor:
    import numpy as np

    arr = np.array(frames)
    t = torch.from_numpy(arr).permute(0, 3, 1, 2).float()
    return t / 255.0 if arr.dtype == np.uint8 else t


def _net_of(lin_state: dict[str, Any], path: Path) -> str:
    w = lin_state.get("lin1.model.1.weight")
    for net, (_, _, chans, _) in NETS.items():
        if w is not None and tuple(w.shape) == (1, chans[1], 1, 1):
            return net
    raise ModelFileError(f"{path} is not an LPIPS alex.pth / vgg.pth linear-layer file (no lin1.model.1.weight "
                         f"of 192 or 128 channels; squeeze.pth is not supported). Use {LPIPS_FILE.how_to()}.")


def find_backbone(net: str, lin_path: Path, backbone: str | os.PathLike | None = None) -> Path:
    """The torchvision backbone file: the one given, else the official name next to ``lin_path``
    or in torch's hub cache (``$TORCH_HOME/hub/checkpoints``), where torchvision keeps downloads."""
    if backbone:
        return require_file(backbone, LPIPS_BACKBONE)
    name = NETS[net][3]
    candidates = [lin_path.parent / name, Path(torch.hub.get_dir()) / "checkpoints" / name]
    for c in candidates:
        if c.is_file():
            return c
    raise ModelFileError(
        f"LPIPS ({net}) needs torchvision's ImageNet {NETS[net][0]} weights, {name}; none was given and none "
        f"is at {' or '.join(str(c) for c in candidates)}. Put {name} next to {lin_path.name} or pass "
        f"{LPIPS_BACKBONE.how_to()}.")


def load_lpips(path: str | os.PathLike, backbone: str | os.PathLike | None = None, *,
               device: str | torch.device = "cpu") -> LPIPS:
    """LPIPS from its linear weights (``alex.pth``/``vgg.pth``) and the matching torchvision backbone."""
    lin_path = require_file(path, LPIPS_FILE)
    lin = load_state_dict_file(lin_path, LPIPS_FILE)
    net = _net_of(lin, lin_path)
    model = LPIPS(net)
    expected_lin = {k: v for k, v in model.state_dict().items() if k.startswith("lin")}
    check_state_dict(lin, expected_lin, lin_path, LPIPS_FILE)
    bb_path = find_backbone(net, lin_path, backbone)
    bb = load_state_dict_file(bb_path, LPIPS_BACKBONE)
    feats = {k: v for k, v in bb.items() if k.startswith("features.")}
    expected_bb = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    check_state_dict(feats, expected_bb, bb_path, LPIPS_BACKBONE)
    model.load_state_dict({**lin, **feats}, strict=True)
    model.sources = (lin_path.name, bb_path.name)
    return model.to(device).eval()


def try_load_lpips(path: str | os.PathLike | None, backbone: str | os.PathLike | None = None,
                   **kw: Any) -> tuple[LPIPS | None, str | None]:
    """(model, None), or (None, the note naming the files) when no linear-weights file is given."""
    if not path:
        return None, skip_note(LPIPS_FILE)
    return load_lpips(path, backbone, **kw), None

