"""Beat trackers scored on the beat corpus (exactly known beats and downbeats; issue 19).

    python benchmarks/bench_beat_tracking.py                          # dev split, every tracker
    python benchmarks/bench_beat_tracking.py --split all --trackers default,librosa --json out.json
    python benchmarks/bench_beat_tracking.py --split dev --styles house,dnb,trap

The corpus (:mod:`dabfusion.testing.beat_corpus`) is rendered into the cache on first use (about
a minute and a half; needs fluidsynth and FluidR3_GM) and loaded from there afterwards. Trackers
are :data:`dabfusion.music.trackers.TRACKERS` (name -> fn(mono float32 wave, sr) -> an object with
``.beats``, ``.downbeats`` (s) and ``.tempo``).

Scores (``mir_eval.beat``): F-measure at +-70 ms, CMLt and AMLt; downbeat F-measure (70 ms);
*off-beat lock*: F against the midpoints between the true beats exceeds F on the beats; *tempo*:
60 / median inter-beat interval of the estimate against that of the annotation, "ok" within 4 %,
an *octave error* when the ratio is 2, 1/2, 3, 1/3, 3/2 or 2/3 within 4 %, else "other".
Beats before 5 s are removed from both annotation and estimate before every score (mir_eval's
default and the MIREX convention: a tracker gets a few seconds to find the pulse; every excerpt
starts on music within about a second, and the drumless intros run well past 5 s, so they are scored).

Use ``dev`` to tune a tracker; ``test`` is held back from design decisions (report it, do not tune
on it). Speed is audio seconds per tracker second with one thread (numpy/BLAS/numba pinned to 1),
after one untimed warm-up call per tracker.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dabfusion.testing.beat_corpus import load_corpus  # noqa: E402
from dabfusion.testing.beat_corpus.compose import STYLES  # noqa: E402
from dabfusion.testing.beat_corpus.scoring import F_WINDOW, MIN_BEAT_TIME, OCTAVE_RATIOS, score  # noqa: E402

def _result(tracker: str, ex, beats, downbeats, tempo: float, seconds: float, error) -> dict:
    """One excerpt's row: what the tracker gave and every score of it against the excerpt's truth."""
    beats, downbeats = np.asarray(beats, np.float64), np.asarray(downbeats, np.float64)
    out = {"tracker": tracker, "excerpt": ex.name, "style": ex.style, "split": ex.split,
           "source": ex.source, "duration": ex.duration, "seconds": seconds, "error": error,
           "tracker_tempo": float(tempo or 0.0), "n_beats": int(beats.size)}
    out.update(score(ex.beats, ex.downbeats, beats, downbeats))
    return out


def _run_one(args) -> dict:
    """Track one excerpt with one tracker (in a worker process or here)."""
    tracker, ex = args
    from dabfusion.music.trackers import TRACKERS
    fn = TRACKERS[tracker]
    t0 = time.perf_counter()
    try:
        res = fn(ex.audio, ex.sr)
        err = None
    except Exception as exc:  # a crash is a result: zero scores, the error kept
        res, err = None, f"{type(exc).__name__}: {exc}"
    secs = time.perf_counter() - t0
    return _result(tracker, ex, getattr(res, "beats", np.zeros(0)), getattr(res, "downbeats", np.zeros(0)),
                   getattr(res, "tempo", 0.0), secs, err)


class _External:
    """Beats another program wrote, one ``<excerpt>.json`` per excerpt with ``beats`` (s) and
    optionally ``downbeats`` and ``seconds`` (its run time): a tracker that cannot run in this
    environment (madmom needs numpy < 1.20) measured on the same excerpts and scored the same way."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SystemExit(f"--external: no folder {self.folder}")

    def result(self, name: str, ex) -> dict:
        path = self.folder / f"{ex.name}.json"
        rec = json.loads(path.read_text()) if path.is_file() else {"error": f"no {path}"}
        beats = np.asarray(rec.get("beats") or [], np.float64)
        tempo = 60.0 / float(np.median(np.diff(beats))) if beats.size >= 2 else 0.0
        return _result(name, ex, beats, rec.get("downbeats") or [], tempo, float(rec.get("seconds") or np.nan),
                       rec.get("error"))


def _warm_up(trackers: list[str], ex) -> None:
    from dabfusion.music.trackers import TRACKERS
    clip = ex.audio[:ex.sr * 8]
    for t in trackers:
        TRACKERS[t](clip, ex.sr)


def run(trackers: list[str], excerpts, workers: int = 1) -> list[dict]:
    jobs = [(t, ex) for t in trackers for ex in excerpts]
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_warm_up, initargs=(trackers, excerpts[0])) as pool:
            return list(pool.map(_run_one, jobs, chunksize=1))
    _warm_up(trackers, excerpts[0])
    return [_run_one(j) for j in jobs]


