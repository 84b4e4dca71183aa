"""Training helpers shared by every stage's script (flow AE, diffusion, music adapters).

- :class:`EMA` (``ema``): exponential moving average of a model's weights.
- :class:`CSVLogger` (``csv_log``): append-only metrics CSV that survives resumes.
- :func:`plot_loss_curves` (``plots``): loss-curve PNG from that CSV.
- :class:`StepLRSchedule` (``schedule``): step-decay LR by fractions of training, with warm-up.
- :class:`ResumableBatchSampler` (``sampler``): seeded per-epoch order, sharded across processes,
  that restarts mid-epoch exactly.
- ``state``: capture/restore RNG states, and save/load a whole training state (model, EMA,
  optimizer, schedule, step, RNG, data position) as safetensors + JSON, atomically.
- :class:`StageTrainer` (``trainer``): the loop the stage scripts share (Accelerate, EMA, LR
  schedule, exact resume, export, CSV/plot/samples), and :func:`add_common_training_args` for
  their shared flags.
"""

from __future__ import annotations

from .csv_log import CSVLogger
from .ema import EMA
from .plots import plot_loss_curves
from .batch_order import ResumableBatchSampler
from .schedule import StepLRSchedule
from .state import (capture_rng_state, find_latest_state, load_training_state, restore_rng_state,
                    save_training_state)
from .trainer import StageTrainer, add_common_training_args, args_dict, train_main

__all__ = [
    "CSVLogger", "EMA", "ResumableBatchSampler", "StageTrainer", "StepLRSchedule", "add_common_training_args",
    "args_dict", "capture_rng_state", "find_latest_state", "load_training_state", "plot_loss_curves",
    "restore_rng_state", "save_training_state", "train_main",
]
