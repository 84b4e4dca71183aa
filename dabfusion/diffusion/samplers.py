"""Sampling one window of flows with a diffusers scheduler: guidance, known frames, progress.

:func:`sample_window` runs the reverse process for a batch of clips of N frames:

- classifier-free guidance: the conditional and the null-music branch run as one batch of 2B
  (``eps = eps_null + s * (eps_music - eps_null)``); scale 1 runs the conditional branch only;
- known frames (continuing a clip): their clean values go to the U-Net's known-frame channels at
  every step (the model was trained with them), and, with ``replace_known``, after every step
  their entries of the sample are replaced by the clean values forward-noised to the level the
  sample has reached (RePaint-style replacement), so the known prefix comes out exactly;
- seedable: every random draw (initial noise, ancestral noise, replacement noise) comes from
  ``generator``;
- ``callback(done, total)`` after every step: ComfyUI progress bars; raising in it interrupts.

Layouts: everything here is the U-Net's ``[B, 3, N, h, w]`` model space (see :mod:`.schedule`).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import torch

from .schedule import (DEFAULT_STEPS, alpha_bar, canonical_sampler, make_scheduler, needs_output_thresholding,
                       noise_to, threshold_model_output)

ProgressCallback = Callable[[int, int], Any]
log = logging.getLogger(__name__)


def randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Gaussian noise drawn on the generator's device (so a CPU seed gives the same clip on GPU)."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def guided_output(model: Any, x: torch.Tensor, t: torch.Tensor, *, z0: torch.Tensor,
                  music: torch.Tensor | None, beats: torch.Tensor | None, known: torch.Tensor | None,
                  known_mask: torch.Tensor | None, guidance_scale: float) -> torch.Tensor:
    """The model output with classifier-free guidance (one batched call for both branches)."""
    dtype = next(model.parameters()).dtype
    b = x.shape[0]
    tt = t.reshape(-1).expand(b) if t.numel() == 1 else t
    cast = (lambda v: None if v is None else v.to(dtype))
    if guidance_scale == 1.0 or not getattr(model, "has_music", True):
        out = model(x.to(dtype), tt, z0.to(dtype), music=cast(music), beats=cast(beats), known=cast(known),
                     known_mask=known_mask)
        return out.float()

    def two(v):
        return None if v is None else torch.cat([v, v], dim=0)

    z = z0.expand(b, *z0.shape[1:]) if z0.shape[0] == 1 else z0
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
    out = model(two(x).to(dtype), two(tt), two(z).to(dtype), music=cast(two(music)), beats=cast(two(beats)),
                known=cast(two(known)), known_mask=two(known_mask), drop=drop).float()
    cond, null = out.chunk(2)
    return null + guidance_scale * (cond - null)


def level_after_step(scheduler: Any, index: int, t: torch.Tensor) -> float:
    """Cumulative alpha of the sample that ``scheduler.step`` just produced (1.0 = clean)."""
    name = type(scheduler).__name__
    if hasattr(scheduler, "sigmas") and getattr(scheduler, "step_index", None) is not None \
            and "DPMSolver" in name:
        sigma = float(scheduler.sigmas[scheduler.step_index])
        return 1.0 / (1.0 + sigma * sigma)
    if name.startswith("DDIM"):
        prev = int(t) - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
        return float(scheduler.alphas_cumprod[prev]) if prev >= 0 else float(scheduler.final_alpha_cumprod)
    if hasattr(scheduler, "previous_timestep"):
        prev = int(scheduler.previous_timestep(t))
    else:
        ts = scheduler.timesteps
        prev = int(ts[index + 1]) if index + 1 < len(ts) else -1
    return float(scheduler.alphas_cumprod[prev]) if prev >= 0 else 1.0


def prepare_scheduler(config: Any, sampler: str, num_inference_steps: int | None, device: torch.device,
                      scheduler: Any = None) -> tuple[Any, bool]:
    """A scheduler with its timesteps set (``scheduler`` overrides the one made from ``sampler``),
    and whether the model output must be thresholded here because the scheduler cannot."""
    if scheduler is None:
        name = canonical_sampler(sampler)
        scheduler = make_scheduler(config, name)
        steps = int(num_inference_steps or DEFAULT_STEPS[name])
    else:
        steps = int(num_inference_steps or len(getattr(scheduler, "timesteps", [])) or 50)
    if type(scheduler).__name__.startswith("DDIM") and scheduler.config.num_train_timesteps % steps:
        log.warning("DDIM with %d steps: %d is not a multiple of it, so the last step stops short of "
                    "t = 0 (diffusers steps t -> t - T // steps); use e.g. 20, 25, 40, 50", steps,
                    scheduler.config.num_train_timesteps)
    scheduler.set_timesteps(steps, device=device)
    return scheduler, needs_output_thresholding(scheduler, config)


def finish_step(scheduler: Any, config: Any, index: int, t: torch.Tensor, out: torch.Tensor, x_in: torch.Tensor,
                x: torch.Tensor, *, threshold: bool, generator: torch.Generator | None, known: torch.Tensor | None,
                mask5: torch.Tensor | None) -> torch.Tensor:
    """One reverse step from the model output ``out``: thresholding where the scheduler cannot,
    the scheduler's step, then the known entries replaced at the noise level reached (RePaint)."""
    if threshold:
        out = threshold_model_output(out, x_in, t, scheduler, config)
    x = scheduler.step(out, t, x, generator=generator).prev_sample
    if mask5 is not None and known is not None:
        ab = level_after_step(scheduler, index, t)
        fresh = randn(tuple(x.shape), generator, x.device) if ab < 1.0 else torch.zeros_like(x)
        x = torch.where(mask5, noise_to(known, fresh, ab), x)
    return x


