"""Segment Anything, prompted by the person's box: load any SAM checkpoint, get the best mask.

Meta's checkpoints (``sam_vit_b_01ec64.pth``, ``sam_vit_l_0b3195.pth``, ``sam_vit_h_4b8939.pth``)
are plain state dicts. Rather than trusting the file name (users rename files; Impact Pack's
folder holds ``sam_vit_b_01ec64.pth`` next to HQ-SAM files), the architecture is read from the
tensor shapes (:func:`sam_config_from_state_dict`): embedding width, depth, heads, which blocks
use global attention, image and patch size, prompt width, decoder depth. The model is then built
with segment-anything's own classes, so the official ViT-B/L/H and a small test model load
through one code path. HQ-SAM files load too: their extra decoder tensors (the HQ token) are
ignored and the plain SAM head, which HQ-SAM keeps frozen, gives the mask.

Building on the ``meta`` device and loading with ``assign=True`` skips initialising 600 M random
weights for ViT-H only to overwrite them.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ModelFileError

SAM_FOLDER = "sams"
SAM_SOURCE = (
    "Meta's segment-anything release (github.com/facebookresearch/segment-anything, 'Model "
    "Checkpoints': sam_vit_b_01ec64.pth, sam_vit_l_0b3195.pth or sam_vit_h_4b8939.pth); "
    "HQ-SAM's sam_hq_vit_*.pth also work"
)
#: Decoder tensors that HQ-SAM adds to SAM's; the plain head does not use them.
HQ_PREFIXES = ("mask_decoder.hf_token.", "mask_decoder.hf_mlp.", "mask_decoder.compress_vit_feat.",
               "mask_decoder.embedding_encoder.", "mask_decoder.embedding_maskfeature.")
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class SamConfig:
    """Everything that shapes a SAM; defaults are the official values shared by ViT-B/L/H."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    img_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    use_rel_pos: bool = True
    prompt_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8  # not visible in any shape; every released SAM uses 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    @property
    def variant(self) -> str:
        """The official name (vit_b, vit_l, vit_h) when the architecture is one, else "custom"."""
        for name, cfg in SAM_VARIANTS.items():
            if cfg == self:
                return name
        return "custom"

    def to_dict(self) -> dict:
        return asdict(self)


