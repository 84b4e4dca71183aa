"""The training loop every stage script shares (flow AE, diffusion): Accelerate, EMA, Adam, a
step-decay LR schedule, exact resume, atomic training states, the exported EMA checkpoint, a
metrics CSV, a loss-curve PNG and sample outputs.

A stage subclasses :class:`StageTrainer` and fills in what is its own: :meth:`~StageTrainer.build`
(config, model, training set), :meth:`~StageTrainer.loss` (one batch), :meth:`~StageTrainer.export`,
:meth:`~StageTrainer.write_samples`, :meth:`~StageTrainer.describe`, ``collate_fn`` and a few
names. Keeping one loop keeps one definition of what "resume reproduces the uninterrupted run bit
for bit" needs: the data order is a function of (seed, epoch) (:class:`ResumableBatchSampler`),
per-step randomness comes from :meth:`~StageTrainer.step_generator` (seed, step), and the global
RNG states are saved with the weights.

:func:`add_common_training_args` adds the flags the stage scripts share (same spelling, type and
meaning), each script naming them in its own order and overriding only what differs (defaults,
help), so ``--help`` of each script reads as before.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch

from .csv_log import CSVLogger
from .ema import EMA
from .plots import plot_loss_curves
from .batch_order import ResumableBatchSampler
from .schedule import StepLRSchedule
from .state import (capture_rng_state, find_latest_state, load_training_state, restore_rng_state,
                    save_training_state)

# ---------------------------------------------------------------------------------- arguments

#: What the stage scripts' shared flags have in common; the rest is given per script.
COMMON_ARGS: dict[str, dict[str, Any]] = {
    # data
    "--data": {"required": True},
    "--split": {"help": "train/test split spec (see dabfusion.data.splits)"},
    "--fps": {"type": float, "default": 30.0},
    "--cache-dir": {"default": None, "help": "frame cache folder (default: <data>/.dabfusion_cache)"},
    "--num-workers": {"type": int, "default": 0, "help": "DataLoader worker processes"},
    # optimisation
    "--batch-size": {"type": int},
    "--lr": {"type": float, "default": 2e-4},
    "--adam-betas": {"type": float, "nargs": 2},
    "--lr-milestones": {"type": float, "nargs": "*", "default": (0.4, 0.6, 0.8)},
    "--lr-gamma": {"type": float, "default": 0.1},
    "--warmup-steps": {"type": int},
    "--max-steps": {"type": int, "default": None, "help": "optimiser steps (overrides --epochs)"},
    "--epochs": {"type": int, "default": None},
    "--ema-decay": {"type": float, "default": 0.999},
    "--grad-clip": {"type": float, "help": "max grad norm (0: off)"},
    "--mixed-precision": {"choices": ("no", "bf16", "fp16"), "default": "no"},
    "--seed": {"type": int, "default": 0},
    # output
    "--out": {"required": True, "help": "output folder"},
    "--resume": {"nargs": "?", "const": "auto", "default": None,
                 "help": "continue from the newest state in --out (or from the state folder given)"},
    "--stop-at-step": {"type": int, "default": None},
    "--max-minutes": {"type": float, "default": None,
                      "help": "wall-clock budget of this run: when it is spent, save, export and exit cleanly "
                              "(continue later with --resume)"},
    "--init-weights": {"default": None, "metavar": "SAFETENSORS",
                       "help": "start from the weights of an exported checkpoint of this stage (same tensor "
                               "shapes; scalars such as flow_scale may differ); a fresh optimiser and schedule"},
    "--checkpoint-every": {"type": int, "default": 500},
    "--keep-checkpoints": {"type": int, "default": 2},
    "--sample-every": {"type": int},
    "--num-samples": {"type": int},
    "--log-every": {"type": int, "default": 10},
    "--threads": {"type": int, "default": None},
    "--no-progress": {"action": "store_true"},
}


def add_common_training_args(group: Any, flags: Iterable[str], **changes: Mapping[str, Any]) -> None:
    """Add the shared ``flags`` (keys of :data:`COMMON_ARGS`) to ``group``, in that order.

    ``changes[dest]`` (``batch_size={"default": 16, "help": ...}``) updates one flag's keyword
    arguments; naming a flag not added here is an error, so a typo cannot pass silently.
    """
    flags = list(flags)
    dests = {f.lstrip("-").replace("-", "_"): f for f in flags}
    unknown = sorted(set(changes) - set(dests))
    if unknown:
        raise TypeError(f"changes for flags not added here: {unknown}")
    for flag in flags:
        kwargs = {**COMMON_ARGS[flag], **changes.get(flag.lstrip("-").replace("-", "_"), {})}
        group.add_argument(flag, **kwargs)


def args_dict(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed arguments as JSON-friendly data (tuples as lists), for states and train_args.json."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}


def train_main(trainer_cls: type["StageTrainer"], parser: argparse.ArgumentParser,
               argv: Sequence[str] | None = None) -> dict[str, Any]:
    """A stage script's ``main``: parse, set up logging, train; returns the run's summary."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    return trainer_cls(args).run()


