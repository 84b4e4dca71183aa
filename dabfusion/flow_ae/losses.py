"""Training losses of the flow AE: reconstruction (VGG-19 pyramid or L1+SSIM) and equivariance.

Reconstruction (paper eq. 2, as implemented by FOMM/MRAA/LFDM): L1 distances between VGG-19
features (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1) of the output and the driving frame, on an
image pyramid (scales 1, 1/2, 1/4, 1/8), weight 10 per layer. It needs *trained* VGG-19 weights in
torchvision's layout (``vgg19-dcbb9e9d.pth``); without the file we refuse rather than silently use
a random VGG. The alternative, chosen explicitly (``perceptual="l1ssim"``), is a multi-scale
``L1 + (1 - SSIM)`` on the same pyramid: it needs no weights and optimises the very measures the
evaluation reports (PSNR, SSIM), at the cost of blurrier textures than a perceptual loss.

Equivariance (MRAA): regions found on a randomly warped driving frame (affine + thin-plate
spline, :class:`RandomTransform`) must map back onto the regions of the frame itself, both
centres (``equivariance_shift``) and affine frames (``equivariance_affine``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFileError
from ..metrics.image_quality import ssim
from .blocks import resize
from .region_predictor import RegionParams
from .warp import ALIGN_CORNERS, identity_grid

log = logging.getLogger(__name__)

PERCEPTUAL_KINDS = ("vgg19", "l1ssim")
VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_ENV = "DABFUSION_VGG19"
#: torchvision's VGG-19 ("E") feature layers up to relu5_1, index by index (M = max pool).
_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]
#: slices ending after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (torchvision indices)
VGG19_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class LossConfig:
    """Loss settings; saved with the checkpoint's training info."""

    perceptual: str = "vgg19"
    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    perceptual_weights: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0, 10.0)
    l1_weight: float = 10.0
    ssim_weight: float = 10.0
    equivariance_shift: float = 10.0
    equivariance_affine: float = 10.0
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def uses_equivariance(self) -> bool:
        return self.equivariance_shift > 0 or self.equivariance_affine > 0


# ---------------------------------------------------------------------------------- VGG-19


def _vgg19_layers() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            cin = v
    return nn.Sequential(*layers)  # indices 0..29, as torchvision's vgg19().features[:30]


def vgg19_search_places(path: str | os.PathLike | None = None) -> list[Path]:
    """Where a VGG-19 file is looked for: only ``path`` (a file or a folder) when given; otherwise
    ``$DABFUSION_VGG19`` and torch's hub cache (``$TORCH_HOME/hub/checkpoints``, where torchvision
    keeps its downloads), in that order."""
    if path is not None:
        return [Path(path).expanduser()]
    places: list[Path] = []
    if os.environ.get(VGG19_ENV):
        places.append(Path(os.environ[VGG19_ENV]).expanduser())
    places.append(Path(torch.hub.get_dir()) / "checkpoints")
    return places


def find_vgg19_weights(path: str | os.PathLike | None = None) -> Path:
    """The VGG-19 weight file to use, or :class:`ModelFileError` naming the folders searched."""
    places = vgg19_search_places(path)
    if path is not None and not places[0].exists():
        raise ModelFileError(
            f"VGG-19 weights not found at {places[0]} (folder {places[0].parent}). Put torchvision's "
            f"{VGG19_FILE} ({VGG19_URL}) there, or choose the fallback loss with --perceptual l1ssim.")
    for place in places:
        if place.is_file():
            return place
        if place.is_dir():
            found = sorted(place.glob("vgg19*.pth")) + sorted(place.glob("vgg19*.safetensors"))
            found = [f for f in found if not f.name.startswith("vgg19_bn")]
            if found:
                exact = [f for f in found if f.name == VGG19_FILE]
                return (exact or found)[0]
    folders = ", ".join(str(p) for p in places)
    raise ModelFileError(
        f"No VGG-19 weight file (vgg19*.pth or vgg19*.safetensors) in {folders}. Put torchvision's "
        f"{VGG19_FILE} ({VGG19_URL}) there or pass its path (--vgg-weights), or choose the "
        f"fallback loss explicitly with --perceptual l1ssim.")


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any reader failure means "not a weight file"
        raise ModelFileError(f"Cannot read VGG-19 weights from {path}: {e}. Expected torchvision's "
                             f"{VGG19_FILE} ({VGG19_URL}) or a safetensors file with its keys.") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ModelFileError(f"{path} does not hold a state dict (got {type(obj).__name__}).")
    return obj


