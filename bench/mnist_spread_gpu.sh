#!/usr/bin/env bash
# MNIST's spread on a GPU (issue 20): the next points of docs/mnist-spread/sweep.toml that have no result in
# docs/mnist-spread/results/, trained and evaluated side by side on the one GPU, within a time limit. Their
# eval.json files come back in one archive, which --unpack puts into docs/mnist-spread/results/.
#
#   bash bench/prepare_gpu_carry.sh                    # here: the MNIST cache into .gpu-data
#   bash bench/mnist_spread_gpu.sh [K]                 # there, carry [".gpu-data"]: K points at once (default 3)
#   bash bench/mnist_spread_gpu.sh --unpack DIR/spread.tar.gz     # here: the results into docs/mnist-spread/results
#   python -m jointvae.sweep collect docs/mnist-spread/sweep.toml --by init --fields discrete_accuracy recon_loss \
#       --hist discrete_accuracy       # the table and the histogram issue 20 asks for
#
# One run alone took 112 s on an H200 (2026-11-29). Processes on one GPU take turns (no MPS), so K at once may take
# up to K times as long; not measured yet. K = 3 should then fit the default limit of 450 s. A run cut off by the
# limit brings nothing back (the device keeps nothing) and is simply run again by a later session.
# SWEEP=another.toml runs another sweep file the same way (the test does); its out folder is its results folder.
# Exit status: 0 when every point it started has its eval.json, 1 otherwise.
set -uo pipefail
PY=${PYTHON:-python3}
if [ "${1:-}" = "--unpack" ]; then
    archive=$(realpath "${2:?usage: --unpack SPREAD.tar.gz}") || exit 1
fi
cd "$(dirname "$0")/.."
SWEEP=${SWEEP:-docs/mnist-spread/sweep.toml}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

# The sweep's out folder, where each point's run (and its eval.json) goes; then the points still without one.
plan=$($PY - "$SWEEP" "${1:-3}" <<'PYTHON'
import os, sys
from jointvae.sweeps.sweep_file import load_sweep
sweep = load_sweep(sys.argv[1])
k = int(sys.argv[2]) if sys.argv[2].isdigit() else 0
points = sorted(sweep.points, key=lambda p: (p["seed"], p["name"]))   # both initialisations of a seed together
missing = [p["name"] for p in points if not os.path.exists(os.path.join(sweep.out, p["name"], "eval.json"))]
print(sweep.out)
print(*missing[:k], sep="\n")
PYTHON
) || { echo "error: cannot read $SWEEP"; exit 1; }
RESULTS=$(head -n 1 <<< "$plan")

if [ "${1:-}" = "--unpack" ]; then
    mkdir -p "$RESULTS"
    tar -xzf "$archive" -C "$RESULTS" --wildcards '*/eval.json' || { echo "error: no eval.json in $archive"; exit 1; }
    echo "results now: $(find "$RESULTS" -mindepth 2 -maxdepth 2 -name eval.json | wc -l) in $RESULTS"
    exit 0
fi

mapfile -t todo < <(tail -n +2 <<< "$plan" | grep -v '^$')
LIMIT=${LIMIT:-450}
OUT=$(mkdir -p "${OUT:-spread-out}" && cd "${OUT:-spread-out}" && pwd)   # absolute: the archive is written from elsewhere
export JOINTVAE_DATA=${JOINTVAE_DATA:-$PWD/.gpu-data}
if [ ${#todo[@]} -eq 0 ]; then
    echo "nothing to run: every point of $SWEEP has its eval.json (or K was 0)"
    exit 0
fi
echo "training ${#todo[@]} point(s) at once, limit ${LIMIT}s: ${todo[*]}"
start=$(date +%s)
logs=$(mktemp -d)
pids=()
for i in "${!todo[@]}"; do
    # -k: a run that ignores the TERM is killed 20 s later, so the archive is still made inside the call's limit.
    timeout -k 20 "$LIMIT" $PY -m jointvae.sweep run-one "$SWEEP" "${todo[$i]}" > "$logs/$i.log" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!todo[@]}"; do
    wait "${pids[$i]}"
    code=$?
    echo "${todo[$i]}: exit $code$([ $code = 124 ] && echo ' (the time limit)') after $(( $(date +%s) - start ))s"
    tail -n 2 "$logs/$i.log" | sed 's/^/    /'
    [ -f "$RESULTS/${todo[$i]}/eval.json" ] || status=1
done
rm -rf "$logs"
mapfile -t found < <(cd "$RESULTS" && find . -mindepth 2 -maxdepth 2 -name eval.json | sed 's|^\./||')
if [ ${#found[@]} -eq 0 ]; then
    echo "error: no eval.json to bring back"
    exit 1
fi
tar -C "$RESULTS" -czf "$OUT/spread.tar.gz" "${found[@]}" || exit 1
echo "$OUT/spread.tar.gz: ${#found[@]} eval.json file(s); exit $status"
exit $status
