"""Speed and memory of the whole generator, with every speed-up measured against the paper's recipe.

    python benchmarks/bench_pipeline.py                          # tiny, small, paper; CPU (+ CUDA if present)
    python benchmarks/bench_pipeline.py --configs tiny --repeats 1 --max-clip-s 2 --out /tmp/bench.md

For each configuration (``tiny``, ``small``, ``paper``: the flow AE and the diffusion U-Net of
that preset, random weights - speed does not depend on them) and device, it measures:

- **U-Net step**: one denoising call for one window of the model's training length, batch 1,
  no classifier-free guidance (guidance > 1 doubles the batch), median of ``--repeats``;
- **40-frame clip**: encode the reference (flow AE), sample the latent flows of 40 frames in
  overlapping windows (:func:`dabfusion.diffusion.generate_flows`), warp and decode every frame;
  for each sampler: DDPM-1000 (the paper's), DDIM-50 and DPM-Solver++-25;
- **peak memory** during the clip: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the peak
  resident set size of the process (``VmHWM`` of ``/proc/self/status``, reset before each clip
  through ``/proc/self/clear_refs``) above its size before the clip - torch allocates outside
  Python's heap, which ``tracemalloc`` cannot see; ``ru_maxrss`` is the fallback elsewhere.

Modes: ``reference`` is the paper's recipe - float32, eager, attention computed the plain way
(``SDPBackend.MATH``), DDPM with 1000 steps - and runs in the same process, so that every other
row's speed-up is a ratio of two measurements taken side by side. ``fp32`` is our default
(fused scaled-dot-product attention). On CUDA, ``bf16`` adds bfloat16 autocast and channels-last
3D memory layout, and ``--compile`` adds a ``torch.compile`` row.

A clip whose sampling would take longer than ``--max-clip-s`` is not sampled to the end: its
sampler runs 1 and ``k`` steps per window (after a warm-up run); the difference gives the cost
of one step (which does not depend on the step count for these schedulers), the 1-step run the
fixed cost of a clip, and the sampling time is extrapolated to the full count; the table marks
such rows "measured k steps/window, x1000/k". Results go to ``--out`` (default ``docs/benchmarks.md``) with
the machine's description; ``--json`` keeps the raw rows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dabfusion.diffusion import (PRESETS, StaticMusic, UNet3D, count_parameters,  # noqa: E402
                                 default_overlap, estimate_gflops, plan_windows)
from dabfusion.flow_ae import render_frames  # noqa: E402
from dabfusion.pipeline import DabFusionPipeline  # noqa: E402
from dabfusion.diffusion.samplers import guided_output  # noqa: E402
from dabfusion.flow_ae import FlowAE, FlowAutoEncoder  # noqa: E402
from dabfusion.flow_ae import get_config as flow_ae_config  # noqa: E402

#: The samplers a clip is timed with: (name, steps, label).
SAMPLER_RUNS = (("ddpm", 1000, "DDPM-1000"), ("ddim", 50, "DDIM-50"), ("dpm++", 25, "DPM-Solver++-25"))
CLIP_FRAMES = 40


@dataclass(frozen=True)
class Mode:
    name: str
    autocast: torch.dtype | None = None
    channels_last: bool = False
    compile: bool = False
    math_attention: bool = False
    description: str = ""


MODES = {
    "reference": Mode("reference", math_attention=True,
                      description="the paper's recipe: float32, eager, plain (math) attention, DDPM-1000"),
    "fp32": Mode("fp32", description="float32, eager, fused scaled-dot-product attention (our default)"),
    "bf16": Mode("bf16", autocast=torch.bfloat16, channels_last=True,
                 description="bfloat16 autocast, fused attention, channels-last layout (CUDA)"),
    "compile": Mode("compile", autocast=torch.bfloat16, channels_last=True, compile=True,
                    description="bf16 + torch.compile (CUDA, --compile)"),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def mode_context(mode: Mode, device: torch.device):
    with contextlib.ExitStack() as stack:
        if mode.autocast is not None:
            stack.enter_context(torch.autocast(device.type, dtype=mode.autocast))
        if mode.math_attention:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        stack.enter_context(torch.inference_mode())
        yield


# ------------------------------------------------------------------------------------ memory


def _malloc_trim() -> None:
    """Give freed heap pages back to the OS (glibc), so that the resident size is the live set."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of a block: CUDA allocator peak, or the process's peak RSS above its start (CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak_mb, self.how = device, float("nan"), ""

    @staticmethod
    def _status(key: str) -> float | None:
        try:
            with open("/proc/self/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith(key + ":"):
                        return float(line.split()[1]) / 1024.0  # kB -> MB
        except OSError:
            return None
        return None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2 ** 20
            self.how = "CUDA max_memory_allocated"
        else:
            _malloc_trim()
            self.base = self._status("VmRSS")
            try:
                with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                    fh.write("5")  # reset VmHWM to the current RSS
                self.how = "peak RSS above the start (VmHWM)"
            except OSError:
                import resource

                self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
                self.how = "ru_maxrss growth (lower bound)"
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2 ** 20
        elif self.how.startswith("peak RSS"):
            hwm = self._status("VmHWM")
            self.peak_mb = (hwm - self.base) if hwm is not None and self.base is not None else float("nan")
        else:
            import resource

            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - self.base


# ------------------------------------------------------------------------------------ measurement


def median_time(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1,
                slow_s: float = 2.0) -> float:
    """Median seconds of ``repeats`` calls after ``warmup`` calls; a first call slower than ``slow_s``
    counts as a measurement instead (one-off costs are small next to it, and it saves minutes)."""
    times: list[float] = []
    for i in range(max(0, warmup)):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        if i == 0 and time.perf_counter() - t > slow_s:
            times.append(time.perf_counter() - t)
            break
    for _ in range(max(1, repeats) - len(times)):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


class Setup:
    """Random flow AE + U-Net of one preset, a reference frame and fixed music conditioning."""

    def __init__(self, name: str, device: torch.device) -> None:
        torch.manual_seed(0)
        self.name, self.device = name, device
        self.flow_ae = FlowAE(FlowAutoEncoder(flow_ae_config(name)), device=device)
        self.config = PRESETS[name]
        self.unet = UNet3D(self.config).eval().requires_grad_(False).to(device)
        self.params = count_parameters(self.unet)
        self.gflops = estimate_gflops(self.unet)
        s = self.flow_ae.image_size
        self.reference = torch.rand(1, 3, s, s, device=device)
        c = self.config
        total = CLIP_FRAMES + c.n_frames
        self.music = StaticMusic(torch.randn(c.music_dim), torch.randn(total, c.beat_dim) if c.uses_beats else None)
        self.windows = len(plan_windows(CLIP_FRAMES, c.n_frames, default_overlap(c.n_frames, beat_time=False)))

    def model_for(self, mode: Mode) -> Any:
        # the U-Net's convolutions are 2D (time is folded into the batch): channels-last is the 2D
        # layout of their 4-D weights; channels_last_3d needs rank-5 tensors and fails on them
        m = self.unet.to(memory_format=torch.channels_last if mode.channels_last else torch.contiguous_format)
        return torch.compile(m) if mode.compile else m

    def step(self, model: Any, mode: Mode) -> Callable[[], Any]:
        c, dev = self.config, self.device
        x = torch.randn(1, 3, c.n_frames, c.latent_size, c.latent_size, device=dev)
        z0 = torch.randn(1, c.latent_channels, c.latent_size, c.latent_size, device=dev)
        music, beats = self.music.window(0, c.n_frames)
        music = music[None].to(dev)
        beats = beats[None].to(dev) if beats is not None else None
        known = torch.zeros_like(x)
        mask = torch.zeros(1, c.n_frames, dtype=torch.bool, device=dev)
        mask[:, 0] = True
        t = torch.tensor([500], device=dev)

        def run() -> None:
            with mode_context(mode, dev):
                guided_output(model, x, t, z0=z0, music=music, beats=beats, known=known, known_mask=mask,
                              guidance_scale=1.0)
        return run

    def codec(self) -> Callable[[], Any]:
        """Encode the reference, then warp + decode 40 frames (the non-diffusion part of a clip)."""
        h = self.flow_ae.latent_shape[1]
        flow = 0.05 * torch.randn(CLIP_FRAMES, 2, h, h, device=self.device)
        occ = torch.rand(CLIP_FRAMES, 1, h, h, device=self.device)

        def run() -> None:
            with torch.inference_mode():
                z0 = self.flow_ae.encode(self.reference)
                for i in range(0, CLIP_FRAMES, 16):
                    render_frames(self.flow_ae, z0, flow[i:i + 16], occ[i:i + 16])
        return run

    def sample(self, model: Any, mode: Mode, sampler: str, steps: int) -> float:
        """Seconds to sample the flows of a 40-frame clip with ``steps`` steps per window."""
        with torch.inference_mode():
            z0 = self.flow_ae.encode(self.reference).float()
        pipe = DabFusionPipeline.from_parts(self.flow_ae, model, None, name=self.name)
        ref = pipe.latent_reference(z0)
        sync(self.device)
        t = time.perf_counter()
        with mode_context(mode, self.device):
            pipe.sample_flows(ref, self.music, n_frames=CLIP_FRAMES, sampler=sampler, steps=steps, guidance=1.0)
        sync(self.device)
        return time.perf_counter() - t


def bench(name: str, device: torch.device, modes: list[Mode], args: argparse.Namespace,
          say: Callable[[str], None]) -> list[dict[str, Any]]:
    setup = Setup(name, device)
    codec_s = median_time(setup.codec(), device, args.repeats)
    rows: list[dict[str, Any]] = []
    for mode in modes:
        model = setup.model_for(mode)
        step_s = median_time(setup.step(model, mode), device, args.repeats, warmup=2 if mode.compile else 1,
                             slow_s=math.inf if mode.compile else 2.0)  # compiling is not a measurement
        samplers = [("ddpm", 1000, "DDPM-1000")] if mode.name == "reference" else [
            s for s in SAMPLER_RUNS if s[0] in args.samplers]
        for sampler, steps, label in samplers:
            full = setup.windows * steps * step_s
            k = steps if full <= args.max_clip_s else max(2, min(steps, int(args.max_clip_s / (setup.windows * step_s))))
            if step_s < 0.5:  # warm-up: lazy imports, scheduler set-up; negligible next to slow steps
                setup.sample(model, mode, sampler, 1)
            one = setup.sample(model, mode, sampler, 1) if k < steps else 0.0
            with PeakMemory(device) as mem:
                sample_s = setup.sample(model, mode, sampler, k)
            if k < steps:  # two-point fit: the per-clip overhead once, the per-step cost x the full count
                per_step = max(sample_s - one, 1e-9) / (setup.windows * (k - 1))
                sampling = max(one - setup.windows * per_step, 0.0) + per_step * setup.windows * steps
            else:
                per_step = sample_s / (setup.windows * k)
                sampling = sample_s
            row = {"config": name, "device": device.type, "mode": mode.name, "sampler": label, "steps": steps,
                   "windows": setup.windows, "window_frames": setup.config.n_frames, "params": setup.params,
                   "gflops_per_step": setup.gflops, "step_ms": 1000 * step_s, "sampling_step_ms": 1000 * per_step,
                   "codec_s": codec_s, "sample_s": sampling, "clip_s": codec_s + sampling, "measured_steps": k,
                   "extrapolated": k < steps, "peak_mb": mem.peak_mb, "memory": mem.how}
            rows.append(row)
            say(f"  {name:<6} {device.type:<4} {mode.name:<9} {label:<16} step {1000 * step_s:9.1f} ms  clip "
                f"{row['clip_s']:10.2f} s{' (extrapolated from %d steps)' % k if k < steps else ''}")
        if mode.compile:
            torch._dynamo.reset()
    ref = next(r for r in rows if r["mode"] == "reference")
    for r in rows:
        r["speedup_vs_reference"] = ref["clip_s"] / r["clip_s"]
    return rows


# ------------------------------------------------------------------------------------ report


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "os": platform.platform(terse=True)}
    if torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
        info["cuda_version"] = torch.version.cuda
    return info


