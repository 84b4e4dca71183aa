#!/usr/bin/env bash
# The exact commands that trained the built-in demo model in dabfusion/assets/demo_model/.
# It is a model of SynthDance, the project's synthetic dance world (see README), trained on two
# CPU cores with the project's own scripts. Re-running this script reproduces it (CPU, 1 thread;
# resume and stop are exact, so --stop-at-step gives the same weights as a run stopped there).
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

# 3. The music-conditioned flow diffusion on that flow AE, default music encoder (librosa beats),
#    linear flows in model space (it predates the companded default, --flow-power 0.5).
$PY -m training.train_diffusion --data "$DATA" --fps 30 --flow-ae "$RUNS/flow_ae/flow_ae.safetensors" \
    --config small --flow-power 1 --batch-size 8 --max-steps "${DIFFUSION_STEPS:-1200}" --threads 1 \
    --checkpoint-every 200 --sample-every 400 --out "$RUNS/diffusion"

# 4. The bundle the nodes and the CLI load by default.
$PY - "$RUNS" <<'PYEOF'
import sys
from dabfusion.model_bundle import DEMO_MODEL_DIR, write_bundle
runs = sys.argv[1]
write_bundle(DEMO_MODEL_DIR, flow_ae=f"{runs}/flow_ae/flow_ae.safetensors",
             diffusion=f"{runs}/diffusion/diffusion.safetensors", name="SynthDance demo (small)",
             description="A model of SynthDance, the project's synthetic dance world: it animates "
                         "SynthDance-style figures, not photos of real people. Train on AIST++ for those.",
             fps=30, defaults={"sampler": "dpm++", "steps": 25, "guidance": 1.0},
             training={"script": "scripts/train_demo_model.sh", "data": "SynthDance small, seed 0"})
print(DEMO_MODEL_DIR)
PYEOF
