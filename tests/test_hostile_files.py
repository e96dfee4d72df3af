"""Hostile input files: each reaches the caller as one ValueError / FileNotFoundError line naming the file.

Every bad file a hostile tester found (a refused pickle, a tiny pickle that describes an unbounded
object, an .npz header claiming an absurd shape, a FIFO where a file should be, a PNG that declares
20000x20000 pixels, weights with wrong names), and fuzzing of .npz, specs.json and model.pt bytes:
never another exception type, never a hang, never a change to the file read.
"""
import contextlib
import io
import json
import os
import pickle
import pickletools
import signal
import struct
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import refnet
from jointvae import edit, evaluate, infer, visualize
from jointvae.data.folder import load_folder
from jointvae.data.imagefiles import ImageFileError, read_image
from jointvae.files import legacy_torch
from jointvae.files.legacy_torch import (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, LegacyTorchFormatError,
                                         load_legacy_torch)
from jointvae.files.safe_unpickle import RefusedGlobalError, check_pickle, restricted_load
from jointvae.models.jointvae import JointVAE
from jointvae.models.model_folder import ModelFileError, load_model, save_model
from jointvae.models.specs import MNIST_SPEC, SpecError, load_spec
from refnet.serialization import NpzFormatError

REFERENCE_PT = Path(__file__).resolve().parents[2] / "shared" / "reference_models" / "mnist" / "model.pt"
SPEC = {**MNIST_SPEC, "latent_spec": {"cont": 2, "disc": [3]}}
HEADER = b"".join(pickle.dumps(part, protocol=2) for part in
                  (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True}))


def assert_one_line(error, path):
    """A ValueError / FileNotFoundError whose message is one line naming `path`."""
    assert isinstance(error, (ValueError, FileNotFoundError)), repr(error)
    message = str(error)
    assert "\n" not in message and str(path) in message, message
    return message


@contextlib.contextmanager
def time_limit(seconds):
    """Fail (instead of hanging) when the block runs longer than `seconds` (SIGALRM: Unix, main thread)."""
    def expired(signum, frame):
        raise AssertionError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def shared_nested_list(levels):
    """A pickle of a list whose every level holds the level below twice: 8 bytes a level, 2**levels in a repr."""
    stream = bytearray(b"\x80\x02]q\x00")                                     # PROTO 2, EMPTY_LIST, BINPUT 0
    for i in range(levels):
        stream += b"(h%ch%clq%c" % (i, i, i + 1)                              # MARK GET i GET i LIST PUT i+1
    return bytes(stream + b".")


def shared_nested_tuple(levels):
    stream = bytearray(b"\x80\x02K\x01q\x00")
    for i in range(levels):
        stream += b"h%ch%c\x86q%c" % (i, i, i + 1)                            # GET i GET i TUPLE2 PUT i+1
    return bytes(stream + b".")


@pytest.fixture
def model_folder(tmp_path):
    """A small but complete model folder (specs.json + weights.npz) of an MNIST-shaped JointVAE."""
    folder = tmp_path / "model"
    save_model(folder, JointVAE((1, 32, 32), SPEC["latent_spec"], rng=np.random.default_rng(0)), SPEC)
    return folder


# --------------------------------------------------------------------------
# A refused pickle: one line in every front door
# --------------------------------------------------------------------------

