"""The denoiser: a 3D U-Net over [flow, occlusion] x N frames that factorises space and time.

Layout follows lucidrains' video-diffusion-pytorch ``Unet3D`` (which LFDM builds on): every
tensor is ``b c f h w``; spatial work is "fold time into batch, run the 2D op, unfold"; time is
mixed only by temporal self-attention (T5-style relative position bias shared by all layers),
space by the 2D convolutions and, at low resolution only, spatial self-attention. Attention is
``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPU).

Per level: ``num_res_blocks`` res blocks whose GroupNorm output is modulated by a per-frame FiLM
(scale, shift) from the condition vector (:mod:`.conditioning`), then spatial attention (low
resolution only), temporal attention, and a stride-2 conv; the way up mirrors it with skips.

z0 concatenation, computed cheaply. LFDM concatenates z0 (256 channels, the same for every
frame) to the noisy flow of every frame before the first 7x7 convolution. A convolution is
linear in its input channels, so ``conv(cat(x_f, z0)) = conv_x(x_f) + conv_z(z0)``: we run
``conv_z`` once per clip and broadcast it over the frames - the same function as LFDM's, at
1/N of the cost of its most expensive layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .conditioning import Conditioner, exists
from .config import FLOW_CHANNELS, DiffusionConfig


def per_frame(op: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2D module to every frame: fold time into batch, run it, unfold."""
    b = x.shape[0]
    y = op(rearrange(x, "b c f h w -> (b f) c h w"))
    return rearrange(y, "(b f) c h w -> b c f h w", b=b)


# --------------------------------------------------------------------------------- attention