# ---------------------------------------------------------------------------------- trainer


class StageTrainer:
    """One stage's training run; see the module doc for what a subclass provides.

    After :meth:`build` the subclass has set ``self.config`` (with ``name`` and ``to_dict()``),
    ``self.model`` (the bare module; prepared here) and ``self.train_ds`` (items for ``collate_fn``).
    """

    #: logger of the script (its name shows in every log line)
    log = logging.getLogger(__name__)
    #: file name of the exported EMA checkpoint inside ``--out``
    export_name = "model.safetensors"
    #: what the loss plot's title calls the model, and the progress bar's label
    title = "model"
    progress_desc = "training"
    #: items of ``train_ds`` -> one batch; a plain function (``staticmethod``), so that DataLoader
    #: workers started by "spawn" pickle the function, not the whole trainer
    collate_fn: Callable[[list[Any]], Any]

    def __init__(self, args: argparse.Namespace) -> None:
        from accelerate import Accelerator

        self.args = args
        self.out = Path(args.out)
        self.accelerator = Accelerator(mixed_precision=args.mixed_precision)
        acc = self.accelerator
        self.main = acc.is_main_process
        if args.threads:
            torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)

        self.build()
        if getattr(args, "init_weights", None):
            self.init_weights(Path(args.init_weights))
        self.sampler = ResumableBatchSampler(len(self.train_ds), args.batch_size, seed=args.seed,
                                             num_replicas=acc.num_processes, rank=acc.process_index)
        per_epoch = self.sampler.batches_per_epoch
        if args.max_steps is not None:
            self.total_steps = int(args.max_steps)
        elif args.epochs is not None:
            self.total_steps = int(args.epochs) * per_epoch
        else:
            raise SystemExit("give --max-steps or --epochs")
        self.schedule = StepLRSchedule(args.lr, self.total_steps, args.lr_milestones, args.lr_gamma,
                                       args.warmup_steps)
        self.ema = EMA(self.model, decay=args.ema_decay).to(acc.device)  # before prepare: a bare copy
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr, betas=tuple(args.adam_betas))
        self.model, self.optimizer = acc.prepare(self.model, self.optimizer)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.tb = None

    # -------------------------------------------------------------- hooks
    def build(self) -> None:
        """Set ``config``, ``model``, ``train_ds`` (and whatever else the stage needs), in an order
        that fixes the global RNG draws (``torch.manual_seed(seed)`` has just run)."""
        raise NotImplementedError

    def loss(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss to backpropagate, named terms to log as ``term/<name>``) for one batch."""
        raise NotImplementedError

    def batch_size_of(self, batch: Any) -> int:
        """Items in a batch of this process (for the throughput column)."""
        raise NotImplementedError

    def timing_columns(self, elapsed: float, items: int, steps: int) -> dict[str, float]:
        """Speed columns of a metrics row: ``items`` over all processes in ``steps`` steps."""
        return {"samples_per_s": items / max(elapsed, 1e-9)}

    def export(self) -> None:
        """Write the EMA weights as the inference checkpoint ``out / export_name``."""
        raise NotImplementedError

    def write_samples(self) -> None:
        """Write sample outputs of the EMA model for the current step (called on the main process
        only, every ``--sample-every`` steps and after the last)."""

    def describe(self) -> None:
        """Log what is being trained, once at the start (main process)."""

    # -------------------------------------------------------------- state
    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def state(self) -> dict[str, Any]:
        st = {
            "model": self.unwrapped().state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "rng": capture_rng_state(),
            "config": self.config.to_dict(),
            "args": args_dict(self.args),
        }
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None:
            st["grad_scaler"] = scaler.state_dict()
        return st

    def init_weights(self, path: Path) -> None:
        """Warm start: copy an exported checkpoint's weights into the fresh model (the EMA, made
        next, starts from them too). Every tensor must be there with the model's shape."""
        from ..checkpoint_io import load_checkpoint, load_state_into
        from ..errors import ConfigMismatchError

        if not path.is_file():
            raise SystemExit(f"--init-weights: {path} is not a file; give an exported .safetensors of this stage "
                             f"(e.g. <out>/{self.export_name} of an earlier run)")
        weights, _ = load_checkpoint(path)
        try:
            load_state_into(self.model, weights, str(path))
        except ConfigMismatchError as e:
            raise SystemExit(f"--init-weights: {path} does not fit this model ({e}); it must come from the same "
                             "--config, music encoder and beat-feature setting") from None
        if self.main:
            self.log.info("weights initialised from %s", path)

    def load(self, state_dir: Path) -> None:
        step, st = load_training_state(state_dir)
        saved = st["config"]
        try:  # through the config class: fields added since the state was saved take their defaults
            saved = type(self.config).from_dict(saved).to_dict()
        except (AttributeError, TypeError, ValueError, KeyError):
            pass
        if saved != self.config.to_dict():
            from ..checkpoint_io import config_differences
            from ..errors import ConfigMismatchError

            diff = config_differences(saved, self.config.to_dict())
            raise ConfigMismatchError(f"Cannot resume from {state_dir}: its model config differs:\n  - "
                                      + "\n  - ".join(diff))
        self.unwrapped().load_state_dict(st["model"])
        self.ema.load_state_dict(st["ema"])
        self.optimizer.load_state_dict(st["optimizer"])
        saved_total = st["schedule"]["total_steps"]
        if saved_total != self.total_steps:
            self.log.warning("resuming with %d total steps (was %d): the LR milestones move",
                             self.total_steps, saved_total)
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None and "grad_scaler" in st:
            scaler.load_state_dict(st["grad_scaler"])
        self.step, self.epoch, self.batch_in_epoch = step, st["epoch"], st["batch_in_epoch"]
        restore_rng_state(st["rng"])
        if self.main:
            self.log.info("resumed from %s at step %d (epoch %d, batch %d)", state_dir, step, self.epoch,
                          self.batch_in_epoch)

    def save(self) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if self.main:
            save_training_state(self.out, self.step, self.state(), keep=self.args.keep_checkpoints)
            self.export()
            plot_loss_curves(self.out / "metrics.csv", self.out / "loss.png", smooth=10,
                             title=f"{self.title} ({self.config.name}) training loss")
        acc.wait_for_everyone()

    def export_extra(self) -> dict[str, Any]:
        """The header entries every export records (a stage's :meth:`export` adds its own)."""
        args = self.args
        return {"weights": "ema", "ema_decay": self.ema.decay, "step": self.step, "epoch": self.epoch,
                "total_steps": self.total_steps, "batch_size": args.batch_size * self.accelerator.num_processes,
                "lr": args.lr, "seed": args.seed, "mixed_precision": args.mixed_precision}

    # -------------------------------------------------------------- helpers
    def batches(self) -> Iterator[Any]:
        """Endless batches from the current (epoch, batch) position, advancing epochs."""
        from torch.utils.data import DataLoader

        while True:
            if hasattr(self.train_ds, "set_epoch"):
                self.train_ds.set_epoch(self.epoch)
            self.sampler.set_position(self.epoch, self.batch_in_epoch)
            # own generator: creating a loader must not consume the global torch RNG
            gen = torch.Generator().manual_seed(self.args.seed * 1_000_003 + self.epoch)
            loader = DataLoader(self.train_ds, batch_sampler=self.sampler, num_workers=self.args.num_workers,
                                collate_fn=self.collate_fn, pin_memory=self.accelerator.device.type == "cuda",
                                persistent_workers=False, generator=gen)
            for batch in loader:
                self.batch_in_epoch += 1
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0

    def step_generator(self) -> torch.Generator:
        """The generator of this step's randomness: a function of (seed, step, process)."""
        g = torch.Generator()
        g.manual_seed((self.args.seed * 1_000_003 + self.step * 7919 + self.accelerator.process_index) % (2 ** 63))
        return g

    def _open_tensorboard(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out / "tensorboard"))
        except Exception:  # noqa: BLE001 - tensorboard is optional
            self.tb = None
            self.log.info("TensorBoard not installed: logging to metrics.csv only")

    def _resume(self) -> None:
        args = self.args
        where = find_latest_state(self.out if args.resume == "auto" else args.resume)
        if where is None:
            if args.resume != "auto":
                raise SystemExit(f"--resume: no training state in {args.resume}")
            self.log.info("--resume: no state in %s yet, starting from scratch", self.out)
        else:
            self.load(where)

    def _out_of_time(self, deadline: float) -> bool:
        """Every process stops at the same step: the first process whose budget is spent stops them all."""
        late = time.monotonic() >= deadline
        if self.accelerator.num_processes == 1:
            return late
        flag = torch.tensor(float(late), device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, "max").item())

    # -------------------------------------------------------------- loop
    def run(self) -> dict[str, Any]:
        args, acc = self.args, self.accelerator
        if args.resume:
            self._resume()
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "train_args.json").write_text(json.dumps(args_dict(args), indent=2) + "\n")
            self._open_tensorboard()
            self.describe()
        csv = CSVLogger(self.out / "metrics.csv", resume_step=self.step) if self.main else None
        bar = None
        if self.main and not args.no_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc=self.progress_desc, dynamic_ncols=True)
        self.model.train()
        data = self.batches()
        sums: dict[str, float] = {}
        count, t_last, seen = 0, time.perf_counter(), 0
        last_loss = math.nan
        stop = min(self.total_steps, args.stop_at_step) if args.stop_at_step else self.total_steps
        deadline = time.monotonic() + 60.0 * args.max_minutes if getattr(args, "max_minutes", None) else None
        while self.step < stop:
            batch = next(data)
            lr = self.schedule.apply(self.optimizer, self.step)
            loss, terms = self.loss(batch)
            acc.backward(loss)
            if args.grad_clip > 0:
                acc.clip_grad_norm_(self.model.parameters(), args.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.ema.update(self.model)
            self.step += 1
            if deadline is not None and self._out_of_time(deadline):
                self.log.info("--max-minutes %.4g spent at step %d: saving and stopping", args.max_minutes, self.step)
                stop = self.step
            seen += self.batch_size_of(batch) * acc.num_processes

            vals = {"loss": loss.detach().float(), **{f"term/{k}": v.detach().float() for k, v in terms.items()}}
            reduced = {k: float(acc.reduce(v, "mean") if acc.num_processes > 1 else v) for k, v in vals.items()}
            for k, v in reduced.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            last_loss = reduced["loss"]
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}", epoch=self.epoch)
            if self.step % args.log_every == 0 or self.step == stop:
                now = time.perf_counter()
                row: dict[str, Any] = {k: v / count for k, v in sums.items()}
                row.update(lr=lr, epoch=self.epoch, **self.timing_columns(now - t_last, seen, count))
                if csv is not None:
                    csv.log(self.step, row)
                if self.tb is not None:
                    for k, v in row.items():
                        self.tb.add_scalar(k, v, self.step)
                sums, count, t_last, seen = {}, 0, now, 0
            if self.main and args.sample_every and self.step % args.sample_every == 0:
                self.write_samples()
            if self.step % args.checkpoint_every == 0 or self.step == stop:
                self.save()
        if bar is not None:
            bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.main and args.sample_every and self.step % args.sample_every:
            self.write_samples()  # the last step's samples, unless the loop just wrote them
        if self.main:
            self.log.info("done: %s", self.out / self.export_name)
        return {"step": self.step, "last_loss": last_loss, "export": str(self.out / self.export_name)}
