"""Make a SynthDance data set (AIST++ layout) to train and evaluate every stage on.

    python -m training.make_synthetic --out DIR [--preset tiny|small|full] [--seed S] [--workers N]

Prints a progress bar and, as its last line, the output directory. Same preset and seed give
the same files. See ``dabfusion/synth/__init__.py`` for what is in the world.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from dabfusion.synth.presets import PRESETS

    p = argparse.ArgumentParser(prog="python -m training.make_synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (created; existing SynthDance files are overwritten)")
    p.add_argument("--preset", default="small", choices=sorted(PRESETS),
                   help="tiny: seconds, for tests; small (default): enough to train small models; full: bigger")
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPUs)")
    p.add_argument("--mux-audio", action="store_true",
                   help="also put the music into each MP4 (AIST++ keeps it in separate files)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from dabfusion.errors import DabFusionError
    from dabfusion.synth import generate

    t0 = time.time()
    try:
        out = generate(args.out, args.preset, args.seed, workers=args.workers, progress=not args.quiet,
                       mux_audio=args.mux_audio)
    except DabFusionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"SynthDance {args.preset} (seed {args.seed}) written in {time.time() - t0:.1f} s", file=sys.stderr)
    print(os.fspath(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
