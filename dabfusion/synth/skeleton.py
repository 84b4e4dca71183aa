"""The SynthDance figure: body proportions, pose parameters and 2D forward kinematics.

A pose is a small vector of angles and offsets (:data:`POSE_PARAMS`), interpolated in time by
:mod:`.choreography`; forward kinematics turns it into named points in *world* units (body
height ~1, x to the image right in the frontal camera, y down, floor at y = 0). The ground-truth
joints are the 17 COCO keypoints, the format AIST++ ships as ``keypoints2d``.

Angles are in radians in the image plane, measured from "straight down"; for limbs they are
*abduction* angles per side (positive = away from the body), so a pose written for the left
side mirrors to the right by swapping names. Elbow/knee bends rotate further in the same
sense. ``*_fs`` are foreshortening factors (1 = in the image plane, 0.4 = pointing at the camera),
which is how a 2D figure lifts a knee or punches forward.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: COCO-17 keypoint names, in COCO/AIST++ order ("left" = the dancer's own left).
JOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
#: Limbs of the COCO skeleton (index pairs into JOINT_NAMES), for drawing and checks.
SKELETON_EDGES: tuple[tuple[int, int], ...] = (
    (5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16),
    (5, 6), (11, 12), (5, 11), (6, 12), (0, 1), (0, 2), (1, 3), (2, 4),
)

POSE_PARAMS: tuple[str, ...] = (
    "root_x", "root_y", "torso", "head",
    "l_sho", "l_elb", "r_sho", "r_elb",
    "l_hip", "l_knee", "r_hip", "r_knee",
    "l_arm_fs", "r_arm_fs", "l_leg_fs", "r_leg_fs", "yaw",
)
P = {name: i for i, name in enumerate(POSE_PARAMS)}
ANGLE_PARAMS = frozenset({"torso", "head", "l_sho", "l_elb", "r_sho", "r_elb", "l_hip", "l_knee", "r_hip", "r_knee"})

#: All points the renderer needs; the first 17 are the COCO joints.
POINT_NAMES: tuple[str, ...] = JOINT_NAMES + (
    "pelvis", "neck", "head_top", "head", "left_hand", "right_hand", "left_toe", "right_toe",
)
POINT = {name: i for i, name in enumerate(POINT_NAMES)}


@dataclass(frozen=True)
class Body:
    """Segment lengths and thicknesses as fractions of a ~1.0 body height; one per dancer."""

    head_r: float = 0.068
    neck: float = 0.045
    torso: float = 0.30
    shoulder_w: float = 0.105  # half width
    hip_w: float = 0.062  # half width
    upper_arm: float = 0.165
    forearm: float = 0.145
    hand: float = 0.055
    thigh: float = 0.235
    shin: float = 0.225
    foot: float = 0.07
    arm_w: float = 0.030  # half thickness
    leg_w: float = 0.040
    waist_w: float = 0.075

    def to_json(self) -> dict:
        return {k: round(v, 4) for k, v in asdict(self).items()}

    @property
    def leg_length(self) -> float:
        return self.thigh + self.shin


def neutral_pose() -> np.ndarray:
    """Standing, arms relaxed a little away from the body, legs slightly apart."""
    p = np.zeros(len(POSE_PARAMS))
    p[P["l_sho"]] = p[P["r_sho"]] = np.deg2rad(12)
    p[P["l_elb"]] = p[P["r_elb"]] = np.deg2rad(8)
    p[P["l_hip"]] = p[P["r_hip"]] = np.deg2rad(5)
    p[P["l_arm_fs"]] = p[P["r_arm_fs"]] = p[P["l_leg_fs"]] = p[P["r_leg_fs"]] = 1.0
    return p


def _dir(angle: np.ndarray) -> np.ndarray:
    """Unit vector for an angle from straight down (image y points down): [..., 2]."""
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)


def forward_kinematics(params: np.ndarray, body: Body) -> np.ndarray:
    """Pose parameters ``[T, len(POSE_PARAMS)]`` -> points ``[T, len(POINT_NAMES), 2]`` (world units).

    The pelvis stands at ``(root_x, -leg_length + root_y)``: ``root_y`` > 0 lowers the body.
    """
    p = np.atleast_2d(np.asarray(params, dtype=np.float64))
    g = {name: p[:, i] for name, i in P.items()}
    t = p.shape[0]
    out = np.zeros((t, len(POINT_NAMES), 2))

    def put(name: str, xy: np.ndarray) -> None:
        out[:, POINT[name]] = xy

    pelvis = np.stack([g["root_x"], -body.leg_length + g["root_y"]], axis=-1)
    torso = g["torso"]
    up = -_dir(torso)  # from pelvis towards the neck
    across = np.stack([np.cos(torso), -np.sin(torso)], axis=-1)  # towards the image right (dancer's left)
    neck = pelvis + body.torso * up
    hips_across = np.stack([np.cos(0.4 * torso), -np.sin(0.4 * torso)], axis=-1)
    put("pelvis", pelvis)
    put("neck", neck)

    head_angle = torso + g["head"]
    head_up = -_dir(head_angle)
    head_across = np.stack([np.cos(head_angle), -np.sin(head_angle)], axis=-1)
    head_c = neck + (body.neck + body.head_r) * head_up
    put("head", head_c)
    put("head_top", head_c + body.head_r * head_up)
    r, yaw = body.head_r, g["yaw"][:, None]
    face = head_c - 0.1 * r * head_up
    put("nose", face + yaw * 0.55 * r * head_across - 0.05 * r * head_up)
    for side, s in (("left", 1.0), ("right", -1.0)):
        put(f"{side}_eye", face + (s * 0.38 + 0.45 * yaw) * r * head_across + 0.28 * r * head_up)
        put(f"{side}_ear", head_c + (s * 0.92 + 0.25 * yaw) * r * head_across + 0.05 * r * head_up)

    for side, s, pre in (("left", 1.0, "l"), ("right", -1.0, "r")):
        sho = neck + s * body.shoulder_w * across - 0.02 * up
        a_up = torso + s * g[f"{pre}_sho"]
        elb = sho + body.upper_arm * g[f"{pre}_arm_fs"][:, None] * _dir(a_up)
        a_lo = a_up + s * g[f"{pre}_elb"]
        wri = elb + body.forearm * _dir(a_lo)
        put(f"{side}_shoulder", sho)
        put(f"{side}_elbow", elb)
        put(f"{side}_wrist", wri)
        put(f"{side}_hand", wri + body.hand * _dir(a_lo))

        hip = pelvis + s * body.hip_w * hips_across
        a_th = s * g[f"{pre}_hip"]
        knee = hip + body.thigh * g[f"{pre}_leg_fs"][:, None] * _dir(a_th)
        a_sh = a_th + s * g[f"{pre}_knee"]
        ank = knee + body.shin * _dir(a_sh)
        put(f"{side}_hip", hip)
        put(f"{side}_knee", knee)
        put(f"{side}_ankle", ank)
        put(f"{side}_toe", ank + body.foot * _dir(a_sh + s * np.deg2rad(70)))
    return out


def lowest_point(points: np.ndarray) -> np.ndarray:
    """Largest y (the floor side) over ankles and toes, per frame: used to keep feet on the floor."""
    idx = [POINT[n] for n in ("left_ankle", "right_ankle", "left_toe", "right_toe")]
    return points[:, idx, 1].max(axis=1)


def coco_joints(points: np.ndarray) -> np.ndarray:
    """The 17 COCO joints out of all renderer points: ``[T, 17, 2]``."""
    return points[:, : len(JOINT_NAMES)]
