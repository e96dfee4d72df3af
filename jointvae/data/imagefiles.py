"""Image files from disk as the model sees them: uint8 (C, size, size), centre-cropped and resized.

    from jointvae.data.imagefiles import find_images, read_image, read_images, describe_skipped
    image = read_image("digit.png", size=32, channels=1)           # uint8 (1, 32, 32)
    images, skipped = read_images(find_images("photos/"), 64, 3)   # uint8 (N, 3, 64, 64), [(path, reason)]
    if skipped:
        print(describe_skipped(skipped, total=len(images) + len(skipped)))

Whatever a file holds is brought to 8-bit grey or RGB: 16-bit pixels are scaled
(not clipped), palettes become RGB, transparency is composited onto white,
CMYK becomes RGB, and grey <-> RGB follow Pillow (RGB -> grey with the "L"
weights 299/587/114). The square in the middle (side: the shorter side) is then
resized by `resize_bilinear`, the one resize of this package (MNIST's 28 -> 32,
jointvae.data.mnist.resize_32, is it too). A file that cannot be used raises
ImageFileError naming the file and the reason; read_images collects those.
Before decoding, a file must be a regular file (a FIFO would block) whose
header declares at most Pillow's MAX_IMAGE_PIXELS pixels (a few hundred
bytes of PNG can declare 20000x20000).
"""
import os
import stat
import warnings

import imageio.v2 as imageio
import imageio.v3 as iio3
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_SIDE = 8   # smaller images hold too little to resize into anything meaningful


class ImageFileError(ValueError):
    """One image file that cannot be used; the message is 'path: reason'."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def find_images(root):
    """Every file below `root` (recursive) with a suffix in IMAGE_SUFFIXES, any case; sorted paths."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    found = []
    for folder, _, files in os.walk(root):
        found += [os.path.join(folder, f) for f in files if f.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(found)


def _to_8bit(pixels, path):
    """bool, uint8 or uint16 pixels -> uint8 with the same layout; 16-bit is scaled, so white stays white."""
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * np.uint8(255)
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return np.rint(pixels.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    raise ImageFileError(path, f"unsupported pixel type {pixels.dtype}")


def _cmyk_to_rgb(pixels):
    """uint8 (H, W, 4) CMYK -> uint8 (H, W, 3) RGB, by Pillow's own conversion."""
    from PIL import Image  # Pillow arrives with imageio
    h, w, _ = pixels.shape
    return np.asarray(Image.frombytes("CMYK", (w, h), np.ascontiguousarray(pixels).tobytes()).convert("RGB"))


def _on_white(colour, alpha):
    """Composite uint8 colour (H, W, c) with uint8 alpha (H, W) onto a white background."""
    a = alpha[..., None].astype(np.float32) / 255.0
    return np.rint(colour * a + 255.0 * (1.0 - a)).astype(np.uint8)


def _grey_or_rgb(pixels, path, source=None):
    """Decoded pixels -> uint8 (H, W) grey or (H, W, 3) RGB, with no alpha left.
    source: where the pixels came from (the path, or the file's bytes); path names it in errors."""
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        return pixels
    if pixels.ndim != 3 or pixels.shape[-1] not in (2, 3, 4):
        raise ImageFileError(path, f"unsupported layout: pixel array of shape {pixels.shape}")
    if pixels.shape[-1] == 4:
        # Four channels are RGBA or CMYK; only the file's metadata tells which.
        if iio3.immeta(path if source is None else source, plugin="pillow").get("mode") == "CMYK":
            return _cmyk_to_rgb(pixels)
    if pixels.shape[-1] in (2, 4):   # grey + alpha or RGB + alpha: the last channel is alpha
        composited = _on_white(pixels[..., :-1], pixels[..., -1])
        return composited[..., 0] if composited.shape[-1] == 1 else composited
    return pixels


def _declared_size(path):
    """(width, height) from the header of a PNG or JPEG file, without Pillow's pixel limit; None for others."""
    from PIL import JpegImagePlugin, PngImagePlugin
    with open(path, "rb") as f:
        head = f.read(8)
    opener = (PngImagePlugin.PngImageFile if head.startswith(b"\x89PNG\r\n\x1a\n") else
              JpegImagePlugin.JpegImageFile if head.startswith(b"\xff\xd8") else None)
    if opener is None:
        return None
    try:
        with opener(path) as image:   # the plugin's own header parser: Image.open adds the limit
            return image.size
    except Exception:                 # an unreadable header: the decoder will say so
        return None


def check_image_file(path):
    """ImageFileError unless `path` is a regular file whose header declares at most Pillow's MAX_IMAGE_PIXELS.

    Runs before any decoding: a FIFO would block the reader, and a small file
    can declare an image too large to decode (Pillow's own refusal reaches
    imageio's callers as "An unknown error occurred while initializing plugin").
    """
    from PIL import Image
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise ImageFileError(path, f"cannot read ({e.strerror or type(e).__name__})") from None
    if not stat.S_ISREG(mode):
        raise ImageFileError(path, "not a regular file")
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                size = image.size
    except Image.DecompressionBombError:
        size = _declared_size(path)
        if size is None:
            raise ImageFileError(path, f"image too large: more than twice the {limit} pixels allowed "
                                       "(PIL.Image.MAX_IMAGE_PIXELS)") from None
    except Exception:
        return                        # not an image Pillow knows: imageio names the problem
    width, height = size
    if width * height > limit:
        raise ImageFileError(path, f"image too large: {width}x{height} pixels, more than the {limit} "
                                   "allowed (PIL.Image.MAX_IMAGE_PIXELS)")


def resize_bilinear(pixels, size):
    """uint8 (H, W) grey or (H, W, 3) RGB -> uint8 (size, size) or (size, size, 3), by Pillow's bilinear filter.

    On the uint8 image, as torchvision's `Resize(size)` on a square PIL image
    made the published models' inputs.
    """
    from PIL import Image
    image = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))