@torch.no_grad()
def sample_window(model: Any, *, z0: torch.Tensor, n_frames: int | None = None, batch_size: int | None = None,
                  music: torch.Tensor | None = None, beats: torch.Tensor | None = None,
                  known: torch.Tensor | None = None, known_mask: torch.Tensor | None = None,
                  sampler: str = "ddpm", num_inference_steps: int | None = None, guidance_scale: float = 1.0,
                  generator: torch.Generator | None = None, callback: ProgressCallback | None = None,
                  replace_known: bool = True, scheduler: Any = None, noise: torch.Tensor | None = None,
                  step_offset: int = 0, total_steps: int | None = None) -> torch.Tensor:
    """Sample ``[B, 3, N, h, w]`` model-space flows (see the module docstring).

    ``z0`` [B or 1, C, h, w]; ``music`` [B, D]; ``beats`` [B, N, F]; ``known`` [B, 3, N, h, w] with
    ``known_mask`` [B, N] (bool). ``scheduler`` overrides the one made from ``sampler``.
    ``step_offset``/``total_steps`` let a caller report progress over several windows.
    """
    config = model.config
    device = next(model.parameters()).device
    n = int(n_frames or (known.shape[2] if known is not None else config.n_frames))
    b = int(batch_size or max(z0.shape[0], music.shape[0] if music is not None else 1))
    size = config.latent_size
    scheduler, fallback_threshold = prepare_scheduler(config, sampler, num_inference_steps, device, scheduler)
    timesteps = scheduler.timesteps
    total = total_steps if total_steps is not None else len(timesteps)

    z0 = z0.to(device)
    music = None if music is None else music.to(device, torch.float32)
    beats = None if beats is None else beats.to(device, torch.float32)
    shape = (b, 3, n, size, size)
    x = noise.to(device, torch.float32) if noise is not None else randn(shape, generator, device)
    x = x * scheduler.init_noise_sigma
    mask5 = None
    if known is not None and known_mask is not None and bool(known_mask.any()):
        known = known.to(device, torch.float32)
        known_mask = known_mask.to(device, torch.bool)
        mask5 = known_mask[:, None, :, None, None]
        if replace_known:
            ab0 = alpha_bar(scheduler, timesteps[0], x)
            x = torch.where(mask5, noise_to(known, x, ab0), x)
    else:
        known, known_mask = None, None

    for i, t in enumerate(timesteps):
        x_in = scheduler.scale_model_input(x, t)
        out = guided_output(model, x_in, t.to(device), z0=z0, music=music, beats=beats, known=known,
                            known_mask=known_mask, guidance_scale=guidance_scale)
        x = finish_step(scheduler, config, i, t, out, x_in, x, threshold=fallback_threshold, generator=generator,
                        known=known if replace_known else None, mask5=mask5)
        if callback is not None:
            callback(step_offset + i + 1, total)
    return x


def blend_weights(window: int, device: torch.device) -> torch.Tensor:
    """Triangular weights ``[window]`` (highest mid-window): overlapping windows fade into each other."""
    j = torch.arange(window, device=device, dtype=torch.float32)
    return torch.minimum(j + 1, window - j)


