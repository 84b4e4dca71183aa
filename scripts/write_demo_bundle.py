"""Write the built-in demo bundle (dabfusion/assets/demo_model/) from the runs of the training scripts.

    python scripts/write_demo_bundle.py --diffusion runs/beats/diffusion/diffusion.safetensors

The flow AE is the one scripts/train_demo_model.sh trained (kept in the bundle unless --flow-ae
names another); the diffusion is scripts/train_diffusion_beats.sh's beat-time model.
"""

from __future__ import annotations

import argparse
import sys

from dabfusion.model_bundle import DEMO_MODEL_DIR, FLOW_AE_NAME, write_bundle


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--diffusion", required=True)
    p.add_argument("--flow-ae", default=str(DEMO_MODEL_DIR / FLOW_AE_NAME))
    p.add_argument("--guidance", type=float, default=1.5)
    a = p.parse_args(argv)
    write_bundle(DEMO_MODEL_DIR, flow_ae=a.flow_ae, diffusion=a.diffusion, name="SynthDance demo (small, beat time)",
                 description="A model of SynthDance, the project's synthetic dance world: it animates SynthDance-style "
                             "figures, not photos of real people. Train on AIST++ for those. Its motion is generated "
                             "on the music's beat grid.",
                 fps=30, defaults={"sampler": "dpm++", "steps": 25, "guidance": a.guidance},
                 training={"flow_ae": "scripts/train_demo_model.sh (steps 1-2)",
                           "diffusion": "scripts/train_diffusion_beats.sh (one H200 call, then resumed to step 1500)",
                           "data": "SynthDance small, seed 0"})
    print(DEMO_MODEL_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