class VGG19Features(nn.Module):
    """Frozen VGG-19 features relu1_1..relu5_1 of images in 0..1 (ImageNet-normalised inside)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = _vgg19_layers()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None) -> "VGG19Features":
        """Load torchvision-layout weights (``features.N.weight`` ...; classifier keys ignored)."""
        file = find_vgg19_weights(path)
        state = _read_state_dict(file)
        model = cls()
        expected = model.features.state_dict()
        prefix = "features." if any(k.startswith("features.") for k in state) else ""
        picked, problems = {}, []
        for key, ref in expected.items():
            value = state.get(prefix + key)
            if value is None:
                problems.append(f"missing {prefix + key}")
            elif tuple(value.shape) != tuple(ref.shape):
                problems.append(f"{prefix + key} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}")
            else:
                picked[key] = value.float()
        if problems:
            raise ModelFileError(
                f"{file} is not a torchvision VGG-19 state dict: {'; '.join(problems[:5])}"
                f"{' ...' if len(problems) > 5 else ''}. Expected {VGG19_FILE} ({VGG19_URL}).")
        if not all(torch.isfinite(v).all() for v in picked.values()):
            raise ModelFileError(f"{file} holds non-finite VGG-19 weights.")
        model.features.load_state_dict(picked, strict=True)
        model.source = str(file)
        log.info("VGG-19 perceptual loss: weights from %s", file)
        return model

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        outs = []
        for start, stop in VGG19_SLICES:
            for i in range(start, stop):
                x = self.features[i](x)
            outs.append(x)
        return outs


def _pyramid_sizes(size: int, scales: Iterable[float], minimum: int) -> list[tuple[float, int]]:
    out = []
    for s in scales:
        px = int(round(size * s))
        if px >= minimum:
            out.append((s, px))
    return out


class VGGPyramidLoss(nn.Module):
    """Sum over scales and VGG layers of ``w_l * mean|V_l(x) - V_l(y)|`` (MRAA's perceptual loss)."""

    name = "vgg19"

    def __init__(self, vgg: VGG19Features, scales: Iterable[float], weights: Iterable[float]) -> None:
        super().__init__()
        self.vgg = vgg
        self.scales = tuple(scales)
        self.weights = tuple(weights)

    def describe(self) -> str:
        return f"VGG-19 perceptual pyramid (scales {self.scales}, weights {self.weights}) from {self.vgg.source}"

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        total = output.new_zeros((), dtype=torch.float32)
        # relu5_1 sits after 4 poolings: keep the levels that are at least 16 pixels
        for _, px in _pyramid_sizes(output.shape[-1], self.scales, 16):
            fo = self.vgg(resize(output, px))
            with torch.no_grad():
                ft = self.vgg(resize(target, px))
            for w, a, b in zip(self.weights, fo, ft):
                total = total + w * (a.float() - b.float()).abs().mean()
        return {"perceptual": total}


class L1SSIMPyramidLoss(nn.Module):
    """Sum over scales of ``l1_weight * L1 + ssim_weight * (1 - SSIM)``: the weight-free fallback."""

    name = "l1ssim"

    def __init__(self, scales: Iterable[float], l1_weight: float, ssim_weight: float) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.l1_weight = l1_weight
        self.ssim_weight = ssim_weight

    def describe(self) -> str:
        return (f"L1+SSIM pyramid fallback (scales {self.scales}, L1 weight {self.l1_weight}, "
                f"SSIM weight {self.ssim_weight}); no VGG-19 involved")

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        l1 = output.new_zeros((), dtype=torch.float32)
        dssim = output.new_zeros((), dtype=torch.float32)
        for _, px in _pyramid_sizes(output.shape[-1], self.scales, 4):
            o, t = resize(output, px).float(), resize(target, px).float()
            l1 = l1 + (o - t).abs().mean()
            dssim = dssim + (1 - ssim(o, t)).mean()
        return {"l1": self.l1_weight * l1, "dssim": self.ssim_weight * dssim}


def build_reconstruction_loss(config: LossConfig, vgg_weights: str | os.PathLike | None = None) -> nn.Module:
    """The reconstruction loss ``config.perceptual`` names; ``vgg19`` without weights is an error."""
    if config.perceptual == "vgg19":
        return VGGPyramidLoss(VGG19Features.from_file(vgg_weights), config.scales, config.perceptual_weights)
    if config.perceptual == "l1ssim":
        log.info("Reconstruction loss: L1+SSIM fallback (chosen explicitly, no VGG-19)")
        return L1SSIMPyramidLoss(config.scales, config.l1_weight, config.ssim_weight)
    raise ValueError(f"perceptual must be one of {PERCEPTUAL_KINDS}, got {config.perceptual!r}")


# ---------------------------------------------------------------------------------- equivariance


class RandomTransform:
    """Random affine + thin-plate-spline warp of normalised coordinates (FOMM/MRAA equivariance).

    ``T(p) = A p + t + sum_i w_i phi(|p - c_i|)`` with ``phi(r) = r^2 log r`` on a
    ``points x points`` grid of control points spanning [-1, 1]. ``transform_frame`` samples a frame
    at ``T(p)`` (so a point at ``q`` in the transformed frame shows what the original has at
    ``T(q)``); :meth:`jacobian` is analytic, so no autograd pass is needed.
    """

    def __init__(self, batch: int, *, sigma_affine: float, sigma_tps: float, points_tps: int,
                 generator: torch.Generator | None = None, device=None) -> None:
        g = generator
        noise = torch.randn(batch, 2, 3, generator=g) * sigma_affine
        self.theta = (noise + torch.eye(2, 3)).to(device)
        axis = torch.linspace(-1, 1, points_tps)
        cy, cx = torch.meshgrid(axis, axis, indexing="ij")
        self.control = torch.stack([cx, cy], dim=-1).view(-1, 2).to(device)  # [P,2]
        self.weights = (torch.randn(batch, points_tps ** 2, 2, generator=g) * sigma_tps).to(device)

    def _tps_terms(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        diff = coords[:, :, None, :] - self.control[None, None]  # [B,N,P,2]
        s = (diff * diff).sum(-1) + 1e-9  # r^2
        return diff, s

    def warp_coordinates(self, coords: torch.Tensor) -> torch.Tensor:
        """``T(coords)`` for ``coords`` ``[B,N,2]`` (x, y)."""
        coords = coords.float()
        out = torch.einsum("bij,bnj->bni", self.theta[:, :, :2], coords) + self.theta[:, None, :, 2]
        _, s = self._tps_terms(coords)
        phi = 0.5 * s * torch.log(s)  # r^2 log r
        return out + torch.einsum("bnp,bpi->bni", phi, self.weights)

    def jacobian(self, coords: torch.Tensor) -> torch.Tensor:
        """``dT/dp`` ``[B,N,2,2]`` at ``coords`` ``[B,N,2]``."""
        coords = coords.float()
        diff, s = self._tps_terms(coords)
        dphi = (torch.log(s) + 1.0).unsqueeze(-1) * diff  # [B,N,P,2] d phi / d p
        tps = torch.einsum("bpi,bnpj->bnij", self.weights, dphi)
        return self.theta[:, None, :, :2] + tps

    def transform_frame(self, frames: torch.Tensor) -> torch.Tensor:
        b, _, h, w = frames.shape
        with torch.autocast(device_type=frames.device.type, enabled=False):
            grid = identity_grid(h, w, device=frames.device).view(1, h * w, 2).expand(b, -1, -1)
            grid = self.warp_coordinates(grid).view(b, h, w, 2)
            out = F.grid_sample(frames.float(), grid, mode="bilinear", padding_mode="reflection",
                                align_corners=ALIGN_CORNERS)
        return out.to(frames.dtype)


def equivariance_losses(driving: RegionParams, transformed: RegionParams,
                        transform: RandomTransform, revert_axis_swap: bool = True) -> dict[str, torch.Tensor]:
    """MRAA's equivariance terms (unweighted): centre distance and ``|I - A_d^-1 J A_t|``.

    Coordinates and 2x2 products are computed in float32 with autocast off (bf16 would round
    region centres to ~0.1 pixel).
    """
    with torch.autocast(device_type=driving["shift"].device.type, enabled=False):
        return _equivariance(driving, transformed, transform, revert_axis_swap)


def _equivariance(driving: RegionParams, transformed: RegionParams, transform: RandomTransform,
                  revert_axis_swap: bool) -> dict[str, torch.Tensor]:
    shift_back = transform.warp_coordinates(transformed["shift"].float())
    shift_loss = (driving["shift"].float() - shift_back).abs().mean()
    jac = transform.jacobian(transformed["shift"].float())  # [B,K,2,2]
    value = driving["affine_inv"].float() @ jac @ transformed["affine"].float()
    if revert_axis_swap:
        value = value * torch.sign(value[..., 0:1, 0:1]).detach()
    eye = torch.eye(2, device=value.device, dtype=value.dtype)
    affine_loss = (eye - value).abs().mean()
    return {"equivariance_shift": shift_loss, "equivariance_affine": affine_loss}


class FlowAELoss(nn.Module):
    """Total training loss: reconstruction terms + weighted equivariance terms."""

    def __init__(self, config: LossConfig, reconstruction: nn.Module, revert_axis_swap: bool = True) -> None:
        super().__init__()
        self.config = config
        self.reconstruction = reconstruction
        self.revert_axis_swap = revert_axis_swap

    def make_transform(self, batch: int, generator: torch.Generator, device) -> RandomTransform:
        c = self.config
        return RandomTransform(batch, sigma_affine=c.sigma_affine, sigma_tps=c.sigma_tps,
                               points_tps=c.points_tps, generator=generator, device=device)

    def forward(self, out: Mapping[str, Any], driving: torch.Tensor,
                transform: RandomTransform | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = dict(self.reconstruction(out["reconstruction"], driving))
        if transform is not None and "regions_transformed" in out:
            eq = equivariance_losses(out["regions_driving"], out["regions_transformed"], transform,
                                     self.revert_axis_swap)
            terms["equivariance_shift"] = self.config.equivariance_shift * eq["equivariance_shift"]
            terms["equivariance_affine"] = self.config.equivariance_affine * eq["equivariance_affine"]
        total = sum(terms.values())
        return total, terms


__all__ = [
    "LossConfig", "VGG19Features", "VGGPyramidLoss", "L1SSIMPyramidLoss", "build_reconstruction_loss",
    "find_vgg19_weights", "RandomTransform", "equivariance_losses", "FlowAELoss",
]
