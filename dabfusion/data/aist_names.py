"""AIST++ file names: parse and format them, and the tables behind their codes.

AIST++ encodes everything we need for training in its file names, e.g.
``gBR_sBM_c01_d04_mBR0_ch01``: genre Break, situation "basic", camera 1, dancer 4, music track
``mBR0``, choreography 1. Keypoint and motion files use ``cAll`` in place of the camera.
SynthDance writes the same names, so one parser serves both.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import PurePath

from ..errors import DataError

#: AIST++ genre codes in their canonical order; the position is the ``genre_id``.
GENRES: dict[str, str] = {
    "BR": "Break",
    "PO": "Pop",
    "LO": "Lock",
    "MH": "Middle Hip-hop",
    "LH": "LA-style Hip-hop",
    "HO": "House",
    "WA": "Waack",
    "KR": "Krump",
    "JS": "Street Jazz",
    "JB": "Ballet Jazz",
}
GENRE_CODES: tuple[str, ...] = tuple(GENRES)

#: Situation codes seen in AIST++ (any two capitals are accepted; these just get a name).
SITUATIONS: dict[str, str] = {"BM": "basic dance", "FM": "advanced dance"}

VIDEO_PATTERN = "g{GENRE}_s{SITUATION}_c{CAMERA:02d|All}_d{DANCER:02d}_m{GENRE}{TRACK}_ch{CHOREO:02d}"
VIDEO_EXAMPLE = "gBR_sBM_c01_d04_mBR0_ch01"
MUSIC_PATTERN = "m{GENRE}{TRACK}"
MUSIC_EXAMPLE = "mBR0"

_VIDEO_RE = re.compile(
    r"^g(?P<genre>[A-Z]{2})_s(?P<situation>[A-Z]{2})_c(?P<camera>\d{2}|All)_d(?P<dancer>\d{2})"
    r"_(?P<music>m[A-Z]{2}\d+)_ch(?P<choreo>\d{2})$"
)
_MUSIC_RE = re.compile(r"^m(?P<genre>[A-Z]{2})(?P<index>\d+)$")


def _stem(name: str | os.PathLike[str]) -> str:
    """File name without folders and without a media extension (``.mp4``, ``.pkl``, ``.json`` ...)."""
    base = PurePath(os.fspath(name)).name
    if "." in base:
        base = base.split(".", 1)[0]
    return base


def genre_id(code: str) -> int:
    """Index of a genre code (``"BR"`` or ``"gBR"``) in :data:`GENRE_CODES`; stable across data sets."""
    c = code[1:] if len(code) == 3 and code[0] in "gm" else code
    try:
        return GENRE_CODES.index(c)
    except ValueError:
        raise DataError(
            f"Unknown AIST++ genre code {code!r}; known codes: {', '.join(GENRE_CODES)}."
        ) from None


def genre_name(code: str) -> str:
    """Human name of a genre code, e.g. ``"LH"`` -> ``"LA-style Hip-hop"``."""
    return GENRES[GENRE_CODES[genre_id(code)]]


@dataclass(frozen=True, order=True)
class MusicName:
    """A music track name such as ``mBR0``: genre code + track index within the genre."""

    genre: str
    index: int

    @property
    def stem(self) -> str:
        return f"m{self.genre}{self.index}"

    @property
    def genre_id(self) -> int:
        return genre_id(self.genre)

    def __str__(self) -> str:
        return self.stem


@dataclass(frozen=True)
class VideoName:
    """The fields of an AIST++ video (or ``cAll`` sequence) name.

    ``camera`` is ``None`` for the ``cAll`` form. The ``*_id`` properties are 0-based so that they
    can index embedding tables directly (c01 -> 0, d01 -> 0).
    """

    genre: str
    situation: str
    camera: int | None
    dancer: int
    music: str
    choreo: int

    @property
    def stem(self) -> str:
        return format_video_name(self)

    @property
    def genre_id(self) -> int:
        return genre_id(self.genre)

    @property
    def camera_id(self) -> int:
        if self.camera is None:
            raise DataError(f"{self.stem} names all cameras (cAll), not one camera.")
        return self.camera - 1

    @property
    def dancer_id(self) -> int:
        return self.dancer - 1

    @property
    def track(self) -> MusicName:
        return parse_music_name(self.music)

    @property
    def sequence(self) -> str:
        """The camera-independent ``cAll`` name AIST++ uses for keypoints, motions and splits."""
        return format_video_name(replace(self, camera=None))

    def with_camera(self, camera: int | None) -> VideoName:
        return replace(self, camera=camera)

    def __str__(self) -> str:
        return self.stem


def _bad_name(name: object, what: str, pattern: str, example: str, why: str = "") -> DataError:
    why = f" ({why})" if why else ""
    return DataError(
        f"{name!s} is not an AIST++-like {what} name{why}. Expected {pattern}, e.g. {example}. "
        f"Rename the file or remove it from the data folder."
    )


def parse_music_name(name: str | os.PathLike[str]) -> MusicName:
    """Parse ``mBR0`` (or ``music/mBR0.wav``) into a :class:`MusicName`."""
    stem = _stem(name)
    m = _MUSIC_RE.match(stem)
    if m is None:
        raise _bad_name(name, "music track", MUSIC_PATTERN, MUSIC_EXAMPLE)
    if m["genre"] not in GENRES:
        raise _bad_name(name, "music track", MUSIC_PATTERN, MUSIC_EXAMPLE,
                        f"unknown genre {m['genre']!r}; known: {', '.join(GENRE_CODES)}")
    return MusicName(genre=m["genre"], index=int(m["index"]))


def parse_video_name(name: str | os.PathLike[str]) -> VideoName:
    """Parse an AIST++ video or sequence name; a path and an extension are allowed.

    Raises :class:`DataError` naming the input and showing the expected pattern.
    """
    stem = _stem(name)
    m = _VIDEO_RE.match(stem)
    if m is None:
        raise _bad_name(name, "video", VIDEO_PATTERN, VIDEO_EXAMPLE)
    genre = m["genre"]
    if genre not in GENRES:
        raise _bad_name(name, "video", VIDEO_PATTERN, VIDEO_EXAMPLE,
                        f"unknown genre {genre!r}; known: {', '.join(GENRE_CODES)}")
    music = parse_music_name(m["music"])
    camera = None if m["camera"] == "All" else int(m["camera"])
    return VideoName(
        genre=genre,
        situation=m["situation"],
        camera=camera,
        dancer=int(m["dancer"]),
        music=music.stem,
        choreo=int(m["choreo"]),
    )


def format_video_name(v: VideoName) -> str:
    """Inverse of :func:`parse_video_name` (no extension)."""
    cam = "All" if v.camera is None else f"{v.camera:02d}"
    return f"g{v.genre}_s{v.situation}_c{cam}_d{v.dancer:02d}_{v.music}_ch{v.choreo:02d}"


def is_video_name(name: str | os.PathLike[str]) -> bool:
    """True when ``name`` parses as an AIST++ video name (no exception)."""
    try:
        parse_video_name(name)
    except DataError:
        return False
    return True
