#!/usr/bin/env bash
# The exact commands behind the flow diffusion models that issue 5's evaluation measured
# (docs/diffusion_evaluation.md): `small` on SynthDance, on the demo model's flow AE, one CPU
# thread each. They grew in legs across sessions; resume, --stop-at-step and --init-weights are
# exact, so re-running this script gives the same weights on the same hardware.
#
#   with beat features:    demo run (1200 steps, linear flows)  -> resumed to step 2000
#                          -> warm start into companded flows (--flow-power 0.5), 1300 steps
#   without (Table 6):     800 steps, linear flows -> the same companded warm start, 1300 steps
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data/synthdance}
RUNS=${RUNS:-runs}
FLOW_AE=${FLOW_AE:-$RUNS/demo/flow_ae/flow_ae.safetensors}   # scripts/train_demo_model.sh, step 2
TRAIN=($PY -m training.train_diffusion --data "$DATA" --fps 30 --flow-ae "$FLOW_AE" --config small
       --time-base frames --prediction-type epsilon --temporal-kernel 0   # the design of that time
       --batch-size 8 --threads 1 --no-progress)

# with beat features: leg 1 is the demo model's diffusion run (scripts/train_demo_model.sh, step 3)
[ -f "$RUNS/demo/diffusion/checkpoints/step_00001200/state.safetensors" ] || {
  echo "run scripts/train_demo_model.sh first (its diffusion run is leg 1)" >&2; exit 2; }
"${TRAIN[@]}" --flow-power 1 --resume "$RUNS/demo/diffusion/checkpoints/step_00001200" --max-steps 3800 \
    --lr-milestones 0.85 --checkpoint-every 200 --sample-every 1000 --stop-at-step 2000 --out "$RUNS/diffusion_linear"
"${TRAIN[@]}" --flow-power 0.5 --init-weights "$RUNS/diffusion_linear/diffusion.safetensors" --max-steps 1800 \
    --lr-milestones 0.8 --warmup-steps 50 --checkpoint-every 100 --sample-every 0 --stop-at-step 1300 \
    --out "$RUNS/diffusion_small"

# without beat features (the Table 6 ablation)
"${TRAIN[@]}" --no-beat-features --flow-power 1 --max-steps 2400 --lr-milestones 0.85 --checkpoint-every 200 \
    --sample-every 1000 --stop-at-step 800 --out "$RUNS/diffusion_nobeats_linear"
"${TRAIN[@]}" --no-beat-features --flow-power 0.5 --init-weights "$RUNS/diffusion_nobeats_linear/diffusion.safetensors" \
    --max-steps 1800 --lr-milestones 0.8 --warmup-steps 50 --checkpoint-every 100 --sample-every 0 \
    --stop-at-step 1300 --out "$RUNS/diffusion_small_nobeats"

# the evaluation (docs/diffusion_evaluation.md); about 40 minutes on one thread
$PY -m training.evaluate_beat_following --data "$DATA" --fps 30 --flow-ae "$FLOW_AE" \
    --checkpoint "$RUNS/diffusion_small/diffusion.safetensors" \
    --ablation-checkpoint "$RUNS/diffusion_small_nobeats/diffusion.safetensors" --threads 1 \
    --out "$RUNS/eval_diffusion_small"
