"""Torch data sets over AIST++-like folders: music-aligned frame windows and frame pairs.

:class:`AISTDataset` feeds the diffusion stage (N frames + the music they dance to + ids);
:class:`PairDataset` feeds the flow auto-encoder (a reference and a driving frame from one video).
Both share the scanning, splitting and frame caching of :class:`AISTVideos`, and read SynthDance
and real AIST++ the same way.

Frames come out channels-first, ``[N, 3, H, W]``, as float32 in 0..1 (``frames_dtype="float32"``,
what the models take) or uint8 0..255 (``"uint8"``: 4x less to move between DataLoader workers;
divide by 255 on the device).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .frame_cache import CachedVideo, FrameCache, default_cache_dir
from .layout import VideoRecord, scan_dataset
from .music_bank import MusicBank
from .splits import Part, SplitSpec, TrackSplit, resolve_split, select_part

DEFAULT_FPS = 30.0
DEFAULT_SIZE = 128
DEFAULT_AUDIO_SAMPLE_RATE = 16000
FramesDtype = Literal["float32", "uint8"]


def frames_to_tensor(frames: np.ndarray, dtype: FramesDtype = "float32") -> torch.Tensor:
    """uint8 [..., H, W, 3] -> [..., 3, H, W] as float32 in 0..1 or uint8."""
    # moveaxis + ascontiguousarray copies out of the (read-only) memory map in one go
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(frames), -1, -3)))
    if dtype == "uint8":
        return t
    if dtype == "float32":
        return t.to(torch.float32).div_(255.0)
    raise DataError(f"frames_dtype must be 'float32' or 'uint8', got {dtype!r}.")


@dataclass(frozen=True)
class CachedRecord:
    """A video of the data set together with where its cached frames are."""

    record: VideoRecord
    cached: CachedVideo

    @property
    def n_frames(self) -> int:
        return self.cached.n_frames


class AISTVideos(Dataset):
    """Scanned, filtered, split and cached videos of one data folder (base of the data sets).

    Args:
        root: data folder with ``videos/`` and ``music/`` (AIST++ or SynthDance).
        split: ``"train"``, ``"test"`` or ``"all"``.
        split_spec: how tracks are split (see :mod:`dabfusion.data.splits`); default ``"paper"``.
        fps, size, fit: frames are cached at this rate and square size (``fit``: crop or pad).
        cache_dir: where the frame cache lives; default ``<root>/.dabfusion_cache``.
        genres, cameras, dancers, situations: keep only these (``"BR"``/``"Break"``, ``1``/``"c01"``...).
        workers: parallel decoders for the one-time cache build; progress: show its progress bar.
        on_error: ``"raise"`` (default) or ``"skip"`` a video that cannot be decoded.
    """

    def __init__(self, root: str | os.PathLike, *, split: Part = "train",
                 split_spec: SplitSpec = "paper", fps: float = DEFAULT_FPS,
                 size: int = DEFAULT_SIZE, fit: str = "crop",
                 cache_dir: str | os.PathLike | None = None,
                 genres: Iterable[str] | str | None = None,
                 cameras: Iterable[int | str] | int | None = None,
                 dancers: Iterable[int | str] | int | None = None,
                 situations: Iterable[str] | str | None = None,
                 workers: int | None = None, progress: bool = True,
                 on_error: Literal["raise", "skip"] = "raise") -> None:
        self.root = Path(root).expanduser()
        layout = scan_dataset(self.root, genres=genres, cameras=cameras, dancers=dancers,
                              situations=situations)
        self.layout = layout
        self.split_part = split
        self.track_split: TrackSplit = resolve_split(split_spec, manifest=layout.manifest,
                                                     manifest_path=layout.manifest_path)
        records = select_part(layout.videos, split, self.track_split, key=lambda r: r.name,
                              what=f"the data set {self.root}")
        self.fps = float(fps)
        self.size = int(size)
        self.cache = FrameCache(cache_dir if cache_dir is not None else default_cache_dir(self.root),
                                fps=self.fps, size=self.size, fit=fit)
        cached = self.cache.build([r.path for r in records], workers=workers, progress=progress,
                                  on_error=on_error)
        by_source = {c.source: c for c in cached}
        self.videos: list[CachedRecord] = [CachedRecord(r, by_source[r.path])
                                           for r in records if r.path in by_source]
        if not self.videos:
            raise DataError(f"No video of {self.root} could be cached; see the warnings above.")

    @property
    def tracks(self) -> list[str]:
        """Music tracks used by this part of the data set, sorted."""
        return sorted({v.record.name.music for v in self.videos})

    def video_frames(self, index: int) -> np.ndarray:
        """Read-only uint8 [N, size, size, 3] memory map of the ``index``-th video's frames."""
        return self.cache.frames(self.videos[index].cached)

    def _ids(self, v: CachedRecord) -> dict[str, Any]:
        n = v.record.name
        return {"genre_id": n.genre_id, "camera_id": n.camera_id, "dancer_id": n.dancer_id,
                "music": n.music, "video": n.stem}

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.root}, split={self.split_part!r}, "
                f"{len(self.videos)} videos, {len(self.tracks)} tracks, {len(self)} items, "
                f"{self.fps:g} fps, {self.size}px)")


