"""Train/test splits by music track, as the paper does (AIST++: 50 train tracks, 10 test tracks).

Splitting by track rather than by video keeps every test song unheard during training, which is
what "dance to any beat" has to prove. A split is described by a *spec*:

- ``"paper"`` (default): AIST++'s cross-modal test tracks :data:`PAPER_TEST_TRACKS`; every
  other track is train.
- ``"all-train"``: every track is train and there is no test part (e.g. to train a release model).
- ``"manifest"``: the split that the data set's manifest (``synthdance.json``) declares.
- ``"auto"``: the manifest's split when it declares one, else ``"paper"``.
- a list of test tracks (``["mBR0", "mPO1"]`` or ``"mBR0,mPO1"``);
- a path to a file: text with one test track or AIST++ sequence name per line (so AIST++'s own
  ``splits/crossmodal_test.txt`` works as is; ``#`` starts a comment), or JSON with a list of test
  tracks or ``{"test": [...], "train": [...]}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar, Union

from ..errors import DataError
from .aist_names import VideoName, parse_music_name, parse_video_name

#: Music tracks of AIST++'s cross-modal test split (one per genre), the split the paper uses.
PAPER_TEST_TRACKS: tuple[str, ...] = (
    "mBR0", "mPO1", "mLO2", "mMH3", "mLH4", "mHO5", "mWA0", "mKR2", "mJS3", "mJB5",
)

SplitSpec = Union[str, os.PathLike, Sequence[str]]
Part = Literal["train", "test", "all"]
T = TypeVar("T")

MANIFEST_NAME = "synthdance.json"
_HELP = ('Pass split_spec="paper", "all-train", "manifest", "auto", a list of test tracks '
         '(e.g. ["mBR0", "mPO1"]) or a file listing them.')


@dataclass(frozen=True)
class TrackSplit:
    """Which music tracks are test and which are train.

    ``train=None`` means "every track that is not test". When both are given, tracks in neither
    belong to no part (they are left out, e.g. a validation part of a manifest).
    """

    test: frozenset[str]
    train: frozenset[str] | None = None
    source: str = "paper"
    all_train: bool = False

    def part_of(self, track: str) -> str | None:
        """``"train"``, ``"test"`` or ``None`` (left out) for a music track name."""
        if track in self.test:
            return "test"
        if self.train is None or track in self.train:
            return "train"
        return None


def _track_of(item: str) -> str:
    """A music track from a track name or a video/sequence name (the form AIST++'s split files use)."""
    item = item.strip()
    if item.startswith("m"):
        return parse_music_name(item).stem
    return parse_video_name(item).music


def _tracks(items: Iterable[str], where: str) -> frozenset[str]:
    out = set()
    for item in items:
        try:
            out.add(_track_of(str(item)))
        except DataError as e:
            raise DataError(f"In the split {where}: {e}") from None
    return frozenset(out)


def _from_mapping(obj: Mapping, where: str) -> TrackSplit:
    if "test" not in obj and "test_tracks" not in obj:
        raise DataError(f"The split {where} has no 'test' list. {_HELP}")
    test = _tracks(obj.get("test", obj.get("test_tracks", [])), where)
    train_items = obj.get("train", obj.get("train_tracks"))
    train = None if train_items is None else _tracks(train_items, where)
    if train is not None and train & test:
        raise DataError(f"The split {where} puts tracks in both train and test: "
                        f"{', '.join(sorted(train & test))}.")
    return TrackSplit(test=test, train=train, source=where)


def manifest_split(manifest: Mapping | None, where: str = MANIFEST_NAME) -> TrackSplit | None:
    """The split a data set manifest declares (``"split"`` or ``"splits"`` key), or ``None``."""
    if not manifest:
        return None
    for key in ("split", "splits"):
        obj = manifest.get(key)
        if isinstance(obj, Mapping):
            return _from_mapping(obj, f"{where}[{key!r}]")
    if "test_tracks" in manifest:
        return _from_mapping(manifest, where)
    return None


def _read_split_file(path: Path) -> TrackSplit:
    where = f"file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"Cannot read the split {where}: {e}") from None
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"The split {where} is not valid JSON: {e}") from None
        if isinstance(obj, Mapping):
            return _from_mapping(obj, where)
        if isinstance(obj, list):
            return TrackSplit(test=_tracks(obj, where), source=where)
        raise DataError(f"The split {where} must hold a list of test tracks or {{'test': [...]}}.")
    items = [w for line in text.splitlines() for w in line.split("#", 1)[0].replace(",", " ").split()]
    if not items:
        raise DataError(f"The split {where} lists no tracks. {_HELP}")
    return TrackSplit(test=_tracks(items, where), source=where)


