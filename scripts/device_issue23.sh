#!/usr/bin/env bash
# Issue 23's one device run: train the beat-time model further, evaluate it, time the pipeline on CUDA.
#
#   bash scripts/device_issue23.sh                 # on the GPU machine, through the device tool's `run`
#   bash scripts/device_issue23.sh --cpu-check     # the same legs on this CPU, tiny settings, into a temp $OUT
#
# The device call (carry [".whl"], made by ../shared/device/fetch_wheels.sh; timeout_s 600):
#   bash scripts/device_issue23.sh
# Legs, in order of priority; each is bounded by `timeout`, later legs get what is left of DEADLINE_S, and
# every leg copies its results to $OUT as soon as it ends (what is under $OUT comes back even if the call is
# cut off):
#   synth  SynthDance small, seed 0 (training.make_synthetic --workers 14)
#   train  the shipped beat-time diffusion (dabfusion/assets/demo_model/diffusion.safetensors) trained further
#          with scripts/train_diffusion_beats.sh's settings. Only its EMA weights ship (no optimiser state), so
#          this is a warm start (--init-weights, fresh Adam, lr 4e-4 after 100 warm-up steps, the shipped
#          flow_scale) - what a resume with a larger --max-steps does, whose lr also returns to 4e-4 until its
#          moved milestone. The lr drop at 80 % of training is placed in time, not steps (the step time on the
#          machine is not known in advance): phase 1 runs (1 - LR_DROP_FRACTION) of the budget at 4e-4, phase 2
#          resumes its training state for the rest at 4e-5 (--lr-milestones 0).
#   eval   training.evaluate_beat_following on SynthDance small's 10 held-out 8 s clips, in two processes side
#          by side (the long DDPM one cannot take the other's results with it): (1) main (2D-MM Align against
#          ground truth, reconstruction and mismatched music, kinematic beats, motion amplitude) and the
#          half-beat delay, DPM-Solver++ 25 (the model folder's sampler); (2) samplers: DPM-Solver++ 25 against
#          DDPM 1000 on the same clips and seeds (SAMPLER_VIDEOS of them), with each one's motion amplitude;
#          then scripts/issue23_bars.py's verdict on every bar goes into eval_report.md and log.txt
#   bench  benchmarks/bench_end_to_end.py --devices cuda (the built-in model, a 60 s clip), then
#          benchmarks/bench_pipeline.py --devices cuda --compile, one process per configuration
#          (PIPE_CONFIGS: paper first, the issue's 0.5 s target, then small)
# $OUT gets at most 8 files: log.txt (every leg's output and times), diffusion.safetensors + diffusion.json
# (the trained model), eval_results.json, eval_report.md, bench_end_to_end.md, bench_pipeline.md and
# extras.tar.gz (metrics.csv, loss.png, train_args.json, speed_vs_borders.png, the benchmarks' JSON, legs.tsv).
# A rerun on the same (warm) machine continues: the data and the training state live in data/ and runs/
# (git-ignored, kept between calls), so LEGS="eval bench" or LEGS=bench finishes what a first call left.
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=device
[ "${1:-}" = "--cpu-check" ] && MODE=cpu

# ------------------------------------------------------------------ budgets (seconds; override from the environment)
DEADLINE_S=${DEADLINE_S:-580}      # the whole script, from its start (the call's timeout_s is 600)
LEGS=${LEGS:-"synth train eval bench"}
SYNTH_S=${SYNTH_S:-150}            # SynthDance small with 14 workers: about 50 s
TRAIN_S=${TRAIN_S:-200}            # seconds of training steps, both phases (what is left may shrink it);
                                   # about 0.15 s a step at batch 64 on an H200 (the shipped run)
LR_DROP_FRACTION=${LR_DROP_FRACTION:-0.2}
# The training is sized so that the setups and the evaluation still fit after it; each later leg may then use
# whatever is left, in priority order.
TRAIN_SETUP_S=${TRAIN_SETUP_S:-75} # phase 1 before its first step: frame cache (13 s for 160 videos on one CPU
                                   # core), flow targets (GPU), music, imports
