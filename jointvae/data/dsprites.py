"""dSprites (Matthey et al. 2017) rendered on demand from its factors: no download needed.

The grid is the original archive's, in its order (posY varies fastest):

    shape        3   square, ellipse, heart      values 1., 2., 3.
    scale        6   linspace(0.5, 1, 6)
    orientation 40   linspace(0, 2 pi, 40)       endpoint included: classes 0 and 39 draw the same image
    posX        32   linspace(0, 1, 32)          moves the sprite along the columns (image axis -1), left to right
    posY        32   linspace(0, 1, 32)          moves the sprite along the rows (image axis -2), top to bottom

    flat index = classes . (245760, 40960, 1024, 32, 1),   737,280 images of 1 x 64 x 64

Images are uint8 (n, 1, 64, 64) with values 0 and 255 (white sprite on black), so that
`jointvae.data.to_float` gives the 0/1 floats the published model was trained on.

    ds = DSprites()                                   # procedural (or $JOINTVAE_DSPRITES, see below)
    x = ds[idx]                                       # like a uint8 array (737280, 1, 64, 64)
    factors = ds.sample_factors(64, rng, fixed={1: 5})  # (64, 5) class indices, scale pinned to class 5
    x = ds.images(factors)

Sources:
- procedural (the default): each image is drawn from its factor values by testing every
  pixel centre against the sprite's outline, vectorised over images. The geometry (`Look`)
  was tuned so that the published dSprites JointVAE, trained on the original images,
  reconstructs these best (tools/tune_dsprites.py; docs/dsprites/).
- `cache=True`: all images rendered once and kept bit-packed (377 MB) in memory and in
  `$JOINTVAE_DATA/dsprites/` (default ~/.cache/jointvae), written atomically.
- the original archive dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz, when `path=` or
  the environment variable JOINTVAE_DSPRITES names it: only `imgs`, `latents_classes`
  and `latents_values` are read, never the pickled `metadata`.
"""
import dataclasses
import hashlib
import os
import warnings
import zipfile

import numpy as np

from refnet.backend import to_numpy
from refnet.serialization import load_npz, save_npz

