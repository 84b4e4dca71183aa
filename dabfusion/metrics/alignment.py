"""Motion-music beat alignment: the Beat Alignment Score (AIST++) and its 2D form (DabFusion eq. 7).

A *kinematic beat* is a local minimum of the (smoothed) motion speed: a dancer hits an accent by
stopping or changing direction. The score asks how close each kinematic beat lies to a music
beat, with a Gaussian of width ``sigma`` frames:

    BAS = 1/|B_x| * sum_{x in B_x} exp(-min_y |x - y|^2 / (2 sigma^2))

``average_over="kinematic"`` (default) is the AIST++ / DabFusion convention (sum over kinematic
beats, distance to the nearest music beat); ``average_over="music"`` is Bailando's variant (sum
over music beats, distance to the nearest kinematic beat). The first rewards motion whose
accents are all on the beat, the second rewards music whose beats are all danced.

Everything is in frames of the motion's frame rate; :func:`times_to_frames` converts beat times
in seconds. Pure numpy so that evaluation code can use it without torch.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "times_to_frames",
    "motion_speed_from_joints",
    "smooth_gaussian",
    "local_minima",
    "kinematic_beats",
    "beat_alignment_score",
    "motion_music_alignment",
    "beat_f_measure",
]

#: AIST++ uses sigma = 3 frames (at 60 fps); DabFusion reports 2D-MM Align with the same value.
DEFAULT_SIGMA = 3.0
#: Speed smoothing in frames. AIST++ smooths with a Gaussian of sigma 5 at 60 fps (~83 ms);
#: 2 frames at 30 fps (~67 ms) keeps beats of fast tempi (~11 frames apart at 160 bpm) separate.
DEFAULT_SMOOTH_SIGMA = 2.0


def times_to_frames(times, fps: float, *, round_to_int: bool = False) -> np.ndarray:
    """Times in seconds -> (fractional) frame positions, ``t * fps``.

    Fractional positions are kept by default: a music beat at 0.5 s of 25 fps video lies at frame
    12.5, and rounding it would add up to half a frame of error to every distance.
    """
    frames = np.asarray(times, dtype=np.float64).reshape(-1) * float(fps)
    return np.rint(frames).astype(np.int64) if round_to_int else frames


def motion_speed_from_joints(joints, fps: float = 1.0, *, valid=None) -> np.ndarray:
    """Mean joint speed per frame, ``[T]``, in units per second (pixels/s for pixel joints).

    ``joints`` is ``[T, J, 2]`` (or ``[T, J, D]``). Velocities are central differences
    (``np.gradient``), so speed[t] describes frame t itself rather than the gap between t and t+1
    (forward differences would shift every kinematic beat by half a frame). ``valid`` ``[T, J]``
    (optional) masks joints that are missing; a frame with no valid joint gets speed 0.
    """
    x = np.asarray(joints, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"joints must be [T, J, D], got shape {x.shape}")
    if x.shape[0] < 2:
        return np.zeros(x.shape[0], dtype=np.float64)
    vel = np.gradient(x, axis=0) * float(fps)
    speed = np.linalg.norm(vel, axis=-1)  # [T, J]
    if valid is None:
        return speed.mean(axis=1)
    w = np.asarray(valid, dtype=np.float64)
    return (speed * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1.0)


def smooth_gaussian(signal, sigma: float, *, truncate: float = 4.0) -> np.ndarray:
    """1D Gaussian smoothing with mirrored edges, like ``scipy.ndimage.gaussian_filter1d``."""
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    if sigma <= 0 or x.size == 0:
        return x.copy()
    radius = max(1, int(truncate * sigma + 0.5))
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (k / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(x, radius, mode="symmetric")  # numpy keeps mirroring when radius > size
    return np.convolve(padded, kernel, mode="valid")


def local_minima(values, *, min_prominence: float = 0.0) -> np.ndarray:
    """Indices of interior local minima; a flat bottom counts once, at its middle.

    The first and last samples are never minima (we cannot see both sides). The prominence of a
    minimum is how far the signal must rise before it reaches a lower point on the same side,
    taking the lower of the two sides (the walk stops at the edges) - as in
    ``scipy.signal.find_peaks`` on ``-values``.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    n = v.size
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    # Collapse flat runs so that plateaus are one point each.
    change = np.flatnonzero(np.diff(v) != 0) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]]) - 1
    rv = v[starts]
    if rv.size < 3:
        return np.zeros(0, dtype=np.int64)
    is_min = (rv[1:-1] < rv[:-2]) & (rv[1:-1] < rv[2:])
    runs = np.flatnonzero(is_min) + 1
    idx = (starts[runs] + ends[runs]) // 2
    if min_prominence <= 0 or idx.size == 0:
        return idx.astype(np.int64)
    keep = [i for i in idx if _prominence(v, int(i)) >= min_prominence]
    return np.asarray(keep, dtype=np.int64)


