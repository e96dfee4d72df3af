"""The procedural dSprites: grid and indices, what the drawings look like, sampling, the
original-archive reader (on tiny fake archives) and the cache (on a shrunken grid).

Nothing here needs the original data or the network; the whole file runs in seconds.
"""
import os
import shutil
import time
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jointvae.data import dsprites
from jointvae.data.dsprites import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    FACTOR_VALUES,
    NUM_IMAGES,
    DSprites,
    DSpritesError,
    factors_of,
    flat_index,
    render,
    render_values,
    sample_factors,
)

SQUARE, ELLIPSE, HEART = 0, 1, 2


@pytest.fixture(autouse=True)
def no_user_data(monkeypatch, tmp_path):
    """A user's own archive or cache must not change what these tests see."""
    monkeypatch.delenv(dsprites.ENV_ARCHIVE, raising=False)
    monkeypatch.setenv("JOINTVAE_DATA", str(tmp_path / "data"))


def factor_rows(**columns):
    """Factor rows from keyword columns (scalars broadcast): factor_rows(shape=2, posX=range(32))."""
    n = max((len(v) for v in columns.values() if np.ndim(v)), default=1)
    defaults = dict(shape=0, scale=5, orientation=0, posX=15, posY=15)
    defaults.update(columns)
    return np.stack([np.broadcast_to(np.asarray(defaults[name]), (n,)) for name in FACTOR_NAMES], axis=1)


def centroid(image):
    """(row, col) centre of mass of the white pixels of one (1, 64, 64) image."""
    rows, cols = np.nonzero(image[0])
    return rows.mean(), cols.mean()


def box_centre(image):
    """(row, col) centre of the bounding box of the white pixels of one (1, 64, 64) image."""
    rows, cols = np.nonzero(image[0])
    return (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2


def one_line(excinfo):
    return "\n" not in str(excinfo.value) and str(excinfo.value) != ""


# --------------------------------------------------------------------------
# Grid and indices
# --------------------------------------------------------------------------

def test_grid_is_the_original_archives():
    assert FACTOR_SIZES == (3, 6, 40, 32, 32) and int(np.prod(FACTOR_SIZES)) == NUM_IMAGES == 737280
    assert [len(v) for v in FACTOR_VALUES] == list(FACTOR_SIZES)
    assert FACTOR_VALUES[0].tolist() == [1.0, 2.0, 3.0]
    assert FACTOR_VALUES[1][0] == 0.5 and FACTOR_VALUES[1][-1] == 1.0
    assert np.allclose(np.diff(FACTOR_VALUES[1]), 0.1)
    assert FACTOR_VALUES[2][0] == 0 and FACTOR_VALUES[2][-1] == 2 * np.pi  # endpoint included
    assert np.allclose(np.diff(FACTOR_VALUES[2]), 2 * np.pi / 39)
    for k in (3, 4):
        assert np.allclose(FACTOR_VALUES[k], np.arange(32) / 31)
    ds = DSprites()
    assert len(ds) == 737280 and ds.shape == (737280, 1, 64, 64) and ds.dtype == np.uint8
    assert ds.factor_names == FACTOR_NAMES and ds.factor_sizes == FACTOR_SIZES


def test_flat_index_of_known_rows():
    rows = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0],
                     [0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [2, 5, 39, 31, 31]])
    assert flat_index(rows).tolist() == [0, 1, 32, 1024, 40960, 245760, 737279]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*(st.integers(0, k - 1) for k in FACTOR_SIZES)), min_size=1, max_size=20))
def test_flat_index_round_trip_against_the_formula(rows):
    factors = np.array(rows, dtype=np.int64)
    expected = [s * 245760 + c * 40960 + o * 1024 + x * 32 + y for s, c, o, x, y in rows]
    assert flat_index(factors).tolist() == expected
    assert np.array_equal(factors_of(np.array(expected)), factors)
    ds = DSprites()
    assert np.array_equal(ds.factors_of(ds.flat_index(factors)), factors)
    values = ds.factor_values(factors)
    assert np.allclose(values[:, 3], factors[:, 3] / 31) and np.array_equal(values[:, 0], factors[:, 0] + 1)


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------