from .registry import default_data_dir

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
FACTOR_VALUES = (
    np.array([1.0, 2.0, 3.0]),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * np.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
FACTOR_BASES = (245760, 40960, 1024, 32, 1)  # flat index = classes . FACTOR_BASES
NUM_IMAGES = 737280
IMAGE_SIZE = 64
SHAPE_NAMES = ("square", "ellipse", "heart")

ARCHIVE_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
ARCHIVE_KEYS = ("imgs", "latents_classes", "latents_values")
ENV_ARCHIVE = "JOINTVAE_DSPRITES"

RENDER_CHUNK = 256    # images per vectorised step: (256, 64, 64) float32 temporaries stay ~4 MB
READ_CHUNK = 8192     # archive images per read: 32 MB of uint8 at a time, never the whole 3 GB


class DSpritesError(ValueError):
    """Bad factors, indices or files: the message says which and why, on one line."""


class DSpritesIndexError(DSpritesError, IndexError):
    """An index out of range; also an IndexError, so that iteration by __getitem__ stops."""


# ---------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Look:
    """How factor values become pixels. Lengths are in pixels of the 64 x 64 frame, whose
    pixel (row r, column c) has its centre at x = c + 0.5, y = r + 0.5; a pixel is white
    when its centre lies inside the sprite.

    size            side of the square at scale 1; every sprite grows linearly with scale
    ellipse_width   width of the ellipse at orientation 0, in units of `size`
    ellipse_height  height of the ellipse at orientation 0, in units of `size`
    heart           width of the heart in units of `size` (lobes up, tip down at orientation 0)
    span            pixels between the sprite centres at position 0 and position 1, on both axes
    centre_x        column coordinate of the sprite centre at posX 0.5
    centre_y        row coordinate of the sprite centre at posY 0.5

    Orientation turns the sprite counter-clockwise as the image is shown (row 0 on top),
    about its centre (the centre of its bounding box at orientation 0).

    The defaults were fitted to the published dSprites JointVAE (tools/tune_dsprites.py):
    the outlines minimise its reconstruction BCE (33.45 nats per image on a fixed sample of
    3000); the position range is where it stops following sprites moved outwards (to about
    a quarter pixel), because the BCE alone keeps falling as the positions shrink together.
    The three shapes came out with the same area (144-150 px^2 at scale 1), each fitted on
    its own. Which way orientation 0 points cannot be told from reconstructions (a turn by
    whole steps only relabels the images), so upright is a convention.
    """
    size: float = 12.0
    ellipse_width: float = 18.25 / 12.0     # 18.25 x 10.65 px at scale 1
    ellipse_height: float = 10.65 / 12.0
    heart: float = 15.35 / 12.0             # 15.35 px wide at scale 1
    span: float = 32.5                      # centres from 15.9 to 48.4 px across, 15.4 to 47.9 down
    centre_x: float = 32.125
    centre_y: float = 31.625

    def key(self):
        """A short hash of the geometry: names the cache file, so a new look never reads an old cache."""
        text = repr((RENDER_VERSION, dataclasses.astuple(self)))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


RENDER_VERSION = 1  # bump when the drawing code changes what it draws
LOOK = Look()

# The heart: a square of side L turned 45 degrees (the point at the bottom) with a disc of
# diameter L on each upper side. Its width is L (1 + 1/sqrt 2); its bounding box centre lies
# HEART_BOX_SHIFT * L above the diamond's centre.
_R2 = np.sqrt(2.0)
HEART_WIDTH_PER_SIDE = 1.0 + 1.0 / _R2
HEART_BOX_SHIFT = (1.0 / (2 * _R2) + 0.5 - 1.0 / _R2) / 2


def _inside_square(u, w, look):
    return np.maximum(np.abs(u), np.abs(w)) <= 0.5


def _inside_ellipse(u, w, look):
    a, b = look.ellipse_width / 2, look.ellipse_height / 2
    return (u / a) ** 2 + (w / b) ** 2 <= 1.0


def _inside_heart(u, w, look):
    side = look.heart / HEART_WIDTH_PER_SIDE
    q = np.abs(u)                               # the heart is symmetric: one lobe test covers both
    w = w + HEART_BOX_SHIFT * side              # w now measured from the diamond's centre
    half_diagonal = side / _R2
    diamond = q + np.abs(w) <= half_diagonal
    lobe = (q - half_diagonal / 2) ** 2 + (w - half_diagonal / 2) ** 2 <= (side / 2) ** 2
    return diamond | lobe


SHAPE_TESTS = (_inside_square, _inside_ellipse, _inside_heart)


# ---------------------------------------------------------------------------
# Factors and indices
# ---------------------------------------------------------------------------

def check_factors(factors):
    """-> int64 (n, 5) class indices; DSpritesError unless integer (n, 5) inside the grid."""
    factors = to_numpy(factors)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_SIZES):
        raise DSpritesError(f"factors must have shape (n, {len(FACTOR_SIZES)}) {FACTOR_NAMES}, "
                            f"got {factors.shape}")
    if factors.dtype.kind not in "iu":
        raise DSpritesError(f"factors must be integer class indices, got dtype {factors.dtype}")
    factors = factors.astype(np.int64)
    bad = (factors < 0) | (factors >= np.asarray(FACTOR_SIZES))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DSpritesIndexError(f"factor {FACTOR_NAMES[col]!r} (column {col}) has class {factors[row, col]} "
                                 f"in row {row}; expected 0..{FACTOR_SIZES[col] - 1}")
    return factors


def check_flat_index(flat):
    """-> int64 (n,) flat indices; negative ones count from the end, as in NumPy."""
    flat = to_numpy(flat)
    if flat.dtype.kind not in "iu" or flat.ndim != 1:
        raise DSpritesError(f"indices must be a 1-D integer array, got {flat.dtype} of shape {flat.shape}")
    flat = flat.astype(np.int64)
    bad = (flat < -NUM_IMAGES) | (flat >= NUM_IMAGES)
    if bad.any():
        raise DSpritesIndexError(f"index {flat[bad][0]} is out of range for {NUM_IMAGES} dSprites images")
    return np.where(flat < 0, flat + NUM_IMAGES, flat)