class RelativePositionBias(nn.Module):
    """T5 relative position buckets -> a learned bias per head, ``[heads, f, f]``.

    Exact buckets for small offsets, logarithmic ones up to ``max_distance``, separate buckets
    for past and future; nothing depends on absolute positions, so any clip length works.
    """

    def __init__(self, heads: int, num_buckets: int = 32, max_distance: int = 128) -> None:
        super().__init__()
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.bias = nn.Embedding(num_buckets, heads)

    @staticmethod
    def bucket(rel: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
        half = num_buckets // 2
        ret = (rel > 0).long() * half  # future keys get the upper half
        n = rel.abs()
        max_exact = max(half // 2, 1)
        large = max_exact + (torch.log(n.float().clamp(min=1) / max_exact)
                             / math.log(max(max_distance / max_exact, 1.0 + 1e-6))
                             * (half - max_exact)).long()
        large = large.clamp(max=half - 1)
        return ret + torch.where(n < max_exact, n, large)

    def forward(self, n: int, device: torch.device) -> torch.Tensor:
        pos = torch.arange(n, device=device)
        rel = pos[None, :] - pos[:, None]  # key - query
        buckets = self.bucket(rel, self.num_buckets, self.max_distance)
        return rearrange(self.bias(buckets), "i j h -> h i j")


class Attention(nn.Module):
    """Multi-head self-attention over the token axis of ``[n, tokens, c]`` with an optional bias."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Linear(inner, dim)
        nn.init.zeros_(self.to_out.weight)  # starts as identity (residual), like ADM's zero module
        nn.init.zeros_(self.to_out.bias)

    def forward(self, tokens: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.to_qkv(self.norm(tokens)).chunk(3, dim=-1)
        q, k, v = (rearrange(t, "n s (h d) -> n h s d", h=self.heads) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype))
        return tokens + self.to_out(rearrange(out, "n h s d -> n s (h d)"))


class TemporalAttention(nn.Module):
    """Attention along frames at every pixel: ``b c f h w -> (b h w) f c``."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.attn = Attention(dim, heads, dim_head)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, _, _, h, w = x.shape
        t = self.attn(rearrange(x, "b c f h w -> (b h w) f c"), bias)
        return rearrange(t, "(b h w) f c -> b c f h w", b=b, h=h, w=w)


class SpatialAttention(nn.Module):
    """Attention over the pixels of each frame: ``b c f h w -> (b f) (h w) c`` (low resolution only)."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.attn = Attention(dim, heads, dim_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, _, h, w = x.shape
        t = self.attn(rearrange(x, "b c f h w -> (b f) (h w) c"))
        return rearrange(t, "(b f) (h w) c -> b c f h w", b=b, h=h, w=w)


# --------------------------------------------------------------------------------- res blocks


class ResBlock(nn.Module):
    """conv3x3 -> GroupNorm -> FiLM(cond per frame) -> SiLU -> conv3x3 -> GroupNorm -> SiLU, + skip.

    GroupNorm runs on the 5D tensor, so its statistics span the whole clip (as in LFDM): the
    relative size of each frame's motion survives normalisation.
    """

    def __init__(self, din: int, dout: int, cond_dim: int, groups: int, temporal_kernel: int = 0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(din, dout, 3, padding=1)
        self.temporal = TemporalConv(dout, temporal_kernel) if temporal_kernel else None
        self.norm1 = nn.GroupNorm(groups, dout)
        self.film = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, dout * 2))
        self.conv2 = nn.Conv2d(dout, dout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, dout)
        self.skip = nn.Conv2d(din, dout, 1) if din != dout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = per_frame(self.conv1, x)
        if exists(self.temporal):
            h = self.temporal(h)
        h = self.norm1(h)
        scale, shift = rearrange(self.film(cond), "b f (two c) -> two b c f 1 1", two=2)
        h = F.silu(h * (1 + scale) + shift)
        h = F.silu(self.norm2(per_frame(self.conv2, h)))
        return h + per_frame(self.skip, x)


class TemporalConv(nn.Module):
    """A residual 1D convolution along frames at every pixel (pseudo-3D, as Make-A-Video).

    Attention mixes frames by content; motion also needs the plain local operator "look at
    your neighbours in time", without which sampled flows keep the frame-to-frame jitter of
    the starting noise (measured on the toy rung, docs/diffusion_lab_log.md). Zero-initialised:
    it starts as the identity.
    """

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, _, h, w = x.shape
        y = self.conv(rearrange(x, "b c f h w -> (b h w) c f"))
        return x + rearrange(y, "(b h w) c f -> b c f h w", b=b, h=h, w=w)


class Level(nn.Module):
    """Res blocks, optional spatial attention, temporal attention, optional resampling."""

    def __init__(self, blocks: list[ResBlock], dim: int, spatial: bool, config: DiffusionConfig,
                 resample: nn.Module | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.spatial = SpatialAttention(dim, config.attn_heads, config.attn_dim_head) if spatial else None
        self.temporal = TemporalAttention(dim, config.attn_heads, config.attn_dim_head)
        self.resample = resample

    def body(self, x: torch.Tensor, cond: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, cond)
        if exists(self.spatial):
            x = self.spatial(x)
        return self.temporal(x, bias)


class Downsample(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_frame(self.conv, x)


class Upsample(nn.Module):
    """Nearest x2 then conv3x3 (no checkerboard artefacts in the flow)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_frame(lambda t: self.conv(F.interpolate(t, scale_factor=2.0, mode="nearest")), x)


# --------------------------------------------------------------------------------- the U-Net


class UNet3D(nn.Module):
    """``forward(x, t, z0, music, beats, known, known_mask, drop)`` -> eps (or v), shape of ``x``.

    ``x`` [B,3,N,h,w] noisy model-space flows; ``t`` [B] (or a scalar) diffusion steps; ``z0``
    [B,C,h,w] reference latent; ``music`` [B,D] global embedding; ``beats`` [B,N,F] frame
    features; ``known`` [B,3,N,h,w] clean values of the known frames and ``known_mask`` [B,N]
    (bool); ``drop`` [B] bool replaces the music by the null embedding (classifier-free guidance).
    Missing music/beats mean "unconditional". Any N works (relative positions only).
    """

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = c = config
        dim, cd = c.dim, c.condition_dim
        self.conditioner = Conditioner(c)
        self.rel_pos = RelativePositionBias(c.attn_heads, c.rel_pos_buckets, c.rel_pos_max_distance)

        frame_in = FLOW_CHANNELS + (FLOW_CHANNELS + 1 if c.known_frames else 0)
        self.z0_proj = nn.Conv2d(c.latent_channels, c.z0_channels, 1) if c.z0_channels else None
        z_in = c.z0_channels or c.latent_channels
        self.init_frame = nn.Conv2d(frame_in, dim, 7, padding=3)
        self.init_z0 = nn.Conv2d(z_in, dim, 7, padding=3, bias=False)
        self.init_temporal = TemporalAttention(dim, c.attn_heads, c.attn_dim_head)

        widths = [dim * m for m in c.dim_mults]
        sizes = c.level_sizes
        tk = c.temporal_kernel
        n = len(widths)
        self.downs = nn.ModuleList()
        ch = dim
        for i, w in enumerate(widths):
            blocks = [ResBlock(ch if j == 0 else w, w, cd, c.groups, tk) for j in range(c.num_res_blocks)]
            self.downs.append(Level(blocks, w, sizes[i] <= c.spatial_attn_max_size, c,
                                    Downsample(w) if i < n - 1 else None))
            ch = w
        self.mid1 = ResBlock(ch, ch, cd, c.groups, tk)
        self.mid_spatial = SpatialAttention(ch, c.attn_heads, c.attn_dim_head)
        self.mid_temporal = TemporalAttention(ch, c.attn_heads, c.attn_dim_head)
        self.mid2 = ResBlock(ch, ch, cd, c.groups, tk)
        self.ups = nn.ModuleList()
        for i in reversed(range(n)):
            w_out = widths[i - 1] if i > 0 else dim
            blocks = [ResBlock(widths[i] * 2 if j == 0 else w_out, w_out, cd, c.groups, tk)
                      for j in range(c.num_res_blocks)]
            self.ups.append(Level(blocks, w_out, sizes[i] <= c.spatial_attn_max_size, c,
                                  Upsample(w_out) if i > 0 else None))
        self.final_block = ResBlock(dim * 2, dim, cd, c.groups, tk)
        self.final_conv = nn.Conv2d(dim, FLOW_CHANNELS, 1)
        nn.init.zeros_(self.final_conv.weight)
        nn.init.zeros_(self.final_conv.bias)

    @property
    def has_music(self) -> bool:
        return self.conditioner.has_music

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor | float | int, z0: torch.Tensor, *,
                music: torch.Tensor | None = None, beats: torch.Tensor | None = None,
                known: torch.Tensor | None = None, known_mask: torch.Tensor | None = None,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        b, ch, f, h, w = x.shape
        if ch != FLOW_CHANNELS or (h, w) != (c.latent_size, c.latent_size):
            raise ValueError(f"x must be [B,{FLOW_CHANNELS},N,{c.latent_size},{c.latent_size}], got {tuple(x.shape)}")
        if z0.shape[0] == 1 and b > 1:
            z0 = z0.expand(b, -1, -1, -1)
        if tuple(z0.shape[1:]) != (c.latent_channels, h, w):
            raise ValueError(f"z0 must be [B,{c.latent_channels},{h},{w}] (the flow AE latent), got {tuple(z0.shape)}")
        t = torch.as_tensor(timesteps, device=x.device)
        t = t.expand(b) if t.dim() == 0 else t
        cond = self.conditioner(t, f, music=music, beats=beats, known_mask=known_mask, drop=drop)

        inputs = [x]
        if c.known_frames:
            mask = torch.zeros(b, f, device=x.device, dtype=x.dtype) if known_mask is None else known_mask.to(x.dtype)
            kv = torch.zeros_like(x) if known is None else known.to(x.dtype)
            m5 = mask[:, None, :, None, None]
            inputs += [kv * m5, m5.expand(b, 1, f, h, w)]
        z = z0.to(x.dtype)
        if exists(self.z0_proj):
            z = self.z0_proj(z)
        hid = per_frame(self.init_frame, torch.cat(inputs, dim=1)) + self.init_z0(z)[:, :, None]
        bias = self.rel_pos(f, x.device)
        hid = self.init_temporal(hid, bias)
        first = hid

        skips = []
        for level in self.downs:
            hid = level.body(hid, cond, bias)
            skips.append(hid)
            if exists(level.resample):
                hid = level.resample(hid)
        hid = self.mid1(hid, cond)
        hid = self.mid_spatial(hid)
        hid = self.mid_temporal(hid, bias)
        hid = self.mid2(hid, cond)
        for level in self.ups:
            hid = level.body(torch.cat([hid, skips.pop()], dim=1), cond, bias)
            if exists(level.resample):
                hid = level.resample(hid)
        hid = self.final_block(torch.cat([hid, first], dim=1), cond)
        return per_frame(self.final_conv, hid)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def estimate_gflops(model: UNet3D, batch: int = 1, n_frames: int | None = None) -> float:
    """GFLOPs (2 x multiply-adds) of one forward pass, counted on the meta device (no compute)."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    c = model.config
    n = n_frames or c.n_frames
    meta = copy.deepcopy(model).to("meta") if next(model.parameters()).device.type != "meta" else model
    x = torch.zeros(batch, FLOW_CHANNELS, n, c.latent_size, c.latent_size, device="meta")
    z0 = torch.zeros(batch, c.latent_channels, c.latent_size, c.latent_size, device="meta")
    music = torch.zeros(batch, c.music_dim, device="meta") if c.music_dim else None
    beats = torch.zeros(batch, n, c.beat_dim, device="meta") if c.uses_beats else None
    known = torch.zeros_like(x) if c.known_frames else None
    mask = torch.zeros(batch, n, device="meta") if c.known_frames else None
    with FlopCounterMode(display=False) as counter:
        meta(x, torch.zeros(batch, device="meta"), z0, music=music, beats=beats, known=known, known_mask=mask)
    return counter.get_total_flops() / 1e9
