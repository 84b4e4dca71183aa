"""A beat grid you can see: a coloured frame border that flashes on the video frame of each music beat.

Pure numpy on uint8 frames ``[N, H, W, 3]``. Only the frames nearest a beat change (the beat's
time rounded to a frame, ``round(t * fps)``); every other frame is returned unchanged, so the
overlay shows exactly where the beats fall and the rest of the video is untouched. The caller gives
the beats: Video Combine takes the grid of its AUDIO (:func:`dabfusion.music.beat_grid.edited_analysis`:
the tracker's beats, with the creator's beat grid edit from Load Music applied - the grid the dance
was generated on and Beat Alignment scores against).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import MediaError

#: Amber: visible on dark and light footage alike.
FLASH_COLOUR = (255, 200, 0)


def beat_frame_indices(beat_times: Any, fps: float, n_frames: int) -> np.ndarray:
    """Sorted unique frame indices ``round(t * fps)`` of the beats that fall inside ``[0, n_frames)``."""
    t = np.asarray(beat_times, dtype=np.float64).reshape(-1)
    idx = np.rint(t * float(fps)).astype(np.int64)
    return np.unique(idx[(idx >= 0) & (idx < int(n_frames))])


def border_width(height: int, width: int) -> int:
    """Border thickness: about 1/24 of the shorter side, at least 2 pixels."""
    return max(2, int(round(min(height, width) / 24)))


def flash_frames(frames: Any, indices: Any, *, colour: Sequence[int] = FLASH_COLOUR,
                 thickness: int | None = None) -> np.ndarray:
    """A copy of ``frames`` with a ``colour`` border drawn on the frames at ``indices``."""
    video = np.asarray(frames)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise MediaError(f"frames for the beat overlay must be uint8 [N, H, W, 3], got {video.dtype} {video.shape}")
    out = video.copy()
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        return out
    h, w = video.shape[1:3]
    b = min(thickness or border_width(h, w), (h + 1) // 2, (w + 1) // 2)
    c = np.asarray(colour, dtype=np.uint8)
    sel = out[idx]
    sel[:, :b] = c
    sel[:, h - b:] = c
    sel[:, :, :b] = c
    sel[:, :, w - b:] = c
    out[idx] = sel
    return out


def draw_beat_overlay(frames: Any, beat_times: Any, fps: float, **style: Any) -> np.ndarray:
    """Frames (uint8 ``[N, H, W, 3]``) with a flash on each beat (times in seconds from frame 0)."""
    if not fps or float(fps) <= 0:
        raise MediaError(f"fps must be > 0, got {fps}")
    video = np.asarray(frames)
    return flash_frames(video, beat_frame_indices(beat_times, fps, len(video)), **style)
