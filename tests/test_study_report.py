"""docs/dsprites-study/report.sh on a tiny copy of the study: three settings (β-VAE, FactorVAE and JointVAE x
FactorVAE, whose code has a discrete latent) trained for 4 steps and scored with small votes, then the report: the
table and scatter, each run's eval.json and pictures, where the factors lie in each run's code, the best run of each
setting as a model folder. Before any run is finished it says so and writes nothing."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from jointvae import sweep as front_door
from jointvae.evaluation import metrics
from test_metrics import FakeDataset    # the factor dataset the metrics' tests use

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "docs", "dsprites-study", "report.sh")
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
JOINT = "cont_capacity=0.0_40.0_100000_150.0,disc_capacity=0.0_1.1_100000_150.0,model=joint-factorvae,seed=0"
RUNS = ("model=betavae,seed=0", "model=factorvae,seed=0", JOINT)


def report(tmp_path, sweep):
    env = {**os.environ, "PYTHON": sys.executable, "OPENBLAS_NUM_THREADS": "1", "ROTATION_IMAGES": "500",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(["bash", SCRIPT, str(sweep), str(tmp_path / "docs"), str(tmp_path / "pretrained")],
                          env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def test_the_report_of_a_tiny_study(tmp_path, monkeypatch):
    monkeypatch.setenv("JOINTVAE_DATA", str(tmp_path / "data"))
    sweep = tmp_path / "study.json"
    sweep.write_text(json.dumps({
        "base": "dsprites", "out": "runs", "settings": {"steps": 4, "checkpoint_every": 4},
        "grid": [{"model": ["betavae", "factorvae"], "seed": [0]},
                 {"model": ["joint-factorvae"], "seed": [0], "cont_capacity": [[0.0, 40.0, 100000, 150.0]],
                  "disc_capacity": [[0.0, 1.1, 100000, 150.0]]}],
        "evaluate": {"votes": [4, 2], "samples": 64}}))
    code, out = report(tmp_path, sweep)
    assert code == 0 and "nothing to report" in out, out
    assert not (tmp_path / "docs").exists()

    assert front_door.main(["run", str(sweep), "--workers", "2"]) == 0
    code, out = report(tmp_path, sweep)
    assert code == 0, out
    docs = tmp_path / "docs"
    for f in ("collect.md", "collect.csv", "collect-units.md"):
        assert (docs / f).exists(), f
    # The PNGs come with the [plots] extra (matplotlib); without it collect says so and the report goes on.
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    assert (docs / "collect-scatter.png").exists() == has_matplotlib
    assert has_matplotlib or "matplotlib is not installed" in out
    table = (docs / "collect.md").read_text()
    assert "| betavae | factorvae | 1 |" in table and "| factorvae | mig | 1 |" in table   # model, field, n
    assert "| joint-factorvae | discrete_accuracy | 1 |" in table
    for name in RUNS:
        run = docs / "runs" / name
        assert json.loads((run / "eval.json").read_text())["sweep_step"] == 4
        assert any(p.suffix in (".png", ".gif") for p in run.iterdir())
        assert not (run / "checkpoint.npz").exists()
    directions = (docs / "directions.md").read_text().splitlines()
    assert directions[0].startswith("| model | active units | factor |")
    assert (docs / "runs" / JOINT / "traversal_disc.png").exists()      # the discrete latent's own picture
    for name in RUNS:                                                   # a row each, read or said unreadable
        assert sum(name in line for line in directions) == 1, directions
    rotation = (docs / "rotation.md").read_text()
    for name in RUNS:                                                   # a table each, or why there is none
        assert sum(line.startswith(name + ":") for line in rotation.splitlines()) == 1, rotation
    votes = (docs / "factorvae-votes.md").read_text().splitlines()
    assert votes[0].startswith("| run | FactorVAE metric | shape | scale | orientation | posX | posY | "
                               "training votes won by units under 0.1 nats |")
    for name in RUNS:                                                   # a row each, from its eval.json
        rows = [line for line in votes if line.startswith(f"| {name} | ")]
        assert len(rows) == 1 and len(rows[0].split("|")) == len(votes[0].split("|")), votes
    for model in ("betavae", "factorvae", "joint-factorvae"):
        folder = tmp_path / "pretrained" / f"dsprites-{model}"
        assert (folder / "weights.npz").exists() and (folder / "specs.json").exists()
    code, out = report(tmp_path, sweep)   # again, as more runs finish: the model folders are replaced
    assert code == 0, out


def test_over_training_reads_the_scored_steps_and_skips_the_rest(tmp_path):
    sys.path.insert(0, os.path.dirname(SCRIPT))
    try:
        import over_training
    finally:
        sys.path.pop(0)
    votes = {"factors": ["shape", "scale", "orientation", "posX", "posY"], "units": ["cont.0", "cont.1"],
             "classifier": {"cont.0": "posX", "cont.1": "shape"},
             "eval_votes": [[1, 3], [2, 2], [4, 0], [4, 0], [1, 3]]}     # 0.75 of shape's votes right, all of posX's
    scores = {"recon_loss": 31.5, "factorvae": 0.6, "betavae": 0.8, "mig": 0.1, "metrics": {"factorvae": votes},
              "kl_per_unit_ranked": [{"unit": "cont.0", "kl": 3.0}, {"unit": "cont.1", "kl": 0.2}]}
    for run, step, text in (("model=betavae,seed=0", 20000, "encoding ...\n" + json.dumps(scores) + "\n"),
                            ("model=betavae,seed=0", 10000, json.dumps({**scores, "factorvae": 0.7}) + "\n"),
                            ("model=betavae,seed=0", 30000, "encoding ... (cut short)\n"),    # no scores yet
                            ("model=factorvae,seed=0", 10000, None)):                       # not scored
        folder = tmp_path / "snapshots" / run / f"step-{step}"
        folder.mkdir(parents=True)
        if text is not None:
            (folder / "eval-small.log").write_text(text)
    assert over_training.main([str(tmp_path / "snapshots"), "--out", str(tmp_path)]) == 0
    rows = (tmp_path / "over-training.csv").read_text().splitlines()
    assert rows[0] == ("run,step,recon_loss,factorvae,betavae,mig,units above 0.5 nats,factorvae shape,"
                       "factorvae scale,factorvae orientation,factorvae posX,factorvae posY")
    by_factor = "0.75,0.00,0.00,1.00,0.00"                                      # each factor's votes right
    assert rows[1:] == ['"model=betavae,seed=0",10000,31.5,0.7,0.8,0.1,1,' + by_factor,   # by step, one unit
                        '"model=betavae,seed=0",20000,31.5,0.6,0.8,0.1,1,' + by_factor]   # above 0.5 nats
    with pytest.raises(SystemExit, match="no step under .* has an eval-small.log with scores"):
        over_training.main([str(tmp_path / "snapshots" / "model=factorvae,seed=0"), "--out", str(tmp_path)])


class FactorTable(FakeDataset):
    """A code table of a small factor grid: images are factor indices, and the code is one unit each for scale,
    orientation and posX (index / size: standard deviations near 0.29) plus a unit that shares shape and posY alike,
    as β-VAE seed 2's cont.5 does."""

    def __init__(self):
        super().__init__(sizes=(3, 6, 8, 8, 8))

    def represent(self, factors):
        own = factors / np.array(self.factor_sizes)
        shared = (factors[:, :1] / 3 + factors[:, 4:] / 8) / 2
        return np.concatenate([own[:, 1:4], shared], axis=1)       # shape and posY only through the shared unit


