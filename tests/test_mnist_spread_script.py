"""bench/mnist_spread_gpu.sh on the CPU: the script a GPU session runs for MNIST's spread (issue 20), on a tiny sweep
of a folder of images. It picks the points without a result, runs K at once, brings every eval.json back in one
archive written to an absolute $OUT (as the device tool's is), says when a run hit the time limit, and --unpack
puts the results where collect reads them."""
import json
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "mnist_spread_gpu.sh")
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("tar") is None,
                                reason="needs bash and tar")


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "img").mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        a = np.zeros((32, 32), np.uint8)
        x, y = rng.integers(2, 22, 2)
        a[y:y + 10, x:x + 10] = 255
        Image.fromarray(a).save(tmp_path / "img" / f"{i:02d}.png")
    return tmp_path


def sweep_file(folder, name, out, steps):
    path = folder / name
    path.write_text(json.dumps({"base": "folder", "folder": "img", "out": out,
                                "settings": {"steps": steps, "batch_size": 8, "image_shape": [1, 32, 32]},
                                "grid": {"seed": [0, 1, 2]}}))
    return path


def run(folder, sweep, *args, **env):
    environment = {**os.environ, "SWEEP": str(sweep), "OUT": str(folder / "out"), "PYTHON": sys.executable,
                   "JOINTVAE_DATA": str(folder / "data"), "OPENBLAS_NUM_THREADS": "1", **env}
    done = subprocess.run(["bash", SCRIPT, *args], env=environment, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def archived(folder):
    with tarfile.open(folder / "out" / "spread.tar.gz") as tar:
        return sorted(tar.getnames())


def test_the_spread_script_runs_the_next_points_and_brings_their_results_back(folder):
    sweep = sweep_file(folder, "sweep.json", "results", steps=3)
    code, out = run(folder, sweep, "2")
    assert code == 0, out
    assert "training 2 point(s) at once" in out and "seed=0: exit 0" in out and "seed=1: exit 0" in out
    assert archived(folder) == ["seed=0/eval.json", "seed=1/eval.json"]
    code, out = run(folder, sweep, "5")                   # the one left
    assert code == 0 and "training 1 point(s)" in out and "seed=2: exit 0" in out, out
    assert len(archived(folder)) == 3
    code, out = run(folder, sweep)
    assert code == 0 and "nothing to run" in out, out

    other = sweep_file(folder, "other.json", "unpacked", steps=3)   # --unpack into a sweep's results folder
    code, out = run(folder, other, "--unpack", str(folder / "out" / "spread.tar.gz"))
    assert code == 0 and "results now: 3" in out, out
    assert sorted(os.listdir(folder / "unpacked")) == ["seed=0", "seed=1", "seed=2"]
    assert os.listdir(folder / "unpacked" / "seed=0") == ["eval.json"]


def test_a_run_cut_off_by_the_time_limit_is_said_and_fails_the_script(folder):
    sweep = sweep_file(folder, "slow.json", "slow", steps=100000)
    code, out = run(folder, sweep, "1", LIMIT="3")
    assert code == 1 and "seed=0: exit 124 (the time limit)" in out and "no eval.json to bring back" in out, out
