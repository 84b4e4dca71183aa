"""Latent flow auto-encoder (paper section 3.3): encoder, region-based flow predictor, warp, decoder.

Public surface:

- :class:`FlowAE` (``api``): inference on batches (encode, predict_flow, warp, decode).
- :class:`FlowAEConfig`, :data:`PRESETS`, :func:`get_config` (``config``): configurations as data.
- :class:`FlowAutoEncoder` (``model``): the ``nn.Module`` that training optimises.
- :func:`save_flow_ae`, :func:`load_flow_ae` (``checkpoint``): safetensors + JSON config.
- :func:`render_video`, :class:`FrameStream`, :func:`render_frames`, :func:`frames_to_uint8` (``render``):
  frames from flows.
- :mod:`.warp`: the flow/coordinate conventions shared with the diffusion stage.
"""

from __future__ import annotations

from .api import FlowAE
from .checkpoint import KIND, load_flow_ae, read_flow_ae_config, save_flow_ae
from .config import PRESETS, FlowAEConfig, get_config
from .model import FlowAutoEncoder, count_parameters, parameter_table
from .render import FrameStream, frames_to_uint8, render_frames, render_video
from .warp import flow_to_pixels, identity_grid, pixels_to_flow, warp

__all__ = [
    "FlowAE", "FlowAEConfig", "FrameStream", "FlowAutoEncoder", "KIND", "PRESETS", "count_parameters", "frames_to_uint8",
    "flow_to_pixels", "get_config", "identity_grid", "load_flow_ae", "parameter_table",
    "pixels_to_flow", "read_flow_ae_config", "render_frames", "render_video", "save_flow_ae", "warp",
]
