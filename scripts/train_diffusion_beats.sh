#!/usr/bin/env bash
# The exact commands behind the beat-time SynthDance models of issue 12 (docs/diffusion_evaluation.md,
# docs/diffusion_lab_log.md): SynthDance small, the demo model's flow AE, the `small` U-Net in beat time
# (8 samples per beat, windows of 4 beats, v-prediction, temporal convolutions: the trainer's defaults),
# with and without beat features (Table 6), then the evaluation. Written for one GPU (the two trainings
# share it); on a CPU set GPU_ARGS="--threads 2" and EVAL_ARGS="--threads 2". The built-in demo model's
# diffusion is $RUNS/diffusion (scripts/write_demo_bundle.py puts it in the bundle).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DATA=${DATA:-data/synthdance}
RUNS=${RUNS:-runs/beats}
MINUTES=${MINUTES:-}   # a wall-clock budget per run (minutes); --resume continues where it stopped
PRESET=${PRESET:-small}
GPU_ARGS=${GPU_ARGS:---mixed-precision bf16 --num-workers 6}
EVAL_ARGS=${EVAL_ARGS:---device cuda --batch 10}
BATCH=${BATCH:-64}
FLOW_AE=${FLOW_AE:-dabfusion/assets/demo_model/flow_ae.safetensors}
mkdir -p "$RUNS"

# 1. The data: SynthDance small, seed 0.
[ -f "$DATA/synthdance.json" ] || $PY -m training.make_synthetic --out "$DATA" --preset "$PRESET" --seed 0 --quiet

# 2. The two models, trained side by side; the ablation starts once the first run has cached the flow targets.
#    What ran (H200): both with --max-minutes 3.6 (the beat model stopped at step 789, the ablation at 811),
#    then the beat model resumed (--resume, --max-minutes 2.3, --num-workers 8) to its last step, 1500.
#    Resume and the step-based schedule are exact, so the commands below give the same weights
#    without the time limits: the beat model to step 1500, the ablation stopped at step 811.
TRAIN=($PY -m training.train_diffusion --data "$DATA" --fps 30 --flow-ae "$FLOW_AE" --config small --time-base beats
       --batch-size "$BATCH" --lr 4e-4 --max-steps 1500 --lr-milestones 0.8 --warmup-steps 100
       --checkpoint-every 250 --sample-every 0 --no-progress $GPU_ARGS ${MINUTES:+--max-minutes $MINUTES})
"${TRAIN[@]}" --out "$RUNS/diffusion" --resume > "$RUNS/train.log" 2>&1 &
main=$!
until grep -q "steps of" "$RUNS/train.log" 2>/dev/null; do kill -0 "$main" 2>/dev/null || break; sleep 2; done
"${TRAIN[@]}" --no-beat-features --stop-at-step "${ABLATION_STEPS:-811}" --out "$RUNS/diffusion_nobeats" --resume \
    > "$RUNS/train_nobeats.log" 2>&1 &
ablation=$!
wait "$main"
wait "$ablation"

# 3. The evaluation: 10 held-out clips of 8 s, half-beat delay, DPM-Solver++ 25 against DDPM 1000 on 4 clips,
#    long clips, Table 6.
$PY -m training.evaluate_beat_following --data "$DATA" --fps 30 --flow-ae "$FLOW_AE" \
    --checkpoint "$RUNS/diffusion/diffusion.safetensors" \
    --ablation-checkpoint "$RUNS/diffusion_nobeats/diffusion.safetensors" $EVAL_ARGS --out "$RUNS/eval" \
    > "$RUNS/eval.log" 2>&1
