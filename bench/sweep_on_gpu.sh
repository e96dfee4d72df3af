#!/usr/bin/env bash
# Points of a sweep trained and evaluated on a lent GPU machine, side by side, within a time limit; each finished
# run's eval.json, specs.json, weights.npz and log.jsonl come back in one archive, and --unpack puts them into the
# sweep's out folder here, where `sweep status`, `collect` and `export` count them as finished (runs.py:
# brought_back). The device keeps nothing, so a run cut off by the limit brings nothing back.
#
#   bash bench/prepare_gpu_carry.sh                                # here: the MNIST cache into .gpu-data
#   bash bench/sweep_on_gpu.sh SWEEP [K]          # there (carry [".gpu-data"]): the next K points without an
#                                                 #   eval.json in the sweep's out folder there (default 3)
#   bash bench/sweep_on_gpu.sh SWEEP NAME...      # there: these points (a sweep whose out is not in the tree)
#   bash bench/sweep_on_gpu.sh --unpack SWEEP DIR/runs.tar.gz      # here
#
# MNIST's spread (issue 20): SWEEP=docs/mnist-spread/sweep.toml, whose out is the committed results folder.
# MODE=threads (the default) trains the K points in one process, a thread and a CUDA stream each, whose kernels can
# run at the same time; MODE=processes starts a process per point, and processes on one GPU take turns (no MPS).
# One MNIST run alone took 112 s on an H200 (2026-11-29); how many fit in a call: bench/gpu_spread.sh measures it
# (bench/runs_together.py) and chooses K.
# Exit status: 0 when every point it started has its eval.json, 1 otherwise. DEVICE=cpu runs on the CPU (the test).
set -uo pipefail
PY=${PYTHON:-python3}
unpack=""
if [ "${1:-}" = "--unpack" ]; then
    unpack=$(realpath "${3:?usage: --unpack SWEEP RUNS.tar.gz}") || exit 1
    shift
fi
SWEEP=$(realpath "${1:?usage: bash bench/sweep_on_gpu.sh SWEEP [K | NAME...]}") || exit 1
shift
[ -n "$unpack" ] && set -- 0   # unpacking plans no run: only the sweep's out folder is needed
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

# The sweep's out folder; then the points to run: the names given, or the next K without an eval.json.
plan=$($PY - "$SWEEP" "$@" <<'PYTHON'
import os, sys
from jointvae.sweeps.sweep_file import load_sweep
sweep, args = load_sweep(sys.argv[1]), sys.argv[2:]
print(sweep.out)
if args and not (len(args) == 1 and args[0].isdigit()):
    for name in args:
        sweep.point(name)   # an unknown name is an error here, before anything runs
    print(*args, sep="\n")
else:
    k = int(args[0]) if args else 3
    points = sorted(sweep.points, key=lambda p: (p["seed"], p["name"]))   # the settings of a seed together
    missing = [p["name"] for p in points if not os.path.exists(os.path.join(sweep.out, p["name"], "eval.json"))]
    print(*missing[:k], sep="\n")
PYTHON
) || { echo "error: cannot plan the runs of $SWEEP"; exit 1; }
RESULTS=$(head -n 1 <<< "$plan")

if [ -n "$unpack" ]; then
    mkdir -p "$RESULTS"
    tar -xzf "$unpack" -C "$RESULTS" --wildcards '*/eval.json' '*/specs.json' '*/weights.npz' '*/log.jsonl' \
        || { echo "error: cannot unpack $unpack"; exit 1; }
    echo "unpacked $(tar -tzf "$unpack" | grep -c '/eval.json$') run(s) into $RESULTS"
    exit 0
fi