RESUME_SETUP_S=${RESUME_SETUP_S:-30}
EVAL_S=${EVAL_S:-120}              # evaluation (1): main + delay, DPM-Solver++ 25 (its timeout)
DDPM_S=${DDPM_S:-160}              # evaluation (2), beside (1): DPM-Solver++ 25 against DDPM 1000 (then all that is left)
SAMPLER_VIDEOS=${SAMPLER_VIDEOS:-10}
E2E_S=${E2E_S:-100}
PIPE_S=${PIPE_S:-150}              # per configuration
PIPE_CONFIGS=${PIPE_CONFIGS:-"paper small"}
MIN_LEG_S=${MIN_LEG_S:-20}         # a leg with less time left than this is skipped

SHIPPED=dabfusion/assets/demo_model/diffusion.safetensors
INIT_WEIGHTS=${INIT_WEIGHTS:-$SHIPPED}   # a later session: the model an earlier call brought back (carry it)
FLOW_AE=dabfusion/assets/demo_model/flow_ae.safetensors
T0=$(date +%s)

if [ "$MODE" = cpu ]; then
  PY=${PY:-.venv/bin/python}
  [ -x "$PY" ] || PY=python3
  WORK=$(mktemp -d /tmp/issue23_cpu.XXXXXX)
  OUT=${OUT:-$WORK/out}
  DATA=$WORK/synthdance
  RUN=$WORK/run
  PRESET=tiny
  DEADLINE_S=${CPU_DEADLINE_S:-1200}
  TRAIN_S=${CPU_TRAIN_S:-30}
  TRAIN_SETUP_S=60 RESUME_SETUP_S=40 EVAL_S=300 DDPM_S=300 E2E_S=420 PIPE_S=200
  SAMPLER_VIDEOS=2
  PIPE_CONFIGS=tiny
  DEV=cpu
  SYNTH_ARGS=(--workers 2)
  TRAIN_ARGS=(--batch-size 4 --num-workers 0 --mixed-precision no --threads 2)
  EVAL_ARGS=(--device cpu --threads 2 --batch 2 --max-videos 2 --seconds 3 --steps 3 --ddpm-steps 6)
  E2E_ARGS=(--devices cpu --threads 2 --frames 8 --repeats 1 --reference-steps 2 --long-seconds 2)
  PIPE_ARGS=(--devices cpu --threads 2 --samplers dpm++ --repeats 1 --max-clip-s 1)
else
  PY=${PY:-python3}
  WORK=${WORK:-/tmp/issue23}
  OUT=${OUT:?the device tool sets OUT}
  DATA=${DATA:-data/synthdance}
  RUN=${RUN:-runs/issue23}
  PRESET=small
  DEV=cuda
  SYNTH_ARGS=(--workers 14)
  TRAIN_ARGS=(--batch-size 64 --num-workers "${NUM_WORKERS:-12}" --mixed-precision bf16)
  EVAL_ARGS=(--device cuda --batch 10 --max-videos 10 --seconds 8)
  E2E_ARGS=(--devices cuda)
  PIPE_ARGS=(--devices cuda --compile)
fi
mkdir -p "$OUT" "$WORK/extras" "$RUN"
LOG=$OUT/log.txt
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$WORK/numba}

say() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG" >&2; }
left() { echo $(( DEADLINE_S - ($(date +%s) - T0) )); }
cap() {  # cap SECONDS: the leg's timeout, bounded by what is left of the deadline
  local c=$1 l; l=$(( $(left) - 5 ))
  [ "$l" -lt "$c" ] && c=$l
  echo "$c"
}
leg() {  # leg NAME TIMEOUT CMD...: run a bounded leg, output appended to the log, time recorded
  local name=$1 t=$2 s rc; shift 2
  if [ "$t" -lt "$MIN_LEG_S" ]; then
    say "SKIP $name: ${t}s left"; printf '%s\tskipped\t0\t-\n' "$name" >> "$WORK/extras/legs.tsv"; return 99
  fi
  say "START $name (timeout ${t}s): $*"
  s=$(date +%s)
  timeout -k 10 "$t" "$@" >> "$LOG" 2>&1
  rc=$?
  say "END $name rc=$rc in $(( $(date +%s) - s ))s$([ $rc = 124 ] && echo ' (timed out)')"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - s ))" "$t" >> "$WORK/extras/legs.tsv"
  return $rc
}
pack() {  # the small extras in one file (the device returns at most 8)
  local e=$WORK/extras
  for f in metrics.csv loss.png train_args.json; do [ -f "$RUN/$f" ] && cp "$RUN/$f" "$e/"; done
  [ -f "$RUN/eval/speed_vs_borders.png" ] && cp "$RUN/eval/speed_vs_borders.png" "$e/"
  tar -czf "$OUT/extras.tar.gz" -C "$e" . 2>/dev/null
}
export_model() {
  [ -f "$RUN/diffusion.safetensors" ] && cp "$RUN/diffusion.safetensors" "$RUN/diffusion.json" "$OUT/"
  pack
}
has() { case " $LEGS " in *" $1 "*) return 0 ;; esac; return 1; }

