"""``python -m dabfusion.testing.beat_corpus build | report | write-short``."""

from __future__ import annotations

import argparse
import json

from .corpus import SEED, SR, build_corpus, corpus_report, write_short


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dabfusion.testing.beat_corpus", description=__doc__)
    ap.add_argument("command", choices=["build", "report", "write-short"])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--sr", type=int, default=SR)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="re-render even what is cached")
    ap.add_argument("--json", help="report: write it here as JSON")
    args = ap.parse_args(argv)
    if args.command == "build":
        print(build_corpus(args.seed, args.sr, workers=args.workers, force=args.force))
    elif args.command == "write-short":
        write_short(sr=args.sr)
    else:
        rep = corpus_report(args.seed, args.sr)
        lat = rep["latency"]
        if lat:
            print(f"fluidsynth latency (attack after the notated time): correction "
                  f"{lat['correction_s'] * 1e3:.2f} ms; median {lat['median_s'] * 1e3:.2f} ms over "
                  f"{lat['n']} hits (range {lat['min_s'] * 1e3:.2f}..{lat['max_s'] * 1e3:.2f}); per key "
                  + ", ".join(f"{k}: {v * 1e3:.2f}" for k, v in lat["per_key"].items()))
        print("| excerpt | split | source | bpm | anchors | stem median ms | stem p95 abs ms | "
              "stem within 10 ms | mix within 10 ms | passed |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for e in rep["excerpts"]:
            g = e["gridcheck"]
            print(f"| {e['name']} | {e['split']} | {e['source']} | {e['tempo']:.1f} | {g['n_anchors']} | "
                  f"{g['stem_median_ms']:.2f} | {g['stem_p95_abs_ms']:.2f} | {g['stem_within']:.2f} | "
                  f"{g.get('mix_within', float('nan')):.2f} | {g['passed']} |")
        n_pass = sum(e["gridcheck"]["passed"] for e in rep["excerpts"])
        print(f"\n{n_pass}/{len(rep['excerpts'])} excerpts pass the grid check")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
