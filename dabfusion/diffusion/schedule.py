"""The diffusion process: diffusers schedulers configured from a :class:`DiffusionConfig`.

We do not write samplers: training uses :class:`diffusers.DDPMScheduler` (``add_noise``,
``get_velocity``) and sampling any of :data:`SAMPLERS`, all built on the same T = 1000 step
``squaredcos_cap_v2`` (cosine) schedule, epsilon or v prediction:

=========  ================================  =========  ==========================================
name       diffusers class                   steps      notes
=========  ================================  =========  ==========================================
ddpm       DDPMScheduler                     1000       the paper's sampler (ancestral, fixed_small)
ddim       DDIMScheduler                     50         eta 0, "trailing" spacing; use a step count
                                                        that divides 1000 (diffusers' DDIM steps from
                                                        t to t - 1000 // steps, so other counts end
                                                        short of the clean sample)
dpm++      DPMSolverMultistepScheduler       25         2nd-order DPM-Solver++, "trailing" spacing,
                                                        lambda_min_clipped -5.1 (diffusers' advice
                                                        for the cosine schedule, as DeepFloyd IF)
=========  ================================  =========  ==========================================

Dynamic thresholding (Imagen; LFDM uses the 0.9 percentile): each of the three applies it
natively to its x0 prediction (``thresholding=True``, ``dynamic_thresholding_ratio``,
``sample_max_value``; DPM-Solver only in its ``dpmsolver++`` form, which is the one we use).
:func:`make_scheduler` checks the class's ``__init__`` for support; a scheduler without it
gets :func:`threshold_model_output`, which rewrites the model output from a thresholded x0
(exactly what DDPM does natively; DDIM natively keeps the raw epsilon for the direction term).
``clip_sample`` is turned off: thresholding replaces it.

Model space. The U-Net sees ``x = [flow * flow_scale, 2 * occlusion - 1]``: flow offsets are in
normalised units (:mod:`dabfusion.flow_ae.warp`, a dancer's are a few tenths) and are scaled so
that thresholding at 1 clips only outliers; the occlusion map [0, 1] maps onto [-1, 1].
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from .config import DiffusionConfig

SAMPLERS = ("dpm++", "ddim", "ddpm")
DEFAULT_STEPS = {"ddpm": 1000, "ddim": 50, "dpm++": 25}
_ALIASES = {"dpmsolver++": "dpm++", "dpm-solver++": "dpm++", "dpmpp": "dpm++", "dpm_solver++": "dpm++",
            "dpmsolver": "dpm++"}


def canonical_sampler(name: str) -> str:
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in SAMPLERS:
        raise ValueError(f"Unknown sampler {name!r}: use one of {SAMPLERS}")
    return key


def _common(config: DiffusionConfig) -> dict[str, Any]:
    return dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
                prediction_type=config.prediction_type, thresholding=config.thresholding,
                dynamic_thresholding_ratio=config.dynamic_thresholding_ratio,
                sample_max_value=config.sample_max_value)


def supports_native_thresholding(scheduler_or_cls: Any) -> bool:
    cls = scheduler_or_cls if isinstance(scheduler_or_cls, type) else type(scheduler_or_cls)
    params = inspect.signature(cls.__init__).parameters
    return all(k in params for k in ("thresholding", "dynamic_thresholding_ratio", "sample_max_value"))


def make_scheduler(config: DiffusionConfig, sampler: str = "ddpm", **overrides: Any):
    """A fresh diffusers scheduler for ``sampler`` (``ddpm``, ``ddim``, ``dpm++``)."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    name = canonical_sampler(sampler)
    kw = _common(config)
    if name == "ddpm":
        cls = DDPMScheduler
        kw.update(clip_sample=False, variance_type="fixed_small")
    elif name == "ddim":
        cls = DDIMScheduler
        kw.update(clip_sample=False, timestep_spacing="trailing", set_alpha_to_one=True)
    else:
        cls = DPMSolverMultistepScheduler
        kw.update(algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing",
                  lower_order_final=True, final_sigmas_type="zero",
                  lambda_min_clipped=-5.1 if config.beta_schedule == "squaredcos_cap_v2" else -float("inf"))
    kw.update(overrides)
    if not supports_native_thresholding(cls):  # not reached for our three; kept for custom classes
        for k in ("thresholding", "dynamic_thresholding_ratio", "sample_max_value"):
            kw.pop(k, None)
    return cls(**kw)


def training_scheduler(config: DiffusionConfig):
    """The forward process for training (noise, targets): DDPM with the config's schedule."""
    return make_scheduler(config, "ddpm")


def needs_output_thresholding(scheduler: Any, config: DiffusionConfig) -> bool:
    """True when the config asks for thresholding but the scheduler will not do it itself."""
    if not config.thresholding:
        return False
    return not (supports_native_thresholding(scheduler) and getattr(scheduler.config, "thresholding", False))


# --------------------------------------------------------------------------------- maths