def resolve_split(spec: SplitSpec = "paper", *, manifest: Mapping | None = None,
                  manifest_path: str | os.PathLike | None = None) -> TrackSplit:
    """Turn a split spec (see the module docstring) into a :class:`TrackSplit`."""
    where = str(manifest_path) if manifest_path is not None else MANIFEST_NAME
    if isinstance(spec, (str, os.PathLike)):
        s = os.fspath(spec)
        key = s.strip().lower()
        if key == "paper":
            return TrackSplit(test=frozenset(PAPER_TEST_TRACKS), source="paper")
        if key in ("all-train", "all_train", "alltrain"):
            return TrackSplit(test=frozenset(), source="all-train", all_train=True)
        if key in ("manifest", "auto"):
            found = manifest_split(manifest, where)
            if found is not None:
                return found
            if key == "auto":
                return TrackSplit(test=frozenset(PAPER_TEST_TRACKS), source="paper")
            raise DataError(f"split_spec='manifest' but {where} "
                            f"{'declares no split' if manifest else 'was not found'}. {_HELP}")
        path = Path(s).expanduser()
        if path.is_file():
            return _read_split_file(path)
        parts = [p for p in s.replace(",", " ").split() if p]
        if parts and all(p.startswith("m") and "/" not in p and "." not in p for p in parts):
            return TrackSplit(test=_tracks(parts, f"list {s!r}"), source=f"tracks {s}")
        raise DataError(f"Unknown split spec {s!r}: not a known name, a track list, or an existing "
                        f"file. {_HELP}")
    if isinstance(spec, Iterable):
        items = list(spec)
        if not all(isinstance(i, str) for i in items):
            raise DataError(f"A split list must hold music track names, got {items!r}. {_HELP}")
        return TrackSplit(test=_tracks(items, f"list {items}"), source=f"tracks {','.join(items)}")
    raise DataError(f"Unknown split spec {spec!r}. {_HELP}")


def split_by_track(items: Iterable[T], split: TrackSplit, *, key=None,
                   what: str = "the data set") -> dict[str, list[T]]:
    """Sort ``items`` (video names, or anything ``key`` maps to a :class:`VideoName`) into parts.

    Returns ``{"train": [...], "test": [...]}``. Raises :class:`DataError` when a part comes out
    empty, except the test part of ``all-train``.
    """
    key = key or (lambda x: x if isinstance(x, VideoName) else parse_video_name(x))
    parts: dict[str, list[T]] = {"train": [], "test": []}
    tracks: set[str] = set()
    for item in items:
        track = key(item).music
        tracks.add(track)
        part = split.part_of(track)
        if part is not None:
            parts[part].append(item)
    for part in ("train", "test"):
        if parts[part] or (part == "test" and split.all_train):
            continue
        have = ", ".join(sorted(tracks)) or "none"
        test = ", ".join(sorted(split.test)) or "none"
        raise DataError(
            f"The split '{split.source}' leaves the {part} part of {what} empty: its music tracks "
            f"are {have}; the test tracks are {test}. {_HELP} To use every video whatever its "
            f"track, ask for split='all'."
        )
    return parts


def select_part(items: Iterable[T], part: Part, split: TrackSplit, *, key=None,
                what: str = "the data set") -> list[T]:
    """The items of one part (``"train"``, ``"test"``) or all of them (``"all"``)."""
    items = list(items)
    if part == "all":
        return items
    if part not in ("train", "test"):
        raise DataError(f"split must be 'train', 'test' or 'all', got {part!r}.")
    if part == "test" and split.all_train:
        raise DataError(f"The split 'all-train' has no test part; ask for split='train' or 'all'.")
    return split_by_track(items, split, key=key, what=what)[part]