def summarise(results: list[dict], trackers: list[str], styles: list[str]) -> dict:
    out = {}
    for t in trackers:
        rs = [r for r in results if r["tracker"] == t]
        per_style = {s: float(np.mean([r["f"] for r in rs if r["style"] == s]))
                     for s in styles if any(r["style"] == s for r in rs)}
        classes = [r["tempo_class"] for r in rs]
        out[t] = {"n": len(rs), "per_style_f": per_style,
                  "f": float(np.mean([r["f"] for r in rs])),
                  "cmlt": float(np.mean([r["cmlt"] for r in rs])),
                  "amlt": float(np.mean([r["amlt"] for r in rs])),
                  "downbeat_f": float(np.mean([r["downbeat_f"] for r in rs])),
                  "offbeat_locks": int(sum(r["offbeat_lock"] for r in rs)),
                  "octave_errors": int(sum(c in OCTAVE_RATIOS for c in classes)),
                  "other_tempo_errors": int(sum(c == "other" for c in classes)),
                  "min_style_f": float(min(per_style.values())) if per_style else 0.0,
                  "errors": int(sum(r["error"] is not None for r in rs)),
                  "x_realtime": float(sum(r["duration"] for r in rs) / max(np.nansum([r["seconds"] for r in rs]), 1e-9))}
    return out


def markdown(summary: dict, trackers: list[str], styles: list[str], n_by_style: dict) -> str:
    lines = ["Mean beat F-measure (70 ms) per style:", "",
             "| style | n | " + " | ".join(trackers) + " |",
             "|---|---|" + "---|" * len(trackers)]
    for s in styles:
        if s not in n_by_style:
            continue
        lines.append(f"| {s} | {n_by_style[s]} | " + " | ".join(
            f"{summary[t]['per_style_f'].get(s, float('nan')):.3f}" for t in trackers) + " |")
    lines += ["", "| tracker | n | F | CMLt | AMLt | downbeat F | off-beat locks | octave errors | "
              "other tempo errors | min style F | x real time (1 thread) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in trackers:
        m = summary[t]
        n = m["n"]
        lines.append(f"| {t} | {n} | {m['f']:.3f} | {m['cmlt']:.3f} | {m['amlt']:.3f} | {m['downbeat_f']:.3f} | "
                     f"{m['offbeat_locks']}/{n} ({100 * m['offbeat_locks'] / max(n, 1):.0f} %) | "
                     f"{m['octave_errors']}/{n} | {m['other_tempo_errors']}/{n} | {m['min_style_f']:.3f} | "
                     f"{m['x_realtime']:.0f}x |" + (f" ({m['errors']} crashed)" if m["errors"] else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    from dabfusion.music.trackers import TRACKERS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["dev", "test", "all"], default="dev")
    ap.add_argument("--trackers", default=",".join(TRACKERS), help=f"comma list of {list(TRACKERS)}")
    ap.add_argument("--styles", default="", help=f"comma list of {list(STYLES)} (default all)")
    ap.add_argument("--workers", type=int, default=1, help="processes (each one thread)")
    ap.add_argument("--json", help="write per-excerpt results and the summary here")
    ap.add_argument("--external", action="append", default=[], metavar="NAME=DIR",
                    help="also score beats another program wrote to DIR/<excerpt>.json (e.g. madmom)")
    args = ap.parse_args(argv)
    trackers = [t for t in args.trackers.split(",") if t]
    externals = {}
    for spec in args.external:
        name, _, folder = spec.partition("=")
        if not name or not folder:
            ap.error(f"--external wants NAME=DIR, got {spec!r}")
        externals[name] = _External(folder)
    unknown = [t for t in trackers if t not in TRACKERS]
    if unknown:
        ap.error(f"unknown trackers {unknown}; known: {list(TRACKERS)}")
    styles = [s for s in args.styles.split(",") if s] or list(STYLES)
    t0 = time.perf_counter()
    excerpts = load_corpus(args.split, styles, workers=args.workers)
    if not excerpts:
        ap.error("no excerpts selected")
    load_s = time.perf_counter() - t0
    total = sum(e.duration for e in excerpts)
    print(f"beat corpus: {len(excerpts)} excerpts ({args.split}), {total / 60:.1f} min of audio, "
          f"loaded in {load_s:.1f} s", flush=True)
    t1 = time.perf_counter()
    results = run(trackers, excerpts, args.workers)
    run_s = time.perf_counter() - t1
    results += [ext.result(name, ex) for name, ext in externals.items() for ex in excerpts]
    trackers += list(externals)
    n_by_style = {s: sum(e.style == s for e in excerpts) for s in styles if any(e.style == s for e in excerpts)}
    summary = summarise(results, trackers, styles)
    print(markdown(summary, trackers, styles, n_by_style))
    print(f"\n{len(trackers)} trackers x {len(excerpts)} excerpts in {run_s:.1f} s "
          f"(beats before {MIN_BEAT_TIME:.0f} s not scored; F window {F_WINDOW * 1e3:.0f} ms)")
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "styles": styles, "summary": summary,
                                               "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