def flat_index(factors):
    """int (n, 5) class indices -> int64 (n,) positions in the original archive."""
    return check_factors(factors) @ np.asarray(FACTOR_BASES, dtype=np.int64)


def factors_of(flat):
    """int (n,) flat indices -> int64 (n, 5) class indices (the inverse of flat_index)."""
    flat = check_flat_index(flat)
    return (flat[:, None] // np.asarray(FACTOR_BASES)) % np.asarray(FACTOR_SIZES)


def factor_values(factors):
    """int (n, 5) class indices -> float64 (n, 5): the archive's latents_values (without color)."""
    factors = check_factors(factors)
    return np.stack([values[factors[:, k]] for k, values in enumerate(FACTOR_VALUES)], axis=1)


def _factor_column(key):
    """A factor given by index (0..4) or name -> its index."""
    if isinstance(key, str) and key in FACTOR_NAMES:
        return FACTOR_NAMES.index(key)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < len(FACTOR_NAMES):
        return int(key)
    raise DSpritesError(f"unknown factor {key!r}: expected 0..{len(FACTOR_NAMES) - 1} or one of {FACTOR_NAMES}")


def sample_factors(n, rng, fixed=None):
    """-> int64 (n, 5), each factor uniform over its classes, independently.

    fixed: {factor (index or name): class index} pins those factors. All five columns are
    always drawn, so the free factors come out the same whichever factors are pinned.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise DSpritesError(f"n must be an integer >= 0, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise DSpritesError("rng must be a np.random.Generator (e.g. np.random.default_rng(0))")
    factors = rng.integers(0, FACTOR_SIZES, size=(int(n), len(FACTOR_SIZES)), dtype=np.int64)
    for key, value in (fixed or {}).items():
        col = _factor_column(key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 0 <= value < FACTOR_SIZES[col]:
            raise DSpritesIndexError(f"fixed class {value!r} for factor {FACTOR_NAMES[col]!r}; "
                                     f"expected 0..{FACTOR_SIZES[col] - 1}")
        factors[:, col] = value
    return factors


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------

def render(factors, look=LOOK):
    """int (n, 5) class indices -> uint8 (n, 1, 64, 64), sprite 255 on 0, drawn with `look`."""
    return render_values(factor_values(factors), look)


def render_values(values, look=LOOK):
    """float (n, 5) factor values -> uint8 (n, 1, 64, 64); values need not lie on the grid.

    values: shape 1., 2. or 3. (square, ellipse, heart), scale, orientation (radians),
    posX and posY (0..1 spans `look.span` pixels). Drawn RENDER_CHUNK images at a time.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(FACTOR_NAMES):
        raise DSpritesError(f"values must have shape (n, {len(FACTOR_NAMES)}) {FACTOR_NAMES}, got {values.shape}")
    if not np.isfinite(values).all() or not np.isin(np.rint(values[:, 0]), (1.0, 2.0, 3.0)).all():
        raise DSpritesError("values must be finite, with shape 1., 2. or 3. (square, ellipse, heart)")
    shapes = np.rint(values[:, 0]).astype(np.int64) - 1
    out = np.empty((len(values), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for start in range(0, len(values), RENDER_CHUNK):
        stop = start + RENDER_CHUNK
        out[start:stop, 0] = _render_chunk(shapes[start:stop], values[start:stop], look)
    return out


def sprite_coordinates(values, look=LOOK):
    """float (n, 5) factor values -> u, w float32 (n, 64, 64): every pixel centre in the sprite's frame.

    (u, w) is measured from the sprite's centre in units of size * scale, u along the
    sprite's own x axis, w along its y axis (up at orientation 0).
    """
    scale, angle, pos_x, pos_y = (values[:, k] for k in range(1, 5))
    unit = look.size * scale
    centres = np.arange(IMAGE_SIZE) + 0.5
    # Per image and axis first: (n, 64) arrays, so the (n, 64, 64) work is two multiply-adds.
    dx = (centres[None, :] - (look.centre_x + (pos_x[:, None] - 0.5) * look.span)) / unit[:, None]
    dy = (centres[None, :] - (look.centre_y + (pos_y[:, None] - 0.5) * look.span)) / unit[:, None]
    # np.mod makes 2 pi exactly 0, so orientation classes 0 and 39 agree to the bit.
    angle = np.mod(angle, 2 * np.pi)
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    # Rotating the sprite counter-clockwise on screen (y down) by a: u = c dx - s dy, w = -s dx - c dy.
    u = (c * dx).astype(np.float32)[:, None, :] - (s * dy).astype(np.float32)[:, :, None]
    w = (-s * dx).astype(np.float32)[:, None, :] - (c * dy).astype(np.float32)[:, :, None]
    return u, w


def _render_chunk(shapes, values, look):
    """shape indices (n,), float values (n, 5) -> uint8 (n, 64, 64); each shape drawn with its own test."""
    inside = np.zeros((len(values), IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for shape, test in enumerate(SHAPE_TESTS):
        rows = np.flatnonzero(shapes == shape)
        if len(rows):
            u, w = sprite_coordinates(values[rows], look)
            inside[rows] = test(u, w, look)
    return inside.view(np.uint8) * np.uint8(255)


# ---------------------------------------------------------------------------
# Bit-packed storage (cache and archive)
# ---------------------------------------------------------------------------

def pack(images01):
    """(n, 64, 64) values 0/1 (or 0/255) -> uint8 (n, 64, 8), one bit per pixel."""
    return np.packbits(np.asarray(images01) != 0, axis=-1)


def unpack(packed):
    """uint8 (n, 64, 8) -> uint8 (n, 1, 64, 64) with values 0 and 255."""
    return (np.unpackbits(packed, axis=-1) * np.uint8(255))[:, None]


def cache_path(look=LOOK, data_dir=None):
    """<data_dir>/dsprites/procedural-<hash of the look>.npz"""
    return os.path.join(data_dir or default_data_dir(), "dsprites", f"procedural-{look.key()}.npz")


def build_cache(look=LOOK, data_dir=None):
    """Render every image once, bit-packed; write the cache atomically; -> uint8 (737280, 64, 8)."""
    packed = np.empty((NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE // 8), dtype=np.uint8)
    step = 8 * RENDER_CHUNK
    for start in range(0, NUM_IMAGES, step):
        flat = np.arange(start, min(start + step, NUM_IMAGES))
        packed[flat] = pack(render(factors_of(flat), look)[:, 0])
    save_npz(cache_path(look, data_dir), {"packed": packed, "look_key": np.array(look.key())})
    return packed


def read_cache(path, look=LOOK):
    """The bit-packed images of a cache file; DSpritesError if it is not one for `look`."""
    try:
        arrays = load_npz(path)
    except (ValueError, FileNotFoundError) as e:
        raise DSpritesError(str(e)) from None
    packed = arrays.get("packed")
    # np.load hands back raw bytes for a member that is not an .npy array
    expected = (NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE // 8)
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.shape != expected:
        raise DSpritesError(f"{path}: no uint8 'packed' array of shape ({NUM_IMAGES}, 64, 8)")
    if str(arrays.get("look_key", "")) != look.key():
        raise DSpritesError(f"{path}: drawn with another look (key {arrays.get('look_key')}, expected {look.key()})")
    return packed


def load_or_build_cache(look=LOOK, data_dir=None):
    """The cache for `look`, built (about a minute) when missing or unreadable."""
    path = cache_path(look, data_dir)
    if os.path.exists(path):
        try:
            return read_cache(path, look)
        except DSpritesError as e:
            warnings.warn(f"rebuilding the dSprites cache: {e}", stacklevel=3)
    return build_cache(look, data_dir)


# ---------------------------------------------------------------------------
# The original archive
# ---------------------------------------------------------------------------

def _read_npy_header(stream, where):
    """(shape, fortran_order, dtype) from an open .npy stream, header parsed without pickle."""
    version = np.lib.format.read_magic(stream)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise DSpritesError(f"{where}: unsupported .npy format version {version}")
    return readers[version](stream)


def read_archive_images(path):
    """`imgs` of an archive, streamed and bit-packed: -> uint8 (n, 64, 8).

    np.load would hold all 3 GB of the original's bytes at once; reading the member in
    chunks keeps the peak near the 377 MB of the packed result.
    """
    where = f"{path}:imgs"
    with zipfile.ZipFile(path) as archive, archive.open("imgs.npy") as stream:
        shape, fortran, dtype = _read_npy_header(stream, where)
        if dtype != np.uint8 or fortran or len(shape) != 3 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DSpritesError(f"{where}: expected uint8 (n, 64, 64) in C order, "
                                f"got {dtype} {shape}{' Fortran order' if fortran else ''}")
        packed = np.empty((shape[0], IMAGE_SIZE, IMAGE_SIZE // 8), dtype=np.uint8)
        for start in range(0, shape[0], READ_CHUNK):
            n = min(READ_CHUNK, shape[0] - start)
            data = stream.read(n * IMAGE_SIZE * IMAGE_SIZE)
            if len(data) != n * IMAGE_SIZE * IMAGE_SIZE:
                raise DSpritesError(f"{where}: truncated after {start} images")
            images = np.frombuffer(data, dtype=np.uint8).reshape(n, IMAGE_SIZE, IMAGE_SIZE)
            if images.max(initial=0) > 1:
                raise DSpritesError(f"{where}: pixel value {images.max()}; the original's images are 0/1")
            packed[start:start + n] = np.packbits(images, axis=-1)
    return packed


def read_archive(path):
    """The original dSprites .npz -> packed uint8 (n, 64, 8), classes int64 (n, 5), values float64 (n, 5).

    The archive's first latent (color, a single class) is dropped. Checks that the keys
    exist, that the shapes agree and that every latents_values row is its classes' value.
    Any number n of images is accepted here; DSprites wants the full grid.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (the dSprites archive {ARCHIVE_NAME})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ARCHIVE_KEYS if key not in archive.files]
            if missing:
                raise DSpritesError(f"{path}: not a dSprites archive, missing {', '.join(missing)}")
            classes, values = archive["latents_classes"], archive["latents_values"]
        packed = read_archive_images(path)
    except DSpritesError:
        raise
    except (zipfile.BadZipFile, KeyError, EOFError, OSError, ValueError) as e:
        raise DSpritesError(f"{path}: not a readable dSprites archive ({type(e).__name__}: {e})") from None
    n = len(packed)
    if classes.shape != (n, 6) or classes.dtype.kind not in "iu" or values.shape != (n, 6) \
            or values.dtype.kind != "f":
        raise DSpritesError(f"{path}: {n} images but latents_classes {classes.dtype} {classes.shape} and "
                            f"latents_values {values.dtype} {values.shape}; expected int and float (n, 6)")
    if n and (classes[:, 0] != 0).any():
        raise DSpritesError(f"{path}: the color latent (column 0) must be class 0 throughout")
    try:
        factors = check_factors(classes[:, 1:])
    except DSpritesError as e:
        raise DSpritesError(f"{path}: latents_classes: {e}") from None
    expected = factor_values(factors)
    if not np.allclose(values[:, 1:], expected, rtol=0, atol=1e-6):
        row = int(np.argwhere(~np.isclose(values[:, 1:], expected, rtol=0, atol=1e-6))[0, 0])
        raise DSpritesError(f"{path}: latents_values row {row} {values[row, 1:].tolist()} does not match "
                            f"its classes {factors[row].tolist()}")
    return packed, factors, values[:, 1:].astype(np.float64)


# ---------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------

class DSprites:
    """All 737,280 dSprites images, indexable like a uint8 array (737280, 1, 64, 64).

    path: the original archive; default $JOINTVAE_DSPRITES; when neither is given the
        images are drawn on demand with `look`.
    cache: with procedural images, keep all of them bit-packed in memory, read from (or
        first written to) $JOINTVAE_DATA/dsprites/ (or `data_dir`).
    """
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    shape = (NUM_IMAGES, 1, IMAGE_SIZE, IMAGE_SIZE)
    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, path=None, cache=False, look=LOOK, data_dir=None):
        path = path if path is not None else (os.environ.get(ENV_ARCHIVE) or None)
        self.look, self.path = look, path
        self._packed = None  # uint8 (737280, 64, 8) when the images are stored, else None
        if path is not None:
            self.source = "archive"
            self._packed = self._read_full_archive(path)
        elif cache:
            self.source = "cache"
            self._packed = load_or_build_cache(look, data_dir)
        else:
            self.source = "procedural"

    @staticmethod
    def _read_full_archive(path):
        packed, factors, _ = read_archive(path)
        if len(packed) != NUM_IMAGES or not np.array_equal(flat_index(factors), np.arange(NUM_IMAGES)):
            raise DSpritesError(f"{os.fspath(path)}: holds {len(packed)} images, not the full grid of "
                                f"{NUM_IMAGES} in the original order")
        return packed

    def __len__(self):
        return NUM_IMAGES

    def __repr__(self):
        return f"DSprites(source={self.source!r}, shape={self.shape})"

    def __array__(self, dtype=None, copy=None):
        # Without this NumPy would build the 3 GB array one image at a time through __getitem__.
        raise TypeError("DSprites does not turn into one array (3 GB); index a batch instead: ds[idx]")

    def __getitem__(self, idx):
        """int -> (1, 64, 64); slice or integer array of flat indices -> (n, 1, 64, 64); uint8 0/255."""
        if isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
            return self[np.array([idx])][0]
        if isinstance(idx, slice):
            return self.images_at(np.arange(*idx.indices(NUM_IMAGES)))
        if isinstance(idx, tuple):
            raise DSpritesError("DSprites takes one index (int, slice or integer array), not a tuple")
        return self.images_at(idx)

    def images_at(self, flat):
        """int (n,) flat indices -> uint8 (n, 1, 64, 64)."""
        flat = check_flat_index(flat)
        if self._packed is not None:
            return unpack(self._packed[flat])
        return render(factors_of(flat), self.look)

    def images(self, factors):
        """int (n, 5) class indices -> uint8 (n, 1, 64, 64), values 0 or 255."""
        if self._packed is not None:
            return unpack(self._packed[flat_index(factors)])
        return render(factors, self.look)

    def sample_factors(self, n, rng, fixed=None):
        """-> int64 (n, 5) uniform over the grid; fixed {factor index or name: class} pins factors."""
        return sample_factors(n, rng, fixed)

    def sample(self, n, rng, fixed=None):
        """-> (images uint8 (n, 1, 64, 64), factors int64 (n, 5)): a batch, optionally with factors pinned."""
        factors = sample_factors(n, rng, fixed)
        return self.images(factors), factors

    def flat_index(self, factors):
        """int (n, 5) class indices -> int64 (n,) flat indices."""
        return flat_index(factors)

    def factors_of(self, flat):
        """int (n,) flat indices -> int64 (n, 5) class indices."""
        return factors_of(flat)

    def factor_values(self, factors):
        """int (n, 5) class indices -> float64 (n, 5) latents values."""
        return factor_values(factors)


def load_dsprites(path=None, cache=False, look=LOOK, data_dir=None):
    """-> (DSprites, labels int64 (737280,)): the images and each one's shape class (0 square, 1 ellipse, 2 heart).

    Fits `jointvae.data.load_dataset`'s (images, labels); all five factors of image i are
    `factors_of([i])`.
    """
    images = DSprites(path=path, cache=cache, look=look, data_dir=data_dir)
    return images, np.repeat(np.arange(FACTOR_SIZES[0], dtype=np.int64), FACTOR_BASES[0])
