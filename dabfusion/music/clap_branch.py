"""LAION-CLAP's audio tower (HTSAT + audio projection) without its text tower: e_c's encoder.

``laion_clap.CLAP_Module`` builds the whole model, which downloads roberta-base from a hub on
construction and holds ~500 MB of text weights we never use. Here we build only the audio branch
from laion_clap's own code (``clap_module/htsat.py`` and the ``model_configs/HTSAT-*.json`` it
ships) and the audio projection in CLAP's layout (Linear(embed_dim, 512), ReLU, Linear(512, 512)),
and load just the ``audio_branch.*`` and ``audio_projection.*`` keys of an official checkpoint.

Official checkpoint layout (laion_clap/training/main.py): ``{"epoch", "name", "state_dict",
"optimizer"...}``; the state dict is the whole CLAP model's, keys prefixed ``module.`` when it was
trained under DDP. The audio model is detected from the weights: HTSAT-tiny (patch embedding
width 96, 630k-*.pt), HTSAT-base (128, the music_*.pt checkpoints) or HTSAT-large (256); 2-D
feature-fusion checkpoints (630k-*fusion*.pt) are detected from their ``mel_conv2d`` keys.

Input handling follows ``CLAP_Module.get_audio_embedding_from_data``: 48 kHz mono, quantised to
int16 and back (``int16_to_float32(float32_to_int16(x))``), clips of 10 s (480,000 samples);
shorter audio is repeated to fill 10 s and zero-padded ("repeatpad"). Where CLAP crops a random
10 s of longer audio ("rand_trunc"), we cut it into evenly spaced 10 s windows and average their
unit embeddings: deterministic, and it hears the whole piece. Fusion models get the same windows
(never more than 10 s each), so their "longer than 10 s" path with random chunks is never used;
their input is the 10 s log-mel stacked four times, as CLAP does for short audio.
Output: a unit-norm 512-d embedding per clip.

Importing ``laion_clap`` itself runs its ``__init__`` (which imports transformers and wget);
:func:`htsat_module` loads ``clap_module/htsat.py`` and its two helpers under a private package
name instead, so the audio tower needs neither.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import types
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFileError
from . import model_files as mf
from ._audio import mono_at, repeat_pad, window_starts

SAMPLE_RATE = 48000
CLIP_SAMPLES = 480000  # 10 s at 48 kHz, CLAP's max_len
EMBED_DIM = 512
_ALIAS = "_dabfusion_laion_clap_audio"
_PATCH_WIDTH_TO_MODEL = {96: "tiny", 128: "base", 256: "large"}
FUSION_2D = ("aff_2d", "iaff_2d", "daf_2d")


def _clap_module_dir() -> Path:
    spec = importlib.util.find_spec("laion_clap")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("The laion-clap package is not installed: pip install laion-clap "
                             "(the CLAP branch of the music encoder builds its audio model from it).")
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


def quantize_int16(x: np.ndarray) -> np.ndarray:
    """CLAP's waveform quantisation: clip to [-1, 1], to int16 (x * 32767), back to float32."""
    q = (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
    return (q / 32767.0).astype(np.float32)


def clap_clips(wave48: np.ndarray, clip_samples: int = CLIP_SAMPLES) -> Iterator[np.ndarray]:
    """The 10 s model inputs for mono 48 kHz audio, quantised and repeat-padded, one by one."""
    for s in window_starts(len(wave48), clip_samples):
        yield repeat_pad(quantize_int16(wave48[s: s + clip_samples]), clip_samples)


class ClapAudioEncoder(mf.FileWeights, nn.Module):
    """HTSAT audio branch + CLAP's audio projection; ``forward`` takes 10 s clips at 48 kHz."""

    name = "clap"
    sample_rate = SAMPLE_RATE
    dim = EMBED_DIM

    def __init__(self, amodel: str = "HTSAT-tiny", fusion_type: str | None = None,
                 joint_dim: int = EMBED_DIM) -> None:
        super().__init__()
        if fusion_type is not None and fusion_type not in FUSION_2D:
            raise ValueError(f"fusion type {fusion_type!r} is not supported; use one of {FUSION_2D}")
        cfg = model_config(amodel)
        self.amodel = amodel
        self.fusion_type = fusion_type
        self.audio_cfg = dict(cfg["audio_cfg"])
        self.embed_dim = int(cfg["embed_dim"])
        self.dim = int(joint_dim)
        self.clip_samples = int(self.audio_cfg["clip_samples"])
        htsat = htsat_module()
        with warnings.catch_warnings():  # HTSAT calls torch.meshgrid without indexing=
            warnings.filterwarnings("ignore", message=".*meshgrid.*")
            self.audio_branch = htsat.create_htsat_model(
                types.SimpleNamespace(**self.audio_cfg), fusion_type is not None, fusion_type or "None")
        self.audio_projection = nn.Sequential(
            nn.Linear(self.embed_dim, self.dim), nn.ReLU(), nn.Linear(self.dim, self.dim))
        self.fingerprint: str | None = None  # of the loaded weights; None = random weights
        self.source: str | None = None
        self.eval()

    def _log_mel(self, clips: torch.Tensor) -> torch.Tensor:
        """[B, S] -> [B, T, mel_bins]: the log-mel CLAP's data code computes for fusion models."""
        import torchaudio

        c = self.audio_cfg
        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=c["sample_rate"], n_fft=c["window_size"], win_length=c["window_size"],
            hop_length=c["hop_size"], center=True, pad_mode="reflect", power=2.0, norm=None,
            n_mels=c["mel_bins"], f_min=c["fmin"], f_max=c["fmax"],
        ).to(clips.device)(clips)
        return torchaudio.transforms.AmplitudeToDB(top_db=None)(mel).transpose(1, 2)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips [B, clip_samples] (already quantised and padded) -> unit embeddings [B, dim]."""
        if self.fusion_type is None:
            inputs = {"waveform": clips}
        else:
            mel = self._log_mel(clips)
            inputs = {"mel_fusion": mel[:, None].expand(-1, 4, -1, -1).contiguous(),
                      "longer": torch.zeros(clips.shape[0], 1, dtype=torch.bool, device=clips.device)}
        emb = self.audio_branch(inputs, mixup_lambda=None, device=clips.device)["embedding"]
        return F.normalize(self.audio_projection(emb), dim=-1)

    @torch.no_grad()
    def embed_clips(self, clips: Sequence[np.ndarray], batch_size: int = 4) -> np.ndarray:
        """Unit embeddings [n, dim] of mono 48 kHz clips of at most 10 s each (repeat-padded)."""
        device = next(self.parameters()).device
        out = []
        for i in range(0, len(clips), batch_size):
            batch = [repeat_pad(quantize_int16(np.asarray(c, np.float32)[: self.clip_samples]),
                                self.clip_samples) for c in clips[i: i + batch_size]]
            x = torch.from_numpy(np.stack(batch)).to(device)
            out.append(self(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def embed(self, wave: Any, sr: int, batch_size: int = 4) -> np.ndarray:
        """One unit embedding [dim] for audio of any length, rate and channel count.

        Longer than 10 s: the mean of evenly spaced 10 s windows, renormalised; the windows are
        computed ``batch_size`` at a time, so memory does not grow with the length of the audio.
        """
        y = mono_at(wave, sr, self.sample_rate)
        total = np.zeros(self.dim, np.float64)
        batch: list[np.ndarray] = []
        for clip in clap_clips(y, self.clip_samples):
            batch.append(clip)
            if len(batch) == batch_size:
                total += self.embed_clips(batch, batch_size).sum(0)
                batch = []
        if batch:
            total += self.embed_clips(batch, batch_size).sum(0)
        return (total / max(np.linalg.norm(total), 1e-12)).astype(np.float32)

    def identity(self) -> dict:
        """What an adapter trained on this encoder records (to refuse other weights later)."""
        return {"kind": "clap", "amodel": self.amodel, "fusion": self.fusion_type,
                "dim": self.dim, "sample_rate": self.sample_rate, **self.weights_record()}


# --------------------------------------------------------------------------- checkpoints


def audio_state_dict(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The audio tower's keys of a CLAP state dict, without ``module.``; text keys dropped."""
    out = {}
    for k, v in state.items():
        key = k[7:] if k.startswith("module.") else k
        if key.startswith(("audio_branch.", "audio_projection.")):
            out[key] = v
    return out


