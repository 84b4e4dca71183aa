"""Issue 23's bars, read off a beat-following evaluation's results.json (training/evaluate_beat_following.py).

    python scripts/issue23_bars.py runs/issue23/eval_results.json     # a table; exit 0
    python scripts/issue23_bars.py results.json --strict              # exit 1 unless every measured bar holds

Bars (the issue's, on SynthDance small's 10 held-out 8 s clips): 2D-MM Align at least 90 % of the ground
truth's and at least 0.2 above mismatched music; the half-beat delay moves the motion 0.5 +- 0.15 beats;
kinematic beats per clip within 25 % of the ground truth's; DPM-Solver++ 25 within 3 % of DDPM 1000 on
2D-MM Align; motion amplitude (mean Farneback speed, generated over ground truth) within 0.8-1.25.
A bar whose experiment is not in the file is "not measured".
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def _get(r: dict[str, Any], *path: str) -> float:
    for p in path:
        if not isinstance(r, dict) or p not in r:
            return float("nan")
        r = r[p]
    try:
        return float(r)
    except (TypeError, ValueError):
        return float("nan")


def _steps(results: dict[str, Any], key: str) -> str:
    v = _get(results, "samplers", "summary", key)
    return f"{v:.0f}" if math.isfinite(v) else "?"


def bars(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per bar: name, measured value (text), target, verdict (True / False / None = not measured)."""
    gen = _get(results, "main", "summary", "gen_mm_align")
    gt = _get(results, "main", "summary", "gt_mm_align")
    mis = _get(results, "main", "summary", "mis_mm_align")
    beats = _get(results, "main", "summary", "beats_ratio_gen_over_gt")
    amp = _get(results, "main", "summary", "motion_amplitude")
    shift = _get(results, "delay", "summary", "shift_beats")
    ratio = _get(results, "samplers", "summary", "mm_ratio_dpm_over_ddpm")
    rows = [
        ("2D-MM Align / ground truth", gen / gt if gt else float("nan"), ">= 0.90", lambda v: v >= 0.9,
         f"{gen:.3f} / {gt:.3f}"),
        ("2D-MM Align - mismatched music", gen - mis, ">= 0.20", lambda v: v >= 0.2, f"{gen:.3f} - {mis:.3f}"),
        ("half-beat delay shift (beats)", shift, "0.5 +- 0.15", lambda v: abs(v - 0.5) <= 0.15, ""),
        ("kinematic beats / ground truth", beats, "0.75-1.25", lambda v: 0.75 <= v <= 1.25, ""),
        (f"DPM++ {_steps(results, 'dpm_steps')} / DDPM {_steps(results, 'ddpm_steps')} (2D-MM)", ratio, "0.97-1.03", lambda v: abs(v - 1.0) <= 0.03,
         f"{_get(results, 'samplers', 'summary', 'dpm++_mm_align'):.3f} / "
         f"{_get(results, 'samplers', 'summary', 'ddpm_mm_align'):.3f}"),
        ("motion amplitude (generated / gt speed)", amp, "0.8-1.25", lambda v: 0.8 <= v <= 1.25,
         f"flow AE reconstruction {_get(results, 'main', 'summary', 'motion_amplitude_rec'):.3f}; generated / "
         f"reconstruction {_get(results, 'main', 'summary', 'motion_amplitude_over_rec'):.3f}"),
    ]
    out = []
    for name, v, target, ok, detail in rows:
        out.append({"bar": name, "value": v, "target": target, "detail": detail,
                    "holds": None if not math.isfinite(v) else bool(ok(v))})
    return out


def table(rows: list[dict[str, Any]], results: dict[str, Any]) -> str:
    lines = [f"issue 23 bars: {results.get('checkpoint')} ({results.get('videos')} clips of "
             f"{results.get('clip_frames')} frames)", "",
             "| bar | measured | target | holds |", "|---|---:|---|---|"]
    for r in rows:
        v = "n/a" if not math.isfinite(r["value"]) else f"{r['value']:.3f}"
        verdict = {True: "yes", False: "**no**", None: "not measured"}[r["holds"]]
        lines.append(f"| {r['bar']} | {v}{' (' + r['detail'] + ')' if r['detail'] else ''} | {r['target']} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="results.json of training/evaluate_beat_following.py")
    p.add_argument("--strict", action="store_true", help="exit 1 unless every measured bar holds")
    args = p.parse_args(argv)
    results = json.loads(Path(args.results).read_text())
    rows = bars(results)
    print(table(rows, results), end="")
    return 1 if args.strict and any(r["holds"] is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
