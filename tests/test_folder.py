"""Image folders: reading, skipping, the memory-mapped cache, and train / resume / evaluate through the CLI.

Every test builds its own small folder of synthetic 40x50 images (PNG and JPEG,
some odd: 16-bit, palette, alpha, CMYK, an upper-case suffix; some unusable:
garbage bytes, empty, 4x4) and keeps its cache in tmp_path.
"""
import json
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from jointvae import evaluate, train
from jointvae.data import folder
from jointvae.data.folder import FolderError, load_folder
from jointvae.data.imagefiles import read_image

GOOD, BAD = 30, 3   # usable and unusable image files made by make_folder


def make_folder(root, seed=0):
    """Write GOOD usable and BAD unusable image files (and a text file) below root; returns root."""
    rng = np.random.default_rng(seed)
    (root / "a").mkdir(parents=True)
    (root / "b" / "deeper").mkdir(parents=True)

    def picture(mode="RGB"):
        rgb = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))   # 50 wide, 40 high
        return rgb if mode == "RGB" else rgb.convert(mode)

    for i in range(12):
        picture().save(root / "a" / f"{i:02d}.png")
        picture().save(root / "b" / f"{i:02d}.jpg", quality=90)
    picture("L").save(root / "b" / "deeper" / "grey.jpeg")
    picture("P").save(root / "b" / "deeper" / "palette.png")
    picture("RGBA").save(root / "b" / "deeper" / "alpha.png")
    picture("CMYK").save(root / "b" / "deeper" / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 65536, (40, 50), dtype=np.uint16)).save(root / "b" / "deeper" / "sixteen.png")
    picture().save(root / "b" / "UPPER.PNG")
    (root / "a" / "garbage.png").write_bytes(b"\x89PNG but not really")
    (root / "a" / "empty.jpg").write_bytes(b"")
    Image.new("L", (4, 4)).save(root / "a" / "tiny.png")
    (root / "a" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def images_dir(tmp_path):
    return make_folder(tmp_path / "images")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """The cache root, also as $JOINTVAE_DATA for the CLI."""
    monkeypatch.setenv("JOINTVAE_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def cache_files(data_dir):
    return sorted(os.listdir(data_dir / "folders"))


def skipped_line(capsys, skipped=BAD, tried=GOOD + BAD):
    """The one stderr line naming the skipped files since the last read; fails unless there is exactly one."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("skipped ")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"skipped {skipped} of {tried} files (") and lines[0].endswith(")"), lines[0]
    return lines[0]


def load_noting_skipped(capsys, *args, skipped=BAD, tried=GOOD + BAD, **kwargs):
    """load_folder that reads the files: no warning at all, the skipped files named in one plain stderr line."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = load_folder(*args, **kwargs)
    skipped_line(capsys, skipped, tried)
    return images


def load_quietly(*args, **kwargs):
    """load_folder, failing the test on any warning (a cache that is used must raise none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_folder(*args, **kwargs)


def test_reads_every_usable_image_converted_and_names_the_skipped(images_dir, data_dir, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")    # the skipped files are a plain line on stderr, not a warning
        images = load_folder(images_dir, 32, 3, data_dir)
    line = skipped_line(capsys)
    assert "empty.jpg" in line and "garbage.png" in line and "Warning" not in line
    assert isinstance(images, np.memmap) and images.dtype == np.uint8 and images.shape == (GOOD, 3, 32, 32)
    assert not images.flags.writeable
    # sorted file order, each image exactly what imagefiles makes of its file
    np.testing.assert_array_equal(images[0], read_image(images_dir / "a" / "00.png", 32, 3))
    np.testing.assert_array_equal(images[-1], read_image(images_dir / "b" / "deeper" / "sixteen.png", 32, 3))
    grey = load_noting_skipped(capsys, images_dir, 64, 1, data_dir)
    assert grey.shape == (GOOD, 1, 64, 64)
    assert len(cache_files(data_dir)) == 4   # one .npy + .npz per size and channels


def test_cache_is_reused_while_the_folder_is_unchanged(images_dir, data_dir, monkeypatch, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = load_folder(images_dir, 32, 1, data_dir)
    err = capsys.readouterr().err
    assert "reading 33 images" in err and f"skipped {BAD} of {GOOD + BAD} files" in err
    monkeypatch.setattr(folder, "read_images", lambda *a: pytest.fail("read the files again"))
    again = load_quietly(images_dir, 32, 1, data_dir)
    np.testing.assert_array_equal(again, first)
    assert capsys.readouterr().err == ""


def test_a_changed_file_builds_a_new_cache_and_removes_the_old(images_dir, data_dir, capsys):
    before = np.array(load_noting_skipped(capsys, images_dir, 32, 3, data_dir))
    old = cache_files(data_dir)
    Image.new("RGB", (50, 40), (255, 0, 0)).save(images_dir / "a" / "00.png")   # a red image, new size and time
    after = load_noting_skipped(capsys, images_dir, 32, 3, data_dir)
    assert (after[0] == np.array([255, 0, 0], np.uint8)[:, None, None]).all()
    np.testing.assert_array_equal(after[1:], before[1:])
    new = cache_files(data_dir)
    assert len(new) == 2 and not set(new) & set(old)
    # a file added counts too
    Image.new("L", (50, 40), 7).save(images_dir / "b" / "zz.png")
    assert len(load_noting_skipped(capsys, images_dir, 32, 3, data_dir, tried=GOOD + BAD + 1)) == GOOD + 1
    # and so does a new modification time alone (same bytes): the file may have been replaced
    counted = cache_files(data_dir)
    stat = os.stat(images_dir / "b" / "zz.png")
    os.utime(images_dir / "b" / "zz.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load_noting_skipped(capsys, images_dir, 32, 3, data_dir, tried=GOOD + BAD + 1)
    assert cache_files(data_dir) != counted


@pytest.mark.parametrize("damage", ["flip a pixel", "truncate", "garble the record", "delete the images"])
def test_a_damaged_cache_is_rebuilt_never_trusted(images_dir, data_dir, damage, capsys):
    good = np.array(load_noting_skipped(capsys, images_dir, 32, 1, data_dir))
    npy = data_dir / "folders" / next(f for f in cache_files(data_dir) if f.endswith(".npy"))
    record = npy.with_suffix(".npz")
    data = bytearray(npy.read_bytes())
    if damage == "flip a pixel":
        data[-100] ^= 1
        npy.write_bytes(bytes(data))
    elif damage == "truncate":
        npy.write_bytes(bytes(data[:len(data) // 2]))
    elif damage == "garble the record":
        record.write_bytes(b"PK\x03\x04 garbage")
    else:
        npy.unlink()
    with pytest.warns(UserWarning) as caught:
        rebuilt = load_folder(images_dir, 32, 1, data_dir)
    reasons = [str(w.message) for w in caught if "rebuilding the image cache" in str(w.message)]
    assert len(reasons) == 1 and "\n" not in reasons[0], [str(w.message) for w in caught]
    assert len(caught) == 1, [str(w.message) for w in caught]    # the skipped files are no warning...
    skipped_line(capsys)                                          # ...but a line on stderr
    np.testing.assert_array_equal(rebuilt, good)
    load_quietly(images_dir, 32, 1, data_dir)   # and the rebuilt cache is good


def test_empty_or_unusable_folders_and_bad_arguments_are_clear_errors(tmp_path, images_dir, data_dir):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(FolderError, match=r"empty: no image files \(.png, .jpg, .jpeg\)"):
        load_folder(tmp_path / "empty", 32, 1, data_dir)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"nothing")
    (tmp_path / "bad" / "y.jpg").write_bytes(b"")
    with pytest.raises(FolderError, match=r"none of the 2 image files is usable \(skipped 2 of 2 files \(.*x.png"):
        load_folder(tmp_path / "bad", 32, 1, data_dir)
    assert not (data_dir / "folders").exists() or cache_files(data_dir) == []
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_folder(tmp_path / "missing", 32, 1, data_dir)
    with pytest.raises(FolderError, match="channels must be 1 or 3"):
        load_folder(images_dir, 32, 4, data_dir)


def test_train_resume_evaluate_a_folder_through_the_cli(tmp_path, images_dir, data_dir, capsys, monkeypatch):
    out = str(tmp_path / "run")
    assert train.main(["folder", str(images_dir), "--size", "32", "--channels", "1", "--steps", "3",
                       "--batch-size", "16", "--out", out, "--no-pictures"]) == 0
    assert "garbage.png" in skipped_line(capsys, 3, 33)
    spec = json.load(open(os.path.join(out, "specs.json")))
    assert spec["folder"] == str(images_dir) and spec["image_shape"] == [1, 32, 32]
    assert spec["latent_spec"] == {"cont": 32, "disc": [10]}          # the generic spec: CelebA's
    # resume without PATH (the folder is recorded), or with the same one; a different one is refused
    assert train.main(["folder", "--out", out, "--resume", "--steps", "4", "--no-pictures"]) == 0
    monkeypatch.chdir(images_dir.parent)
    assert train.main(["folder", "images", "--out", out, "--resume", "--steps", "5", "--no-pictures"]) == 0
    assert "resuming" in capsys.readouterr().out
    other = make_folder(tmp_path / "other", seed=1)
    with pytest.raises(SystemExit, match=r"was trained on .*images, not .*other"):
        train.main(["folder", str(other), "--out", out, "--resume", "--no-pictures"])
    with pytest.raises(SystemExit, match="drop --size"):
        train.main(["folder", "--out", out, "--resume", "--size", "64"])
    assert json.loads(open(os.path.join(out, "log.jsonl")).readlines()[-1])["step"] == 5

    assert evaluate.main([out]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "folder" and result["folder"] == str(images_dir) and result["images"] == GOOD
    assert result["recon_loss"] > 0 and "discrete_accuracy" not in result
    assert evaluate.main([out, "--folder", str(other), "--samples", "10"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"] == 10
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 1 and skipped[0].startswith(f"skipped {BAD} of {GOOD + BAD} files ("), skipped

    # pictures of a folder run reconstruct images of its own folder (no other data is needed)
    from jointvae.evaluation.pictures import write_all
    written = write_all(out)
    assert os.path.join(out, "reconstructions.png") in written and not os.path.exists(os.path.join(out, "samples.png"))


def test_presets_carry_the_published_specs(images_dir, data_dir, tmp_path, capsys):
    chairs = train.build_trainer(train.parse_args(["chairs", str(images_dir), "--out", str(tmp_path / "c")]))
    assert chairs.model.image_shape == (1, 64, 64) and chairs.spec["latent_spec"] == {"cont": 32, "disc": [2, 2, 2]}
    assert chairs.spec["cont_capacity"] == [0.0, 30.0, 100000, 300.0] and chairs.spec["lr"] == [1e-4]
    assert chairs.spec["disc_capacity"] == [0.0, 5.0, 100000, 300.0] and chairs.spec["batch_size"] == 64
    celeba = train.build_trainer(train.parse_args(["celeba", str(images_dir), "--out", str(tmp_path / "d")]))
    assert celeba.model.image_shape == (3, 64, 64) and celeba.spec["latent_spec"] == {"cont": 32, "disc": [10]}
    assert celeba.spec["cont_capacity"] == [0.0, 50.0, 100000, 100.0] and celeba.spec["lr"] == [5e-4]
    assert celeba.spec["disc_capacity"] == [0.0, 10.0, 100000, 100.0] and celeba.spec["folder"] == str(images_dir)
    capsys.readouterr()
    celeba.load_data()
    skipped_line(capsys)
    assert celeba.images.shape == (GOOD, 3, 64, 64)


@pytest.mark.parametrize("argv, message", [
    (["folder"], "folder needs the image folder"),
    (["celeba", "{missing}"], "no such folder"),
    (["mnist", "{images}"], "mnist takes no PATH"),
    (["chairs", "{images}", "--size", "32"], "--size and --channels go with `folder`"),
    (["folder", "{images}", "--size", "48"], None),                           # argparse: 32 or 64 only
])
def test_cli_refuses_folder_arguments_that_make_no_sense(tmp_path, images_dir, argv, message, capsys):
    argv = [a.format(missing=tmp_path / "missing", images=images_dir) for a in argv] + ["--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as info:
        train.main(argv)
    if message is None:
        assert "invalid choice: 48" in capsys.readouterr().err
    else:
        assert message in str(info.value) and str(info.value).startswith("error: ")


def test_cli_says_when_no_image_is_usable(tmp_path, data_dir):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"nope")
    with pytest.raises(SystemExit, match=r"^error: .*none of the 1 image files is usable"):
        train.main(["folder", str(tmp_path / "bad"), "--steps", "1", "--out", str(tmp_path / "r"), "--no-pictures"])