@pytest.mark.parametrize("front_door", ["evaluate", "visualize", "edit", "infer"])
def test_a_refused_pickle_is_one_line_naming_the_file_and_the_global(tmp_path, front_door, model_folder):
    marker = tmp_path / "code_ran"
    (model_folder / "weights.npz").unlink()
    evil = HEADER + b"cos\nsystem\n(S'touch %s'\ntR." % str(marker).encode()
    (model_folder / "model.pt").write_bytes(evil)
    image = tmp_path / "x.png"
    Image.new("L", (32, 32)).save(image)
    argv = {"evaluate": [str(model_folder)],
            "visualize": [str(model_folder), "--out", str(tmp_path / "pictures")],
            "edit": [str(model_folder), str(image), "--unit", "0", "--out", str(tmp_path / "e.png")],
            "infer": [str(model_folder), str(tmp_path), "--unit", "0", "--out", str(tmp_path / "i.csv")]}[front_door]
    main = {"evaluate": evaluate, "visualize": visualize, "edit": edit, "infer": infer}[front_door].main
    with pytest.raises(SystemExit) as info:
        main(argv)
    message = str(info.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    assert str(model_folder / "model.pt") in message and "os.system" in message, message
    assert not marker.exists()


def test_refused_global_error_is_a_value_error_and_an_unpickling_error():
    with pytest.raises(RefusedGlobalError) as info:
        restricted_load(io.BytesIO(b"cos\nsystem\n(S'true'\ntR."), {}, what="here")
    assert isinstance(info.value, ValueError) and isinstance(info.value, pickle.UnpicklingError)
    assert str(info.value) == "refusing to load os.system from here"
    # STACK_GLOBAL takes any string: a name with a newline is shown escaped, on one line
    stream = pickle.dumps(0, protocol=4)[:2] + b"\x8c\x02os\x8c\x07sys\ntem\x93)R."
    with pytest.raises(RefusedGlobalError, match=r"^refusing to load 'os.sys\\ntem' from here$"):
        restricted_load(io.BytesIO(stream), {}, what="here")


# --------------------------------------------------------------------------
# A small pickle that describes an unbounded object
# --------------------------------------------------------------------------

def count_unpickling(monkeypatch):
    """A list that gets an entry for every pickle legacy_torch hands to the unpickler from now on. A refusal by
    the opcode walk (check_pickle) is at once, whatever the machine's load: nothing is built at all."""
    unpickled = []

    def counting_load(f, allowed, *args, **kwargs):
        unpickled.append(allowed)
        return restricted_load(f, allowed, *args, **kwargs)
    monkeypatch.setattr(legacy_torch, "restricted_load", counting_load)
    return unpickled


PICKLES_BEFORE = {"magic number": 0, "state_dict": 3}    # unpickled before it: none; magic, version, sys_info


@pytest.mark.parametrize("where", ["magic number", "state_dict"])
@pytest.mark.parametrize("body, problem", [
    (shared_nested_list(110), "refers to one list, dict or object twice"),
    (shared_nested_tuple(110), "more than 1000000 objects"),
    (b"\x80\x02K\x01" + b"\x85" * 50_000 + b".", "nested more than 32 deep"),     # TUPLE1 50000 times
    (b"\x80\x02}(" + shared_nested_tuple(40)[2:-1] + b"K\x01u.", "more than 1000000 objects"),  # a dict key
    (b"\x80\x02" + b"N0" * 100_001 + b"N.", "more than"),                           # too many opcodes
])
def test_a_tiny_pickle_of_an_unbounded_object_is_refused_at_once(tmp_path, monkeypatch, where, body, problem):
    path = tmp_path / "model.pt"
    path.write_bytes(body if where == "magic number" else HEADER + body)
    unpickled = count_unpickling(monkeypatch)
    with pytest.raises(LegacyTorchFormatError) as info:
        load_legacy_torch(path)
    assert len(unpickled) == PICKLES_BEFORE[where]  # refused by the opcode walk: never handed to the unpickler
    message = assert_one_line(info.value, path)
    assert f"{where} pickle refused" in message and problem in message, message


def test_the_926_byte_model_pt_fails_fast_through_load_model(model_folder, monkeypatch):
    (model_folder / "weights.npz").unlink()
    (model_folder / "model.pt").write_bytes(shared_nested_list(115))
    assert 900 < (model_folder / "model.pt").stat().st_size < 1000
    unpickled = count_unpickling(monkeypatch)
    with pytest.raises(ValueError) as info:
        load_model(model_folder)
    assert len(unpickled) == 0                      # the magic number pickle was refused before unpickling
    assert_one_line(info.value, model_folder / "model.pt")


def test_a_pickle_cannot_rewrite_an_allowlisted_global(tmp_path):
    """BUILD on torch.FloatStorage would change the marker every later load uses."""
    evil = (b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeK\x01sb.")
    path = tmp_path / "model.pt"
    path.write_bytes(HEADER + evil)
    with pytest.raises(LegacyTorchFormatError, match="BUILD changes a global"):
        load_legacy_torch(path)
    assert legacy_torch.STORAGE_TYPES["FloatStorage"].dtype == np.float32


def test_values_from_the_file_are_checked_by_type_never_shown(tmp_path):
    path = tmp_path / "model.pt"
    huge = pickle.dumps(10 ** 5000, protocol=2)           # repr of it raises ValueError (over 4300 digits)
    for stream, problem in [(huge, "wrong magic number"),
                            (pickle.dumps(LEGACY_MAGIC_NUMBER, 2) + huge, "unsupported legacy format version"),
                            (HEADER + pickle.dumps({("a",) * 3: 1}, 2) + pickle.dumps([], 2),
                             "a state_dict key is a tuple"),
                            (HEADER + pickle.dumps({"w\nx" * 100: 1}, 2) + pickle.dumps([], 2),
                             "is not a tensor")]:
        path.write_bytes(stream)
        with pytest.raises(LegacyTorchFormatError, match=problem) as info:
            load_legacy_torch(path)
        assert_one_line(info.value, path)


def test_check_pickle_passes_the_published_state_dict_and_seeks_back():
    if not REFERENCE_PT.is_file():
        pytest.skip("reference model.pt not present")
    stream = io.BytesIO(REFERENCE_PT.read_bytes())
    for _ in range(5):                                      # magic, version, sys_info, state_dict, keys
        start = stream.tell()
        check_pickle(stream, what="model.pt")
        assert stream.tell() == start
        for _ in pickletools.genops(stream):                # on to the next pickle
            pass


# --------------------------------------------------------------------------
# .npz headers, members and sizes
# --------------------------------------------------------------------------

def npy_bytes(header, data=b""):
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + data


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("members, compression, problem", [
    ({"w.npy": npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}, bytes(16))},
     zipfile.ZIP_STORED, "claims shape (1000000, 1000000) of float32 (4000000000000 bytes), but only 16"),
    ({"w.npy": npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (2**40,)}, bytes(2**20))},
     zipfile.ZIP_DEFLATED, "but only 1048576 bytes follow"),
    ({"w.npy": npy_bytes({"descr": "|O", "fortran_order": False, "shape": (1,)}, bytes(8))},
     zipfile.ZIP_STORED, "holds Python objects"),
    ({"w.txt": b"hello"}, zipfile.ZIP_STORED, "is not a .npy array"),
    ({"w.npy": b"\x93NUMPY\x09\x00junk"}, zipfile.ZIP_STORED, ".npy format version (9, 0)"),
    ({"w.npy": b"junk"}, zipfile.ZIP_STORED, "not a readable .npz file"),
])
def test_an_npz_member_is_checked_before_anything_is_allocated(tmp_path, members, compression, problem):
    path = tmp_path / "weights.npz"
    write_zip(path, members, compression)
    with pytest.raises(NpzFormatError) as info:
        refnet.load_npz(path)
    assert problem in assert_one_line(info.value, path)


