"""A folder of image files as a dataset, read once and cached as a memory-mapped .npy.

    from jointvae.data.folder import load_folder
    images = load_folder("data/celeba", size=64, channels=3)   # uint8 (N, 3, 64, 64), read-only memmap

Every .png/.jpg/.jpeg below the folder is read by jointvae.data.imagefiles
(converted to grey or RGB, centre-cropped to a square, resized with Pillow's
bilinear filter). Files that cannot be used are skipped with one line on
stderr that counts them and names the first few; a folder with no usable
image is an error.

Reading 200,000 CelebA files takes minutes, so the result is cached under
$JOINTVAE_DATA/folders/ (default ~/.cache/jointvae/folders/) as two files:

    <name>-<size>x<size>x<channels>-<key>.npy   the images, uint8 (N, C, size, size), memory-mapped
    <name>-<size>x<size>x<channels>-<key>.npz   its record: key, SHA-256 of the images, skipped files

The key is a SHA-256 of what decides the content (size, channels, and every
file's relative path, byte size and modification time), so a changed folder
gets a new cache and the old one of the same folder is removed. Both files are
written atomically, the record last; a cache is used only when its record
matches and the images hash to the recorded SHA-256 (a few seconds for CelebA),
otherwise it is rebuilt.
"""
import hashlib
import os
import re
import sys
import warnings

import numpy as np

from refnet.serialization import load_npz, save_npz

from .imagefiles import IMAGE_SUFFIXES, describe_skipped, find_images, read_images
from .registry import default_data_dir

CACHE_VERSION = 1   # bump whenever the reading pipeline changes what a cache would hold
CHUNK = 2000        # files read (and images hashed) at a time: bounded memory for any folder size


class FolderError(ValueError):
    """A folder that gives no usable dataset, or bad arguments: the message says which."""


class StaleCacheError(Exception):
    """A cache that must not be used (internal: load_folder rebuilds it)."""


