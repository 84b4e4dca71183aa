"""Flow-diffusion configurations as data: a dataclass that round-trips through JSON.

The configuration is stored inside every checkpoint and the model is rebuilt from it (the
diffusers way). Besides the network shape it holds the diffusion settings the sampler needs
(schedule, prediction type, thresholding, the scale that maps flows into [-1, 1]) and two
provenance records checked when the model is loaded:

- ``music_spec``: the :attr:`dabfusion.music.MusicEncoder.spec` of the encoder whose embedding
  the model was trained on (checked with :func:`dabfusion.music.check_compatible`);
- ``flow_ae``: the identity of the flow auto-encoder whose flows it learned
  (:func:`dabfusion.diffusion.checkpoint.flow_ae_identity`: geometry + a hash of the weights).

Presets:

- ``paper``: LFDM's 3D U-Net (dim 64, mults 1,2,4,8) on 40 x 32 x 32 latent flows with z0 of 256
  channels (the paper's flow AE).
- ``small``: 16 x 16 latents of the ``small`` flow AE (64 channels), 16 frames, dim 32, mults
  1,2,4; trainable on 2 CPU cores on SynthDance.
- ``tiny``: for tests (8 x 8 latents of the ``tiny`` flow AE, 8 frames).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

from ..config_io import JSONConfig

CONFIG_VERSION = 1
PREDICTION_TYPES = ("epsilon", "v_prediction")
TIME_BASES = ("frames", "beats")
#: Channels of the generated volume per frame: flow x, flow y, occlusion.
FLOW_CHANNELS = 3
#: Channels of the beats-only default music encoder (``dabfusion.music``): global, per frame.
DEFAULT_MUSIC_DIM = 12
DEFAULT_BEAT_DIM = 8


@dataclass(frozen=True)
class DiffusionConfig(JSONConfig):
    """Everything needed to rebuild a :class:`~dabfusion.diffusion.unet3d.UNet3D` and sample it.

    Network: ``dim * dim_mults[i]`` channels at level ``i`` (``latent_size / 2**i`` pixels),
    ``num_res_blocks`` FiLM res blocks per level (each with a residual temporal convolution of
    ``temporal_kernel`` frames when > 0), temporal attention at every level, spatial
    attention only where the feature map is at most ``spatial_attn_max_size`` pixels a side.
    ``cond_dim`` (0: ``4 * dim``) is the width of the per-frame condition vector.

    Inputs: per frame the noisy [flow, occlusion] (3 channels) plus, with ``known_frames``, the
    known clean values (3) and a known-mask channel (1); z0 (``latent_channels``) is concatenated
    on channels (``z0_channels > 0`` first projects it with a 1x1 conv).

    Conditioning: the global music embedding (``music_dim``) and, with ``beat_features``, the
    per-frame beat features (``beat_dim`` columns). ``cond_drop_prob`` is the classifier-free
    guidance dropout used in training.

    Diffusion: ``num_train_timesteps`` steps of the ``beta_schedule``; ``prediction_type`` epsilon
    or v_prediction; dynamic thresholding of the x0 prediction at the
    ``dynamic_thresholding_ratio`` percentile (``sample_max_value`` caps the threshold; a large
    value makes it LFDM's uncapped ``s = max(1, percentile)``). The model sees
    ``[sign(f) * |flow_scale * f| ** flow_power, 2 * occlusion - 1]`` so that both live in
    [-1, 1] (``flow_power`` 1 is linear; < 1 compands the long-tailed flows, see
    :func:`dabfusion.diffusion.schedule.compand_flow`).

    Time: with ``time_base = "beats"`` the N samples of a window are ``samples_per_beat`` per
    music beat, not video frames (:mod:`dabfusion.diffusion.beat_time`): N = 32 at 8 per beat
    is four beats at any tempo.
    """

    name: str = "custom"
    # geometry of the data
    latent_channels: int = 256
    latent_size: int = 32
    n_frames: int = 40
    # network
    dim: int = 64
    dim_mults: tuple[int, ...] = (1, 2, 4, 8)
    num_res_blocks: int = 2
    groups: int = 8
    attn_heads: int = 8
    attn_dim_head: int = 32
    spatial_attn_max_size: int = 8
    rel_pos_buckets: int = 32
    rel_pos_max_distance: int = 128
    cond_dim: int = 0
    temporal_kernel: int = 0
    z0_channels: int = 0
    known_frames: bool = True
    # conditioning
    music_dim: int = DEFAULT_MUSIC_DIM
    beat_features: bool = True
    beat_dim: int = DEFAULT_BEAT_DIM
    cond_drop_prob: float = 0.1
    # diffusion
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"
    thresholding: bool = True
    dynamic_thresholding_ratio: float = 0.9
    sample_max_value: float = 1000.0
    flow_scale: float = 1.0
    flow_power: float = 1.0
    # time axis: "frames" (one sample per video frame, the paper's) or "beats" (``samples_per_beat``
    # samples per music beat, read back at the frames; :mod:`dabfusion.diffusion.beat_time`)
    time_base: str = "frames"
    samples_per_beat: int = 8
    # provenance (checked on load)
    music_spec: dict | None = None
    flow_ae: dict | None = None
    version: int = CONFIG_VERSION

    kind_name = "diffusion"  # for messages (not a field: no annotation)

    # ------------------------------------------------------------------ derived
    @property
    def condition_dim(self) -> int:
        return self.cond_dim or 4 * self.dim

    @property
    def in_beat_time(self) -> bool:
        return self.time_base == "beats"

    @property
    def uses_beats(self) -> bool:
        return bool(self.beat_features and self.beat_dim > 0)

    @property
    def level_sizes(self) -> list[int]:
        return [self.latent_size // 2 ** i for i in range(len(self.dim_mults))]

    # ------------------------------------------------------------------ checks
    def __post_init__(self) -> None:
        object.__setattr__(self, "dim_mults", tuple(int(m) for m in self.dim_mults))
        problems = []
        down = 2 ** (len(self.dim_mults) - 1)
        if self.latent_size % down:
            problems.append(f"latent_size={self.latent_size} must be divisible by 2**(levels-1)={down}")
        for w in [self.dim * m for m in self.dim_mults] + [self.dim]:
            if w % self.groups:
                problems.append(f"width {w} is not divisible by groups={self.groups}")
                break
        if self.prediction_type not in PREDICTION_TYPES:
            problems.append(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if not 0.0 <= self.cond_drop_prob < 1.0:
            problems.append(f"cond_drop_prob must be in [0, 1), got {self.cond_drop_prob}")
        if not 0.0 < self.dynamic_thresholding_ratio <= 1.0:
            problems.append("dynamic_thresholding_ratio must be in (0, 1]")
        if self.flow_scale <= 0:
            problems.append(f"flow_scale must be > 0, got {self.flow_scale}")
        if not 0.0 < self.flow_power <= 1.0:
            problems.append(f"flow_power must be in (0, 1], got {self.flow_power}")
        if self.n_frames < 1:
            problems.append("n_frames must be >= 1")
        if self.time_base not in TIME_BASES:
            problems.append(f"time_base must be one of {TIME_BASES}, got {self.time_base!r}")
        if self.temporal_kernel < 0 or (self.temporal_kernel and self.temporal_kernel % 2 == 0):
            problems.append(f"temporal_kernel must be 0 (off) or odd, got {self.temporal_kernel}")
        if self.samples_per_beat < 2:
            problems.append(f"samples_per_beat must be >= 2, got {self.samples_per_beat}")
        if problems:
            raise ValueError("Invalid DiffusionConfig: " + "; ".join(problems))

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["dim_mults"] = list(self.dim_mults)
        return d

    def shape_dict(self) -> dict[str, Any]:
        """The fields that decide the weights' shapes (resuming and loading compare these)."""
        skip = {"name", "music_spec", "flow_ae", "cond_drop_prob", "version"}
        return {k: v for k, v in self.to_dict().items() if k not in skip}

    def with_music(self, spec: Mapping[str, Any], *, beat_features: bool | None = None) -> "DiffusionConfig":
        """Take the embedding sizes from a music encoder's ``spec`` and record the spec."""
        use = self.beat_features if beat_features is None else bool(beat_features)
        frame_dim = int(spec.get("frame_dim", 0))
        return self.replace(music_spec=json.loads(json.dumps(dict(spec))), music_dim=int(spec["global_dim"]),
                            beat_dim=frame_dim, beat_features=use and frame_dim > 0)

    def with_flow_ae(self, identity: Mapping[str, Any]) -> "DiffusionConfig":
        """Take the latent geometry from a flow AE identity and record it."""
        return self.replace(flow_ae=dict(identity), latent_channels=int(identity["latent_channels"]),
                            latent_size=int(identity["latent_size"]))


PRESETS: dict[str, DiffusionConfig] = {
    # cond_dim 1024: LFDM concatenates a 1024-wide condition to the time embedding (~43M params)
    "paper": DiffusionConfig(name="paper", cond_dim=1024),
    "small": DiffusionConfig(
        name="small", latent_channels=64, latent_size=16, n_frames=16, dim=32, dim_mults=(1, 2, 4),
        num_res_blocks=2, groups=8, attn_heads=4, attn_dim_head=32, spatial_attn_max_size=8,
    ),
    "tiny": DiffusionConfig(
        name="tiny", latent_channels=16, latent_size=8, n_frames=8, dim=16, dim_mults=(1, 2),
        num_res_blocks=1, groups=4, attn_heads=2, attn_dim_head=8, spatial_attn_max_size=4,
        rel_pos_buckets=8, rel_pos_max_distance=32,
    ),
}


def get_config(name_or_path: str | os.PathLike | DiffusionConfig) -> DiffusionConfig:
    """A preset by name (``paper``, ``small``, ``tiny``), a JSON file, or a config passed through."""
    return DiffusionConfig.resolve(name_or_path, PRESETS)
