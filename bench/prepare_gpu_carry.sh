#!/usr/bin/env bash
# Run here, before a GPU check: the MNIST cache (53 MB) in the ignored folder .gpu-data, which the device
# tool carries (carry: [".gpu-data"]; the machine has no internet). Its image already holds CuPy, NumPy,
# imageio, pytest and hypothesis (.library's device KINDS.md), so no wheels travel.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "from jointvae.data import load_dataset; load_dataset('mnist', 'train'); load_dataset('mnist', 'test')"
mkdir -p .gpu-data
rm -rf .gpu-data/mnist
cp -r "${JOINTVAE_DATA:-$HOME/.cache/jointvae}/mnist" .gpu-data/mnist
du -sh .gpu-data
