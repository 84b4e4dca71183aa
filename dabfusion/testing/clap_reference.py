"""A small random-weight LAION-CLAP checkpoint rebuilt from a seed, and laion_clap's own embedding of it.

The check that the transformers CLAP tower equals laion_clap's HTSAT needs laion_clap, which requires
numpy<2 and so cannot live in the test environment (numpy 2, as ComfyUI runs). The comparison is split:

- ``scripts/make_clap_reference.py``, run once in a separate numpy-1 venv with laion-clap, rebuilds each
  checkpoint here (:func:`write_checkpoint`: a tiny HTSAT with random weights drawn from ``seed``,
  written by our exporter in the official layout), loads it into laion_clap's HTSAT and saves laion_clap's
  embedding of :func:`clips` to ``tests/data/clap_laion_reference.npz`` (a few KB), with the checkpoint's
  fingerprint;
- ``tests/test_clap_transformers.py`` rebuilds the same checkpoint from the same seed (no file is
  committed), checks its fingerprint against the saved one and loads it through the product's LAION
  ``.pt`` path (the transformers tower): its embedding must equal laion_clap's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: laion_clap's HTSAT sizes for the tiny test tower (patch width 16), as ``LaionClapAudioEncoder(htsat=)`` takes.
TINY = {"embed_dim": 16, "depths": [2, 2, 1, 1], "num_heads": [1, 2, 2, 4]}
#: The checkpoints compared: a plain HTSAT (Slaney mel front end) and a 2-D fusion one (HTK front end).
CASES = {"plain": None, "aff_2d": "aff_2d"}
SEED = 7
REFERENCE = Path(__file__).resolve().parents[2] / "tests" / "data" / "clap_laion_reference.npz"


def clips(seed: int = 0) -> list[np.ndarray]:
    """A 3 s clip (repeat-padded to 10 s) and a full 10 s one, mono 48 kHz."""
    from ..music import clap_branch as cb

    rng = np.random.default_rng(seed)
    return [(0.2 * rng.standard_normal(3 * 48000)).astype(np.float32),
            (0.1 * rng.standard_normal(cb.CLIP_SAMPLES)).astype(np.float32)]


def randomise(model, seed: int = 0):
    """Random weights everywhere, batch-norm statistics included (they must map too); the fixed buffers
    (STFT and mel banks, Swin masks and position indices) are left as built."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, t in list(model.named_parameters()) + list(model.named_buffers()):
            if "spectrogram_extractor" in n or "logmel_extractor" in n or not t.is_floating_point():
                continue
            if n.endswith(("relative_position_index", "attn_mask", "window", "filters")):
                continue
            if n.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(0.2 * torch.randn(t.shape, generator=g))
    return model


def write_checkpoint(fusion: str | None, path: str | os.PathLike, seed: int = SEED) -> Path:
    """The tiny random tower for ``fusion``, written as LAION-CLAP's training code saves a checkpoint."""
    import torch

    from ..music import clap_branch as cb

    torch.manual_seed(seed)
    tower = cb.ClapAudioEncoder.from_hf_config(cb.tiny_hf_config(fusion_type=fusion), fusion_type=fusion)
    return cb.save_official_layout(randomise(tower, seed), path)


def audio_fingerprint(path: str | os.PathLike) -> str:
    """The fingerprint of the audio tower's weights in a checkpoint (what the loaders report)."""
    from ..music import clap_branch as cb

    return cb.mf.state_dict_fingerprint(cb.audio_state_dict(cb.mf.load_checkpoint(path, "clap")["state_dict"]))
