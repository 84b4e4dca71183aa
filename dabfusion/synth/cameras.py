"""Nine fixed viewpoints named like AIST++'s c01..c09, each with its own studio look.

AIST++ films every dance from nine cameras around the dancer. A 2D figure cannot turn in
depth, so a viewpoint here is what it does to the picture: scale, where the dancer stands in
the frame, a horizontal squash for oblique views (cos of the yaw), a vertical squash for high
views, a mirror for views from behind (the dancer's left then appears on the image left, and
the face is hidden), and the wall/floor colours and horizon height of that side of the studio.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Camera:
    id: str
    name: str
    scale: float  # body height as a fraction of the frame height
    center_x: float  # where the dancer's centre stands, fraction of the width
    floor_y: float  # where the floor under the dancer is, fraction of the height
    squash_x: float  # cos(yaw): oblique views look narrower
    squash_y: float  # high views look a little shorter
    mirror: bool  # seen from behind
    horizon: float  # wall/floor boundary, fraction of the height
    wall: tuple[int, int, int]
    floor: tuple[int, int, int]
    light: float  # overall brightness of the background

    def to_json(self) -> dict:
        d = asdict(self)
        d["wall"], d["floor"] = list(self.wall), list(self.floor)
        return d


CAMERAS: dict[str, Camera] = {
    c.id: c
    for c in (
        Camera("c01", "front", 0.74, 0.50, 0.90, 1.00, 1.00, False, 0.62, (196, 200, 206), (150, 130, 110), 1.00),
        Camera("c02", "front right, high", 0.66, 0.56, 0.86, 0.86, 0.93, False, 0.55, (205, 198, 186), (140, 122, 104), 1.03),
        Camera("c03", "right side", 0.70, 0.47, 0.89, 0.62, 1.00, False, 0.60, (184, 192, 200), (132, 118, 104), 0.96),
        Camera("c04", "back right", 0.68, 0.53, 0.88, 0.78, 0.97, True, 0.58, (178, 186, 178), (128, 112, 98), 0.94),
        Camera("c05", "back", 0.72, 0.50, 0.90, 1.00, 1.00, True, 0.63, (190, 184, 196), (146, 128, 112), 0.98),
        Camera("c06", "back left", 0.68, 0.47, 0.88, 0.78, 0.97, True, 0.58, (200, 190, 176), (136, 118, 100), 0.97),
        Camera("c07", "left side", 0.70, 0.53, 0.89, 0.62, 1.00, False, 0.60, (186, 198, 192), (138, 124, 108), 1.01),
        Camera("c08", "front left, close", 0.80, 0.46, 0.93, 0.88, 1.00, False, 0.66, (208, 204, 196), (154, 134, 112), 1.04),
        Camera("c09", "front, high and far", 0.58, 0.50, 0.84, 1.00, 0.90, False, 0.50, (194, 196, 188), (144, 128, 110), 1.00),
    )
}
