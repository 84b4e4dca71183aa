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
import logging
import sys
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
from dabfusion.training_utils import StageTrainer, add_common_training_args, train_main

log = logging.getLogger("train_flow_ae")
EXPORT_NAME = "flow_ae.safetensors"


# ---------------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = p.add_argument_group("data")
    add_common_training_args(
        d, ("--data", "--split", "--fps"), split={"default": "paper"},
        data={"help": "data folder in AIST++ layout (SynthDance or AIST++), or 'shapes[:N]' for N toy "
                      "videos of moving shapes (smoke tests)"},
        fps={"help": "frame rate the videos are cached at"})
    d.add_argument("--pairs-per-video", type=int, default=10, help="pairs drawn per video per epoch")
    d.add_argument("--max-gap", type=int, default=None, help="max frames between the two of a pair (default: any)")
    d.add_argument("--holdout-dancers", nargs="*", default=(),
                   help="dancers (e.g. d09 d10) whose videos are left out of training, so that the evaluation "
                        "can measure dancers never seen (recorded in the checkpoint)")
    add_common_training_args(d, ("--cache-dir", "--num-workers"))
    m = p.add_argument_group("model")
    m.add_argument("--config", default="small", help=f"preset ({', '.join(PRESETS)}) or a JSON file")
    m.add_argument("--size", type=int, default=None, help="frame size (default: the config's)")
    o = p.add_argument_group("optimisation")
    add_common_training_args(
        o, ("--batch-size", "--lr", "--adam-betas", "--lr-milestones", "--lr-gamma", "--warmup-steps",
            "--max-steps", "--epochs", "--ema-decay", "--grad-clip", "--mixed-precision", "--seed"),
        batch_size={"default": 16, "help": "pairs per step per process"},
        lr={"help": "Adam learning rate (paper: 2e-4)"},
        adam_betas={"default": (0.5, 0.999), "help": "Adam betas (MRAA/LFDM)"},
        lr_milestones={"help": "fractions of training where lr is multiplied by --lr-gamma "
                               "(paper: 60,90,120 of 150 epochs)"},
        warmup_steps={"default": 0}, grad_clip={"default": 0.0},
        epochs={"help": "epochs to train; an epoch is --pairs-per-video random pairs from every training video "
                        "(the paper: 150 epochs of one pair per video, batch 100)"},
        mixed_precision={"help": "autocast precision on GPU (bf16 also works on CPU)"})
    lo = p.add_argument_group("loss")
    lo.add_argument("--perceptual", choices=PERCEPTUAL_KINDS, required=True,
                    help="reconstruction loss: the paper's VGG-19 pyramid (needs --vgg-weights or a file in "
                         "torch's hub cache) or the weight-free L1+SSIM pyramid fallback")
    lo.add_argument("--vgg-weights", default=None, help="torchvision vgg19-dcbb9e9d.pth, or a folder holding it")
    lo.add_argument("--equivariance-weight", type=float, default=10.0,
                    help="weight of each equivariance term (shift, affine); 0 disables them")
    r = p.add_argument_group("output")
    add_common_training_args(
        r, ("--out", "--resume", "--stop-at-step", "--max-minutes", "--checkpoint-every", "--keep-checkpoints",
            "--sample-every",
            "--log-every", "--num-samples", "--threads", "--no-progress"),
        stop_at_step={"help": "save and exit once this step is reached (the schedule still spans the whole run); "
                              "continue later with --resume"},
        checkpoint_every={"help": "steps between training states"},
        sample_every={"default": 500, "help": "steps between sample grids (0: off)"},
        log_every={"help": "steps between CSV rows"},
        num_samples={"default": 6, "help": "pairs in each sample grid"},
        threads={"help": "torch CPU threads (default: torch's)"}, no_progress={"help": "no tqdm bar"})
    return p


# ---------------------------------------------------------------------------------- data


def build_datasets(args: argparse.Namespace, size: int) -> tuple[Any, Any, dict[str, Any]]:
    """(train pairs, sample/held-out pairs or None, description)."""
    if args.data.startswith("shapes"):
        from dabfusion.testing.shapes_toy import ShapesPairDataset

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


class Trainer(StageTrainer):
    """The flow AE's parts of the shared loop: pairs, the reconstruction + equivariance loss, and
    sample grids of fixed pairs."""

    log = log
    export_name = EXPORT_NAME
    title = progress_desc = "flow AE"
    collate_fn = staticmethod(collate)

    def build(self) -> None:
        args, acc = self.args, self.accelerator
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
        self.samples = fixed_samples(held if held is not None else self.train_ds, args.num_samples)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        acc = self.accelerator
        ref, drv = to_unit(batch["reference"], acc.device), to_unit(batch["driving"], acc.device)
        transform = None
        transformed = None
        if self.loss_config.uses_equivariance:
            transform = self.loss_fn.make_transform(ref.shape[0], self.step_generator(), acc.device)
            transformed = transform.transform_frame(drv)
        with acc.autocast():
            out = self.model(ref, drv, transformed)
            return self.loss_fn(out, drv, transform)

    def batch_size_of(self, batch: dict[str, torch.Tensor]) -> int:
        return batch["reference"].shape[0]

    def export(self) -> None:
        """The EMA weights as the inference checkpoint the pipeline and nodes load."""
        extra = {**self.export_extra(), "loss": self.loss_config.to_dict(),
                 "reconstruction_loss": self.recon_description, "data": self.data_desc,
                 "parameters": parameter_table(self.ema.model)}
        save_flow_ae(self.out / EXPORT_NAME, self.ema.model, extra)

    @torch.no_grad()
    def write_samples(self) -> None:
        dev = self.accelerator.device
        ref, drv = to_unit(self.samples["reference"], dev), to_unit(self.samples["driving"], dev)
        model = self.ema.model
        with self.accelerator.autocast():
            out = model(ref, drv)
        save_sample_grid(self.out / "samples" / f"step_{self.step:08d}.png", ref, drv,
                         out["reconstruction"], out["flow"], out["occlusion"])

    def describe(self) -> None:
        args, acc = self.args, self.accelerator
        params = parameter_table(self.unwrapped())
        log.info("flow AE %s: %s params (%s)", self.config.name, f"{params['total']:,}",
                 ", ".join(f"{k} {v:,}" for k, v in params.items() if k != "total"))
        log.info("reconstruction loss: %s", self.recon_description)
        log.info("data: %s", self.data_desc)
        log.info("%d steps of %d pairs x %d processes, %d batches per epoch, device %s, precision %s",
                 self.total_steps, args.batch_size, acc.num_processes, self.sampler.batches_per_epoch,
                 acc.device, args.mixed_precision)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return train_main(Trainer, build_parser(), argv)


if __name__ == "__main__":
    main()
