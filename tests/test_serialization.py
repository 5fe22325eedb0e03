"""Checkpoint files: round trips, atomic writes, and every way a file can be damaged."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chainrule import serialization
from chainrule.serialization import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CheckpointError,
    atomic_write,
    inspect_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

# A pid above Linux's maximum (2**22) and macOS's (99999): never a running process.
DEAD_PID = 2**22 + 4242


def sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "model/fc1.W": rng.standard_normal((4, 3)).astype(np.float32),
        "model/fc1.b": np.zeros(3, dtype=np.float32),
        "optim/m/0": rng.standard_normal((4, 3)),
        "optim/step": np.array(7, dtype=np.int64),
        "scalar.f16": np.array(1.5, dtype=np.float16),
        "empty": np.zeros((0,), dtype=np.float64),
        "empty3d": np.zeros((2, 0, 5), dtype=np.int32),
        "mask": np.array([[True, False], [False, True]]),
        "u8": np.arange(256, dtype=np.uint8).reshape(16, 16),
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "u64": np.array([0, 2**64 - 1], dtype=np.uint64),
        "c128": np.array([1 + 2j, -3.5j]),
        "c64": np.array([1 - 1j], dtype=np.complex64),
        "big-endian": np.arange(6, dtype=">i4").reshape(2, 3),
        "ünïcode name with spaces": np.ones(2),
        "../../escape": np.ones(1),
    }


def assert_same_arrays(expected: dict, actual: dict) -> None:
    assert list(actual) == list(expected)
    for name, value in expected.items():
        value = np.asarray(value)
        got = actual[name]
        assert got.dtype == value.dtype, name
        assert got.shape == value.shape, name
        np.testing.assert_array_equal(got, value, err_msg=name)


def only_file(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------------


def test_round_trip_many_dtypes_and_shapes(tmp_path):
    arrays = sample_arrays()
    meta = {"epoch": 3, "lr": 0.01, "name": "mlp", "layers": [784, 50, 10], "nested": {"a": None}}
    path = tmp_path / "model.ckpt"
    returned = save_checkpoint(path, arrays, meta)
    assert returned == path
    loaded, loaded_meta = load_checkpoint(path)
    assert_same_arrays(arrays, loaded)
    assert loaded_meta == meta
    for array in loaded.values():
        assert array.flags.c_contiguous
        assert array.flags.writeable
    assert only_file(tmp_path) == ["model.ckpt"]  # nothing escaped, no temp left


def test_zero_d_arrays_stay_zero_d(tmp_path):
    save_checkpoint(tmp_path / "c", {"s": np.float64(2.5), "i": np.array(3)})
    loaded, _ = load_checkpoint(tmp_path / "c")
    assert loaded["s"].shape == () and loaded["s"] == 2.5
    assert loaded["i"].shape == () and loaded["i"] == 3


def test_non_contiguous_and_array_like_inputs(tmp_path):
    base = np.arange(24.0).reshape(4, 6)
    arrays = {"T": base.T, "strided": base[::2, 1::2], "fortran": np.asfortranarray(base)}
    save_checkpoint(tmp_path / "c", {**arrays, "list": [1, 2, 3]})
    loaded, _ = load_checkpoint(tmp_path / "c")
    assert_same_arrays({**arrays, "list": np.array([1, 2, 3])}, loaded)


def test_meta_defaults_and_json_semantics(tmp_path):
    save_checkpoint(tmp_path / "a", {"x": np.ones(1)})
    assert load_checkpoint(tmp_path / "a")[1] == {}
    save_checkpoint(tmp_path / "b", {"x": np.ones(1)}, {"shape": (2, 3), "ok": True})
    assert load_checkpoint(tmp_path / "b")[1] == {"shape": [2, 3], "ok": True}


def test_empty_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "c", {}, {"note": "nothing"})
    assert load_checkpoint(tmp_path / "c") == ({}, {"note": "nothing"})


def test_output_is_deterministic(tmp_path):
    arrays, meta = sample_arrays(), {"epoch": 1}
    save_checkpoint(tmp_path / "a", arrays, meta)
    save_checkpoint(tmp_path / "b", arrays, meta)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_compressed_round_trip(tmp_path):
    arrays = {"zeros": np.zeros((100, 100)), "w": np.arange(10.0)}
    save_checkpoint(tmp_path / "plain", arrays)
    save_checkpoint(tmp_path / "small", arrays, compress=True)
    assert (tmp_path / "small").stat().st_size < (tmp_path / "plain").stat().st_size / 10
    assert_same_arrays(arrays, load_checkpoint(tmp_path / "small")[0])


def test_file_layout_is_a_readable_zip(tmp_path):
    path = save_checkpoint(tmp_path / "c", {"model/W": np.ones((2, 3), np.float32)}, {"k": 1})
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["manifest.json", "arrays/0.npy"]
        manifest = json.loads(zf.read("manifest.json"))
        array = np.load(io.BytesIO(zf.read("arrays/0.npy")), allow_pickle=False)
    assert manifest["format"] == FORMAT_NAME and manifest["version"] == FORMAT_VERSION
    (entry,) = manifest["arrays"]
    assert entry["name"] == "model/W" and entry["shape"] == [2, 3] and entry["dtype"] == "<f4"
    assert len(entry["sha256"]) == 64
    assert manifest["meta"] == {"k": 1}
    np.testing.assert_array_equal(array, np.ones((2, 3)))
    assert inspect_checkpoint(path) == manifest


def test_overwrite_replaces_previous_checkpoint(tmp_path):
    path = tmp_path / "c"
    save_checkpoint(path, {"a": np.ones(3)}, {"v": 1})
    save_checkpoint(path, {"b": np.zeros(2)}, {"v": 2})
    loaded, meta = load_checkpoint(path)
    assert list(loaded) == ["b"] and meta == {"v": 2}
    assert only_file(tmp_path) == ["c"]


_DTYPES = st.sampled_from(["<f4", "<f8", ">f8", "<f2", "<i2", "<i8", "<u4", "|b1", "<c8", "|u1"])


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        _DTYPES.flatmap(
            lambda dt: hnp.arrays(
                np.dtype(dt),
                hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
                elements={"allow_nan": False, "allow_infinity": False}
                if np.dtype(dt).kind in "fc"
                else None,
            )
        ),
        max_size=4,
    )
)
def test_round_trip_property(arrays):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.ckpt"
        save_checkpoint(path, arrays)
        loaded, _ = load_checkpoint(path)
    assert_same_arrays(arrays, loaded)


# --------------------------------------------------------------------------------------------
# what is refused at save time (nothing is written)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [np.array([1.0, np.nan]), np.array([np.inf], np.float32), np.array([1 + 1j * np.inf])]
)
def test_non_finite_refused_with_array_name(tmp_path, bad):
    path = tmp_path / "c"
    arrays = {"ok": np.ones(2), "model/fc1.W": bad}
    with pytest.raises(CheckpointError, match=r"model/fc1\.W") as info:
        save_checkpoint(path, arrays)
    assert "require_finite=False" in str(info.value)
    assert only_file(tmp_path) == []


def test_non_finite_allowed_when_asked(tmp_path):
    arrays = {"w": np.array([np.nan, np.inf, -np.inf, 1.0])}
    save_checkpoint(tmp_path / "c", arrays, require_finite=False)
    assert_same_arrays(arrays, load_checkpoint(tmp_path / "c")[0])


def test_non_finite_refusal_keeps_previous_file(tmp_path):
    path = save_checkpoint(tmp_path / "c", {"w": np.ones(2)})
    before = path.read_bytes()
    with pytest.raises(CheckpointError):
        save_checkpoint(path, {"w": np.array([np.nan])})
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "arrays",
    [
        {"obj": np.array([{}, None], dtype=object)},
        {"txt": np.array(["a", "b"])},
        {"rec": np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])},
        {"": np.ones(1)},
        {3: np.ones(1)},
    ],
    ids=["object", "unicode", "structured", "empty-name", "int-name"],
)
def test_unsupported_arrays_or_names_refused(tmp_path, arrays):
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path / "c", arrays)
    assert only_file(tmp_path) == []


def test_bad_meta_refused(tmp_path):
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "c", {"w": np.ones(1)}, {"f": object()})
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "c", {"w": np.ones(1)}, ["not", "a", "mapping"])
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "c", [np.ones(1)])
    assert only_file(tmp_path) == []


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        save_checkpoint(tmp_path / "no" / "such" / "dir" / "c", {"w": np.ones(1)})


# --------------------------------------------------------------------------------------------
# atomicity and temp files
# --------------------------------------------------------------------------------------------


def test_failed_replace_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "model.ckpt", {"w": np.ones(3)}, {"v": 1})
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        save_checkpoint(path, {"w": np.zeros(3)}, {"v": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert only_file(tmp_path) == ["model.ckpt"]


@pytest.mark.parametrize("exc_type", [OSError, KeyboardInterrupt])
def test_failure_midway_leaves_old_file_and_no_temp(tmp_path, monkeypatch, exc_type):
    path = save_checkpoint(tmp_path / "model.ckpt", {"w": np.ones(3)}, {"v": 1})
    before = path.read_bytes()
    real_write_array = np.lib.format.write_array
    calls = []

    def flaky_write_array(fp, array, *args, **kwargs):
        calls.append(array.shape)
        if len(calls) == 2:
            raise exc_type("interrupted while writing")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", flaky_write_array)
    with pytest.raises(exc_type):
        save_checkpoint(path, {"a": np.zeros(1000), "b": np.zeros(5), "c": np.zeros(2)})
    monkeypatch.undo()
    assert len(calls) == 2
    assert path.read_bytes() == before
    assert only_file(tmp_path) == ["model.ckpt"]
    assert load_checkpoint(path)[1] == {"v": 1}


@pytest.mark.skipif(os.name != "posix", reason="dead-process detection is POSIX-only")
def test_stale_temps_of_dead_processes_are_cleaned(tmp_path):
    stale = tmp_path / f".model.ckpt.tmp-{DEAD_PID}-0123abcd"
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / f".model.ckpt.tmp-{os.getppid()}-89abcdef"  # our parent is running
    live.write_bytes(b"someone else is writing")
    other_target = tmp_path / f".other.ckpt.tmp-{DEAD_PID}-0123abcd"
    other_target.write_bytes(b"not ours to clean")
    unrelated = tmp_path / ".model.ckpt.tmp-notapid"
    unrelated.write_bytes(b"?")

    save_checkpoint(tmp_path / "model.ckpt", {"w": np.ones(1)})
    assert not stale.exists()
    assert live.exists() and other_target.exists() and unrelated.exists()


def test_atomic_write_helper(tmp_path):
    target = tmp_path / "f.bin"
    with atomic_write(target) as fh:
        fh.write(b"one")
        assert not target.exists()  # nothing visible before the block ends
        (temp,) = [p for p in tmp_path.iterdir()]
        assert temp.name.startswith(".f.bin.tmp-") and f"-{os.getpid()}-" in temp.name
    assert target.read_bytes() == b"one"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"two")
        raise RuntimeError("abort")
    assert target.read_bytes() == b"one"
    assert only_file(tmp_path) == ["f.bin"]


# --------------------------------------------------------------------------------------------
# damaged and foreign files
# --------------------------------------------------------------------------------------------


@pytest.fixture
def good_checkpoint(tmp_path) -> Path:
    arrays = {
        "model/fc1.W": np.full(64, 0x5A, dtype=np.uint8),
        "optim/m/0": np.arange(10.0),
    }
    return save_checkpoint(tmp_path / "good.ckpt", arrays, {"epoch": 2})


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.ckpt"):
        load_checkpoint(tmp_path / "nope.ckpt")


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -1, -22])
def test_truncated_file(good_checkpoint, keep):
    data = good_checkpoint.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    good_checkpoint.write_bytes(data[:cut])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(good_checkpoint)
    assert str(good_checkpoint) in str(info.value)


def test_flipped_byte_in_array_names_the_array(good_checkpoint):
    data = bytearray(good_checkpoint.read_bytes())
    offset = data.find(b"\x5a" * 64)
    assert offset > 0
    data[offset + 10] ^= 0xFF
    good_checkpoint.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum") as info:
        load_checkpoint(good_checkpoint)
    assert "'model/fc1.W'" in str(info.value)
    assert str(good_checkpoint) in str(info.value)


def rewrite_zip(path: Path, replace: dict[str, bytes], drop: tuple[str, ...] = ()) -> None:
    """Rewrite a checkpoint's entries (with valid CRCs) to simulate tampering."""
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    entries.update(replace)
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in entries.items():
            if name not in drop:
                zf.writestr(name, content)


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_altered_array_with_valid_crc_fails_sha256(good_checkpoint):
    tampered = np.full(64, 0x5A, dtype=np.uint8)
    tampered[3] = 0
    rewrite_zip(good_checkpoint, {"arrays/0.npy": npy_bytes(tampered)})
    with pytest.raises(CheckpointError, match=r"'model/fc1\.W'.*sha256"):
        load_checkpoint(good_checkpoint)


