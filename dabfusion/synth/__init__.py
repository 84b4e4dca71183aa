"""SynthDance: a small, honest dance data world with AIST++'s layout and names.

AIST++ and pretrained weights are out of reach on this project's machines, so every stage
(music encoder, flow auto-encoder, flow diffusion, evaluation) trains and is measured on a data
set we synthesise ourselves, with exact ground truth:

- music: 10 genres (AIST++ codes BR PO LO MH LH HO WA KR JS JB), tracks ``m{GENRE}{k}`` with
  genre-typical tempi, drums, bass and chords, and exact beat times (:mod:`.music`);
- dancers: articulated 2D figures with their own proportions, clothes and style
  (:mod:`.dancers`, :mod:`.skeleton`), dancing genre vocabularies whose accents (speed minima)
  land on the music's beats (:mod:`.choreography`);
- cameras c01..c09 with their own framing and studio look (:mod:`.cameras`, :mod:`.render`).

``generate(out, preset, seed)`` writes it (see :mod:`.writer` for the layout);
``build_world(preset, seed)`` plans it without rendering. The CLI is
``python -m training.make_synthetic --out DIR [--preset tiny|small|full] [--seed S]``.
Videos are 128x128 at 30 fps (AIST++ is 1080p at 60 fps; readers resample by time).
"""

from __future__ import annotations

from .genres import GENRE_CODES, GENRES, TEST_TRACKS
from .music import SAMPLE_RATE, TrackSpec, beat_grid, render_track
from .presets import PRESETS, Preset, get_preset
from .skeleton import JOINT_NAMES, SKELETON_EDGES
from .world import MANIFEST_NAME, SYNTHDANCE_VERSION, VideoJob, World, build_world, manifest, music_annotation
from .writer import generate

__all__ = [
    "GENRE_CODES", "GENRES", "TEST_TRACKS", "SAMPLE_RATE", "TrackSpec", "beat_grid", "render_track",
    "PRESETS", "Preset", "get_preset", "JOINT_NAMES", "SKELETON_EDGES", "MANIFEST_NAME",
    "SYNTHDANCE_VERSION", "VideoJob", "World", "build_world", "manifest", "music_annotation", "generate",
]
