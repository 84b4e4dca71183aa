"""Random-weight stand-ins for the evaluation's weight files, written in the official layouts.

The tests cannot download I3D, LPIPS or CLIP, so they build the real networks with random
weights, save them exactly as the official files are laid out and load them back through the
real loaders. Handy to smoke-test an installation too::

    python -c "from dabfusion.testing.eval_weights import write_all; print(write_all('/tmp/eval_weights'))"

The numbers such weights give mean nothing; only the plumbing is real.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import torch


def write_random_i3d(path: str | os.PathLike, seed: int = 0) -> Path:
    """``rgb_imagenet.pt`` layout: a flat state dict of piergiaj's InceptionI3d (about 51 MB)."""
    from ..evaluation.i3d import InceptionI3d

    torch.manual_seed(seed)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save(OrderedDict(InceptionI3d().state_dict()), p)
    return p


def write_random_lpips(folder: str | os.PathLike, net: str = "alex", seed: int = 0) -> Path:
    """``alex.pth`` (lpips v0.1 linear layers) + the torchvision backbone file beside it.

    The backbone file holds the ``features.*`` tensors of torchvision's official file (the
    classifier, which LPIPS never uses, would add 230 MB of random numbers) and one small
    ``classifier.*`` entry to show that the loader ignores them. Returns the ``alex.pth`` path.
    """
    import torchvision

    from ..evaluation.lpips import NETS

    torch.manual_seed(seed)
    builder, _, chans, backbone_name = NETS[net]
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    feats = getattr(torchvision.models, builder)(weights=None).features.state_dict()
    backbone = OrderedDict((f"features.{k}", v.clone()) for k, v in feats.items())
    backbone["classifier.6.bias"] = torch.zeros(1000)
    torch.save(backbone, root / backbone_name)
    lin = OrderedDict((f"lin{i}.model.1.weight", torch.rand(1, c, 1, 1) * 0.1) for i, c in enumerate(chans))
    torch.save(lin, root / f"{net}.pth")
    return root / f"{net}.pth"


def write_random_clip(folder: str | os.PathLike, *, image_size: int = 32, projection_dim: int = 512,
                      seed: int = 0) -> Path:
    """A tiny CLIP in Hugging Face's layout (``save_pretrained``: config.json + model.safetensors)."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=64, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        projection_dim=projection_dim)
    root = Path(folder)
    CLIPModel(cfg).save_pretrained(str(root))
    (root / "preprocessor_config.json").write_text(json.dumps({
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "crop_size": {"height": image_size, "width": image_size}, "size": {"shortest_edge": image_size}}) + "\n")
    return root


def write_random_wav2clip(path: str | os.PathLike, seed: int = 0) -> Path:
    """The official ``Wav2CLIP.pt`` layout (a flat state dict of the pre-training module)."""
    from ..music.wav2clip_branch import Wav2ClipEncoder, save_official_layout

    torch.manual_seed(seed)
    return save_official_layout(Wav2ClipEncoder(), path)


def write_all(folder: str | os.PathLike) -> dict[str, str]:
    """Every file the evaluation can take, random; returns the command-line options for them."""
    root = Path(folder)
    return {"--i3d": str(write_random_i3d(root / "rgb_imagenet.pt")),
            "--lpips": str(write_random_lpips(root / "lpips")),
            "--clip": str(write_random_clip(root / "clip")),
            "--wav2clip": str(write_random_wav2clip(root / "Wav2CLIP.pt"))}
