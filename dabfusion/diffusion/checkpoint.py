"""Save and load flow-diffusion checkpoints, and check what they were trained with.

Format: :mod:`dabfusion.checkpoint_io` (safetensors + JSON header, kind ``"flow_diffusion"``).
The config inside rebuilds the U-Net; it also records the music encoder spec and the identity of
the flow AE (:func:`flow_ae_identity`). :func:`load_diffusion` compares them with the encoder
and flow AE the caller is about to use and raises :class:`~dabfusion.errors.ConfigMismatchError`
naming every difference: a diffusion model only makes sense with the flow AE whose flows it
learned and the music embedding it was conditioned on.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Mapping

import torch

from ..checkpoint_io import load_checkpoint, load_state_into, read_header, save_checkpoint
from ..errors import ConfigMismatchError
from .config import CONFIG_VERSION, DiffusionConfig
from .unet3d import UNet3D, count_parameters

KIND = "flow_diffusion"


# --------------------------------------------------------------------------------- flow AE identity


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Hash of tensor names, shapes and values (floating tensors as float32), in key order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().to("cpu").contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        if t.is_floating_point():
            t = t.float()
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def flow_ae_identity(source: Any) -> dict[str, Any]:
    """What a diffusion model needs to know about its flow AE: geometry and a weight hash.

    ``source``: a flow AE checkpoint path, a :class:`dabfusion.flow_ae.FlowAE`, or a
    :class:`dabfusion.flow_ae.FlowAutoEncoder`. The hash covers the tensors (names, shapes,
    float32 values), not the file's bytes, so re-saving the same weights keeps the identity.
    Hash a model in the dtype it was saved in (a bf16 copy hashes differently).
    """
    if isinstance(source, (str, os.PathLike)):
        from safetensors.torch import load_file

        from ..checkpoint_io import checkpoint_paths
        from ..flow_ae import FlowAEConfig

        header = read_header(source)
        if header.get("kind") != "flow_ae":
            raise ConfigMismatchError(f"{source} is a {header.get('kind')!r} checkpoint, not a flow AE")
        config = FlowAEConfig.from_dict(header["config"])
        state = load_file(str(checkpoint_paths(source)[0]))
    else:
        model = getattr(source, "model", source)
        config = model.config
        state = model.state_dict()
    return {"kind": "flow_ae", "name": config.name, "image_size": int(config.image_size),
            "latent_channels": int(config.latent_channels), "latent_size": int(config.latent_size),
            "weights_sha256": state_dict_sha256(state)}


def check_flow_ae(expected: Mapping[str, Any] | None, actual: Mapping[str, Any], *, what: str = "This diffusion model") -> None:
    """Raise :class:`ConfigMismatchError` unless ``actual`` is the flow AE ``expected`` records."""
    if expected is None:
        return
    diffs = [f"{k}: trained with {expected.get(k)!r}, got {actual.get(k)!r}"
             for k in ("image_size", "latent_channels", "latent_size", "weights_sha256")
             if k in expected and expected.get(k) != actual.get(k)]
    if diffs:
        raise ConfigMismatchError(
            f"{what} was trained on the flows of another flow AE ({expected.get('name')!r}, weights "
            f"{str(expected.get('weights_sha256'))[:12]}):\n  - " + "\n  - ".join(diffs)
            + "\nLoad the flow AE checkpoint it was trained with (see the 'flow_ae' entry of its config), "
              "or pass check_flow_ae=False if you know the weights are equivalent.")


# --------------------------------------------------------------------------------- save / load


def save_diffusion(path: str | os.PathLike, model: UNet3D, extra: Mapping[str, Any] | None = None) -> str:
    """Write the model's weights and config (with its provenance records); returns the weights path."""
    info = {"parameters": count_parameters(model)}
    info.update(dict(extra or {}))
    return str(save_checkpoint(path, model.state_dict(), model.config.to_dict(), info,
                               kind=KIND, version=CONFIG_VERSION))


def read_diffusion_config(path: str | os.PathLike) -> DiffusionConfig:
    header = read_header(path)
    if header.get("kind") != KIND:
        raise ConfigMismatchError(f"{path} is a {header.get('kind')!r} checkpoint, not a {KIND!r} one")
    return DiffusionConfig.from_dict(header["config"])


def load_diffusion(path: str | os.PathLike, *, music_spec: Mapping[str, Any] | None = None,
                   flow_ae: Any = None, expected_config: Mapping[str, Any] | None = None,
                   device: str | torch.device = "cpu", dtype: torch.dtype | None = None
                   ) -> tuple[UNet3D, dict[str, Any]]:
    """Rebuild the U-Net from a checkpoint (eval mode) after checking it fits what the caller has.

    ``music_spec``: the spec of the music encoder that will feed it (checked with
    :func:`dabfusion.music.check_compatible`). ``flow_ae``: the flow AE (path, ``FlowAE``, model
    or an identity dict) whose latents and flows it will work on. ``expected_config``: any subset
    of config fields that must match (e.g. ``{"n_frames": 16}``).
    """
    state, header = load_checkpoint(path, expected_kind=KIND, expected_version=CONFIG_VERSION,
                                    expected_config_subset=expected_config)
    config = DiffusionConfig.from_dict(header["config"])
    where = f"The diffusion checkpoint {path}"
    if music_spec is not None:
        if config.music_spec is None:
            raise ConfigMismatchError(f"{where} records no music encoder spec; it cannot be checked "
                                      "against the encoder given. Re-export it with training/train_diffusion.py.")
        from ..music import check_compatible

        check_compatible(config.music_spec, music_spec, what=where)
    if flow_ae is not None:
        ident = flow_ae if isinstance(flow_ae, Mapping) else flow_ae_identity(flow_ae)
        check_flow_ae(config.flow_ae, ident, what=where)
        if (ident["latent_channels"], ident["latent_size"]) != (config.latent_channels, config.latent_size):
            raise ConfigMismatchError(
                f"{where} works on {config.latent_channels}x{config.latent_size}x{config.latent_size} "
                f"latents but the flow AE gives {ident['latent_channels']}x{ident['latent_size']}x"
                f"{ident['latent_size']}.")
    model = UNet3D(config)
    load_state_into(model, state, str(path))
    model.eval().requires_grad_(False)
    model.to(device=device, dtype=dtype) if dtype is not None else model.to(device=device)
    return model, header
