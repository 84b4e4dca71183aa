"""Train the latent flow auto-encoder (paper section 3.3) on (reference, driving) frame pairs.

One script from one CPU to many GPUs (Accelerate)::

    python -m training.train_flow_ae --data data/synthdance --config small --perceptual l1ssim \\
        --max-steps 3000 --out runs/flow_ae_small
    accelerate launch -m training.train_flow_ae --data data/aist --config paper \\
        --perceptual vgg19 --vgg-weights models/vgg --mixed-precision bf16 --epochs 150 \\
        --batch-size 50 --out runs/flow_ae_paper

Writes into ``--out``: ``flow_ae.safetensors`` (+ ``.json``; EMA weights, the file the pipeline
loads), ``checkpoints/step_*/`` (full training states; ``--resume`` continues exactly from the
newest), ``metrics.csv``, ``loss.png``, ``samples/step_*.png`` (reference | driving |
reconstruction | flow | occlusion) and ``train_args.json``.

Reproducibility: the data order is a function of (seed, epoch), each pair of (seed, epoch, index)
and each random equivariance warp of (seed, step), so ``--resume`` reproduces the uninterrupted
run bit for bit on the same hardware, whatever ``--num-workers`` is. Python/numpy/torch RNG
states are saved and restored as well.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

if __package__ in (None, ""):  # run as a file (python training/x.py), not as a module: find the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dabfusion.flow_ae.checkpoint import save_flow_ae
from dabfusion.flow_ae.config import PRESETS, FlowAEConfig, get_config
from dabfusion.flow_ae.losses import PERCEPTUAL_KINDS, FlowAELoss, LossConfig, build_reconstruction_loss
from dabfusion.flow_ae.model import FlowAutoEncoder, parameter_table
from dabfusion.flow_ae.visualize import save_sample_grid
from dabfusion.training_utils import (EMA, CSVLogger, ResumableBatchSampler, StepLRSchedule,
                                     capture_rng_state, find_latest_state, load_training_state,
                                     plot_loss_curves, restore_rng_state, save_training_state)

log = logging.getLogger("train_flow_ae")
EXPORT_NAME = "flow_ae.safetensors"


# ---------------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--data", required=True,
                   help="data folder in AIST++ layout (SynthDance or AIST++), or 'shapes[:N]' for N toy "
                        "videos of moving shapes (smoke tests)")
    d.add_argument("--split", default="paper", help="train/test split spec (see dabfusion.data.splits)")
    d.add_argument("--fps", type=float, default=30.0, help="frame rate the videos are cached at")
    d.add_argument("--pairs-per-video", type=int, default=10, help="pairs drawn per video per epoch")
    d.add_argument("--max-gap", type=int, default=None, help="max frames between the two of a pair (default: any)")
    d.add_argument("--holdout-dancers", nargs="*", default=(),
                   help="dancers (e.g. d09 d10) whose videos are left out of training, so that the evaluation "
                        "can measure dancers never seen (recorded in the checkpoint)")
    d.add_argument("--cache-dir", default=None, help="frame cache folder (default: <data>/.dabfusion_cache)")
    d.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    m = p.add_argument_group("model")
    m.add_argument("--config", default="small", help=f"preset ({', '.join(PRESETS)}) or a JSON file")
    m.add_argument("--size", type=int, default=None, help="frame size (default: the config's)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--batch-size", type=int, default=16, help="pairs per step per process")
    o.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (paper: 2e-4)")
    o.add_argument("--adam-betas", type=float, nargs=2, default=(0.5, 0.999), help="Adam betas (MRAA/LFDM)")
    o.add_argument("--lr-milestones", type=float, nargs="*", default=(0.4, 0.6, 0.8),
                   help="fractions of training where lr is multiplied by --lr-gamma (paper: 60,90,120 of 150 epochs)")
    o.add_argument("--lr-gamma", type=float, default=0.1)
    o.add_argument("--warmup-steps", type=int, default=0)
    o.add_argument("--max-steps", type=int, default=None, help="optimiser steps (overrides --epochs)")
    o.add_argument("--epochs", type=int, default=None, help="epochs to train; an epoch is --pairs-per-video random pairs from every training video "
                        "(the paper: 150 epochs of one pair per video, batch 100)")
    o.add_argument("--ema-decay", type=float, default=0.999)
    o.add_argument("--grad-clip", type=float, default=0.0, help="max grad norm (0: off)")
    o.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"), default="no",
                   help="autocast precision on GPU (bf16 also works on CPU)")
    o.add_argument("--seed", type=int, default=0)
    lo = p.add_argument_group("loss")
    lo.add_argument("--perceptual", choices=PERCEPTUAL_KINDS, required=True,
                    help="reconstruction loss: the paper's VGG-19 pyramid (needs --vgg-weights or a file in "
                         "torch's hub cache) or the weight-free L1+SSIM pyramid fallback")
    lo.add_argument("--vgg-weights", default=None, help="torchvision vgg19-dcbb9e9d.pth, or a folder holding it")
    lo.add_argument("--equivariance-weight", type=float, default=10.0,
                    help="weight of each equivariance term (shift, affine); 0 disables them")
    r = p.add_argument_group("output")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from the newest state in --out (or from the state folder given)")
    r.add_argument("--stop-at-step", type=int, default=None,
                   help="save and exit once this step is reached (the schedule still spans the whole run); "
                        "continue later with --resume")
    r.add_argument("--checkpoint-every", type=int, default=500, help="steps between training states")
    r.add_argument("--keep-checkpoints", type=int, default=2)
    r.add_argument("--sample-every", type=int, default=500, help="steps between sample grids (0: off)")
    r.add_argument("--log-every", type=int, default=10, help="steps between CSV rows")
    r.add_argument("--num-samples", type=int, default=6, help="pairs in each sample grid")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    r.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p


# ---------------------------------------------------------------------------------- data


def build_datasets(args: argparse.Namespace, size: int) -> tuple[Any, Any, dict[str, Any]]:
    """(train pairs, sample/held-out pairs or None, description)."""
    if args.data.startswith("shapes"):
        from dabfusion.flow_ae.toy_data import ShapesPairDataset

        n = int(args.data.split(":", 1)[1]) if ":" in args.data else 16
        train = ShapesPairDataset(n, size, pairs_per_video=args.pairs_per_video, seed=args.seed)
        held = ShapesPairDataset(max(2, n // 4), size, pairs_per_video=1, seed=args.seed + 10_000)
        return train, held, {"kind": "shapes", "videos": n, "pairs": len(train)}
    from dabfusion.data import PairDataset

    common = dict(split_spec=args.split, fps=args.fps, size=size, max_gap=args.max_gap,
                  cache_dir=args.cache_dir, frames_dtype="uint8")
    holdout = parse_dancers(args.holdout_dancers)
    kept = None
    if holdout:
        from dabfusion.data import scan_dataset

        every = {r.name.dancer for r in scan_dataset(args.data).videos}
        kept = sorted(every - set(holdout))
        if not kept:
            raise SystemExit(f"--holdout-dancers leaves no dancer to train on (the data has {sorted(every)})")
    train = PairDataset(args.data, split="train", pairs_per_video=args.pairs_per_video, seed=args.seed,
                        dancers=kept, **common)
    try:
        held = PairDataset(args.data, split="test", pairs_per_video=1, seed=args.seed + 1, **common)
    except Exception as e:  # noqa: BLE001 - e.g. an all-train split: samples then come from train
        log.info("no held-out part for sample grids (%s); using training pairs", e)
        held = None
    desc = {"kind": "aist-layout", "root": str(args.data), "split": args.split,
            "holdout_dancers": [f"d{d:02d}" for d in holdout],
            "train_dancers": sorted({f"d{v.record.name.dancer:02d}" for v in train.videos}),
            "train_videos": len(train.videos), "train_tracks": train.tracks, "pairs": len(train)}
    return train, held, desc


def parse_dancers(values: Sequence[str]) -> list[int]:
    """``["d09", "10", "3,4"]`` -> ``[3, 4, 9, 10]``."""
    out = set()
    for v in values:
        for part in str(v).replace(",", " ").split():
            try:
                out.add(int(part.strip().lstrip("dD")))
            except ValueError:
                raise SystemExit(f"--holdout-dancers: cannot read {part!r} as a dancer (e.g. d09)") from None
    return sorted(out)


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in ("reference", "driving")}


def to_unit(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def fixed_samples(ds: Any, n: int) -> dict[str, torch.Tensor]:
    n = min(n, len(ds))
    step = max(1, len(ds) // n)
    return collate([ds[i * step] for i in range(n)])


# ---------------------------------------------------------------------------------- training


class Trainer:
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

        config = get_config(args.config)
        if args.size:
            config = config.with_image_size(args.size)
        self.config: FlowAEConfig = config
        self.model = FlowAutoEncoder(config)

        eq = args.equivariance_weight
        self.loss_config = LossConfig(perceptual=args.perceptual, equivariance_shift=eq, equivariance_affine=eq)
        recon = build_reconstruction_loss(self.loss_config, args.vgg_weights)
        self.loss_fn = FlowAELoss(self.loss_config, recon, config.revert_axis_swap).to(acc.device)
        self.recon_description = recon.describe()

        self.train_ds, held, self.data_desc = build_datasets(args, config.image_size)
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
        self.samples = fixed_samples(held if held is not None else self.train_ds, args.num_samples)

        self.ema = EMA(self.model, decay=args.ema_decay).to(acc.device)  # before prepare: a bare copy
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr, betas=tuple(args.adam_betas))
        self.model, self.optimizer = acc.prepare(self.model, self.optimizer)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.tb = None

    # -------------------------------------------------------------- state
    def unwrapped(self) -> FlowAutoEncoder:
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
            "args": _args_dict(self.args),
        }
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None:
            st["grad_scaler"] = scaler.state_dict()
        return st

    def load(self, state_dir: Path) -> None:
        step, st = load_training_state(state_dir)
        if st["config"] != self.config.to_dict():
            from dabfusion.checkpoint_io import config_differences
            from dabfusion.errors import ConfigMismatchError

            diff = config_differences(st["config"], self.config.to_dict())
            raise ConfigMismatchError(f"Cannot resume from {state_dir}: its model config differs:\n  - "
                                      + "\n  - ".join(diff))
        self.unwrapped().load_state_dict(st["model"])
        self.ema.load_state_dict(st["ema"])
        self.optimizer.load_state_dict(st["optimizer"])
        saved_total = st["schedule"]["total_steps"]
        if saved_total != self.total_steps:
            log.warning("resuming with %d total steps (was %d): the LR milestones move", self.total_steps, saved_total)
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None and "grad_scaler" in st:
            scaler.load_state_dict(st["grad_scaler"])
        self.step, self.epoch, self.batch_in_epoch = step, st["epoch"], st["batch_in_epoch"]
        restore_rng_state(st["rng"])
        if self.main:
            log.info("resumed from %s at step %d (epoch %d, batch %d)", state_dir, step, self.epoch, self.batch_in_epoch)

    def save(self) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if self.main:
            save_training_state(self.out, self.step, self.state(), keep=self.args.keep_checkpoints)
            self.export()
            plot_loss_curves(self.out / "metrics.csv", self.out / "loss.png", smooth=10,
                             title=f"flow AE ({self.config.name}) training loss")
        acc.wait_for_everyone()

    def export(self) -> None:
        """The EMA weights as the inference checkpoint the pipeline and nodes load."""
        extra = {
            "weights": "ema", "ema_decay": self.ema.decay, "step": self.step, "epoch": self.epoch,
            "total_steps": self.total_steps, "loss": self.loss_config.to_dict(),
            "reconstruction_loss": self.recon_description, "data": self.data_desc,
            "batch_size": self.args.batch_size * self.accelerator.num_processes,
            "lr": self.args.lr, "seed": self.args.seed, "mixed_precision": self.args.mixed_precision,
            "parameters": parameter_table(self.ema.model),
        }
        save_flow_ae(self.out / EXPORT_NAME, self.ema.model, extra)

    # -------------------------------------------------------------- helpers
    def batches(self):
        """Endless batches from the current (epoch, batch) position, advancing epochs."""
        from torch.utils.data import DataLoader

        while True:
            if hasattr(self.train_ds, "set_epoch"):
                self.train_ds.set_epoch(self.epoch)
            self.sampler.set_position(self.epoch, self.batch_in_epoch)
            # own generator: creating a loader must not consume the global torch RNG
            gen = torch.Generator().manual_seed(self.args.seed * 1_000_003 + self.epoch)
            loader = DataLoader(self.train_ds, batch_sampler=self.sampler, num_workers=self.args.num_workers,
                                collate_fn=collate, pin_memory=self.accelerator.device.type == "cuda",
                                persistent_workers=False, generator=gen)
            for batch in loader:
                self.batch_in_epoch += 1
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0

    def step_generator(self) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed((self.args.seed * 1_000_003 + self.step * 7919 + self.accelerator.process_index) % (2 ** 63))
        return g

    @torch.no_grad()
    def write_samples(self) -> None:
        if not self.main or not self.args.sample_every:
            return
        dev = self.accelerator.device
        ref, drv = to_unit(self.samples["reference"], dev), to_unit(self.samples["driving"], dev)
        model = self.ema.model
        with self.accelerator.autocast():
            out = model(ref, drv)
        save_sample_grid(self.out / "samples" / f"step_{self.step:08d}.png", ref, drv,
                         out["reconstruction"], out["flow"], out["occlusion"])

    def _open_tensorboard(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out / "tensorboard"))
        except Exception:  # noqa: BLE001 - tensorboard is optional
            self.tb = None
            log.info("TensorBoard not installed: logging to metrics.csv only")

    # -------------------------------------------------------------- loop
    def run(self) -> dict[str, Any]:
        args, acc = self.args, self.accelerator
        if args.resume:
            where = find_latest_state(self.out if args.resume == "auto" else args.resume)
            if where is None:
                if args.resume != "auto":
                    raise SystemExit(f"--resume: no training state in {args.resume}")
                log.info("--resume: no state in %s yet, starting from scratch", self.out)
            else:
                self.load(where)
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "train_args.json").write_text(json.dumps(_args_dict(args), indent=2) + "\n")
            self._open_tensorboard()
            params = parameter_table(self.unwrapped())
            log.info("flow AE %s: %s params (%s)", self.config.name, f"{params['total']:,}",
                     ", ".join(f"{k} {v:,}" for k, v in params.items() if k != "total"))
            log.info("reconstruction loss: %s", self.recon_description)
            log.info("data: %s", self.data_desc)
            log.info("%d steps of %d pairs x %d processes, %d batches per epoch, device %s, precision %s",
                     self.total_steps, args.batch_size, acc.num_processes, self.sampler.batches_per_epoch,
                     acc.device, args.mixed_precision)
        csv = CSVLogger(self.out / "metrics.csv", resume_step=self.step) if self.main else None
        bar = None
        if self.main and not args.no_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc="flow AE", dynamic_ncols=True)
        self.model.train()
        data = self.batches()
        sums: dict[str, float] = {}
        count, t_last, samples_seen = 0, time.perf_counter(), 0
        last_loss = math.nan
        stop = min(self.total_steps, args.stop_at_step) if args.stop_at_step else self.total_steps
        while self.step < stop:
            batch = next(data)
            ref, drv = to_unit(batch["reference"], acc.device), to_unit(batch["driving"], acc.device)
            lr = self.schedule.apply(self.optimizer, self.step)
            transform = None
            transformed = None
            if self.loss_config.uses_equivariance:
                transform = self.loss_fn.make_transform(ref.shape[0], self.step_generator(), acc.device)
                transformed = transform.transform_frame(drv)
            with acc.autocast():
                out = self.model(ref, drv, transformed)
                loss, terms = self.loss_fn(out, drv, transform)
            acc.backward(loss)
            if args.grad_clip > 0:
                acc.clip_grad_norm_(self.model.parameters(), args.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.ema.update(self.model)
            self.step += 1
            samples_seen += ref.shape[0] * acc.num_processes

            vals = {"loss": loss.detach().float(), **{f"term/{k}": v.detach().float() for k, v in terms.items()}}
            for k, v in vals.items():
                sums[k] = sums.get(k, 0.0) + float(acc.reduce(v, "mean") if acc.num_processes > 1 else v)
            count += 1
            last_loss = float(vals["loss"])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}", epoch=self.epoch)
            if self.step % args.log_every == 0 or self.step == stop:
                now = time.perf_counter()
                row = {k: v / count for k, v in sums.items()}
                row.update(lr=lr, epoch=self.epoch, samples_per_s=samples_seen / max(now - t_last, 1e-9))
                if csv is not None:
                    csv.log(self.step, row)
                if self.tb is not None:
                    for k, v in row.items():
                        self.tb.add_scalar(k, v, self.step)
                sums, count, t_last, samples_seen = {}, 0, now, 0
            if args.sample_every and self.step % args.sample_every == 0:
                self.write_samples()
            if self.step % args.checkpoint_every == 0 or self.step == stop:
                self.save()
        if bar is not None:
            bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.main:
            self.write_samples()
            log.info("done: %s", self.out / EXPORT_NAME)
        return {"step": self.step, "last_loss": last_loss, "export": str(self.out / EXPORT_NAME)}


def _args_dict(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    return Trainer(args).run()


if __name__ == "__main__":
    main()
