#!/usr/bin/env bash
# Run here, before a GPU check: what the bare GPU machine (no internet) needs, in two ignored folders
# that the device tool carries (carry: [".gpu-data", ".gpu-wheels"], 64 MiB in all):
#   .gpu-data/mnist    the MNIST cache (53 MB), for the full training run
#   .gpu-wheels/       wheels of the test and run dependencies CuPy's machine may lack (Python 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "from jointvae.data import load_dataset; load_dataset('mnist', 'train'); load_dataset('mnist', 'test')"
mkdir -p .gpu-data
rm -rf .gpu-data/mnist
cp -r "${JOINTVAE_DATA:-$HOME/.cache/jointvae}/mnist" .gpu-data/mnist
rm -rf .gpu-wheels
pip download --quiet --dest .gpu-wheels --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 imageio pillow hypothesis pytest
rm -f .gpu-wheels/numpy-*.whl   # CuPy's machine has NumPy; its wheel alone would not fit in the carry
du -sh .gpu-data .gpu-wheels