def detect_layout(audio: dict[str, torch.Tensor], path: str | os.PathLike) -> tuple[str, str | None]:
    """(amodel, fusion_type) from the weights: patch width -> tiny/base/large, STFT size, fusion."""
    pe = audio.get("audio_branch.patch_embed.proj.weight")
    if pe is None:
        raise ModelFileError(mf.describe_key_mismatch(
            path, mf.CLAP, missing=["audio_branch.patch_embed.proj.weight"], unexpected=[],
            note=" (no HTSAT audio branch: PANN-based CLAP checkpoints are not supported)"))
    size = _PATCH_WIDTH_TO_MODEL.get(int(pe.shape[0]))
    if size is None:
        raise ModelFileError(f"The CLAP checkpoint {path} has an HTSAT patch width of {pe.shape[0]}, "
                             f"which matches none of HTSAT-tiny/base/large. {mf.where_to_put(mf.CLAP)}")
    amodel = f"HTSAT-{size}"
    stft = audio.get("audio_branch.spectrogram_extractor.stft.conv_real.weight")
    if size == "tiny" and stft is not None and int(stft.shape[-1]) == 1536:
        amodel = "HTSAT-tiny-win-1536"
    fusion = None
    if "audio_branch.patch_embed.mel_conv2d.weight" in audio:
        keys = " ".join(audio)
        fusion = ("iaff_2d" if "patch_embed.fusion_model.local_att2." in keys else
                  "aff_2d" if "patch_embed.fusion_model.local_att." in keys else "daf_2d")
    elif any(k.startswith("audio_branch.mel_conv1d.") for k in audio) or int(pe.shape[1]) != 1:
        raise ModelFileError(f"The CLAP checkpoint {path} uses 1-D or channel-map feature fusion, "
                             f"which CLAP's own inference does not support either; use a 2-D "
                             f"fusion or a non-fusion checkpoint. {mf.where_to_put(mf.CLAP)}")
    return amodel, fusion


