"""Find the videos and music of an AIST++-like data folder (AIST++ itself or SynthDance).

Expected layout::

    ROOT/videos/gBR_sBM_c01_d04_mBR0_ch01.mp4 ...
    ROOT/music/mBR0.wav (or .mp3, .flac, .ogg, .m4a ...)
    ROOT/synthdance.json                           optional manifest (SynthDance writes one)

Everything the reader needs (genre, camera, dancer, music track) comes from the file names, so
the same code reads both data sets; only the source resolution and fps differ.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .aist_names import GENRE_CODES, GENRES, VIDEO_EXAMPLE, VIDEO_PATTERN, VideoName, parse_video_name
from .splits import MANIFEST_NAME

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm")
AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus")


@dataclass(frozen=True)
class VideoRecord:
    """One video of the data set with its parsed name and its music file."""

    name: VideoName
    path: Path
    music_path: Path


@dataclass
class DataLayout:
    """What :func:`scan_dataset` found: the videos that pass the filters and the music files."""

    root: Path
    videos_dir: Path
    music_dir: Path
    videos: list[VideoRecord]
    music: dict[str, Path]
    manifest: dict | None = None
    manifest_path: Path = field(default=Path(MANIFEST_NAME))


def load_manifest(root: str | os.PathLike) -> dict | None:
    """``ROOT/synthdance.json`` as a dict, or ``None`` when the data set has no manifest."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"The data set manifest {path} cannot be read: {e}.") from None
    if not isinstance(obj, dict):
        raise DataError(f"The data set manifest {path} must hold a JSON object.")
    return obj


def _codes(values: Iterable | None, kind: str) -> set | None:
    """Normalise filter values: genres -> 'BR', situations -> 'BM', cameras/dancers -> int."""
    if values is None:
        return None
    if isinstance(values, (str, int)):
        values = [values]
    out: set = set()
    by_name = {v.lower(): k for k, v in GENRES.items()}
    for v in values:
        s = str(v).strip()
        try:
            if kind == "genre":
                code = s[1:] if len(s) == 3 and s[0] == "g" else s
                code = by_name.get(code.lower(), code.upper())
                if code not in GENRES:
                    raise ValueError
                out.add(code)
            elif kind == "situation":
                out.add(s[1:] if len(s) == 3 and s[0] == "s" else s)
            else:  # camera / dancer: 3, "3", "c03", "d03"
                out.add(int(s.lstrip("cd")))
        except ValueError:
            extra = f" Known genres: {', '.join(GENRE_CODES)}." if kind == "genre" else ""
            raise DataError(f"Cannot read {v!r} as a {kind} filter.{extra}") from None
    return out


def _subdir(root: Path, given: str | os.PathLike | None, default: str, what: str) -> Path:
    d = Path(given).expanduser() if given is not None else root / default
    if not d.is_absolute() and given is not None:
        d = root / d
    if not d.is_dir():
        raise DataError(
            f"The data set at {root} has no {what} folder {d}. Expected AIST++'s layout: "
            f"{root}/videos/{VIDEO_EXAMPLE}.mp4 and {root}/music/mBR0.wav (SynthDance: "
            f"python -m training.make_synthetic --out {root})."
        )
    return d


def scan_dataset(root: str | os.PathLike, *, genres: Iterable[str] | str | None = None,
                 cameras: Iterable[int | str] | int | None = None,
                 dancers: Iterable[int | str] | int | None = None,
                 situations: Iterable[str] | str | None = None,
                 videos_dir: str | os.PathLike | None = None,
                 music_dir: str | os.PathLike | None = None) -> DataLayout:
    """List the videos under ``root`` that pass the filters, each paired with its music file.

    Raises :class:`DataError` for a missing folder, a video file that is not AIST++-like (named,
    with the expected pattern), a missing music file (named), or when no video passes the filters.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"The data set folder {root} does not exist.")
    vdir = _subdir(root, videos_dir, "videos", "videos/")
    mdir = _subdir(root, music_dir, "music", "music/")
    want = {k: _codes(v, k) for k, v in
            (("genre", genres), ("camera", cameras), ("dancer", dancers), ("situation", situations))}

    music: dict[str, Path] = {}
    for f in sorted(mdir.iterdir()):
        if f.suffix.lower() in AUDIO_EXTS and not f.name.startswith("."):
            music.setdefault(f.stem, f)  # first by sorted name wins (e.g. .flac before .wav)

    files = sorted(f for f in vdir.iterdir()
                   if f.suffix.lower() in VIDEO_EXTS and not f.name.startswith("."))
    bad: list[str] = []
    records: list[VideoRecord] = []
    for f in files:
        try:
            name = parse_video_name(f)
        except DataError:
            bad.append(f.name)
            continue
        if name.camera is None:
            bad.append(f"{f.name} (cAll names a sequence, not one camera's video)")
            continue
        if ((want["genre"] is not None and name.genre not in want["genre"])
                or (want["camera"] is not None and name.camera not in want["camera"])
                or (want["dancer"] is not None and name.dancer not in want["dancer"])
                or (want["situation"] is not None and name.situation not in want["situation"])):
            continue
        mpath = music.get(name.music)
        if mpath is None:
            raise DataError(
                f"Video {f} needs the music file {mdir / name.music}.wav (or "
                f"{', '.join(AUDIO_EXTS[1:])}), which is missing. Put the track there or remove "
                f"the video."
            )
        records.append(VideoRecord(name, f, mpath))
    if bad:
        shown = "\n  ".join(bad[:10]) + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise DataError(
            f"{len(bad)} video file(s) in {vdir} are not AIST++-like; expected "
            f"{VIDEO_PATTERN}.mp4, e.g. {VIDEO_EXAMPLE}.mp4. Rename or remove:\n  {shown}"
        )
    if not records:
        filt = ", ".join(f"{k}s={sorted(v)}" for k, v in want.items() if v is not None)
        raise DataError(f"No videos in {vdir}" + (f" match the filters {filt}." if filt else "."))
    return DataLayout(root=root, videos_dir=vdir, music_dir=mdir, videos=records, music=music,
                      manifest=load_manifest(root), manifest_path=root / MANIFEST_NAME)
