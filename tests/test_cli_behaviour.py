"""What the command-line tools tell their user, one test per behaviour (each fails on the old behaviour):

    evaluate      progress with rate and ETA on stderr while encoding; stdout one JSON object whose
                  "seconds" cover the whole run, encoding included
    visualize     a GIF for every model with continuous units; a picture it cannot make is named with the reason
    visualize     never writes into an input model folder: runs/pictures/NAME unless it is a training run
    experiments   the table goes into the run folder, not into the tracked docs/results.md
    infer --disc  category measures (majority-mapping accuracy, NMI), not correlations of a category index
    verify        --only TEXT that matches nothing is an error that names it and lists the checks
    --help        every option of evaluate, visualize, edit, infer and experiments says what it does and its default
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

import refnet

from jointvae import JointVAE, edit, evaluate, experiments, infer, save_model, visualize
from jointvae.evaluation import scores
from jointvae.evaluation.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
RGB = (3, 64, 64)   # CelebA's shape: a dataset with no data here, so the pictures need none
SPEC = {"cont_capacity": [0.0, 5.0, 1000, 30.0], "disc_capacity": [0.0, 5.0, 1000, 30.0]}


def saved_model(folder, shape=(1, 32, 32), latent_spec=None, **spec):
    latent_spec = latent_spec or {"cont": 3, "disc": [3]}
    model = JointVAE(shape, latent_spec, rng=np.random.default_rng(0))
    save_model(str(folder), model, {**SPEC, "latent_spec": latent_spec, **spec})
    return str(folder)


# ---------------------------------------------------------------- evaluate: progress and the whole time


class FakeClock:
    """A clock that moves `tick` seconds each time it is read."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now


def test_progress_lines_are_time_based_with_rate_and_eta():
    lines = []
    progress = Progress(1000, "encoding", log=lines.append, every=5.0, clock=FakeClock(1.0))
    for _ in range(100):
        progress.advance(10)                 # 100 chunks, one (fake) second each
    progress.finish()
    assert lines[0] == "encoding: 1,000 images"
    middle = lines[1:-1]
    assert 15 <= len(middle) <= 25           # a line per ~5 seconds, not one per chunk
    assert all("images/s" in line and "ETA" in line for line in middle)
    assert middle[0].startswith("encoding: 50/1,000 images (5%)")
    assert lines[-1].startswith("encoding: 1,000 images in ")


def test_code_table_reports_its_progress():
    class Grid:
        factor_names, factor_sizes = ("a",), (2,)
        sample_factors = None

        def __len__(self):
            return 10

        def __getitem__(self, flat):
            return flat[:, None].astype(np.float64)

    lines = []
    progress = Progress(10, "table", log=lines.append, every=0.0, clock=FakeClock(1.0))
    table = scores.CodeTable(Grid(), lambda x: x * 2, chunk=3, progress=progress)
    assert table.codes[:, 0].tolist() == [2.0 * i for i in range(10)]
    assert [line.split(" (")[0] for line in lines[1:]] == ["table: 3/10 images", "table: 6/10 images",
                                                           "table: 9/10 images"]


def test_evaluate_on_dsprites_shows_progress_on_stderr_and_times_the_whole_run(tmp_path, capsys):
    folder = saved_model(tmp_path / "sprites", (1, 64, 64), dataset="dsprites")
    start = time.perf_counter()
    assert evaluate.main([folder, "--votes", "4", "2", "--samples", "64", "--progress-every", "0"]) == 0
    wall = time.perf_counter() - start
    captured = capsys.readouterr()
    result = json.loads(captured.out)                                  # stdout: one JSON object, nothing else
    assert captured.out.count("\n") == 1
    progress = [line for line in captured.err.splitlines() if "images/s" in line and "ETA" in line]
    assert any(line.startswith("encoding images for the metrics: ") for line in progress), captured.err
    seconds = result["seconds"]                                        # old: only the metrics' own seconds
    assert set(seconds) == {"load", "reconstruction", "factorvae", "betavae", "mig", "total"}
    assert seconds["total"] >= 0.9 * wall                              # the whole run, encoding included
    parts = sum(v for k, v in seconds.items() if k != "total")
    assert parts <= seconds["total"] + 0.01 and parts >= 0.9 * seconds["total"]


@pytest.mark.skipif(refnet.gpu_available(), reason="a GPU is here: tests/test_gpu.py evaluates on it")
def test_evaluate_on_a_gpu_without_one_is_a_one_line_error(tmp_path, capsys):
    folder = saved_model(tmp_path / "sprites", (1, 64, 64), dataset="dsprites")
    with pytest.raises(SystemExit, match=r"^error: --device gpu(: CuPy is installed but no CUDA GPU| needs CuPy)"):
        evaluate.main([folder, "--device", "gpu"])
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- visualize: a GIF, and where pictures go


