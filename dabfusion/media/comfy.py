"""ComfyUI's tensor conventions, without importing ComfyUI.

IMAGE is float32 torch ``[B, H, W, C]`` in 0..1, MASK float ``[B, H, W]`` in 0..1, AUDIO a
mapping ``{"waveform": [B, C, S], "sample_rate": int}``. Our Load Music adds the creator's beat grid
edit under :data:`BEAT_GRID_KEY` (core nodes read only the two keys they need; other keys pass), so
every node that needs the grid of that music reads the same one (:func:`audio_beat_edit`). Inputs from other packs vary (lazy
mappings, RGBA or single-channel images, [H, W, C] without batch), so the ``*_from_comfy``
functions accept all of those and refuse only what cannot be meant (NaN, empty, wrong rank).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np

from ..errors import MediaError
from .image import WHITE, channels_to_rgb, to_float01, to_numpy, to_uint8


def _torch():
    import torch

    return torch


# -------------------------------------------------------------------------------------- audio


#: Key of an AUDIO mapping that carries a :class:`dabfusion.music.beat_grid.BeatGridEdit` (Load Music's beat
#: controls; times in the waveform's seconds).
BEAT_GRID_KEY = "dabfusion_beat_grid"


def audio_beat_edit(audio: Any) -> Any:
    """The beat grid edit an AUDIO mapping carries (Load Music's beat controls), or None."""
    from ..music.beat_grid import BeatGridEdit

    if not isinstance(audio, Mapping):
        return None
    edit = audio.get(BEAT_GRID_KEY)
    return edit if isinstance(edit, BeatGridEdit) and not edit.is_identity else None


def audio_to_comfy(wave: Any, sample_rate: int, *, beat_edit: Any = None) -> dict:
    """float32 [C, S] (or [S]) numpy/torch -> {"waveform": torch [1, C, S], "sample_rate": int}
    (and the beat grid edit under :data:`BEAT_GRID_KEY`, when one is given and changes something)."""
    arr = to_numpy(wave).astype(np.float32, copy=False)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise MediaError(f"audio must be [channels, samples] or [samples], got shape {arr.shape}")
    sr = _check_rate(sample_rate)
    waveform = _torch().from_numpy(np.ascontiguousarray(arr)).unsqueeze(0)
    out = {"waveform": waveform, "sample_rate": sr}
    if beat_edit is not None and not beat_edit.is_identity:
        out[BEAT_GRID_KEY] = beat_edit
    return out


def _check_rate(sample_rate: Any) -> int:
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError):
        raise MediaError(f"AUDIO sample_rate must be an integer (Hz), got {sample_rate!r}") from None
    if sr <= 0 or sr != float(sample_rate):
        raise MediaError(f"AUDIO sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    return sr


def audio_from_comfy(audio: Any, *, batch_index: int = 0) -> tuple[np.ndarray, int]:
    """AUDIO mapping -> (float32 [C, S], sample_rate) for one batch item.

    Any Mapping works (other packs pass lazy Mapping subclasses); [C, S] or [S] waveforms
    without the batch axis are accepted too.
    """
    if not isinstance(audio, Mapping):
        raise MediaError(f"AUDIO input must be a mapping with 'waveform' and 'sample_rate', got {type(audio).__name__}")
    missing = [k for k in ("waveform", "sample_rate") if k not in audio]
    if missing:
        raise MediaError(f"AUDIO input is missing {', '.join(missing)} (it needs 'waveform' and 'sample_rate')")
    sr = _check_rate(audio["sample_rate"])
    wave = to_numpy(audio["waveform"])
    if wave.ndim == 1:
        wave = wave[None, None]
    elif wave.ndim == 2:
        wave = wave[None]
    if wave.ndim != 3:
        raise MediaError(f"AUDIO waveform must be [batch, channels, samples], got shape {wave.shape}")
    if not -wave.shape[0] <= batch_index < wave.shape[0]:
        raise MediaError(f"AUDIO batch has {wave.shape[0]} item(s); batch_index {batch_index} is out of range")
    out = wave[batch_index].astype(np.float32)
    if out.size == 0:
        raise MediaError(f"AUDIO waveform is empty (shape {wave.shape})")
    if not np.isfinite(out).all():
        raise MediaError("AUDIO waveform contains NaN or infinite values")
    return out, sr


# ------------------------------------------------------------------------------------- images


def _batched(arr: np.ndarray, what: str) -> np.ndarray:
    """[H, W, C] -> [1, H, W, C]; [B, H, W, C] unchanged; anything else is an error."""
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise MediaError(f"{what} must be [B, H, W, C] or [H, W, C], got shape {arr.shape}")
    if 0 in arr.shape:
        raise MediaError(f"{what} is empty (shape {arr.shape})")
    return arr


def image_to_comfy(frames: Any, *, background: Sequence[int] = WHITE) -> Any:
    """uint8 or 0..1 float [H, W, C] / [N, H, W, C] (C = 1, 2, 3, 4) -> IMAGE float32 [B, H, W, 3].

    Alpha is composited over ``background`` (white) and dropped: IMAGE consumers expect 3 channels.
    """
    arr = _batched(to_numpy(frames), "image")
    rgb = channels_to_rgb(to_float01(arr, "image"), background, "image")
    return _torch().from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))


def image_from_comfy(image: Any, *, background: Sequence[int] = WHITE) -> np.ndarray:
    """IMAGE [B, H, W, C] or [H, W, C] (C = 1, 2, 3, 4) -> uint8 RGB [B, H, W, 3]."""
    arr = _batched(to_numpy(image), "IMAGE")
    return to_uint8(channels_to_rgb(to_float01(arr, "IMAGE"), background, "IMAGE"))


# -------------------------------------------------------------------------------------- masks


def mask_to_comfy(mask: Any) -> Any:
    """[H, W] or [B, H, W] (uint8 0..255, bool or float 0..1) -> MASK float32 [B, H, W]."""
    arr = _mask_3d(to_numpy(mask))
    return _torch().from_numpy(np.ascontiguousarray(to_float01(arr, "mask")))


def mask_from_comfy(mask: Any) -> np.ndarray:
    """MASK [B, H, W] / [H, W] / [B, H, W, 1] -> float32 [B, H, W] in 0..1."""
    return to_float01(_mask_3d(to_numpy(mask)), "MASK")


def _mask_3d(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise MediaError(f"mask must be [B, H, W] or [H, W], got shape {arr.shape}")
    if 0 in arr.shape:
        raise MediaError(f"mask is empty (shape {arr.shape})")
    return arr
