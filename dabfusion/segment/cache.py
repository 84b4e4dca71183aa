"""Build each detector/segmenter once per (file, device) and reuse it across calls.

A ComfyUI graph runs SegmentPerson again for every queued prompt; reading a 2.5 GB ViT-H file
each time would dominate the run. The key includes the file's size and modification time, so a
replaced file is read again instead of serving stale weights.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable

_LOCK = threading.Lock()
_MODELS: dict[tuple, Any] = {}
#: How many times a model was really built (tests check that cached calls build nothing).
BUILD_COUNT: dict[str, int] = {}


def resolve_device(device: Any = None) -> str:
    """The device asked for; "auto" or None means the GPU when there is one, else the CPU."""
    if device is None or str(device).lower() in ("", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def file_key(path: str | os.PathLike) -> tuple:
    p = Path(path).expanduser()
    try:
        st = p.stat()
        return (str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return (str(p), None, None)  # the loader will raise its own clear error


def cached(kind: str, path: str | os.PathLike, device: str, build: Callable[[], Any]) -> Any:
    """The model of this kind for this file and device, built by ``build()`` the first time."""
    key = (kind, *file_key(path), str(device))
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
    model = build()  # outside the lock: loading can take a while; a race only builds twice
    with _LOCK:
        BUILD_COUNT[kind] = BUILD_COUNT.get(kind, 0) + 1
        return _MODELS.setdefault(key, model)


def clear_model_cache() -> None:
    """Forget every cached model (frees their memory once nothing else holds them)."""
    with _LOCK:
        _MODELS.clear()