def test_images_are_binary_uint8_and_index_like_an_array():
    ds = DSprites()
    factors = sample_factors(300, np.random.default_rng(0))
    x = ds.images(factors)
    assert x.shape == (300, 1, 64, 64) and x.dtype == np.uint8
    assert set(np.unique(x).tolist()) == {0, 255}
    assert (x.reshape(300, -1).max(axis=1) == 255).all()           # every image shows its sprite
    flat = flat_index(factors)
    assert np.array_equal(ds[flat], x)
    assert np.array_equal(ds[int(flat[7])], x[7]) and ds[int(flat[7])].shape == (1, 64, 64)
    assert np.array_equal(ds[-1], ds[np.array([NUM_IMAGES - 1])][0])
    assert np.array_equal(ds[10:40:10], ds[np.array([10, 20, 30])]) and np.array_equal(ds[[10, 20]], ds[10:30:10])
    images, labels = dsprites.load_dsprites()
    assert labels.shape == (NUM_IMAGES,) and np.array_equal(labels[flat], factors[:, 0])


def test_rendering_is_deterministic_and_each_image_depends_only_on_its_factors():
    factors = sample_factors(700, np.random.default_rng(1))    # more than one chunk, shapes mixed
    x = render(factors)
    assert np.array_equal(render(factors), x)
    alone = np.concatenate([render(factors[i:i + 1]) for i in (0, 299, 555)])
    assert np.array_equal(alone, x[[0, 299, 555]])
    order = np.random.default_rng(2).permutation(700)
    assert np.array_equal(render(factors[order]), x[order])


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, HEART])
@pytest.mark.parametrize("orientation", [0, 13])
def test_posx_moves_the_sprite_right_and_posy_moves_it_down(shape, orientation):
    for axis, factor in ((1, "posX"), (0, "posY")):            # axis of (row, col): posX -> columns
        x = render(factor_rows(shape=shape, orientation=orientation, **{factor: np.arange(32)}))
        c = np.array([centroid(image) for image in x])
        moving, still = c[:, axis], c[:, 1 - axis]
        assert (np.diff(moving) > 0).sum() >= 28 and (np.diff(moving) >= 0).all(), factor
        assert moving[-1] - moving[0] == pytest.approx(dsprites.LOOK.span, abs=1.0)
        assert np.ptp(still) < 0.75, factor
    # The range is centred near the frame's middle: positions 0 and 1 lie equally far from
    # centre_x, centre_y (pixel index = coordinate - 0.5), both within a pixel of 32.
    look = dsprites.LOOK
    assert abs(look.centre_x - 32) <= 1 and abs(look.centre_y - 32) <= 1
    x = render(factor_rows(shape=shape, posX=[0, 31], posY=[0, 31]))
    (r0, c0), (r1, c1) = box_centre(x[0]), box_centre(x[1])
    assert (r0 + r1) / 2 == pytest.approx(look.centre_y - 0.5, abs=0.5)
    assert (c0 + c1) / 2 == pytest.approx(look.centre_x - 0.5, abs=0.5)


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, HEART])
def test_area_grows_with_scale_and_sprites_stay_inside_the_frame(shape):
    for orientation in (0, 7, 22):
        areas = (render(factor_rows(shape=shape, orientation=orientation, scale=np.arange(6))) > 0).sum(axis=(1, 2, 3))
        # Pixel steps: a symmetric sprite gains whole rows on both sides at once, so equal neighbours can happen.
        assert (np.diff(areas) >= 0).all() and (np.diff(areas) > 0).sum() >= 3
        assert areas[-1] / areas[0] == pytest.approx(4.0, rel=0.25)  # area goes with scale squared
    # The largest sprites at the extreme positions still leave the border black.
    corners = factor_rows(shape=shape, orientation=np.arange(40).repeat(4),
                          posX=np.tile([0, 0, 31, 31], 40), posY=np.tile([0, 31, 0, 31], 40))
    x = render(corners)[:, 0]
    assert not (x[:, 0].any() or x[:, -1].any() or x[:, :, 0].any() or x[:, :, -1].any())


