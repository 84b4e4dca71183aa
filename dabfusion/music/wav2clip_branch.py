"""Wav2CLIP's audio encoder (ResNet-18 on a log spectrogram + its CLIP-space MLP): e_w's encoder.

``wav2clip.get_model()`` downloads ``Wav2CLIP.pt`` from GitHub; we never call it. Instead we build
the package's own ``ResNetExtractor`` (``wav2clip/model/encoder.py``) without a checkpoint, give it
the ``MLPLayers([512, 512, 512])`` transform that ``get_model(pretrained=True)`` adds
(``transform=True``), and load the official file ourselves.

Official file layout (what ``get_model`` does with it): ``torch.load`` gives a *flat* state dict
of the pre-training LightningModule (``wav2clip/pre_training/model.py``): ``audio_encoder.*`` (the
ResNet, including the ``spectrogram.window`` buffer), ``audio_transform.sequential.{0,3}.*`` (the
MLP), plus ``image_transform.*`` and ``loss_fn_*.logit_scale`` that inference ignores. A
``{"state_dict": ...}`` wrapper (a Lightning ``.ckpt``) is accepted too.

Input: mono 16 kHz (Wav2CLIP's pre-training rate), clips of at most :data:`CLIP_SECONDS`; longer
audio is cut into evenly spaced windows whose unit embeddings are averaged. The ResNet normalises
its log spectrogram with the mean and std of the *whole batch*, so every clip runs alone (batch
of one) to keep an embedding independent of its neighbours. Audio shorter than
:data:`MIN_SECONDS` is repeated to that length (the STFT needs more than 256 samples). Output:
the unit-norm 512-d embedding (``embed_audio``'s vector, L2-normalised).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFileError
from . import model_files as mf
from ._audio import mono_at, repeat_pad, window_starts

SAMPLE_RATE = 16000
EMBED_DIM = 512
CLIP_SECONDS = 10.0
MIN_SECONDS = 1.0
_PREFIXES = {"audio_encoder.": "encoder.", "audio_transform.": "transform."}


class Wav2ClipEncoder(mf.FileWeights, nn.Module):
    """wav2clip's ResNetExtractor (frozen scenario) with its CLIP-space transform."""

    name = "wav2clip"
    sample_rate = SAMPLE_RATE
    dim = EMBED_DIM

    def __init__(self) -> None:
        super().__init__()
        from wav2clip.model.encoder import MLPLayers, ResNetExtractor

        self.model = ResNetExtractor(checkpoint=None, scenario="frozen", transform=False)
        self.model.transform = MLPLayers(units=[512, 512, 512], dropout=0.1)
        self.clip_samples = int(CLIP_SECONDS * SAMPLE_RATE)
        self.min_samples = int(MIN_SECONDS * SAMPLE_RATE)
        self.fingerprint: str | None = None
        self.source: str | None = None
        self.eval()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, S] at 16 kHz -> unit embeddings [B, 512] (B > 1 shares one normalisation)."""
        return F.normalize(self.model(audio), dim=-1)

    def _prepare(self, clip: np.ndarray) -> np.ndarray:
        clip = np.asarray(clip, np.float32)[: self.clip_samples]
        if clip.size < self.min_samples:
            clip = repeat_pad(clip, self.min_samples) if clip.size else np.zeros(self.min_samples, np.float32)
        return clip

    @torch.no_grad()
    def embed_clips(self, clips: Sequence[np.ndarray], batch_size: int = 1) -> np.ndarray:
        """Unit embeddings [n, 512] of mono 16 kHz clips (each run alone; see the module doc)."""
        device = next(self.parameters()).device
        out = [self(torch.from_numpy(self._prepare(c))[None].to(device)).float().cpu().numpy()
               for c in clips]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def embed(self, wave: Any, sr: int) -> np.ndarray:
        """One unit embedding [512] for audio of any length, rate and channel count."""
        y = mono_at(wave, sr, self.sample_rate)
        total = np.zeros(self.dim, np.float64)
        for s in window_starts(len(y), self.clip_samples):
            total += self.embed_clips([y[s: s + self.clip_samples]])[0]
        return (total / max(np.linalg.norm(total), 1e-12)).astype(np.float32)

    def identity(self) -> dict:
        return {"kind": "wav2clip", "dim": self.dim, "sample_rate": self.sample_rate, **self.weights_record()}


def _ours(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Official keys -> our module's keys (``audio_encoder.`` -> ``model.encoder.`` ...)."""
    out = {}
    for k, v in state.items():
        for theirs, mine in _PREFIXES.items():
            if k.startswith(theirs):
                out["model." + mine + k[len(theirs):]] = v
    return out


def load_wav2clip(name_or_path: str | os.PathLike | None = None,
                  search_dirs: Iterable[str | os.PathLike] = (), *,
                  device: str | torch.device = "cpu", trust_pickle: bool = False) -> Wav2ClipEncoder:
    """Build Wav2CLIP's encoder and load an official ``Wav2CLIP.pt`` strictly (audio keys)."""
    path = mf.resolve_model_file(mf.WAV2CLIP, name_or_path, search_dirs)
    state = mf.state_dict_of(mf.load_checkpoint(path, mf.WAV2CLIP, trust_pickle=trust_pickle),
                             path, mf.WAV2CLIP)
    mine = _ours(state)
    model = Wav2ClipEncoder()
    if not mine:
        raise ModelFileError(mf.describe_key_mismatch(
            path, mf.WAV2CLIP, missing=["audio_encoder.*", "audio_transform.*"],
            unexpected=sorted(state)[:20], note=" (it has no Wav2CLIP audio keys at all)"))
    back = {v: k for k, v in _PREFIXES.items()}

    def theirs(k: str) -> str:
        for m, t in back.items():
            if k.startswith("model." + m):
                return t + k[len("model." + m):]
        return k

    return mf.load_strict(model, mine, path, mf.WAV2CLIP, device=device, shown=theirs)


def save_official_layout(model: Wav2ClipEncoder, path: str | os.PathLike, *,
                         extras: bool = True) -> Path:
    """Write ``model`` as the official ``Wav2CLIP.pt``: a flat state dict of the pre-training module.

    ``extras`` adds the keys the real file carries that inference ignores (``image_transform.*``,
    ``loss_fn_a/i.logit_scale``). Used by the tests, which cannot download the real file.
    """
    sd = {}
    for k, v in model.state_dict().items():
        for theirs, mine in _PREFIXES.items():
            if k.startswith("model." + mine):
                sd[theirs + k[len("model." + mine):]] = v.detach().cpu().clone()
    if extras:
        for i in (0, 3):
            sd[f"image_transform.sequential.{i}.weight"] = torch.zeros(512, 512)
            sd[f"image_transform.sequential.{i}.bias"] = torch.zeros(512)
        sd["loss_fn_a.logit_scale"] = torch.tensor(2.659)
        sd["loss_fn_i.logit_scale"] = torch.tensor(2.659)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path
