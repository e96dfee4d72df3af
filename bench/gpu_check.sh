#!/usr/bin/env bash
# The prepared GPU check of issue 17: one script, under 8 minutes, every result written into $OUT.
#
#   bash bench/gpu_check.sh                       # on a GPU machine, from the repository root
#
# With the device tool: run bench/prepare_gpu_carry.sh here first (the MNIST cache and a few wheels: the GPU
# machine has no internet), then `bash bench/gpu_check.sh` there with carry [".gpu-data", ".gpu-wheels"].
# Each part has its own time limit, so one slow part cannot eat the others; a part that fails leaves its log
# and the rest go on.
set -uo pipefail
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
export JOINTVAE_DATA=${JOINTVAE_DATA:-$PWD/.gpu-data}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
start=$(date +%s)
# What the bare machine lacks, from the carried wheels (never from the internet).
if [ -d .gpu-wheels ] && ! python -c "import imageio, pytest, hypothesis" 2>/dev/null; then
    pip install --quiet --no-index --find-links .gpu-wheels imageio pillow pytest hypothesis > "$OUT/install.txt" 2>&1
fi
part() {   # part NAME SECONDS COMMAND...: run COMMAND with a time limit, output to $OUT/NAME.txt
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s, at $(( $(date +%s) - start ))s)"
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    echo "   exit $? after $(( $(date +%s) - start ))s"
}

part environment 30 bash -c 'nvidia-smi; python -c "
import platform, numpy, cupy
print(platform.python_version(), \"numpy\", numpy.__version__, \"cupy\", cupy.__version__)
print(cupy.cuda.runtime.getDeviceProperties(0)[\"name\"].decode())
try:
    import torch; print(\"torch\", torch.__version__, torch.version.cuda)
except ImportError as e:
    print(e)"'
part pytest_gpu 120 python -m pytest -m gpu -q -p no:cacheprovider tests/
# The goals: the MNIST JointVAE step (img 32) and the dSprites FactorVAE step (img 64) against torch.
for model in "32 jointvae 60" "64 factorvae 60" "32 factorvae 40"; do
    set -- $model
    part "bench_img$1_$2" "$3" python -m bench.train_step --device gpu --img "$1" --model "$2" \
        --batch-sizes 64 256 --steps 30 --warmup 5 --json "$OUT/bench_img$1_$2.json"
done
# The whole 100-epoch MNIST run (goal: under 3 minutes); if it is cut off, its checkpoint and log stay,
# and `python -m jointvae.train mnist --device gpu --out $OUT/mnist-gpu --resume` continues it.
part train_mnist 150 python -m jointvae.train mnist --device gpu --out "$OUT/mnist-gpu" --no-pictures \
    --checkpoint-every 5000 --print-every 5000
part evaluate_mnist 30 python -m jointvae.evaluate "$OUT/mnist-gpu"
echo "done in $(( $(date +%s) - start ))s; results in $OUT"