def test_npz_members_may_not_claim_more_than_the_file_or_the_limit(tmp_path):
    path = tmp_path / "weights.npz"
    refnet.save_npz(path, {"a": np.zeros(1000, np.float32), "b": np.ones(10)})
    assert set(refnet.load_npz(path)) == {"a", "b"}
    with pytest.raises(NpzFormatError, match="more than 4000 bytes of arrays"):
        refnet.load_npz(path, max_bytes=4000)
    # a stored member whose central-directory size is patched upwards
    data = bytearray(path.read_bytes())
    directory = data.rindex(b"PK\x01\x02")
    data[directory + 24:directory + 28] = struct.pack("<I", 10**9)   # uncompressed size of the last member
    path.write_bytes(bytes(data))
    with pytest.raises(NpzFormatError) as info:
        refnet.load_npz(path)
    assert_one_line(info.value, path)


def test_a_deflated_member_claiming_a_huge_size_is_refused(tmp_path):
    path = tmp_path / "bomb.npz"
    payload = npy_bytes({"descr": "|u1", "fortran_order": False, "shape": (8 << 20,)}, bytes(8 << 20))
    write_zip(path, {"x.npy": payload}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 20_000
    assert refnet.load_npz(path)["x"].shape == (8 << 20,)           # 8 MB from 8 KB: within deflate's 1032:1
    with pytest.raises(NpzFormatError, match="more than 1000000 bytes of arrays"):
        refnet.load_npz(path, max_bytes=10**6)
    # the same member claiming 2 GB in the central directory: more than deflate can make of its bytes
    data = bytearray(path.read_bytes())
    directory = data.rindex(b"PK\x01\x02")
    data[directory + 24:directory + 28] = struct.pack("<I", 2**31)
    path.write_bytes(bytes(data))
    with pytest.raises(NpzFormatError, match="claims 2147483648 bytes from") as info:
        refnet.load_npz(path)
    assert_one_line(info.value, path)


# --------------------------------------------------------------------------
# FIFOs (and other non-files) where a file should be
# --------------------------------------------------------------------------

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


def finishes(fifo, call, seconds=5.0):
    """call() in a thread; if it blocks on `fifo`, open the FIFO's write end to free it, then fail."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as e:   # noqa: B036 -- handed back to the test
            outcome["error"] = e
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))   # EOF for the blocked reader
        thread.join(seconds)
        pytest.fail(f"blocked reading the FIFO {fifo}")
    return outcome


@needs_fifo
@pytest.mark.parametrize("name", ["weights.npz", "model.pt", "specs.json"])
def test_a_fifo_in_a_model_folder_is_refused_without_blocking(model_folder, name):
    os.unlink(model_folder / ("weights.npz" if name == "model.pt" else name))
    os.mkfifo(model_folder / name)
    outcome = finishes(model_folder / name, lambda: load_model(model_folder))
    message = assert_one_line(outcome.get("error"), model_folder / name)
    assert "regular file" in message


@needs_fifo
def test_a_fifo_or_folder_is_no_npz_or_image(tmp_path):
    os.mkfifo(tmp_path / "w.npz")
    os.mkfifo(tmp_path / "x.png")
    (tmp_path / "d.npz").mkdir()
    assert "FIFO" in assert_one_line(finishes(tmp_path / "w.npz", lambda: refnet.load_npz(tmp_path / "w.npz"))
                                     .get("error"), tmp_path / "w.npz")
    assert "a folder" in assert_one_line(pytest.raises(ValueError, refnet.load_npz, tmp_path / "d.npz").value,
                                         tmp_path / "d.npz")
    error = finishes(tmp_path / "x.png", lambda: read_image(tmp_path / "x.png", 32, 1)).get("error")
    assert isinstance(error, ImageFileError) and error.reason == "not a regular file"


# --------------------------------------------------------------------------
# Images that declare too many pixels
# --------------------------------------------------------------------------

def png_header_only(width, height):
    """A PNG that declares width x height grey pixels and holds one empty IDAT: a few dozen bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def jpeg_declaring(tmp_path, width, height):
    path = tmp_path / "big.jpg"
    Image.new("L", (16, 16)).save(path)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("width, height", [(20000, 20000), (12000, 8000)])   # over twice Pillow's limit; between
def test_an_image_declaring_too_many_pixels_names_its_size(tmp_path, width, height):
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(width, height))
    with pytest.raises(ImageFileError) as info:
        read_image(path, 32, 1)
    assert info.value.reason == (f"image too large: {width}x{height} pixels, more than the "
                                 f"{Image.MAX_IMAGE_PIXELS} allowed (PIL.Image.MAX_IMAGE_PIXELS)")
    jpeg = jpeg_declaring(tmp_path, 65000, 65000)
    with pytest.raises(ImageFileError, match="image too large: 65000x65000 pixels"):
        read_image(jpeg, 32, 1)


