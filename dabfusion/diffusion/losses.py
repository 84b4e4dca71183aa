"""The training objective: epsilon (or v) MSE on the frames to generate (eq. 5 of the paper).

For a batch of windows (:class:`dabfusion.diffusion.data.FlowWindowDataset` items), draw a step
``t ~ U{0..T-1}`` and noise from ``generator`` (so a resumed run draws the same), noise the clean
model-space flows, and regress the U-Net's output on epsilon (or v). Frames of the known prefix
are inputs, not outputs: they are left out of the mean.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from .config import DiffusionConfig
from .schedule import noise_to, training_target


def diffusion_loss(model: Any, scheduler: Any, config: DiffusionConfig, batch: dict[str, Any], *,
                   generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                   autocast: Callable[[], Any] = contextlib.nullcontext) -> torch.Tensor:
    x0 = batch["x0"].to(device)
    b = x0.shape[0]
    t = torch.randint(0, config.num_train_timesteps, (b,), generator=generator).to(device)
    noise = torch.randn(x0.shape, generator=generator).to(device)
    ab = scheduler.alphas_cumprod.to(device)[t].view(b, 1, 1, 1, 1).to(x0.dtype)
    xt = noise_to(x0, noise, ab)
    target = training_target(scheduler, x0, noise, t, config.prediction_type)
    mask = batch["known_mask"].to(device)
    with autocast():
        pred = model(xt, t, batch["z0"].to(device), music=batch["music"].to(device),
                     beats=batch["beats"].to(device) if config.uses_beats else None,
                     known=x0, known_mask=mask, drop=batch["drop"].to(device))
    w = (~mask).to(torch.float32)[:, None, :, None, None]
    err = (pred.float() - target.float()) ** 2 * w
    return err.sum() / (w.sum() * err.shape[1] * err.shape[3] * err.shape[4]).clamp(min=1.0)
