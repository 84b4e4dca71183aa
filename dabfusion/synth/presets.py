"""Sizes of SynthDance worlds: ``tiny`` for tests (seconds), ``small`` to train small models
(the default; under 3 minutes on 2 cores), ``full`` for longer runs.

Video length follows AIST++: a video starts with its music at t = 0; basic dances (sBM) are
short, advanced ones (sFM) run longer, and none runs past the track's last beat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import DataError
from .genres import GENRE_CODES


@dataclass(frozen=True)
class Preset:
    name: str
    genres: tuple[str, ...]
    tracks_per_genre: int  # including the genre's test track
    track_duration_s: float
    n_dancers: int
    cameras: tuple[str, ...]
    basic_per_track: int  # sBM sequences per track
    advanced_per_track: int  # sFM sequences per track
    views_per_sequence: int  # cameras filming each sequence (AIST++ films each with 9)
    basic_len_s: float
    advanced_len_s: float
    n_basic_choreos: int = 4  # sBM choreography ids ch01..ch04 per genre
    n_advanced_choreos: int = 4  # sFM ids follow the basic ones
    fps: int = 30
    size: int = 128

    def to_json(self) -> dict:
        d = asdict(self)
        d["genres"], d["cameras"] = list(self.genres), list(self.cameras)
        return d


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny", genres=("BR", "HO", "JB"), tracks_per_genre=2, track_duration_s=8.0, n_dancers=2,
        cameras=("c01", "c05"), basic_per_track=1, advanced_per_track=0, views_per_sequence=1,
        basic_len_s=8.0, advanced_len_s=8.0,
    ),
    "small": Preset(
        name="small", genres=GENRE_CODES, tracks_per_genre=3, track_duration_s=20.0, n_dancers=10,
        cameras=("c01", "c02", "c03", "c05", "c08"), basic_per_track=3, advanced_per_track=1,
        views_per_sequence=2, basic_len_s=8.0, advanced_len_s=16.0,
    ),
    "full": Preset(
        name="full", genres=GENRE_CODES, tracks_per_genre=6, track_duration_s=30.0, n_dancers=30,
        cameras=tuple(f"c{i:02d}" for i in range(1, 10)), basic_per_track=6, advanced_per_track=2,
        views_per_sequence=3, basic_len_s=10.0, advanced_len_s=28.0,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise DataError(f"Unknown SynthDance preset {name!r}; choose one of {', '.join(PRESETS)}.") from None