def test_shape_or_dtype_disagreeing_with_manifest(good_checkpoint):
    rewrite_zip(good_checkpoint, {"arrays/1.npy": npy_bytes(np.arange(10, dtype=np.float32))})
    with pytest.raises(CheckpointError, match=r"'optim/m/0'.*dtype"):
        load_checkpoint(good_checkpoint)
    rewrite_zip(good_checkpoint, {"arrays/1.npy": npy_bytes(np.arange(11.0))})
    with pytest.raises(CheckpointError, match=r"'optim/m/0'.*shape"):
        load_checkpoint(good_checkpoint)


class Explosive:
    """Unpickling this would raise; the loader must never get that far."""

    def __reduce__(self):
        return (pytest.fail, ("load_checkpoint unpickled data",))


def test_pickled_array_is_never_unpickled(good_checkpoint):
    payload = npy_bytes(np.array([Explosive()], dtype=object), allow_pickle=True)
    rewrite_zip(good_checkpoint, {"arrays/1.npy": payload})
    with pytest.raises(CheckpointError, match="'optim/m/0'"):
        load_checkpoint(good_checkpoint)


def edit_manifest(path: Path, edit) -> None:
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    edit(manifest)
    rewrite_zip(path, {"manifest.json": json.dumps(manifest).encode()})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format="something-else"), "format"),
        (lambda m: m.update(version=FORMAT_VERSION + 1), "newer"),
        (lambda m: m.update(version="1"), "version"),
        (lambda m: m.pop("arrays"), "arrays"),
        (lambda m: m.update(meta=[1, 2]), "meta"),
        (lambda m: m["arrays"][0].update(dtype="|O"), "not allowed"),
        (lambda m: m["arrays"][0].update(dtype="no-such-dtype"), "invalid dtype"),
        (lambda m: m["arrays"][0].update(shape=[-1]), "invalid shape"),
        (lambda m: m["arrays"][0].update(sha256="xyz"), "invalid sha256"),
        (lambda m: m["arrays"][1].update(name="model/fc1.W"), "twice"),
        (lambda m: m["arrays"][1].update(file="arrays/99.npy"), "missing"),
    ],
)
def test_invalid_manifest(good_checkpoint, edit, message):
    edit_manifest(good_checkpoint, edit)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(good_checkpoint)
    assert str(good_checkpoint) in str(info.value)


def test_manifest_missing_or_not_json(good_checkpoint, tmp_path):
    rewrite_zip(good_checkpoint, {"manifest.json": b"{not json"})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(good_checkpoint)
    npz = tmp_path / "plain.npz"
    np.savez(npz, a=np.ones(2))  # a valid zip, but no manifest
    with pytest.raises(CheckpointError, match="manifest") as info:
        load_checkpoint(npz)
    assert str(npz) in str(info.value)
    with pytest.raises(CheckpointError, match="manifest"):
        inspect_checkpoint(npz)


def test_random_non_zip_file(tmp_path):
    path = tmp_path / "random.bin"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(CheckpointError, match="not a ZIP") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_error_type_is_value_error():
    assert issubclass(CheckpointError, ValueError)
    assert serialization.__all__  # the module documents its public names
