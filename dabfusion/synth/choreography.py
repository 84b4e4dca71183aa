"""Genre move vocabularies and the timing that puts every motion accent on a music beat.

A move is a short list of key poses, one per beat. A choreography (``chNN``) is a sequence of
moves: basic dances (``sBM``) loop one move, left then mirrored; advanced dances (``sFM``) chain
several moves with random mirroring. :func:`pose_track` places key pose ``n`` exactly on music
beat ``n`` and eases between neighbours with a curve whose velocity is zero at both ends and
single-peaked in between, so the body's speed has its minima on the beats and nowhere else:

    e(u) = a * (1 - cos(pi u)) / 2 + (1 - a) * (u - sin(2 pi u) / (2 pi)),   u in [0, 1]
    e'(u) = a * pi/2 * sin(pi u) + (1 - a) * 2 sin^2(pi u)   (>= 0, zero only at u = 0 and 1)

``a`` is the dancer's softness (1 = smooth, 0 = sharp hits). Every pose parameter - angles,
root offsets, bounce, sway - is eased with the same curve on the same beat grid, so all
joint velocities share the envelope e'(u). The groove (knees giving forward on every other
beat, which drops the whole body) and skipping near-duplicate key poses make sure no beat
interval is ever still, which would otherwise put a speed minimum mid-interval. Per-beat
variation ("noise") perturbs the key poses, never the timing, for the same reason. The
measured result on the small preset: kinematic beats lie 0.0 +- 0.5 frames from the beats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dancers import Dancer
from .skeleton import ANGLE_PARAMS, P, POSE_PARAMS, Body, forward_kinematics, lowest_point, neutral_pose

_ALIAS = {
    "ls": "l_sho", "le": "l_elb", "rs": "r_sho", "re": "r_elb",
    "lh": "l_hip", "lk": "l_knee", "rh": "r_hip", "rk": "r_knee",
    "laf": "l_arm_fs", "raf": "r_arm_fs", "llf": "l_leg_fs", "rlf": "r_leg_fs",
    "x": "root_x", "torso": "torso", "head": "head", "yaw": "yaw", "dy": "dy",
}
_MIRROR_SWAP = {"ls": "rs", "le": "re", "lh": "rh", "lk": "rk", "laf": "raf", "llf": "rlf"}
_MIRROR_SWAP.update({v: k for k, v in _MIRROR_SWAP.items()})
_MIRROR_NEGATE = {"torso", "head", "x", "yaw"}

#: Key poses closer than this (mean point distance, body heights) to the previous key are skipped.
MIN_KEY_STEP = 0.03

Pose = dict  # short keys (see _ALIAS): angles in degrees, x/dy in body heights, *f in 0.3..1

#: Each genre's base stance, under every pose of that genre.
STANCE: dict[str, Pose] = {
    "BR": {"lh": 14, "lk": -22, "rh": 14, "rk": -22},
    "PO": {"lh": 8, "lk": -6, "rh": 8, "rk": -6},
    "LO": {"lh": 10, "lk": -14, "rh": 10, "rk": -14},
    "MH": {"lh": 10, "lk": -18, "rh": 10, "rk": -18},
    "LH": {"lh": 14, "lk": -20, "rh": 14, "rk": -20},
    "HO": {"lh": 7, "lk": -10, "rh": 7, "rk": -10},
    "WA": {"lh": 6, "lk": -4, "rh": 6, "rk": -4},
    "KR": {"lh": 24, "lk": -40, "rh": 24, "rk": -40},
    "JS": {"lh": 6, "lk": -4, "rh": 6, "rk": -4},
    "JB": {"lh": 4, "lk": 0, "rh": 4, "rk": 0},
}

#: Genre vocabularies: move name -> key poses (one per beat).
MOVES: dict[str, dict[str, list[Pose]]] = {
    "BR": {  # toprock, Indian step, low sweeps, freezes, a windmill-ish rotation
        "toprock": [{"ls": 45, "le": 70, "laf": 0.6, "rs": 35, "re": 60, "lh": 24, "lk": -10, "rh": -4, "torso": -6},
                    {"ls": 30, "le": 50, "rs": 50, "re": 80, "raf": 0.6, "lh": 8, "rh": 8, "torso": 4}],
        "indian_step": [{"llf": 0.45, "lh": 20, "lk": 0, "ls": 70, "le": 80, "rs": 25, "re": 95, "torso": 8},
                        {"lh": 6, "rh": 18, "rk": -30, "ls": 40, "le": 30, "rs": 40, "re": 30, "torso": -4}],
        "sweep": [{"lh": 48, "lk": -95, "rh": 42, "rk": -90, "torso": 14, "ls": 70, "le": 20, "rs": 20, "re": 10},
                  {"lh": 64, "lk": -35, "rh": 30, "rk": -85, "torso": 34, "ls": 105, "le": 10, "rs": 55, "re": 40}],
        "freeze": [{"torso": 48, "ls": 150, "le": 10, "rs": 18, "re": 40, "lh": 72, "lk": -40, "rh": 22, "rk": -65, "head": 15},
                   {"torso": 10, "ls": 60, "le": 60, "rs": 60, "re": 60, "lh": 30, "lk": -70, "rh": 30, "rk": -70}],
        "windmill": [{"torso": 55, "lh": 80, "lk": -10, "rh": 10, "rk": -60, "ls": 10, "rs": 120},
                     {"torso": 20, "lh": 40, "lk": -80, "rh": 60, "rk": -20, "ls": 90, "rs": 90},
                     {"torso": -55, "rh": 80, "rk": -10, "lh": 10, "lk": -60, "rs": 10, "ls": 120},
                     {"torso": -20, "rh": 40, "rk": -80, "lh": 60, "lk": -20, "ls": 90, "rs": 90}],
    },
    "PO": {  # robotic arm hits, tuts, waves, chest hits
        "robot": [{"ls": 90, "le": 90, "rs": 12, "re": 0, "head": 12},
                  {"ls": 12, "le": 0, "rs": 90, "re": 90, "head": -12},
                  {"ls": 90, "le": -90, "rs": 90, "re": 90, "head": 0},
                  {"ls": 90, "le": 0, "rs": 90, "re": 0}],
        "hit": [{"ls": 45, "le": 110, "laf": 0.55, "rs": 45, "re": 110, "raf": 0.55, "lh": 12, "lk": -24, "rh": 12, "rk": -24},
                {"ls": 18, "le": 6, "rs": 18, "re": 6, "torso": 3}],
        "tut": [{"ls": 90, "le": 90, "rs": 90, "re": -90},
                {"ls": 0, "le": 90, "laf": 0.5, "rs": 135, "re": -90}],
        "wave": [{"ls": 80, "le": 25, "rs": 80, "re": -25, "head": 10, "torso": -4},
                 {"ls": 100, "le": -25, "rs": 60, "re": 25, "head": -10, "torso": 4}],
    },
    "LO": {  # points, locks, wrist rolls, knee drops
        "point": [{"ls": 135, "le": 0, "rs": 25, "re": 110, "torso": -6, "head": 12},
                  {"ls": 40, "le": 90, "rs": 40, "re": 90, "laf": 0.6, "raf": 0.6}],
        "lock": [{"ls": 40, "le": 125, "rs": 40, "re": 125, "laf": 0.55, "raf": 0.55, "lh": 14, "lk": -30, "rh": 14, "rk": -30, "torso": 5},
                 {"ls": 100, "le": 0, "rs": 100, "re": 0}],
        "knee_drop": [{"lh": 34, "lk": -105, "rh": 40, "rk": -60, "ls": 60, "le": 30, "rs": 60, "re": 30, "torso": 8},
                      {"ls": 160, "le": 10, "rs": 160, "re": 10}],
        "wrist_roll": [{"ls": 70, "le": 100, "rs": 70, "re": 100, "laf": 0.5, "raf": 0.5, "yaw": 0.5},
                       {"ls": 60, "le": 140, "rs": 60, "re": 140, "yaw": -0.5}],
    },
    "MH": {  # bounce, side steps, running man, shoulder bounces
        "side_step": [{"x": 0.06, "lh": 18, "rh": 4, "ls": 30, "le": 45, "rs": 20, "re": 35, "torso": 5},
                      {"x": 0.03, "lh": 6, "rh": 6, "ls": 25, "le": 70, "rs": 25, "re": 70},
                      {"x": -0.06, "rh": 18, "lh": 4, "rs": 30, "re": 45, "ls": 20, "le": 35, "torso": -5},
                      {"x": -0.03, "lh": 6, "rh": 6, "ls": 25, "le": 70, "rs": 25, "re": 70}],
        "running_man": [{"llf": 0.4, "lk": 0, "ls": 40, "le": 95, "laf": 0.6, "rs": 20, "re": 30},
                        {"rlf": 0.4, "rk": 0, "rs": 40, "re": 95, "raf": 0.6, "ls": 20, "le": 30}],
        "shoulder": [{"torso": 9, "ls": 18, "le": 40, "rs": 32, "re": 45, "head": -6},
                     {"torso": -9, "ls": 32, "le": 45, "rs": 18, "re": 40, "head": 6}],
        "swing_arms": [{"ls": 55, "le": 20, "rs": -15, "re": 30, "torso": 6},
                       {"ls": -15, "le": 30, "rs": 55, "re": 20, "torso": -6}],
    },
    "LH": {  # wide steps, crossing arms, chest pops, dips
        "cross": [{"ls": -22, "le": 40, "rs": -22, "re": 40, "lh": 24, "rh": 24},
                  {"ls": 85, "le": 10, "rs": 85, "re": 10, "lh": 12, "rh": 12}],
        "chest_pop": [{"ls": 30, "le": 70, "rs": 30, "re": 70, "laf": 0.5, "raf": 0.5, "head": -8, "torso": -3},
                      {"torso": 10, "ls": 45, "le": 30, "rs": 20, "re": 50, "head": 6}],
        "wide_step": [{"x": 0.08, "lh": 32, "rh": 10, "lk": -20, "rk": -12, "ls": 50, "le": 40, "rs": 25, "re": 50},
                      {"x": -0.08, "rh": 32, "lh": 10, "rk": -20, "lk": -12, "rs": 50, "re": 40, "ls": 25, "le": 50}],
        "dip": [{"lh": 30, "lk": -60, "rh": 30, "rk": -60, "torso": 12, "ls": 40, "le": 60, "rs": 40, "re": 60},
                {"lh": 10, "lk": -10, "rh": 10, "rk": -10, "torso": -6, "ls": 20, "le": 20, "rs": 60, "re": 90}],
    },
    "HO": {  # jacking, heel-toe, shuffles, skates; loose arms
        "jack": [{"lh": 9, "lk": -32, "rh": 9, "rk": -32, "head": 12, "torso": 4, "ls": 22, "le": 40, "rs": 22, "re": 40},
                 {"lh": 6, "lk": -2, "rh": 6, "rk": -2, "torso": -4, "ls": 16, "le": 15, "rs": 16, "re": 15}],
        "heel_toe": [{"lh": 26, "lk": -8, "rh": 5, "ls": 35, "le": 50, "rs": 20, "re": 30},
                     {"lh": 5, "rh": 26, "rk": -8, "ls": 20, "le": 30, "rs": 35, "re": 50}],
        "shuffle": [{"x": 0.04, "lh": 32, "lk": -45, "rh": 5, "ls": 42, "le": 35, "rs": 20, "re": 30},
                    {"x": -0.04, "rh": 32, "rk": -45, "lh": 5, "rs": 42, "re": 35, "ls": 20, "le": 30}],
        "skate": [{"llf": 0.45, "rh": 12, "rk": -24, "ls": 52, "le": 30, "rs": 12, "re": 20, "torso": -5},
                  {"rlf": 0.45, "lh": 12, "lk": -24, "rs": 52, "re": 30, "ls": 12, "le": 20, "torso": 5}],
    },
    "WA": {  # overhead arm whips, poses, arm rolls, struts
        "whip": [{"ls": 170, "le": 30, "rs": 30, "re": 90, "head": 8},
                 {"ls": 60, "le": 150, "rs": 170, "re": 30, "head": -8}],
        "pose": [{"ls": 160, "le": 0, "rs": 160, "re": 0, "torso": 6, "head": 15},
                 {"ls": 90, "le": 90, "rs": 90, "re": 90, "torso": -3}],
        "arm_roll": [{"ls": 120, "le": 120, "rs": 30, "re": 120, "laf": 0.6},
                     {"ls": 30, "le": 120, "rs": 120, "re": 120, "raf": 0.6}],
        "strut": [{"x": 0.05, "lh": 16, "llf": 0.6, "ls": 150, "le": 20, "rs": 40, "re": 30, "torso": -5},
                  {"x": -0.05, "rh": 16, "rlf": 0.6, "rs": 150, "re": 20, "ls": 40, "le": 30, "torso": 5}],
    },
    "KR": {  # stomps, chest pops, big arm swings, jabs; low and wide
        "stomp": [{"llf": 0.35, "lk": 0, "rh": 22, "rk": -36, "ls": 70, "le": 95, "rs": 70, "re": 95, "torso": 8},
                  {"lh": 32, "lk": -48, "rh": 32, "rk": -48, "ls": 30, "le": 95, "rs": 30, "re": 95}],
        "chest_pop": [{"torso": -10, "ls": 60, "le": 105, "rs": 60, "re": 105, "laf": 0.6, "raf": 0.6},
                      {"torso": 12, "ls": 20, "le": 60, "rs": 20, "re": 60, "head": 10}],
        "arm_swing": [{"ls": 140, "le": 40, "rs": -30, "re": 60, "torso": 16},
                      {"rs": 140, "re": 40, "ls": -30, "le": 60, "torso": -16}],
        "jab": [{"ls": 90, "le": 0, "laf": 0.4, "rs": 40, "re": 120, "torso": -6},
                {"rs": 90, "re": 0, "raf": 0.4, "ls": 40, "le": 120, "torso": 6}],
    },
    "JS": {  # kicks, jazz lines, hip sway, turns
        "side_kick": [{"lh": 72, "lk": 0, "rh": 0, "rk": 0, "ls": 120, "le": 0, "rs": 60, "re": 0, "torso": -15},
                      {"lh": 10, "lk": -12, "rh": 10, "rk": -12, "ls": 40, "le": 20, "rs": 40, "re": 20}],
        "sway": [{"x": 0.03, "torso": -8, "ls": 140, "le": 20, "rs": 30, "re": 40},
                 {"x": -0.03, "torso": 8, "rs": 140, "re": 20, "ls": 30, "le": 40}],
        "jazz_hands": [{"ls": 110, "le": 10, "rs": 110, "re": 10, "head": 6},
                       {"ls": 45, "le": 30, "rs": 45, "re": 30, "lh": 12, "lk": -24, "rh": 12, "rk": -24}],
        "turn": [{"yaw": 1.0, "ls": 80, "le": 90, "rs": 80, "re": 90, "llf": 0.5},
                 {"yaw": -1.0, "ls": 100, "le": 10, "rs": 100, "re": 10}],
    },
    "JB": {  # passe, side extensions, port de bras, jetes
        "passe": [{"lh": 50, "lk": -120, "ls": 160, "le": 20, "rs": 160, "re": 20},
                  {"ls": 80, "le": 10, "rs": 80, "re": 10, "dy": -0.02}],
        "extension": [{"lh": 80, "lk": 0, "torso": -20, "ls": 100, "le": 5, "rs": 80, "re": 5},
                      {"lh": 8, "rh": 8, "ls": 40, "le": 30, "rs": 40, "re": 30}],
        "port_de_bras": [{"ls": 30, "le": 40, "rs": 30, "re": 40},
                         {"ls": 90, "le": 20, "rs": 90, "re": 20, "head": 8},
                         {"ls": 165, "le": 30, "rs": 165, "re": 30},
                         {"ls": 80, "le": 5, "rs": 80, "re": 5, "head": -8}],
        "jete": [{"lh": 52, "rh": 42, "lk": 0, "rk": 0, "dy": -0.08, "ls": 120, "le": 10, "rs": 100, "re": 10},
                 {"lh": 12, "lk": -32, "rh": 12, "rk": -32, "ls": 60, "le": 30, "rs": 60, "re": 30}],
    },
}

#: How crisp a genre's hits are: softness_eff = clip(dancer.softness * mult + bias, 0, 1).
GENRE_SOFTNESS: dict[str, tuple[float, float]] = {
    "BR": (0.8, 0.1), "PO": (0.4, 0.0), "LO": (0.5, 0.0), "MH": (0.8, 0.15), "LH": (0.8, 0.2),
    "HO": (0.8, 0.1), "WA": (0.6, 0.1), "KR": (0.4, 0.0), "JS": (0.7, 0.2), "JB": (0.5, 0.5),
}


def mirror_pose(pose: Pose) -> Pose:
    """The same pose danced to the other side."""
    out = {}
    for k, v in pose.items():
        out[_MIRROR_SWAP.get(k, k)] = -v if k in _MIRROR_NEGATE else v
    return out


@dataclass(frozen=True)
class Choreography:
    """A choreography: genre, id, situation and its moves as (name, mirrored) pairs."""

    genre: str
    choreo: int
    situation: str
    moves: tuple[tuple[str, bool], ...]

    def key_poses(self) -> list[Pose]:
        """The per-beat key poses of one pass through the choreography (it loops)."""
        stance = STANCE[self.genre]
        out = []
        for name, mirrored in self.moves:
            for pose in MOVES[self.genre][name]:
                p = {**stance, **pose}
                out.append(mirror_pose(p) if mirrored else p)
        return out

    def to_json(self) -> dict:
        return {"genre": self.genre, "choreo": f"ch{self.choreo:02d}", "situation": self.situation,
                "moves": [[n, m] for n, m in self.moves]}


def make_choreography(genre: str, choreo: int, situation: str, rng: np.random.Generator) -> Choreography:
    """``sBM``: one move looped left/right (chosen by the id); ``sFM``: 4-7 random moves, mirrored at random."""
    names = list(MOVES[genre])
    if situation == "BM":
        name = names[(choreo - 1) % len(names)]
        return Choreography(genre, choreo, situation, ((name, False), (name, True)))
    moves = []
    for _ in range(int(rng.integers(4, 8))):
        name = names[int(rng.integers(len(names)))]
        mirrored = bool(rng.random() < 0.5)
        moves.extend([(name, mirrored)] * int(rng.integers(1, 3)))
    return Choreography(genre, choreo, situation, tuple(moves))


def _to_vector(pose: Pose) -> tuple[np.ndarray, float]:
    v = neutral_pose()
    dy = 0.0
    for k, val in pose.items():
        name = _ALIAS[k]
        if name == "dy":
            dy = float(val)
        else:
            v[P[name]] = np.deg2rad(val) if name in ANGLE_PARAMS else float(val)
    return v, dy


def ease(u: np.ndarray, softness: float) -> np.ndarray:
    """Monotone 0 -> 1 with zero slope at both ends (see the module docstring)."""
    a = float(np.clip(softness, 0.0, 1.0))
    return a * (1.0 - np.cos(np.pi * u)) / 2.0 + (1.0 - a) * (u - np.sin(2.0 * np.pi * u) / (2.0 * np.pi))


def _cycle(poses: list[Pose], n_keys: int, min_step: float) -> list[tuple[np.ndarray, float]]:
    """Walk the looped pose list, skipping a pose that barely differs from the previous key.

    A still beat interval has no speed minimum on its beats but one in its middle, and a pose
    pair like "A, mirror(A)" looped with its mirror would create one; skipping keeps every
    interval moving.
    """
    raw = [_to_vector(p) for p in poses]
    pts = forward_kinematics(np.stack([v for v, _ in raw]), Body())
    out: list[tuple[np.ndarray, float]] = []
    i, prev = 0, None
    while len(out) < n_keys:
        for _ in range(len(raw)):
            if prev is None or np.linalg.norm(pts[i % len(raw)] - pts[prev], axis=-1).mean() >= min_step:
                break
            i += 1
        out.append(raw[i % len(raw)])
        prev = i % len(raw)
        i += 1
    return out


def key_pose_vectors(choreo: Choreography, dancer: Dancer, n_keys: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Styled key poses ``[n_keys, len(POSE_PARAMS)]`` for beats 0..n_keys-1, and their jump heights."""
    st = dancer.style
    neutral = neutral_pose()
    angle_idx = [P[n] for n in POSE_PARAMS if n in ANGLE_PARAMS]
    fs_idx = [P[n] for n in ("l_arm_fs", "r_arm_fs", "l_leg_fs", "r_leg_fs")]
    keys = np.zeros((n_keys, len(POSE_PARAMS)))
    dys = np.zeros(n_keys)
    sway = (0.0, 1.0, 0.0, -1.0)
    for n, (v, dy) in enumerate(_cycle(choreo.key_poses(), n_keys, MIN_KEY_STEP)):
        v = v.copy()
        d = v - neutral
        v[angle_idx] = neutral[angle_idx] + st.energy * d[angle_idx]
        v[P["root_x"]] = st.energy * d[P["root_x"]] + st.sway * sway[n % 4]
        v[fs_idx] = np.clip(1.0 - st.energy * (1.0 - v[fs_idx]), 0.3, 1.0)
        for side in ("l_sho", "r_sho"):
            v[P[side]] += np.deg2rad(st.arm_carriage_deg)
        v[angle_idx] += np.deg2rad(st.noise_deg) * rng.standard_normal(len(angle_idx))
        if n % 2 == 0:  # the groove: knees give (towards the camera) on every other beat
            v[P["l_leg_fs"]] *= 1.0 - st.bounce
            v[P["r_leg_fs"]] *= 1.0 - st.bounce
            v[P["head"]] += np.deg2rad(4.0)
        keys[n] = v
        dys[n] = dy * st.energy
    return keys, dys