@torch.no_grad()
def sample_sequence(model: Any, *, z0: torch.Tensor, length: int, starts: list[int], window: int,
                    music: torch.Tensor | None, beats: torch.Tensor | None,
                    known: torch.Tensor | None = None, known_mask: torch.Tensor | None = None,
                    sampler: str = "dpm++", num_inference_steps: int | None = None, guidance_scale: float = 1.0,
                    generator: torch.Generator | None = None, callback: ProgressCallback | None = None,
                    step_offset: int = 0, total_steps: int | None = None, max_windows: int = 32) -> torch.Tensor:
    """Sample one sequence of ``length`` samples with overlapping windows denoised *together*.

    At every step each window (``starts``, ``window`` samples each) is denoised by the U-Net and
    the outputs are averaged where windows overlap (triangular weights), then one scheduler step
    moves the whole sequence (MultiDiffusion). Neighbours agree at every noise level, so the
    sequence has no seams, and no window needs a generated prefix it never saw in training.

    ``music`` [B, n_windows, D] (one global vector per window); ``beats`` [B, length, F];
    ``known``/``known_mask`` [B, 3, length, h, w] / [B, length] (e.g. the reference at sample 0,
    imposed by replacement). The windows of all clips run in batches of ``max_windows`` per step,
    so a whole song keeps the memory of a few windows.
    """
    config = model.config
    device = next(model.parameters()).device
    b = z0.shape[0] if music is None else music.shape[0]
    nw = len(starts)
    if starts[-1] + window != length or starts[0] != 0:
        raise ValueError(f"windows {starts} of {window} must tile [0, {length})")
    scheduler, fallback_threshold = prepare_scheduler(config, sampler, num_inference_steps, device)
    timesteps = scheduler.timesteps
    total = total_steps if total_steps is not None else len(timesteps)
    size = config.latent_size
    shape = (b, 3, length, size, size)
    idx = torch.stack([torch.arange(s, s + window) for s in starts]).to(device)  # [nw, W]
    wts = blend_weights(window, device)
    norm = torch.zeros(length, device=device).index_add_(0, idx.reshape(-1), wts.repeat(nw))
    z = z0.to(device)
    z = (z.expand(b, *z.shape[1:]) if z.shape[0] == 1 else z).repeat_interleave(nw, dim=0)
    m = None if music is None else music.to(device, torch.float32).reshape(b * nw, -1)

    def windows_of(v: torch.Tensor | None, axis: int) -> torch.Tensor | None:
        """[B, ..., L, ...] -> [B * nw, ..., W, ...] along ``axis`` (the sample axis)."""
        if v is None:
            return None
        w = v.index_select(axis, idx.reshape(-1))
        w = w.unflatten(axis, (nw, window)).movedim(axis, 1)
        return w.reshape(b * nw, *w.shape[2:])

    bt = windows_of(None if beats is None else beats.to(device, torch.float32), 1)
    x = randn(shape, generator, device) * scheduler.init_noise_sigma
    kn = km = mask5 = None
    if known is not None and known_mask is not None and bool(known_mask.any()):
        known = known.to(device, torch.float32)
        known_mask = known_mask.to(device, torch.bool)
        mask5 = known_mask[:, None, :, None, None]
        kn, km = windows_of(known, 2), windows_of(known_mask, 1)
        x = torch.where(mask5, noise_to(known, x, alpha_bar(scheduler, timesteps[0], x)), x)

    def part(v: torch.Tensor | None, a: int) -> torch.Tensor | None:
        return None if v is None else v[a:a + max_windows]

    for i, t in enumerate(timesteps):
        x_in = scheduler.scale_model_input(x, t)
        xw = windows_of(x_in, 2)
        out_w = torch.cat([  # [B*nw, 3, W, h, w], at most max_windows windows per U-Net call (bounded memory)
            guided_output(model, xw[a:a + max_windows], t.to(device), z0=part(z, a), music=part(m, a),
                          beats=part(bt, a), known=part(kn, a), known_mask=part(km, a), guidance_scale=guidance_scale)
            for a in range(0, xw.shape[0], max_windows)])
        out_w = (out_w * wts.view(1, 1, -1, 1, 1)).unflatten(0, (b, nw))
        acc = torch.zeros(shape, device=device)
        for k in range(nw):
            acc[:, :, starts[k]:starts[k] + window] += out_w[:, k]
        out = acc / norm.view(1, 1, -1, 1, 1)
        x = finish_step(scheduler, config, i, t, out, x_in, x, threshold=fallback_threshold, generator=generator,
                        known=known, mask5=mask5)
        if callback is not None:
            callback(step_offset + i + 1, total)
    return x
