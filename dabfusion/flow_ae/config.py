"""Flow auto-encoder configurations as data: a dataclass that round-trips through JSON.

A configuration is saved inside every checkpoint and the model is rebuilt from it (the diffusers
way), so loading never depends on code defaults that may have changed since training.

Presets:

- ``paper``: 128x128 frames, latent 256 x 32 x 32, 10 regions, widths of LFDM's flow AE
  (MRAA region predictor, background motion predictor and pixel-wise flow predictor, LFDM's
  image encoder/decoder): ~66M params.
- ``small``: 64x64 frames, latent 64 x 16 x 16; trainable on 2 CPU cores in well under an hour.
- ``tiny``: 32x32 frames, latent 16 x 8 x 8, < 1M params, for tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config_io import JSONConfig

CONFIG_VERSION = 1
NORMS = ("group", "batch")
BG_MOTIONS = ("affine", "none")


@dataclass(frozen=True)
class FlowAEConfig(JSONConfig):
    """Everything needed to rebuild a :class:`~dabfusion.flow_ae.model.FlowAutoEncoder`.

    The latent has ``latent_channels = min(max_features, block_expansion * 2**num_down_blocks)``
    channels at ``image_size / 2**num_down_blocks`` pixels. The region predictor and the dense
    motion network run on the frames resized by ``region_scale`` / ``motion_scale``; the dense
    motion output is resized to the latent resolution.
    """

    name: str = "custom"
    image_size: int = 128
    in_channels: int = 3
    # image encoder / decoder (LFDM's generator without skips: the decoder sees only z~)
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    num_bottleneck_blocks: int = 6
    # region predictor (MRAA, PCA-based affine per region)
    num_regions: int = 10
    region_block_expansion: int = 32
    region_max_features: int = 1024
    region_num_blocks: int = 5
    region_scale: float = 0.5
    region_temperature: float = 0.1
    # dense motion network (MRAA's pixel-wise flow predictor)
    motion_block_expansion: int = 64
    motion_max_features: int = 1024
    motion_num_blocks: int = 5
    motion_scale: float = 0.5
    revert_axis_swap: bool = True
    # background motion (MRAA's BG motion predictor): "affine" lets the whole background move
    # (camera shake, zoom), "none" keeps it still (AIST++ and SynthDance cameras are fixed)
    bg_motion: str = "affine"
    bg_block_expansion: int = 32
    bg_max_features: int = 1024
    bg_num_blocks: int = 5
    # normalisation of every conv block: GroupNorm has no running statistics, so training and
    # inference behave the same, batch 1 works, and nothing has to be synchronised across GPUs.
    norm: str = "group"
    version: int = CONFIG_VERSION

    kind_name = "flow AE"  # for messages (not a field: no annotation)

    # ------------------------------------------------------------------ derived sizes
    @property
    def latent_channels(self) -> int:
        return min(self.max_features, self.block_expansion * 2 ** self.num_down_blocks)

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** self.num_down_blocks

    @property
    def region_size(self) -> int:
        return int(round(self.image_size * self.region_scale))

    @property
    def motion_size(self) -> int:
        return int(round(self.image_size * self.motion_scale))

    # ------------------------------------------------------------------ checks
    def __post_init__(self) -> None:
        problems = []
        f = 2 ** self.num_down_blocks
        if self.image_size % f:
            problems.append(f"image_size={self.image_size} must be divisible by 2**num_down_blocks={f}")
        for what, size, blocks in (("region", self.region_size, self.region_num_blocks),
                                   ("motion", self.motion_size, self.motion_num_blocks)):
            if size % (2 ** blocks):
                problems.append(f"{what} input {size}px (image_size*{what}_scale) must be divisible "
                                f"by 2**{what}_num_blocks={2 ** blocks}")
        if self.norm not in NORMS:
            problems.append(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.bg_motion not in BG_MOTIONS:
            problems.append(f"bg_motion must be one of {BG_MOTIONS}, got {self.bg_motion!r}")
        if self.bg_motion != "none" and self.region_size % (2 ** self.bg_num_blocks):
            problems.append(f"background input {self.region_size}px must be divisible by "
                            f"2**bg_num_blocks={2 ** self.bg_num_blocks}")
        if self.num_regions < 1:
            problems.append("num_regions must be >= 1")
        if problems:
            raise ValueError("Invalid FlowAEConfig: " + "; ".join(problems))

    def with_image_size(self, size: int) -> "FlowAEConfig":
        """Same widths at another frame size (the latent stays ``size / 2**num_down_blocks``)."""
        if size == self.image_size:
            return self
        return self.replace(image_size=size, name=f"{self.name}@{size}")


PRESETS: dict[str, FlowAEConfig] = {
    "paper": FlowAEConfig(name="paper"),
    "small": FlowAEConfig(
        name="small", image_size=64,
        block_expansion=16, max_features=64, num_down_blocks=2, num_bottleneck_blocks=3,
        num_regions=10, region_block_expansion=16, region_max_features=128, region_num_blocks=4,
        region_scale=0.5, motion_block_expansion=16, motion_max_features=128, motion_num_blocks=4,
        motion_scale=0.5, bg_motion="none",
    ),
    "tiny": FlowAEConfig(
        name="tiny", image_size=32,
        block_expansion=4, max_features=16, num_down_blocks=2, num_bottleneck_blocks=1,
        num_regions=4, region_block_expansion=8, region_max_features=32, region_num_blocks=3,
        region_scale=0.5, motion_block_expansion=8, motion_max_features=32, motion_num_blocks=3,
        motion_scale=0.5, bg_motion="affine", bg_block_expansion=4, bg_max_features=16, bg_num_blocks=3,
    ),
}


def get_config(name_or_path: str | os.PathLike | FlowAEConfig) -> FlowAEConfig:
    """A preset by name (``paper``, ``small``, ``tiny``), a JSON file, or a config passed through."""
    return FlowAEConfig.resolve(name_or_path, PRESETS)