def _check_index(index: int, n: int) -> int:
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise IndexError(f"index {index} out of range for {n} items")
    return index


class AISTDataset(AISTVideos):
    """Training windows: ``n_frames`` frames, the music they dance to, and ids.

    A window takes every ``stride``-th cached frame: it starts at cached frame ``k`` (time
    ``t0 = k / fps``), covers ``n_frames * stride / fps`` seconds, and its audio covers exactly
    that span at ``audio_sample_rate``.

    ``sampling="all"``: every window, starts ``hop`` cached frames apart (default: adjacent,
    non-overlapping); ``len()`` counts them. ``sampling="random"``: ``windows_per_video`` windows
    per video at random starts, drawn from (``seed``, epoch, index), so they are the same in any
    DataLoader worker and change with :meth:`set_epoch`.

    Each item is a dict: ``frames`` [N, 3, H, W] (see ``frames_dtype``), ``audio`` float32 [S]
    (absent with ``music_mode="none"``), ``genre_id``, ``camera_id``, ``dancer_id`` (0-based: c01
    and d01 are 0), ``music`` (track name), ``video`` (stem), ``t0`` (seconds), ``start_frame``
    (cached frame index) and ``window`` (index of the window within its video). ``transform`` is
    applied to ``frames`` (the whole window, so random augmentations match across frames).
    """

    def __init__(self, root: str | os.PathLike, *, split: Part = "train",
                 split_spec: SplitSpec = "paper", n_frames: int = 40,
                 fps: float = DEFAULT_FPS, size: int = DEFAULT_SIZE, stride: int = 1,
                 hop: int | None = None, sampling: Literal["all", "random"] = "all",
                 windows_per_video: int = 1, seed: int = 0,
                 audio_sample_rate: int = DEFAULT_AUDIO_SAMPLE_RATE,
                 music_mode: Literal["segment", "none"] = "segment",
                 frames_dtype: FramesDtype = "float32",
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 **videos_kwargs: Any) -> None:
        if n_frames < 1 or stride < 1 or (hop is not None and hop < 1) or windows_per_video < 1:
            raise DataError("n_frames, stride, hop and windows_per_video must be >= 1, got "
                            f"{n_frames}, {stride}, {hop}, {windows_per_video}.")
        if sampling not in ("all", "random"):
            raise DataError(f"sampling must be 'all' or 'random', got {sampling!r}.")
        if music_mode not in ("segment", "none"):
            raise DataError(f"music_mode must be 'segment' or 'none', got {music_mode!r}.")
        if frames_dtype not in ("float32", "uint8"):
            raise DataError(f"frames_dtype must be 'float32' or 'uint8', got {frames_dtype!r}.")
        super().__init__(root, split=split, split_spec=split_spec, fps=fps, size=size,
                         **videos_kwargs)
        self.n_frames, self.stride = int(n_frames), int(stride)
        self.hop = int(hop) if hop is not None else self.n_frames * self.stride
        self.sampling, self.windows_per_video = sampling, int(windows_per_video)
        self.seed, self.epoch = int(seed), 0
        self.frames_dtype, self.transform, self.music_mode = frames_dtype, transform, music_mode
        self.span = self.n_frames * self.stride / self.fps  # seconds of music per window
        self._drop_short_videos()
        counts = [(v.n_frames - self._need) // self.hop + 1 for v in self.videos]
        self._cum = np.cumsum([0] + counts)
        self.music: MusicBank | None = None
        self.audio_sample_rate = int(audio_sample_rate)
        self.n_audio = int(round(self.span * self.audio_sample_rate))
        if music_mode == "segment":
            used = {v.record.name.music: v.record.music_path for v in self.videos}
            self.music = MusicBank(used, self.audio_sample_rate)

    @property
    def _need(self) -> int:
        """Cached frames one window spans."""
        return (self.n_frames - 1) * self.stride + 1

    def _drop_short_videos(self) -> None:
        short = [v for v in self.videos if v.n_frames < self._need]
        if not short:
            return
        self.videos = [v for v in self.videos if v.n_frames >= self._need]
        msg = (f"{len(short)} video(s) have fewer than the {self._need} frames a window of "
               f"{self.n_frames} frames (stride {self.stride}) at {self.fps:g} fps needs, e.g. "
               f"{short[0].record.path} ({short[0].n_frames} frames)")
        if not self.videos:
            raise DataError(msg + "; no video is long enough. Ask for fewer frames or a lower fps.")
        warnings.warn(msg + "; they are left out.", stacklevel=3)

    def set_epoch(self, epoch: int) -> None:
        """Draw new random windows (``sampling="random"``); call once per epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.sampling == "random":
            return len(self.videos) * self.windows_per_video
        return int(self._cum[-1])

    def locate(self, index: int) -> tuple[int, int, int]:
        """(video index, start frame, window number) of item ``index``, without reading frames."""
        index = _check_index(index, len(self))
        if self.sampling == "random":
            v, w = divmod(index, self.windows_per_video)
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, self.videos[v].n_frames - self._need + 1))
            return v, start, w
        v = int(np.searchsorted(self._cum, index, side="right")) - 1
        w = index - int(self._cum[v])
        return v, w * self.hop, w

    def __getitem__(self, index: int) -> dict[str, Any]:
        v, start, w = self.locate(index)
        entry = self.videos[v]
        frames = self.cache.frames(entry.cached)[start: start + self._need: self.stride]
        x = frames_to_tensor(frames, self.frames_dtype)
        if self.transform is not None:
            x = self.transform(x)
        t0 = start / self.fps
        item: dict[str, Any] = {"frames": x}
        if self.music is not None:
            seg = self.music.segment(entry.record.name.music, t0, self.n_audio)
            item["audio"] = torch.from_numpy(seg)
        item.update(self._ids(entry))
        item.update({"t0": t0, "start_frame": start, "window": w})
        return item


class PairDataset(AISTVideos):
    """(reference, driving) frame pairs from one video, for the flow auto-encoder.

    ``pairs_per_video`` pairs per video per epoch, drawn from (``seed``, epoch, index) like
    :class:`AISTDataset`'s random windows; ``max_gap`` limits how many cached frames apart the
    two may be (None: anywhere in the video). Items: ``reference`` and ``driving`` [3, H, W]
    (``frames_dtype`` as in :class:`AISTDataset`), ``ref_frame``, ``drv_frame`` (cached frame
    indices), and the ids of :class:`AISTDataset`. ``transform`` gets both frames stacked
    [2, 3, H, W], so a random augmentation treats them alike.
    """

    def __init__(self, root: str | os.PathLike, *, split: Part = "train",
                 split_spec: SplitSpec = "paper", fps: float = DEFAULT_FPS,
                 size: int = DEFAULT_SIZE, pairs_per_video: int = 1,
                 max_gap: int | None = None, seed: int = 0,
                 frames_dtype: FramesDtype = "float32",
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 **videos_kwargs: Any) -> None:
        if pairs_per_video < 1 or (max_gap is not None and max_gap < 0):
            raise DataError(f"pairs_per_video must be >= 1 and max_gap >= 0, got "
                            f"{pairs_per_video}, {max_gap}.")
        if frames_dtype not in ("float32", "uint8"):
            raise DataError(f"frames_dtype must be 'float32' or 'uint8', got {frames_dtype!r}.")
        super().__init__(root, split=split, split_spec=split_spec, fps=fps, size=size,
                         **videos_kwargs)
        self.pairs_per_video, self.max_gap = int(pairs_per_video), max_gap
        self.seed, self.epoch = int(seed), 0
        self.frames_dtype, self.transform = frames_dtype, transform

    def set_epoch(self, epoch: int) -> None:
        """Draw new pairs; call once per epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos) * self.pairs_per_video

    def locate(self, index: int) -> tuple[int, int, int]:
        """(video index, reference frame, driving frame) of item ``index``."""
        index = _check_index(index, len(self))
        v = index // self.pairs_per_video
        n = self.videos[v].n_frames
        rng = np.random.default_rng([self.seed, self.epoch, index])
        ref = int(rng.integers(0, n))
        lo, hi = 0, n - 1
        if self.max_gap is not None:
            lo, hi = max(0, ref - self.max_gap), min(n - 1, ref + self.max_gap)
        drv = int(rng.integers(lo, hi + 1))
        return v, ref, drv

    def __getitem__(self, index: int) -> dict[str, Any]:
        v, ref, drv = self.locate(index)
        entry = self.videos[v]
        frames = self.cache.frames(entry.cached)
        x = frames_to_tensor(np.stack([frames[ref], frames[drv]]), self.frames_dtype)
        if self.transform is not None:
            x = self.transform(x)
        item: dict[str, Any] = {"reference": x[0], "driving": x[1], "ref_frame": ref,
                                "drv_frame": drv}
        item.update(self._ids(entry))
        return item
