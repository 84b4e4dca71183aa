#!/usr/bin/env bash
# The exact commands behind the beat-time SynthDance models of issue 12 (docs/diffusion_evaluation.md,
# docs/diffusion_lab_log.md): SynthDance small, the demo model's flow AE, the `small` U-Net in beat time
# (8 samples per beat, windows of 4 beats, v-prediction, temporal convolutions: the trainer's defaults),
# with and without beat features (Table 6), then the evaluation. Written for one GPU (they ran as one
# call on an H100: the two trainings share it, each with a wall-clock budget); on a CPU set
# GPU_ARGS="" and a larger MINUTES. Re-running gives the same data and, on the same hardware, the same
# windows and noise (the step count reached within MINUTES depends on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DATA=${DATA:-data/synthdance}
RUNS=${RUNS:-runs/beats}
MINUTES=${MINUTES:-4.2}
PRESET=${PRESET:-small}
GPU_ARGS=${GPU_ARGS:---mixed-precision bf16 --num-workers 6}
EVAL_ARGS=${EVAL_ARGS:---device cuda --batch 10}
BATCH=${BATCH:-64}
FLOW_AE=${FLOW_AE:-dabfusion/assets/demo_model/flow_ae.safetensors}
mkdir -p "$RUNS"

# 1. The data: SynthDance small, seed 0.
[ -f "$DATA/synthdance.json" ] || $PY -m training.make_synthetic --out "$DATA" --preset "$PRESET" --seed 0 --quiet

# 2. The two models, trained side by side; the ablation starts once the first run has cached the flow targets.
TRAIN=($PY -m training.train_diffusion --data "$DATA" --fps 30 --flow-ae "$FLOW_AE" --config small --time-base beats
       --batch-size "$BATCH" --lr 4e-4 --max-steps 1500 --lr-milestones 0.8 --warmup-steps 100
       --max-minutes "$MINUTES" --checkpoint-every 250 --sample-every 0 --no-progress $GPU_ARGS)
"${TRAIN[@]}" --out "$RUNS/diffusion" > "$RUNS/train.log" 2>&1 &
main=$!
until grep -q "steps of" "$RUNS/train.log" 2>/dev/null; do kill -0 "$main" 2>/dev/null || break; sleep 2; done
"${TRAIN[@]}" --no-beat-features --out "$RUNS/diffusion_nobeats" > "$RUNS/train_nobeats.log" 2>&1 &
ablation=$!
wait "$main"
wait "$ablation"

# 3. The evaluation: 10 held-out clips of 8 s, half-beat delay, DPM-Solver++ 25 against DDPM 1000 on 4 clips,
#    long clips, Table 6.
$PY -m training.evaluate_diffusion --data "$DATA" --fps 30 --flow-ae "$FLOW_AE" \
    --checkpoint "$RUNS/diffusion/diffusion.safetensors" \
    --ablation-checkpoint "$RUNS/diffusion_nobeats/diffusion.safetensors" $EVAL_ARGS --out "$RUNS/eval" \
    > "$RUNS/eval.log" 2>&1