def load_clap_audio(name_or_path: str | os.PathLike | None = None,
                    search_dirs: Iterable[str | os.PathLike] = (), *,
                    device: str | torch.device = "cpu", trust_pickle: bool = False) -> ClapAudioEncoder:
    """Build the audio tower for a LAION-CLAP checkpoint and load its audio keys strictly.

    Raises :class:`ModelFileError` (naming the file, the ``clap`` model folder and the Hugging
    Face release) for a missing, unreadable or non-CLAP file, or one whose audio keys do not fit.
    """
    path = mf.resolve_model_file(mf.CLAP, name_or_path, search_dirs)
    state = mf.state_dict_of(mf.load_checkpoint(path, mf.CLAP, trust_pickle=trust_pickle), path, mf.CLAP)
    audio = audio_state_dict(state)
    if not audio:
        raise ModelFileError(mf.describe_key_mismatch(
            path, mf.CLAP, missing=["audio_branch.*", "audio_projection.*"],
            unexpected=sorted(state)[:20], note=" (it has no CLAP audio keys at all)"))
    amodel, fusion = detect_layout(audio, path)
    proj = audio.get("audio_projection.2.weight")
    model = ClapAudioEncoder(amodel, fusion, joint_dim=int(proj.shape[0]) if proj is not None else EMBED_DIM)
    return mf.load_strict(model, audio, path, mf.CLAP, device=device,
                          note=f" (read as {amodel}{', fusion ' + fusion if fusion else ''})")


def save_official_layout(model: ClapAudioEncoder, path: str | os.PathLike, *,
                         text_stub: bool = True) -> Path:
    """Write ``model`` as LAION-CLAP's training code saves a checkpoint.

    ``{"epoch", "name", "state_dict": {"module.<key>": tensor}, "optimizer"}`` — with small stand-ins
    for the text tower's keys (``text_branch.*``, ``text_projection.*``, ``logit_scale_*``,
    ``audio_transform.*``) when ``text_stub``, so that loaders prove they skip them. Like the
    released files it is pickled with protocol 4 and holds numpy scalars, which
    ``torch.load(weights_only=True)`` refuses (see :mod:`.model_files`; where exactly the real
    files keep their numpy scalars is not known here, so ours sit in the optimizer state). Used by
    the tests (which cannot download the real files) and to export a modified audio tower.
    """
    sd = {f"module.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if text_stub:
        d = model.dim
        sd.update({
            "module.text_branch.embeddings.word_embeddings.weight": torch.zeros(8, 16),
            "module.text_branch.encoder.layer.0.attention.self.query.weight": torch.zeros(16, 16),
            "module.text_transform.sequential.0.weight": torch.zeros(d, d),
            "module.text_projection.0.weight": torch.zeros(d, 16),
            "module.audio_transform.sequential.0.weight": torch.zeros(d, d),
            "module.audio_transform.sequential.0.bias": torch.zeros(d),
            "module.logit_scale_a": torch.tensor(2.659),
            "module.logit_scale_t": torch.tensor(2.659),
        })
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 15, "name": f"dabfusion-export-{model.amodel}", "state_dict": sd,
                "optimizer": {"state": {}, "param_groups": [
                    {"lr": np.float64(1e-4), "betas": (0.9, 0.99), "params": [0, 1]}]}},
               path, pickle_protocol=4)
    return path
