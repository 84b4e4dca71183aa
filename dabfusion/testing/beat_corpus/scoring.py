"""Scores of a beat tracker's output against an excerpt's exact annotation (mir_eval.beat).

One place for the benchmark (``benchmarks/bench_beat_tracking.py``) and the short corpus test, so
both mean the same thing by "F", "off-beat lock" and "octave error":

- F-measure at +-70 ms, CMLt and AMLt (``mir_eval.beat``); downbeat F-measure (70 ms);
- *off-beat lock*: F against the midpoints between the true beats exceeds F on the beats;
- *tempo*: 60 / median inter-beat interval of the estimate against that of the annotation: "ok"
  within 4 %, an octave error ("x2", "x1/2", "x3", "x1/3", "x3/2", "x2/3") within 4 % of that
  ratio, else "other".

Beats before :data:`MIN_BEAT_TIME` (5 s) are removed from both annotation and estimate before
every score: mir_eval's default and the MIREX convention (a tracker gets a few seconds to find the
pulse). Every excerpt starts on music within about a second, and the drumless intros run past 5 s.
"""

from __future__ import annotations

import numpy as np

MIN_BEAT_TIME = 5.0
F_WINDOW = 0.07
TEMPO_TOL = 0.04
OCTAVE_RATIOS = {"x2": 2.0, "x1/2": 0.5, "x3": 3.0, "x1/3": 1 / 3, "x3/2": 1.5, "x2/3": 2 / 3}


def _trim(b: np.ndarray) -> np.ndarray:
    import mir_eval
    return mir_eval.beat.trim_beats(np.asarray(b, np.float64), min_beat_time=MIN_BEAT_TIME)


def _f(ref: np.ndarray, est: np.ndarray) -> float:
    import mir_eval
    if ref.size == 0 and est.size == 0:
        return 1.0
    if ref.size == 0 or est.size == 0:
        return 0.0
    return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=F_WINDOW))


def _tempo(beats: np.ndarray) -> float:
    return 60.0 / float(np.median(np.diff(beats))) if beats.size >= 2 else 0.0


def tempo_class(est_bpm: float, ref_bpm: float) -> str:
    """"ok", an octave name ("x2", "x1/2", ...), or "other" (also when nothing was estimated)."""
    if est_bpm <= 0 or ref_bpm <= 0:
        return "other"
    r = est_bpm / ref_bpm
    if abs(r - 1.0) <= TEMPO_TOL:
        return "ok"
    for name, k in OCTAVE_RATIOS.items():
        if abs(r / k - 1.0) <= TEMPO_TOL:
            return name
    return "other"


def score(ref_beats: np.ndarray, ref_downbeats: np.ndarray, est_beats: np.ndarray,
          est_downbeats: np.ndarray) -> dict:
    """Every score of one excerpt (beats before :data:`MIN_BEAT_TIME` removed from both sides)."""
    import mir_eval
    ref = _trim(ref_beats)
    est = _trim(est_beats)
    f = _f(ref, est)
    off = 0.5 * (ref[:-1] + ref[1:])
    f_off = _f(off, est)
    if ref.size >= 2 and est.size >= 2:
        cmlc, cmlt, amlc, amlt = mir_eval.beat.continuity(ref, est)
    else:
        cmlc = cmlt = amlc = amlt = 0.0
    ref_t, est_t = _tempo(ref), _tempo(est)
    return {"f": f, "cmlt": float(cmlt), "amlt": float(amlt), "f_offbeat": f_off,
            "offbeat_lock": bool(f_off > f), "downbeat_f": _f(_trim(ref_downbeats), _trim(est_downbeats)),
            "ref_tempo": ref_t, "est_tempo": est_t, "tempo_class": tempo_class(est_t, ref_t)}
