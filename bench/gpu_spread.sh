#!/usr/bin/env bash
# Issue 20's MNIST spread on a lent GPU, in one call: check that runs side by side on streams are the runs alone,
# measure how many MNIST runs at once the GPU gives the most steps for, then train as many points as fit.
#
#   bash bench/prepare_gpu_carry.sh                                   # here: the MNIST cache into .gpu-data
#   OUT=$OUT bash bench/gpu_spread.sh [SWEEP] [BUDGET_S] [NAME...]    # there, carry [".gpu-data"]
#   bash bench/sweep_on_gpu.sh --unpack docs/mnist-spread/sweep.toml DIR/runs.tar.gz     # here, then commit
#
# TABLE=FILE skips the tests and the measurement and chooses by FILE, an earlier call's together.json (a second
# call in the same session: carry it, e.g. in .gpu-data/).
# BUDGET_S (default 450) is the whole script's time. NAME...: the points to take, in this order, as many as fit
# (default: the next points without an eval.json). SPEC names what bench/runs_together.py times (default mnist;
# dsprites-betavae, dsprites-jointvae, ... for the dSprites study's points), on the spec's own dataset as training
# reads it. Everything it says goes to $OUT/spread.txt, the measurement to $OUT/together.json, the finished runs
# to $OUT/runs.tar.gz. If the GPU test of runs on streams fails, the points run as processes (MODE=processes),
# which take turns on the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
SWEEP=${1:-docs/mnist-spread/sweep.toml}
BUDGET=${2:-450}
shift $(( $# < 2 ? $# : 2 ))
names=("$@")
SPEC=${SPEC:-mnist}
REAL_DATA=${REAL_DATA:-1}   # 0: random images (the test on the CPU, which has no MNIST)
export PY=${PYTHON:-python3} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export JOINTVAE_DATA=${JOINTVAE_DATA:-$PWD/.gpu-data}
export OUT=$(mkdir -p "${OUT:-gpu-spread-out}" && cd "${OUT:-gpu-spread-out}" && pwd)
export DEVICE=${DEVICE:-gpu}       # DEVICE=cpu, BENCH_STEPS and COUNTS: the test on the CPU
BENCH_STEPS=${BENCH_STEPS:-2000} COUNTS=${COUNTS:-1 2 4 8}
WORK_LOG=$(mktemp)
trap 'rm -f "$WORK_LOG"' EXIT
export CUDA_MODULE_LOADING=${CUDA_MODULE_LOADING:-EAGER}   # as run-one NAME... sets it (jointvae/sweeps/together.py)
start=$(date +%s)
say() { echo "$@" | tee -a "$OUT/spread.txt"; }
elapsed() { echo $(( $(date +%s) - start )); }

modes="threads processes"
if [ -n "${TABLE:-}" ]; then   # a later call on the same kind of GPU: the table an earlier call measured
    cp "$TABLE" "$OUT/together.json" || { say "error: cannot read TABLE=$TABLE"; exit 1; }
    say "the table of $TABLE, not measured again"
elif [ "$DEVICE" = gpu ]; then
    # For the record (it does not choose the mode): the runs' scoring on the GPU against the CPU's.
    timeout 60 $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py -k evaluation_on_the_gpu 2>&1 | tail -n 3 \
        | tee -a "$OUT/spread.txt"
    timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py -k together > "$WORK_LOG" 2>&1
    cat "$WORK_LOG" >> "$OUT/spread.txt"
    if grep -Eq "^[0-9]+ passed" "$WORK_LOG" && ! grep -Eq "[0-9]+ (failed|error)" "$WORK_LOG"; then
        say "runs on streams match runs alone, bit for bit (after $(elapsed)s)"
    else
        say "the GPU test of runs on streams did not pass (after $(elapsed)s): processes only"
        modes="processes"
    fi
fi
if [ -z "${TABLE:-}" ]; then
    real=$([ "$REAL_DATA" = 1 ] && echo --real-data)
    timeout 150 $PY -m bench.runs_together --device "$DEVICE" --spec "$SPEC" $real --counts $COUNTS --modes $modes \
        --steps "$BENCH_STEPS" --json "$OUT/together.json" 2>&1 | tee -a "$OUT/spread.txt"
fi

# How many points fit in what is left: K x steps / rate(K) + start and evaluation, by the table just measured.
left=$(( BUDGET - $(elapsed) - 30 ))   # 30 s for the archive and the way back
read -r K MODE < <($PY - "$OUT/together.json" "$SWEEP" "$left" <<'PYTHON'
import json, sys
from bench.runs_together import runs_that_fit
from jointvae.sweeps.sweep_file import load_sweep
table, sweep, left = json.load(open(sys.argv[1])), load_sweep(sys.argv[2]), float(sys.argv[3])
steps = max(p["steps"] for p in sweep.points)
k, mode = runs_that_fit(table["rows"], steps, left, overhead_s=45, slack=1.2)
print(k, mode or "-")
PYTHON
) || { say "error: no table to choose from (after $(elapsed)s)"; exit 1; }
if [ "${K:-0}" = 0 ]; then
    say "no run of the sweep fits in the ${left}s left"
    exit 1
fi
say "training $K point(s) as $MODE, limit ${left}s (after $(elapsed)s)"
if [ ${#names[@]} -gt 0 ]; then
    set -- "${names[@]:0:$K}"
else
    set -- "$K"
fi
LIMIT=$left MODE=$MODE bash bench/sweep_on_gpu.sh "$SWEEP" "$@" 2>&1 | tee -a "$OUT/spread.txt"
status=${PIPESTATUS[0]}
say "done after $(elapsed)s, exit $status"
exit "$status"
