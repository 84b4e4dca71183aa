"""Cache of music embeddings keyed by a hash of the audio, the encoder spec and the request.

Training the diffusion model asks for the same track's embedding once per window and epoch, and
a ComfyUI graph re-runs with the same music many times; the encoders cost seconds per call. An
in-memory LRU answers repeats in a process; an optional folder of ``.npz`` files survives
restarts (safe to delete at any time; a file that cannot be read is ignored and rewritten).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np


def cache_key(*parts: Any) -> str:
    """A stable hex key for JSON-able parts (floats rounded to microseconds)."""
    def norm(p):
        return round(p, 6) if isinstance(p, float) else p
    return hashlib.sha256(json.dumps([norm(p) for p in parts], sort_keys=True,
                                     default=str).encode()).hexdigest()


class LRUCache:
    """A small thread-safe least-recently-used mapping."""

    def __init__(self, max_items: int = 32) -> None:
        self.max_items = max(0, int(max_items))
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key: str, value: Any) -> None:
        if self.max_items == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def get_or_compute(self, key: str, compute: Callable[[], Any]) -> Any:
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class DiskCache:
    """``.npz`` files of named arrays in a folder, one per key, written atomically."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder).expanduser()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key[:40]}.npz"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception:  # noqa: BLE001 - a damaged cache entry is just a miss
            return None

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        p = self._path(key)
        tmp = p.with_name(f"{p.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, p)
