"""AIST++-like data: names, track splits, the frame cache and the torch data sets.

The torch data sets are imported lazily, so reading names or building a cache (also in cache
worker processes) does not import torch.
"""

from __future__ import annotations

from typing import Any

from .aist_names import (GENRE_CODES, GENRES, MusicName, VideoName, format_video_name, genre_id,
                         genre_name, is_video_name, parse_music_name, parse_video_name)
from .frame_cache import CachedVideo, FrameCache, cache_videos, default_cache_dir
from .layout import DataLayout, VideoRecord, scan_dataset
from .splits import PAPER_TEST_TRACKS, TrackSplit, resolve_split, select_part, split_by_track

_LAZY = {"AISTDataset", "AISTVideos", "PairDataset", "frames_to_tensor"}

__all__ = [
    "AISTDataset", "AISTVideos", "CachedVideo", "DataLayout", "FrameCache", "GENRES",
    "GENRE_CODES", "MusicName", "PAPER_TEST_TRACKS", "PairDataset", "TrackSplit", "VideoName",
    "VideoRecord", "cache_videos", "default_cache_dir", "format_video_name", "frames_to_tensor",
    "genre_id", "genre_name", "is_video_name", "parse_music_name", "parse_video_name",
    "resolve_split", "scan_dataset", "select_part", "split_by_track",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
