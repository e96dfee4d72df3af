"""bench/sweep_on_gpu.sh on the CPU (DEVICE=cpu): the script a GPU session runs for sweeps such as MNIST's spread
(issue 20), on a tiny sweep of a folder of images. It picks the points without a result (or the names given),
runs them at once, brings each finished run back in one archive written to an absolute $OUT (as the device
tool's is), says when a run hit the time limit; --unpack puts the runs where status, collect and export count
them as finished without their checkpoints."""
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

from conftest import write_square_images
from jointvae.sweeps import runs
from jointvae.sweeps.sweep_file import load_sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "sweep_on_gpu.sh")
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("tar") is None,
                                reason="needs bash and tar")


@pytest.fixture
def folder(tmp_path):
    write_square_images(tmp_path / "img", 24)
    return tmp_path


def sweep_file(folder, name, out, steps):
    path = folder / name
    path.write_text(json.dumps({"base": "folder", "folder": "img", "out": out,
                                "settings": {"steps": steps, "batch_size": 8, "image_shape": [1, 32, 32]},
                                "grid": {"seed": [0, 1, 2]}}))
    return path


def run(folder, *args, **env):
    environment = {**os.environ, "OUT": str(folder / "out"), "PYTHON": sys.executable, "DEVICE": "cpu",
                   "JOINTVAE_DATA": str(folder / "data"), "OPENBLAS_NUM_THREADS": "1", **env}
    done = subprocess.run(["bash", SCRIPT, *map(str, args)], env=environment, capture_output=True, text=True,
                          timeout=300)
    return done.returncode, done.stdout + done.stderr


def archived(folder):
    with tarfile.open(folder / "out" / "runs.tar.gz") as tar:
        return sorted(tar.getnames())


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_points_run_side_by_side_come_back_and_count_as_finished(folder, mode):
    sweep = sweep_file(folder, "sweep.json", "results", steps=3)
    code, out = run(folder, sweep, 2, MODE=mode)
    assert code == 0, out
    assert f"training 2 point(s) at once on the cpu ({mode})" in out and "seed=0: exit 0" in out and "seed=1: exit 0" in out
    assert archived(folder) == [f"seed={s}/{f}" for s in (0, 1) for f in ("eval.json", "log.jsonl", "specs.json",
                                                                          "weights.npz")]
    code, out = run(folder, sweep, "seed=2")                # by name
    assert code == 0 and "training 1 point(s)" in out and "seed=2: exit 0" in out, out
    code, out = run(folder, sweep)
    assert code == 0 and "nothing to run" in out, out
    code, out = run(folder, sweep, "seed=7")
    assert code == 1 and "no point" in out, out

    # Here: the runs of the archive, without checkpoints, are finished runs of another copy of the sweep.
    other = sweep_file(folder, "other.json", "unpacked", steps=3)
    code, out = run(folder, "--unpack", other, folder / "out" / "runs.tar.gz")
    assert code == 0 and "unpacked 1 run(s)" in out, out   # the last archive: seed=2's
    assert sorted(os.listdir(folder / "unpacked" / "seed=2")) == ["eval.json", "log.jsonl", "specs.json",
                                                                  "weights.npz"]
    copy = load_sweep(other)
    assert runs.state(copy, copy.point("seed=2"))["state"] == "evaluated"
    assert runs.state(copy, copy.point("seed=0"))["state"] == "pending"
    assert runs.run_one(copy, "seed=2", log=lambda line: None) == 0   # not trained again
    assert not os.path.exists(folder / "unpacked" / "seed=2" / "checkpoint.npz")


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_run_cut_off_by_the_time_limit_is_said_and_fails_the_script(folder, mode):
    sweep = sweep_file(folder, "slow.json", "slow", steps=100000)
    code, out = run(folder, sweep, 2, LIMIT="3", MODE=mode)
    assert code == 1 and "seed=0: exit 124 (the time limit)" in out and "seed=1: exit 124" in out and "no finished run to bring back" in out, out


def test_the_spread_script_measures_then_trains_what_fits(folder):
    """bench/gpu_spread.sh: the test of runs on streams, the table of runs at once, then as many points as fit."""
    sweep = sweep_file(folder, "spread.json", "spread", steps=3)
    environment = {**os.environ, "OUT": str(folder / "out"), "PYTHON": sys.executable, "DEVICE": "cpu",
                   "JOINTVAE_DATA": str(folder / "data"), "OPENBLAS_NUM_THREADS": "1", "BENCH_STEPS": "3",
                   "COUNTS": "1 2", "REAL_DATA": "0"}
    done = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_spread.sh"), str(sweep), "400"],
                          env=environment, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert re.search(r"training 2 point\(s\) as (threads|processes)", out), out
    assert "seed=0: exit 0" in out and "seed=1: exit 0" in out
    assert json.loads((folder / "out" / "together.json").read_text())["rows"]
    assert archived(folder) == [f"seed={s}/{f}" for s in (0, 1) for f in ("eval.json", "log.jsonl", "specs.json",
                                                                          "weights.npz")]
    assert "done after" in (folder / "out" / "spread.txt").read_text()


def test_the_spread_script_takes_named_points_in_order(folder):
    sweep = sweep_file(folder, "named.json", "named", steps=3)
    environment = {**os.environ, "OUT": str(folder / "out"), "PYTHON": sys.executable, "DEVICE": "cpu",
                   "JOINTVAE_DATA": str(folder / "data"), "OPENBLAS_NUM_THREADS": "1", "BENCH_STEPS": "3",
                   "COUNTS": "1 2", "REAL_DATA": "0"}
    done = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_spread.sh"), str(sweep), "400", "seed=2", "seed=0",
                           "seed=1"], env=environment, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "seed=2: exit 0" in out and "seed=0: exit 0" in out and "seed=1: exit" not in out   # K = 2: the first two
    # A second call chooses by the first call's table, without measuring again.
    table = folder / "table.json"
    table.write_text((folder / "out" / "together.json").read_text())
    done = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_spread.sh"), str(sweep), "400", "seed=1"],
                          env={**environment, "TABLE": str(table)}, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "not measured again" in out and "seed=1: exit 0" in out, out
    assert "steps/s (all)" not in out
