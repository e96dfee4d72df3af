"""Several points in one process (jointvae/sweeps/together.py): the same runs as alone, bit for bit; a signal stops
every one at a checkpoint; a failing run is named and the others finish; bad names are one-line errors."""
import fcntl
import json
import os
import signal
import subprocess
import sys
import types

import numpy as np
import pytest

from jointvae import sweep as front_door
from jointvae.sweeps import runs, together
from jointvae.sweeps.sweep_file import SweepError, load_sweep
from jointvae.training import captured_step

from test_sweep import states, sweep_folder, write_sweep

@pytest.fixture
def env(tmp_path, monkeypatch):
    return sweep_folder(tmp_path, monkeypatch)


NAMES = ["model=jointvae,seed=0", "model=jointvae,seed=1", "model=betavae,seed=0"]


def sweep_file(folder, out, steps=12):
    return write_sweep(folder, name=f"{out}.json", steps=steps, out=out,
                       grid=[{"model": ["jointvae"], "seed": [0, 1]}, {"model": ["betavae"], "seed": [0]}])


def run_files(folder):
    weights = dict(np.load(folder / "weights.npz", allow_pickle=False))
    with open(folder / "log.jsonl") as f:
        log = [{k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in f]
    evaluation = json.load(open(folder / "eval.json"))
    return weights, log, {k: v for k, v in evaluation.items() if k not in ("seconds", "sweep_data", "model")}


def test_runs_together_are_the_runs_alone_bit_for_bit(env, capsys):
    alone = load_sweep(sweep_file(env, "alone"))
    for name in NAMES:
        assert runs.run_one(alone, name, log=lambda line: None) == 0
    path = sweep_file(env, "together")
    assert front_door.main(["run-one", str(path), *NAMES]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert f"{name}: exit 0" in out and f"{name}: wrote" in out
        w1, log1, eval1 = run_files(env / "alone" / name)
        w2, log2, eval2 = run_files(env / "together" / name)
        assert log2 == log1 and len(log1) > 0
        assert eval2 == eval1
        for key, value in w1.items():
            np.testing.assert_array_equal(w2[key], value, err_msg=f"{name} {key}")
    # Every line of a run says whose it is.
    progress = [line for line in out.splitlines() if " step " in line]
    assert progress and all(any(line.startswith(f"{n}: ") for n in NAMES) for line in progress)


def test_a_signal_stops_every_run_at_a_checkpoint_and_the_sweep_finishes_them(env):
    path = sweep_file(env, "runs", steps=400)
    child = subprocess.Popen([sys.executable, "-m", "jointvae.sweep", "run-one", str(path), *NAMES[:2]],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1"})
    started = set()
    for line in child.stdout:
        started |= {n for n in NAMES[:2] if line.startswith(f"{n}: ") and " step " in line}
        if len(started) == 2:
            child.send_signal(signal.SIGTERM)
            break
    rest = child.stdout.read()
    assert child.wait(timeout=120) == 128 + signal.SIGTERM, rest
    sweep = load_sweep(path)
    for name in NAMES[:2]:
        assert f"{name}: stopped at step" in rest and f"{name}: exit 143" in rest
        half = runs.state(sweep, sweep.point(name))
        assert half["state"] == "partial" and 0 < half["step"] < 400, half
    assert states(sweep)[NAMES[2]]["state"] == "pending"


def test_a_failing_run_is_named_and_the_others_finish(env, capsys):
    path = sweep_file(env, "runs", steps=8)
    sweep = load_sweep(path)
    os.makedirs(env / "runs" / NAMES[1])
    with open(env / "runs" / NAMES[1] / ".lock", "w") as held:   # as if another process ran this point
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert front_door.main(["run-one", str(path), *NAMES[:2]]) == 1
    out = capsys.readouterr().out
    assert f"{NAMES[1]}: error: " in out and "another process is running this point" in out
    assert f"{NAMES[0]}: exit 0" in out and f"{NAMES[1]}: exit 1" in out
    assert states(sweep)[NAMES[0]]["state"] == "evaluated"


@pytest.mark.parametrize("names, message", [
    (["model=jointvae,seed=0", "model=jointvae,seed=0"], "named twice"),
    (["model=jointvae,seed=0", "model=jointvae,seed=7"], "model=jointvae,seed=7"),
])
def test_bad_names_are_refused_before_anything_runs(env, names, message):
    path = sweep_file(env, "runs")
    with pytest.raises((SweepError, ValueError), match=message):
        together.run_together(load_sweep(path), names)
    assert not (env / "runs" / names[0]).exists()
    with pytest.raises(SystemExit, match=r"^error: .*" + message):
        front_door.main(["run-one", str(path), *names])


def test_screen_goes_with_one_name(env):
    path = sweep_file(env, "runs")
    with pytest.raises(SystemExit, match="--screen goes with one name"):
        front_door.main(["run-one", str(path), *NAMES[:2], "--screen", "4"])


def test_an_evaluation_in_a_worker_thread_ends_when_the_main_thread_gets_a_signal(env, monkeypatch):
    """A worker thread cannot catch signals; its evaluation watches the main thread's StopSignals instead."""
    path = sweep_file(env, "runs")
    sweep = load_sweep(path)
    ended = []

    class SlowChild:
        returncode = None

        def __init__(self, argv, **kwargs):
            pass

        def communicate(self, timeout=None):
            raise subprocess.TimeoutExpired("evaluate", timeout)

        def poll(self):
            return self.returncode

        def terminate(self):
            ended.append("terminated")
            self.returncode = -15

        def wait(self):
            return self.returncode

    monkeypatch.setattr(runs.subprocess, "Popen", SlowChild)
    stop = types.SimpleNamespace(received=signal.SIGTERM)
    with pytest.raises(runs._Stopped) as stopped:
        runs.evaluate(sweep, sweep.point(NAMES[0]), stop=stop)
    assert stopped.value.signum == signal.SIGTERM and ended == ["terminated"]


def test_a_signal_before_the_first_step_trains_nothing(env, capsys):
    """A run in a worker thread gets ready (data, model) while the main thread may already have a signal: it stops
    before its first step instead of training one and writing a checkpoint."""
    sweep = load_sweep(sweep_file(env, "runs"))
    stop = types.SimpleNamespace(received=signal.SIGTERM)
    assert runs.run_one(sweep, NAMES[0], stop=stop) == 128 + signal.SIGTERM
    assert "stopped at step 0 by SIGTERM; nothing trained yet" in capsys.readouterr().out
    assert runs.state(sweep, sweep.point(NAMES[0]))["state"] == "pending"


def test_combined_status():
    assert together.combined_status({"a": 0, "b": 0}) == 0
    assert together.combined_status({"a": 0, "b": 1}) == 1
    assert together.combined_status({"a": 1, "b": 143}) == 143


def stream(ptr):
    return types.SimpleNamespace(ptr=ptr)


@pytest.mark.parametrize("current_ptr, chosen", [(0, "new blocking"), (12345, "current")])
def test_a_graph_replays_on_the_callers_stream_unless_it_is_the_default_one(current_ptr, chosen):
    """A run in a thread of its own has made its stream current (together.own_stream): its graphs replay there.
    The default stream cannot be captured: a run alone gets a new blocking stream, as before."""
    current, made = stream(current_ptr), []

    def new_stream(non_blocking=False):
        made.append(non_blocking)
        return stream(999)
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(get_current_stream=lambda: current, Stream=new_stream))
    picked = captured_step.current_capturable_stream(cupy)
    if chosen == "current":
        assert picked is current and made == []
    else:
        assert picked.ptr == 999 and made == [False]
