"""Dancers d01..dNN: proportions, colours and a personal style, drawn from a seed.

Appearance variety is what lets the flow auto-encoder learn to warp *any* person, and style
variety (energy, how sharply a dancer hits, bounce depth, sway, looseness) keeps one dancer's
version of a choreography from being a copy of another's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from .skeleton import Body

SKIN = ((255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 140, 100), (170, 112, 76),
        (141, 85, 54), (110, 66, 42), (84, 52, 36))
HAIR = ((24, 20, 18), (52, 36, 26), (96, 64, 40), (160, 118, 70), (214, 180, 120), (140, 60, 30),
        (120, 120, 124), (30, 30, 60))
SHIRT = ((200, 40, 48), (36, 90, 190), (250, 190, 40), (40, 150, 90), (240, 240, 236), (30, 30, 34),
         (150, 60, 170), (240, 120, 40), (40, 170, 190), (230, 90, 150), (110, 130, 60), (90, 40, 30))
TROUSERS = ((30, 34, 60), (40, 40, 44), (70, 80, 100), (120, 100, 70), (20, 60, 40), (90, 30, 40),
            (200, 200, 196), (60, 50, 40))
SHOES = ((20, 20, 22), (240, 240, 240), (160, 30, 30), (90, 60, 40), (40, 60, 140))


@dataclass(frozen=True)
class Style:
    """How a dancer moves: scales and shapes applied on top of the choreography."""

    energy: float  # amplitude of moves relative to neutral
    softness: float  # 1 = smooth sine velocity, 0 = sharp (sin^2) hits
    bounce: float  # thigh shortening (knees forward) on every other beat: the groove
    sway: float  # sideways root motion over a bar (world units)
    noise_deg: float  # per-beat variation of key poses
    arm_carriage_deg: float  # habitual arm lift


@dataclass(frozen=True)
class Dancer:
    id: str
    body: Body
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    shoes: tuple[int, int, int]
    long_sleeves: bool
    shorts: bool
    style: Style

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "proportions": self.body.to_json(),
            "colours": {"skin": list(self.skin), "hair": list(self.hair), "shirt": list(self.shirt),
                        "trousers": list(self.trousers), "shoes": list(self.shoes)},
            "clothing": {"long_sleeves": self.long_sleeves, "shorts": self.shorts},
            "style": {k: round(v, 4) for k, v in asdict(self.style).items()},
        }


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, colour, amount: int = 14) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def make_dancer(index: int, rng: np.random.Generator) -> Dancer:
    """Dancer ``d{index:02d}`` with proportions within about +-10% of the default body."""
    base = Body()
    build = float(rng.uniform(0.85, 1.2))  # slim .. sturdy
    legs = float(rng.uniform(0.93, 1.07))
    arms = float(rng.uniform(0.93, 1.07))
    body = replace(
        base,
        head_r=base.head_r * float(rng.uniform(0.92, 1.08)),
        torso=base.torso * float(rng.uniform(0.94, 1.06)),
        shoulder_w=base.shoulder_w * float(rng.uniform(0.9, 1.12)) * (0.5 + 0.5 * build),
        hip_w=base.hip_w * float(rng.uniform(0.9, 1.15)),
        upper_arm=base.upper_arm * arms,
        forearm=base.forearm * arms,
        thigh=base.thigh * legs,
        shin=base.shin * legs,
        arm_w=base.arm_w * build,
        leg_w=base.leg_w * build,
        waist_w=base.waist_w * build,
    )
    shirt = _jitter(rng, _pick(rng, SHIRT))
    trousers = _jitter(rng, _pick(rng, TROUSERS))
    style = Style(
        energy=float(rng.uniform(0.8, 1.15)),
        softness=float(rng.uniform(0.0, 1.0)),
        bounce=float(rng.uniform(0.08, 0.15)),
        sway=float(rng.uniform(0.005, 0.025)),
        noise_deg=float(rng.uniform(2.0, 5.0)),
        arm_carriage_deg=float(rng.uniform(-5.0, 10.0)),
    )
    return Dancer(
        id=f"d{index:02d}",
        body=body,
        skin=_jitter(rng, _pick(rng, SKIN), 8),
        hair=_jitter(rng, _pick(rng, HAIR), 8),
        shirt=shirt,
        trousers=trousers,
        shoes=_pick(rng, SHOES),
        long_sleeves=bool(rng.random() < 0.4),
        shorts=bool(rng.random() < 0.2),
        style=style,
    )