def _fmt_s(s: float) -> str:
    if not math.isfinite(s):
        return "n/a"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def markdown(rows: list[dict[str, Any]], info: dict[str, Any], command: str, total_s: float,
             note: str | None = None) -> str:
    devices = "CPU" + (f" + CUDA ({info['cuda']}, CUDA {info['cuda_version']})" if "cuda" in info else " only (no GPU)")
    lines = ["# Benchmarks: the generator's speed and memory", "",
             f"Written by `{command}` on {datetime.date.today().isoformat()} in {total_s / 60:.1f} min.", "",
             f"- Machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']} with {info['threads']} CPU "
             f"thread(s); Python {info['python']}, {info['os']}",
             f"- Devices measured: {devices}"] + ([f"- Note: {note}"] if note else []) + ["",
             "Each row: one 40-frame clip at batch 1 without classifier-free guidance (guidance > 1 doubles the "
             "U-Net batch): encode the reference, sample the latent flows in windows of the model's length "
             "(a quarter overlap), warp and decode every frame. Random weights (speed does not depend on them). "
             "**Speed-up** = the paper's recipe (`reference`: float32, eager, plain attention, DDPM-1000) "
             "divided by the row's clip time, both measured in this run on the same device.", "",
             "| config | U-Net params | GFLOPs / step | device | mode | sampler | U-Net step | 40-frame clip | "
             "speed-up | peak memory | sampling |",
             "|---|---:|---:|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        how = (f"measured {r['measured_steps']} steps/window, x{r['steps'] / r['measured_steps']:.4g}"
               if r["extrapolated"] else "measured")
        mem = f"{r['peak_mb']:.0f} MB" if math.isfinite(r["peak_mb"]) else "n/a"
        lines.append(f"| {r['config']} | {r['params'] / 1e6:.2f}M | {r['gflops_per_step']:.2f} | {r['device']} | "
                     f"{r['mode']} | {r['sampler']} | {r['step_ms']:.1f} ms | {_fmt_s(r['clip_s'])} | "
                     f"{r['speedup_vs_reference']:.1f}x | {mem} | {how} ({r['windows']} window"
                     f"{'s' if r['windows'] != 1 else ''} of {r['window_frames']}) |")
    lines += ["", "Modes:", ""] + [f"- `{m.name}`: {m.description}" for m in MODES.values()] + [
        "", "Notes:", "",
        "- The U-Net step is one denoising call for one window; the clip time also includes the flow AE "
        f"(encode once, warp + decode {CLIP_FRAMES} frames) and the schedulers' own work.",
        "- Extrapolated rows ran the sampler with 1 and with k steps per window (after a warm-up run): the "
        "difference gives the cost of a step (the same whatever the step count), the 1-step run the fixed "
        "per-clip cost; the sampling time is the fixed cost + windows x steps x the step cost. Encode and "
        "decode are always measured.",
        "- Peak memory on CPU is the process's peak resident memory above its size before the clip (the "
        "activations and temporaries; the weights were already resident); on CUDA the allocator's peak "
        "(weights included).",
        "- The music encoder (librosa beat analysis, optional CLAP / Wav2CLIP) is not included: it runs once "
        "per track and is cached."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["tiny", "small", "paper"], choices=list(PRESETS))
    p.add_argument("--samplers", nargs="+", default=[s[0] for s in SAMPLER_RUNS], choices=[s[0] for s in SAMPLER_RUNS])
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    p.add_argument("--repeats", type=int, default=2, help="timed U-Net steps and codec runs (median)")
    p.add_argument("--max-clip-s", type=float, default=5.0,
                   help="sample a clip to the end only if that takes at most this long; else extrapolate")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (CUDA)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown report ('' = none)")
    p.add_argument("--json", default=None, help="also write the raw rows here")
    p.add_argument("--note", default=None, help="a line about the run for the report (e.g. other load)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("dabfusion.diffusion.samplers").setLevel(logging.ERROR)  # DDIM step-count advice
    say = (lambda msg: print(msg, file=sys.stderr, flush=True))
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for dev in devices:
        device = torch.device(dev)
        modes = [MODES["reference"], MODES["fp32"]]
        if device.type == "cuda":
            modes.append(MODES["bf16"])
            if args.compile:
                modes.append(MODES["compile"])
        for name in args.configs:
            rows += bench(name, device, modes, args, say)
    total = time.perf_counter() - t0
    command = shlex.join(["python", "benchmarks/bench_pipeline.py", *(sys.argv[1:] if argv is None else argv)])
    report = markdown(rows, machine(), command, total, args.note)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
