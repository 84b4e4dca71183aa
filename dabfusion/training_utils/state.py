"""Whole training states on disk without pickle: tensors in safetensors, the rest in JSON.

A state is any nest of dicts, lists, tuples, tensors, numpy arrays and JSON scalars (optimizer
and scheduler state dicts, RNG states, counters). :func:`flatten` moves every tensor to a flat
``{"t/<n>": tensor}`` dict and leaves a JSON skeleton that points at them; :func:`unflatten`
inverts it exactly (dtypes, shapes, int dict keys, tuples, float bit patterns via ``repr``).

:func:`save_training_state` writes ``<out>/checkpoints/step_<N>/`` through a temporary folder
and a rename, then points ``<out>/checkpoints/latest.json`` at it (also atomically), and prunes
old states; a crash at any moment leaves the previous state intact and ``latest`` valid.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint_io import atomic_write_bytes

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
LATEST = "latest.json"


# ---------------------------------------------------------------------------------- flatten


def flatten(obj: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    tensors: dict[str, torch.Tensor] = {}

    def walk(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            key = f"t/{len(tensors)}"
            tensors[key] = x.detach().to("cpu").contiguous().clone()
            return {"__tensor__": key}
        if isinstance(x, np.ndarray):
            key = f"t/{len(tensors)}"
            tensors[key] = torch.from_numpy(np.ascontiguousarray(x).copy())
            return {"__ndarray__": key, "dtype": str(x.dtype)}
        if isinstance(x, np.generic):
            return walk(x.item())
        if isinstance(x, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in x):
                return {k: walk(v) for k, v in x.items()}
            return {"__items__": [[walk(k), walk(v)] for k, v in x.items()]}
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v) for v in x]}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, float):
            return {"__float__": repr(x)}  # exact, and inf/nan survive strict JSON readers
        if isinstance(x, (str, int, bool)) or x is None:
            return x
        if isinstance(x, torch.dtype):
            return {"__dtype__": str(x).replace("torch.", "")}
        raise TypeError(f"cannot store a {type(x).__name__} in a training state")

    return walk(obj), tensors


def unflatten(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            if "__tensor__" in x:
                return tensors[x["__tensor__"]]
            if "__ndarray__" in x:
                return tensors[x["__ndarray__"]].numpy().astype(x["dtype"], copy=True)
            if "__items__" in x:
                return {walk(k): walk(v) for k, v in x["__items__"]}
            if "__tuple__" in x:
                return tuple(walk(v) for v in x["__tuple__"])
            if "__float__" in x:
                return float(x["__float__"])
            if "__dtype__" in x:
                return getattr(torch, x["__dtype__"])
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(skeleton)


# ---------------------------------------------------------------------------------- RNG


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and every CUDA device) RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# ---------------------------------------------------------------------------------- save / load


def save_training_state(out_dir: str | os.PathLike, step: int, state: dict[str, Any], *,
                        keep: int = 2) -> Path:
    """Write ``state`` as ``<out_dir>/checkpoints/step_<step>/`` atomically; keep the newest ``keep``."""
    from safetensors.torch import save_file

    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".step_{step:08d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    skeleton, tensors = flatten(state)
    save_file(tensors, str(tmp / STATE_TENSORS))
    with open(tmp / STATE_JSON, "w", encoding="utf-8") as fh:
        json.dump({"step": step, "state": skeleton}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_bytes(root / LATEST, json.dumps({"step": step, "path": final.name}).encode("utf-8"))
    states = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in states[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def find_latest_state(out_dir_or_state: str | os.PathLike) -> Path | None:
    """The state folder to resume from: a ``step_*`` folder itself, or ``latest`` of an output dir."""
    p = Path(out_dir_or_state)
    if (p / STATE_JSON).is_file():
        return p
    root = p / "checkpoints"
    latest = root / LATEST
    if latest.is_file():
        cand = root / json.loads(latest.read_text(encoding="utf-8"))["path"]
        if (cand / STATE_JSON).is_file():
            return cand
    states = sorted(q for q in root.glob("step_*") if (q / STATE_JSON).is_file()) if root.is_dir() else []
    return states[-1] if states else None


def load_training_state(state_dir: str | os.PathLike) -> tuple[int, dict[str, Any]]:
    """(step, state) saved by :func:`save_training_state`."""
    from safetensors.torch import load_file

    d = Path(state_dir)
    with open(d / STATE_JSON, encoding="utf-8") as fh:
        meta = json.load(fh)
    tensors = load_file(str(d / STATE_TENSORS))
    return int(meta["step"]), unflatten(meta["state"], tensors)
