"""CLIP-Score of a dance video and its music: CLIP image embeddings against a Wav2CLIP audio embedding.

    CS = mean over frames f of cos(CLIP_image(f), Wav2CLIP(music of the clip))

Wav2CLIP (Wu et al. 2022) maps audio into the embedding space of CLIP ViT-B/32's *image* encoder,
so the cosine compares what a frame shows with what the music "looks like"; the DabFusion paper
reports it for generated and ground-truth videos (Table 3: 0.142 / 0.153). The score is the raw
cosine (no x100 / x2.5 rescaling), averaged over ``frames`` evenly spaced frames of the clip.

Weights, from local files only (:data:`~.weights.CLIP`, :data:`~.weights.WAV2CLIP`):

- CLIP: a Hugging Face model folder (``config.json`` + ``model.safetensors``), e.g. a copy of
  ``openai/clip-vit-base-patch32``, loaded with ``transformers``'
  ``CLIPVisionModelWithProjection.from_pretrained(folder, local_files_only=True)`` (a full CLIP
  folder works: the text tower is ignored). Missing vision weights are an error, never randomly
  initialised. Images are preprocessed as CLIP's image processor does: resized (bicubic,
  antialiased) to the model's input size, normalised with the folder's ``image_mean``/
  ``image_std`` (``preprocessor_config.json``; CLIP's constants otherwise).
- Wav2CLIP: the official ``Wav2CLIP.pt``, through :func:`dabfusion.music.wav2clip_branch.load_wav2clip`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigMismatchError, ModelFileError
from .weights import CLIP, WAV2CLIP, skip_note

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_FRAMES = 8


class ClipImageEncoder:
    """Unit CLIP image embeddings of uint8 frames ``[N, H, W, 3]``."""

    def __init__(self, model: Any, *, mean: tuple = CLIP_MEAN, std: tuple = CLIP_STD, source: str = "") -> None:
        self.model = model.eval().requires_grad_(False)
        self.size = int(model.config.image_size)
        self.dim = int(model.config.projection_dim)
        self.device = next(model.parameters()).device
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.source = source

    def preprocess(self, frames: Any) -> torch.Tensor:
        arr = np.array(frames)
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float()
        if arr.dtype == np.uint8:
            x = x / 255.0
        h, w = x.shape[-2:]
        if (h, w) != (self.size, self.size):
            s = self.size / min(h, w)  # shortest side to the input size, then centre crop
            nh, nw = max(self.size, round(h * s)), max(self.size, round(w * s))
            x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
            top, left = (nh - self.size) // 2, (nw - self.size) // 2
            x = x[..., top:top + self.size, left:left + self.size]
        return (x - self.mean) / self.std

    @torch.inference_mode()
    def embed(self, frames: Any, batch: int = 16) -> np.ndarray:
        out = []
        for i in range(0, len(frames), batch):
            x = self.preprocess(frames[i:i + batch]).to(self.device, next(self.model.parameters()).dtype)
            e = self.model(pixel_values=x).image_embeds.float()
            out.append(F.normalize(e, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def load_clip_image_encoder(folder: str | os.PathLike, *, device: str | torch.device = "cpu") -> ClipImageEncoder:
    """CLIP's vision tower + projection from a local Hugging Face folder (never the network)."""
    root = Path(folder).expanduser()
    if not root.is_dir() or not (root / "config.json").is_file():
        what = "a file" if root.is_file() else ("a folder without config.json" if root.is_dir() else "not found")
        raise ModelFileError(f"The CLIP model {root} is {what}: give the folder that holds config.json and "
                             f"model.safetensors. Use {CLIP.how_to()}.")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    from transformers import CLIPVisionModelWithProjection

    config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") not in ("clip", "clip_vision_model"):
        raise ModelFileError(f"{root} holds a {config.get('model_type')!r} model, not CLIP. Use {CLIP.how_to()}.")
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the text tower's keys are "unexpected": expected
    try:
        model, info = CLIPVisionModelWithProjection.from_pretrained(str(root), local_files_only=True,
                                                                    output_loading_info=True)
    except (OSError, ValueError) as e:
        raise ModelFileError(f"The CLIP model folder {root} could not be loaded ({str(e).splitlines()[0][:200]}). "
                             f"Use {CLIP.how_to()}.") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    missing = sorted(info.get("missing_keys") or [])
    if missing or info.get("mismatched_keys"):
        raise ModelFileError(f"The CLIP model folder {root} lacks vision weights ({len(missing)} missing, e.g. "
                             f"{missing[:3]}; mismatched {list(info.get('mismatched_keys') or [])[:3]}); it would "
                             f"be randomly initialised. Use {CLIP.how_to()}.")
    mean, std = CLIP_MEAN, CLIP_STD
    pre = root / "preprocessor_config.json"
    if pre.is_file():
        p = json.loads(pre.read_text(encoding="utf-8"))
        mean, std = tuple(p.get("image_mean", mean)), tuple(p.get("image_std", std))
    return ClipImageEncoder(model.to(device), mean=mean, std=std, source=root.name)


class ClipScorer:
    """CLIP-Score of videos against music (CLIP image side + Wav2CLIP audio side)."""

    def __init__(self, image: ClipImageEncoder, audio: Any, frames: int = DEFAULT_FRAMES) -> None:
        if int(getattr(audio, "dim", image.dim)) != image.dim:
            raise ConfigMismatchError(f"CLIP's image embedding has {image.dim} dimensions but Wav2CLIP's audio "
                                      f"embedding has {audio.dim}: Wav2CLIP lives in CLIP ViT-B/32's 512-d space. "
                                      f"Use {CLIP.how_to()}.")
        self.image, self.audio, self.frames = image, audio, int(frames)
        self._audio_cache: dict[tuple, np.ndarray] = {}

    def audio_embedding(self, wave: np.ndarray, sample_rate: int, key: tuple | None = None) -> np.ndarray:
        if key is not None and key in self._audio_cache:
            return self._audio_cache[key]
        e = np.asarray(self.audio.embed(wave, int(sample_rate)), dtype=np.float64)
        e = e / max(np.linalg.norm(e), 1e-12)
        if key is not None:
            self._audio_cache[key] = e
        return e

    def pick(self, n: int) -> np.ndarray:
        k = n if self.frames <= 0 else min(self.frames, n)
        return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))

    def score(self, frames: Any, audio_embedding: np.ndarray) -> float:
        """Mean cosine between the picked frames' CLIP embeddings and the audio embedding."""
        sel = np.asarray(frames)[self.pick(len(frames))]
        emb = self.image.embed(sel).astype(np.float64)
        return float((emb @ audio_embedding).mean())


def try_load_clip_scorer(clip: str | os.PathLike | None, wav2clip: str | os.PathLike | None, *,
                         frames: int = DEFAULT_FRAMES, device: str | torch.device = "cpu"
                         ) -> tuple[ClipScorer | None, str | None]:
    """(scorer, None) or (None, a note naming the missing file); bad files raise."""
    if not clip:
        return None, skip_note(CLIP)
    if not wav2clip:
        return None, skip_note(WAV2CLIP)
    from ..music.wav2clip_branch import load_wav2clip

    image = load_clip_image_encoder(clip, device=device)
    audio = load_wav2clip(wav2clip, device=device)
    return ClipScorer(image, audio, frames), None