def ground(keys: np.ndarray, dys: np.ndarray, dancer: Dancer) -> np.ndarray:
    """Set ``root_y`` of each key pose so its lowest foot point touches the floor (plus jumps)."""
    keys = keys.copy()
    keys[:, P["root_y"]] = 0.0
    low = lowest_point(forward_kinematics(keys, dancer.body))
    keys[:, P["root_y"]] = -low + dys
    return keys


def pose_track(choreo: Choreography, dancer: Dancer, beat_times: np.ndarray, frame_times: np.ndarray,
               rng: np.random.Generator, genre_softness: tuple[float, float] | None = None) -> np.ndarray:
    """Pose parameters for every frame time: key pose n on beat n, eased in between.

    Before the first beat the dancer stands in a neutral stance and steps into key pose 0 during
    the beat before it; ``beat_times`` must extend past the last frame (extrapolate the grid) so
    the motion never stops early.
    """
    beat_times = np.asarray(beat_times, dtype=np.float64)
    if frame_times.size and beat_times[-1] < frame_times[-1]:
        raise ValueError("beat_times must cover every frame time")
    n = beat_times.size
    keys, dys = key_pose_vectors(choreo, dancer, n, rng)
    start = neutral_pose()
    start[[P["l_hip"], P["r_hip"]]] += np.deg2rad(STANCE[choreo.genre]["lh"] * 0.5)
    start[[P["l_knee"], P["r_knee"]]] += np.deg2rad(STANCE[choreo.genre]["lk"] * 0.5)
    keys = ground(np.vstack([start[None], start[None], keys]), np.concatenate([[0.0, 0.0], dys]), dancer)
    # Stand still, then step into key pose 0 during the last beat before the music's first beat:
    # a preparation as long as any other move, so the first accent is not pulled off its beat.
    period = float(beat_times[1] - beat_times[0]) if n > 1 else 0.5
    prep = max(0.0, beat_times[0] - period)
    times = np.concatenate([[min(0.0, prep - 2e-3), prep - 1e-3], beat_times])
    mult, bias = genre_softness or GENRE_SOFTNESS[choreo.genre]
    a = float(np.clip(dancer.style.softness * mult + bias, 0.0, 1.0))
    i = np.clip(np.searchsorted(times, frame_times, side="right") - 1, 0, times.size - 2)
    u = np.clip((frame_times - times[i]) / (times[i + 1] - times[i]), 0.0, 1.0)
    e = ease(u, a)[:, None]
    return keys[i] + e * (keys[i + 1] - keys[i])
