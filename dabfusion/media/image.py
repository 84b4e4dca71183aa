"""Still images in and out, and the square resize that video reading shares.

Everything returns uint8 RGB ``[H, W, 3]`` (or ``[N, H, W, 3]``). Transparent pixels are
composited over a *white* background by default: a cut-out person on white is what a user of
a reference image expects to see, while black would read as a dark silhouette. Pass
``background=`` to choose another colour, or use :func:`load_image_with_alpha` to keep the mask.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import MediaError

FITS = ("crop", "pad")
WHITE = (255, 255, 255)


def to_numpy(x: Any) -> np.ndarray:
    """numpy view of an array or torch tensor (any device/dtype), without importing torch here."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


# ---------------------------------------------------------------------------------- geometry


def check_fit(fit: str) -> str:
    """Fail early on a typo in ``fit`` instead of silently cropping."""
    if fit not in FITS:
        raise MediaError(f"fit must be one of {FITS}, got {fit!r}")
    return fit


def square_scaled_size(width: int, height: int, size: int, fit: str = "crop") -> tuple[int, int]:
    """Size to scale a ``width x height`` picture to before cropping/padding it to ``size``.

    "crop" scales the shortest side to ``size`` (the rest is cut off the centre); "pad" scales the
    longest side to ``size`` (the rest is filled with black). Never below 1 pixel.
    """
    check_fit(fit)
    side = min(width, height) if fit == "crop" else max(width, height)
    scale = size / side
    nw = max(1, int(round(width * scale)))
    nh = max(1, int(round(height * scale)))
    if fit == "crop":
        nw, nh = max(nw, size), max(nh, size)
    else:
        nw, nh = min(nw, size), min(nh, size)
    return nw, nh


def crop_or_pad_square(image: np.ndarray, size: int, fit: str = "crop") -> np.ndarray:
    """Centre-crop (or centre-pad with black) an already scaled ``[..., H, W, C]`` array to a square."""
    check_fit(fit)
    h, w = image.shape[-3], image.shape[-2]
    if fit == "crop":
        top, left = (h - size) // 2, (w - size) // 2
        return np.ascontiguousarray(image[..., top : top + size, left : left + size, :])
    out = np.zeros(image.shape[:-3] + (size, size, image.shape[-1]), dtype=image.dtype)
    top, left = (size - h) // 2, (size - w) // 2
    out[..., top : top + h, left : left + w, :] = image
    return out


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2 resize with area averaging when shrinking (no aliasing) and bilinear when growing."""
    import cv2

    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width < image.shape[1] or height < image.shape[0]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = cv2.resize(image, (width, height), interpolation=interp)
    return out.reshape(height, width, *image.shape[2:])


def resize_square(frames_or_image: np.ndarray, size: int, fit: str = "crop") -> np.ndarray:
    """Resize ``[H, W, C]`` or ``[N, H, W, C]`` to ``size x size`` ("crop": fill; "pad": letterbox).

    The model works on square frames; cropping keeps the person large, padding keeps all of them.
    """
    arr = np.asarray(frames_or_image)
    if arr.ndim not in (3, 4):
        raise MediaError(f"resize_square expects [H,W,C] or [N,H,W,C], got shape {arr.shape}")
    if int(size) < 1:
        raise MediaError(f"size must be a positive number of pixels, got {size}")
    size = int(size)
    h, w = arr.shape[-3], arr.shape[-2]
    nw, nh = square_scaled_size(w, h, size, fit)
    if arr.ndim == 3:
        return crop_or_pad_square(_resize(arr, nw, nh), size, fit)
    return np.stack([crop_or_pad_square(_resize(f, nw, nh), size, fit) for f in arr]) if len(arr) else (
        np.zeros((0, size, size, arr.shape[-1]), dtype=arr.dtype)
    )


# ---------------------------------------------------------------------------------- channels


def to_float01(arr: np.ndarray, what: str = "image") -> np.ndarray:
    """Pixel values as float32 in 0..1 from uint8/uint16/bool/float; NaN or inf is refused."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32, copy=False)
        if not np.isfinite(out).all():
            raise MediaError(f"{what} contains NaN or infinite values")
        return np.clip(out, 0.0, 1.0)
    if np.issubdtype(arr.dtype, np.integer):
        return np.clip(arr, 0, 255).astype(np.float32) / 255.0
    raise MediaError(f"{what} has unsupported dtype {arr.dtype}")


def to_uint8(arr01: np.ndarray) -> np.ndarray:
    """0..1 floats to uint8 with rounding (not truncation, which darkens by half a level)."""
    return (np.clip(arr01, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def composite(rgb01: np.ndarray, alpha01: np.ndarray, background: Sequence[int] = WHITE) -> np.ndarray:
    """Straight-alpha "over" onto a flat colour; float 0..1 in and out."""
    bg = np.asarray(background, np.float32).reshape((1,) * (rgb01.ndim - 1) + (3,)) / 255.0
    a = alpha01[..., None]
    return rgb01 * a + bg * (1.0 - a)


def channels_to_rgb(arr01: np.ndarray, background: Sequence[int] = WHITE, what: str = "image") -> np.ndarray:
    """[..., C] float with C = 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA) to [..., 3]."""
    c = arr01.shape[-1]
    if c == 1:
        return np.repeat(arr01, 3, axis=-1)
    if c == 2:
        return composite(np.repeat(arr01[..., :1], 3, axis=-1), arr01[..., 1], background)
    if c == 3:
        return arr01
    if c == 4:
        return composite(arr01[..., :3], arr01[..., 3], background)
    raise MediaError(f"{what} must have 1, 2, 3 or 4 channels in the last axis, got shape {arr01.shape}")


# ---------------------------------------------------------------------------------- loading


def _open_pil(path: str | os.PathLike):
    """Open and fully decode with PIL, EXIF rotation applied; clear errors for bad files."""
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"image file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"image file is empty (0 bytes): {path}")
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here and not later
            img = ImageOps.exif_transpose(img)
            img.load()
            return img
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise MediaError(f"could not read image {path}: {err}") from err


def _pil_to_array(img) -> tuple[np.ndarray, np.ndarray | None]:
    """PIL image to float RGB [H, W, 3] and alpha [H, W] (or None) in 0..1, any mode."""
    mode = img.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16-bit / float greyscale
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if mode == "F" and arr.max(initial=0) <= 1.0:
            top = 1.0
        grey = np.clip(arr / top, 0.0, 1.0)[..., None]
        return np.repeat(grey, 3, axis=-1), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        arr = to_float01(np.asarray(img.convert("RGBA")))
        return arr[..., :3], arr[..., 3]
    return to_float01(np.asarray(img.convert("RGB"))), None


def load_image_with_alpha(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 RGB [H, W, 3] (colours not composited) and float32 alpha [H, W] in 0..1 or None.

    Alpha 1 means opaque (the opposite of ComfyUI's LoadImage MASK, which is 1 - alpha).
    """
    rgb, alpha = _pil_to_array(_open_pil(path))
    return to_uint8(rgb), alpha


def load_image(path: str | os.PathLike, *, background: Sequence[int] = WHITE) -> np.ndarray:
    """uint8 RGB [H, W, 3]; transparency composited over ``background`` (white by default),
    greyscale expanded to 3 channels, EXIF orientation applied, first frame of an animation."""
    rgb, alpha = _pil_to_array(_open_pil(path))
    if alpha is not None:
        rgb = composite(rgb, alpha, background)
    return to_uint8(rgb)
