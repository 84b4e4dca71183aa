"""Beat This! (Foscarin, Schlüter & Widmer, ISMIR 2024) as an optional beat tracker, loaded from a local file.

The ``beat_this`` package (PyPI ``beat-this``, MIT; ``pip install "comfyui-dance-any-beat[beat_this]"``)
downloads its checkpoints from the authors' cloud when given a short name such as ``final0``; we
never let it. :func:`find_beat_this_checkpoint` finds a ``.ckpt`` in a local folder
(``ComfyUI/models/beat_this/``), :func:`load_beat_this` reads it with our safe loader and builds
the package's own model class, and :func:`beat_this_beats` runs the package's own preprocessing,
chunked inference and peak-picking on it.

Official file layout (the released ``final0.ckpt`` ... ``small2.ckpt``; see the package's
``launch_scripts/clean_checkpoints.py`` and ``beat_this.inference.load_model``): a PyTorch
Lightning checkpoint stripped to four keys,

* ``state_dict``: the weights of the training ``LightningModule``, whose ``BeatThis`` network is its
  attribute ``model``, so every key starts with ``model.`` (a checkpoint of a ``torch.compile``\\ d
  model has ``_orig_mod.`` after it, which the package strips and so do we);
* ``hyper_parameters``: the ``LightningModule``'s arguments, a plain dict; those that are
  ``BeatThis.__init__`` parameters (``spect_dim``, ``transformer_dim``, ``ff_mult``, ``n_layers``,
  ``head_dim``, ``stem_dim``, ``dropout``, ``sum_head``, ``partial_transformers``) build the model,
  and ``fps`` (50) is the frame rate of its output;
* ``datamodule_hyper_parameters`` and ``pytorch-lightning_version``, which inference ignores.

It holds only tensors, dicts, numbers and strings, so ``torch.load(weights_only=True)`` reads it
(the package does the same). The main model (``final*``) has about 20 M parameters (78 MB files),
the small one (``small*``, ``transformer_dim=128``) 8.1 MB files.

Input: any rate, mono or multichannel (averaged), resampled to 22.05 kHz with soxr as the package
does; a 128-band log-mel spectrogram at 50 frames/s; the network runs on chunks of 1500 frames
(30 s) that overlap by 6 frames on each side. Output: beat and downbeat times in seconds from the
package's "minimal" postprocessing (peaks above probability 0.5 within +-70 ms, adjacent peaks
merged, each downbeat moved to its nearest beat); no DBN (that would need madmom).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DabFusionError, ModelFileError
from . import model_files as mf
from ._audio import check_rate, to_mono_1d

#: the package's fixed input rate and frame rate (``beat_this.preprocessing.LogMelSpect``)
SAMPLE_RATE = 22050
FPS = 50
#: chunking of ``beat_this.inference.Spect2Frames`` (frames): 30 s chunks, 6 frames discarded per side
CHUNK_FRAMES = 1500
BORDER_FRAMES = 6

BEAT_THIS = mf.ModelKind(
    key="beat_this",
    folder="beat_this",
    files=(
        "final0.ckpt", "final1.ckpt", "final2.ckpt",
        "beat_this-final0.ckpt", "beat_this-final1.ckpt", "beat_this-final2.ckpt",
        "small0.ckpt", "small1.ckpt", "small2.ckpt",
        "beat_this-small0.ckpt", "beat_this-small1.ckpt", "beat_this-small2.ckpt",
    ),
    source=("the Beat This! model release listed under 'Available models' in the README of "
            "github.com/CPJKU/beat_this (final0.ckpt: the main model, about 78 MB, trained on all "
            "its data except GTZAN; small0.ckpt: the smaller one, 8.1 MB). The package's own cache "
            "names them beat_this-final0.ckpt; either name works"),
    what="Beat This! checkpoint",
)


class BeatThisUnavailable(DabFusionError, ImportError):
    """The optional ``beat_this`` package is not installed."""


def _package():
    """The ``beat_this`` modules we use, or an error that says how to install them."""
    try:
        from beat_this import inference
        from beat_this.model.beat_tracker import BeatThis
        from beat_this.model.postprocessor import Postprocessor
        from beat_this.preprocessing import LogMelSpect
    except ImportError as e:
        raise BeatThisUnavailable(
            f"The Beat This! tracker needs the optional package beat-this ({e}). Install it with "
            f'pip install "comfyui-dance-any-beat[beat_this]" (or pip install beat-this), '
            f"then put its checkpoint in ComfyUI/models/beat_this/."
        ) from None
    return inference, BeatThis, Postprocessor, LogMelSpect


def find_beat_this_checkpoint(folder: str | os.PathLike | Iterable[str | os.PathLike],
                              name: str | os.PathLike | None = None) -> Path:
    """The Beat This! ``.ckpt`` to load from ``folder`` (one folder or several, searched in order).

    ``name`` may be a path to a file or a file name inside the folder(s). Without it, the first
    official name found (``final0.ckpt`` first, see :data:`BEAT_THIS`) wins, else the first
    ``*.ckpt`` in sorted order. Never downloads: a missing folder or file raises
    :class:`ModelFileError` naming the folder(s) and what to put there.
    """
    folders = [folder] if isinstance(folder, (str, os.PathLike)) else list(folder)
    dirs = [Path(d).expanduser() for d in folders]
    if name is not None and str(name).strip():
        return mf.resolve_model_file(BEAT_THIS, name, dirs)
    shown = ", ".join(str(d) for d in dirs) or "no folders"
    existing = [d for d in dirs if d.is_dir()]
    if not existing:
        raise ModelFileError(f"The Beat This! model folder {shown} does not exist. "
                             f"{mf.where_to_put(BEAT_THIS)}")
    for fname in BEAT_THIS.files:
        for d in existing:
            if (d / fname).is_file():
                return d / fname
    for d in existing:
        found = sorted(p for p in d.glob("*.ckpt") if p.is_file())
        if found:
            return found[0]
    raise ModelFileError(f"No Beat This! checkpoint (*.ckpt) was found in {shown}. "
                         f"{mf.where_to_put(BEAT_THIS)}")


def _strip(key: str) -> str:
    """Official key -> key of the package's ``BeatThis`` (drop ``model.`` and ``_orig_mod.``)."""
    key = key.replace("_orig_mod.", "")
    return key[len("model."):] if key.startswith("model.") else key