mapfile -t todo < <(tail -n +2 <<< "$plan" | grep -v '^$')
LIMIT=${LIMIT:-450}
DEVICE=${DEVICE:-gpu}
MODE=${MODE:-threads}
case "$MODE" in threads|processes) ;; *) echo "error: MODE=$MODE (threads or processes)"; exit 1;; esac
OUT=$(mkdir -p "${OUT:-sweep-on-gpu-out}" && cd "${OUT:-sweep-on-gpu-out}" && pwd)   # absolute: written from elsewhere
export JOINTVAE_DATA=${JOINTVAE_DATA:-$PWD/.gpu-data}
if [ ${#todo[@]} -eq 0 ]; then
    echo "nothing to run: every point of $SWEEP has its eval.json (or K was 0)"
    exit 0
fi
echo "training ${#todo[@]} point(s) at once on the $DEVICE ($MODE), limit ${LIMIT}s: ${todo[*]}"
start=$(date +%s)
logs=$(mktemp -d)
pids=()
# -k: a run that ignores the TERM is killed 20 s later, so the archive is still made inside the call's limit.
if [ "$MODE" = threads ]; then   # one process, a thread and a CUDA stream per point (jointvae/sweeps/together.py)
    timeout -k 20 "$LIMIT" $PY -m jointvae.sweep run-one "$SWEEP" "${todo[@]}" --device "$DEVICE" > "$logs/all.log" 2>&1 &
    pids+=($!)
else                             # a process per point: they take turns on the GPU
    for i in "${!todo[@]}"; do
        timeout -k 20 "$LIMIT" $PY -m jointvae.sweep run-one "$SWEEP" "${todo[$i]}" --device "$DEVICE" \
            > "$logs/$i.log" 2>&1 &
        pids+=($!)
    done
fi
status=0
finished=()
if [ "$MODE" = threads ]; then
    wait "${pids[0]}"
    process_code=$?
    cp "$logs/all.log" "$OUT/together.log"   # the whole log comes back
    # What no run's name starts (the process's own errors, a traceback's lines): shown once.
    printf '%s: \n' "${todo[@]}" > "$logs/prefixes"
    awk 'NR == FNR { p[NR] = $0; n = NR; next } { for (i = 1; i <= n; i++) if (index($0, p[i]) == 1) next; print }' \
        "$logs/prefixes" "$logs/all.log" | tail -n 20 | sed 's/^/    /'
fi
for i in "${!todo[@]}"; do
    if [ "$MODE" = threads ]; then   # the point's own status, from its "NAME: exit N" line; else the process's
        code=$(P="${todo[$i]}: exit " awk 'index($0, ENVIRON["P"]) == 1 { v = substr($0, length(ENVIRON["P"]) + 1) }
                                          END { print v }' "$logs/all.log")
        code=${code:-$process_code}
        [ "$process_code" = 124 ] && [ "$code" -gt 128 ] && code=124   # stopped by the time limit's TERM
        P="${todo[$i]}: " awk 'index($0, ENVIRON["P"]) == 1 && index($0, ENVIRON["P"] "exit ") != 1' \
            "$logs/all.log" | tail -n 2 > "$logs/$i.log"
    else
        wait "${pids[$i]}"
        code=$?
    fi
    echo "${todo[$i]}: exit $code$([ $code = 124 ] && echo ' (the time limit)') after $(( $(date +%s) - start ))s"
    tail -n 2 "$logs/$i.log" | sed 's/^/    /'
    if [ -f "$RESULTS/${todo[$i]}/eval.json" ]; then
        for f in eval.json specs.json weights.npz log.jsonl; do
            [ -f "$RESULTS/${todo[$i]}/$f" ] && finished+=("${todo[$i]}/$f")
        done
    else
        status=1
    fi
done
rm -rf "$logs"
if [ ${#finished[@]} -eq 0 ]; then
    echo "error: no finished run to bring back"
    exit 1
fi
tar -C "$RESULTS" -czf "$OUT/runs.tar.gz" "${finished[@]}" || exit 1
echo "$OUT/runs.tar.gz: $(du -h "$OUT/runs.tar.gz" | cut -f1), ${#finished[@]} file(s); exit $status"
exit $status
