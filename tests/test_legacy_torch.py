"""Tests for the torch-free reader of legacy torch.save files and the restricted unpickler."""

import collections
import io
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from jointvae.files.legacy_torch import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    LegacyTorchFormatError,
    load_legacy_torch,
)
from jointvae.files.safe_unpickle import RestrictedUnpickler, restricted_load

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference_models" / "mnist"
MODEL_PT = REFERENCE_DIR / "model.pt"
WEIGHTS_NPZ = REFERENCE_DIR / "weights.npz"

needs_reference = pytest.mark.skipif(
    not (MODEL_PT.is_file() and WEIGHTS_NPZ.is_file()),
    reason=f"reference model not found in {REFERENCE_DIR}")


# --------------------------------------------------------------------------
# Helpers that write small legacy-format files without torch: fake `torch`
# modules give pickle the global names torch itself would write.
# --------------------------------------------------------------------------

class FakeStorage:
    """One storage: its torch class name, a key and the flat data."""

    def __init__(self, type_name, key, data, view=None):
        self.type_name, self.key, self.data, self.view = type_name, key, np.asarray(data), view


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor
        return rebuild, (self.storage, self.offset, self.size, self.stride)


@pytest.fixture
def fake_torch(monkeypatch):
    """Install stand-in `torch` / `torch._utils` modules so pickle can name their globals."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("FloatStorage", "DoubleStorage", "LongStorage"):
        storage_class = type(name, (), {"__module__": "torch"})
        setattr(torch, name, storage_class)
    utils._rebuild_tensor = lambda *args: None
    utils._rebuild_tensor.__module__, utils._rebuild_tensor.__qualname__ = "torch._utils", "_rebuild_tensor"
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def write_legacy_file(path, state_dict, storages, torch):
    """Write `state_dict` (name -> FakeTensor) in the legacy layout; `storages` in data order."""
    class LegacyPickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, FakeStorage):
                # (tag, storage class, key, device, size of the whole storage, view or None)
                return ("storage", getattr(torch, obj.type_name), obj.key, "cpu",
                        obj.data.size, obj.view)
            return None

    out = io.BytesIO()
    for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION,
                   {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}):
        pickle.dump(header, out, protocol=2)
    LegacyPickler(out, protocol=2).dump(collections.OrderedDict(state_dict))
    pickle.dump([s.key for s in storages], out, protocol=2)
    for storage in storages:
        out.write(storage.data.size.to_bytes(8, "little"))
        out.write(storage.data.astype(storage.data.dtype.newbyteorder("<")).tobytes())
    Path(path).write_bytes(out.getvalue())


# --------------------------------------------------------------------------
# The published model
# --------------------------------------------------------------------------

@needs_reference
def test_model_pt_equals_weights_npz():
    arrays = load_legacy_torch(MODEL_PT)
    with np.load(WEIGHTS_NPZ, allow_pickle=False) as expected:
        assert list(arrays) == list(expected.files)  # same keys, same order
        for name in expected.files:
            assert arrays[name].dtype == np.float32 == expected[name].dtype, name
            assert arrays[name].shape == expected[name].shape, name
            assert np.array_equal(arrays[name], expected[name]), name
            assert arrays[name].flags.c_contiguous and arrays[name].flags.owndata, name


@needs_reference
@pytest.mark.parametrize("keep_bytes, problem", [
    (lambda size: size - 1000, "truncated storage data for key"),  # inside the last storage
    (lambda size: 1000, "truncated or corrupt state_dict pickle"),  # inside the state_dict pickle
])
def test_truncated_model_pt_gives_one_line_error(tmp_path, keep_bytes, problem):
    truncated = tmp_path / "model.pt"
    data = MODEL_PT.read_bytes()
    truncated.write_bytes(data[:keep_bytes(len(data))])
    with pytest.raises(LegacyTorchFormatError) as info:
        load_legacy_torch(truncated)
    message = str(info.value)
    assert message.startswith(f"{truncated}: ") and problem in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


@needs_reference
def test_corrupt_storage_count_is_reported(tmp_path):
    """An element count that disagrees with the pickle is named, not trusted."""
    data = bytearray(MODEL_PT.read_bytes())
    # The first storage header follows the key-list pickle; find it by its known count (512).
    position = data.index((512).to_bytes(8, "little"))
    data[position:position + 8] = (2**60).to_bytes(8, "little")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(bytes(data))
    with pytest.raises(LegacyTorchFormatError, match="holds 1152921504606846976 elements"):
        load_legacy_torch(broken)


def test_zip_format_is_named(tmp_path):
    path = tmp_path / "new.pt"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(LegacyTorchFormatError, match="zip-based torch.save format"):
        load_legacy_torch(path)


# --------------------------------------------------------------------------
# Synthetic files: strides, offsets, shared storages, views, other dtypes
# --------------------------------------------------------------------------

def test_synthetic_legacy_file_round_trip(tmp_path, fake_torch):
    weights = FakeStorage("FloatStorage", "100", np.arange(12, dtype=np.float32))
    doubles = FakeStorage("DoubleStorage", "7", np.linspace(0, 1, 5))
    counts = FakeStorage("LongStorage", "8", np.array([3, -2, 2**40], dtype=np.int64))
    # A view: elements 2..5 of a root storage of 6 elements.
    view_root = FakeStorage("FloatStorage", "9", np.arange(6, dtype=np.float32) * 10,
                            view=("9v", 2, 4))
    state_dict = {
        "matrix": FakeTensor(weights, 0, (3, 4), (4, 1)),
        "transposed": FakeTensor(weights, 0, (4, 3), (1, 4)),    # non-contiguous strides
        "tail": FakeTensor(weights, 10, (2,), (1,)),             # storage offset, shared storage
        "doubles": FakeTensor(doubles, 1, (2, 2), (2, 1)),
        "counts": FakeTensor(counts, 0, (3,), (1,)),
        "scalar": FakeTensor(counts, 2, (), ()),                 # 0-d tensor
        "from_view": FakeTensor(view_root, 1, (2,), (1,)),       # root[2 + 1 : 2 + 3]
    }
    path = tmp_path / "synthetic.pt"
    write_legacy_file(path, state_dict, [weights, doubles, counts, view_root], fake_torch)

    arrays = load_legacy_torch(path)
    full = np.arange(12, dtype=np.float32)
    assert list(arrays) == list(state_dict)
    np.testing.assert_array_equal(arrays["matrix"], full.reshape(3, 4))
    np.testing.assert_array_equal(arrays["transposed"], full.reshape(3, 4).T)
    assert arrays["transposed"].flags.c_contiguous
    np.testing.assert_array_equal(arrays["tail"], [10, 11])
    assert arrays["doubles"].dtype == np.float64
    np.testing.assert_array_equal(arrays["doubles"], np.linspace(0, 1, 5)[1:5].reshape(2, 2))
    assert arrays["counts"].dtype == np.int64
    np.testing.assert_array_equal(arrays["counts"], [3, -2, 2**40])
    assert arrays["scalar"].shape == () and arrays["scalar"] == 2**40
    np.testing.assert_array_equal(arrays["from_view"], [30, 40])


def test_tensor_outside_its_storage_is_refused(tmp_path, fake_torch):
    storage = FakeStorage("FloatStorage", "1", np.zeros(4, dtype=np.float32))
    path = tmp_path / "bad_stride.pt"
    write_legacy_file(path, {"w": FakeTensor(storage, 0, (2, 2), (3, 1))}, [storage], fake_torch)
    with pytest.raises(LegacyTorchFormatError, match="reaches element 4 of a storage of 4"):
        load_legacy_torch(path)


# --------------------------------------------------------------------------
# Refusing code in pickles
# --------------------------------------------------------------------------

class RunsCode:
    """Unpickling this with plain pickle would call os.mkdir(marker)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_malicious_legacy_file_is_refused(tmp_path):
    marker = tmp_path / "code_ran"
    out = io.BytesIO()
    for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    pickle.dump(collections.OrderedDict(w=RunsCode(marker)), out, protocol=2)
    path = tmp_path / "evil.pt"
    path.write_bytes(out.getvalue())

    with pytest.raises(pickle.UnpicklingError) as info:
        load_legacy_torch(path)
    message = str(info.value)
    assert message == f"refusing to load {os.mkdir.__module__}.mkdir from {path}"
    assert not marker.exists()