def _model_hparams(hparams: Mapping[str, Any], BeatThis: type) -> dict[str, Any]:
    """The hyper-parameters that are ``BeatThis.__init__`` arguments (as the package's load_model)."""
    allowed = set(inspect.signature(BeatThis).parameters)
    return {k: v for k, v in hparams.items() if k in allowed}


def load_beat_this(path: str | os.PathLike, device: Any = "cpu", *, trust_pickle: bool = False):
    """Load an official Beat This! checkpoint into the package's ``BeatThis`` model, strictly.

    Returns the ``beat_this.model.beat_tracker.BeatThis`` module in eval mode on ``device``, with
    ``fingerprint`` (sha256 of the weights), ``source`` (file name), ``hparams`` (the model's
    constructor arguments) and ``fps`` set. A file that is missing, not a checkpoint, lacks
    ``state_dict`` / ``hyper_parameters``, or whose keys or shapes do not fit raises
    :class:`ModelFileError` naming the file and where the official one comes from.
    """
    _, BeatThis, _, _ = _package()
    p = Path(path)
    ckpt = mf.load_checkpoint(p, BEAT_THIS, trust_pickle=trust_pickle)
    if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        found = sorted(map(str, ckpt))[:8] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise ModelFileError(
            f"The file {p} is not a Beat This! checkpoint: it needs the Lightning keys 'state_dict' "
            f"and 'hyper_parameters' (found {found}). {mf.where_to_put(BEAT_THIS, p.name)}")
    hp = ckpt["hyper_parameters"]
    if not isinstance(hp, Mapping):
        raise ModelFileError(f"The file {p} has hyper_parameters of type {type(hp).__name__}, not a "
                             f"dict. {mf.where_to_put(BEAT_THIS, p.name)}")
    state = mf.state_dict_of(ckpt, p, BEAT_THIS)
    hparams = _model_hparams(hp, BeatThis)
    try:
        model = BeatThis(**hparams)
    except Exception as e:  # noqa: BLE001 - any bad hyper-parameter means a wrong file
        raise ModelFileError(f"The hyper_parameters of {p} ({hparams}) do not build a Beat This! "
                             f"model ({type(e).__name__}: {e}). {mf.where_to_put(BEAT_THIS, p.name)}"
                             ) from None
    mine = {_strip(k): v for k, v in state.items()}
    model = mf.load_strict(model, mine, p, BEAT_THIS, device=device, shown=lambda k: "model." + k)
    model.hparams = hparams
    model.fps = int(hp.get("fps", FPS))
    return model


def beat_this_identity(model: Any) -> dict[str, Any]:
    """What a loaded model is, for caches and reports: file, weights fingerprint, hyper-parameters."""
    return {"kind": "beat_this", "file": getattr(model, "source", None),
            "fingerprint": getattr(model, "fingerprint", None), "fps": int(getattr(model, "fps", FPS)),
            "hparams": dict(getattr(model, "hparams", {}) or {})}


def beat_this_beats(wave: Any, sr: Any, model: Any, *,
                    device: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Beat and downbeat times (seconds, float64, sorted) of ``wave`` by a loaded Beat This! ``model``.

    ``wave``: numpy/torch ``[S]``, ``[C, S]`` or ``[1, C, S]`` at ``sr`` Hz. Runs the package's
    ``LogMelSpect``, ``split_predict_aggregate`` (30 s chunks) and ``Postprocessor("minimal")``
    on ``model`` (from :func:`load_beat_this`); nothing is downloaded. Silence or audio shorter
    than one frame gives empty arrays.
    """
    import soxr
    import torch

    inference, _, Postprocessor, LogMelSpect = _package()
    rate = check_rate(sr)
    mono = to_mono_1d(wave)
    empty = (np.zeros(0, np.float64), np.zeros(0, np.float64))
    if mono.size == 0:
        return empty
    if rate != SAMPLE_RATE:  # as beat_this.inference.Audio2Frames.signal2spect does
        mono = soxr.resample(mono, in_rate=rate, out_rate=SAMPLE_RATE)
    if mono.size < 2:
        return empty
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    fps = int(getattr(model, "fps", FPS))
    with torch.inference_mode():
        spect = LogMelSpect(device=dev)(torch.as_tensor(np.asarray(mono, np.float32), device=dev))
        pred = inference.split_predict_aggregate(spect=spect, chunk_size=CHUNK_FRAMES,
                                                 border_size=BORDER_FRAMES,
                                                 overlap_mode="keep_first", model=model)
    beat = pred["beat"].float()
    downbeat = pred["downbeat"].float()
    beats, downbeats = Postprocessor(type="minimal", fps=fps)(beat, downbeat)
    beats = np.sort(np.asarray(beats, dtype=np.float64))
    downbeats = np.sort(np.asarray(downbeats, dtype=np.float64))
    return beats, downbeats
