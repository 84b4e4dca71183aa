"""A random-weight model bundle, written through the official checkpoint writers.

It generates nonsense motion, but every file, config, provenance record and check is the real
one: tests of the pipeline, the CLI, the nodes and the workflows load it through the same
loader as a trained model, in well under a second. Also handy to smoke-test an installation::

    python -c "from dabfusion.testing.random_bundle import make_random_bundle; print(make_random_bundle('/tmp/rb'))"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MUSIC_CHOICES = ("beats", "mel", "mel+adapter")


def make_random_bundle(out_dir: str | os.PathLike, *, preset: str = "tiny", music: str = "beats", seed: int = 0,
                       fps: float = 30.0, noise: float = 0.05, n_frames: int | None = None,
                       defaults: dict[str, Any] | None = None) -> Path:
    """Write a bundle of random flow AE + diffusion weights (``preset`` of both) to ``out_dir``.

    ``music``: the encoder the diffusion model is "trained" for: ``beats`` (the default, no files),
    ``mel`` (weight-free mel statistics) or ``mel+adapter`` (with a random mel adapter file).
    ``noise`` perturbs the U-Net weights so the sampled flows are not all zero.
    """
    import torch

    from ..diffusion import PRESETS as DIFF_PRESETS
    from ..diffusion import UNet3D, flow_ae_identity, save_diffusion
    from ..flow_ae import FlowAutoEncoder, get_config, save_flow_ae
    from ..model_bundle import write_bundle
    from ..music import MusicEncoder

    if music not in MUSIC_CHOICES:
        raise ValueError(f"music must be one of {MUSIC_CHOICES}, got {music!r}")
    out = Path(out_dir)
    work = out / ".parts"
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    ae = FlowAutoEncoder(get_config(preset))
    ae_path = save_flow_ae(work / "flow_ae.safetensors", ae, {"weights": "random", "seed": seed})
    adapters = {}
    if music == "beats":
        encoder = MusicEncoder.default()
    elif music == "mel":
        encoder = MusicEncoder(mel=True)
    else:
        from ..music.adapters import AdapterConfig, MusicAdapter
        from ..music.mel_branch import MelStatsEncoder

        mel = MelStatsEncoder()
        adapter = MusicAdapter(AdapterConfig(branch="mel", in_dim=mel.dim, hidden=16, out_dim=8,
                                             genres=["BR", "PO"], encoder=mel.identity())).eval()
        adapters["mel"] = adapter.save(work / "mel_adapter.safetensors")
        encoder = MusicEncoder(mel=mel, mel_adapter=adapter)
    config = DIFF_PRESETS[preset].with_flow_ae(flow_ae_identity(ae_path)).with_music(encoder.spec)
    if n_frames is not None:
        config = config.replace(n_frames=int(n_frames))
    model = UNet3D(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * noise)
    diff_path = save_diffusion(work / "diffusion.safetensors", model,
                               {"weights": "random", "seed": seed, "data": {"fps": fps}})
    bundle = write_bundle(out, flow_ae=ae_path, diffusion=diff_path, adapters=adapters,
                          name=f"random-{preset}-{music}", fps=fps, defaults=defaults,
                          description="random weights: for tests only, it does not dance")
    for p in sorted(work.iterdir()):
        p.unlink()
    work.rmdir()
    return bundle