def test_visualize_makes_a_traversal_gif_without_training_frames(tmp_path, capsys):
    folder = saved_model(tmp_path / "model", RGB, dataset="celeba")   # no data here: prior samples
    out = tmp_path / "pics"
    assert visualize.main([folder, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    gif = Image.open(out / "traversal.gif")
    assert gif.n_frames == 2 * 20 - 2                               # 20 values there and back
    gif.seek(1)
    assert gif.info["duration"] == 100
    frames = imageio.mimread(out / "traversal.gif")
    assert frames[0].shape == (66 + 2, 3 * 66 + 2, 3) and not np.array_equal(frames[0], frames[19])
    assert f"wrote {out / 'traversal.gif'}" in printed
    assert "skipped training.gif" in printed and "frames" in printed   # said plainly, with the reason
    assert "skipped kl_per_unit.png" in printed and "log.jsonl" in printed


def test_visualize_never_writes_into_a_model_folder_that_is_not_a_training_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = saved_model(tmp_path / "reference" / "celeba", RGB, dataset="celeba")
    assert visualize.main([folder]) == 0
    assert sorted(os.listdir(folder)) == ["specs.json", "weights.npz"]
    pictures = tmp_path / "runs" / "pictures" / "celeba"
    assert (pictures / "samples.png").exists() and (pictures / "traversal_cont.png").exists()
    assert f"wrote {os.path.join('runs', 'pictures', 'celeba', 'samples.png')}" in capsys.readouterr().out


def test_visualize_writes_a_training_runs_pictures_into_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = saved_model(tmp_path / "run", RGB, dataset="celeba")
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"")    # the trainer's own file: a run of this project
    assert visualize.main([folder]) == 0
    assert (tmp_path / "run" / "traversal.gif").exists() and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- experiments: the table in the run folder


def test_experiments_write_the_table_into_the_run_folder_not_docs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    tracked = tmp_path / "docs" / "results.md"
    tracked.write_text("# Results\n")
    argv = ["dsprites-compare", "--seeds", "1", "--steps", "1", "--models", "betavae", "--votes", "2", "2",
            "--samples", "32"]
    assert experiments.main(argv) == 0
    assert tracked.read_text() == "# Results\n"
    written = tmp_path / "runs" / "dsprites-compare" / "results.md"
    assert "| betavae | 0 |" in written.read_text()
    assert f"appended the table to {os.path.join('runs', 'dsprites-compare', 'results.md')}" in capsys.readouterr().out


# ---------------------------------------------------------------- infer --disc: measures for categories


def test_category_agreement_by_hand():
    agree = scores.category_agreement([0, 0, 1, 1, 2, 2], ["a", "a", "b", "b", "b", "b"])
    h_label = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    assert agree["accuracy"] == 1.0 and agree["chance"] == pytest.approx(4 / 6)
    assert agree["nmi"] == pytest.approx(h_label / ((math.log(3) + h_label) / 2))   # I = H(label) here
    assert agree["mapping"] == {0: "a", 1: "b", 2: "b"}
    # A category index is a name: renaming the categories changes no measure (a correlation would change).
    renamed = scores.category_agreement([2, 2, 0, 0, 1, 1], ["a", "a", "b", "b", "b", "b"])
    assert (renamed["accuracy"], renamed["nmi"]) == (agree["accuracy"], agree["nmi"])


def test_infer_disc_reports_accuracy_and_nmi_not_correlations(tmp_path, capsys):
    folder = saved_model(tmp_path / "model")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    names = [f"{i}.png" for i in range(12)]
    for name in names:
        imageio.imwrite(images / name, rng.integers(0, 256, (32, 32), dtype=np.uint8))
    kinds = ["noise", "static"] * 6                                     # class labels: text is fine for --disc
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *zip(names, kinds)])
    out = tmp_path / "disc.csv"
    assert infer.main([folder, str(images), "--disc", "0", "--labels", str(tmp_path / "labels.csv"),
                       "--out", str(out)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert "pearson" not in line and "spearman" not in line
    with open(out, newline="") as f:
        categories = {row["path"]: int(row["value"]) for row in csv.DictReader(f)}
    expected = scores.category_agreement([categories[n] for n in names], kinds)
    assert line.startswith("labels: 12 of 12 images matched (12 labelled paths); ")
    assert f"accuracy {expected['accuracy']:.4f}" in line and f"chance {expected['chance']:.4f}" in line
    assert "NMI " in line and "categories -> labels: " in line
    # --unit keeps the correlations of a numeric label.
    numeric = tmp_path / "numeric.csv"
    numeric.write_text("path,label\n" + "".join(f"{n},{i}\n" for i, n in enumerate(names)))
    assert infer.main([folder, str(images), "--unit", "0", "--labels", str(numeric),
                       "--out", str(tmp_path / "unit.csv")]) == 0
    assert "pearson" in capsys.readouterr().out.splitlines()[-1]


# ---------------------------------------------------------------- verify --only: an unknown check


def test_verify_names_an_unknown_check_and_fails():
    done = subprocess.run([sys.executable, "-m", "verify", "--only", "NoSuchCheck"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode != 0
    assert "0/0 checks passed" not in done.stdout
    assert "'NoSuchCheck'" in done.stderr and "no check's name contains it" in done.stderr
    assert "\n  Conv2d\n" in done.stderr                              # the known checks, listed


# ---------------------------------------------------------------- --help: every option, with its default


class Parsed(Exception):
    """Raised in place of parsing: main() has built its parser."""


def parser_of(door, monkeypatch):
    """The ArgumentParser that door.main builds, caught as it is about to parse."""
    seen = {}

    def grab(self, args=None, namespace=None):
        seen["parser"] = self
        raise Parsed

    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_args", grab)
        with pytest.raises(Parsed):
            door.main(["--help"])
    return seen["parser"]


@pytest.mark.parametrize("door", [evaluate, visualize, edit, infer, experiments], ids=lambda m: m.__name__)
def test_every_option_has_help_with_its_default(door, monkeypatch, capsys):
    parser = parser_of(door, monkeypatch)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        name = action.option_strings[-1]
        assert action.help, f"{name} has no help text"
        if action.default is not None and not isinstance(action, argparse._StoreTrueAction):
            assert "(default: " in action.help, f"{name}: the help does not give its default {action.default!r}"
    with pytest.raises(SystemExit) as e:
        door.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert all(o in text for a in parser._actions for o in a.option_strings)
