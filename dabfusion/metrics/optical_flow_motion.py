"""Motion of a video from its pixels: dense optical flow (OpenCV Farneback) between frames.

Both alignment metrics judge a *video*, not a skeleton: the generated clips have no keypoints.

- :func:`flow_magnitudes` ``[N-1]``: mean Farneback flow magnitude (pixels) from frame i to i+1,
  with the parameters of the AV-Align reference code (``0.5, 3, 15, 3, 5, 1.2, 0``);
- :func:`motion_speed` ``[N]``: per-frame speed (pixels per second) centred on each frame - the
  mean of the two intervals around it - so speed minima (kinematic beats) sit on frames, not
  half-way between them (the same reason ``motion_speed_from_joints`` uses central differences).

Frames follow the media convention (uint8 ``[N, H, W, 3]`` RGB); float arrays in 0..1 and torch
``[N, 3, H, W]`` tensors are accepted too. ``size`` resizes before measuring (pixel thresholds
and Farneback's 15-pixel window depend on the resolution; compare videos at one size).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: cv2.calcOpticalFlowFarneback(prev, next, None, pyr_scale, levels, winsize, iterations, poly_n,
#: poly_sigma, flags) as in the AV-Align reference code (Yariv et al.).
FARNEBACK_PARAMS: tuple = (0.5, 3, 15, 3, 5, 1.2, 0)


def as_uint8_frames(frames: Any) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` from uint8/float numpy ``[N, H, W, 3]`` or torch ``[N, 3, H, W]``."""
    if hasattr(frames, "detach"):  # torch
        t = frames.detach().float().cpu()
        if t.dim() == 4 and t.shape[1] in (1, 3) and t.shape[-1] not in (1, 3):
            t = t.permute(0, 2, 3, 1)
        arr = t.numpy()
    else:
        arr = np.asarray(frames)
    if arr.ndim == 3:  # grayscale [N, H, W]
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"frames must be [N, H, W, 3] (or torch [N, 3, H, W]), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def _gray(frames: np.ndarray, size: int | None) -> list[np.ndarray]:
    import cv2

    out = []
    for f in frames:
        g = cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY)
        if size is not None and g.shape != (size, size):
            g = cv2.resize(g, (int(size), int(size)), interpolation=cv2.INTER_AREA
                           if size < g.shape[0] else cv2.INTER_CUBIC)
        out.append(g)
    return out


def flow_magnitudes(frames: Any, *, size: int | None = None, params: tuple = FARNEBACK_PARAMS) -> np.ndarray:
    """Mean optical-flow magnitude (pixels) between consecutive frames, ``[N - 1]`` float64."""
    import cv2

    gray = _gray(as_uint8_frames(frames), size)
    mags = np.zeros(max(len(gray) - 1, 0), np.float64)
    for i in range(1, len(gray)):
        flow = cv2.calcOpticalFlowFarneback(gray[i - 1], gray[i], None, *params)
        mags[i - 1] = float(cv2.magnitude(flow[..., 0], flow[..., 1]).mean())
    return mags


def speed_from_magnitudes(mags: np.ndarray, fps: float = 1.0) -> np.ndarray:
    """Per-frame speed ``[N]`` from interval magnitudes ``[N-1]``: mean of the adjacent intervals."""
    m = np.asarray(mags, dtype=np.float64)
    n = m.size + 1
    if m.size == 0:
        return np.zeros(n if n > 1 else 0)
    speed = np.empty(n)
    speed[0], speed[-1] = m[0], m[-1]
    speed[1:-1] = 0.5 * (m[:-1] + m[1:])
    return speed * float(fps)


def motion_speed(frames: Any, fps: float = 1.0, *, size: int | None = None,
                 params: tuple = FARNEBACK_PARAMS) -> np.ndarray:
    """Per-frame motion speed ``[N]`` (pixels per second at ``fps``) from Farneback flow."""
    return speed_from_magnitudes(flow_magnitudes(frames, size=size, params=params), fps)
