"""Music-conditioned latent flow diffusion (paper section 3.4), with clips of any length.

Public surface:

- :class:`DiffusionConfig`, :data:`PRESETS`, :func:`get_config` (``config``): configurations as data.
- :class:`UNet3D` (``unet3d``): the space-time factorised 3D U-Net denoiser.
- :func:`make_scheduler`, :data:`SAMPLERS`, :data:`DEFAULT_STEPS` (``schedule``): diffusers
  schedulers (DDPM 1000 / DDIM / DPM-Solver++) on the cosine schedule with dynamic thresholding;
  :func:`to_model_space` / :func:`from_model_space` map flows + occlusions to the U-Net's space.
- :func:`sample_window` (``samplers``): one window, classifier-free guidance, known frames.
- :func:`generate_flows`, :func:`plan_windows`, :func:`default_overlap` (``long_video``): any number
  of frames in overlapping windows, all warping the original z0.
- :class:`MusicWindows`, :class:`StaticMusic` (``music_windows``): the music, window by window.
- :func:`save_diffusion`, :func:`load_diffusion`, :func:`flow_ae_identity` (``checkpoint``).
- ``data``: flow-AE targets computed once and cached, music tables, training windows.

Layouts: user-facing flows are frame-major ``[B, N, 2, h, w]`` (the flow AE's convention);
the U-Net's volume is ``[B, 3, N, h, w]`` in model space.
"""

from __future__ import annotations

from .checkpoint import KIND, flow_ae_identity, load_diffusion, read_diffusion_config, save_diffusion
from .config import PRESETS, DiffusionConfig, get_config
from .long_video import LongSample, default_overlap, generate_flows, plan_windows
from .music_windows import MusicWindows, StaticMusic, pad_front
from .samplers import sample_window
from .schedule import (DEFAULT_STEPS, SAMPLERS, from_model_space, identity_frame, make_scheduler,
                       to_model_space, training_scheduler)
from .unet3d import UNet3D, count_parameters, estimate_gflops

__all__ = [
    "DEFAULT_STEPS", "DiffusionConfig", "KIND", "LongSample", "MusicWindows", "PRESETS", "SAMPLERS",
    "StaticMusic", "UNet3D", "count_parameters", "default_overlap", "estimate_gflops",
    "flow_ae_identity", "from_model_space", "generate_flows", "get_config",
    "identity_frame", "load_diffusion", "make_scheduler", "pad_front", "plan_windows", "read_diffusion_config",
    "sample_window", "save_diffusion", "to_model_space", "training_scheduler",
]
