"""Behaviour kept across refactors: two short training runs, replayed bit for bit against golden files.

tests/golden/*.json hold, for a fixed spec, seed and one BLAS thread, every logged loss part of a
300-step MNIST JointVAE run and a 100-step dSprites FactorVAE run, and the SHA-256 of the final
parameters (the VAE's and the discriminator's). They were recorded before the layout of jointvae/
changed (issue 16) and must stay true after any change that claims to keep behaviour.

Bits depend on the float library underneath (NumPy's build and its BLAS kernels), so the golden file
records that too, with the processor's model: on the recording platform losses and weights must match exactly;
elsewhere the test skips, saying so (rounding differences grow too fast for any tolerance to mean anything). Regenerate (only for a change
that is meant to move the numbers, and say so in the commit) with

    JOINTVAE_RECORD_GOLDEN=1 python -m pytest tests/test_trajectory.py
"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parent.parent
RECORD = bool(os.environ.get("JOINTVAE_RECORD_GOLDEN"))
LOSS_KEYS = ("loss", "recon", "kl_cont", "kl_disc", "tc", "d_loss", "d_accuracy", "kl_cont_units", "kl_disc_units",
             "C_cont", "C_disc")

# The runs: the CLI's preset spec for (dataset, model), logged every 10 steps.
RUNS = {  # name -> (dataset, model, steps)
    "mnist_jointvae_300": ("mnist", "jointvae", 300),
    "dsprites_factorvae_100": ("dsprites", "factorvae", 100),
}


def platform_fingerprint():
    """What decides the bits beyond our code: NumPy's version and the BLAS it runs on."""
    config = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
    blas = config.get("Build Dependencies", {}).get("blas", {})
    return {"numpy": np.__version__, "blas": f"{blas.get('name')} {blas.get('version')}",
            "machine": os.uname().machine, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "cpu": cpu_model()}


def cpu_model():
    """The processor's model name (Linux), or None: OpenBLAS picks its kernels by the CPU it runs on, so the same
    NumPy and OpenBLAS give other bits on another processor."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def params_sha256(checkpoint):
    """SHA-256 over the model's and the discriminator's parameters, by name, dtype, shape and bytes."""
    with np.load(checkpoint, allow_pickle=False) as state:
        h = hashlib.sha256()
        for name in sorted(k for k in state.files if k.startswith(("param.", "d_param."))):
            array = state[name]
            h.update(f"{name} {array.dtype.str} {array.shape}\n".encode())
            h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def run_trajectory(tmp_path, name, spec):
    """Train `name` with `spec` in a fresh process on one BLAS thread -> (records, params_sha256)."""
    spec_path, out = tmp_path / f"{name}.json", tmp_path / name
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    dataset, _, steps = RUNS[name]
    subprocess.run([sys.executable, "-m", "jointvae.train", dataset, "--steps", str(steps), "--spec", str(spec_path), "--out", str(out),
                    "--no-pictures", "--checkpoint-every", "100000", "--print-every", "100000"],
                   check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    records = [{"step": r["step"], **{k: r[k] for k in LOSS_KEYS if k in r}} for r in records]
    return records, params_sha256(out / "checkpoint.npz")


def preset_spec(name):
    from jointvae.models.specs import DEFAULT_SPECS, validate_spec
    dataset, model, _ = RUNS[name]
    spec = validate_spec(DEFAULT_SPECS[(dataset, model)])
    spec.pop("print_loss_every", None)
    return {**spec, "record_loss_every": 10}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_training_trajectory_is_unchanged(name, tmp_path):
    path = GOLDEN / f"{name}.json"
    if RECORD:
        spec = preset_spec(name)
        records, digest = run_trajectory(tmp_path, name, spec)
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps({"spec": spec, "platform": platform_fingerprint(), "records": records,
                                    "params_sha256": digest}, indent=1) + "\n")
        return
    golden = json.loads(path.read_text())
    records, digest = run_trajectory(tmp_path, name, golden["spec"])
    assert [r["step"] for r in records] == [r["step"] for r in golden["records"]]
    if golden["platform"] != platform_fingerprint():
        # Another NumPy, BLAS or processor gives other bits from the first product on, and float32 training feeds
        # them back: measured on 2026-12-01 between two x86_64 processors with the same NumPy and OpenBLAS, the
        # logged loss parts differ by up to 1e-5 (MNIST) and 1e-1 (FactorVAE) relative at step 10, 7-37% from step
        # 70 on. No tolerance tells a refactor from rounding there, so only the recording platform checks.
        pytest.skip(f"golden trajectory recorded on {golden['platform']}, this is {platform_fingerprint()}: "
                    "record it here with JOINTVAE_RECORD_GOLDEN=1 to check")
    assert records == golden["records"]
    assert digest == golden["params_sha256"]