def test_a_folder_names_the_huge_image_in_one_plain_stderr_line(tmp_path, capsys, recwarn):
    (tmp_path / "images").mkdir()
    for i in range(3):
        Image.new("L", (40, 40), 10 * i).save(tmp_path / "images" / f"{i}.png")
    (tmp_path / "images" / "huge.png").write_bytes(png_header_only(20000, 20000))
    images = load_folder(tmp_path / "images", 32, 1, tmp_path / "data")
    assert images.shape == (3, 1, 32, 32)
    skipped = [line for line in capsys.readouterr().err.splitlines() if line.startswith("skipped")]
    assert skipped == [f"skipped 1 of 4 files ({tmp_path / 'images' / 'huge.png'}: image too large: 20000x20000 "
                       f"pixels, more than the {Image.MAX_IMAGE_PIXELS} allowed (PIL.Image.MAX_IMAGE_PIXELS))"]
    assert len(recwarn) == 0, [str(w.message) for w in recwarn]


# --------------------------------------------------------------------------
# Weights with the wrong names
# --------------------------------------------------------------------------

def test_wrong_weight_names_list_the_unexpected_and_the_missing(model_folder):
    weights = refnet.load_npz(model_folder / "weights.npz")
    weights["surprise.weight"] = weights.pop("fc_mean.weight")
    weights["extra.bias"] = np.zeros(3, np.float32)
    refnet.save_npz(model_folder / "weights.npz", weights)
    with pytest.raises(ModelFileError) as info:
        load_model(model_folder)
    message = assert_one_line(info.value, model_folder / "weights.npz")
    assert "unexpected parameter(s) ['extra.bias', 'surprise.weight']" in message
    assert "missing parameter(s) ['fc_mean.weight']" in message