def test_pruning_scores_each_cut_with_each_seeds_votes():
    """score_cuts: a result per (cut, seed), in that order; seed S's votes are evaluate --seed S's, so other seeds
    give other votes on the same code; a cut above a unit's spread prunes it."""
    sys.path.insert(0, os.path.dirname(SCRIPT))
    try:
        import pruning
    finally:
        sys.path.pop(0)
    table, layout = FactorTable(), {"cont": 4, "disc": []}
    scored = pruning.score_cuts(table, layout, [0.05, 0.2], [0, 1], votes=(300, 150), samples=500)
    assert [(t, s) for t, s, _ in scored] == [(0.05, 0), (0.05, 1), (0.2, 0), (0.2, 1)]
    evaluate_votes = metrics.factorvae_metric(table.represent, layout, table,
                                              np.random.default_rng(metrics.metric_seeds(0)["factorvae"]),
                                              300, 150, n_scale=500)
    assert scored[0][2]["train_votes"] == evaluate_votes["train_votes"]
    assert scored[1][2]["train_votes"] != scored[0][2]["train_votes"]
    assert all(scored[0][2]["active"])
    assert scored[2][2]["active"] == [True, True, True, False]       # the shared unit's std is about 0.20
    by_factor = scored[0][2]["score_by_factor"]
    assert by_factor["scale"] == by_factor["orientation"] == by_factor["posX"] == 1.0
    assert min(by_factor["shape"], by_factor["posY"]) < 0.5          # the shared unit goes to one of them
