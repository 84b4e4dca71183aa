"""Find and open the weight files of the music encoders, with errors that say what to do.

Nothing here downloads: this workplace (and many ComfyUI installs) cannot reach a model hub, and
laion_clap / wav2clip would otherwise fetch weights silently at run time. A missing or wrong
file raises :class:`~dabfusion.errors.ModelFileError` naming the file, the ComfyUI model folder
to put it in, and where the official file comes from.

``.pt`` files never run code from the file unless the caller says ``trust_pickle=True``:

1. ``torch.load(weights_only=True)`` first (``Wav2CLIP.pt``, a flat state dict, and files written
   by recent torch load this way);
2. if that loader cannot parse the file, a restricted unpickler: Python's own ``pickle`` (every
   protocol) whose ``find_class`` only hands out torch's weights-only allow-list plus numpy
   scalars/dtypes. The released LAION-CLAP checkpoints need this step: they are pickled with
   protocol 4 (``FRAME`` opcodes, "Unsupported operand 149" under ``weights_only``) and hold numpy
   scalars (``numpy.core.multiarray.scalar``), as reported when torch 2.6 made ``weights_only`` the
   default (e.g. AudioSep PR #51). Only data types are constructed, so this is as safe as step 1;
3. anything else that pickles Python objects is refused with an explanation, unless
   ``trust_pickle=True`` (plain ``torch.load``, which can execute code from the file).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelFileError

WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")


@dataclass(frozen=True)
class ModelKind:
    """What the user must know about one kind of weight file."""

    key: str
    folder: str            # ComfyUI model folder name: ComfyUI/models/<folder>/
    files: tuple[str, ...]  # official file names, preferred first
    source: str            # where the official file comes from
    what: str              # human name


CLAP = ModelKind(
    key="clap",
    folder="clap",
    files=(
        "music_audioset_epoch_15_esc_90.14.pt",
        "music_speech_audioset_epoch_15_esc_89.98.pt",
        "music_speech_epoch_15_esc_89.25.pt",
        "630k-audioset-best.pt",
        "630k-best.pt",
        "630k-audioset-fusion-best.pt",
        "630k-fusion-best.pt",
    ),
    source=("LAION-CLAP's model release on Hugging Face, https://huggingface.co/lukewys/laion_clap "
            "(music_audioset_epoch_15_esc_90.14.pt is the music checkpoint, HTSAT-base; "
            "630k-audioset-best.pt is the general one, HTSAT-tiny)"),
    what="LAION-CLAP checkpoint",
)

WAV2CLIP = ModelKind(
    key="wav2clip",
    folder="wav2clip",
    files=("Wav2CLIP.pt",),
    source=("the Wav2CLIP release on GitHub, https://github.com/descriptinc/lyrebird-wav2clip/"
            "releases/download/v0.1.0-alpha/Wav2CLIP.pt"),
    what="Wav2CLIP checkpoint",
)

MUSIC_ADAPTER = ModelKind(
    key="music_adapter",
    folder="dabfusion",
    files=(),
    source="training/train_music_adapters.py in this project (it writes .safetensors + .json)",
    what="music adapter",
)

KINDS: dict[str, ModelKind] = {k.key: k for k in (CLAP, WAV2CLIP, MUSIC_ADAPTER)}


def _kind(kind: str | ModelKind) -> ModelKind:
    return kind if isinstance(kind, ModelKind) else KINDS[kind]


def where_to_put(kind: str | ModelKind, name: str | None = None) -> str:
    """"put X in ComfyUI/models/<folder>/ (from <source>)" — the advice every error ends with."""
    k = _kind(kind)
    name = name or (k.files[0] if k.files else f"the {k.what}")
    return f"Put {name} in ComfyUI/models/{k.folder}/ (or pass its path). It comes from {k.source}."


def resolve_model_file(kind: str | ModelKind, name_or_path: str | os.PathLike | None = None,
                       search_dirs: Iterable[str | os.PathLike] = ()) -> Path:
    """The weight file to load.

    ``name_or_path`` may be a path to a file, or a bare file name looked up in ``search_dirs``
    (the node layer passes ComfyUI's folders for ``kind.folder``). ``None`` picks the first
    official file name found in ``search_dirs``.
    """
    k = _kind(kind)
    dirs = [Path(d).expanduser() for d in search_dirs]
    shown = ", ".join(str(d) for d in dirs) or "no folders"
    if name_or_path is not None and str(name_or_path).strip():
        p = Path(name_or_path).expanduser()
        if p.is_file():
            return p
        if p.is_dir():
            raise ModelFileError(f"{p} is a folder, not a {k.what} file. {where_to_put(k)}")
        if not p.is_absolute():  # a name (or sub/path) inside one of the model folders
            for d in dirs:
                if (d / p).is_file():
                    return d / p
        raise ModelFileError(
            f"The {k.what} {str(name_or_path)!r} was not found (looked for it as a path and in "
            f"{shown}). {where_to_put(k, p.name)}"
        )
    for name in k.files:
        for d in dirs:
            if (d / name).is_file():
                return d / name
    raise ModelFileError(f"No {k.what} was found in {shown}. {where_to_put(k)}")


def file_fingerprint(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """sha256 of the whole file (weights are hashed once per load; 1 GB takes a few seconds)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def state_dict_fingerprint(state: Mapping[str, Any]) -> str:
    """sha256 over key names, shapes, dtypes and bytes of a state dict, in key order.

    Identifies the weights actually loaded, whatever file they came in (a full CLAP checkpoint and
    an audio-only export of it give the same fingerprint).
    """
    import torch

    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{key}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class FileWeights:
    """Mixin for an encoder module whose weights come from one official file (or stay random).

    ``fingerprint`` (of the loaded weights; ``None``: random weights) and ``source`` (the file's
    name) are set by :func:`load_strict`; :meth:`weights_record` is the part of the encoder's
    ``identity()`` that says which weights it runs.
    """

    fingerprint: str | None = None
    source: str | None = None

    def weights_id(self) -> str:
        """Fingerprint of the loaded file's weights, or of the random weights never loaded."""
        if self.fingerprint is None:
            if getattr(self, "_random_id", None) is None:
                self._random_id = "random-" + state_dict_fingerprint(self.state_dict())  # type: ignore[attr-defined]
            return self._random_id
        return self.fingerprint

    def weights_record(self) -> dict[str, Any]:
        return {"fingerprint": self.weights_id(), "file": self.source, "random_weights": self.fingerprint is None}


def load_strict(model: Any, state: Mapping[str, Any], path: Path, kind: str | ModelKind, *,
                device: Any = "cpu", shown: Any = None, note: str = "") -> Any:
    """Load ``state`` into ``model`` strictly, recording fingerprint and file; returns it on
    ``device`` in eval mode.

    Raises :class:`ModelFileError` listing missing, unexpected and mis-shaped keys, each named by
    ``shown(key)`` (e.g. back in the official file's spelling; default: as is).
    """
    name = shown or (lambda k: k)
    expected = model.state_dict()
    missing = sorted(name(k) for k in set(expected) - set(state))
    unexpected = sorted(name(k) for k in set(state) - set(expected))
    wrong = sorted(name(k) for k in set(expected) & set(state)
                   if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        raise ModelFileError(describe_key_mismatch(path, kind, missing=missing, unexpected=unexpected,
                                                   wrong_shape=wrong, note=note))
    model.load_state_dict(state, strict=True)
    model.fingerprint = state_dict_fingerprint(state)
    model.source = path.name
    return model.to(device).eval()


def load_checkpoint(path: str | os.PathLike, kind: str | ModelKind, *,
                    trust_pickle: bool = False) -> Any:
    """Read a weight file to CPU; any failure becomes a :class:`ModelFileError` naming the file."""
    import torch

    k = _kind(kind)
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"The {k.what} {p} does not exist. {where_to_put(k, p.name)}")
    size = p.stat().st_size
    if size == 0:
        raise ModelFileError(f"The {k.what} {p} is empty (0 bytes): the download did not finish. "
                             f"{where_to_put(k, p.name)}")
    if p.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file

            return load_file(str(p), device="cpu")
        except Exception as e:  # noqa: BLE001 - any reader failure means a bad file
            raise ModelFileError(f"The {k.what} {p} is not a readable safetensors file ({e}). "
                                 f"{where_to_put(k, p.name)}") from None
    try:
        with warnings.catch_warnings():  # torch warns about protocol 4 before refusing it
            warnings.filterwarnings("ignore", message=".*pickle protocol.*")
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        first = e
    if _pickle_problem(first):
        try:
            return torch.load(p, map_location="cpu", weights_only=False,
                              pickle_module=_restricted_pickle())
        except Exception as e:  # noqa: BLE001
            second = e
        if "Unsupported global" in str(second):  # a real pickle of Python objects
            if not trust_pickle:
                raise ModelFileError(
                    f"The {k.what} {p} stores Python objects besides its weights "
                    f"({_reason(second)}), which the safe loaders refuse because unpickling them "
                    f"can run code. Official files do not need this; if you trust this file, "
                    f"load it with trust_pickle=True. {where_to_put(k, p.name)}"
                ) from None
            try:
                return torch.load(p, map_location="cpu", weights_only=False)
            except Exception as e3:  # noqa: BLE001
                second = e3
        first = second
    raise ModelFileError(
        f"The {k.what} {p} ({size} bytes) is not a readable PyTorch checkpoint ({_reason(first)}): "
        f"it may be truncated or a different kind of file. Download it again. "
        f"{where_to_put(k, p.name)}"
    ) from None


def _pickle_problem(e: BaseException) -> bool:
    """True when weights_only refused the pickle itself (an opcode or a global), not the file."""
    text = str(e)
    return "Unsupported operand" in text or "Unsupported global" in text


_ALLOWED: dict[str, Any] | None = None


def _allowed_globals() -> dict[str, Any]:
    """torch's weights-only allow-list plus numpy scalars and dtypes: data types only."""
    global _ALLOWED
    if _ALLOWED is None:
        import collections

        import numpy as np
        import torch

        allowed: dict[str, Any] = {}
        try:
            from torch._weights_only_unpickler import _get_allowed_globals

            allowed.update(_get_allowed_globals())
        except Exception:  # noqa: BLE001 - private API; fall back to the essentials
            allowed.update({
                "collections.OrderedDict": collections.OrderedDict, "torch.Size": torch.Size,
                "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
                "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
                "torch.nn.parameter.Parameter": torch.nn.Parameter,
            })
        scalar = getattr(getattr(np, "core", np), "multiarray").scalar
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
            allowed[f"{mod}.scalar"] = scalar
        allowed["numpy.dtype"] = np.dtype
        for name in dir(getattr(np, "dtypes", object())):
            if name.endswith("DType"):
                allowed[f"numpy.dtypes.{name}"] = getattr(np.dtypes, name)
        _ALLOWED = allowed
    return _ALLOWED


def _restricted_pickle():
    """A ``pickle_module`` for torch.load whose unpickler constructs allow-listed types only."""
    import pickle
    import types

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            obj = _allowed_globals().get(f"{module}.{name}")
            if obj is None:
                raise pickle.UnpicklingError(f"Unsupported global: {module}.{name}")
            return obj

    def load(f, **kw):
        return Unpickler(f, **kw).load()

    return types.SimpleNamespace(Unpickler=Unpickler, load=load, __name__="restricted_pickle")


def _reason(e: BaseException) -> str:
    """The informative line of a torch.load failure (its messages open with boilerplate)."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0][:200] if lines else type(e).__name__)


def state_dict_of(obj: Any, path: str | os.PathLike, kind: str | ModelKind) -> dict[str, Any]:
    """The flat ``{name: tensor}`` inside a loaded checkpoint (``obj["state_dict"]`` or ``obj``)."""
    import torch

    k = _kind(kind)
    sd = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(sd, Mapping) or not any(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelFileError(f"The {k.what} {path} holds no state dict of tensors (found "
                             f"{type(obj).__name__}). {where_to_put(k, Path(path).name)}")
    return {str(key): v for key, v in sd.items()}


def describe_key_mismatch(path: str | os.PathLike, kind: str | ModelKind, *, missing: list[str],
                          unexpected: list[str], wrong_shape: list[str] = (), note: str = "") -> str:
    """Message for a checkpoint whose keys do not fit the model (lists a few of each)."""
    k = _kind(kind)

    def few(xs):
        xs = list(xs)
        return ", ".join(xs[:5]) + (f" ... (+{len(xs) - 5} more)" if len(xs) > 5 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {few(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {few(unexpected)}")
    if wrong_shape:
        parts.append(f"{len(wrong_shape)} key(s) with the wrong shape: {few(wrong_shape)}")
    return (f"The file {path} does not fit the {k.what} layout{note}: " + "; ".join(parts)
            + f". It is probably another model's file. {where_to_put(k, Path(path).name)}")
