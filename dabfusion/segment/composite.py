"""Put a cut-out person into a square start frame, standing where training dancers stand.

The animator only knows how persons look in its training frames: roughly the same size, standing
in the middle, feet near the bottom. A person pasted at another scale or height makes the motion
model produce small, odd or repetitive motion (the paper's "atypical start" failure). So the
person is scaled by the *height* of their mask's box and placed by an anchor point:

- ``height``: box height / frame height (default 0.7),
- ``anchor``: "feet" (bottom centre of the box, default) or "center" (box centre),
- ``x``, ``y``: where the anchor lands, as fractions of the frame (default 0.5, 0.9).

The defaults describe a full-body dancer in an AIST++ frontal camera after the centre crop to a
square, and SynthDance's framing, which copies it: the dancer fills about 70 % of the height, is
centred, and stands with the feet about a tenth of the frame above the bottom. To copy a data set
exactly, measure one of its frames: ``Placement.from_mask(dancer_mask)``.

The person is resampled once (area averaging when shrinking, so no aliasing), with premultiplied
colour so background pixels of the photo never bleed into the edge, then feathered at the output
resolution and composited "over" the background.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import MediaError
from ..media.image import channels_to_rgb, load_image, resize_square, to_float01, to_numpy, to_uint8
from .mask_ops import Box, as_mask, fit_mask_to, gaussian_sigma, mask_bbox

ANCHORS = ("feet", "center")


@dataclass(frozen=True)
class Placement:
    """Where and how big the person stands in the frame (fractions of the frame size)."""

    height: float = 0.7
    x: float = 0.5
    y: float = 0.9
    anchor: str = "feet"
    max_width: float = 0.96  # a wide pose (arms spread) is shrunk to fit this fraction of the width

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise MediaError(f"placement anchor must be one of {ANCHORS}, got {self.anchor!r}")
        if not 0.0 < self.height <= 2.0:
            raise MediaError(f"placement height must be a fraction of the frame in (0, 2], got {self.height}")
        if not 0.0 < self.max_width:
            raise MediaError(f"placement max_width must be positive, got {self.max_width}")

    @classmethod
    def from_mask(cls, mask: Any, anchor: str = "feet", threshold: float = 0.5, fit: str = "crop") -> "Placement":
        """The placement of the person in ``mask`` (e.g. the dancer of a training frame).

        Non-square masks are measured in the square the frames become (``resize_square`` with ``fit``).
        """
        m = as_mask(mask, "placement mask")
        side = min(m.shape) if fit == "crop" else max(m.shape)
        m = resize_square(m[..., None], side, fit=fit)[..., 0]
        box = mask_bbox(m, threshold)
        if box is None:
            raise MediaError("placement mask is empty: no person pixels to measure")
        s = float(m.shape[0])
        x0, y0, x1, y1 = box
        ax, ay = anchor_point(box, anchor)
        return cls(height=(y1 - y0) / s, x=ax / s, y=ay / s, anchor=anchor)

    def with_(self, **changes: Any) -> "Placement":
        return replace(self, **changes)


def anchor_point(box: Box, anchor: str) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    return ((x0 + x1) / 2.0, y1 if anchor == "feet" else (y0 + y1) / 2.0)


# --------------------------------------------------------------------------------- backgrounds


def studio_background(size: int, *, floor: float = 0.78) -> np.ndarray:
    """A plain studio: light wall with a soft vertical gradient, a darker floor, a faint vignette.

    Neutral like SynthDance's and AIST++'s studios, so the animator sees nothing it has not seen.
    """
    s = int(size)
    yy = (np.arange(s, dtype=np.float32) + 0.5)[:, None] / s
    xx = (np.arange(s, dtype=np.float32) + 0.5)[None, :] / s
    wall_top, wall_low = np.array([0.86, 0.85, 0.83]), np.array([0.74, 0.73, 0.71])
    floor_near, floor_far = np.array([0.50, 0.47, 0.44]), np.array([0.62, 0.59, 0.56])
    t_wall = np.clip(yy / floor, 0, 1)[..., None]
    t_floor = np.clip((yy - floor) / (1 - floor), 0, 1)[..., None]
    wall = wall_top * (1 - t_wall) + wall_low * t_wall
    ground = floor_far * (1 - t_floor) + floor_near * t_floor
    seam = np.clip((yy - floor) * s + 0.5, 0, 1)[..., None]  # one anti-aliased pixel at the seam
    img = wall * (1 - seam) + ground * seam
    vignette = 1.0 - 0.10 * ((xx - 0.5) ** 2 * 4.0)
    img = img * vignette[..., None]
    return to_uint8(np.broadcast_to(img, (s, s, 3)))


_NAMED = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128), "gray": (128, 128, 128),
          "green": (0, 177, 64)}


def _colour(spec: Any) -> tuple[int, int, int] | None:
    """A flat colour from "#rrggbb", a name, or 3 numbers (ints 0..255, floats 0..1)."""
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s in _NAMED:
            return _NAMED[s]
        if s.startswith("#") and len(s) == 7:
            try:
                return tuple(int(s[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
            except ValueError:
                return None
        return None
    if isinstance(spec, (tuple, list)) and len(spec) == 3 and all(isinstance(v, (int, float, np.number)) for v in spec):
        if all(isinstance(v, (int, np.integer)) for v in spec):
            return tuple(int(np.clip(v, 0, 255)) for v in spec)  # type: ignore[return-value]
        return tuple(int(round(float(np.clip(v, 0, 1)) * 255)) for v in spec)  # type: ignore[return-value]
    return None


def make_background(
    spec: Any = "studio",
    size: int = 128,
    *,
    fit: str = "crop",
    remove_mask: Any = None,
) -> np.ndarray:
    """uint8 RGB ``[size, size, 3]`` from a background spec.

    ``spec``: None or "studio" (:func:`studio_background`); a colour ("#rrggbb", "white", (r, g, b));
    an image array/tensor (``[H, W, C]`` or ``[1, H, W, C]``, uint8 or 0..1, RGBA over white) or an
    image file path, squared like training frames (``fit`` "crop" or "pad").

    ``remove_mask``: for a data-set frame that already shows a dancer (the paper swaps the AIST++
    dancer for the new person): the old dancer's mask, same picture; that region is dilated a little
    and inpainted so no ghost of them is left behind the new person.
    """
    size = int(size)
    if size < 8:
        raise MediaError(f"frame size must be at least 8 pixels, got {size}")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "studio"):
        bg = studio_background(size)
    elif (colour := _colour(spec)) is not None:
        bg = np.empty((size, size, 3), np.uint8)
        bg[:] = colour
    else:
        if isinstance(spec, (str, os.PathLike)):
            if isinstance(spec, str) and not os.path.exists(spec):
                raise MediaError(
                    f"background {spec!r} is neither a file nor a colour ('studio', '#rrggbb', a colour "
                    "name, or (r, g, b))"
                )
            arr = load_image(spec)
        else:
            arr = to_numpy(spec)
            if arr.ndim == 4 and arr.shape[0] == 1:
                arr = arr[0]
            if arr.ndim != 3:
                raise MediaError(f"background image must be [H, W, C], got shape {arr.shape}")
            arr = to_uint8(channels_to_rgb(to_float01(arr, "background"), what="background"))
        if remove_mask is not None:
            m = fit_mask_to(as_mask(remove_mask, "background remove_mask"), *arr.shape[:2], what="remove_mask")
            both = np.concatenate([arr, to_uint8(m)[..., None]], axis=-1)
            both = resize_square(both, size, fit)
            return _inpaint(both[..., :3], both[..., 3] > 32)
        return resize_square(arr, size, fit)
    if remove_mask is not None:
        raise MediaError("remove_mask only applies to a background image (a data-set frame), not a colour")
    return bg


def _inpaint(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    import cv2

    if not hole.any():
        return rgb
    grow = max(1, round(rgb.shape[0] / 64))  # cover the old dancer's soft edge too
    hole = cv2.dilate(hole.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return cv2.inpaint(np.ascontiguousarray(rgb), hole, max(3, 2 * grow), cv2.INPAINT_TELEA)


# --------------------------------------------------------------------------------- compositing


@dataclass(frozen=True)
class Composite:
    """A start frame, its person mask (float32 0..1) and where the person ended up."""

    frame: np.ndarray  # uint8 [S, S, 3], or float32 0..1 if asked
    mask: np.ndarray  # float32 [S, S]
    box: Box  # person's box in the frame (mask > 0.5)
    source_box: Box  # person's box in the source image
    scale: float  # output pixels per source pixel
    placement: Placement


def split_rgba(image: Any) -> tuple[np.ndarray, np.ndarray | None]:
    arr = to_numpy(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise MediaError(f"person image must be [H, W, C], got shape {arr.shape}")
    arr = to_float01(arr, "person image")
    c = arr.shape[-1]
    if c in (2, 4):
        return np.repeat(arr[..., :1], 3, -1) if c == 2 else arr[..., :3], arr[..., -1]
    if c == 1:
        return np.repeat(arr, 3, -1), None
    if c == 3:
        return arr, None
    raise MediaError(f"person image must have 1 to 4 channels, got shape {arr.shape}")


def place_person(
    image: Any,
    alpha: Any = None,
    background: Any = "studio",
    size: int = 128,
    placement: Placement | None = None,
    *,
    feather_px: float = 1.0,
    as_float: bool = False,
    fit: str = "crop",
) -> Composite:
    """Scale and move the person of ``image`` (where ``alpha`` > 0) onto a ``size`` x ``size`` background.

    ``image``: RGB or RGBA ``[H, W, C]`` (uint8 or 0..1 float); ``alpha``: the person's mask at any
    resolution of the same picture (None: the image's alpha channel). ``background``: see
    :func:`make_background`, or a ready uint8 ``[size, size, 3]`` array. The person's box height
    becomes ``placement.height * size`` and its anchor lands on ``(x, y) * size``, within a pixel.
    """
    placement = placement or Placement()
    rgb, own_alpha = split_rgba(image)
    h, w = rgb.shape[:2]
    if alpha is None:
        if own_alpha is None:
            raise MediaError("no person mask: give a mask, or an RGBA image whose alpha is the person")
        a = own_alpha
    else:
        a = fit_mask_to(as_mask(alpha, "person mask"), h, w, "person mask")
    src_box = mask_bbox(a)
    if src_box is None:
        raise MediaError("the person mask is empty (no pixel above 0.5): nothing to place")
    size = int(size)
    bg = make_background(background, size, fit=fit)
    x0, y0, x1, y1 = src_box
    scale = placement.height * size / (y1 - y0)
    if (x1 - x0) * scale > placement.max_width * size:
        scale = placement.max_width * size / (x1 - x0)
    ax, ay = anchor_point(src_box, placement.anchor)
    tx, ty = placement.x * size - scale * ax, placement.y * size - scale * ay  # out = scale * src + t

    # Work on the box plus a margin only (fast for big photos); premultiply so the photo's own
    # background never bleeds into the person's edge when resampling.
    margin = int(math.ceil(2.0 / scale)) + 2
    cx0, cy0 = max(0, int(x0) - margin), max(0, int(y0) - margin)
    cx1, cy1 = min(w, int(math.ceil(x1)) + margin), min(h, int(math.ceil(y1)) + margin)
    a_c = a[cy0:cy1, cx0:cx1].astype(np.float32)
    layers = np.concatenate([rgb[cy0:cy1, cx0:cx1] * a_c[..., None], a_c[..., None]], axis=-1)
    layers = np.ascontiguousarray(layers, dtype=np.float32)

    import cv2

    ch, cw = layers.shape[:2]
    rx = ry = 1.0
    if scale < 1.0:  # shrink with area averaging first; the warp below is then ~1:1
        nw, nh = max(1, round(cw * scale)), max(1, round(ch * scale))
        layers = cv2.resize(layers, (nw, nh), interpolation=cv2.INTER_AREA).reshape(nh, nw, 4)
        rx, ry = nw / cw, nh / ch
    # continuous coords: X_out = (scale / rx) * X_small + (scale * cx0 + tx); cv2 indexes pixel centres
    sx, sy = scale / rx, scale / ry
    bx, by = scale * cx0 + tx, scale * cy0 + ty
    m = np.array([[sx, 0.0, bx + 0.5 * sx - 0.5], [0.0, sy, by + 0.5 * sy - 0.5]], np.float64)
    out = cv2.warpAffine(layers, m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0)).reshape(size, size, 4)
    if feather_px > 0:
        sigma = gaussian_sigma(feather_px)
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma, sigmaY=sigma).reshape(size, size, 4)
    out = np.clip(out, 0.0, 1.0)
    premult, mask = out[..., :3], out[..., 3]
    premult = np.minimum(premult, mask[..., None])  # keep "over" valid after resampling
    frame01 = premult + (bg.astype(np.float32) / 255.0) * (1.0 - mask[..., None])
    frame = frame01.astype(np.float32) if as_float else to_uint8(frame01)
    box = mask_bbox(mask) or (0.0, 0.0, 0.0, 0.0)
    return Composite(frame, mask.astype(np.float32), box, src_box, float(scale), placement)