def test_sprites_grow_linearly_and_scale_one_sprites_are_a_fifth_to_a_quarter_of_the_frame():
    # The square's side is size * scale (to the pixel) at orientation 0.
    x = render(factor_rows(scale=np.arange(6)))
    widths = np.array([np.ptp(np.nonzero(image[0])[1]) + 1 for image in x])
    assert np.abs(widths - dsprites.LOOK.size * FACTOR_VALUES[1]).max() <= 1.0
    # At scale 1 every shape is between a sixth and a quarter of the frame wide (the ellipse's
    # long axis a little more), the ellipse clearly elongated, and -- as the tuning found each
    # shape's size separately -- all three of about the same area.
    x = render(factor_rows(shape=[SQUARE, ELLIPSE, HEART]))
    extents = [(np.ptp(np.nonzero(image[0])[1]) + 1, np.ptp(np.nonzero(image[0])[0]) + 1) for image in x]
    assert all(64 / 6 <= w <= 64 / 3.4 for w, _ in extents), extents
    assert 1.4 <= extents[ELLIPSE][0] / extents[ELLIPSE][1] <= 2.0, extents
    areas = (x > 0).sum(axis=(1, 2, 3))
    assert areas.max() / areas.min() < 1.15, areas


def test_orientation_turns_about_the_centre_counter_clockwise_and_2pi_is_0():
    every = factor_rows(shape=np.arange(3).repeat(6), scale=np.tile(np.arange(6), 3),
                        posX=np.arange(18), posY=np.arange(18)[::-1])
    last = every.copy()
    last[:, 2] = 39
    assert np.array_equal(render(last), render(every))
    one_step = every.copy()
    one_step[:, 2] = 1
    assert (render(one_step) != render(every)).reshape(18, -1).any(axis=1).all()

    def values(shape, angle):
        return np.array([[shape + 1, 1.0, angle, 0.5, 0.5]])

    # The ellipse lies along x at 0, along y at pi/2.
    for angle, wide in ((0.0, True), (np.pi / 2, False)):
        rows, cols = np.nonzero(render_values(values(ELLIPSE, angle))[0, 0])
        assert (np.ptp(cols) > np.ptp(rows)) == wide
    # The heart: lobes up at 0; turned counter-clockwise by pi/2 they point left, by pi down.
    # The lobes hold more white than the tip, so the centroid lies on their side of the box centre.
    for angle, lobes in ((0.0, "up"), (np.pi / 2, "left"), (np.pi, "down")):
        image = render_values(values(HEART, angle))[0]
        mid_r, mid_c = box_centre(image)
        r, c = centroid(image)
        assert {"up": r < mid_r - 0.3, "left": c < mid_c - 0.3, "down": r > mid_r + 0.3}[lobes], lobes
        # Turned about its own centre: the box stays centred where the sprite is placed.
        assert abs(mid_r - (dsprites.LOOK.centre_y - 0.5)) <= 1 and abs(mid_c - (dsprites.LOOK.centre_x - 0.5)) <= 1


def test_rendering_rate_is_thousands_per_second():
    factors = sample_factors(2000, np.random.default_rng(3))
    start = time.process_time()
    render(factors)
    assert 2000 / (time.process_time() - start) > 1000


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------

def test_sample_factors_covers_the_grid_and_fixed_pins_one_factor():
    ds = DSprites()
    free = ds.sample_factors(4000, np.random.default_rng(4))
    pinned = ds.sample_factors(4000, np.random.default_rng(4), fixed={2: 7})
    by_name = ds.sample_factors(4000, np.random.default_rng(4), fixed={"orientation": 7})
    assert free.dtype == np.int64 and free.shape == (4000, 5)
    assert (pinned[:, 2] == 7).all() and np.array_equal(pinned, by_name)
    assert np.array_equal(np.delete(pinned, 2, axis=1), np.delete(free, 2, axis=1))  # the rest unchanged
    for k, size in enumerate(FACTOR_SIZES):
        counts = np.bincount(free[:, k], minlength=size)
        assert len(counts) == size and counts.min() > 0.5 * 4000 / size and counts.max() < 1.5 * 4000 / size
    images, factors = ds.sample(16, np.random.default_rng(5), fixed={0: HEART, 1: 0})
    assert (factors[:, 0] == HEART).all() and (factors[:, 1] == 0).all()
    assert np.array_equal(images, ds.images(factors))


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------