def test_restricted_unpickler_allows_only_the_allowlist(tmp_path):
    allowed = {("collections", "OrderedDict"): collections.OrderedDict}
    data = pickle.dumps(collections.OrderedDict(a=1), protocol=2)
    assert restricted_load(io.BytesIO(data), allowed) == {"a": 1}

    marker = tmp_path / "code_ran"
    evil = pickle.dumps(RunsCode(marker))
    with pytest.raises(pickle.UnpicklingError, match=r"^refusing to load (posix|nt|os)\.mkdir from test data$"):
        RestrictedUnpickler(io.BytesIO(evil), allowed, what="test data").load()
    assert not marker.exists()
    # An empty allowlist refuses even harmless classes.
    with pytest.raises(pickle.UnpicklingError, match="collections.OrderedDict"):
        restricted_load(io.BytesIO(data), {})


def test_restricted_unpickler_refuses_persistent_ids_without_handler():
    class WithPersistentId(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", 1) if obj == "external" else None

    out = io.BytesIO()
    WithPersistentId(out, protocol=2).dump(["external"])
    with pytest.raises(pickle.UnpicklingError):
        restricted_load(io.BytesIO(out.getvalue()), {})
    seen = []
    loaded = restricted_load(io.BytesIO(out.getvalue()), {},
                             persistent_load=lambda pid: seen.append(pid) or "resolved")
    assert loaded == ["resolved"] and seen == [("storage", 1)]
