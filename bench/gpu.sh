#!/usr/bin/env bash
# One prepared run for a GPU machine (one H100, 16 cores), from the repository root with the
# project's .venv: parser speed (`paper` config: training steps/s in bf16 at 512x512 first,
# each row printed as it is measured, then inference images/s), then the full label-efficiency,
# ablation and peer-baseline benchmarks on CUDA, each inside its own time budget. Under 9
# minutes in all.
#
#   bash bench/gpu.sh                 # tables go to $OUT (default ./out) and to stdout
#   DRY_RUN=1 bash bench/gpu.sh       # the same stages on the CPU with tiny settings (~2 min)
#
# Every stage runs under `timeout` and the script goes on when one fails; each benchmark also
# stops itself a little before its limit and prints the rows it finished.
set -x
OUT="${OUT:-./out}"
mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3   # a GPU machine without our .venv uses its own Python
START=$(date +%s)
exec > >(tee -a "$OUT/gpu_run.log") 2>&1

if [ -n "$DRY_RUN" ]; then
    DEV=cpu; TINY="--tiny --loader-workers 1 --threads 2"
    T_SPEED=240; T_LE=120; T_AB=60; T_PEER=60
else
    DEV=cuda; TINY=""
    T_SPEED=120; T_LE=180; T_AB=90; T_PEER=90  # 480 s + start-up: under 9 minutes
fi

nvidia-smi || echo "nvidia-smi not available"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')"
nproc

stage() {  # stage NAME SECONDS command...
    local name=$1 limit=$2
    shift 2
    local t0=$(date +%s)
    timeout -s TERM -k 15 "$limit" "$@"
    echo "=== stage $name: exit $? after $(( $(date +%s) - t0 )) s (limit $limit s) ==="
}

# 1. Speed of the paper config (resnet101, output stride 8, 512x512): train step + inference.
stage speed_paper "$T_SPEED" $PY bench/parser_speed.py --config paper --device $DEV \
    --batch-size 8 --infer-batch 16 --out "$OUT" $TINY
# 2-4. The benchmarks, each stopping itself ~15 s before its limit.
stage label_efficiency "$T_LE" $PY bench/label_efficiency.py --device $DEV \
    --budget-s $(( T_LE - 25 )) --out "$OUT" $TINY
# ablation and peer baseline with one seed each: twice the steps per model in the same time
# (the thin classes need them); label efficiency keeps its three seeds
stage ablation "$T_AB" $PY bench/ablation.py --device $DEV --budget-s $(( T_AB - 20 )) \
    --seeds 1 --out "$OUT" $TINY
stage peer_baseline "$T_PEER" $PY bench/peer_baseline.py --device $DEV --budget-s $(( T_PEER - 20 )) \
    --seeds 1 --out "$OUT" $TINY

set +x
echo "=== all tables ($(( $(date +%s) - START )) s in all) ==="
for f in "$OUT"/*.md; do [ -f "$f" ] && cat "$f" && echo; done
ls -la "$OUT"
