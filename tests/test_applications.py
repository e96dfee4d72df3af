"""edit, infer and data-free visualize on small randomly initialised models saved with save_model."""
import csv
import os

import imageio.v2 as imageio
import numpy as np
import pytest

from jointvae import JointVAE, data, edit, infer, load_model, save_model, visualize
from jointvae.data.imagefiles import read_image
from jointvae.evaluation import inspection, pictures

SPEC = {"latent_spec": {"cont": 3, "disc": [4]}, "cont_capacity": [0.0, 5.0, 1000, 30.0],
        "disc_capacity": [0.0, 5.0, 1000, 30.0]}


def small_model(shape=(1, 32, 32), latent_spec=None, seed=0):
    return JointVAE(shape, latent_spec or SPEC["latent_spec"], rng=np.random.default_rng(seed))


@pytest.fixture
def model_dir(tmp_path):
    folder = str(tmp_path / "model")
    save_model(folder, small_model(), dict(SPEC))
    return folder


def blobs(n, seed=0, size=32):
    """n uint8 (size, size) pictures: a bright square of varying size and place on black."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, size, size), np.uint8)
    for img in out:
        side, y, x = rng.integers(6, 16), rng.integers(0, 16), rng.integers(0, 16)
        img[y:y + side, x:x + side] = rng.integers(120, 256)
    return out


def eval_code(model, image):
    """The eval-mode code of one uint8 (C, H, W) image, written out: means, then one-hot argmax."""
    dist = model.encode(data.to_float(image[None]))
    alpha = dist["disc"][0]
    return np.concatenate([dist["cont"][0], np.eye(alpha.shape[1], dtype=np.float32)[alpha.argmax(1)]], axis=1)


# ---------------------------------------------------------------- edit


def test_edit_strip_is_input_reconstruction_then_one_decode_per_value():
    model = small_model()
    image = blobs(1)[0][None]
    values = [-3.0, -1.0, 0.0, 1.0, 3.0]
    strip = inspection.edit_strip(model, image, values, unit=1)
    assert strip.shape == (2 + len(values), 1, 32, 32) and strip.dtype == np.float32
    assert np.array_equal(strip[0], data.to_float(image))
    x = data.to_float(image[None])
    np.testing.assert_allclose(strip[1], model.reconstruct(x)[0], atol=1e-6)   # batched BLAS: last-bit noise
    z = eval_code(model, image)
    for i, v in enumerate(values):
        zi = z.copy()
        zi[0, 1] = v
        np.testing.assert_allclose(strip[2 + i], model.decode(zi)[0], atol=1e-6)


def test_setting_a_unit_moves_the_picture_further_the_further_it_goes():
    model = small_model()
    image = blobs(1, seed=3)[0][None]
    mean = eval_code(model, image)[0, 0]
    steps = np.array([0.0, 2.0, 5.0, 10.0, 20.0])
    strip = inspection.edit_strip(model, image, mean + steps, unit=0)
    moved = np.abs(strip[2:] - strip[1]).mean(axis=(1, 2, 3))
    assert moved[0] < 1e-6                       # the image's own value gives its reconstruction back
    assert np.all(np.diff(moved) > 0), moved     # and the change grows with the distance


def test_edit_discrete_latent_sets_each_category():
    model = small_model()
    image = blobs(1, seed=1)[0][None]
    strip = inspection.edit_strip(model, image, [0, 1, 2, 3], disc=0)
    own = int(eval_code(model, image)[0, 3:].argmax())
    np.testing.assert_allclose(strip[2 + own], strip[1], atol=1e-6)
    others = [strip[2 + k] for k in range(4) if k != own]
    assert all(np.abs(o - strip[1]).max() > 1e-4 for o in others)
    codes = inspection.edit_codes(model, np.zeros(7, np.float32), [2, 0], disc=0)
    assert codes[:, 3:].tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]


@pytest.mark.parametrize("kwargs, values, message", [
    ({"unit": 3}, [0.0], "unit 3 is out of range: the model has 3 continuous units"),
    ({"disc": 1}, [0], "disc 1 is out of range: the model has 1 discrete latents"),
    ({"disc": 0}, [4], "values must be integers 0..3, got \\[4\\]"),
    ({"disc": 0}, [1.5], "values must be integers 0..3"),
    ({"unit": 0}, [float("nan")], "must be finite numbers"),
    ({}, [0.0], "exactly one"),
])
def test_edit_codes_rejects_what_the_model_does_not_have(kwargs, values, message):
    with pytest.raises(ValueError, match=message):
        inspection.edit_codes(small_model(), np.zeros(7, np.float32), values, **kwargs)


def test_edit_cli_writes_a_strip_png(model_dir, tmp_path, monkeypatch):
    imageio.imwrite(tmp_path / "digit.png", blobs(1, size=40)[0])
    monkeypatch.chdir(tmp_path)
    assert edit.main([model_dir, "digit.png", "--unit", "2", "--values=-2,0,2.5"]) == 0
    strip = imageio.imread(tmp_path / "edit_digit_unit2.png")
    assert strip.shape == (32 + 4, 5 * 34 + 2)                  # input, reconstruction, 3 values; 2px gaps
    expected = inspection.edit_strip(load_model(model_dir), read_image("digit.png", 32, 1), [-2, 0, 2.5], unit=2)
    assert np.array_equal(strip, pictures.tile(expected[None]))
    assert edit.main([model_dir, "digit.png", "--disc", "0", "--out", "d.png"]) == 0
    assert imageio.imread(tmp_path / "d.png").shape == (36, 6 * 34 + 2)   # default: all 4 categories


@pytest.mark.parametrize("args, message", [
    (["--unit", "7", "--values", "1"], "error: unit 7 is out of range"),
    (["--unit", "0", "--values", "1,abc"], "error: --values: 'abc' is not a number"),
    (["--disc", "0", "--values", "0,9"], "error: discrete latent 0 has 4 categories"),
    (["--disc", "0", "--values", "0.5"], "error: --values: '0.5' is not an integer category"),
    (["--unit", "0", "--out", "x.png"], "cannot read"),   # IMAGE is a text file
])
def test_edit_cli_errors_are_one_line(model_dir, tmp_path, args, message):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(SystemExit) as e:
        edit.main([model_dir, str(tmp_path / "notes.png"), *args])
    assert message in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------- infer


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for i, picture in enumerate(blobs(7, seed=5)):
        imageio.imwrite(folder / ("sub" if i % 2 else "") / f"img{i}.png", picture)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (folder / "readme.txt").write_text("ignored")
    return folder


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_infer_writes_each_images_unit_mean(model_dir, image_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert infer.main([model_dir, str(image_folder), "--unit", "1", "--batch-size", "3"]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 of 8 files" in captured.err and "broken.jpg" in captured.err
    assert "wrote infer_unit1.csv: 7 images" in captured.out
    rows = read_csv(tmp_path / "infer_unit1.csv")
    assert [r["path"] for r in rows] == ["img0.png", "img2.png", "img4.png", "img6.png",
                                         "sub/img1.png", "sub/img3.png", "sub/img5.png"]
    model = load_model(model_dir)
    for r in rows:
        mean = eval_code(model, read_image(image_folder / r["path"], 32, 1))[0, 1]
        assert float(r["value"]) == pytest.approx(mean, rel=1e-5, abs=1e-6)


def test_infer_discrete_category(model_dir, image_folder, tmp_path):
    out = tmp_path / "cats.csv"
    assert infer.main([model_dir, str(image_folder), "--disc", "0", "--out", str(out)]) == 0
    model = load_model(model_dir)
    for r in read_csv(out):
        assert int(r["value"]) == eval_code(model, read_image(image_folder / r["path"], 32, 1))[0, 3:].argmax()


def test_infer_correlates_with_labels(model_dir, image_folder, tmp_path, capsys):
    out = tmp_path / "values.csv"
    infer.main([model_dir, str(image_folder), "--unit", "0", "--out", str(out)])
    rows = read_csv(out)
    labels = tmp_path / "labels.csv"
    v = np.array([float(r["value"]) for r in rows[:5]])
    u = (v - v.mean()) / v.std()
    with open(labels, "w") as f:                # a decreasing, non-linear function of the value, 5 of 7 images
        f.write("path,label\n" + "".join(f"./{r['path']},{-(x ** 3):.9g}\n" for r, x in zip(rows, u)))
        f.write("sub/not_there.png,1\n")
    capsys.readouterr()
    assert infer.main([model_dir, str(image_folder), "--unit", "0", "--out", str(out), "--labels", str(labels)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("labels: 5 of 7 images matched (6 labelled paths); pearson -0.")
    assert line.endswith("spearman -1.0000")
    assert "pearson -1.0000" not in line       # not linear, so Pearson is not exactly -1


def test_ranks_and_correlations_by_hand():
    assert inspection.ranks(np.array([3.0, 1.0, 2.0, 2.0])).tolist() == [4.0, 1.0, 2.5, 2.5]
    pearson, spearman = inspection.correlations([1, 2, 3, 4], [1, 4, 9, 100])
    assert spearman == pytest.approx(1.0)
    assert pearson == pytest.approx(151 / np.sqrt(5 * 6849))   # sum dx dy / sqrt(sum dx^2 sum dy^2)
    assert np.isnan(inspection.correlations([1, 1, 1], [1, 2, 3])[0])


@pytest.mark.parametrize("setup, args, message", [
    ("missing", [], "no such folder"),
    ("empty", [], "no .png, .jpg or .jpeg files below it"),
    ("only_broken", [], "none of the 1 image files could be read"),
    ("images", ["--labels", "{tmp}/nope.csv"], "nope.csv: no such file"),
    ("images", ["--labels", "{tmp}/bad_header.csv"], "must name the columns 'path' and 'label'"),
    ("images", ["--labels", "{tmp}/bad_label.csv"], "line 3: label 'seven' is not a number"),
    ("images", ["--labels", "{tmp}/twice.csv"], "a.png is labelled twice"),
    ("images", ["--unit", "5"], "unit 5 is out of range"),
])
def test_infer_errors_are_one_line(model_dir, tmp_path, setup, args, message):
    folder = tmp_path / setup
    if setup != "missing":
        folder.mkdir()
    if setup == "only_broken":
        (folder / "x.png").write_text("no")
    if setup == "images":
        imageio.imwrite(folder / "a.png", blobs(1)[0])
    (tmp_path / "bad_header.csv").write_text("file,label\na.png,1\n")
    (tmp_path / "bad_label.csv").write_text("path,label\na.png,1\nb.png,seven\n")
    (tmp_path / "twice.csv").write_text("path,label\na.png,1\n./a.png,2\n")
    which = [] if "--unit" in args else ["--unit", "0"]
    with pytest.raises(SystemExit) as e:
        infer.main([model_dir, str(folder), *which, *[a.format(tmp=tmp_path) for a in args],
                    "--out", str(tmp_path / "o.csv")])
    assert str(e.value).startswith("error: ") and message in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------- visualize without data


def rgb_model():
    return small_model((3, 64, 64), {"cont": 3, "disc": [2]}, seed=1)


def test_units_ranked_by_their_effect_on_the_picture():
    model = rgb_model()
    w = model.params["latent_to_features.0.weight"]      # (256, latent): column j carries unit j
    w[:, 1] = 0                                         # unit 1 is ignored by the decoder
    w[:, 2] *= 20                                       # unit 2 dominates
    order, effect = pictures.continuous_units_by_effect(model, np.random.default_rng(0))
    assert order == [2, 0, 1] and effect[2] > effect[0] > 100 * effect[1]


def test_traversal_from_an_image_keeps_the_image_and_sweeps_one_unit_a_row():
    model = rgb_model()
    w = model.params["latent_to_features.0.weight"]      # (256, latent): column j carries unit j
    w[:, 0] *= 200                                      # unit 0 changes the picture visibly
    w[:, 1] = 0                                         # unit 1 is ignored by the decoder
    image = (np.random.default_rng(0).random((3, 64, 64)) * 255).astype(np.uint8)
    picture = pictures.traversal_from_image(model, image, [0, 1])
    assert picture.shape == (2 * 66 + 2, 12 * 66 + 2, 3)       # 2 units x (image, reconstruction, 10 values)
    tiles = picture[2:, 2:].reshape(2, 66, 12, 66, 3)[:, :64, :, :64]     # (unit, y, column, x, rgb)
    assert np.array_equal(tiles[0, :, 0], image.transpose(1, 2, 0))      # column 0 is the image itself
    assert np.array_equal(tiles[0, :, 1], tiles[1, :, 1])                # then the same reconstruction
    swept, ignored = tiles[0, :, 2:].astype(int), tiles[1, :, 2:].astype(int)
    assert np.abs(swept[:, -1] - swept[:, 0]).max() > 20                 # unit 0 changes the picture
    assert np.abs(ignored - tiles[1, :, 1:2]).max() <= 1                 # unit 1 leaves it as reconstructed


def test_visualize_an_rgb_model_without_data(tmp_path):
    model = rgb_model()
    model.params["latent_to_features.0.weight"][:, 0] = 0
    folder = str(tmp_path / "celeba-like")
    save_model(folder, model, {**SPEC, "latent_spec": model.latent_spec, "dataset": "celeba"})
    pics = str(tmp_path / "pics")
    assert visualize.main([folder, "--units", "2", "--out", pics]) == 0
    assert sorted(os.listdir(folder)) == ["specs.json", "weights.npz"]      # the model folder is input only
    names = sorted(os.listdir(pics))
    assert names == ["samples.png", "samples_disc0.png", "traversal.gif", "traversal_cont.png", "traversal_disc.png"]
    samples = imageio.imread(os.path.join(pics, "samples.png"))
    assert samples.shape == (4 * 66 + 2, 10 * 66 + 2, 3)       # RGB, 4 rows of 10 prior samples
    assert samples[2:66, 2:66].std() > 0
    traversal = imageio.imread(os.path.join(pics, "traversal_cont.png"))
    assert traversal.shape == (2 * 66 + 2, 10 * 66 + 2, 3)     # --units 2: the two units that matter
    loaded = load_model(folder)
    order, _ = pictures.continuous_units_by_effect(loaded, np.random.default_rng(0))
    assert order[-1] == 0                                       # the unit the decoder ignores comes last
    assert np.array_equal(traversal, pictures.continuous_traversal(loaded, order[:2]))
