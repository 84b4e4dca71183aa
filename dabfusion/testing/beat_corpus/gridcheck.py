"""Check an excerpt's annotation against its audio before trusting it.

For every annotated beat on which the score puts a sharp-attack drum (kick, snare, rim, clap,
clave, cowbell, conga: :data:`.compose.ANCHOR_KEYS`), the attack found in the audio must lie
within :data:`TOLERANCE_S` of the annotated time. The drum stem is timed (no pads or bass over
it), and the full mix is timed too and reported. An excerpt that fails is left out of the corpus.

The attack detector is deliberately simple and the same everywhere (it also measures
fluidsynth's latency in :func:`.render.measure_latency`): the sample after which the Hilbert
envelope's 5 ms mean most exceeds the 5 ms mean before it, on the plain and the pre-emphasised
signal, whichever rises more clearly (:func:`attack_times`). Its own bias is
measured on synthetic hits whose first sample is known (:func:`detector_bias`) and removed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: An anchor's attack must be this close to its annotated beat.
TOLERANCE_S = 0.010
#: ... for at least this fraction of the anchors (a ghost note may hide under a louder hit).
MIN_FRACTION = 0.95
MIN_ANCHORS = 6
#: An attack raises the envelope's mean over WINDOW_S by at least this much.
MIN_RISE_DB = 3.0
WINDOW_S = 0.005


def _envelope(y: np.ndarray, sr: int) -> np.ndarray:
    """Hilbert envelope: smooth on a decaying low sine (a kick's tail does not oscillate in it,
    as a rectified envelope would), sharp at attacks."""
    from scipy.fft import next_fast_len
    from scipy.signal import hilbert
    x = y.astype(np.float64)
    return np.abs(hilbert(x, N=next_fast_len(len(x)))[:len(x)])


@lru_cache(maxsize=4)
def detector_bias(sr: int) -> float:
    """The detector's own offset (s) on sounds whose first sample is known: the numpy
    synthesiser's anchor drums, struck alone. :func:`attack_times` subtracts it, so what it
    returns is where a sound starts (about -2 ms: the Hilbert envelope and the 5 ms means see an
    attack slightly early)."""
    from .render import _drum, _peak1
    rng = np.random.default_rng(0)
    keys = (36, 38, 37, 39, 56, 75, 62, 63, 64)
    gap = int(0.3 * sr)
    y = np.zeros(gap * (len(keys) * 3 + 2))
    onsets = []
    for i in range(len(keys) * 3):
        h = _peak1(_drum(keys[i % len(keys)], sr, rng))[:gap - 10]
        at = gap * (i + 1)
        y[at:at + len(h)] += h * (0.3 + 0.25 * (i % 3))
        onsets.append(at / sr)
    t_raw, s_raw = _attack_times_raw(y, sr, np.array(onsets), pre_emphasis=False)
    t_pre, s_pre = _attack_times_raw(y, sr, np.array(onsets), pre_emphasis=True)
    found = np.where(np.nan_to_num(s_pre, nan=-np.inf) >= np.nan_to_num(s_raw, nan=-np.inf), t_pre, t_raw)
    return float(np.nanmedian(found - np.array(onsets)))


def attack_times(y: np.ndarray, sr: int, expected: np.ndarray, *, search_s: float = 0.03) -> np.ndarray:
    """Where the sounds nearest ``expected`` start (s; NaN where nothing starts), minus the
    detector's measured bias. Timed on the signal as it is *and* pre-emphasised; per attack the
    view with the clearer rise wins: pre-emphasis finds a clap under a kick's 50 Hz tail, the
    plain signal an 808 kick (a low sine with no click) under a hi-hat's tail."""
    t_raw, s_raw = _attack_times_raw(y, sr, expected, search_s=search_s, pre_emphasis=False)
    t_pre, s_pre = _attack_times_raw(y, sr, expected, search_s=search_s, pre_emphasis=True)
    use_pre = np.nan_to_num(s_pre, nan=-np.inf) >= np.nan_to_num(s_raw, nan=-np.inf)
    return np.where(use_pre, t_pre, t_raw) - detector_bias(sr)


