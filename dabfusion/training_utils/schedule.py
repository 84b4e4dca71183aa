"""Learning-rate schedules as pure functions of the step (nothing hidden to save but the step)."""

from __future__ import annotations

from typing import Any, Sequence

from torch.optim import Optimizer


class StepLRSchedule:
    """``lr = base_lr * gamma ** (milestones passed)``, milestones as fractions of ``total_steps``.

    The paper's flow AE: Adam 2e-4, x0.1 at epochs 60, 90, 120 of 150 -> fractions 0.4, 0.6, 0.8.
    Optional linear warm-up over ``warmup_steps``. :meth:`apply` sets the optimiser's lr for a
    step; the schedule holds no state beyond its settings, so resuming needs only the step.
    """

    def __init__(self, base_lr: float, total_steps: int, milestones: Sequence[float] = (0.4, 0.6, 0.8),
                 gamma: float = 0.1, warmup_steps: int = 0) -> None:
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.milestones = tuple(float(m) for m in milestones)
        self.gamma = float(gamma)
        self.warmup_steps = int(warmup_steps)

    def milestone_steps(self) -> list[int]:
        return [int(round(m * self.total_steps)) for m in self.milestones]

    def lr_at(self, step: int) -> float:
        """Learning rate for the update that takes the model from ``step`` to ``step + 1``."""
        passed = sum(step >= s for s in self.milestone_steps())
        lr = self.base_lr * self.gamma ** passed
        if self.warmup_steps > 0 and step < self.warmup_steps:
            lr *= (step + 1) / self.warmup_steps
        return lr

    def apply(self, optimizer: Optimizer, step: int) -> float:
        lr = self.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "total_steps": self.total_steps, "milestones": list(self.milestones),
                "gamma": self.gamma, "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__init__(state["base_lr"], state["total_steps"], state["milestones"], state["gamma"],
                      state["warmup_steps"])
