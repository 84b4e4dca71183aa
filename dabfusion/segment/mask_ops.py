"""Person masks: read any mask input, clean a raw segmentation, find its box, soften its edge.

A raw SAM (or YOLO-seg) mask has speckle holes, stray islands (a bit of another person, a
shadow) and a hard, aliased edge. The start frame the animator sees should have one solid
person with a soft edge, so :func:`clean_mask` keeps the component the detector's box points at
and fills *small* holes only: the gap between an arm on a hip and the torso is real background
and must stay see-through, while SAM's pin-holes are a few pixels.

Coordinates: a box ``(x0, y0, x1, y1)`` is in continuous pixel units, pixel ``i`` covering
``[i, i + 1)``, so a mask's box is ``(first column, first row, last column + 1, last row + 1)``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import MediaError
from ..media.image import to_float01, to_numpy

Box = tuple[float, float, float, float]


def as_mask(mask: Any, what: str = "mask") -> np.ndarray:
    """float32 ``[H, W]`` in 0..1 from a ``[H, W]``, ``[1, H, W]`` or ``[H, W, 1]`` array/tensor.

    uint8 is read as 0..255, bool as 0/1, floats are clipped to 0..1; NaN is refused.
    """
    arr = to_numpy(mask)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or 0 in arr.shape:
        raise MediaError(f"{what} must be one [H, W] mask, got shape {arr.shape}")
    return to_float01(arr, what)


def fit_mask_to(mask: np.ndarray, height: int, width: int, what: str = "mask") -> np.ndarray:
    """Resize a mask drawn at another resolution of the same picture to ``height x width``.

    Masks from other nodes often come at a preview or model size; if the aspect ratio differs by
    more than 2 % it is a mask of another picture, which is an error rather than a silent stretch.
    """
    h, w = mask.shape
    if (h, w) == (height, width):
        return mask
    if abs((w / h) / (width / height) - 1.0) > 0.02:
        raise MediaError(
            f"{what} is {w}x{h} but the image is {width}x{height}: the aspect ratios differ, so the "
            "mask does not belong to this image (give a mask of the same picture, any resolution)"
        )
    import cv2

    interp = cv2.INTER_AREA if (w > width or h > height) else cv2.INTER_LINEAR
    return np.clip(cv2.resize(mask.astype(np.float32), (width, height), interpolation=interp), 0.0, 1.0)


def mask_bbox(mask: np.ndarray, threshold: float = 0.5) -> Box | None:
    """Box of the pixels above ``threshold`` (end exclusive), or None for an empty mask."""
    on = np.asarray(mask) > threshold
    rows = np.flatnonzero(on.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(on.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def box_overlap_pixels(labels: np.ndarray, n: int, box: Sequence[float] | None) -> np.ndarray:
    """Pixels of each label 0..n-1 inside ``box`` (all pixels when box is None)."""
    if box is None:
        region = labels
    else:
        h, w = labels.shape
        x0, y0, x1, y1 = box
        c0, r0 = int(np.clip(np.floor(x0), 0, w)), int(np.clip(np.floor(y0), 0, h))
        c1, r1 = int(np.clip(np.ceil(x1), 0, w)), int(np.clip(np.ceil(y1), 0, h))
        region = labels[r0:r1, c0:c1]
    return np.bincount(region.ravel(), minlength=n)[:n]


def keep_main_component(on: np.ndarray, box: Sequence[float] | None = None, also_keep: float = 0.0) -> np.ndarray:
    """The 8-connected component with the most pixels inside ``box`` (ties: the larger one).

    Without a box, the largest component. ``also_keep`` > 0 keeps other components at least that
    fraction of the main one's size whose pixels lie mostly inside the box (a hand cut off by a
    held object, say).
    """
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(on.astype(np.uint8), connectivity=8)
    if n <= 2:  # background only, or one component
        return on.astype(bool)
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
    inside = box_overlap_pixels(labels, n, box).astype(np.int64)
    main = 1 + int(np.lexsort((areas[1:], inside[1:]))[-1])  # most inside the box, then largest
    keep = np.zeros(n, bool)
    keep[main] = True
    if also_keep > 0:
        for i in range(1, n):
            if areas[i] >= also_keep * areas[main] and inside[i] >= 0.5 * areas[i]:
                keep[i] = True
    return keep[labels]


def fill_holes(on: np.ndarray, max_hole_frac: float | None = 0.01) -> np.ndarray:
    """Fill background regions enclosed by the mask that are at most ``max_hole_frac`` of its area.

    ``None`` fills every enclosed hole. Enclosed = not 4-connected to the image border (the dual
    of the 8-connectivity used for the person).
    """
    import cv2

    on = on.astype(bool)
    area = int(on.sum())
    if area == 0:
        return on
    padded = np.pad(~on, 1, constant_values=True).astype(np.uint8)  # the border ring joins all outside
    n, labels, stats, _ = cv2.connectedComponentsWithStats(padded, connectivity=4)
    outside = labels[0, 0]
    limit = np.inf if max_hole_frac is None else max_hole_frac * area
    sizes = stats[:, cv2.CC_STAT_AREA]
    fill = np.zeros(n, bool)
    for i in range(1, n):
        if i != outside and sizes[i] <= limit:
            fill[i] = True
    return on | fill[labels[1:-1, 1:-1]]


def clean_mask(
    mask: Any,
    box: Sequence[float] | None = None,
    *,
    threshold: float = 0.5,
    holes: bool = True,
    max_hole_frac: float | None = 0.01,
    keep_main: bool = True,
    also_keep: float = 0.0,
    feather_px: float = 0.0,
) -> np.ndarray:
    """Raw mask (probabilities or 0/1, any dtype) to a clean person alpha, float32 ``[H, W]``.

    Binarise at ``threshold``, keep the main component (the one most inside ``box``), fill small
    holes, then optionally feather the edge by ``feather_px`` pixels at this resolution (the
    compositor also feathers at the output size, which is usually what matters).
    """
    on = as_mask(mask) > threshold
    if keep_main:
        on = keep_main_component(on, box, also_keep)
    if holes:
        on = fill_holes(on, max_hole_frac)
    alpha = on.astype(np.float32)
    return feather(alpha, feather_px) if feather_px > 0 else alpha


def gaussian_sigma(feather_px: float) -> float:
    """The blur behind a feather of ``feather_px`` pixels (the 12-88 % ramp is about that wide)."""
    return float(feather_px) / 2.0


def feather(alpha: np.ndarray, feather_px: float) -> np.ndarray:
    """Soften a mask edge by about ``feather_px`` pixels; the 0.5 contour of a straight edge stays put."""
    if feather_px <= 0:
        return alpha.astype(np.float32)
    import cv2

    sigma = gaussian_sigma(feather_px)
    return np.clip(cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), sigmaX=sigma, sigmaY=sigma), 0.0, 1.0)
