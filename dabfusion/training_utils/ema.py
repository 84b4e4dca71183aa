"""Exponential moving average of model weights (used for sampling and for the saved checkpoint)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """``shadow = decay * shadow + (1 - decay) * param`` after each optimiser step.

    The shadow is a full copy of the model (``self.model``, eval mode, no grads) so it can be run
    directly. ``warmup``: the effective decay is ``min(decay, (1 + n) / (10 + n))`` for the n-th
    update, so early weights are not averaged with the random initialisation for thousands of
    steps. Buffers (e.g. BatchNorm statistics) are copied, not averaged. Floating point only.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.model = copy.deepcopy(_unwrap(model)).eval().requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        src = _unwrap(model)
        for e, p in zip(self.model.parameters(), src.parameters()):
            if p.is_floating_point():
                e.lerp_(p.detach().to(e.dtype), 1.0 - d)
            else:
                e.copy_(p)
        for e, b in zip(self.model.buffers(), src.buffers()):
            e.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "weights": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.warmup = bool(state["warmup"])
        self.num_updates = int(state["num_updates"])
        self.model.load_state_dict(state["weights"])

    def to(self, *args: Any, **kwargs: Any) -> "EMA":
        self.model.to(*args, **kwargs)
        return self


def _unwrap(model: nn.Module) -> nn.Module:
    """The bare module inside DDP / torch.compile / Accelerate wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None or not isinstance(inner, nn.Module):
            return model
        model = inner