def _prominence(v: np.ndarray, i: int) -> float:
    left = v[: i + 1][::-1]
    lower = np.flatnonzero(left < v[i])
    left_max = left[: lower[0]].max() if lower.size else left.max()
    right = v[i:]
    lower = np.flatnonzero(right < v[i])
    right_max = right[: lower[0]].max() if lower.size else right.max()
    return float(min(left_max, right_max) - v[i])


def kinematic_beats(
    speed,
    *,
    smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
    min_prominence: float = 0.0,
) -> np.ndarray:
    """Frame indices of kinematic beats: local minima of the Gaussian-smoothed speed.

    The speed is smoothed with a Gaussian of ``smooth_sigma`` frames (mirrored edges) so that
    jitter of a frame or two does not create spurious beats; ``min_prominence`` (in the units of
    ``speed``) optionally drops shallow dips. ``smooth_sigma=0`` uses the raw speed.
    """
    s = smooth_gaussian(speed, smooth_sigma)
    return local_minima(s, min_prominence=min_prominence)


def beat_alignment_score(
    kinematic_beats,
    music_beats,
    sigma: float = DEFAULT_SIGMA,
    *,
    average_over: Literal["kinematic", "music"] = "kinematic",
) -> float:
    """Beat Alignment Score in [0, 1]; both beat lists in frames (fractional allowed).

    ``average_over="kinematic"``: mean over kinematic beats of exp(-d^2 / (2 sigma^2)), d the
    distance to the nearest music beat (AIST++, DabFusion 2D-MM Align).
    ``average_over="music"``: mean over music beats, d to the nearest kinematic beat (Bailando).

    Empty rule: if the list being averaged over is empty, or the other list is empty (nothing to
    be near), the score is 0.0 - a motion without accents, or music without beats, earns nothing.
    """
    kin = np.asarray(kinematic_beats, dtype=np.float64).reshape(-1)
    mus = np.asarray(music_beats, dtype=np.float64).reshape(-1)
    if average_over == "kinematic":
        over, near = kin, mus
    elif average_over == "music":
        over, near = mus, kin
    else:
        raise ValueError(f"average_over must be 'kinematic' or 'music', got {average_over!r}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if over.size == 0 or near.size == 0:
        return 0.0
    d = np.abs(over[:, None] - near[None, :]).min(axis=1)
    return float(np.mean(np.exp(-(d**2) / (2.0 * sigma**2))))


def motion_music_alignment(
    joints,
    music_beat_times,
    fps: float,
    *,
    sigma: float = DEFAULT_SIGMA,
    smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
    average_over: Literal["kinematic", "music"] = "kinematic",
) -> float:
    """Joints ``[T, J, 2]`` at ``fps`` + music beat times (s) -> Beat Alignment Score.

    Music beats beyond the motion's last frame are dropped so that a clip of a longer song is
    not penalised (Bailando-style averaging) for beats it never covered.
    """
    joints = np.asarray(joints)
    kin = kinematic_beats(motion_speed_from_joints(joints, fps), smooth_sigma=smooth_sigma)
    mus = times_to_frames(music_beat_times, fps)
    mus = mus[(mus >= 0) & (mus <= joints.shape[0] - 1)]
    return beat_alignment_score(kin, mus, sigma, average_over=average_over)


def beat_f_measure(estimated, reference, window: float = 0.07) -> float:
    """F-measure of estimated beat times against reference times (s), mir_eval style.

    A reference beat is hit when an estimated beat lies within ``window`` seconds (70 ms is the
    MIREX convention) and each estimate can hit only one reference (greedy nearest matching,
    which equals mir_eval's optimal matching when beats are further apart than 2 windows).
    Unlike mir_eval we do not discard the first 5 s: our clips are short. Both empty -> 1.0,
    one empty -> 0.0.
    """
    est = np.sort(np.asarray(estimated, dtype=np.float64).reshape(-1))
    ref = np.sort(np.asarray(reference, dtype=np.float64).reshape(-1))
    if est.size == 0 and ref.size == 0:
        return 1.0
    if est.size == 0 or ref.size == 0:
        return 0.0
    d = np.abs(ref[:, None] - est[None, :])
    ref_used = np.zeros(ref.size, dtype=bool)
    est_used = np.zeros(est.size, dtype=bool)
    hits = 0
    for r, e in zip(*np.unravel_index(np.argsort(d, axis=None, kind="stable"), d.shape)):
        if d[r, e] > window:
            break
        if ref_used[r] or est_used[e]:
            continue
        ref_used[r] = est_used[e] = True
        hits += 1
    if hits == 0:
        return 0.0
    precision, recall = hits / est.size, hits / ref.size
    return float(2 * precision * recall / (precision + recall))
