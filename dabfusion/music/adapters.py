"""The paper's adapters: a 2-layer MLP (hidden 512) on a frozen music encoder, trained on dance data.

Section 3.2 freezes CLAP and Wav2CLIP and trains MLP adapters on AIST++ so that their embeddings
carry dance style. The objective must know the genre. CLAP's natural choice would be contrastive
against genre *prompt* embeddings from CLAP's text tower, but that tower (roberta-base) cannot be
downloaded here and we deliberately never build it, so two text-free objectives are offered:

* ``"prototype"`` (default): contrastive against one learnable prototype per genre (cosine
  similarity / temperature, cross-entropy). It plays the role of the prompt embeddings — a fixed
  point per genre in the output space — learned instead of read from text, and it shapes the
  output space itself (same-genre music lands together), which is what the diffusion model sees.
* ``"classify"``: a linear genre head on the adapter output, cross-entropy. The head is only a
  training device; it is kept in the file for :meth:`MusicAdapter.genre_logits` but the music
  embedding never uses it.

Inputs are standardised with the training set's mean and std (stored in the file), so encoders
with very different scales (unit CLAP vectors, raw librosa statistics) train with one setting.
Outputs are unit vectors. Files: ``NAME.safetensors`` (weights, with the JSON config also in its
metadata) and ``NAME.json`` beside it (the same config, for people); never pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigMismatchError, ModelFileError
from . import model_files as mf

FORMAT = "dabfusion.music_adapter"
FORMAT_VERSION = 1
OBJECTIVES = ("prototype", "classify")
BRANCHES = ("clap", "wav2clip", "mel")


@dataclass
class AdapterConfig:
    """Everything needed to rebuild an adapter and to know what it may be applied to."""

    branch: str                       # "clap", "wav2clip" or "mel"
    in_dim: int
    hidden: int = 512
    out_dim: int = 512
    dropout: float = 0.1
    objective: str = "prototype"
    temperature: float = 0.1
    genres: list[str] = field(default_factory=list)  # genre codes in class order
    encoder: dict = field(default_factory=dict)     # identity() of the frozen encoder
    window_seconds: float = 10.0                    # audio per training example
    training: dict = field(default_factory=dict)    # data set, epochs, seed, accuracies ...
    format: str = FORMAT
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.branch not in BRANCHES:
            raise ValueError(f"branch must be one of {BRANCHES}, got {self.branch!r}")
        if self.in_dim <= 0 or self.hidden <= 0 or self.out_dim <= 0:
            raise ValueError("in_dim, hidden and out_dim must be positive")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "AdapterConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class MusicAdapter(nn.Module):
    """standardise -> Linear(in, 512) -> ReLU -> Dropout -> Linear(512, out) -> unit vector."""

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("in_mean", torch.zeros(c.in_dim))
        self.register_buffer("in_std", torch.ones(c.in_dim))
        self.net = nn.Sequential(nn.Linear(c.in_dim, c.hidden), nn.ReLU(), nn.Dropout(c.dropout),
                                 nn.Linear(c.hidden, c.out_dim))
        n = max(len(c.genres), 1)
        if c.objective == "prototype":
            self.prototypes = nn.Parameter(F.normalize(torch.randn(n, c.out_dim), dim=-1))
        else:
            self.head = nn.Linear(c.out_dim, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.in_mean) / self.in_std
        return F.normalize(self.net(x), dim=-1)

    def genre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Genre scores [B, G] for frozen embeddings x [B, in_dim] (training and evaluation)."""
        z = self(x)
        if self.config.objective == "prototype":
            return z @ F.normalize(self.prototypes, dim=-1).T / self.config.temperature
        return self.head(z)

    @torch.no_grad()
    def embed(self, x: np.ndarray) -> np.ndarray:
        """numpy [B, in_dim] -> numpy [B, out_dim] in eval mode (what the music encoder calls)."""
        was = self.training
        self.eval()
        dev = self.in_mean.device
        out = self(torch.as_tensor(np.asarray(x, np.float32), device=dev)).cpu().numpy()
        self.train(was)
        return out

    def sha256(self) -> str:
        """Hash of the config's architecture fields and every tensor: the adapter's identity."""
        h = hashlib.sha256()
        c = self.config
        h.update(json.dumps([c.branch, c.in_dim, c.hidden, c.out_dim, c.objective,
                             c.encoder.get("fingerprint")]).encode())
        for k, v in sorted(self.state_dict().items()):
            t = v.detach().cpu().contiguous().float()
            h.update(k.encode())
            h.update(t.numpy().tobytes())
        return h.hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (.safetensors, config in its metadata) and the ``.json`` beside it."""
        from safetensors.torch import save_file

        path = Path(path)
        if path.suffix != ".safetensors":
            path = path.with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        cfg = self.config.to_json()
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata={"config": cfg, "format": FORMAT})
        os.chmod(tmp, 0o644)  # safetensors writes 0600; make it an ordinary readable file
        os.replace(tmp, path)
        meta = json.loads(cfg)
        meta["sha256"] = self.sha256()
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, search_dirs=(), *,
             device: str | torch.device = "cpu") -> "MusicAdapter":
        """Read an adapter written by :meth:`save`; a wrong file is a :class:`ModelFileError`."""
        from safetensors import safe_open

        p = mf.resolve_model_file(mf.MUSIC_ADAPTER, path, search_dirs)
        try:
            with safe_open(str(p), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # noqa: BLE001
            raise ModelFileError(f"The music adapter {p} is not a readable safetensors file ({e}). "
                                 f"{mf.where_to_put(mf.MUSIC_ADAPTER, p.name)}") from None
        if meta.get("format") != FORMAT or "config" not in meta:
            raise ModelFileError(f"{p} is a safetensors file but not a music adapter (its metadata "
                                 f"has no '{FORMAT}' config). {mf.where_to_put(mf.MUSIC_ADAPTER)}")
        try:
            config = AdapterConfig.from_dict(json.loads(meta["config"]))
        except (ValueError, TypeError) as e:
            raise ModelFileError(f"The music adapter {p} has an invalid config: {e}") from None
        model = cls(config)
        exp = model.state_dict()
        missing, unexpected = sorted(set(exp) - set(tensors)), sorted(set(tensors) - set(exp))
        wrong = sorted(k for k in set(exp) & set(tensors) if exp[k].shape != tensors[k].shape)
        if missing or unexpected or wrong:
            raise ModelFileError(mf.describe_key_mismatch(p, mf.MUSIC_ADAPTER, missing=missing,
                                                          unexpected=unexpected, wrong_shape=wrong))
        model.load_state_dict(tensors, strict=True)
        model.source = p.name
        return model.to(device).eval()

    def check_encoder(self, identity: dict) -> None:
        """Refuse to run on a different frozen encoder than the one it was trained on."""
        mine = self.config.encoder
        problems = []
        if mine.get("kind") != identity.get("kind"):
            problems.append(f"encoder kind {mine.get('kind')!r} vs {identity.get('kind')!r}")
        if int(mine.get("dim", self.config.in_dim)) != int(identity.get("dim", -1)):
            problems.append(f"embedding size {mine.get('dim')} vs {identity.get('dim')}")
        if mine.get("fingerprint") != identity.get("fingerprint"):
            problems.append(f"weights {str(mine.get('fingerprint'))[:12]} ({mine.get('file')}) vs "
                            f"{str(identity.get('fingerprint'))[:12]} ({identity.get('file')})")
        if problems:
            raise ConfigMismatchError(
                f"This {self.config.branch} adapter was trained on another encoder: "
                + "; ".join(problems) + ". Load the encoder file it was trained with, or train an "
                "adapter for this one with training/train_music_adapters.py.")


def train_adapter(x: np.ndarray, y: np.ndarray, config: AdapterConfig, *, epochs: int = 100,
                  lr: float = 1e-3, batch_size: int = 64, weight_decay: float = 1e-4,
                  noise: float = 0.1, seed: int = 0, log=None) -> MusicAdapter:
    """Fit an adapter on frozen embeddings ``x`` [N, in_dim] with genre labels ``y`` [N].

    Small data (a few hundred windows): Adam, input noise of ``noise`` std after standardising,
    dropout, cosine learning-rate decay. Deterministic for a seed on CPU.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 0.5M-parameter MLP: more threads only add contention
    try:
        return _train(x, y, config, epochs=epochs, lr=lr, batch_size=batch_size,
                      weight_decay=weight_decay, noise=noise, seed=seed, log=log)
    finally:
        torch.set_num_threads(threads)