def folder_key(root, paths, size, channels):
    """SHA-256 (hex) of everything that decides a cache's content; any change gives another key."""
    digest = hashlib.sha256(f"jointvae-folder-cache {CACHE_VERSION} {size} {channels}\n".encode())
    for path in paths:
        stat = os.stat(path)
        # Relative paths: a folder moved (or copied with its times) keeps its cache.
        digest.update(f"{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_stem(root, key, size, channels, data_dir=None):
    """<data_dir>/folders/<folder name>-<size>x<size>x<channels>-<key[:16]>, without suffix."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(os.path.abspath(root))) or "folder"
    folder = os.path.join(data_dir if data_dir is not None else default_data_dir(), "folders")
    return os.path.join(folder, f"{name}-{size}x{size}x{channels}-{key[:16]}")


def images_sha256(images):
    """SHA-256 of the bytes of uint8 images (N, ...), read CHUNK images at a time."""
    digest = hashlib.sha256()
    for start in range(0, len(images), CHUNK):
        digest.update(memoryview(np.ascontiguousarray(images[start:start + CHUNK])).cast("B"))
    return digest.hexdigest()


def load_folder(root, size, channels, data_dir=None):
    """Every image below `root` as uint8 (N, channels, size, size), from the cache when it is good.

    Args:
        root: the folder (searched recursively).
        size: side of the square images the model takes (32 or 64 for JointVAE).
        channels: 1 (grey) or 3 (RGB).
        data_dir: cache root; default $JOINTVAE_DATA or ~/.cache/jointvae.

    Returns:
        a read-only np.memmap, uint8 (N, channels, size, size), in sorted file order.

    Raises:
        FileNotFoundError: root is not a folder.
        FolderError (ValueError): no image files, none usable, or bad size / channels.
    """
    if channels not in (1, 3):
        raise FolderError(f"channels must be 1 or 3, got {channels!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise FolderError(f"size must be a positive integer, got {size!r}")
    root = os.path.abspath(os.fspath(root))
    paths = find_images(root)
    if not paths:
        raise FolderError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it or below it")
    key = folder_key(root, paths, size, channels)
    stem = cache_stem(root, key, size, channels, data_dir)
    try:
        return open_cache(stem, key, (channels, size, size))
    except FileNotFoundError:
        pass                                 # no cache yet
    except StaleCacheError as exc:
        warnings.warn(f"rebuilding the image cache: {exc}", stacklevel=2)
    build_cache(root, paths, stem, key, size, channels)
    return open_cache(stem, key, (channels, size, size))


def open_cache(stem, key, image_shape):
    """The cached images if the record matches `key` and the images hash to the recorded SHA-256.

    Raises FileNotFoundError when there is no record, StaleCacheError (saying why) for anything else amiss.
    """
    record_path, images_path = stem + ".npz", stem + ".npy"
    if not os.path.exists(record_path):
        raise FileNotFoundError(record_path)
    try:
        record = load_npz(record_path)
        if int(record["version"]) != CACHE_VERSION or str(record["key"]) != key:
            raise StaleCacheError(f"{record_path}: made for other files or an older version")
        images = np.load(images_path, mmap_mode="r", allow_pickle=False)
    except StaleCacheError:
        raise
    except Exception as exc:  # a truncated or foreign file: whatever the reader raises
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StaleCacheError(f"{stem}.npy/.npz: unreadable cache ({reason})") from None
    expected_shape = (int(record["count"]),) + tuple(image_shape)
    if images.dtype != np.uint8 or images.shape != expected_shape:
        raise StaleCacheError(f"{images_path} holds {images.dtype} {images.shape}, expected uint8 {expected_shape}")
    if images_sha256(images) != str(record["sha256"]):
        raise StaleCacheError(f"{images_path}: SHA-256 differs from its record (damaged file)")
    return images


def build_cache(root, paths, stem, key, size, channels):
    """Read every file into <stem>.npy and write its record <stem>.npz, both atomically; name skipped files on stderr."""
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    print(f"reading {len(paths)} images from {root} into {stem}.npy", file=sys.stderr, flush=True)
    tmp = f"{stem}.npy.tmp-{os.getpid()}"
    try:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                           shape=(len(paths), channels, size, size))
        count, skipped = 0, []
        for start in range(0, len(paths), CHUNK):
            chunk, chunk_skipped = read_images(paths[start:start + CHUNK], size, channels)
            images[count:count + len(chunk)] = chunk
            count, skipped = count + len(chunk), skipped + chunk_skipped
            if len(paths) > CHUNK:
                print(f"  {min(start + CHUNK, len(paths))}/{len(paths)} files", file=sys.stderr, flush=True)
        if count == 0:
            raise FolderError(f"{root}: none of the {len(paths)} image files is usable "
                              f"({describe_skipped(skipped, total=len(paths))})")
        if skipped:   # a plain line: the files' problems, not a warning about this code's source
            print(describe_skipped(skipped, total=len(paths)), file=sys.stderr, flush=True)
        if count < len(paths):
            # The .npy's header fixes N: the good images move into a file of the right length.
            exact = np.lib.format.open_memmap(tmp + "-exact", mode="w+", dtype=np.uint8,
                                              shape=(count, channels, size, size))
            for start in range(0, count, CHUNK):
                stop = min(start + CHUNK, count)
                exact[start:stop] = images[start:stop]
            del images
            os.replace(tmp + "-exact", tmp)
            images = exact
        images.flush()
        sha256 = images_sha256(images)
        del images                           # closes the memory map before the rename
        os.replace(tmp, stem + ".npy")
    finally:
        for leftover in (tmp, tmp + "-exact"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    save_npz(stem + ".npz", {
        "version": np.array(CACHE_VERSION), "key": np.array(key), "sha256": np.array(sha256),
        "count": np.array(count), "root": np.array(root),
        "skipped": np.array([f"{path}: {reason}" for path, reason in skipped], dtype=str)})
    remove_older_caches(stem, root)


def remove_older_caches(stem, root):
    """Delete the other caches of this folder at this size (a CelebA cache is 2.4 GB): their files changed."""
    folder, name = os.path.split(stem)
    prefix = name[:name.rindex("-") + 1]     # <folder name>-<size>x<size>x<channels>-
    for entry in os.listdir(folder):
        other = os.path.join(folder, entry[:-len(".npz")])
        if not (entry.startswith(prefix) and entry.endswith(".npz")) or other == stem:
            continue
        try:
            same_root = str(load_npz(other + ".npz")["root"]) == root
        except (ValueError, KeyError, OSError):
            continue                         # not ours to judge
        if same_root:
            for suffix in (".npz", ".npy"):
                if os.path.exists(other + suffix):
                    os.unlink(other + suffix)