@pytest.mark.parametrize("factors, words", [
    (np.zeros((3, 4), dtype=np.int64), "shape (n, 5)"),
    (np.zeros(5, dtype=np.int64), "shape (n, 5)"),
    (np.zeros((3, 5)), "integer"),
    (np.array([[0, 0, 0, 32, 0]]), "'posX'"),
    (np.array([[3, 0, 0, 0, 0]]), "'shape'"),
    (np.array([[0, 0, -1, 0, 0]]), "'orientation'"),
])
def test_bad_factors_raise_one_line_value_errors(factors, words):
    ds = DSprites()
    for call in (ds.images, ds.flat_index, ds.factor_values):
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")) as excinfo:
            call(factors)
        assert one_line(excinfo)


def test_bad_indices_and_sampling_arguments():
    ds = DSprites()
    for bad in (NUM_IMAGES, -NUM_IMAGES - 1, np.array([0, NUM_IMAGES])):
        with pytest.raises(IndexError) as excinfo:
            ds[bad]
        assert isinstance(excinfo.value, ValueError) and one_line(excinfo)
    for bad in (np.array([0.5]), np.array([[1, 2]]), (1, 2)):
        with pytest.raises(ValueError) as excinfo:
            ds[bad]
        assert one_line(excinfo)
    rng = np.random.default_rng(0)
    for kwargs in (dict(n=-1, rng=rng), dict(n=2, rng=None), dict(n=2, rng=rng, fixed={5: 0}),
                   dict(n=2, rng=rng, fixed={"colour": 0}), dict(n=2, rng=rng, fixed={1: 6})):
        with pytest.raises(ValueError) as excinfo:
            ds.sample_factors(**kwargs)
        assert one_line(excinfo)
    with pytest.raises(TypeError, match="index a batch"):
        np.asarray(ds)
    for bad in (np.array([[4.0, 1, 0, 0.5, 0.5]]), np.array([[1.0, np.nan, 0, 0.5, 0.5]]), np.ones((2, 4))):
        with pytest.raises(ValueError) as excinfo:
            render_values(bad)
        assert one_line(excinfo)


# --------------------------------------------------------------------------
# The original archive, faked small
# --------------------------------------------------------------------------

def write_fake_archive(path, factors, imgs=None, metadata=True, **changes):
    """An .npz laid out like the original: imgs 0/1 uint8, latents with a color column first,
    and a pickled metadata dict (which the reader must never load)."""
    imgs = render(factors)[:, 0] // 255 if imgs is None else imgs
    classes = np.concatenate([np.zeros((len(factors), 1), np.int64), factors], axis=1)
    values = np.concatenate([np.ones((len(factors), 1)), dsprites.factor_values(factors)], axis=1)
    arrays = dict(imgs=imgs, latents_classes=classes, latents_values=values)
    if metadata:
        arrays["metadata"] = np.array({"title": "dSprites", "latents_sizes": [1, 3, 6, 40, 32, 32]}, dtype=object)
    arrays.update(changes)
    np.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_read_archive_returns_the_images_and_factors_without_color(tmp_path):
    factors = sample_factors(20, np.random.default_rng(6))
    path = write_fake_archive(tmp_path / dsprites.ARCHIVE_NAME, factors)
    packed, classes, values = dsprites.read_archive(path)
    assert np.array_equal(dsprites.unpack(packed), render(factors))
    assert np.array_equal(classes, factors) and np.array_equal(values, dsprites.factor_values(factors))


