"""Measure a trained flow AE on held-out videos: reconstruction vs the copy-the-reference baseline.

For (reference, driving) pairs of two different frames of one held-out video, the model redraws
the driving frame from the reference (flow + occlusion from both frames, warp, decode). We report
PSNR and SSIM of that reconstruction against the driving frame, next to the same measures for
simply copying the reference (what a model that does not move anything would score).

Held-out means the test part of the split (music tracks never heard in training); within it,
pairs from dancers that appear in no training video form the "unseen dancers" subset. What the
split really holds (tracks, dancers on each side) is printed and written to the JSON, and an
empty subset is reported as such, not silently skipped::

    python -m training.evaluate_flow_ae --checkpoint runs/flow_ae_small/flow_ae.safetensors \\
        --data data/synthdance --out runs/flow_ae_small/eval.json

The quality bar of issue 4: PSNR at least 3 dB above the baseline and SSIM above it, on every
non-empty held-out subset (``--require-bar`` exits with status 1 when it is missed).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

if __package__ in (None, ""):  # run as a file (python training/x.py), not as a module: find the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dabfusion.flow_ae.api import FlowAE
from dabfusion.metrics.image_quality import psnr, ssim
from training.train_flow_ae import parse_dancers

log = logging.getLogger("evaluate_flow_ae")
PSNR_MARGIN_DB = 3.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="flow AE .safetensors (EMA weights)")
    p.add_argument("--data", required=True, help="data folder (AIST++ layout) or 'shapes[:N]'")
    p.add_argument("--split", default=None, help="split spec (default: the one recorded in the checkpoint, else paper)")
    p.add_argument("--holdout-dancers", nargs="*", default=None,
                   help="dancers left out of training (default: those recorded in the checkpoint)")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--pairs-per-video", type=int, default=8)
    p.add_argument("--max-gap", type=int, default=None, help="max frames between the two of a pair")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--include-train", action="store_true",
                   help="also score training videos (to see the generalisation gap)")
    p.add_argument("--max-videos", type=int, default=None, help="score at most this many videos per part")
    p.add_argument("--out", default=None, help="JSON file for the results")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--require-bar", action="store_true", help="exit 1 if the quality bar is missed")
    return p


# ---------------------------------------------------------------------------------- pairs


def pick_pairs(n_frames: int, k: int, rng: np.random.Generator, max_gap: int | None) -> list[tuple[int, int]]:
    """``k`` (reference, driving) frame indices of one video, always two different frames."""
    out = []
    for _ in range(k):
        ref = int(rng.integers(0, n_frames))
        lo, hi = 0, n_frames - 1
        if max_gap is not None:
            lo, hi = max(0, ref - max_gap), min(n_frames - 1, ref + max_gap)
        choices = [i for i in range(lo, hi + 1) if i != ref]
        if not choices:
            continue
        out.append((ref, int(choices[int(rng.integers(0, len(choices)))])))
    return out


class VideoSource:
    """Uniform view of the videos of one part: ``len``, ``frames(i, idx)`` (uint8 NHWC), ``meta(i)``."""

    def __init__(self, args: argparse.Namespace, part: str, size: int) -> None:
        self.part = part
        if args.data.startswith("shapes"):
            from dabfusion.testing.shapes_toy import render_shapes_frame

            n = int(args.data.split(":", 1)[1]) if ":" in args.data else 16
            # toy "test" videos use another seed than training (see train_flow_ae.build_datasets)
            seed = args.seed if part == "train" else args.seed + 10_000
            count = n if part == "train" else max(2, n // 4)
            self._render, self._seed, self._size = render_shapes_frame, seed, size
            self.n_frames = [30] * count
            self._meta = [{"video": f"shapes_{seed}_{v:03d}", "dancer": f"{seed}_{v}", "music": f"toy{seed}"}
                          for v in range(count)]
            self._ds = None
            return
        from dabfusion.data import PairDataset

        kept = None
        holdout = set(parse_dancers(args.holdout_dancers or []))
        if part == "train" and holdout:
            from dabfusion.data import scan_dataset

            kept = sorted({r.name.dancer for r in scan_dataset(args.data).videos} - holdout)
        self._ds = PairDataset(args.data, split=part, split_spec=args.split, fps=args.fps, size=size,
                               cache_dir=args.cache_dir, frames_dtype="uint8", dancers=kept)
        self.n_frames = [v.n_frames for v in self._ds.videos]
        self._meta = [{"video": v.record.name.stem, "dancer": f"d{v.record.name.dancer:02d}",
                       "music": v.record.name.music} for v in self._ds.videos]

    def __len__(self) -> int:
        return len(self.n_frames)

    def meta(self, i: int) -> dict[str, str]:
        return self._meta[i]

    def frames(self, i: int, idx: Sequence[int]) -> torch.Tensor:
        """float ``[len(idx),3,H,W]`` in 0..1."""
        if self._ds is None:
            return torch.stack([self._render(i, t / self.n_frames[i], self._size, self._seed) for t in idx])
        arr = np.asarray(self._ds.video_frames(i))[list(idx)]
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 255.0


def train_meta(args: argparse.Namespace, size: int) -> list[dict[str, str]]:
    """Names of the training videos (tracks, dancers) without decoding or caching any frame."""
    if args.data.startswith("shapes"):
        src = VideoSource(args, "train", size)
        return [src.meta(i) for i in range(len(src))]
    from dabfusion.data import resolve_split, scan_dataset, select_part

    layout = scan_dataset(args.data)
    split = resolve_split(args.split, manifest=layout.manifest, manifest_path=layout.manifest_path)
    records = select_part(layout.videos, "train", split, key=lambda r: r.name)
    holdout = set(parse_dancers(args.holdout_dancers or []))
    return [{"video": r.name.stem, "dancer": f"d{r.name.dancer:02d}", "music": r.name.music}
            for r in records if r.name.dancer not in holdout]


def iter_batches(src: VideoSource, pairs_per_video: int, seed: int, max_gap: int | None,
                 batch_size: int, max_videos: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[dict]]]:
    refs, drvs, metas = [], [], []
    n = len(src) if max_videos is None else min(len(src), max_videos)
    for v in range(n):
        rng = np.random.default_rng([seed, v])
        for ref, drv in pick_pairs(src.n_frames[v], pairs_per_video, rng, max_gap):
            fr = src.frames(v, [ref, drv])
            refs.append(fr[0])
            drvs.append(fr[1])
            metas.append({**src.meta(v), "ref_frame": ref, "drv_frame": drv})
            if len(refs) == batch_size:
                yield torch.stack(refs), torch.stack(drvs), metas
                refs, drvs, metas = [], [], []
    if refs:
        yield torch.stack(refs), torch.stack(drvs), metas


# ---------------------------------------------------------------------------------- scoring


def score(ae: FlowAE, src: VideoSource, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for ref, drv, metas in iter_batches(src, args.pairs_per_video, args.seed, args.max_gap,
                                        args.batch_size, args.max_videos):
        rec = ae.reconstruct(ref, drv).cpu()
        p_m, s_m = psnr(rec, drv), ssim(rec, drv)
        p_b, s_b = psnr(ref, drv), ssim(ref, drv)
        for i, m in enumerate(metas):
            rows.append({**m, "psnr": float(p_m[i]), "ssim": float(s_m[i]),
                         "psnr_copy_ref": float(p_b[i]), "ssim_copy_ref": float(s_b[i])})
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"pairs": 0}

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    out = {
        "pairs": len(rows),
        "videos": len({r["video"] for r in rows}),
        "dancers": sorted({r["dancer"] for r in rows}),
        "tracks": sorted({r["music"] for r in rows}),
        "psnr": mean("psnr"), "psnr_copy_ref": mean("psnr_copy_ref"),
        "ssim": mean("ssim"), "ssim_copy_ref": mean("ssim_copy_ref"),
    }
    out["psnr_gain_db"] = out["psnr"] - out["psnr_copy_ref"]
    out["ssim_gain"] = out["ssim"] - out["ssim_copy_ref"]
    out["meets_bar"] = bool(out["psnr_gain_db"] >= PSNR_MARGIN_DB and out["ssim_gain"] > 0)
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    head = (f"{'subset':<40} {'pairs':>6} {'videos':>6} {'dancers':>7} {'PSNR':>7} {'copy':>7} {'gain':>6} "
            f"{'SSIM':>6} {'copy':>6} {'bar':>4}")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        if not r.get("pairs"):
            lines.append(f"{name:<40} {0:>6}  (empty: the split holds no such videos)")
            continue
        lines.append(f"{name:<40} {r['pairs']:>6} {r['videos']:>6} {len(r['dancers']):>7} {r['psnr']:>7.2f} "
                     f"{r['psnr_copy_ref']:>7.2f} {r['psnr_gain_db']:>+6.2f} {r['ssim']:>6.3f} "
                     f"{r['ssim_copy_ref']:>6.3f} {'yes' if r['meets_bar'] else 'NO':>4}")
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    ae = FlowAE.from_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
    trained_on = ae.info.get("extra", {}).get("data", {})
    if args.split is None:
        args.split = trained_on.get("split", "paper")
    if args.holdout_dancers is None:
        args.holdout_dancers = list(trained_on.get("holdout_dancers", []))
    size = ae.image_size
    train_videos = train_meta(args, size)
    test_src = VideoSource(args, "test", size)
    train_dancers = {m["dancer"] for m in train_videos}
    train_tracks = {m["music"] for m in train_videos}
    test_rows = score(ae, test_src, args)
    unseen = [r for r in test_rows if r["dancer"] not in train_dancers]
    seen = [r for r in test_rows if r["dancer"] in train_dancers]
    results = {
        "test: held-out music": summarise(test_rows),
        "test: held-out music, unseen dancers": summarise(unseen),
        "test: held-out music, seen dancers": summarise(seen),
    }
    if args.include_train:
        results["train (for reference)"] = summarise(score(ae, VideoSource(args, "train", size), args))
    held_out = [r for k, r in results.items() if k.startswith("test") and r.get("pairs")]
    test_dancers = {test_src.meta(i)["dancer"] for i in range(len(test_src))}
    split_info = {
        "spec": args.split,
        "holdout_dancers": list(args.holdout_dancers),
        "train_videos": len(train_videos), "test_videos": len(test_src),
        "train_tracks": sorted(train_tracks),
        "test_tracks": sorted({test_src.meta(i)["music"] for i in range(len(test_src))}),
        "train_dancers": sorted(train_dancers), "test_dancers": sorted(test_dancers),
        "unseen_test_dancers": sorted(test_dancers - train_dancers),
    }
    if not split_info["unseen_test_dancers"]:
        split_info["note"] = ("every dancer of the test videos also appears in training videos: the split holds "
                              "no unseen dancer, only unseen music")
    report = {
        "checkpoint": str(args.checkpoint),
        "config": ae.config.to_dict(),
        "trained_steps": ae.info.get("extra", {}).get("step"),
        "data": str(args.data),
        "pairs_per_video": args.pairs_per_video, "seed": args.seed, "max_gap": args.max_gap,
        "device": str(args.device), "dtype": args.dtype,
        "split": split_info,
        "results": results,
        "quality_bar": {"psnr_gain_db_min": PSNR_MARGIN_DB, "ssim_gain_min": 0.0,
                        "met": bool(held_out) and all(r["meets_bar"] for r in held_out)},
    }
    return report


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    report = evaluate(args)
    s = report["split"]
    print(f"split '{s['spec']}': {s['train_videos']} train videos ({len(s['train_tracks'])} tracks, "
          f"{len(s['train_dancers'])} dancers), {s['test_videos']} test videos ({len(s['test_tracks'])} tracks, "
          f"{len(s['test_dancers'])} dancers, {len(s['unseen_test_dancers'])} never seen in training)")
    if "note" in s:
        print("note:", s["note"])
    print(table(report["results"]))
    print(f"quality bar (PSNR >= copy + {PSNR_MARGIN_DB:g} dB and SSIM > copy on held-out subsets): "
          f"{'MET' if report['quality_bar']['met'] else 'NOT MET'}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=_json_default) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    if args.require_bar and not report["quality_bar"]["met"]:
        raise SystemExit(1)
    return report


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    raise TypeError(type(o).__name__)


if __name__ == "__main__":
    main()
