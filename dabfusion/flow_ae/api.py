"""Inference API of the flow AE for the pipeline, the diffusion stage and the ComfyUI nodes.

    ae = FlowAE.from_checkpoint("flow_ae_small.safetensors", device="cuda", dtype=torch.bfloat16)
    z = ae.encode(reference)                      # [1,C,h,w]
    flow, occ = ae.predict_flow(reference, frames) # [N,2,h,w], [N,1,h,w]  (float32)
    video = ae.decode(ae.warp(z, flow, occ))       # [N,3,H,W] float32 in 0..1

Frames are float tensors ``[B,3,H,W]`` in 0..1 with ``H = W = config.image_size``, on any device;
they are moved to the model's device and dtype. Flows follow :mod:`dabfusion.flow_ae.warp`
(backward, offsets in normalised coordinates, ``align_corners=False``). A batch of one
reference/latent is broadcast against a batch of driving frames/flows. Big batches are run in
chunks of ``chunk_size`` to bound memory. Everything runs under ``torch.inference_mode``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import torch

from .checkpoint import load_flow_ae
from .config import FlowAEConfig
from .model import FlowAutoEncoder
from .warp import warp as warp_latent

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}") from None


class FlowAE:
    """A trained flow auto-encoder: encode / predict_flow / warp / decode on batches."""

    def __init__(self, model: FlowAutoEncoder, *, device: str | torch.device | None = None,
                 dtype: torch.dtype | str | None = None, info: Mapping[str, Any] | None = None,
                 chunk_size: int = 32) -> None:
        self.model = model.eval().requires_grad_(False)
        self.info = dict(info or {})
        self.chunk_size = int(chunk_size)
        self.to(device=device if device is not None else next(model.parameters()).device, dtype=dtype)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu",
                        dtype: torch.dtype | str | None = None,
                        expected_config: Mapping[str, Any] | FlowAEConfig | None = None,
                        chunk_size: int = 32) -> "FlowAE":
        model, header = load_flow_ae(path, expected_config=expected_config)
        return cls(model, device=device, dtype=dtype, info=header, chunk_size=chunk_size)

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> FlowAEConfig:
        return self.model.config

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        c = self.config
        return c.latent_channels, c.latent_size, c.latent_size

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | str | None = None) -> "FlowAE":
        self.device = torch.device(device) if device is not None else self.device
        self.dtype = as_dtype(dtype) if dtype is not None else getattr(self, "dtype", torch.float32)
        self.model.to(device=self.device, dtype=self.dtype)
        return self

    # ------------------------------------------------------------------ helpers
    def _frames(self, frames: torch.Tensor, what: str) -> torch.Tensor:
        if not isinstance(frames, torch.Tensor) or frames.dim() != 4 or frames.shape[1] != 3:
            shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
            raise ValueError(f"{what} must be a float tensor [B,3,H,W] in 0..1, got {shape}")
        if tuple(frames.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"{what} are {frames.shape[-2]}x{frames.shape[-1]} but this flow AE was "
                             f"trained at {self.image_size}x{self.image_size}; resize them first")
        if not frames.is_floating_point():
            frames = frames.float() / 255.0
        return frames.to(device=self.device, dtype=self.dtype)

    def _chunked(self, fn: Callable[..., Any], *tensors: torch.Tensor) -> Any:
        n = max(t.shape[0] for t in tensors)
        tensors = tuple(t.expand(n, *t.shape[1:]) if t.shape[0] == 1 and n > 1 else t for t in tensors)
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(f"batch sizes {[t.shape[0] for t in tensors]} differ (only 1 broadcasts)")
        outs = [fn(*(t[i:i + self.chunk_size] for t in tensors)) for i in range(0, n, self.chunk_size)]
        if isinstance(outs[0], tuple):
            return tuple(torch.cat(parts, dim=0) for parts in zip(*outs))
        return torch.cat(outs, dim=0)

    # ------------------------------------------------------------------ API
    @torch.inference_mode()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[B,3,H,W]`` -> latents ``[B,C,h,w]`` (model dtype)."""
        return self._chunked(self.model.encode, self._frames(frames, "frames"))

    @torch.inference_mode()
    def predict_flow(self, reference: torch.Tensor, driving: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward flow ``[B,2,h,w]`` and occlusion ``[B,1,h,w]`` in 0..1 (float32)."""
        return self._chunked(self.model.predict_flow, self._frames(reference, "reference frames"),
                             self._frames(driving, "driving frames"))

    @torch.inference_mode()
    def warp(self, z: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor | None = None) -> torch.Tensor:
        """``occlusion * back_warp(z, flow)``, flows and occlusions at (or resized to) the latent size."""
        z = z.to(device=self.device, dtype=self.dtype)
        flow = flow.to(device=self.device, dtype=torch.float32)
        if occlusion is None:
            return self._chunked(lambda a, b: warp_latent(a, b, None), z, flow)
        occlusion = occlusion.to(device=self.device, dtype=torch.float32)
        return self._chunked(warp_latent, z, flow, occlusion)

    @torch.inference_mode()
    def decode(self, z_warped: torch.Tensor) -> torch.Tensor:
        """Latents ``[B,C,h,w]`` -> frames ``[B,3,H,W]`` float32 in 0..1."""
        z_warped = z_warped.to(device=self.device, dtype=self.dtype)
        return self._chunked(lambda z: self.model.decode(z).float().clamp(0, 1), z_warped)

    @torch.inference_mode()
    def reconstruct(self, reference: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        """Driving frames re-drawn from the reference (what training optimises), float32 0..1."""
        ref = self._frames(reference, "reference frames")
        flow, occ = self.predict_flow(ref, driving)
        z = self.encode(ref)
        return self.decode(self.warp(z, flow, occ))
