"""jointvae.data.imagefiles: every kind of file becomes uint8 (C, size, size), bad ones are named."""
import numpy as np
import pytest
from PIL import Image

from jointvae.data.imagefiles import (IMAGE_SUFFIXES, ImageFileError, describe_skipped, find_images, read_image,
                                 read_images)


def solid(colour, shape=(12, 16)):
    """uint8 (H, W, len(colour)) filled with one colour."""
    return np.tile(np.array(colour, np.uint8), shape + (1,))


def save(path, array, mode=None):
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(path)
    return str(path)


def test_find_images_recurses_ignores_other_suffixes_and_sorts(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    for name in ["b/deep/x.PNG", "a/y.jpg", "z.jpeg", "a/notes.txt", "b/photo.Jpg", "b/c.gif"]:
        (tmp_path / name).write_bytes(b"")
    found = [p.replace(str(tmp_path), "").replace("\\", "/") for p in find_images(tmp_path)]
    assert found == ["/a/y.jpg", "/b/deep/x.PNG", "/b/photo.Jpg", "/z.jpeg"]
    assert ".png" in IMAGE_SUFFIXES


def test_find_images_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        find_images(tmp_path / "missing")
    assert find_images(tmp_path) == []


def test_rgb_png_keeps_a_solid_colour_and_greys_with_pillow_weights(tmp_path):
    path = save(tmp_path / "rgb.png", solid((200, 100, 50)))
    rgb = read_image(path, 8, 3)
    assert rgb.shape == (3, 8, 8) and rgb.dtype == np.uint8
    assert rgb[:, 0, 0].tolist() == [200, 100, 50] and np.all(rgb == rgb[:, :1, :1])
    grey = read_image(path, 8, 1)
    assert grey.shape == (1, 8, 8) and np.all(grey == 124)      # (200*299 + 100*587 + 50*114) / 1000 = 124.2


def test_grey_jpg_becomes_three_equal_channels(tmp_path):
    path = save(tmp_path / "grey.jpg", solid((90,))[..., 0])
    rgb = read_image(path, 10, 3)
    assert rgb.shape == (3, 10, 10)
    assert np.all(rgb[0] == rgb[1]) and np.all(rgb[1] == rgb[2]) and abs(int(rgb[0, 5, 5]) - 90) <= 2


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    pixels = np.full((12, 12), 25600, np.uint16)                 # 25600 * 255 / 65535 = 99.6; clipping gives 255
    pixels[:, 6:] = 65535
    path = save(tmp_path / "deep.png", pixels)
    out = read_image(path, 12, 1)
    assert out[0, 0, 0] == 100 and out[0, 0, -1] == 255


def test_palette_png_becomes_its_colours(tmp_path):
    image = Image.new("P", (16, 12))                             # every pixel index 0
    image.putpalette([10, 200, 30] + [0] * 765)
    image.save(tmp_path / "palette.png")
    path = str(tmp_path / "palette.png")
    assert Image.open(path).mode == "P"
    assert read_image(path, 8, 3)[:, 4, 4].tolist() == [10, 200, 30]


def test_alpha_is_composited_onto_white(tmp_path):
    rgba = solid((0, 0, 0, 255))
    rgba[:, 8:, 3] = 0                                           # right half transparent
    rgba[:6, :8, 3] = 128                                        # top-left quarter half transparent
    path = save(tmp_path / "rgba.png", rgba)
    out = read_image(path, 12, 3)                                # the middle 12x12 of 12x16: columns 2..13
    assert out[:, 9, 0].tolist() == [0, 0, 0]                    # opaque black stays black
    assert out[:, 9, 11].tolist() == [255, 255, 255]             # transparent becomes white
    assert out[:, 0, 0].tolist() == [127, 127, 127]              # 255 * (1 - 128/255)


def test_grey_with_alpha(tmp_path):
    la = np.zeros((10, 10, 2), np.uint8)                         # black, fully transparent
    path = save(tmp_path / "la.png", la)
    assert Image.open(path).mode == "LA"
    assert np.all(read_image(path, 10, 1) == 255)


def test_cmyk_jpg_becomes_rgb(tmp_path):
    path = save(tmp_path / "cmyk.jpg", solid((255, 0, 0)), mode="CMYK")
    assert Image.open(path).mode == "CMYK"
    red = read_image(path, 8, 3)[:, 4, 4].astype(int)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15        # 4 channels read as RGBA would be cyan-ish


def test_one_bit_png_is_0_or_255(tmp_path):
    bits = np.zeros((10, 10), bool)
    bits[:, 5:] = True
    path = save(tmp_path / "bits.png", bits)
    assert Image.open(path).mode == "1"
    out = read_image(path, 10, 1)
    assert out[0, 0, 0] == 0 and out[0, 0, 9] == 255


def test_centre_crop_takes_the_middle_square(tmp_path):
    wide = np.zeros((10, 30), np.uint8)
    wide[:, 10:20] = 255                                         # only the middle third is white
    assert np.all(read_image(save(tmp_path / "wide.png", wide), 10, 1) == 255)
    tall = np.zeros((30, 10), np.uint8)
    tall[10:20] = 255
    assert np.all(read_image(save(tmp_path / "tall.png", tall), 10, 1) == 255)


def test_resize_is_bilinear_on_uint8(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    out = read_image(save(tmp_path / "noise.png", pixels), 16, 1)
    expected = np.asarray(Image.fromarray(pixels).resize((16, 16), Image.Resampling.BILINEAR))
    assert out.shape == (1, 16, 16) and np.array_equal(out[0], expected)
    nearest = np.asarray(Image.fromarray(pixels).resize((16, 16), Image.Resampling.NEAREST))
    assert not np.array_equal(out[0], nearest)


def test_too_small_corrupt_and_not_an_image_are_image_file_errors(tmp_path):
    tiny = save(tmp_path / "tiny.png", solid((1, 2, 3), (4, 4)))
    with pytest.raises(ImageFileError, match=r"tiny\.png: too small \(4x4"):
        read_image(tiny, 32, 1)
    good = save(tmp_path / "good.png", solid((5, 5, 5), (64, 64)))
    (tmp_path / "cut.png").write_bytes(open(good, "rb").read()[:80])
    with pytest.raises(ImageFileError, match=r"cut\.png: cannot read"):
        read_image(str(tmp_path / "cut.png"), 32, 1)
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ValueError, match=r"text\.jpg: cannot read"):
        read_image(str(tmp_path / "text.jpg"), 32, 1)


def test_bad_arguments(tmp_path):
    path = save(tmp_path / "ok.png", solid((1, 2, 3)))
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        read_image(path, 8, 4)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        read_image(path, 0, 1)


def test_read_images_collects_the_bad_ones(tmp_path):
    (tmp_path / "sub").mkdir()
    save(tmp_path / "a.png", solid((10, 20, 30)))
    save(tmp_path / "sub" / "B.PNG", solid((40,))[..., 0])
    save(tmp_path / "c.png", solid((0, 0, 0), (3, 20)))
    (tmp_path / "d.jpeg").write_bytes(b"\xff\xd8garbage")
    (tmp_path / "readme.txt").write_text("ignored")
    paths = find_images(tmp_path)
    assert len(paths) == 4
    images, skipped = read_images(paths, 16, 3)
    assert images.shape == (2, 3, 16, 16) and images.dtype == np.uint8
    assert images[0, :, 0, 0].tolist() == [10, 20, 30] and np.all(images[1] == 40)
    assert [p for p, _ in skipped] == [str(tmp_path / "c.png"), str(tmp_path / "d.jpeg")]
    assert "too small" in skipped[0][1] and "cannot read" in skipped[1][1]
    line = describe_skipped(skipped, first=1, total=len(paths))
    assert line.startswith("skipped 2 of 4 files (") and "c.png: too small" in line
    assert line.endswith("; and 1 more)") and "\n" not in line


def test_read_images_of_nothing_and_describe_nothing():
    images, skipped = read_images([], 32, 1)
    assert images.shape == (0, 1, 32, 32) and skipped == []
    assert describe_skipped([]) == ""
    assert describe_skipped([("x.png", "too small")]) == "skipped 1 file (x.png: too small)"
