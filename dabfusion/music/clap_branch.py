"""CLAP's audio tower (HTSAT + audio projection) through ``transformers``: e_c's encoder.

The tower is ``transformers.ClapAudioModelWithProjection`` (ComfyUI already has transformers), so
the ``laion_clap`` package — which requires numpy<2 and pulls wandb, webdataset and wget — is not
needed at run time. Two kinds of weights load into it:

- **LAION-CLAP checkpoints** (``.pt``, e.g. ``music_audioset_epoch_15_esc_90.14.pt``). Layout
  (laion_clap/training/main.py): ``{"epoch", "name", "state_dict", "optimizer"...}``; the state
  dict is the whole CLAP model's, keys prefixed ``module.`` when trained under DDP. Only its
  ``audio_branch.*`` and ``audio_projection.*`` keys are read and renamed onto the transformers
  model by :func:`laion_to_hf` (the architecture — patch width, depths, heads, window — is read
  from the weights). HTSAT-tiny (patch width 96, 630k-*.pt), -base (128, the music_*.pt files),
  -large (256) and 2-D feature-fusion checkpoints (630k-*fusion*.pt) are named from the weights.
- **Hugging Face CLAP folders** (``config.json`` + ``model.safetensors``, a ``ClapModel`` such as
  a music CLAP, or a ``ClapAudioModelWithProjection``); ``preprocessor_config.json`` beside it,
  when present, gives the mel front end (otherwise CLAP's: 48 kHz, 1024-point STFT, hop 480,
  64 mel bins, 50-14000 Hz).

The text tower is never built. ``laion_clap``'s own HTSAT stays available for those who installed
it (``pip install "comfyui-dance-any-beat[laion]"``): ``load_clap_audio(..., backend="laion_clap")``
(see :mod:`._clap_laion`); the tests check that both give the same embedding for the same file.

Input handling follows ``CLAP_Module.get_audio_embedding_from_data``: 48 kHz mono, quantised to
int16 and back, clips of 10 s (480,000 samples); shorter audio is repeated to fill 10 s and
zero-padded ("repeatpad"). Where CLAP crops a random 10 s of longer audio ("rand_trunc"), we cut
it into evenly spaced 10 s windows and average their unit embeddings: deterministic, and it hears
the whole piece. The log-mel front end is computed here in torch, as LAION-CLAP computes it:
non-fusion models use torchlibrosa's (Slaney mel filters, inside HTSAT); fusion models the
torchaudio one of CLAP's data pipeline (HTK mel filters, no norm), with every clip "not longer"
than 10 s, so the fusion block (only used for longer clips) never runs. Output: a unit-norm
512-d embedding per clip.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
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
FUSION_2D = ("aff_2d", "iaff_2d", "daf_2d")
BACKENDS = ("transformers", "laion_clap")
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HF_MODEL_TYPES = ("clap", "clap_audio_model")
HF_FOLDER_NOTE = ("A Hugging Face CLAP folder (config.json + model.safetensors, e.g. a music CLAP) "
                  "in the same models/clap/ folder works too.")

# HTSAT's sizes as laion_clap's create_htsat_model builds them (spec 256, patch 4, window 8)
HTSAT_SIZES: dict[str, dict[str, Any]] = {
    "HTSAT-tiny": {"width": 96, "depths": (2, 2, 6, 2), "heads": (4, 8, 16, 32)},
    "HTSAT-base": {"width": 128, "depths": (2, 2, 12, 2), "heads": (4, 8, 16, 32)},
    "HTSAT-large": {"width": 256, "depths": (2, 2, 12, 2), "heads": (4, 8, 16, 32)},
}
_PATCH_WIDTH_TO_MODEL = {v["width"]: k for k, v in HTSAT_SIZES.items()}


# --------------------------------------------------------------------------- the mel front end


@dataclass(frozen=True)
class MelFrontend:
    """CLAP's log-mel settings (laion_clap's ``audio_cfg``; HF's ``preprocessor_config.json``).

    ``mel_scale``: ``"slaney"`` (torchlibrosa inside HTSAT: Slaney-normalised filters) for
    non-fusion models, ``"htk"`` (torchaudio in CLAP's data code: HTK filters, no norm) for
    fusion models.
    """

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    hop: int = 480
    mel_bins: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0
    clip_samples: int = CLIP_SAMPLES
    mel_scale: str = "slaney"


def mel_filters(fe: MelFrontend) -> np.ndarray:
    """[n_fft // 2 + 1, mel_bins] float32 mel filter bank (librosa's, as torchlibrosa builds it)."""
    import librosa

    if fe.mel_scale not in ("slaney", "htk"):
        raise ValueError(f"mel_scale must be 'slaney' or 'htk', not {fe.mel_scale!r}")
    htk = fe.mel_scale == "htk"
    fb = librosa.filters.mel(sr=fe.sample_rate, n_fft=fe.n_fft, n_mels=fe.mel_bins, fmin=fe.fmin,
                             fmax=fe.fmax, htk=htk, norm=None if htk else "slaney")
    return np.ascontiguousarray(fb.T, dtype=np.float32)


class LogMel(nn.Module):
    """Waveforms [B, S] -> log-mel [B, 1, T, mel_bins] (power STFT, mel, 10 log10, amin 1e-10)."""

    def __init__(self, fe: MelFrontend) -> None:
        super().__init__()
        self.fe = fe
        # not persistent: derived from the settings, so never part of a state dict or fingerprint
        self.register_buffer("window", torch.hann_window(fe.n_fft, periodic=True), persistent=False)
        self.register_buffer("filters", torch.from_numpy(mel_filters(fe)), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave.float(), self.fe.n_fft, hop_length=self.fe.hop, win_length=self.fe.n_fft,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True)
        power = spec.real.square() + spec.imag.square()            # [B, freq, T]
        mel = torch.matmul(power.transpose(1, 2), self.filters)    # [B, T, mel]
        return (10.0 * torch.log10(torch.clamp(mel, min=1e-10)))[:, None]


def quantize_int16(x: np.ndarray) -> np.ndarray:
    """CLAP's waveform quantisation: clip to [-1, 1], to int16 (x * 32767), back to float32."""
    q = (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
    return (q / 32767.0).astype(np.float32)


def clap_clips(wave48: np.ndarray, clip_samples: int = CLIP_SAMPLES) -> Iterator[np.ndarray]:
    """The 10 s model inputs for mono 48 kHz audio, quantised and repeat-padded, one by one."""
    for s in window_starts(len(wave48), clip_samples):
        yield repeat_pad(quantize_int16(wave48[s: s + clip_samples]), clip_samples)


# --------------------------------------------------------------------------- configurations


def hf_audio_config(width: int = 96, depths: Sequence[int] = (2, 2, 6, 2),
                    heads: Sequence[int] = (4, 8, 16, 32), *, window: int = 8, spec_size: int = 256,
                    mel_bins: int = 64, joint_dim: int = EMBED_DIM, fusion_type: str | None = None,
                    num_classes: int = 527) -> Any:
    """A ``transformers.ClapAudioConfig`` for an HTSAT of these sizes (laion_clap's defaults)."""
    from transformers import ClapAudioConfig

    return ClapAudioConfig(
        patch_embeds_hidden_size=int(width), depths=[int(d) for d in depths],
        num_attention_heads=[int(h) for h in heads], window_size=int(window),
        spec_size=int(spec_size), num_mel_bins=int(mel_bins), patch_size=4, patch_stride=[4, 4],
        hidden_size=int(width) * 2 ** (len(depths) - 1), projection_dim=int(joint_dim),
        enable_fusion=fusion_type == "aff_2d", fusion_type="aff_2d" if fusion_type == "aff_2d" else None,
        num_classes=int(num_classes), hidden_act="gelu", projection_hidden_act="relu",
        qkv_bias=True, mlp_ratio=4.0, layer_norm_eps=1e-5, flatten_patch_embeds=True,
        enable_patch_layer_norm=True, patch_embed_input_channels=1, aff_block_r=4,
        num_hidden_layers=len(depths), drop_path_rate=0.0, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def tiny_hf_config(**kw: Any) -> Any:
    """A small HTSAT (patch width 16, one or two blocks a stage) for tests and install checks."""
    args = {"width": 16, "depths": (2, 2, 1, 1), "heads": (1, 2, 2, 4), **kw}
    return hf_audio_config(args.pop("width"), args.pop("depths"), args.pop("heads"), **args)


def amodel_name(width: int, depths: Sequence[int], heads: Sequence[int], n_fft: int = 1024) -> str:
    """laion_clap's name for an HTSAT of these sizes ("HTSAT-base"...), else a descriptive one."""
    name = _PATCH_WIDTH_TO_MODEL.get(int(width))
    if name is not None and tuple(HTSAT_SIZES[name]["depths"]) == tuple(depths) \
            and tuple(HTSAT_SIZES[name]["heads"]) == tuple(heads):
        if name == "HTSAT-tiny" and n_fft == 1536:
            return "HTSAT-tiny-win-1536"
        return name
    return f"HTSAT-w{int(width)}-d{'.'.join(map(str, depths))}-h{'.'.join(map(str, heads))}"


def _amodel_config(amodel: str) -> tuple[dict, int]:
    base, n_fft = amodel, 1024
    if amodel == "HTSAT-tiny-win-1536":
        base, n_fft = "HTSAT-tiny", 1536
    if base not in HTSAT_SIZES:
        known = sorted([*HTSAT_SIZES, "HTSAT-tiny-win-1536"])
        raise ValueError(f"unknown CLAP audio model {amodel!r}; known: {known}")
    return HTSAT_SIZES[base], n_fft


# --------------------------------------------------------------------------- the tower


class _ClapTower(mf.FileWeights, nn.Module):
    """What every CLAP audio tower shares: clip handling, ``embed``, ``identity``."""

    name = "clap"
    sample_rate = SAMPLE_RATE
    dim = EMBED_DIM
    amodel: str
    fusion_type: str | None
    frontend: MelFrontend
    backend = "transformers"

    @property
    def clip_samples(self) -> int:
        return int(self.frontend.clip_samples)

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


class ClapAudioEncoder(_ClapTower):
    """``transformers.ClapAudioModelWithProjection`` + CLAP's log-mel; ``forward`` takes 10 s clips.

    ``ClapAudioEncoder("HTSAT-base")`` builds laion_clap's HTSAT-base with random weights;
    :meth:`from_hf_config` any HTSAT a ``ClapAudioConfig`` describes. :func:`load_clap_audio`
    builds and loads one from a file.
    """

    def __init__(self, amodel: str = "HTSAT-tiny", fusion_type: str | None = None,
                 joint_dim: int = EMBED_DIM, *, config: Any = None,
                 frontend: MelFrontend | None = None) -> None:
        super().__init__()
        from transformers import ClapAudioModelWithProjection

        if fusion_type is not None and fusion_type not in FUSION_2D:
            raise ValueError(f"fusion type {fusion_type!r} is not supported; use one of {FUSION_2D}")
        if config is None:
            size, n_fft = _amodel_config(amodel)
            config = hf_audio_config(size["width"], size["depths"], size["heads"],
                                     joint_dim=joint_dim, fusion_type=fusion_type)
            frontend = frontend or MelFrontend(n_fft=n_fft)
        frontend = frontend or MelFrontend()
        if frontend.mel_bins != int(config.num_mel_bins):
            raise ValueError(f"the mel front end has {frontend.mel_bins} bins, the model "
                             f"{config.num_mel_bins}")
        self.frontend = replace(frontend, mel_scale="htk" if fusion_type else frontend.mel_scale)
        self.amodel = amodel
        self.fusion_type = fusion_type
        self.dim = int(config.projection_dim)
        self.config = config
        self.logmel = LogMel(self.frontend)
        self.model = ClapAudioModelWithProjection(config)
        self.extra_official: dict[str, torch.Tensor] = {}  # loaded keys the tower does not use
        self.fingerprint = None  # of the loaded weights; None = random weights
        self.source = None
        self.eval()

    @classmethod
    def from_hf_config(cls, config: Any, frontend: MelFrontend | None = None, *,
                       fusion_type: str | None = None, amodel: str | None = None) -> "ClapAudioEncoder":
        """A tower for any ``ClapAudioConfig`` (random weights until loaded)."""
        fe = frontend or MelFrontend(mel_bins=int(config.num_mel_bins))
        if fusion_type is None and getattr(config, "enable_fusion", False):
            fusion_type = config.fusion_type if config.fusion_type in FUSION_2D else "aff_2d"
        name = amodel or amodel_name(config.patch_embeds_hidden_size, config.depths,
                                     config.num_attention_heads, fe.n_fft)
        return cls(name, fusion_type, config=config, frontend=fe)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips [B, clip_samples] (already quantised and padded) -> unit embeddings [B, dim]."""
        mel = self.logmel(clips)
        kw = {}
        if self.config.enable_fusion:  # every clip is "not longer than 10 s": global branch only
            kw["is_longer"] = torch.zeros(clips.shape[0], 1, dtype=torch.bool, device=clips.device)
        out = self.model(input_features=mel, **kw)
        return F.normalize(out.audio_embeds, dim=-1)


# --------------------------------------------------------------------------- LAION <-> HF names

_HF = "audio_model.audio_encoder."
# (LAION name without "audio_branch.", HF name) as regular expressions; qkv is split separately
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"bn0\.(.+)", _HF + r"batch_norm.\1"),
    (r"patch_embed\.(proj|norm|mel_conv2d)\.(.+)", _HF + r"patch_embed.\1.\2"),
    (r"patch_embed\.fusion_model\.((?:local|global)_att\..+)", _HF + r"patch_embed.fusion_model.\1"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.norm1\.(.+)", _HF + r"layers.\1.blocks.\2.layernorm_before.\3"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table",
     _HF + r"layers.\1.blocks.\2.attention.self.relative_position_bias_table"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.attn\.proj\.(.+)", _HF + r"layers.\1.blocks.\2.attention.output.dense.\3"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.norm2\.(.+)", _HF + r"layers.\1.blocks.\2.layernorm_after.\3"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.(.+)", _HF + r"layers.\1.blocks.\2.intermediate.dense.\3"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.(.+)", _HF + r"layers.\1.blocks.\2.output.dense.\3"),
    (r"layers\.(\d+)\.downsample\.(reduction|norm)\.(.+)", _HF + r"layers.\1.downsample.\2.\3"),
    (r"norm\.(.+)", _HF + r"norm.\1"),
)
_QKV = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)")
# official keys the tower does not use: the STFT and mel weights (recomputed from the settings),
# the AudioSet classifier, Swin's precomputed masks and indices (rebuilt by transformers)
_UNUSED = re.compile(r"(spectrogram_extractor|logmel_extractor|tscam_conv|head)\.|"
                     r".*\.attn_mask$|.*\.relative_position_index$")


def _laion_name_to_hf(key: str) -> str | None:
    """HF name of one LAION audio key without prefix (qkv and unused keys: None)."""
    for pat, rep in _RENAMES:
        m = re.fullmatch(pat, key)
        if m:
            return m.expand(rep)
    return None


_HF_BACK: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(re.escape(_HF) + r"batch_norm\.(.+)"), r"bn0.\1"),
    (re.compile(re.escape(_HF) + r"patch_embed\.(.+)"), r"patch_embed.\1"),
    (re.compile(re.escape(_HF) + r"layers\.(\d+)\.blocks\.(\d+)\.layernorm_before\.(.+)"), r"layers.\1.blocks.\2.norm1.\3"),
    (re.compile(re.escape(_HF) + r"layers\.(\d+)\.blocks\.(\d+)\.attention\.self\.relative_position_bias_table"),
     r"layers.\1.blocks.\2.attn.relative_position_bias_table"),
    (re.compile(re.escape(_HF) + r"layers\.(\d+)\.blocks\.(\d+)\.attention\.self\.relative_position_index"),
     r"layers.\1.blocks.\2.attn.relative_position_index"),
    (re.compile(re.escape(_HF) + r"layers\.(\d+)\.blocks\.(\d+)\.attention\.self\.(?:query|key|value)\.(.+)"),
     r"layers.\1.blocks.\2.attn.qkv.\3"),
    (re.compile(re.escape(_HF) + r"layers\.(\d+)\.blocks\.(\d+)\.attention\.output\.dense\.(.+)"), r"layers.\1.blocks.\2.attn.proj.\3"),
    (re.compile(re.escape(_HF) + r"layers\.(\d+)\.blocks\.(\d+)\.layernorm_after\.(.+)"), r"layers.\1.blocks.\2.norm2.\3"),
    (re.compile(re.escape(_HF) + r"layers\.(\d+)\.blocks\.(\d+)\.intermediate\.dense\.(.+)"), r"layers.\1.blocks.\2.mlp.fc1.\3"),
    (re.compile(re.escape(_HF) + r"layers\.(\d+)\.blocks\.(\d+)\.output\.dense\.(.+)"), r"layers.\1.blocks.\2.mlp.fc2.\3"),
    (re.compile(re.escape(_HF) + r"layers\.(\d+)\.downsample\.(.+)"), r"layers.\1.downsample.\2"),
    (re.compile(re.escape(_HF) + r"norm\.(.+)"), r"norm.\1"),
)


def hf_name_to_laion(key: str) -> str:
    """The official LAION-CLAP name of one transformers key (for messages and exports)."""
    if key.startswith("audio_projection."):
        return "audio_projection." + key[len("audio_projection."):].replace(
            "linear1.", "0.").replace("linear2.", "2.")
    for pat, rep in _HF_BACK:
        m = pat.fullmatch(key)
        if m:
            return "audio_branch." + m.expand(rep)
    return key


def laion_to_hf(audio: Mapping[str, torch.Tensor], *, fusion_weights: bool = True
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """LAION-CLAP audio keys (``audio_branch.*``, ``audio_projection.*``) -> transformers keys.

    Returns ``(hf_state, unused, unknown)``: the renamed tensors (``attn.qkv`` split into query,
    key and value), the official keys the tower does not use (STFT/mel weights, AudioSet head,
    Swin masks; and the fusion block's when ``fusion_weights`` is false) and keys that match
    nothing (a strict load reports them).
    """
    hf: dict[str, torch.Tensor] = {}
    unused: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for k, v in audio.items():
        if k.startswith("audio_projection."):
            m = re.fullmatch(r"audio_projection\.(0|2)\.(weight|bias)", k)
            if m is None:
                unknown.append(k)
            else:
                hf[f"audio_projection.linear{1 if m[1] == '0' else 2}.{m[2]}"] = v
            continue
        key = k[len("audio_branch."):]
        if _UNUSED.match(key) or (not fusion_weights and re.match(
                r"patch_embed\.(mel_conv2d|fusion_model)\.", key)):
            unused[k] = v
            continue
        m = _QKV.fullmatch(key)
        if m:
            q, kk, vv = v.chunk(3, dim=0)
            base = _HF + f"layers.{m[1]}.blocks.{m[2]}.attention.self."
            hf[base + f"query.{m[3]}"], hf[base + f"key.{m[3]}"], hf[base + f"value.{m[3]}"] = q, kk, vv
            continue
        name = _laion_name_to_hf(key)
        if name is None:
            unknown.append(k)
        else:
            hf[name] = v
    return hf, unused, unknown


def hf_to_laion(model: ClapAudioEncoder) -> dict[str, torch.Tensor]:
    """The tower's weights in LAION-CLAP's names, with the official keys transformers drops.

    The STFT kernels and mel matrix are rebuilt as torchlibrosa builds them, the Swin masks and
    indices as laion_clap's HTSAT registers them; the AudioSet classifier (``tscam_conv``,
    ``head``) comes from a loaded file or is zero. Keys a loaded file had that the tower does not
    use are written back as they were.
    """
    sd = {k: v.detach().cpu() for k, v in model.model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, list] = {}
    for k, v in sd.items():
        name = hf_name_to_laion(k)
        if ".attn.qkv." in name:
            qkv.setdefault(name, [None, None, None])[("query", "key", "value").index(
                k.split(".attention.self.")[1].split(".")[0])] = v
        else:
            out[name] = v.clone()
    for name, parts in qkv.items():
        out[name] = torch.cat(parts, 0)
    cfg, fe = model.config, model.frontend
    n_freq = fe.n_fft // 2 + 1
    window = torch.hann_window(fe.n_fft, periodic=True, dtype=torch.float64)
    ang = 2 * np.pi * torch.outer(torch.arange(n_freq, dtype=torch.float64),
                                  torch.arange(fe.n_fft, dtype=torch.float64)) / fe.n_fft
    extra = {
        "audio_branch.spectrogram_extractor.stft.conv_real.weight": (torch.cos(ang) * window)[:, None].float(),
        "audio_branch.spectrogram_extractor.stft.conv_imag.weight": (-torch.sin(ang) * window)[:, None].float(),
        "audio_branch.logmel_extractor.melW": torch.from_numpy(mel_filters(replace(fe, mel_scale="slaney"))),
    }
    n_feat = int(cfg.hidden_size)
    sf = cfg.spec_size // (2 ** (len(cfg.depths) - 1)) // 4 // (cfg.spec_size // cfg.num_mel_bins)
    extra["audio_branch.tscam_conv.weight"] = torch.zeros(cfg.num_classes, n_feat, max(sf, 1), 3)
    extra["audio_branch.tscam_conv.bias"] = torch.zeros(cfg.num_classes)
    extra["audio_branch.head.weight"] = torch.zeros(cfg.num_classes, cfg.num_classes)
    extra["audio_branch.head.bias"] = torch.zeros(cfg.num_classes)
    enc = model.model.audio_model.audio_encoder
    for i, stage in enumerate(enc.layers):
        h, w = enc.input_resolutions[i]
        for j, block in enumerate(stage.blocks):
            shift = 0 if j % 2 == 0 else cfg.window_size // 2
            if shift and min(h, w) > cfg.window_size:  # laion_clap's HTSAT registers a mask here
                mask = _shift_mask(h, w, cfg.window_size, shift)
                extra[f"audio_branch.layers.{i}.blocks.{j}.attn_mask"] = mask
    extra.update({k: v.detach().cpu().clone() for k, v in model.extra_official.items()})
    out.update({k: v for k, v in extra.items() if k not in out})
    return out


def _shift_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """Swin's shifted-window attention mask [nW, ws*ws, ws*ws] (0 / -100)."""
    img = torch.zeros(1, h, w, 1)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    win = img.view(1, h // ws, ws, w // ws, ws, 1).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws)
    mask = win.unsqueeze(1) - win.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


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
    width = int(pe.shape[0])
    arch = _architecture(audio)
    stft = audio.get("audio_branch.spectrogram_extractor.stft.conv_real.weight")
    n_fft = int(stft.shape[-1]) if stft is not None else 1024
    if arch is None:  # only the patch embedding is known: name it from its width
        name = _PATCH_WIDTH_TO_MODEL.get(width)
        if name is None:
            raise ModelFileError(
                f"The CLAP checkpoint {path} has an HTSAT patch width of {width} and no Swin layers "
                f"to read its size from. {mf.where_to_put(mf.CLAP)}")
        amodel = "HTSAT-tiny-win-1536" if name == "HTSAT-tiny" and n_fft == 1536 else name
    else:
        amodel = amodel_name(width, arch["depths"], arch["heads"], n_fft)
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


def _architecture(audio: Mapping[str, torch.Tensor]) -> dict | None:
    """depths, heads and window of the Swin stages in a LAION audio state dict (None: none)."""
    blocks: dict[int, set[int]] = {}
    heads: dict[int, int] = {}
    window = None
    for k, v in audio.items():
        m = re.fullmatch(r"audio_branch\.layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table", k)
        if m:
            i, j = int(m[1]), int(m[2])
            blocks.setdefault(i, set()).add(j)
            heads[i] = int(v.shape[1])
            window = int(round((float(v.shape[0]) ** 0.5 + 1) / 2))
    if not blocks:
        return None
    n = max(blocks) + 1
    if sorted(blocks) != list(range(n)):
        return None
    return {"depths": tuple(len(blocks[i]) for i in range(n)),
            "heads": tuple(heads[i] for i in range(n)), "window": window}


def _laion_frontend(audio: Mapping[str, torch.Tensor], fusion: str | None) -> MelFrontend:
    """The mel settings of a LAION checkpoint: laion_clap's audio_cfg, STFT size from the weights."""
    stft = audio.get("audio_branch.spectrogram_extractor.stft.conv_real.weight")
    mel = audio.get("audio_branch.logmel_extractor.melW")
    bn = audio.get("audio_branch.bn0.weight")
    n_fft = int(stft.shape[-1]) if stft is not None else 1024
    bins = int(mel.shape[1]) if mel is not None else int(bn.shape[0]) if bn is not None else 64
    return MelFrontend(n_fft=n_fft, mel_bins=bins, mel_scale="htk" if fusion else "slaney")


def _check_mel_matrix(audio: Mapping[str, torch.Tensor], fe: MelFrontend, path: Path) -> None:
    """A non-fusion checkpoint's own mel matrix must be the one we compute (CLAP's settings)."""
    mel = audio.get("audio_branch.logmel_extractor.melW")
    if mel is None or fe.mel_scale != "slaney":
        return
    ours = torch.from_numpy(mel_filters(fe))
    if tuple(mel.shape) != tuple(ours.shape) or \
            float((mel.float() - ours).abs().max()) > 1e-4 * float(ours.abs().max()):
        raise ModelFileError(
            f"The CLAP checkpoint {path} has a mel filter bank other than CLAP's ({fe.sample_rate} Hz, "
            f"{fe.n_fft}-point STFT, {fe.mel_bins} bins, {fe.fmin:g}-{fe.fmax:g} Hz), which this "
            f"loader does not reproduce. {mf.where_to_put(mf.CLAP)}")


def encoder_for_laion_state(audio: Mapping[str, torch.Tensor], path: str | os.PathLike = "<state>"
                            ) -> ClapAudioEncoder:
    """An untrained tower shaped like the LAION audio state dict ``audio``."""
    path = Path(path)
    amodel, fusion = detect_layout(dict(audio), path)
    arch = _architecture(audio)
    if arch is None:
        raise ModelFileError(mf.describe_key_mismatch(
            path, mf.CLAP, missing=["audio_branch.layers.0.blocks.0.attn.relative_position_bias_table"],
            unexpected=[], note=" (no Swin layers in its audio branch)"))
    pe = audio["audio_branch.patch_embed.proj.weight"]
    proj = audio.get("audio_projection.2.weight")
    head = audio.get("audio_branch.head.weight")
    fe = _laion_frontend(audio, fusion)
    cfg = hf_audio_config(int(pe.shape[0]), arch["depths"], arch["heads"], window=arch["window"],
                          mel_bins=fe.mel_bins, joint_dim=int(proj.shape[0]) if proj is not None else EMBED_DIM,
                          fusion_type=fusion, num_classes=int(head.shape[0]) if head is not None else 527)
    return ClapAudioEncoder(amodel, fusion, config=cfg, frontend=fe)


def _load_laion(path: Path, state: dict[str, Any], device: Any, backend: str) -> _ClapTower:
    audio = audio_state_dict(state)
    if not audio:
        raise ModelFileError(mf.describe_key_mismatch(
            path, mf.CLAP, missing=["audio_branch.*", "audio_projection.*"],
            unexpected=sorted(state)[:20], note=" (it has no CLAP audio keys at all)"))
    amodel, fusion = detect_layout(audio, path)
    note = f" (read as {amodel}{', fusion ' + fusion if fusion else ''})"
    if backend == "laion_clap":
        from ._clap_laion import LaionClapAudioEncoder

        proj = audio.get("audio_projection.2.weight")
        arch = _architecture(audio)
        htsat = None
        if amodel not in (*HTSAT_SIZES, "HTSAT-tiny-win-1536") and arch is not None:
            head = audio.get("audio_branch.head.weight")
            htsat = {"embed_dim": int(audio["audio_branch.patch_embed.proj.weight"].shape[0]),
                     "depths": list(arch["depths"]), "num_heads": list(arch["heads"]),
                     "window_size": arch["window"], "num_classes": int(head.shape[0]) if head is not None else 527}
        model = LaionClapAudioEncoder(amodel, fusion, joint_dim=int(proj.shape[0]) if proj is not None else EMBED_DIM,
                                      htsat=htsat)
        return mf.load_strict(model, audio, path, mf.CLAP, device=device, note=note)
    model = encoder_for_laion_state(audio, path)
    _check_mel_matrix(audio, model.frontend, path)
    hf, unused, unknown = laion_to_hf(audio, fusion_weights=bool(model.config.enable_fusion))
    expected = model.model.state_dict()
    for k in expected:  # rebuilt buffers (Swin's index tables) when a file lacks them
        if k.endswith(".relative_position_index") and k not in hf:
            hf[k] = expected[k]
    state_hf = {**hf, **{k: torch.empty(0) for k in unknown}}
    loaded = mf.load_strict(model.model, state_hf, path, mf.CLAP, device=device,
                            shown=hf_name_to_laion, note=note)
    del loaded
    model.extra_official = {k: v for k, v in unused.items()}
    model.fingerprint = mf.state_dict_fingerprint(audio)  # of the official keys, as before
    model.source = path.name
    return model.to(device).eval()


def hf_folder_of(path: Path) -> Path | None:
    """The Hugging Face CLAP folder ``path`` is (or whose weight file it is), else None."""
    folder = path if path.is_dir() else path.parent
    if path.is_file() and path.name not in HF_WEIGHT_FILES and path.suffix != ".safetensors":
        return None
    cfg = folder / "config.json"
    if not cfg.is_file():
        return None
    try:
        kind = json.loads(cfg.read_text()).get("model_type")
    except (OSError, ValueError):
        return None
    return folder if kind in HF_MODEL_TYPES else None


def _hf_frontend(folder: Path, config: Any) -> MelFrontend:
    """preprocessor_config.json's settings, else CLAP's; HTK filters for fusion models."""
    fe = MelFrontend(mel_bins=int(config.num_mel_bins),
                     mel_scale="htk" if getattr(config, "enable_fusion", False) else "slaney")
    p = folder / "preprocessor_config.json"
    if not p.is_file():
        return fe
    try:
        pc = json.loads(p.read_text())
    except ValueError as e:
        raise ModelFileError(f"{p} is not valid JSON ({e}).") from None
    sr = int(pc.get("sampling_rate", fe.sample_rate))
    if sr != SAMPLE_RATE:
        raise ModelFileError(f"{p} says the model runs at {sr} Hz; CLAP models run at {SAMPLE_RATE} Hz.")
    trunc = pc.get("truncation")
    return replace(
        fe, n_fft=int(pc.get("fft_window_size", fe.n_fft)), hop=int(pc.get("hop_length", fe.hop)),
        mel_bins=int(pc.get("feature_size", fe.mel_bins)), fmin=float(pc.get("frequency_min", fe.fmin)),
        fmax=float(pc.get("frequency_max", fe.fmax)),
        clip_samples=int(round(float(pc.get("max_length_s", fe.clip_samples / sr)) * sr)),
        mel_scale=("htk" if trunc == "fusion" else "slaney") if trunc else fe.mel_scale)


def load_hf_clap_folder(folder: str | os.PathLike, *, device: Any = "cpu",
                        trust_pickle: bool = False) -> ClapAudioEncoder:
    """Load the audio tower of a Hugging Face CLAP folder (``ClapModel`` or audio-only)."""
    from transformers import ClapAudioConfig

    folder = Path(folder)
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelFileError(f"The CLAP folder {folder} has no readable config.json ({e}). "
                             f"{HF_FOLDER_NOTE}") from None
    if cfg.get("model_type") == "clap":
        audio_cfg = dict(cfg.get("audio_config") or {})
        audio_cfg["projection_dim"] = cfg.get("projection_dim", audio_cfg.get("projection_dim", EMBED_DIM))
    elif cfg.get("model_type") == "clap_audio_model":
        audio_cfg = dict(cfg)
    else:
        raise ModelFileError(f"{folder / 'config.json'} describes a {cfg.get('model_type')!r} model, "
                             f"not a CLAP model ({', '.join(HF_MODEL_TYPES)}). {HF_FOLDER_NOTE}")
    audio_cfg.pop("model_type", None)
    config = ClapAudioConfig.from_dict(audio_cfg)
    weights = next((folder / n for n in HF_WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise ModelFileError(f"The CLAP folder {folder} has a config.json but none of "
                             f"{', '.join(HF_WEIGHT_FILES)}. {HF_FOLDER_NOTE}")
    state = mf.state_dict_of(mf.load_checkpoint(weights, mf.CLAP, trust_pickle=trust_pickle), weights, mf.CLAP)
    audio = {k: v for k, v in state.items() if k.startswith(("audio_model.", "audio_projection."))}
    if not audio:
        raise ModelFileError(mf.describe_key_mismatch(
            weights, mf.CLAP, missing=["audio_model.*", "audio_projection.*"],
            unexpected=sorted(state)[:20], note=" (it has no CLAP audio keys at all)"))
    model = ClapAudioEncoder.from_hf_config(config, _hf_frontend(folder, config))
    expected = model.model.state_dict()
    for k in expected:
        if k.endswith(".relative_position_index") and k not in audio:
            audio[k] = expected[k]
    mf.load_strict(model.model, audio, weights, mf.CLAP, device=device,
                   note=f" (a Hugging Face CLAP folder, read as {model.amodel})")
    model.fingerprint = mf.state_dict_fingerprint(audio)
    model.source = f"{folder.name}/{weights.name}"
    return model.to(device).eval()


def _find_hf_folder(name_or_path: str | os.PathLike | None, dirs: list[Path]) -> Path | None:
    """An HF CLAP folder named by ``name_or_path`` (a path or a name in ``dirs``); for None, the
    first such folder in ``dirs``."""
    if name_or_path is not None and str(name_or_path).strip():
        p = Path(name_or_path).expanduser()
        for cand in [p] + ([d / p for d in dirs] if not p.is_absolute() else []):
            if cand.exists():
                return hf_folder_of(cand)
        return None
    for d in dirs:
        if d.is_dir():
            for sub in sorted(d.iterdir()):
                if sub.is_dir() and hf_folder_of(sub) is not None:
                    return sub
    return None


def load_clap_audio(name_or_path: str | os.PathLike | None = None,
                    search_dirs: Iterable[str | os.PathLike] = (), *,
                    device: str | torch.device = "cpu", trust_pickle: bool = False,
                    backend: str = "transformers") -> _ClapTower:
    """Build the audio tower for a CLAP checkpoint and load its audio weights strictly.

    ``name_or_path``: a LAION-CLAP ``.pt`` (path, or name in ``search_dirs``), a Hugging Face CLAP
    folder or its ``model.safetensors``; ``None`` picks the first official LAION file name found
    in ``search_dirs``, else the first HF CLAP folder there. ``backend="laion_clap"`` runs
    laion_clap's own HTSAT instead (``.pt`` only; needs the laion-clap package).

    Raises :class:`ModelFileError` (naming the file, the ``clap`` model folder and the Hugging
    Face release) for a missing, unreadable or non-CLAP file, or one whose audio keys do not fit.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    dirs = [Path(d).expanduser() for d in search_dirs]
    try:
        path = mf.resolve_model_file(mf.CLAP, name_or_path, dirs)
    except ModelFileError as e:
        folder = _find_hf_folder(name_or_path, dirs)
        if folder is None:
            raise ModelFileError(f"{e} {HF_FOLDER_NOTE}") from None
        path = folder
    folder = hf_folder_of(path)
    if folder is not None:
        if backend == "laion_clap":
            raise ModelFileError(f"{path} is a Hugging Face CLAP folder; laion_clap reads only "
                                 f"LAION-CLAP .pt checkpoints (use the transformers backend).")
        return load_hf_clap_folder(folder, device=device, trust_pickle=trust_pickle)
    state = mf.state_dict_of(mf.load_checkpoint(path, mf.CLAP, trust_pickle=trust_pickle), path, mf.CLAP)
    return _load_laion(path, state, device, backend)


def save_official_layout(model: _ClapTower, path: str | os.PathLike, *,
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
    if isinstance(model, ClapAudioEncoder):
        if model.fusion_type in ("iaff_2d", "daf_2d") and not model.extra_official:
            raise ValueError(f"a {model.fusion_type} tower built without its file has no fusion "
                             f"weights to write")
        weights = hf_to_laion(model)
    else:
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    sd = {f"module.{k}": v.clone() for k, v in weights.items()}
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


def save_hf_folder(model: ClapAudioEncoder, folder: str | os.PathLike) -> Path:
    """Write ``model`` as a Hugging Face audio-only CLAP folder (config.json, model.safetensors,
    preprocessor_config.json with its mel settings)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.model.config.architectures = ["ClapAudioModelWithProjection"]
    model.model.config.to_json_file(str(folder / "config.json"))
    sd = {k: v.detach().cpu().contiguous() for k, v in model.model.state_dict().items()}
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    fe = model.frontend
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "ClapFeatureExtractor", "feature_size": fe.mel_bins,
        "sampling_rate": fe.sample_rate, "hop_length": fe.hop, "fft_window_size": fe.n_fft,
        "frequency_min": fe.fmin, "frequency_max": fe.fmax,
        "max_length_s": fe.clip_samples // fe.sample_rate, "padding": "repeatpad",
        "truncation": "fusion" if fe.mel_scale == "htk" else "rand_trunc",
    }, indent=2))
    return folder


__all__ = [
    "ClapAudioEncoder", "MelFrontend", "LogMel", "load_clap_audio", "load_hf_clap_folder",
    "save_official_layout", "save_hf_folder", "laion_to_hf", "hf_to_laion", "hf_name_to_laion",
    "detect_layout", "audio_state_dict", "quantize_int16", "clap_clips", "hf_audio_config",
    "tiny_hf_config",
]
