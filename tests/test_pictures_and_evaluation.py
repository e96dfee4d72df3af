"""The scores' accuracy and the pictures, on the published weights (no dataset needed)."""
import os

import imageio.v2 as imageio
import numpy as np
import pytest

from jointvae import load_model
from jointvae.evaluation.inspection import traversal_values
from jointvae.evaluation.pictures import tile, write_all
from jointvae.evaluation.scores import discrete_accuracy, score_images

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference_models")
needs_reference = pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="../shared/reference_models not present")


def test_discrete_accuracy_maps_each_category_to_its_majority_label():
    categories = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    labels = np.array([3, 3, 1, 5, 5, 3, 3, 0])
    acc, mapping, confusion = discrete_accuracy(categories, labels, num_categories=3)
    assert mapping.tolist() == [3, 5, 3]          # two categories may share a label
    assert acc == pytest.approx(6 / 8)
    assert confusion.sum() == 8 and confusion[0, 3] == 2


def test_traversal_spans_the_prior_from_5_to_95_percent():
    v = traversal_values(10)
    assert v[0] == pytest.approx(-1.6448536, abs=1e-6) and v[-1] == pytest.approx(1.6448536, abs=1e-6)
    assert np.all(np.diff(v) > 0)


def test_tile_lays_out_rows_and_columns():
    pic = tile(np.zeros((2, 3, 1, 4, 5), np.float32), pad=1)
    assert pic.shape == (2 * 5 + 1, 3 * 6 + 1) and pic.dtype == np.uint8


@needs_reference
def test_pictures_of_a_published_model(tmp_path):
    model = load_model(os.path.join(REFERENCE, "dsprites"))
    paths = write_all(str(tmp_path), model=model)
    names = sorted(os.path.basename(p) for p in paths)
    assert names == ["reconstructions.png", "samples_disc0.png", "traversal.gif", "traversal_cont.png",
                     "traversal_disc.png", "traversal_from_image.png"]
    traversal = imageio.imread(tmp_path / "traversal_cont.png")
    assert traversal.shape == (6 * 66 + 2, 10 * 66 + 2)      # 6 units x 10 steps of 64x64, 2px gaps
    assert traversal.std() > 10                             # not blank


@needs_reference
def test_evaluate_reports_ranked_units_and_accuracy():
    model = load_model(os.path.join(REFERENCE, "mnist"))
    rng = np.random.default_rng(0)
    images = (rng.random((40, 1, 32, 32)) * 255).astype(np.uint8)
    result = score_images(model, images, rng.integers(0, 10, 40))
    kls = [u["kl"] for u in result["kl_per_unit_ranked"]]
    assert kls == sorted(kls, reverse=True) and len(kls) == 11
    assert result["kl_total"] == pytest.approx(sum(kls))
    assert 0 <= result["discrete_accuracy"] <= 1 and np.sum(result["confusion_matrix"]) == 40
