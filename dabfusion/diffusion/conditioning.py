"""The per-frame condition vector that drives FiLM in every res block of the U-Net.

    c[b, f] = time(t_b) + music(e_b) + beats(e_b,f) + known * mask[b, f]

- ``time``: sinusoidal embedding of the diffusion step through a 2-layer MLP (as LFDM/DDPM);
- ``music``: the global music embedding e (CLAP / Wav2CLIP adapters / librosa beat statistics)
  through a 2-layer MLP - the same for every frame of the clip;
- ``beats``: the frame-aligned beat features ``[N, F]`` (beat pulse, phase, onset, ...) through a
  2-layer MLP applied frame by frame, so each frame's FiLM knows where it sits relative to the
  beat (the global vector alone cannot say *where* in the clip the beats fall);
- ``known``: a learned vector added to frames whose clean value is given (window continuation).

Classifier-free guidance: ``drop`` ([B] bool) replaces the music and beat terms together by
learned null embeddings (LFDM's ``null_cond_emb``, one per branch). The image condition (z0)
and the known frames are never dropped: guidance contrasts "with this music" against "with any
music" for the same person and the same prefix.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import DiffusionConfig


def exists(x) -> bool:
    return x is not None


def default(value, fallback):
    return value if exists(value) else (fallback() if callable(fallback) else fallback)


class SinusoidalPosEmb(nn.Module):
    """Transformer sinusoidal embedding of a (possibly fractional) diffusion step."""

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        self.dim, self.max_period = dim, max_period

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(self.max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]
        emb = torch.cat([args.sin(), args.cos()], dim=-1)
        if self.dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return emb


def mlp(din: int, dout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(din, dout), nn.SiLU(), nn.Linear(dout, dout))


class Conditioner(nn.Module):
    """Builds ``[B, N, cond_dim]`` from the step, the music, the beat features and the known mask."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        d = config.condition_dim
        self.config = config
        self.time = nn.Sequential(SinusoidalPosEmb(config.dim), nn.Linear(config.dim, d), nn.SiLU(), nn.Linear(d, d))
        self.music = mlp(config.music_dim, d) if config.music_dim > 0 else None
        self.null_music = nn.Parameter(torch.zeros(d)) if exists(self.music) else None
        self.beats = mlp(config.beat_dim, d) if config.uses_beats else None
        self.null_beats = nn.Parameter(torch.zeros(d)) if exists(self.beats) else None
        self.known = nn.Parameter(torch.zeros(d)) if config.known_frames else None

    @property
    def has_music(self) -> bool:
        return exists(self.music) or exists(self.beats)

    def forward(self, timesteps: torch.Tensor, n_frames: int, *, music: torch.Tensor | None = None,
                beats: torch.Tensor | None = None, known_mask: torch.Tensor | None = None,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        b = timesteps.shape[0]
        dev = timesteps.device
        emb = self.time[0](timesteps).to(self.time[1].weight.dtype)  # sinusoids in fp32, then the MLP's dtype
        c = self.time[1:](emb)[:, None, :].expand(b, n_frames, -1)
        # missing music means "no music": the null embedding, as in a dropped sample
        drop = torch.zeros(b, dtype=torch.bool, device=dev) if drop is None else drop.to(dev, torch.bool)
        if exists(self.music):
            if music is None:
                m = self.null_music.expand(b, -1)
            else:
                if music.shape != (b, self.config.music_dim):
                    raise ValueError(f"music embedding must be [B={b}, {self.config.music_dim}], got "
                                     f"{tuple(music.shape)}: was the model trained with another music encoder?")
                m = torch.where(drop[:, None], self.null_music.to(c.dtype), self.music(music.to(c.dtype)))
            c = c + m[:, None, :]
        if exists(self.beats):
            if beats is None:
                e = self.null_beats.expand(b, n_frames, -1)
            else:
                if beats.shape != (b, n_frames, self.config.beat_dim):
                    raise ValueError(f"beat features must be [B={b}, N={n_frames}, {self.config.beat_dim}], "
                                     f"got {tuple(beats.shape)}")
                e = torch.where(drop[:, None, None], self.null_beats.to(c.dtype), self.beats(beats.to(c.dtype)))
            c = c + e
        if exists(self.known) and known_mask is not None:
            c = c + known_mask.to(c.dtype)[..., None] * self.known
        return c
