"""dSprites end to end: training each model a few steps, evaluating with the metrics, the comparison table."""
import json
import os

import numpy as np
import pytest

from jointvae import evaluate, experiments, load_model
from jointvae.evaluation import metrics, scores

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference_models", "dsprites")


class TinyFactors:
    """Two factors, 'images' of 2 pixels that show them (enough for a code table)."""
    factor_names = ("a", "b")
    factor_sizes = (2, 3)

    def __len__(self):
        return 6

    def flat_index(self, factors):
        return factors[:, 0] * 3 + factors[:, 1]

    def sample_factors(self, n, rng, fixed=None):
        f = np.stack([rng.integers(0, k, n) for k in self.factor_sizes], axis=1)
        for k, v in (fixed or {}).items():
            f[:, k] = v
        return f

    def images(self, factors):
        return factors.astype(np.float64)

    def __getitem__(self, flat):
        return np.stack([flat // 3, flat % 3], axis=1).astype(np.float64)


def test_code_table_gives_the_same_scores_as_encoding_every_image():
    data = TinyFactors()
    encoded = []

    def represent(images):
        encoded.append(len(images))
        return images * np.array([2.0, -1.0]) + 0.5

    layout = {"cont": 2, "disc": []}
    direct = metrics.all_metrics(represent, layout, data, 7, n_train=40, n_eval=20, n_mig=100, n_scale=100)
    table = scores.CodeTable(data, represent)
    assert sum(encoded[-1:]) == 6                      # the table encoded each grid image once
    via_table = metrics.all_metrics(table.represent, layout, table, 7, n_train=40, n_eval=20, n_mig=100, n_scale=100)
    for name in ("factorvae", "betavae", "mig"):
        assert via_table[name]["score"] == direct[name]["score"], name


@pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="needs ../shared/reference_models/dsprites")
def test_evaluate_cli_scores_the_published_dsprites_model(capsys):
    assert evaluate.main([REFERENCE, "--votes", "8", "4", "--samples", "128"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "dsprites" and result["images"] == 128
    for name in ("factorvae", "betavae", "mig"):
        assert 0.0 <= result[name] <= 1.0
    assert result["votes"] == {"train": 8, "eval": 4}
    assert len(result["confusion_matrix"]) == 3 and len(result["confusion_matrix"][0]) == 3   # disc [3] vs 3 shapes
    assert result["recon_loss"] < 100   # the published model reconstructs generated sprites (a blank guess: ~300+)
    quiet = result["factorvae_quiet_votes"]
    kl = {u["unit"]: u["kl"] for u in result["kl_per_unit_ranked"]}
    assert quiet["under_kl"] == scores.QUIET_KL
    assert (quiet["share"], quiet["units"]) == scores.quiet_unit_votes(result["metrics"]["factorvae"], kl)


@pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="needs ../shared/reference_models/dsprites")
def test_evaluate_warns_when_quiet_units_take_the_votes(capsys, monkeypatch):
    monkeypatch.setattr(scores, "quiet_unit_votes", lambda factorvae, kl: (0.68, ["cont.3", "cont.8"]))
    assert evaluate.main([REFERENCE, "--votes", "8", "4", "--samples", "64"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["factorvae_quiet_votes"]["units"] == ["cont.3", "cont.8"]
    assert "warning: units of under 0.1 nats (cont.3, cont.8) won 68% of the FactorVAE metric's" in captured.err
    monkeypatch.setattr(scores, "quiet_unit_votes", lambda factorvae, kl: (0.2, ["cont.3"]))
    assert evaluate.main([REFERENCE, "--votes", "8", "4", "--samples", "64"]) == 0
    assert "warning" not in capsys.readouterr().err                  # under a quarter of the votes: no warning


def test_quiet_unit_votes_counts_the_training_votes_of_units_under_the_kl():
    factorvae = {"units": ["cont.0", "cont.1", "cont.2", "disc.0"],
                 "train_votes": [[10, 0, 5, 0], [0, 20, 5, 0]]}                 # (factors, units)
    kl = {"cont.0": 2.0, "cont.1": 0.05, "cont.2": 0.001, "disc.0": 0.0}
    assert scores.quiet_unit_votes(factorvae, kl) == (0.75, ["cont.1", "cont.2"])   # disc.0 won nothing
    assert scores.quiet_unit_votes(factorvae, kl, quiet=0.01) == (0.25, ["cont.2"])
    assert scores.quiet_unit_votes(factorvae, {}) == (0.0, [])                 # no KL known: no unit is quiet
    assert scores.quiet_unit_votes({"units": ["cont.0"]}, kl) == (0.0, [])     # every unit pruned: no votes


def test_experiment_trains_scores_and_appends_a_table(tmp_path, capsys):
    results_md = tmp_path / "results.md"
    results_md.write_text("# Results\n")
    argv = ["dsprites-compare", "--seeds", "1", "--steps", "2", "--models", "betavae", "factorvae",
            "--votes", "8", "4", "--samples", "64", "--out", str(tmp_path / "runs"), "--results", str(results_md)]
    assert experiments.main(argv) == 0
    text = results_md.read_text()
    assert text.startswith("# Results\n") and "### dSprites comparison" in text
    assert "| betavae | 0 |" in text and "| factorvae | 0 |" in text and "mean ± sd (1)" in text
    saved = json.loads((tmp_path / "runs" / "factorvae-seed0" / "eval.json").read_text())
    assert saved["steps"] == 2 and "tc" in json.loads((tmp_path / "runs" / "factorvae-seed0" / "log.jsonl")
                                                    .read_text().splitlines()[-1])
    model = load_model(str(tmp_path / "runs" / "betavae-seed0"))
    assert model.latent_spec == {"cont": 10, "disc": []}
    # A second call reuses the finished runs: nothing is trained or scored again.
    capsys.readouterr()
    assert experiments.main(argv) == 0
    out = capsys.readouterr().out
    assert ": training steps" not in out and ": scoring" not in out
    assert results_md.read_text().count("### dSprites") == 2


def test_train_cli_trains_a_dsprites_model_and_resumes_it(tmp_path, capsys):
    from jointvae import train
    out = str(tmp_path / "run")
    assert train.main(["dsprites", "--model", "betavae", "--steps", "1", "--out", out, "--no-pictures"]) == 0
    assert json.loads((tmp_path / "run" / "specs.json").read_text())["model"] == "betavae"
    with pytest.raises(SystemExit, match="holds a betavae run, not factorvae"):
        train.main(["dsprites", "--model", "factorvae", "--out", out, "--resume"])
    assert train.main(["dsprites", "--model", "betavae", "--steps", "2", "--out", out, "--resume", "--no-pictures"]) == 0
    assert "resuming" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no preset for --model factorvae on mnist"):
        train.main(["mnist", "--model", "factorvae", "--out", str(tmp_path / "x")])


def test_the_sweep_reports_ask_for_the_fields_evaluate_writes(tmp_path, capsys):
    """collect's default fields and export's columns are names in evaluate's JSON for a dSprites model with a
    discrete latent (a sweep that asked for another name would find no run to report)."""
    from jointvae import JointVAE, save_model
    from jointvae.sweeps.collect import DEFAULT_FIELDS
    from jointvae.sweeps.export import SHOWN_FIELDS
    model = JointVAE((1, 64, 64), {"cont": 2, "disc": [3]}, rng=np.random.default_rng(0))
    save_model(tmp_path, model, {"dataset": "dsprites", "latent_spec": {"cont": 2, "disc": [3]},
                                 "cont_capacity": [0.0, 5.0, 100, 30.0], "disc_capacity": [0.0, 1.1, 100, 30.0]})
    assert evaluate.main([str(tmp_path), "--votes", "4", "2", "--samples", "64"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(DEFAULT_FIELDS) <= set(result) and set(SHOWN_FIELDS) <= set(result), sorted(result)
    assert {"kl_cont", "kl_disc", "kl_total", "kl_per_unit_ranked"} <= set(result)