def test_dsprites_reads_the_archive_named_by_the_environment(tmp_path, monkeypatch):
    path = write_fake_archive(tmp_path / "tiny.npz", sample_factors(10, np.random.default_rng(7)))
    monkeypatch.setenv(dsprites.ENV_ARCHIVE, str(path))
    with pytest.raises(DSpritesError, match="tiny.npz: holds 10 images, not the full grid of 737280") as excinfo:
        DSprites()
    assert one_line(excinfo)


@pytest.mark.parametrize("change, words", [
    (dict(latents_classes=None), "missing latents_classes"),
    (dict(imgs=np.full((4, 64, 64), 255, np.uint8)), "pixel value 255"),
    (dict(imgs=np.zeros((4, 32, 32), np.uint8)), "expected uint8 \\(n, 64, 64\\)"),
    (dict(latents_values=np.zeros((4, 6))), "latents_values row 0"),
    (dict(latents_classes=np.array([[0, 0, 0, 40, 0, 0]] * 4)), "latents_classes: factor 'orientation'"),
    (dict(latents_classes=np.ones((4, 6), np.int64)), "color latent"),
    (dict(latents_classes=np.zeros((3, 6), np.int64)), "4 images but latents_classes"),
])
def test_bad_archives_raise_one_line_errors(tmp_path, change, words):
    path = write_fake_archive(tmp_path / "bad.npz", factor_rows(posX=np.arange(4)), **change)
    with pytest.raises(DSpritesError, match=words) as excinfo:
        dsprites.read_archive(path)
    assert one_line(excinfo)


def test_a_file_that_is_not_an_archive(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DSpritesError, match="junk.npz") as excinfo:
        dsprites.read_archive(tmp_path / "junk.npz")
    assert one_line(excinfo)
    with pytest.raises(FileNotFoundError):
        dsprites.read_archive(tmp_path / "absent.npz")


def test_a_full_archive_is_served_in_place_of_drawings(monkeypatch):
    # A full-size fake: 377 MB of zero pages that are never touched, three marked images.
    packed = np.zeros((NUM_IMAGES, 64, 8), dtype=np.uint8)
    marked = np.array([0, 123456, NUM_IMAGES - 1])
    packed[marked, 5, 0] = np.array([0b10000000, 0b01000000, 0b00100000], dtype=np.uint8)
    monkeypatch.setattr(dsprites, "read_archive", lambda path: (packed, factors_of(np.arange(NUM_IMAGES)), None))
    ds = DSprites(path="original.npz")
    assert ds.source == "archive"
    x = ds[marked]
    assert x[0, 0, 5, 0] == 255 and x[1, 0, 5, 1] == 255 and x[2, 0, 5, 2] == 255 and x.sum() == 3 * 255
    assert np.array_equal(ds.images(factors_of(marked)), x)


# --------------------------------------------------------------------------
# The cache, on a grid shrunk to its first 2048 images
# --------------------------------------------------------------------------

def test_cache_is_written_once_read_back_and_rebuilt_when_bad(monkeypatch, tmp_path):
    monkeypatch.setattr(dsprites, "NUM_IMAGES", 2048)
    ds = DSprites(cache=True)
    path = dsprites.cache_path()
    assert os.path.isfile(path) and path.startswith(str(tmp_path / "data" / "dsprites"))
    flat = np.arange(0, 2048, 37)
    assert np.array_equal(ds[flat], render(factors_of(flat)))
    mtime = os.stat(path).st_mtime_ns
    assert np.array_equal(DSprites(cache=True)[flat], ds[flat]) and os.stat(path).st_mtime_ns == mtime
    other = dsprites.Look(size=10.0)
    assert dsprites.cache_path(other) != path                      # another look, another file
    shutil.copy(path, dsprites.cache_path(other))                  # ... and a stale one is not used
    with pytest.warns(UserWarning, match="drawn with another look"):
        assert np.array_equal(DSprites(cache=True, look=other)[flat], render(factors_of(flat), other))
    with zipfile.ZipFile(path, "w") as bad:
        bad.writestr("packed.npy", b"garbage")
    with pytest.warns(UserWarning, match="rebuilding the dSprites cache"):
        again = DSprites(cache=True)
    assert np.array_equal(again[flat], ds[flat])
