"""A disk cache of decoded, resized video frames, built once and memory-mapped afterwards.

Decoding AIST++'s 1080p 60 fps videos every epoch would dominate training time, so each video is
decoded once at the training fps and square size and stored as raw frames.

Format (version :data:`CACHE_VERSION`)::

    <cache_dir>/frames_v1_<fps>fps_<size>px_<fit>/
        cache.json                                    settings, for people and tools
        <video stem>.<folder hash>.<key>.npy          uint8 [N, size, size, 3] RGB, frame i at t = i/fps

``<key>`` hashes the source file's absolute path, byte size and mtime together with the
settings, so an edited or replaced video gets a new file (the old one is removed) and a new fps,
size or fit gets a new folder, while unchanged files are reused. One plain ``.npy`` per video keeps
the build resumable and incremental; files are opened with ``mmap_mode="r"`` on demand (a few
at a time, so 12,670 AIST++ videos do not need 12,670 open files). Videos are decoded by a pool
of threads (PyAV works outside the GIL). Each file is written under a
``.partial`` name and renamed when complete, so an interrupted build never leaves a file that
looks finished; a truncated file is detected from its header and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DabFusionError, DataError

CACHE_VERSION = 1
DEFAULT_CACHE_DIRNAME = ".dabfusion_cache"
_PARTIAL_MAX_AGE_S = 6 * 3600  # older .partial files belong to builds that died


def decode_video(path: str | os.PathLike, fps: float, size: int, fit: str) -> np.ndarray:
    """Decode a whole video at ``fps`` into uint8 [N, size, size, 3] (the one place that decodes)."""
    from ..media.video import read_video_frames

    frames, _ = read_video_frames(path, fps=fps, size=size, fit=fit)
    return frames


@dataclass(frozen=True)
class CacheSettings:
    """What a cached frame depends on besides the source file."""

    fps: float
    size: int
    fit: str = "crop"

    def __post_init__(self) -> None:
        if not (self.fps > 0 and np.isfinite(self.fps)):
            raise DataError(f"The frame cache needs a positive fps, got {self.fps!r}.")
        if int(self.size) != self.size or self.size < 1:
            raise DataError(f"The frame cache needs a positive integer size, got {self.size!r}.")
        if self.fit not in ("crop", "pad"):
            raise DataError(f"fit must be 'crop' or 'pad', got {self.fit!r}.")

    @property
    def dirname(self) -> str:
        return f"frames_v{CACHE_VERSION}_{self.fps:g}fps_{int(self.size)}px_{self.fit}"


@dataclass(frozen=True)
class CachedVideo:
    """One cached video: its source, its ``.npy`` file and its frame count at the cache's fps."""

    source: Path
    file: Path
    n_frames: int


def _hash(text: str, n: int) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:n]


def cache_key(source: str | os.PathLike, settings: CacheSettings) -> str:
    """Hash of (absolute path, size, mtime, fps, frame size, fit, format version) of one video."""
    p = Path(source).resolve()
    st = p.stat()
    ident = json.dumps([CACHE_VERSION, str(p), st.st_size, st.st_mtime_ns,
                        float(settings.fps), int(settings.size), settings.fit])
    return _hash(ident, 16)


def npy_shape(path: str | os.PathLike) -> tuple[int, ...] | None:
    """Shape of a complete uint8 ``.npy`` file, or ``None`` if it is missing, foreign or truncated."""
    try:
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if major == 1
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            offset = f.tell()
        if fortran or dtype != np.uint8:
            return None
        if os.path.getsize(path) != offset + int(np.prod(shape, dtype=np.int64)):
            return None
        return tuple(int(s) for s in shape)
    except (OSError, ValueError):
        return None


