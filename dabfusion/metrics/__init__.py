"""Evaluation metrics. Pure numpy where possible so that evaluation runs without a model.

- :mod:`.alignment`: kinematic beats, the Beat Alignment Score (AIST++, Bailando, and the
  2D-MM Align of the DabFusion paper) and the beat F-measure; re-exported here.

Heavier metrics live in their own submodules and are imported from there, so that importing
this package stays cheap (no torch).
"""

from __future__ import annotations

from .alignment import (
    beat_f_measure,
    beat_alignment_score,
    kinematic_beats,
    local_minima,
    motion_music_alignment,
    motion_speed_from_joints,
    smooth_gaussian,
    times_to_frames,
)

__all__ = [
    "beat_f_measure",
    "beat_alignment_score",
    "kinematic_beats",
    "local_minima",
    "motion_music_alignment",
    "motion_speed_from_joints",
    "smooth_gaussian",
    "times_to_frames",
]