def _train(x, y, config, *, epochs, lr, batch_size, weight_decay, noise, seed, log) -> MusicAdapter:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MusicAdapter(config)
    xt = torch.as_tensor(np.asarray(x, np.float32))
    yt = torch.as_tensor(np.asarray(y, np.int64))
    if len(xt) == 0:
        raise ValueError("no training examples")
    model.in_mean.copy_(xt.mean(0))
    model.in_std.copy_(xt.std(0, unbiased=False).clamp_min(1e-3 * float(xt.std()) + 1e-8))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * max(1, -(-len(xt) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for i in range(0, len(xt), batch_size):
            idx = perm[i: i + batch_size]
            xb = xt[idx]
            if noise > 0:
                xb = xb + noise * model.in_std * torch.randn(xb.shape, generator=g)
            loss = F.cross_entropy(model.genre_logits(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log is not None and (epoch == epochs - 1 or epoch % max(1, epochs // 10) == 0):
            log(f"epoch {epoch + 1}/{epochs} loss {total / len(xt):.4f}")
    return model.eval()


@torch.no_grad()
def evaluate(model: MusicAdapter, x: np.ndarray, y: np.ndarray,
             groups: list[str] | None = None) -> dict[str, Any]:
    """Genre accuracy per window and, with ``groups`` (track names), per track (mean logits)."""
    model.eval()
    logits = model.genre_logits(torch.as_tensor(np.asarray(x, np.float32))).numpy()
    y = np.asarray(y)
    res: dict[str, Any] = {"windows": int(len(y)),
                           "window_accuracy": float((logits.argmax(1) == y).mean()) if len(y) else 0.0}
    if groups is not None and len(y):
        names = sorted(set(groups))
        g = np.asarray(groups)
        pred = {n: int(logits[g == n].mean(0).argmax()) for n in names}
        true = {n: int(y[g == n][0]) for n in names}
        res["tracks"] = len(names)
        res["track_accuracy"] = float(np.mean([pred[n] == true[n] for n in names]))
        genres = model.config.genres
        res["track_predictions"] = {n: genres[pred[n]] if pred[n] < len(genres) else pred[n]
                                    for n in names}
    return res