def _write_npy_atomic(final: Path, arr: np.ndarray) -> None:
    tmp = final.with_name(f"{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr, dtype=np.uint8), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _build_one(source: str, final: str, fps: float, size: int, fit: str) -> int:
    """Decode one video and store it; module-level so that a process pool can run it."""
    frames = decode_video(source, fps, size, fit)
    if frames.ndim != 4 or frames.shape[1:] != (size, size, 3) or frames.dtype != np.uint8:
        raise DataError(f"Decoding {source} gave frames of shape {frames.shape} {frames.dtype}; "
                        f"expected uint8 [N, {size}, {size}, 3].")
    _write_npy_atomic(Path(final), frames)
    return int(frames.shape[0])


class FrameCache:
    """Cached frames of many videos at one (fps, size, fit); build with :meth:`build`.

    Picklable (DataLoader workers): open memory maps are dropped on pickling and reopened lazily.
    """

    def __init__(self, cache_dir: str | os.PathLike, *, fps: float, size: int,
                 fit: str = "crop", max_open: int = 32) -> None:
        self.settings = CacheSettings(float(fps), int(size), fit)
        self.root = Path(cache_dir).expanduser()
        self.directory = self.root / self.settings.dirname
        self.max_open = max(1, int(max_open))
        self._open: OrderedDict[Path, np.ndarray] = OrderedDict()

    # -- naming --------------------------------------------------------------------------------
    def path_for(self, source: str | os.PathLike) -> Path:
        """Where ``source``'s frames live in this cache for its current size and mtime."""
        src = Path(source).resolve()
        folder = _hash(str(src.parent), 8)
        return self.directory / f"{src.stem}.{folder}.{cache_key(src, self.settings)}.npy"

    def lookup(self, source: str | os.PathLike) -> CachedVideo | None:
        """The cached entry for ``source`` if a complete, current one exists."""
        file = self.path_for(source)
        shape = npy_shape(file)
        if shape is None or len(shape) != 4 or shape[1:] != (self.settings.size,) * 2 + (3,):
            return None
        return CachedVideo(Path(source), file, shape[0])

    # -- building ------------------------------------------------------------------------------
    def build(self, sources: Sequence[str | os.PathLike], *, workers: int | None = None,
              progress: bool = True, on_error: Literal["raise", "skip"] = "raise",
              executor: Literal["thread", "process"] = "thread") -> list[CachedVideo]:
        """Cache every source not cached yet and return entries for all of them, in order.

        ``workers`` decoders run in parallel (default: the CPU count, at most 8; 1 decodes in this
        thread). Threads are the default: PyAV decodes and scales outside the GIL, they start
        instantly and need no ``if __name__ == "__main__":`` guard in the calling script (which
        ``executor="process"`` does, as it spawns fresh interpreters). With ``on_error="skip"`` a
        video that fails to decode is left out with a warning.
        """
        sources = [Path(s) for s in sources]
        for s in sources:
            if not s.is_file():
                raise DataError(f"Video file {s} does not exist (or is not a file).")
        entries: dict[int, CachedVideo] = {}
        todo: list[tuple[int, Path, Path]] = []
        for i, s in enumerate(sources):
            hit = self.lookup(s)
            if hit is not None:
                entries[i] = hit
            else:
                todo.append((i, s, self.path_for(s)))
        if todo:
            self._prepare_directory(todo)
            self._run(todo, entries, workers, progress, on_error, executor, len(sources))
        return [entries[i] for i in range(len(sources)) if i in entries]

    def _prepare_directory(self, todo: list[tuple[int, Path, Path]]) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"Cannot create the frame cache folder {self.directory}: {e}. "
                            f"Pass a writable cache_dir.") from None
        info = self.directory / "cache.json"
        if not info.exists():
            meta = {"version": CACHE_VERSION, "fps": self.settings.fps, "size": self.settings.size,
                    "fit": self.settings.fit, "layout": "one uint8 .npy [N,size,size,3] RGB per "
                    "video; frame i is at time i/fps; name = stem.folderhash.key.npy"}
            tmp = info.with_name(f"cache.json.{os.getpid()}.partial")
            tmp.write_text(json.dumps(meta, indent=2))
            os.replace(tmp, info)
        now = time.time()
        stale_stems = {f"{final.name.rsplit('.', 2)[0]}." for _, _, final in todo}
        for f in self.directory.iterdir():
            name = f.name
            if name.endswith(".partial"):
                try:
                    if now - f.stat().st_mtime > _PARTIAL_MAX_AGE_S:
                        f.unlink()
                except OSError:
                    pass
            elif name.endswith(".npy") and name.rsplit(".", 2)[0] + "." in stale_stems:
                f.unlink(missing_ok=True)  # an older version of a source we are about to rebuild

    def _run(self, todo, entries, workers, progress, on_error, executor, n_total) -> None:
        from tqdm.auto import tqdm

        st = self.settings
        n_workers = min(workers if workers is not None else min(os.cpu_count() or 1, 8), len(todo))
        desc = (f"Caching {len(todo)} videos at {st.fps:g} fps, {st.size}x{st.size} into "
                f"{self.directory} (once)")
        if len(todo) < n_total:
            desc += f"; {n_total - len(todo)} already cached"
        bar = tqdm(total=len(todo), desc=desc, unit="video", disable=not progress)
        failures: list[str] = []

        def done(i: int, src: Path, final: Path, result: int | BaseException) -> None:
            if isinstance(result, BaseException):
                if on_error == "raise":
                    if isinstance(result, DabFusionError):
                        raise result
                    hint = (" (a worker process died: with executor='process' the calling "
                            "script needs an `if __name__ == '__main__':` guard)"
                            if isinstance(result, BrokenProcessPool) else "")
                    raise DataError(f"Could not cache video {src}: {result}{hint}") from result
                failures.append(f"{src}: {result}")
            else:
                entries[i] = CachedVideo(src, final, result)
            bar.update(1)

        try:
            if n_workers <= 1:
                for i, src, final in todo:
                    try:
                        n = _build_one(str(src), str(final), st.fps, st.size, st.fit)
                    except Exception as e:  # noqa: BLE001 - reported per file below
                        done(i, src, final, e)
                    else:
                        done(i, src, final, n)
            else:
                if executor == "process":
                    pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"))
                else:
                    pool = ThreadPoolExecutor(n_workers)
                with pool:
                    futs = {pool.submit(_build_one, str(src), str(final), st.fps, st.size, st.fit):
                            (i, src, final) for i, src, final in todo}
                    pending = set(futs)
                    try:
                        while pending:
                            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                            for fut in finished:
                                err = fut.exception()
                                done(*futs[fut], err if err is not None else fut.result())
                    except BaseException:
                        for fut in pending:
                            fut.cancel()
                        raise
        finally:
            bar.close()
        if failures:
            warnings.warn(f"Left out {len(failures)} video(s) that could not be decoded:\n  "
                          + "\n  ".join(failures), stacklevel=3)

    # -- reading -------------------------------------------------------------------------------
    def frames(self, entry: CachedVideo | str | os.PathLike) -> np.ndarray:
        """Read-only memory map uint8 [N, size, size, 3] of a cached video (kept open, LRU)."""
        file = Path(entry.file if isinstance(entry, CachedVideo) else entry)
        arr = self._open.get(file)
        if arr is not None:
            self._open.move_to_end(file)
            return arr
        try:
            arr = np.load(file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"Cached frames {file} cannot be read ({e}); delete the file or its "
                            f"folder {self.directory} to rebuild it.") from None
        self._open[file] = arr
        while len(self._open) > self.max_open:
            self._open.popitem(last=False)
        return arr

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state


def default_cache_dir(data_root: str | os.PathLike) -> Path:
    """``<data_root>/.dabfusion_cache`` (a hidden folder beside the data it describes)."""
    return Path(data_root).expanduser() / DEFAULT_CACHE_DIRNAME


def cache_videos(sources: Iterable[str | os.PathLike], cache_dir: str | os.PathLike, *,
                 fps: float, size: int, fit: str = "crop", workers: int | None = None,
                 progress: bool = True) -> list[CachedVideo]:
    """Build (or reuse) a cache for ``sources``; a one-call form for scripts."""
    return FrameCache(cache_dir, fps=fps, size=size, fit=fit).build(
        list(sources), workers=workers, progress=progress)
