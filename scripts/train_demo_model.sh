#!/usr/bin/env bash
# The exact commands that trained the built-in demo model's flow AE (dabfusion/assets/demo_model/) and
# the frame-time diffusion it first shipped with. It is a model of SynthDance, the project's synthetic
# dance world (see README), trained on two CPU cores with the project's own scripts. Re-running this
# script reproduces them (CPU, 1 thread; resume and stop are exact, so --stop-at-step gives the same
# weights as a run stopped there). The built-in diffusion is now scripts/train_diffusion_beats.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data/synthdance}
RUNS=${RUNS:-runs/demo}

# 1. The data: SynthDance, small preset, seed 0 (about 2 minutes).
[ -f "$DATA/synthdance.json" ] || $PY -m training.make_synthetic --out "$DATA" --preset small --seed 0

# 2. The flow auto-encoder: the small configuration, L1+SSIM loss (no VGG-19 file here), two
#    dancers held out; its EMA weights at step 1500 of a 2500-step schedule.
$PY -m training.train_flow_ae --data "$DATA" --config small --perceptual l1ssim --holdout-dancers d09 d10 \
    --batch-size 16 --max-steps 2500 --stop-at-step 1500 --lr 2e-4 --lr-milestones 0.7 0.9 --threads 1 \
    --out "$RUNS/flow_ae"

# 3. The frame-time flow diffusion this model first shipped with (linear flows, epsilon: the design of
#    issue 5). The built-in bundle now holds scripts/train_diffusion_beats.sh's beat-time diffusion
#    (scripts/write_demo_bundle.py); this step and step 4 are kept as the record of the first demo.
$PY -m training.train_diffusion --data "$DATA" --fps 30 --flow-ae "$RUNS/flow_ae/flow_ae.safetensors" \
    --config small --time-base frames --prediction-type epsilon --temporal-kernel 0 --flow-power 1 --batch-size 8 --max-steps "${DIFFUSION_STEPS:-1200}" --threads 1 \
    --checkpoint-every 200 --sample-every 400 --out "$RUNS/diffusion"

# 4. That first bundle (now written beside the runs; the built-in one is the beat-time model:
#    scripts/train_diffusion_beats.sh, then scripts/write_demo_bundle.py).
$PY - "$RUNS" <<'PYEOF'
import sys
from dabfusion.model_bundle import write_bundle
runs = sys.argv[1]
write_bundle(f"{runs}/bundle_frame_time", flow_ae=f"{runs}/flow_ae/flow_ae.safetensors",
             diffusion=f"{runs}/diffusion/diffusion.safetensors", name="SynthDance demo (small)",
             description="A model of SynthDance, the project's synthetic dance world: it animates "
                         "SynthDance-style figures, not photos of real people. Train on AIST++ for those.",
             fps=30, defaults={"sampler": "dpm++", "steps": 25, "guidance": 1.0},
             training={"script": "scripts/train_demo_model.sh", "data": "SynthDance small, seed 0"})
print(f"{runs}/bundle_frame_time")
PYEOF
