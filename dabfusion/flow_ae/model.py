"""The latent flow auto-encoder (paper section 3.3, Fig. 4) as one ``nn.Module``.

``forward(reference, driving)`` is the training path: encode the reference, predict the backward
latent flow and occlusion from both frames, warp (``z~ = m * warp(z, f)``, eq. 1), decode. The
pieces are also exposed one by one (:meth:`encode`, :meth:`predict_flow`, :meth:`warp`,
:meth:`decode`) because the diffusion stage generates flows and only needs encode/warp/decode;
:class:`dabfusion.flow_ae.api.FlowAE` wraps them for inference.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .autoencoder import ImageDecoder, ImageEncoder
from .config import FlowAEConfig
from .dense_motion import DenseMotionNetwork
from .region_predictor import RegionParams, RegionPredictor
from .warp import warp as warp_latent


class FlowAutoEncoder(nn.Module):
    def __init__(self, config: FlowAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ImageEncoder(config)
        self.region_predictor = RegionPredictor(config)
        self.dense_motion = DenseMotionNetwork(config)
        self.decoder = ImageDecoder(config)

    # ------------------------------------------------------------------ pieces
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encoder(frames)

    def regions(self, frames: torch.Tensor) -> RegionParams:
        return self.region_predictor(frames)

    def predict_flow(self, reference: torch.Tensor, driving: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward latent flow ``[B,2,h,w]`` and occlusion ``[B,1,h,w]`` (float32) from ref to driving."""
        both = self.regions(torch.cat([reference, driving], dim=0))
        ref, drv = _split(both, reference.shape[0])
        return self.dense_motion(reference, driving, ref, drv)

    @staticmethod
    def warp(z: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor | None) -> torch.Tensor:
        return warp_latent(z, flow, occlusion)

    def decode(self, z_warped: torch.Tensor) -> torch.Tensor:
        return self.decoder(z_warped)

    # ------------------------------------------------------------------ training path
    def forward(self, reference: torch.Tensor, driving: torch.Tensor,
                transformed: torch.Tensor | None = None) -> dict[str, Any]:
        """Reconstruct ``driving`` from ``reference``.

        ``transformed`` (optional, same batch size): randomly transformed driving frames whose
        regions the equivariance loss needs; they go through the region predictor in the same
        batch, so that DDP sees one forward per step.
        """
        b = reference.shape[0]
        inputs = [reference, driving] + ([transformed] if transformed is not None else [])
        params = self.regions(torch.cat(inputs, dim=0))
        parts = _split(params, b)
        ref, drv = parts[0], parts[1]
        flow, occlusion = self.dense_motion(reference, driving, ref, drv)
        z = self.encode(reference)
        z_warped = warp_latent(z, flow, occlusion)
        out = {
            "reconstruction": self.decode(z_warped),
            "flow": flow,
            "occlusion": occlusion,
            "regions_reference": ref,
            "regions_driving": drv,
        }
        if transformed is not None:
            out["regions_transformed"] = parts[2]
        return out


def _split(params: RegionParams, b: int) -> list[RegionParams]:
    n = next(iter(params.values())).shape[0] // b
    return [{k: v[i * b:(i + 1) * b] for k, v in params.items()} for i in range(n)]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_table(model: FlowAutoEncoder) -> dict[str, int]:
    return {name: count_parameters(getattr(model, name))
            for name in ("encoder", "region_predictor", "dense_motion", "decoder")} | {"total": count_parameters(model)}
