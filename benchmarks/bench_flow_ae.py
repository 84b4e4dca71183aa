"""Speed of the flow AE per configuration: training throughput and per-frame inference latency.

    python benchmarks/bench_flow_ae.py                       # tiny, small, paper on CPU (+ CUDA if present)
    python benchmarks/bench_flow_ae.py --configs small --devices cpu --threads 1 --json bench.json

Training throughput is pairs per second of a full optimiser step (region predictor on reference,
driving and the equivariance-warped frame, dense motion, encode, warp, decode, loss, backward,
Adam). The reconstruction loss is the L1+SSIM pyramid by default; ``--loss vgg19-timing`` adds a
VGG-19 pyramid with *random* weights, for timing only (training itself never uses random VGG
weights). Inference latency is per frame, from batches of ``--frames`` frames, for encode,
predict_flow (region predictor + dense motion), warp and decode, under ``inference_mode``.
Random inputs and weights: the speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dabfusion.flow_ae.config import PRESETS  # noqa: E402
from dabfusion.flow_ae.losses import (FlowAELoss, L1SSIMPyramidLoss, LossConfig, VGG19Features,  # noqa: E402
                                      VGGPyramidLoss)
from dabfusion.flow_ae.model import FlowAutoEncoder, count_parameters  # noqa: E402
from dabfusion.flow_ae.warp import warp  # noqa: E402

DEFAULT_TRAIN_BATCH = {"tiny": 16, "small": 16, "paper": 4}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn: Callable[[], Any], device: torch.device, min_runs: int, budget_s: float, warmup: int = 1) -> float:
    """Median seconds per call: ``warmup`` calls, then at least ``min_runs`` within ~``budget_s``."""
    for _ in range(warmup):
        fn()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < budget_s and len(times) < 50):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def bench_config(name: str, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    cfg = PRESETS[name]
    torch.manual_seed(0)
    model = FlowAutoEncoder(cfg).to(device)
    s = cfg.image_size
    b = args.batch_size or DEFAULT_TRAIN_BATCH[name]
    lc = LossConfig(perceptual="l1ssim")
    if args.loss == "vgg19-timing":
        vgg = VGG19Features()
        vgg.source = "random weights (timing only)"
        recon = VGGPyramidLoss(vgg, lc.scales, lc.perceptual_weights)
    else:
        recon = L1SSIMPyramidLoss(lc.scales, lc.l1_weight, lc.ssim_weight)
    loss_fn = FlowAELoss(lc, recon).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    ref, drv = torch.rand(b, 3, s, s, device=device), torch.rand(b, 3, s, s, device=device)
    amp = args.amp if device.type == "cuda" else "no"
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    gen = torch.Generator().manual_seed(0)

    def train_step() -> None:
        tr = loss_fn.make_transform(b, gen, device)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = model(ref, drv, tr.transform_frame(drv))
            loss, _ = loss_fn(out, drv, tr)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    model.train()
    step_s = timeit(train_step, device, args.min_runs, args.budget)
    row: dict[str, Any] = {"config": name, "device": str(device), "params": count_parameters(model),
                           "image": s, "latent": f"{cfg.latent_channels}x{cfg.latent_size}x{cfg.latent_size}",
                           "train_batch": b, "train_step_s": step_s, "train_samples_per_s": b / step_s,
                           "train_precision": amp}
    model.eval()
    n = args.frames
    x = torch.rand(n, 3, s, s, device=device)
    for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        if dtype_name == "bfloat16" and not args.bf16:
            continue
        m = model.to(dtype)
        xx = x.to(dtype)
        with torch.inference_mode():
            z = m.encode(xx)
            flow, occ = m.predict_flow(xx[:1].expand_as(xx), xx)
            zw = warp(z, flow, occ)
            lat = {
                "encode": timeit(lambda: m.encode(xx), device, args.min_runs, args.budget / 4),
                "predict_flow": timeit(lambda: m.predict_flow(xx[:1].expand_as(xx), xx), device, args.min_runs,
                                       args.budget / 4),
                "warp": timeit(lambda: warp(z, flow, occ), device, args.min_runs, args.budget / 4),
                "decode": timeit(lambda: m.decode(zw), device, args.min_runs, args.budget / 4),
            }
        for k, v in lat.items():
            row[f"{k}_ms_per_frame_{dtype_name}"] = 1000.0 * v / n
        model.to(torch.float32)
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'config':<6} {'device':<6} {'params':>11} {'latent':>10} {'batch':>5} {'train/s':>8} "
            f"{'step s':>7} | ms/frame fp32: {'encode':>7} {'flow':>7} {'warp':>7} {'decode':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['config']:<6} {r['device']:<6} {r['params']:>11,} {r['latent']:>10} {r['train_batch']:>5} "
              f"{r['train_samples_per_s']:>8.2f} {r['train_step_s']:>7.3f} | {'':>14} "
              f"{r['encode_ms_per_frame_float32']:>7.3f} {r['predict_flow_ms_per_frame_float32']:>7.3f} "
              f"{r['warp_ms_per_frame_float32']:>7.3f} {r['decode_ms_per_frame_float32']:>7.3f}")
        if "encode_ms_per_frame_bfloat16" in r:
            print(f"{'':<6} {'':<6} {'':>11} {'':>10} {'':>5} {'':>8} {'':>7} | ms/frame bf16: "
                  f"{r['encode_ms_per_frame_bfloat16']:>7.3f} {r['predict_flow_ms_per_frame_bfloat16']:>7.3f} "
                  f"{r['warp_ms_per_frame_bfloat16']:>7.3f} {r['decode_ms_per_frame_bfloat16']:>7.3f}")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=["tiny", "small", "paper"], choices=list(PRESETS))
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    p.add_argument("--batch-size", type=int, default=None, help="training batch (default per config)")
    p.add_argument("--frames", type=int, default=16, help="frames per inference batch")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--min-runs", type=int, default=2)
    p.add_argument("--budget", type=float, default=6.0, help="seconds per measurement (roughly)")
    p.add_argument("--loss", choices=("l1ssim", "vgg19-timing"), default="l1ssim")
    p.add_argument("--amp", choices=("no", "bf16", "fp16"), default="bf16", help="training autocast on CUDA")
    p.add_argument("--bf16", action="store_true", help="also time bfloat16 inference")
    p.add_argument("--json", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, loss {args.loss}, "
          f"inference batch {args.frames} frames")
    rows = []
    for dev in devices:
        for name in args.configs:
            rows.append(bench_config(name, torch.device(dev), args))
            print(f"  done {name} on {dev}", file=sys.stderr)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
