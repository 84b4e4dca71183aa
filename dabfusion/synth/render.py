"""Drawing: camera projection, a studio background per camera, and the anti-aliased figure.

Frames are drawn with PIL at ``supersample`` times the output size and box-filtered down
(``Image.reduce``), which anti-aliases every edge for the price of one resize. Pixel
coordinates are continuous with the origin at the top-left *corner* of the image (pixel
``i`` covers ``[i, i+1)``, its centre is ``i + 0.5``); ground-truth keypoints use the same
convention, so a joint drawn at ``(x, y)`` is reported at ``(x, y)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from .cameras import Camera
from .dancers import Dancer
from .skeleton import POINT

DEFAULT_SUPERSAMPLE = 3


def project(points: np.ndarray, camera: Camera, size: int) -> np.ndarray:
    """World points ``[..., 2]`` (floor at y = 0, body height ~1) -> pixel coordinates."""
    s = camera.scale * size
    sign = -1.0 if camera.mirror else 1.0
    out = np.empty_like(points, dtype=np.float64)
    out[..., 0] = camera.center_x * size + sign * s * camera.squash_x * points[..., 0]
    out[..., 1] = camera.floor_y * size + s * camera.squash_y * points[..., 1]
    return out


@lru_cache(maxsize=32)
def background(camera: Camera, size: int, supersample: int = DEFAULT_SUPERSAMPLE) -> Image.Image:
    """The empty studio as seen from ``camera``: lit wall with panels, baseboard, wooden floor."""
    n = size * supersample
    y = (np.arange(n) + 0.5) / n
    x = (np.arange(n) + 0.5) / n
    horizon = camera.horizon
    wall = np.asarray(camera.wall, dtype=np.float64)
    floor = np.asarray(camera.floor, dtype=np.float64)
    img = np.empty((n, n, 3))
    # wall: brighter in the middle (a key light), darker at the top
    wall_shade = (0.82 + 0.18 * np.clip(y / max(horizon, 1e-3), 0, 1))[:, None] * (
        1.0 - 0.12 * (2 * x - 1) ** 2
    )[None, :]
    img[:] = wall[None, None, :] * wall_shade[..., None]
    panel = (np.floor(x * 7 + 0.5 * camera.center_x) % 2 == 0)[None, :, None]
    img *= np.where(panel, 1.0, 0.965)
    # floor: darker far away, lighter near, plank lines closer together towards the horizon
    below = y >= horizon
    depth = np.clip((y - horizon) / max(1 - horizon, 1e-3), 0, 1)
    floor_rows = floor[None, :] * (0.78 + 0.3 * depth)[:, None]
    img[below] = floor_rows[below][:, None, :] * (1.0 - 0.08 * (2 * x - 1) ** 2)[None, :, None]
    plank = np.abs(np.sin(np.pi * 6.0 / (0.15 + depth))) < 0.06
    img[below & plank] *= 0.9
    base = np.abs(y - horizon) < 0.012
    img[base] = wall * 0.45
    img *= camera.light
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


class FigureRenderer:
    """Draws one dancer seen from one camera; call :meth:`frame` per frame of pixel points."""

    def __init__(self, dancer: Dancer, camera: Camera, size: int, supersample: int = DEFAULT_SUPERSAMPLE):
        self.dancer, self.camera, self.size, self.ss = dancer, camera, size, supersample
        self.bg = background(camera, size, supersample)
        px = camera.scale * size * supersample  # pixels per world unit (hi-res)
        b = dancer.body
        self.w_arm = b.arm_w * px
        self.w_leg = b.leg_w * px
        self.head_r = b.head_r * px
        self.px = px
        floor = np.asarray(camera.floor, dtype=np.float64) * camera.light
        self.shadow = tuple(int(c) for c in np.clip(floor * 0.72, 0, 255))
        self.floor_y = camera.floor_y * size * supersample

    def frame(self, points_px: np.ndarray) -> np.ndarray:
        """``points_px`` ``[len(POINT_NAMES), 2]`` in output pixels -> uint8 ``[size, size, 3]``."""
        ss = self.ss
        q = points_px * ss - 0.5  # PIL draws pixel centres at integer coordinates
        p = {name: (float(q[i, 0]), float(q[i, 1])) for name, i in POINT.items()}
        img = self.bg.copy()
        d = ImageDraw.Draw(img)
        dn = self.dancer

        cx = 0.5 * (p["left_ankle"][0] + p["right_ankle"][0])
        rx, ry = 0.17 * self.px * self.camera.squash_x, 0.022 * self.px
        d.ellipse((cx - rx, self.floor_y - ry, cx + rx, self.floor_y + ry), fill=self.shadow)

        shin_colour = dn.skin if dn.shorts else dn.trousers
        for side in ("right", "left"):
            _capsule(d, p[f"{side}_hip"], p[f"{side}_knee"], self.w_leg, dn.trousers)
            _capsule(d, p[f"{side}_knee"], p[f"{side}_ankle"], self.w_leg * 0.85, shin_colour)
            _capsule(d, p[f"{side}_ankle"], p[f"{side}_toe"], self.w_leg * 0.62, dn.shoes)

        self._torso(d, p)
        _capsule(d, p["neck"], _lerp(p["neck"], p["head"], 0.6), self.head_r * 0.42, dn.skin)

        arm_colour = dn.shirt if dn.long_sleeves else dn.skin
        for side in ("right", "left"):
            _capsule(d, p[f"{side}_shoulder"], p[f"{side}_elbow"], self.w_arm, dn.shirt)
            _capsule(d, p[f"{side}_elbow"], p[f"{side}_wrist"], self.w_arm * 0.85, arm_colour)
            _capsule(d, p[f"{side}_wrist"], p[f"{side}_hand"], self.w_arm * 0.95, dn.skin)

        self._head(d, p)
        out = img.reduce(ss) if ss > 1 else img
        return np.asarray(out)

    def _torso(self, d: ImageDraw.ImageDraw, p: dict) -> None:
        dn = self.dancer
        ls, rs, lh, rh = (np.array(p[k]) for k in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
        widen_s = _unit(ls - rs) * self.w_arm * 0.9
        widen_h = _unit(lh - rh) * self.w_leg * 0.7
        poly = [ls + widen_s, rs - widen_s, rh - widen_h, lh + widen_h]
        d.polygon([tuple(v) for v in poly], fill=dn.shirt)
        for c in (ls, rs):
            _disc(d, tuple(c), self.w_arm * 1.05, dn.shirt)
        waist_l, waist_r = lh + 0.22 * (ls - lh), rh + 0.22 * (rs - rh)
        d.polygon([tuple(waist_l + widen_h), tuple(waist_r - widen_h), tuple(rh - widen_h), tuple(lh + widen_h)],
                  fill=dn.trousers)

    def _head(self, d: ImageDraw.ImageDraw, p: dict) -> None:
        dn = self.dancer
        hx, hy = p["head"]
        top = np.array(p["head_top"]) - np.array(p["head"])
        up = _unit(top)
        r = self.head_r
        sx = self.camera.squash_x
        hair_c = (hx + up[0] * 0.1 * r, hy + up[1] * 0.1 * r)
        _ellipse(d, hair_c, r * 1.04 * (0.85 + 0.15 * sx), r * 1.04, dn.hair)
        if self.camera.mirror:
            return
        nose = np.array(p["nose"])
        face_c = (0.5 * (hx + nose[0]) - up[0] * 0.12 * r, hy - up[1] * 0.14 * r)
        _ellipse(d, face_c, r * 0.88 * (0.85 + 0.15 * sx), r * 0.86, dn.skin)
        eye = max(0.8, 0.1 * r)
        for side in ("left_eye", "right_eye"):
            _disc(d, p[side], eye, (40, 30, 30))


def _lerp(a, b, t: float):
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


def _disc(d: ImageDraw.ImageDraw, c, r: float, fill) -> None:
    d.ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill=fill)


def _ellipse(d: ImageDraw.ImageDraw, c, rx: float, ry: float, fill) -> None:
    d.ellipse((c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry), fill=fill)


def _capsule(d: ImageDraw.ImageDraw, a, b, r: float, fill) -> None:
    """A thick limb: a quad between two discs (PIL's wide lines have square, misaligned ends)."""
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    n = (dx * dx + dy * dy) ** 0.5
    if n > 1e-6:
        nx, ny = -dy / n * r, dx / n * r
        d.polygon([(ax + nx, ay + ny), (bx + nx, by + ny), (bx - nx, by - ny), (ax - nx, ay - ny)], fill=fill)
    _disc(d, a, r, fill)
    _disc(d, b, r, fill)
