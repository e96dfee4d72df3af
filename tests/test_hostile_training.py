"""Stopping, resuming and damaged run folders, as a hostile user meets them (issue 18, "Stopping and resuming").

Each bad case must end in one line naming the problem (no traceback), a non-zero exit status, and every
file of the run as it was. The runs train on a small folder of generated images (no download), 32x32 grey.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from jointvae import train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(48):
        imageio.imwrite(folder / f"{i:02d}.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
    return folder


@pytest.fixture
def env(tmp_path, monkeypatch):
    """One BLAS thread (bit-exact resumes) and a private data cache, for this process and its children."""
    monkeypatch.setenv("JOINTVAE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    return {**os.environ, "JOINTVAE_DATA": str(tmp_path / "data"), "OPENBLAS_NUM_THREADS": "1"}


def argv(images, out, *extra):
    return ["folder", str(images), "--size", "32", "--channels", "1", "--out", str(out), "--no-pictures",
            "--print-every", "1000", "--batch-size", "16", *extra]


def train_cli(args):
    """python -m jointvae.train in this process -> (exit status, the error line or None)."""
    try:
        return train.main(args), None
    except SystemExit as e:
        return (0, None) if e.code in (0, None) else (1, str(e.code))


def files_of(folder):
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}


def resume_argv(images, out, *extra):
    return ["folder", "--out", str(out), "--resume", "--no-pictures", "--print-every", "1000", *extra]


# ------------------------------------------------------------------ signals


def start(args, env):
    return subprocess.Popen([sys.executable, "-m", "jointvae.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_log(out, lines, process, timeout=60):
    """Wait until log.jsonl has `lines` records (the run is in its loop, the handlers installed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the run ended early: {process.communicate()}")
        log = out / "log.jsonl"
        if log.exists() and len(log.read_text().splitlines()) >= lines:
            return
        time.sleep(0.05)
    raise AssertionError("no progress in time")


def test_sigint_and_sigterm_stop_cleanly_and_resume_to_the_same_weights(images, env, tmp_path):
    steps = ["--steps", "250", "--epochs", "1000", "--checkpoint-every", "1000"]
    whole = tmp_path / "whole"
    assert subprocess.run([sys.executable, "-m", "jointvae.train", *argv(images, whole, *steps)], cwd=ROOT,
                          env=env, capture_output=True).returncode == 0

    out = tmp_path / "stopped"
    for number, (signum, status) in enumerate(((signal.SIGINT, 130), (signal.SIGTERM, 143))):
        args = argv(images, out, *steps) if number == 0 else resume_argv(images, out)
        process = start(args, env)
        wait_for_log(out, 2 * number + 1, process)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == status, stderr
        assert "Traceback" not in stderr
        line = [ln for ln in stderr.splitlines() if ln.startswith("stopped at step")]
        assert line and f"by {signal.Signals(signum).name}" in line[0] and "--resume" in line[0]
        stopped_at = int(line[0].split()[3].rstrip(";"))
        assert np.load(out / "checkpoint.npz")["step"] == stopped_at < 250
    finished = subprocess.run([sys.executable, "-m", "jointvae.train", *resume_argv(images, out)], cwd=ROOT,
                              env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    with np.load(whole / "weights.npz") as want, np.load(out / "weights.npz") as got:
        for name in want.files:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == \
           [json.loads(x)["step"] for x in (whole / "log.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ damaged or misused run folders


@pytest.fixture(scope="module")
def trained_100(images, tmp_path_factory):
    """A run at step 100 (checkpoints every 50), trained once for the module."""
    folder = tmp_path_factory.mktemp("trained")
    old = {k: os.environ.get(k) for k in ("JOINTVAE_DATA", "OPENBLAS_NUM_THREADS")}
    os.environ.update(JOINTVAE_DATA=str(folder / "data"), OPENBLAS_NUM_THREADS="1")
    try:
        args = argv(images, folder / "run", "--steps", "100", "--epochs", "1000", "--checkpoint-every", "50")
        assert train_cli(args) == (0, None)
    finally:
        for key, value in old.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return folder / "run"


@pytest.fixture
def run_at_100(trained_100, env, tmp_path):
    """A copy of the run at step 100, for one test to damage."""
    return Path(shutil.copytree(trained_100, tmp_path / "run"))


def test_a_fresh_run_starts_a_new_log(images, env, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.jsonl").write_text('{"step": 5000, "loss": 1.0}\n')
    assert train_cli(argv(images, out, "--steps", "50")) == (0, None)
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [50]


def test_a_torn_last_log_line_does_not_block_resume(images, run_at_100, capsys):
    with open(run_at_100 / "log.jsonl", "a") as f:
        f.write('{"step": 150, "lo')
    assert train_cli(resume_argv(images, run_at_100, "--steps", "150")) == (0, None)
    assert [json.loads(x)["step"] for x in (run_at_100 / "log.jsonl").read_text().splitlines()] == [50, 100, 150]


@pytest.mark.parametrize("content, message", [
    ("", "not valid JSON"), ("{garbage", "not valid JSON"), ("[1, 2]", "must hold a JSON object"),
    ("{}", "'seed' must be an integer"), ('{"seed": -1, "epochs": 1, "max_steps": null}', "'seed' must be"),
    ('{"seed": 0, "epochs": "ten", "max_steps": null}', "'epochs' must be"),
])
def test_a_damaged_train_args_json_is_one_clear_error(images, run_at_100, content, message):
    (run_at_100 / "train_args.json").write_text(content)
    before = files_of(run_at_100)
    status, error = train_cli(resume_argv(images, run_at_100, "--steps", "150"))
    assert status != 0 and "train_args.json" in error and message in error and "\n" not in error
    assert files_of(run_at_100) == before


@pytest.mark.parametrize("step", [np.array(10**12), np.array(3.7), np.array([100, 100]), np.array(60)])
def test_a_tampered_checkpoint_step_is_refused(images, run_at_100, step):
    path = run_at_100 / "checkpoint.npz"
    with np.load(path) as checkpoint:
        state = {k: checkpoint[k] for k in checkpoint.files}
    state["step"] = step
    np.savez(path, **state)
    before = files_of(run_at_100)
    status, error = train_cli(resume_argv(images, run_at_100, "--steps", "150"))
    assert status != 0 and "checkpoint.npz" in error and "'step'" in error
    assert files_of(run_at_100) == before


def test_files_left_by_a_killed_write_are_removed(images, run_at_100):
    (run_at_100 / ".tmp-abc123.npz").write_bytes(b"half a checkpoint")
    (run_at_100 / "log.jsonl.tmp").write_text("half a log")
    assert train_cli(resume_argv(images, run_at_100, "--steps", "120")) == (0, None)
    assert not (run_at_100 / ".tmp-abc123.npz").exists() and not (run_at_100 / "log.jsonl.tmp").exists()


def test_resume_with_fewer_steps_than_done_says_so(images, run_at_100):
    before = files_of(run_at_100)
    status, error = train_cli(resume_argv(images, run_at_100, "--steps", "60"))
    assert status != 0 and "already at step 100" in error
    assert files_of(run_at_100) == before


def test_a_nan_stops_training_and_keeps_the_last_good_checkpoint(images, run_at_100):
    path = run_at_100 / "checkpoint.npz"
    with np.load(path) as checkpoint:
        state = {k: checkpoint[k] for k in checkpoint.files}
    name = next(k for k in state if k.startswith("param.") and k.endswith("weight"))
    state[name] = np.full_like(state[name], np.nan)
    np.savez(path, **state)
    before = path.read_bytes()
    status, error = train_cli(resume_argv(images, run_at_100, "--steps", "150"))
    assert status != 0 and "step 101" in error and "nan" in error.lower() and "\n" not in error
    assert path.read_bytes() == before


# ------------------------------------------------------------------ options and specs


@pytest.mark.parametrize("option, value, message", [
    ("--batch-size", "0", "--batch-size: must be between 1"), ("--batch-size", "-5", "--batch-size: must be"),
    ("--checkpoint-every", "0", "--checkpoint-every: must be >= 1"), ("--print-every", "0", "--print-every: must"),
    ("--steps", "0", "--steps: must be >= 1"), ("--steps", "-3", "--steps: must"), ("--epochs", "-1", "--epochs: must"),
    ("--lr", "-1", "--lr: must be between"), ("--lr", "nan", "--lr: must"), ("--lr", "inf", "--lr: must"),
    ("--seed", "-1", "--seed: must be between 0"), ("--steps", "ten", "--steps: 'ten' is not an integer"),
])
def test_an_option_out_of_range_is_one_line_before_anything_is_written(tmp_path, option, value, message, capsys):
    with pytest.raises(SystemExit) as stop:
        train.main(["mnist", "--out", str(tmp_path / "run"), option, value])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()


SPEC = {"latent_spec": {"cont": 2, "disc": [3]}, "cont_capacity": [0.0, 5.0, 100, 30.0],
        "disc_capacity": [0.0, 5.0, 100, 30.0], "image_shape": [1, 32, 32]}


@pytest.mark.parametrize("change, message", [
    ({"latent_spec": {"cont": 10**11}}, "latent_spec['cont'] must be an integer in [0, 4096]"),
    ({"latent_spec": {"disc": [10**9]}}, "latent_spec['disc']"),
    ({"lr": "f"}, "lr must be a number"), ({"lr": [0.1, "x"]}, "lr must be"),
    ({"cont_capacity": [0, "5", 100, 30]}, "cont_capacity must be"), ({"batch_size": 0}, "batch_size must be"),
    ({"batch_size": 10**9}, "batch_size must be"), ({"betas": ["a", 0.9]}, "betas must be"),
])
def test_a_bad_spec_names_the_file_and_the_field(images, env, tmp_path, change, message):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**SPEC, **change}))
    status, error = train_cli(argv(images, tmp_path / "run", "--spec", str(path)))
    assert status != 0 and str(path) in error and message in error and "\n" not in error
    assert not (tmp_path / "run").exists()


def test_a_deeply_nested_spec_is_refused_not_a_recursion_error(images, env, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text("[" * 100000 + "]" * 100000)
    status, error = train_cli(argv(images, tmp_path / "run", "--spec", str(path)))
    assert status != 0 and "nested too deeply" in error


def test_a_batch_larger_than_the_data_fails_before_anything_is_written(images, env, tmp_path):
    status, error = train_cli(argv(images, tmp_path / "run")[:-2] + ["--batch-size", "49"])
    assert status != 0 and "batch size 49 is larger than the 48 training images" in error
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ running


def test_start_lines_and_progress_by_time_and_by_any_print_every(images, env, tmp_path, capsys, monkeypatch):
    from jointvae.training import trainer
    assert train_cli(argv(images, tmp_path / "a", "--steps", "12", "--print-every", "7")) == (0, None)   # the last wins
    out = capsys.readouterr().out
    assert "loading the training images" in out and "loaded 48 images" in out
    assert "training jointvae on cpu: steps 1..12" in out and "1 BLAS thread(s)" in out
    assert "step 7/12" in out and "step 12/12" in out   # 7 is not on the log's grid of 50: printed anyway
    last = next(line for line in out.splitlines() if "step 12/12" in line)
    epoch, epochs = re.search(r"epoch (\d+)/(\d+) ", last).groups()
    assert epoch == epochs, last   # the epochs the step limit lets it reach, not the spec's 100
    monkeypatch.setattr(trainer, "PROGRESS_SECONDS", 0.0)   # a slow run: a line at least every PROGRESS_SECONDS
    assert train_cli(argv(images, tmp_path / "b", "--steps", "5")) == (0, None)
    assert sum("steps/s" in line for line in capsys.readouterr().out.splitlines()) == 5


def test_threads_are_recorded_and_a_resume_with_others_says_what_it_changes(images, run_at_100, capsys):
    assert json.loads((run_at_100 / "train_args.json").read_text())["blas_threads"] == 1
    assert train_cli(resume_argv(images, run_at_100, "--steps", "101", "--threads", "2")) == (0, None)
    assert "trained with 1 BLAS thread(s); with 2 its weights will differ" in capsys.readouterr().err


NUMERIC_OPTIONS = ["--batch-size", "--steps", "--epochs", "--lr", "--seed", "--checkpoint-every", "--print-every",
                   "--threads"]


def test_fuzzed_numeric_options_are_refused_in_one_line_or_accepted(tmp_path, hyp_settings):
    """Any text for any numeric option: argparse's one-line error (exit 2) naming the option, or a value in range;
    never a traceback, never a file written (parsing only: nothing trains here)."""
    from hypothesis import given
    from hypothesis import strategies as st
    values = st.one_of(st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True).map(repr),
                       st.text(max_size=8), st.sampled_from(["0", "-0", "1e400", "nan", "inf", "0x10", "1_000", ""]))

    @hyp_settings
    @given(option=st.sampled_from(NUMERIC_OPTIONS), value=values)
    def check(option, value):
        try:
            args = train.parse_args(["mnist", "--out", str(tmp_path / "run"), f"{option}={value}"])
        except SystemExit as stop:
            assert stop.code == 2
            return
        parsed = getattr(args, option[2:].replace("-", "_"))
        assert parsed is not None and parsed == parsed and parsed > 0 or option == "--seed" and parsed >= 0
        assert not (tmp_path / "run").exists()

    check()
