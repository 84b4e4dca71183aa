"""Save and load flow AE checkpoints (safetensors + JSON config; see :mod:`dabfusion.checkpoint_io`).

The weights stored are the ones to use for inference (the EMA weights when training kept an
EMA); ``extra["weights"]`` says which. The configuration inside the file rebuilds the model.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from ..checkpoint_io import load_checkpoint, load_state_into, read_header, save_checkpoint
from .config import CONFIG_VERSION, FlowAEConfig
from .model import FlowAutoEncoder

KIND = "flow_ae"


def save_flow_ae(path: str | os.PathLike, model: FlowAutoEncoder, extra: Mapping[str, Any] | None = None) -> str:
    """Write ``model``'s weights and config; returns the weights path."""
    return str(save_checkpoint(path, model.state_dict(), model.config.to_dict(), dict(extra or {}),
                               kind=KIND, version=CONFIG_VERSION))


def load_flow_ae(path: str | os.PathLike, *, expected_config: Mapping[str, Any] | FlowAEConfig | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype | None = None
                 ) -> tuple[FlowAutoEncoder, dict[str, Any]]:
    """Rebuild the model from the checkpoint's config and load its weights (eval mode).

    ``expected_config``: a config (or any subset of its fields as a dict) the checkpoint must
    match, e.g. ``{"image_size": 128}``; differences raise ``ConfigMismatchError`` listing them.
    """
    subset = expected_config.to_dict() if isinstance(expected_config, FlowAEConfig) else expected_config
    if subset is not None and isinstance(expected_config, FlowAEConfig):
        subset = {k: v for k, v in subset.items() if k != "name"}  # a name is a label, not a shape
    state, header = load_checkpoint(path, expected_kind=KIND, expected_version=CONFIG_VERSION,
                                    expected_config_subset=subset)
    config = FlowAEConfig.from_dict(header["config"])
    model = FlowAutoEncoder(config)
    load_state_into(model, state, str(path))
    model.eval().requires_grad_(False)
    model.to(device=device, dtype=dtype) if dtype is not None else model.to(device=device)
    return model, header


def read_flow_ae_config(path: str | os.PathLike) -> FlowAEConfig:
    """The config of a checkpoint, without reading its weights."""
    header = read_header(path)
    return FlowAEConfig.from_dict(header["config"])