def test_many_wrong_names_are_counted_not_all_listed(model_folder):
    weights = refnet.load_npz(model_folder / "weights.npz")
    weights.update({f"junk{i:03d}": np.zeros(1, np.float32) for i in range(500)})
    refnet.save_npz(model_folder / "weights.npz", weights)
    with pytest.raises(ModelFileError, match=r"'junk007'\] and 492 more for JointVAE") as info:
        load_model(model_folder)
    assert len(str(info.value)) < 1000


def test_weights_without_a_first_convolution_are_a_model_file_error(model_folder):
    weights = refnet.load_npz(model_folder / "weights.npz")
    weights["img_to_features.0.weight"] = np.zeros(5, np.float32)
    refnet.save_npz(model_folder / "weights.npz", weights)
    with pytest.raises(ModelFileError, match="no 4-d 'img_to_features.0.weight'"):
        load_model(model_folder)


@pytest.mark.parametrize("field, value", [("dataset", ["mnist"]), ("image_shape", 5), ("image_shape", [1, 32, 1e400]),
                                          ("lr", 10**400), ("beta", 10**400)])
def test_hostile_spec_values_are_spec_errors(model_folder, field, value):
    spec = json.loads((model_folder / "specs.json").read_text())
    spec[field] = value
    (model_folder / "specs.json").write_text(json.dumps(spec))
    with pytest.raises(SpecError) as info:
        load_model(model_folder)
    assert_one_line(info.value, model_folder / "specs.json")


# --------------------------------------------------------------------------
# Fuzzing: truncations and byte flips of good files
# --------------------------------------------------------------------------

def damaged(data, cut, flips):
    """`data` cut to `cut` bytes (None: whole), then each (fraction, xor) flip applied."""
    out = bytearray(data if cut is None else data[:cut])
    for where, xor in flips:
        if out:
            out[int(where * len(out)) % len(out)] ^= xor
    return bytes(out)


damage = dict(cut=st.one_of(st.none(), st.integers(0, 2000)),
              flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=4))


def fuzz(hyp_settings, path, good, load, *, max_examples=None, **strategies):
    """load(path) on damaged copies of `good`: a result, or a one-line error naming the file; never a hang or a change."""
    settings = hyp_settings if max_examples is None else hyp_settings.__class__(hyp_settings, max_examples=max_examples)

    @settings
    @given(**strategies)
    def run(cut, flips):
        data = damaged(good, cut, flips)
        path.write_bytes(data)
        try:
            with time_limit(5):
                load(path)
        except (ValueError, FileNotFoundError) as e:
            assert_one_line(e, path)
        assert path.read_bytes() == data
    run()


def test_fuzzed_npz_bytes(tmp_path, hyp_settings):
    good = tmp_path / "good.npz"
    refnet.save_npz(good, {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "step": np.array(7)})
    fuzz(hyp_settings, tmp_path / "weights.npz", good.read_bytes(), refnet.load_npz, **damage)
    compressed = io.BytesIO()
    np.savez_compressed(compressed, w=np.arange(300, dtype=np.float32), name=np.array("x"))
    fuzz(hyp_settings, tmp_path / "compressed.npz", compressed.getvalue(), refnet.load_npz, **damage)


def test_fuzzed_specs_json_bytes(tmp_path, hyp_settings):
    good = json.dumps({**SPEC, "image_shape": [1, 32, 32]}, indent=2).encode()
    fuzz(hyp_settings, tmp_path / "specs.json", good, load_spec, **damage)


def test_fuzzed_model_pt_bytes(tmp_path, hyp_settings):
    if not REFERENCE_PT.is_file():
        pytest.skip("reference model.pt not present")
    head = REFERENCE_PT.read_bytes()[:20_000]       # the pickles and the first storages: where the parsing is
    fuzz(hyp_settings, tmp_path / "model.pt", head, load_legacy_torch, max_examples=30,
         cut=st.one_of(st.none(), st.integers(0, 8000)),
         flips=st.lists(st.tuples(st.floats(0, 0.25, exclude_max=True), st.integers(1, 255)), max_size=4))