say "issue 23 device script, mode $MODE, legs: $LEGS; deadline ${DEADLINE_S}s; OUT=$OUT WORK=$WORK"
git log -1 --format='commit %H %s' >> "$LOG" 2>&1
git status --short >> "$LOG" 2>&1

# ------------------------------------------------------------------ 0. the machine and its missing wheels
if [ "$MODE" = device ]; then
  nvidia-smi -L >> "$LOG" 2>&1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$LOG" 2>&1
  if ! "$PY" -c "import av, librosa, soundfile" 2>/dev/null; then
    ls .whl/*.whl > /dev/null 2>&1 || { say "FATAL: no .whl/ (run ../shared/device/fetch_wheels.sh, carry .whl)"; exit 1; }
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      >> "$LOG" 2>&1 || { say "FATAL: wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
  else
    export PYTHONPATH=$PWD
  fi
else
  export PYTHONPATH=$PWD
fi
"$PY" - >> "$LOG" 2>&1 <<'EOF'
import os, sys, numpy, torch
print("python", sys.version.split()[0], "numpy", numpy.__version__, "torch", torch.__version__,
      "cuda", torch.cuda.is_available() and torch.cuda.get_device_name(0), "cpus", os.cpu_count())
import av, librosa, soundfile, cv2  # noqa: F401  (what the legs need)
print("av", av.__version__, "librosa", librosa.__version__)
EOF
[ $? = 0 ] || { say "FATAL: the imports the legs need failed (see above)"; exit 1; }

# ------------------------------------------------------------------ 1. data: SynthDance small (tiny on the CPU)
if has synth || has train || has eval; then
  if [ -f "$DATA/synthdance.json" ]; then
    say "data: $DATA already there"
  else
    leg synth "$(cap "$SYNTH_S")" "$PY" -m training.make_synthetic --out "$DATA" --preset "$PRESET" --seed 0 --quiet \
      "${SYNTH_ARGS[@]}"
  fi
fi

# ------------------------------------------------------------------ 2. train: warm start from the shipped weights
if has train && [ -f "$DATA/synthdance.json" ]; then
  FLOW_SCALE=$("$PY" -c "import json; print(json.load(open('${INIT_WEIGHTS%.safetensors}.json'))['config']['flow_scale'])")
  # the training loop's seconds: the budget, or what is left after both setups and the evaluation's reserve
  ev=$(( EVAL_S > DDPM_S ? EVAL_S : DDPM_S ))   # the two evaluation processes run side by side
  loop=$(( $(left) - TRAIN_SETUP_S - RESUME_SETUP_S - ev - 10 ))
  [ "$loop" -gt "$TRAIN_S" ] && loop=$TRAIN_S
  if [ "$loop" -lt 30 ]; then
    say "SKIP train: ${loop}s of training would be left"
  else
    p2=$(awk -v l="$loop" -v f="$LR_DROP_FRACTION" 'BEGIN { printf "%d", l * f }')
    p1=$(( loop - p2 ))
    say "train: ${loop}s of steps: ${p1}s at lr 4e-4, then ${p2}s at 4e-5; from $INIT_WEIGHTS (flow_scale $FLOW_SCALE)"
    TRAIN=("$PY" -m training.train_diffusion --data "$DATA" --fps 30 --flow-ae "$FLOW_AE" --config small
           --time-base beats --lr 4e-4 --warmup-steps 100 --max-steps 100000 --checkpoint-every 100
           --keep-checkpoints 1 --sample-every 0 --no-progress --init-weights "$INIT_WEIGHTS" --flow-scale "$FLOW_SCALE"
           "${TRAIN_ARGS[@]}" --out "$RUN" --resume)
    m1=$(awk -v s="$p1" 'BEGIN { printf "%.4f", s / 60 }')
    m2=$(awk -v s="$p2" 'BEGIN { printf "%.4f", s / 60 }')
    # its timeout allows twice the expected setup (the loop's clock starts after it); a cut-off phase leaves
    # a training state every 100 steps, which phase 2 resumes
    leg train_lr4e-4 "$(cap $(( 2 * TRAIN_SETUP_S + p1 + 40 )))" "${TRAIN[@]}" --lr-milestones --max-minutes "$m1"
    export_model
    leg train_lr4e-5 "$(cap $(( RESUME_SETUP_S + p2 + 40 )))" "${TRAIN[@]}" --lr-milestones 0 --max-minutes "$m2"
    export_model
    [ -f "$RUN/metrics.csv" ] && say "train: last metrics row: $(tail -n 1 "$RUN/metrics.csv")"
  fi
fi

# ------------------------------------------------------------------ 3. eval: 10 held-out 8 s clips, DPM++ 25 and DDPM 1000
if has eval && [ -f "$DATA/synthdance.json" ]; then
  CKPT=${EVAL_CHECKPOINT:-$RUN/diffusion.safetensors}
  if [ ! -f "$CKPT" ]; then
    say "eval: no trained model at $CKPT; evaluating the shipped one ($SHIPPED)"
    CKPT=$SHIPPED
  fi
  EVAL=("$PY" -m training.evaluate_beat_following --data "$DATA" --fps 30 --flow-ae "$FLOW_AE" --checkpoint "$CKPT"
        "${EVAL_ARGS[@]}")
  merge_eval() {  # one results file and one report from the two processes
    "$PY" - "$RUN/eval" "$RUN/eval_samplers" "$OUT" <<'MERGE'
import json, sys
from pathlib import Path
a, b, out = (Path(x) for x in sys.argv[1:])
merged, reports = {}, []
for d in (a, b):
    if (d / "results.json").is_file():
        r = json.loads((d / "results.json").read_text())
        merged = {**r, **{k: v for k, v in merged.items() if k in ("main", "delay")}} if merged else r
    if (d / "report.md").is_file():
        reports.append((d / "report.md").read_text())
if merged:
    (out / "eval_results.json").write_text(json.dumps(merged, indent=2) + "\n")
    (out / "eval_report.md").write_text("\n".join(reports))
MERGE
    [ -f "$OUT/eval_results.json" ] && "$PY" scripts/issue23_bars.py "$OUT/eval_results.json" > "$WORK/bars.md" 2>&1 \
      && { echo; cat "$WORK/bars.md"; } >> "$OUT/eval_report.md" && cat "$WORK/bars.md" >> "$LOG"
  }
  # side by side: the first is mostly CPU (optical flow of 7 versions of 10 clips) and 25-step sampling, the
  # second 1000 GPU steps per clip (its seconds-per-clip column shares the GPU with the first for a while)
  ( leg eval_main_delay "$(cap "$EVAL_S")" "${EVAL[@]}" --experiments main,delay --out "$RUN/eval"; merge_eval ) &
  first=$!
  leg eval_ddpm "$(cap "$(left)")" "${EVAL[@]}" --experiments samplers --sampler-videos "$SAMPLER_VIDEOS" \
    --out "$RUN/eval_samplers"
  wait "$first"
  merge_eval; pack
fi

# ------------------------------------------------------------------ 4. bench: end to end, then the pipeline per config
if has bench; then
  leg bench_end_to_end "$(cap "$E2E_S")" "$PY" benchmarks/bench_end_to_end.py "${E2E_ARGS[@]}" \
    --out "$WORK/bench_end_to_end.md"
  [ -f "$WORK/bench_end_to_end.md" ] && cp "$WORK/bench_end_to_end.md" "$OUT/bench_end_to_end.md"
  for cfg in $PIPE_CONFIGS; do
    leg "bench_pipeline_$cfg" "$(cap "$PIPE_S")" "$PY" benchmarks/bench_pipeline.py "${PIPE_ARGS[@]}" \
      --configs "$cfg" --out "$WORK/bench_pipeline_$cfg.md" --json "$WORK/extras/bench_pipeline_$cfg.json" \
      --note "issue 23 device run (scripts/device_issue23.sh)"
    ls "$WORK"/bench_pipeline_*.md > /dev/null 2>&1 && cat "$WORK"/bench_pipeline_*.md > "$OUT/bench_pipeline.md"
    pack
  done
fi

pack
say "done in $(( $(date +%s) - T0 ))s; \$OUT holds: $(cd "$OUT" && ls | tr '\n' ' ')"
[ "$MODE" = cpu ] && echo "$OUT"
exit 0
