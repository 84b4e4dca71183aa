"""A real model end to end: image and music files in, MP4 out, against the paper's recipe in the same run.

    python benchmarks/bench_end_to_end.py                         # the built-in model; CPU (+ CUDA if present)
    python benchmarks/bench_end_to_end.py --model models/dabfusion/my_model --devices cuda --out /tmp/e2e.md

``benchmarks/bench_pipeline.py`` times the U-Net presets with random weights and fixed music
features; this times what a user runs: :func:`dabfusion.pipeline.generate_video` on the example
image and music with a trained model folder (default: the built-in beat-time model), 40 frames
(``--frames``): load the music, beat analysis, prepare and encode the reference, sample the flows,
warp and decode, mux the MP4 with its audio. Rows:

- ``ours``: the model folder's recommended sampler, steps and guidance (DPM-Solver++ 25 and
  guidance 1.5 for the built-in model), float32 and, on CUDA, bfloat16 autocast;
- ``reference``: the paper's recipe on the same model: float32, plain (math) attention, DDPM with
  1000 steps and the same guidance. Its sampling is measured with 1 and ``--reference-steps``
  steps and extrapolated to 1000 (a step costs the same whatever the count), unless
  ``--reference-steps 1000``.

Each row's time is the median of ``--repeats`` warm runs (the first run of a process also pays
librosa's compilation and the beat analysis, which the music encoder then caches: it is reported
as "first run"). Peak memory as in ``bench_pipeline`` (CUDA allocator peak; CPU peak RSS growth).
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_pipeline import MODES, Mode, PeakMemory, _fmt_s, machine, mode_context, sync  # noqa: E402

from dabfusion.pipeline import DabFusionPipeline, generate_video  # noqa: E402

EXAMPLES = ROOT / "dabfusion" / "assets" / "examples"
IMAGE = EXAMPLES / "dance_any_beat_dancer.png"
MUSIC = EXAMPLES / "dance_any_beat_music.ogg"


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def looped_music(path: Path, seconds: float) -> Path:
    """The example music repeated to ``seconds`` (a WAV), for the long clip."""
    import numpy as np
    import soundfile as sf

    wave, sr = sf.read(str(MUSIC), dtype="float32", always_2d=True)
    reps = int(np.ceil(seconds * sr / len(wave))) + 1
    sf.write(str(path), np.tile(wave, (reps, 1))[:int((seconds + 1) * sr)], sr)
    return path


def bench_device(device: torch.device, args: argparse.Namespace, say: Callable[[str], None]) -> list[dict]:
    pipe = DabFusionPipeline.from_folder(args.model, device=device)
    ours = pipe.settings()
    out_dir = Path(tempfile.mkdtemp(prefix="dab_e2e_"))

    def run(mode: Mode, sampler: str, steps: int) -> Callable[[], Any]:
        def go() -> None:
            with mode_context(mode, device):
                generate_video(IMAGE, MUSIC, out_dir / "clip.mp4", pipeline=pipe, frames=args.frames,
                               sampler=sampler, steps=steps, guidance=ours.guidance, seed=0)
        return go

    def median(fn: Callable[[], Any]) -> float:
        times = sorted(timed(fn, device) for _ in range(max(1, args.repeats)))
        return times[len(times) // 2]

    rows = []
    first = timed(run(MODES["fp32"], ours.sampler, ours.n_steps), device)  # pays librosa's JIT, the analysis
    modes = [MODES["fp32"]] + ([MODES["bf16"]] if device.type == "cuda" else [])
    for mode in modes:
        with PeakMemory(device) as mem:
            t = median(run(mode, ours.sampler, ours.n_steps))
        rows.append({"device": device.type, "row": "ours", "mode": mode.name, "sampler": ours.sampler,
                     "steps": ours.n_steps, "guidance": ours.guidance, "seconds": t, "measured": "measured",
                     "peak_mb": mem.peak_mb})
        say(f"  {device.type} ours {mode.name}: {t:.2f} s")
    k = int(args.reference_steps)
    ref_mode = MODES["reference"]
    with PeakMemory(device) as mem:
        t_k = median(run(ref_mode, "ddpm", k))
    if k < 1000:
        t_1 = median(run(ref_mode, "ddpm", 1))
        t_ref = t_1 + (t_k - t_1) * 999.0 / max(k - 1, 1)
        how = f"1 and {k} steps, x{1000 / k:.4g}"
    else:
        t_ref, how = t_k, "measured"
    rows.append({"device": device.type, "row": "reference", "mode": ref_mode.name, "sampler": "ddpm", "steps": 1000,
                 "guidance": ours.guidance, "seconds": t_ref, "measured": how, "peak_mb": mem.peak_mb})
    say(f"  {device.type} reference: {t_ref:.1f} s ({how})")
    if args.long_seconds > 0:  # any length in bounded memory: frames are streamed from decoder to encoder
        looped = looped_music(out_dir / "long.wav", args.long_seconds)

        def long_clip() -> None:
            with mode_context(MODES["fp32"], device):
                generate_video(IMAGE, looped, out_dir / "long.mp4", pipeline=pipe, seconds=args.long_seconds,
                               seed=0)
        with PeakMemory(device) as mem:
            t_long = timed(long_clip, device)
        rows.append({"device": device.type, "row": f"{args.long_seconds:g} s clip", "mode": "fp32",
                     "sampler": ours.sampler, "steps": ours.n_steps, "guidance": ours.guidance, "seconds": t_long,
                     "measured": "measured once (music looped)", "peak_mb": mem.peak_mb})
        say(f"  {device.type} {args.long_seconds:g} s clip: {t_long:.1f} s, peak {mem.peak_mb:.0f} MB")
    for r in rows:
        r["speedup_vs_reference"] = t_ref / r["seconds"] if r["row"] != f"{args.long_seconds:g} s clip" else float("nan")
        r["first_run_s"] = first
        r["model"] = pipe.describe()
    return rows


def _ratio(x: float) -> str:
    return f"{x:.1f}x" if x == x else ""


def markdown(rows: list[dict], info: dict, command: str, frames: int) -> str:
    lines = ["## End to end: image and music files in, MP4 out", "",
             f"Written by `{command}` on {datetime.date.today().isoformat()}; {info['cpu']}, {info['cores']} cores, "
             f"torch {info['torch']} with {info['threads']} CPU thread(s)"
             + (f"; {info['cuda']}" if "cuda" in info else "") + ".", "",
             f"Model: {rows[0]['model']}.", "",
             f"One {frames}-frame clip of the example image and music through `generate_video` (music loading and "
             "beat analysis, reference, sampling, warp and decode, MP4 with audio). **Speed-up** = the paper's "
             "recipe on the same model (float32, plain attention, DDPM-1000, same guidance) over the row's time, "
             "same run, same device.", "",
             "| device | row | mode | sampler | steps | guidance | clip end to end | speed-up | peak memory | "
             "first run of the process | how |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        mem = f"{r['peak_mb']:.0f} MB" if r["peak_mb"] == r["peak_mb"] else "n/a"
        first = _fmt_s(r["first_run_s"]) if r["row"] == "ours" and r["mode"] == "fp32" else ""
        lines.append(f"| {r['device']} | {r['row']} | {r['mode']} | {r['sampler']} | {r['steps']} | {r['guidance']:g} | "
                     f"{_fmt_s(r['seconds'])} | {_ratio(r['speedup_vs_reference'])} | {mem} | {first} | {r['measured']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=None, help="model folder (default: the built-in model)")
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--reference-steps", type=int, default=10,
                   help="DDPM steps the reference is measured with (extrapolated to 1000; 1000 = measure it all)")
    p.add_argument("--long-seconds", type=float, default=60.0,
                   help="also time one clip this long with the recommended settings (0 = skip)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="", help="also write the Markdown table here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    say = (lambda msg: print(msg, file=sys.stderr, flush=True))
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    rows: list[dict] = []
    for dev in devices:
        rows += bench_device(torch.device(dev), args, say)
    command = shlex.join(["python", "benchmarks/bench_end_to_end.py", *(sys.argv[1:] if argv is None else argv)])
    report = markdown(rows, machine(), command, args.frames)
    print(report)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
