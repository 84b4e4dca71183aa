"""Our checkpoint format: safetensors weights + a JSON header (kind, version, config, extra).

One layout for every stage (flow AE, diffusion, music adapters):

- ``save_checkpoint("out/flow_ae.safetensors", ...)`` writes ``out/flow_ae.safetensors`` and a
  readable copy of the header in ``out/flow_ae.json``;
- ``save_checkpoint("out/model_dir/", ...)`` (an existing directory, or a path ending in ``/``)
  writes ``model.safetensors`` + ``config.json`` inside it (the diffusers way);
- a path without the ``.safetensors`` suffix is a prefix: ``out/flow_ae`` -> ``out/flow_ae.safetensors``.

The header is also embedded in the safetensors metadata (key ``"dabfusion"``), so the weight file
alone is a complete checkpoint (ComfyUI users copy single files into model folders); the
embedded copy is authoritative, the ``.json`` is for people and tools. Files are written under a
temporary name and renamed, so a crash never leaves a half-written checkpoint. No pickle.

Loading checks ``kind`` and any subset of the config the caller depends on, and raises
:class:`~dabfusion.errors.ConfigMismatchError` that lists every differing key with both values.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import ConfigMismatchError, ModelFileError

FORMAT = "dabfusion-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "dabfusion"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights file, JSON file) for a directory, a ``.safetensors`` path or a prefix."""
    s = os.fspath(path)
    p = Path(s).expanduser()
    if s.endswith(("/", os.sep)) or p.is_dir():
        return p / WEIGHTS_NAME, p / CONFIG_NAME
    if p.suffix == ".safetensors":
        return p, p.with_suffix(".json")
    if p.suffix == ".json":
        return p.with_suffix(".safetensors"), p
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def _jsonable(obj: Any) -> Any:
    """Make dataclasses, tuples, paths and numpy/torch scalars JSON-friendly (raises on others)."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalar
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint header")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _contiguous_cpu(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor")
        # clone: safetensors refuses tensors that share storage (tied weights, views)
        out[k] = v.detach().to("cpu").contiguous().clone()
    return out


def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor],
                    config: Mapping[str, Any] | Any, extra_json: Mapping[str, Any] | None = None, *,
                    kind: str, version: int = 1) -> Path:
    """Write a checkpoint atomically; returns the weights path.

    ``config`` (a dict or a dataclass) is what rebuilds the model; ``extra_json`` is free-form
    information (training step, data, losses...). ``kind`` names the model family (``"flow_ae"``)
    and ``version`` its format version, checked on load.
    """
    from safetensors.torch import save as st_save

    weights, cfg_path = checkpoint_paths(path)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "version": int(version),
        "config": _jsonable(config),
        "extra": _jsonable(extra_json or {}),
        "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    text = json.dumps(header, indent=2, sort_keys=True)
    blob = st_save(_contiguous_cpu(state_dict), metadata={METADATA_KEY: text})
    atomic_write_bytes(weights, blob)
    atomic_write_bytes(cfg_path, (text + "\n").encode("utf-8"))
    return weights


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a checkpoint without loading its tensors."""
    from safetensors import safe_open

    weights, cfg_path = checkpoint_paths(path)
    _require(weights)
    try:
        with safe_open(str(weights), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(f"{weights} is not a readable safetensors file: {e}") from None
    if METADATA_KEY in meta:
        return json.loads(meta[METADATA_KEY])
    if cfg_path.is_file():
        return json.loads(cfg_path.read_text(encoding="utf-8"))
    raise ModelFileError(f"{weights} has no dabfusion header (metadata key {METADATA_KEY!r}) and no "
                         f"{cfg_path.name} beside it: it was not written by dabfusion.")


def _require(weights: Path) -> None:
    if not weights.is_file():
        raise ModelFileError(
            f"Checkpoint {weights} not found (folder {weights.parent}). Train one with the scripts in "
            f"training/ or put the file in that folder.")


def config_differences(actual: Mapping[str, Any], expected: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Human-readable lines for each key of ``expected`` whose value in ``actual`` differs."""
    lines = []
    for key, want in expected.items():
        name = f"{prefix}{key}"
        if key not in actual:
            lines.append(f"{name}: missing in the checkpoint (expected {want!r})")
            continue
        have = actual[key]
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            lines += config_differences(have, want, prefix=f"{name}.")
        elif _norm(have) != _norm(want):
            lines.append(f"{name}: checkpoint has {have!r}, expected {want!r}")
    return lines


def _norm(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


def check_header(header: Mapping[str, Any], where: str, *, expected_kind: str | None = None,
                 expected_version: int | None = None,
                 expected_config_subset: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ConfigMismatchError` when the header is not what the caller needs."""
    problems = []
    if header.get("format") != FORMAT:
        problems.append(f"format: {header.get('format')!r}, expected {FORMAT!r}")
    if expected_kind is not None and header.get("kind") != expected_kind:
        problems.append(f"kind: checkpoint is a {header.get('kind')!r} model, expected {expected_kind!r}")
    if expected_version is not None and header.get("version") != expected_version:
        problems.append(f"version: checkpoint has {header.get('version')!r}, expected {expected_version!r}")
    if expected_config_subset:
        problems += config_differences(header.get("config", {}), expected_config_subset)
    if problems:
        raise ConfigMismatchError(f"Checkpoint {where} does not match what was asked for:\n  - "
                                  + "\n  - ".join(problems))


def load_checkpoint(path: str | os.PathLike, *, expected_kind: str | None = None,
                    expected_version: int | None = None,
                    expected_config_subset: Mapping[str, Any] | None = None,
                    device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, header) of a checkpoint, after checking kind, version and config subset."""
    from safetensors.torch import load_file

    weights, _ = checkpoint_paths(path)
    header = read_header(weights)
    check_header(header, str(weights), expected_kind=expected_kind, expected_version=expected_version,
                 expected_config_subset=expected_config_subset)
    try:
        state = load_file(str(weights), device=str(device))
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(f"Cannot read the tensors of {weights}: {e}") from None
    return state, header


def load_state_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """``load_state_dict(strict=True)`` that reports missing/unexpected/mis-shaped keys clearly."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            parts.append("shapes differ: " + "; ".join(shapes[:5]))
        raise ConfigMismatchError(f"Weights in {where} do not fit the model: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)