def alpha_bar(scheduler: Any, timesteps: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
    """``alphas_cumprod[t]`` broadcastable against ``like`` ([B] -> [B,1,1,1,1]); t < 0 -> 1."""
    ac = scheduler.alphas_cumprod.to(device=like.device, dtype=torch.float64)
    t = torch.as_tensor(timesteps, device=like.device).long().reshape(-1)
    a = torch.where(t >= 0, ac[t.clamp(min=0)], torch.ones_like(ac[:1]))
    if a.numel() == 1 and like.shape[0] != 1:
        a = a.expand(like.shape[0])
    return a.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def noise_to(x0: torch.Tensor, noise: torch.Tensor, ab: torch.Tensor | float) -> torch.Tensor:
    """``sqrt(ab) x0 + sqrt(1 - ab) noise`` (the forward process at cumulative alpha ``ab``)."""
    ab = torch.as_tensor(ab, device=x0.device, dtype=x0.dtype)
    return ab.sqrt() * x0 + (1 - ab).clamp(min=0).sqrt() * noise


def dynamic_threshold(x0: torch.Tensor, ratio: float, max_value: float) -> torch.Tensor:
    """Imagen's dynamic thresholding per sample: ``s = clamp(percentile(|x0|), 1, max)``, clip, / s."""
    b = x0.shape[0]
    flat = x0.float().reshape(b, -1)
    s = torch.quantile(flat.abs(), ratio, dim=1).clamp(min=1.0, max=max_value)[:, None]
    return (flat.clamp(-s, s) / s).reshape(x0.shape).to(x0.dtype)


def threshold_model_output(output: torch.Tensor, sample: torch.Tensor, timestep: torch.Tensor | int,
                           scheduler: Any, config: DiffusionConfig) -> torch.Tensor:
    """Rewrite eps / v so that the x0 it implies is dynamically thresholded (for schedulers
    that cannot threshold). ``sample`` is the (VP-form) model input at ``timestep``."""
    ab = alpha_bar(scheduler, timestep, sample).clamp(min=1e-12)
    a, s = ab.sqrt(), (1 - ab).clamp(min=1e-12).sqrt()
    if config.prediction_type == "epsilon":
        x0 = (sample - s * output) / a
    else:
        x0 = a * sample - s * output
    x0 = dynamic_threshold(x0, config.dynamic_thresholding_ratio, config.sample_max_value)
    if config.prediction_type == "epsilon":
        return (sample - a * x0) / s
    return (a * sample - x0) / s


def training_target(scheduler: Any, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                    prediction_type: str) -> torch.Tensor:
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(x0, noise, timesteps)
    raise ValueError(f"unknown prediction_type {prediction_type!r}")


# --------------------------------------------------------------------------------- model space


def compand_flow(flow: torch.Tensor, flow_scale: float, flow_power: float = 1.0) -> torch.Tensor:
    """``sign(f) * |flow_scale * f| ** flow_power``: flows into model space.

    Latent flows are long-tailed (on SynthDance the median |f| is ~1/50 of the 99th percentile):
    a linear map that keeps the tail inside thresholding's [-1, 1] leaves ordinary motion far
    under the unit noise, and sampled flows jitter. A power < 1 lifts small motions and keeps
    the tail bounded; errors near zero flow shrink on the way back (f ~ m ** (1 / power)).
    """
    if flow_power == 1.0:
        return flow * flow_scale
    return torch.sign(flow) * (flow.abs() * flow_scale).pow(flow_power)


def expand_flow(m: torch.Tensor, flow_scale: float, flow_power: float = 1.0) -> torch.Tensor:
    """The inverse of :func:`compand_flow`."""
    if flow_power == 1.0:
        return m / flow_scale
    return torch.sign(m) * m.abs().pow(1.0 / flow_power) / flow_scale


def to_model_space(flow: torch.Tensor, occlusion: torch.Tensor, flow_scale: float,
                   flow_power: float = 1.0) -> torch.Tensor:
    """Flows ``[..., 2, h, w]`` + occlusions ``[..., 1, h, w]`` -> x ``[..., 3, h, w]``.

    Frame-major layouts (``[B, N, c, h, w]`` or ``[N, c, h, w]``, as the flow AE returns them);
    the U-Net itself takes ``b c f h w`` (see :func:`frames_to_volume`).
    """
    return torch.cat([compand_flow(flow, flow_scale, flow_power), occlusion * 2 - 1], dim=-3)


def from_model_space(x: torch.Tensor, flow_scale: float,
                     flow_power: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """x ``[..., 3, h, w]`` -> (flow ``[..., 2, h, w]``, occlusion ``[..., 1, h, w]`` in [0, 1])."""
    flow = expand_flow(x[..., :2, :, :], flow_scale, flow_power)
    occ = ((x[..., 2:3, :, :] + 1) / 2).clamp(0, 1)
    return flow, occ


def frames_to_volume(x: torch.Tensor) -> torch.Tensor:
    """``[B, N, c, h, w]`` (frame-major, user side) -> ``[B, c, N, h, w]`` (the U-Net's layout)."""
    return x.transpose(1, 2)


def volume_to_frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, c, N, h, w]`` -> ``[B, N, c, h, w]``."""
    return x.transpose(1, 2)


def identity_frame(size: int, *, device: Any = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Model-space value of "the reference itself": zero flow, fully visible, ``[3, h, w]``."""
    x = torch.zeros(3, size, size, device=device, dtype=dtype)
    x[2] = 1.0
    return x