def _attack_times_raw(y: np.ndarray, sr: int, expected: np.ndarray, *, search_s: float = 0.03,
                      pre_emphasis: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Attack time (s) nearest each ``expected`` time (NaN where nothing starts there) and its
    strength (the rise, in nepers).

    The attack is the sample where the mean envelope of the next :data:`WINDOW_S` most exceeds
    that of the previous :data:`WINDOW_S` (in dB), within ``search_s`` of the expected time, among
    the samples whose rise in amplitude is at least a quarter of the window's largest (so the
    flicker of a quiet hat tail is not an attack). For a sound that starts at a sample, this
    ratio peaks exactly there, whether it rises from silence or out of a louder sound's tail; the
    averaging makes it blind to the envelope's flicker inside noise (snares, hats, claps), and a
    later, louder burst (a clap's second clap) does not move it. A rise of less than
    :data:`MIN_RISE_DB` is no attack."""
    x = np.append(y[:1], y[1:] - 0.97 * y[:-1]) if pre_emphasis else y
    env = _envelope(x, sr)
    w = max(1, int(WINDOW_S * sr))
    c = np.concatenate([[0.0], np.cumsum(env)])
    n = len(env)
    fwd = np.zeros(n)
    bwd = np.zeros(n)
    idx = np.arange(w, n - w)
    fwd[idx] = (c[idx + w] - c[idx]) / w
    bwd[idx] = (c[idx] - c[idx - w]) / w
    floor = 1e-4 * (float(env.max()) or 1.0)
    ratio = np.log(fwd + floor) - np.log(bwd + floor)
    rise = fwd - bwd
    out = np.full(len(expected), np.nan)
    strength = np.full(len(expected), np.nan)
    min_rise = MIN_RISE_DB / 20.0 * np.log(10.0)
    for i, t in enumerate(np.asarray(expected, np.float64)):
        a = max(int(round((t - search_s) * sr)), w)
        b = min(int(round((t + search_s) * sr)), n - w)
        if b - a < 4:
            continue
        r = rise[a:b]
        cand = np.where(r >= 0.25 * max(float(r.max()), 1e-12), ratio[a:b], -np.inf)
        k = int(np.argmax(cand))
        if cand[k] >= min_rise:
            out[i] = (a + k) / sr
            strength[i] = cand[k]
    return out, strength


def check_excerpt(anchor_times: np.ndarray, drums: np.ndarray, mix: np.ndarray | None,
                  sr: int) -> dict:
    """Offsets (attack - annotation) of the anchors on the drum stem and the mix, and pass/fail.

    ``anchor_times`` are the *annotated* times (latency already corrected)."""
    res: dict = {"n_anchors": int(len(anchor_times))}
    off = attack_times(drums, sr, anchor_times) - anchor_times
    ok = np.isfinite(off)
    absoff = np.abs(off[ok])
    res.update(stem_median_ms=float(np.median(off[ok]) * 1e3) if ok.any() else float("nan"),
               stem_p95_abs_ms=float(np.percentile(absoff, 95) * 1e3) if ok.any() else float("nan"),
               stem_max_abs_ms=float(absoff.max() * 1e3) if ok.any() else float("nan"),
               stem_within=float(np.mean(np.abs(np.where(ok, off, 1.0)) <= TOLERANCE_S))
               if len(off) else 0.0)
    if mix is not None:
        moff = attack_times(mix, sr, anchor_times) - anchor_times
        mok = np.isfinite(moff)
        res.update(mix_median_ms=float(np.median(moff[mok]) * 1e3) if mok.any() else float("nan"),
                   mix_within=float(np.mean(np.abs(np.where(mok, moff, 1.0)) <= TOLERANCE_S))
                   if len(moff) else 0.0)
    res["passed"] = bool(res["n_anchors"] >= MIN_ANCHORS and res["stem_within"] >= MIN_FRACTION
                         and abs(res["stem_median_ms"]) <= TOLERANCE_S * 1e3 / 2)
    return res
