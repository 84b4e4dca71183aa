"""One video's content: the dancer's motion on the track's beat grid, its 2D keypoints, its frames.

Motion depends on the *sequence* (dancer, choreography, track), not on the camera, so every view
of a sequence shows the same dance, as in AIST++'s multi-camera recordings.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .choreography import pose_track
from .render import FigureRenderer, project
from .skeleton import coco_joints, forward_kinematics
from .world import VideoJob, World, rng_for


def extended_beats(world: World, job: VideoJob) -> np.ndarray:
    """The track's beat grid, continued past the video's end so the motion never stalls."""
    track = world.tracks[job.music]
    period = 60.0 / track.tempo_bpm
    end = job.n_frames / world.preset.fps + 2 * period
    n = int(np.ceil((end - track.lead_in_s) / period)) + 1
    return track.lead_in_s + period * np.arange(max(n, 1))


def world_points(world: World, job: VideoJob) -> np.ndarray:
    """All figure points in world units for every frame: ``[N, len(POINT_NAMES), 2]``."""
    frame_times = np.arange(job.n_frames) / world.preset.fps
    dancer = world.dancers[job.dancer]
    params = pose_track(world.choreography_of(job), dancer, extended_beats(world, job), frame_times,
                        rng_for(world.seed, "motion", job.sequence))
    return forward_kinematics(params, dancer.body)


def pixel_points(world: World, job: VideoJob) -> np.ndarray:
    """All figure points in the video's pixel coordinates: ``[N, len(POINT_NAMES), 2]``."""
    return project(world_points(world, job), world.cameras[job.camera], world.preset.size)


def keypoints(world: World, job: VideoJob) -> np.ndarray:
    """Ground-truth COCO-17 joints in pixels: ``[N, 17, 2]``."""
    return coco_joints(pixel_points(world, job))


def frames(world: World, job: VideoJob, points_px: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """The video's frames, uint8 ``[H, W, 3]`` one at a time (streamed into the encoder)."""
    pts = pixel_points(world, job) if points_px is None else points_px
    renderer = FigureRenderer(world.dancers[job.dancer], world.cameras[job.camera], world.preset.size)
    for t in range(pts.shape[0]):
        yield renderer.frame(pts[t])