def read_image(path, size, channels):
    """One image file -> uint8 (channels, size, size); channels 1 (grey) or 3 (RGB).

    Raises ImageFileError (a ValueError) for a corrupt, unreadable, too small
    (shorter side < 8 pixels), too large (more than Pillow's MAX_IMAGE_PIXELS)
    or unsupported file, or one that is not a regular file.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    path = os.fspath(path)
    check_image_file(path)
    return _decode(path, path, size, channels)


def read_image_bytes(content, size, channels, name="upload"):
    """The bytes of one PNG / JPEG file -> uint8 (channels, size, size), as read_image reads a file.

    Raises ImageFileError naming `name` when the bytes are no image, or declare more than Pillow's
    MAX_IMAGE_PIXELS pixels (checked from the header, before decoding).
    """
    import io
    from PIL import Image
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        raise ImageFileError(name, f"image too large: more than the {limit} pixels allowed") from None
    except Exception:
        raise ImageFileError(name, "cannot read (not an image Pillow can decode)") from None
    if limit is not None and width * height > limit:
        raise ImageFileError(name, f"image too large: {width}x{height} pixels, more than the {limit} allowed")
    return _decode(bytes(content), name, size, channels)


def _decode(source, path, size, channels):
    """A path or a file's bytes -> uint8 (channels, size, size): decoded, 8-bit grey or RGB, centre-cropped,
    resized. `path` names the image in errors."""
    from PIL import Image
    try:
        # Every suffix we accept is a Pillow format; naming the plugin keeps imageio from trying all others.
        pixels = np.asarray(imageio.imread(source, format="pillow"))
    except RuntimeError:     # imageio's way of saying no Pillow decoder recognises the bytes
        raise ImageFileError(path, "cannot read (not an image Pillow can decode)") from None
    except Exception as e:   # decoders raise many kinds (OSError, ValueError, SyntaxError, zlib.error) for bad bytes
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageFileError(path, f"cannot read ({reason})") from None
    if pixels.ndim < 2 or min(pixels.shape[:2]) < MIN_SIDE:
        raise ImageFileError(path, f"too small ({'x'.join(map(str, pixels.shape[:2]))} pixels; "
                                   f"the shorter side must be at least {MIN_SIDE})")
    image = Image.fromarray(_grey_or_rgb(_to_8bit(pixels, path), path, source))
    pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    h, w = pixels.shape[:2]
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    out = resize_bilinear(pixels[top:top + side, left:left + side], size)
    return out[None] if channels == 1 else out.transpose(2, 0, 1).copy()


def read_images(paths, size, channels):
    """-> (uint8 (N, channels, size, size) of the files that could be read, [(path, reason)] of the others)."""
    images, skipped = [], []
    for path in paths:
        try:
            images.append(read_image(path, size, channels))
        except ImageFileError as e:
            skipped.append((e.path, e.reason))
    stacked = np.stack(images) if images else np.zeros((0, channels, size, size), np.uint8)
    return stacked, skipped


def describe_skipped(skipped, first=3, total=None):
    """One line: 'skipped 4 of 120 files (a.png: reason; b.png: reason; c.png: reason; and 1 more)'.

    `total` (the number of files tried) is optional; an empty list gives ''.
    """
    if not skipped:
        return ""
    count = f"{len(skipped)} of {total}" if total is not None else f"{len(skipped)}"
    shown = "; ".join(f"{path}: {reason}" for path, reason in skipped[:first])
    more = f"; and {len(skipped) - first} more" if len(skipped) > first else ""
    noun = "file" if (total if total is not None else len(skipped)) == 1 else "files"
    return f"skipped {count} {noun} ({shown}{more})"
