"""The optional laion_clap backend: CLAP's audio tower built from laion_clap's own HTSAT.

For those who installed laion-clap (``pip install "comfyui-dance-any-beat[laion]"``; it requires
numpy<2, so it is never a default dependency) and as the reference the tests hold the
transformers tower (:mod:`.clap_branch`) to. ``laion_clap.CLAP_Module`` builds the whole model,
which downloads roberta-base on construction; here only ``clap_module/htsat.py`` (and its two
helpers) is imported, under a private package name so that ``laion_clap/__init__`` (which imports
wget and transformers) never runs, together with the ``model_configs/HTSAT-*.json`` it ships and
the audio projection in CLAP's layout (Linear(embed_dim, 512), ReLU, Linear(512, 512)). Its
state dict has the official ``audio_branch.*`` / ``audio_projection.*`` names.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFileError
from .clap_branch import EMBED_DIM, FUSION_2D, LogMel, MelFrontend, _ClapTower

_ALIAS = "_dabfusion_laion_clap_audio"


def _clap_module_dir() -> Path:
    spec = importlib.util.find_spec("laion_clap")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("The laion-clap package is not installed: pip install laion-clap, or "
                             "use the default transformers backend (it needs no laion-clap).")
    return Path(list(spec.submodule_search_locations)[0]) / "clap_module"


def htsat_module() -> types.ModuleType:
    """laion_clap's ``clap_module/htsat.py``, imported without running ``laion_clap/__init__``."""
    name = _ALIAS + ".htsat"
    if name in sys.modules:
        return sys.modules[name]
    folder = _clap_module_dir()
    try:
        pkg = types.ModuleType(_ALIAS)
        pkg.__path__ = [str(folder)]  # relative imports (.utils, .feature_fusion) resolve here
        pkg.__package__ = _ALIAS
        sys.modules[_ALIAS] = pkg
        spec = importlib.util.spec_from_file_location(name, folder / "htsat.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    except Exception:  # noqa: BLE001 - fall back to the package's normal import path
        for k in [k for k in sys.modules if k == _ALIAS or k.startswith(_ALIAS + ".")]:
            del sys.modules[k]
        return importlib.import_module("laion_clap.clap_module.htsat")


def model_config(amodel: str) -> dict:
    """laion_clap's own JSON config for an audio model name such as ``"HTSAT-base"``."""
    path = _clap_module_dir() / "model_configs" / f"{amodel}.json"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("HTSAT*.json"))
        raise ValueError(f"unknown CLAP audio model {amodel!r}; laion_clap ships {known}")
    return json.loads(path.read_text())


class LaionClapAudioEncoder(_ClapTower):
    """laion_clap's HTSAT + CLAP's audio projection; same interface as ``ClapAudioEncoder``.

    ``htsat``: keyword arguments for ``HTSAT_Swin_Transformer`` to build another size than the
    named ``amodel`` (the tests build small ones).
    """

    backend = "laion_clap"

    def __init__(self, amodel: str = "HTSAT-tiny", fusion_type: str | None = None,
                 joint_dim: int = EMBED_DIM, *, htsat: dict | None = None) -> None:
        super().__init__()
        if fusion_type is not None and fusion_type not in FUSION_2D:
            raise ValueError(f"fusion type {fusion_type!r} is not supported; use one of {FUSION_2D}")
        cfg = model_config("HTSAT-tiny-win-1536" if amodel == "HTSAT-tiny-win-1536" else
                           amodel if htsat is None else "HTSAT-tiny")
        self.amodel = amodel
        self.fusion_type = fusion_type
        self.audio_cfg = dict(cfg["audio_cfg"])
        c = self.audio_cfg
        self.frontend = MelFrontend(c["sample_rate"], c["window_size"], c["hop_size"], c["mel_bins"],
                                    float(c["fmin"]), float(c["fmax"]), c["clip_samples"],
                                    "htk" if fusion_type else "slaney")
        self.dim = int(joint_dim)
        mod = htsat_module()
        with warnings.catch_warnings():  # HTSAT calls torch.meshgrid without indexing=
            warnings.filterwarnings("ignore", message=".*meshgrid.*")
            if htsat is None:
                self.embed_dim = int(cfg["embed_dim"])
                self.audio_branch = mod.create_htsat_model(
                    types.SimpleNamespace(**c), fusion_type is not None, fusion_type or "None")
            else:
                kw = {"spec_size": 256, "patch_size": 4, "patch_stride": (4, 4), "window_size": 8,
                      "num_classes": c["class_num"], **htsat}
                self.audio_branch = mod.HTSAT_Swin_Transformer(
                    config=types.SimpleNamespace(**c), enable_fusion=fusion_type is not None,
                    fusion_type=fusion_type or "None", **kw)
                self.embed_dim = self.audio_branch.num_features
        self.audio_projection = nn.Sequential(
            nn.Linear(self.embed_dim, self.dim), nn.ReLU(), nn.Linear(self.dim, self.dim))
        self.logmel = LogMel(self.frontend) if fusion_type else None
        self.fingerprint = None
        self.source = None
        self.eval()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips [B, clip_samples] (already quantised and padded) -> unit embeddings [B, dim]."""
        if self.fusion_type is None:  # HTSAT computes its own log-mel (torchlibrosa)
            inputs = {"waveform": clips}
        else:  # CLAP's data code computes the fusion input: the log-mel stacked four times
            mel = self.logmel(clips)[:, 0]
            inputs = {"mel_fusion": mel[:, None].expand(-1, 4, -1, -1).contiguous(),
                      "longer": torch.zeros(clips.shape[0], 1, dtype=torch.bool, device=clips.device)}
        emb = self.audio_branch(inputs, mixup_lambda=None, device=clips.device)["embedding"]
        return F.normalize(self.audio_projection(emb), dim=-1)