SAM_VARIANTS: dict[str, SamConfig] = {
    "vit_b": SamConfig(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": SamConfig(1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": SamConfig(1280, 32, 16, (7, 15, 23, 31)),
}


def variant_from_filename(name: str | os.PathLike) -> str | None:
    """The variant a file name announces (``sam_vit_b_01ec64.pth`` -> vit_b), else None.

    Only used to explain errors: the tensors' shapes decide the architecture.
    """
    m = re.search(r"vit[_-]?([blh])(?![a-z])", Path(name).name.lower())
    return f"vit_{m.group(1)}" if m else None


# ------------------------------------------------------------------------------ config from shapes


def _count(sd: Mapping[str, Any], prefix: str) -> int:
    """Number of consecutive numbered children ``prefix{i}.`` present in the state dict."""
    idx = {int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    n = 0
    while n in idx:
        n += 1
    return n


def sam_config_from_state_dict(sd: Mapping[str, Any]) -> SamConfig:
    """Read a SAM architecture from its state dict's tensor shapes (KeyError if it is no SAM)."""

    def shape(key: str) -> tuple[int, ...]:
        return tuple(sd[key].shape)

    embed_dim, _, patch, _ = shape("image_encoder.patch_embed.proj.weight")
    grid = shape("image_encoder.pos_embed")[1] if "image_encoder.pos_embed" in sd else None
    depth = _count(sd, "image_encoder.blocks.")
    if depth == 0:
        raise KeyError("image_encoder.blocks.0")
    use_rel_pos = "image_encoder.blocks.0.attn.rel_pos_h" in sd
    if grid is None:
        raise KeyError("image_encoder.pos_embed")
    global_idx, windows, head_dim = [], set(), None
    for i in range(depth):
        key = f"image_encoder.blocks.{i}.attn.rel_pos_h"
        if not use_rel_pos:
            break
        span, head_dim = shape(key)
        size = (span + 1) // 2
        if size == grid:
            global_idx.append(i)
        else:
            windows.add(size)
    if len(windows) > 1:
        raise KeyError(f"image encoder blocks use different window sizes {sorted(windows)}")
    num_heads = embed_dim // head_dim if head_dim else max(1, embed_dim // 64)
    mlp_hidden = shape("image_encoder.blocks.0.mlp.lin1.weight")[0]
    prompt_dim = shape("image_encoder.neck.0.weight")[0]
    dec = "mask_decoder.transformer.layers."
    cross_inner = shape(dec + "0.cross_attn_token_to_image.q_proj.weight")[0]
    iou_depth = _count(sd, "mask_decoder.iou_prediction_head.layers.")
    return SamConfig(
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        global_attn_indexes=tuple(global_idx),
        img_size=grid * patch,
        patch_size=patch,
        window_size=windows.pop() if windows else 0,
        mlp_ratio=mlp_hidden / embed_dim,
        qkv_bias="image_encoder.blocks.0.attn.qkv.bias" in sd,
        use_rel_pos=use_rel_pos,
        prompt_dim=prompt_dim,
        mask_in_chans=shape("prompt_encoder.mask_downscaling.3.weight")[0],
        decoder_depth=_count(sd, dec),
        decoder_mlp_dim=shape(dec + "0.mlp.lin1.weight")[0],
        attention_downsample_rate=max(1, prompt_dim // cross_inner),
        num_multimask_outputs=shape("mask_decoder.mask_tokens.weight")[0] - 1,
        iou_head_depth=iou_depth,
        iou_head_hidden_dim=shape("mask_decoder.iou_prediction_head.layers.0.weight")[0],
    )


def build_sam(config: SamConfig) -> Any:
    """A ``segment_anything.modeling.Sam`` of this architecture (random weights, eval mode)."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    c = config
    grid = c.img_size // c.patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=c.img_size, patch_size=c.patch_size, embed_dim=c.embed_dim, depth=c.depth,
            num_heads=c.num_heads, mlp_ratio=c.mlp_ratio, out_chans=c.prompt_dim, qkv_bias=c.qkv_bias,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=c.use_rel_pos,
            window_size=c.window_size, global_attn_indexes=tuple(c.global_attn_indexes),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=c.prompt_dim, image_embedding_size=(grid, grid),
            input_image_size=(c.img_size, c.img_size), mask_in_chans=c.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=c.num_multimask_outputs,
            transformer=TwoWayTransformer(
                depth=c.decoder_depth, embedding_dim=c.prompt_dim, mlp_dim=c.decoder_mlp_dim,
                num_heads=c.decoder_heads, attention_downsample_rate=c.attention_downsample_rate,
            ),
            transformer_dim=c.prompt_dim, iou_head_depth=c.iou_head_depth,
            iou_head_hidden_dim=c.iou_head_hidden_dim,
        ),
        pixel_mean=list(PIXEL_MEAN),
        pixel_std=list(PIXEL_STD),
    )
    return sam.eval()


# ------------------------------------------------------------------------------------ loading


@dataclass
class LoadedSam:
    """A ready SAM and what was found out about its file."""

    model: Any
    config: SamConfig
    path: Path
    device: str
    ignored_keys: tuple[str, ...] = ()

    @property
    def variant(self) -> str:
        return self.config.variant


def _sam_error(path: Path, why: str) -> ModelFileError:
    return ModelFileError(f"{why}: {path}. Put a SAM checkpoint in models/{SAM_FOLDER}; it comes from {SAM_SOURCE}.")


def read_sam_state_dict(path: str | os.PathLike) -> dict:
    """The tensors of a SAM checkpoint (plain state dict, or wrapped in "model"/"state_dict")."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise _sam_error(path, "SAM checkpoint not found")
    try:
        # weights_only: a .pth from the internet cannot run code. No mmap: a cached model would keep
        # the file open (and locked on Windows), so the user could not replace it while ComfyUI runs.
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise _sam_error(path, f"could not read it as a SAM checkpoint ({type(err).__name__}: {first})") from err
    for wrapper in ("model", "state_dict"):
        if isinstance(sd, Mapping) and isinstance(sd.get(wrapper), Mapping):
            sd = sd[wrapper]
    if not isinstance(sd, Mapping):
        raise _sam_error(path, f"not a SAM state dict (the file holds a {type(sd).__name__})")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}


def load_sam(path: str | os.PathLike, device: str = "cpu") -> LoadedSam:
    """Read the file, infer its architecture from shapes, build it with segment-anything, load strictly."""
    import torch

    path = Path(path).expanduser()
    sd = read_sam_state_dict(path)
    named = variant_from_filename(path)
    hint = f"; its name says {named}" if named else ""
    if any(k.startswith("image_encoder.") for k in sd) and "image_encoder.patch_embed.proj.weight" not in sd:
        raise _sam_error(path, "this SAM has an image encoder other than segment-anything's ViT (MobileSAM, "
                               "EfficientSAM, SAM 2 ...); only ViT-B/L/H SAM checkpoints are supported")
    try:
        config = sam_config_from_state_dict(sd)
    except (KeyError, ValueError, IndexError, ZeroDivisionError) as err:
        raise _sam_error(path, f"not a segment-anything checkpoint (missing or odd tensor {err}{hint})") from err
    ignored = tuple(k for k in sd if k.startswith(HQ_PREFIXES))
    sd = {k: v for k, v in sd.items() if not k.startswith(HQ_PREFIXES)}
    with torch.device("meta"):
        sam = build_sam(config)
    try:
        sam.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError as err:
        detail = " ".join(str(err).replace("Error(s) in loading state_dict for Sam:", "").split())[:300]
        raise _sam_error(path, f"the checkpoint's tensors do not fit a {config.variant} SAM ({detail}{hint})") from err
    # non-persistent buffers are not in the file: make them real after the meta build
    sam.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(-1, 1, 1), False)
    sam.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(-1, 1, 1), False)
    left = [n for n, t in list(sam.named_parameters()) + list(sam.named_buffers()) if t.is_meta]
    if left:
        raise _sam_error(path, f"the checkpoint lacks tensors {left[:4]}")
    sam = sam.float().eval().to(device)
    for p in sam.parameters():
        p.requires_grad_(False)
    return LoadedSam(sam, config, path, str(device), ignored)


# ------------------------------------------------------------------------------------ predicting


@dataclass(frozen=True)
class SamMask:
    """The best of SAM's candidate masks for a box: bool ``[H, W]`` and SAM's own IoU estimate."""

    mask: np.ndarray
    score: float
    scores: tuple[float, ...]


def sam_box_mask(sam: LoadedSam | Any, image_rgb: np.ndarray, box: Sequence[float], *, multimask: bool = True) -> SamMask:
    """Segment the object in ``box`` (x0, y0, x1, y1 pixels) of a uint8 RGB ``[H, W, 3]`` image.

    With ``multimask`` SAM proposes three masks (part, whole, whole plus surroundings) and the one
    with the best predicted IoU is kept; SAM's authors recommend this for ambiguous prompts, and a
    box around a person is ambiguous between the person and their clothes.
    """
    import torch
    from segment_anything import SamPredictor

    model = sam.model if isinstance(sam, LoadedSam) else sam
    image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
    predictor = SamPredictor(model)
    with torch.inference_mode():
        predictor.set_image(image, image_format="RGB")
        masks, scores, _ = predictor.predict(box=np.asarray(box, np.float32), multimask_output=multimask)
    best = int(np.argmax(scores))
    return SamMask(np.asarray(masks[best], bool), float(scores[best]), tuple(float(s) for s in scores))
