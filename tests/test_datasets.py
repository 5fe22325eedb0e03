"""IDX reading/writing and the MNIST loaders, on tiny files written here (no network, ever).

Tests marked ``slow`` read the real files from ``$CHAINRULE_DATA`` or ``../shared/data``
beside the repository (see ``tests/mnist_data.py``) and are skipped, visibly, when absent.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import chainrule.datasets.mnist as mnist_module
from chainrule.datasets import (
    FASHION_MNIST_CLASSES,
    DatasetError,
    default_cache_dir,
    ensure_dataset,
    load_fashion_mnist,
    load_mnist,
    parse_idx,
    read_idx,
    write_idx,
)
from chainrule.datasets.mnist import FASHION_MNIST, MNIST, DatasetSpec, FileSpec
from mnist_data import FILE_NAMES, MIRRORS, Tiny, real_data_root

#: The user's CHAINRULE_DATA, saved before the fixtures below clear it for each test.
USER_DATA = os.environ.get("CHAINRULE_DATA")


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Private cache dir, no CHAINRULE_* variables, and no way to reach the network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    monkeypatch.delenv("CHAINRULE_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(mnist_module, "_download", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)


# --------------------------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize(
    ("dtype", "shape"),
    [
        (np.uint8, (5, 28, 28)),
        (np.uint8, (7,)),
        (np.int8, (3, 4)),
        (np.int16, (2, 3, 4, 5)),
        (">i4", (6,)),
        (np.int32, (2, 2)),
        (np.float32, (3, 3)),
        ("<f8", (4,)),
        (np.uint8, (0, 28, 28)),
    ],
)
def test_idx_round_trip(tmp_path, dtype, shape, suffix):
    rng = np.random.default_rng(0)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        array = rng.standard_normal(shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    path = write_idx(tmp_path / f"data.idx{suffix}", array)
    assert path == tmp_path / f"data.idx{suffix}"
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    back = read_idx(path)
    assert back.shape == array.shape
    assert back.dtype == dtype.newbyteorder("=")
    assert back.dtype.isnative
    assert back.flags.writeable and back.flags.c_contiguous
    np.testing.assert_array_equal(back, array)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp left behind


def test_idx_known_bytes(tmp_path):
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255])
    (tmp_path / "m.idx").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "m.idx"), [[1, 2, 3], [4, 5, 255]])
    write_idx(tmp_path / "w.idx", np.array([[1, 2, 3], [4, 5, 255]], dtype=np.uint8))
    assert (tmp_path / "w.idx").read_bytes() == raw
    ints = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + (-2).to_bytes(4, "big", signed=True) + bytes(4)
    np.testing.assert_array_equal(parse_idx(ints), [-2, 0])


def test_gzip_detected_by_magic_bytes_not_suffix(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "a.gz", array)
    (tmp_path / "a.gz").rename(tmp_path / "compressed-without-suffix")
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed-without-suffix"), array)
    write_idx(tmp_path / "b.idx", array)
    (tmp_path / "b.idx").rename(tmp_path / "raw-despite-suffix.gz")
    np.testing.assert_array_equal(read_idx(tmp_path / "raw-despite-suffix.gz"), array)


def test_gzip_output_is_reproducible(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def _damage_cases():
    header = bytes([0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4])
    good = header + bytes(range(24))
    gz = gzip.compress(good, mtime=0)
    bad_crc = bytearray(gz)
    bad_crc[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    bad_size = bytearray(gz)
    bad_size[-1] ^= 0x01  # the ISIZE in the gzip trailer
    return {
        "empty": (b"", "too short"),
        "raw truncated": (good[:-1], "truncated"),
        "raw too long": (good + b"\x00", "too long"),
        "header cut": (good[:10], "truncated IDX header"),
        "bad magic": (b"\x01\x02" + good[2:], "magic"),
        "text file": (b"hello, world, this is not IDX", "magic"),
        "unknown type": (good[:2] + b"\x0a" + good[3:], "type code"),
        "zero dims": (bytes([0, 0, 8, 0]), "zero dimensions"),
        "gz truncated": (gz[:-10], "truncated"),
        "gz bad crc": (bytes(bad_crc), "corrupted"),
        "gz bad size": (bytes(bad_size), "corrupted"),
        "gz garbage": (gz[:12] + b"\xff" * 20 + gz[32:], "gzip"),
        "gz of truncated idx": (gzip.compress(good[:-3]), "truncated"),
    }


@pytest.mark.parametrize("case", list(_damage_cases()))
def test_damaged_idx_names_file_and_problem(tmp_path, case):
    data, problem = _damage_cases()[case]
    path = tmp_path / "damaged-idx3-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=problem) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_read_missing_idx(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz")


def test_write_idx_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "x.idx", np.arange(3, dtype=np.int64))
    with pytest.raises(TypeError):
        write_idx(tmp_path / "x.idx", np.array([True]))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x.idx", np.array(3, dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_idx_is_atomic(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "x.gz", np.ones(4, dtype=np.uint8))
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("no space left")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="no space left"):
        write_idx(path, np.zeros(4, dtype=np.uint8))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.gz"]


# --------------------------------------------------------------------------------------------
# tiny stand-in datasets with their own pinned checksums
# --------------------------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Tiny:
    data = Tiny(tmp_path, "mnist", seed=1)
    monkeypatch.setitem(mnist_module._SPECS, "mnist", data.spec)
    return data


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "xdg-cache" / "chainrule" / "mnist"


def assert_is_tiny(result, tiny: Tiny) -> None:
    (x_train, t_train), (x_test, t_test) = result
    for x, t, split in ((x_train, t_train, "train"), (x_test, t_test, "test")):
        expected = tiny.arrays[f"{split}_images"]
        assert x.shape == (len(expected), 784)
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x, expected.reshape(len(expected), -1) / np.float32(255))
        assert t.dtype == np.int64
        np.testing.assert_array_equal(t, tiny.arrays[f"{split}_labels"])


def temp_files(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_default_cache_dir(tmp_path, monkeypatch):
    assert default_cache_dir() == tmp_path / "xdg-cache" / "chainrule"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "chainrule"


def test_data_dir_holding_the_files(tiny, tmp_path):
    folder = tiny.put(tmp_path / "here")
    assert_is_tiny(load_mnist(data_dir=folder), tiny)
    assert_is_tiny(load_mnist(data_dir=str(folder), download=False), tiny)


def test_data_dir_parent_with_subfolder(tiny, tmp_path):
    tiny.put(tmp_path / "datasets" / "mnist")
    assert_is_tiny(load_mnist(data_dir=tmp_path / "datasets"), tiny)


@pytest.mark.parametrize("subfolder", [True, False])
def test_env_var(tiny, tmp_path, monkeypatch, subfolder):
    root = tmp_path / "env-root"
    tiny.put(root / "mnist" if subfolder else root)
    monkeypatch.setenv("CHAINRULE_DATA", str(root))
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    assert_is_tiny(load_mnist(), tiny)


def test_user_cache(tiny, cache, monkeypatch):
    tiny.put(cache)
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    assert_is_tiny(load_mnist(), tiny)


def test_uncompressed_files_accepted(tiny, tmp_path):
    folder = tiny.put(tmp_path / "raw", raw=True)
    assert sorted(p.name for p in folder.iterdir())[0] == "t10k-images-idx3-ubyte"
    assert_is_tiny(load_mnist(data_dir=folder, download=False), tiny)


def test_files_may_come_from_different_places(tiny, tmp_path, cache, monkeypatch):
    tiny.put(tmp_path / "a", ["train_images"])
    tiny.put(tmp_path / "b" / "mnist", ["train_labels", "test_images"])
    tiny.put(cache, ["test_labels"])
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "b"))
    assert_is_tiny(load_mnist(data_dir=tmp_path / "a", download=False), tiny)


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_lookup_order_data_dir_then_env_then_cache(tiny, tmp_path, cache, monkeypatch):
    """A damaged copy later in the order is never even opened when an earlier one is fine."""
    good = tiny.put(tmp_path / "good")
    env_root = tiny.put(tmp_path / "env")
    tiny.put(cache)
    for name in FILE_NAMES.values():
        corrupt(env_root / name)
        corrupt(cache / name)
    monkeypatch.setenv("CHAINRULE_DATA", str(env_root))
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    assert_is_tiny(load_mnist(data_dir=good), tiny)  # data_dir first
    for name in FILE_NAMES.values():
        (cache / name).unlink()
    tiny.put(cache)
    for name in FILE_NAMES.values():
        shutil.copyfile(good / name, env_root / name)
        corrupt(cache / name)
    assert_is_tiny(load_mnist(), tiny)  # then CHAINRULE_DATA, before the cache


def test_corrupted_file_in_data_dir_is_an_error_even_if_a_good_copy_exists(
    tiny, tmp_path, monkeypatch
):
    bad = tiny.put(tmp_path / "bad")
    corrupt(bad / "train-labels-idx1-ubyte.gz")
    monkeypatch.setenv("CHAINRULE_DATA", str(tiny.put(tmp_path / "good")))
    with pytest.raises(DatasetError) as info:
        load_mnist(data_dir=bad)
    message = str(info.value)
    assert str(bad / "train-labels-idx1-ubyte.gz") in message
    assert tiny.spec.train_labels.sha256 in message and tiny.spec.train_labels.md5 in message


def test_corrupted_cache_file_without_download_is_an_error(tiny, cache, monkeypatch):
    tiny.put(cache)
    corrupt(cache / "t10k-images-idx3-ubyte.gz")
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte\.gz is corrupted"):
        load_mnist()


@pytest.mark.parametrize(
    ("kwargs", "shape", "dtype"),
    [
        ({"normalize": False}, (5, 784), np.uint8),
        ({"flatten": False}, (5, 1, 28, 28), np.float32),
        ({"normalize": False, "flatten": False}, (5, 1, 28, 28), np.uint8),
        ({"dtype": np.float64}, (5, 784), np.float64),
    ],
)
def test_image_options(tiny, tmp_path, kwargs, shape, dtype):
    (x, _), (x_test, _) = load_mnist(data_dir=tiny.put(tmp_path / "d"), **kwargs)
    assert x.shape == shape and x.dtype == dtype
    assert x_test.shape == (3, *shape[1:])
    assert x.flags.writeable and x.flags.c_contiguous
    pixels = tiny.arrays["train_images"]
    if dtype == np.uint8:
        np.testing.assert_array_equal(x.reshape(pixels.shape), pixels)
    else:
        np.testing.assert_array_equal(x.reshape(pixels.shape), pixels.astype(dtype) / 255.0)
        assert x.min() == 0.0 and x.max() == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_hot_labels(tiny, tmp_path, dtype):
    (_, t), (_, t_test) = load_mnist(
        data_dir=tiny.put(tmp_path / "d"), one_hot_label=True, dtype=dtype
    )
    assert t.shape == (5, 10) and t.dtype == dtype and t_test.shape == (3, 10)
    np.testing.assert_array_equal(t.argmax(axis=1), tiny.arrays["train_labels"])
    np.testing.assert_array_equal(t.sum(axis=1), np.ones(5))
    assert set(np.unique(t)) == {0.0, 1.0}


def test_non_float_dtype_rejected(tiny, tmp_path):
    with pytest.raises(ValueError, match="floating"):
        load_mnist(data_dir=tiny.put(tmp_path / "d"), dtype=np.int32)


def test_loaded_arrays_are_independent_copies(tiny, tmp_path):
    folder = tiny.put(tmp_path / "d")
    (x, t), _ = load_mnist(data_dir=folder, normalize=False)
    x[:] = 0
    t[:] = 0
    (x2, t2), _ = load_mnist(data_dir=folder, normalize=False)
    assert x2.any() and t2.any()


# --------------------------------------------------------------------------------------------
# nothing found
# --------------------------------------------------------------------------------------------


def test_offline_error_lists_missing_files_places_and_remedies(tiny, tmp_path, monkeypatch):
    given = tiny.put(tmp_path / "given", ["train_images", "test_labels"])
    (tmp_path / "envdir").mkdir()
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "envdir"))
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    with pytest.raises(DatasetError) as info:
        load_mnist(data_dir=given)
    message = str(info.value)
    assert "2 of 4 files not found" in message
    assert "train-labels-idx1-ubyte.gz" in message and "t10k-images-idx3-ubyte.gz" in message
    assert "train-images-idx3-ubyte.gz" not in message.split("\n")[0]
    for place in (given, given / "mnist", tmp_path / "envdir", default_cache_dir() / "mnist"):
        assert f"  {place}  (" in message
    for needle in ("CHAINRULE_DATA", "data_dir", "CHAINRULE_OFFLINE", "download=True", *MIRRORS):
        assert needle in message


@pytest.mark.parametrize("how", ["env", "argument"])
def test_a_missing_folder_is_named_at_once(tiny, tmp_path, monkeypatch, how):
    fake = use_mirrors(monkeypatch, tiny, "good", "good")
    bad = tmp_path / "no" / "such" / "dir"
    if how == "env":
        monkeypatch.setenv("CHAINRULE_DATA", str(bad))
    with pytest.raises(DatasetError) as info:
        load_mnist(data_dir=bad if how == "argument" else None, download=True)
    message = str(info.value)
    assert str(bad) in message and "no such folder" in message
    assert ("$CHAINRULE_DATA" in message) == (how == "env")
    assert fake.calls == []  # not one download tried


def test_download_false_never_downloads(tiny):
    with pytest.raises(DatasetError, match="download=False") as info:
        load_mnist(download=False)
    assert "4 of 4 files not found" in str(info.value)
    assert "CHAINRULE_DATA is not set" in str(info.value)


# --------------------------------------------------------------------------------------------
# downloading (with a fake downloader)
# --------------------------------------------------------------------------------------------


class FakeMirrors:
    """Replaces the downloader; each mirror is 'good', 'bad' (wrong bytes) or 'down'."""

    def __init__(self, tiny: Tiny, behaviour: dict[str, str]) -> None:
        self.tiny = tiny
        self.behaviour = behaviour
        self.calls: list[str] = []

    def __call__(self, url: str, out) -> None:
        self.calls.append(url)
        mirror, _, name = url.rpartition("/")
        kind = self.behaviour[mirror + "/"]
        if kind == "down":
            raise OSError("<urlopen error [Errno -2] Name or service not known>")
        data = self.tiny.contents[name]
        if kind == "bad":
            data = data[:-100] + b"<html>rate limited</html>"
        for start in range(0, len(data), 64):  # arrives in chunks, like a real download
            out.write(data[start : start + 64])


def use_mirrors(monkeypatch, tiny: Tiny, a: str, b: str) -> FakeMirrors:
    fake = FakeMirrors(tiny, {MIRRORS[0]: a, MIRRORS[1]: b})
    monkeypatch.setattr(mnist_module, "_download", fake)
    return fake


def test_download_from_good_mirror(tiny, cache, monkeypatch, capsys):
    fake = use_mirrors(monkeypatch, tiny, "good", "down")
    assert_is_tiny(load_mnist(), tiny)
    assert fake.calls == [MIRRORS[0] + name for name in FILE_NAMES.values()]
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILE_NAMES.values())
    assert "downloading" in capsys.readouterr().err
    fake.calls.clear()
    assert_is_tiny(load_mnist(), tiny)  # second time from the cache
    assert fake.calls == []


def test_bad_checksum_then_good_mirror(tiny, cache, monkeypatch):
    fake = use_mirrors(monkeypatch, tiny, "bad", "good")
    assert_is_tiny(load_mnist(), tiny)
    assert fake.calls[:2] == [
        MIRRORS[0] + FILE_NAMES["train_images"],
        MIRRORS[1] + FILE_NAMES["train_images"],
    ]
    assert len(fake.calls) == 8
    assert temp_files(cache) == []
    for name, data in tiny.contents.items():
        assert (cache / name).read_bytes() == data


def test_all_mirrors_failing(tiny, cache, monkeypatch):
    fake = use_mirrors(monkeypatch, tiny, "down", "bad")
    with pytest.raises(DatasetError) as info:
        load_mnist()
    message = str(info.value)
    assert len(fake.calls) == 8
    assert "4 of 4 files not found" in message
    assert "Download failed from every mirror" in message
    assert f"{MIRRORS[0]}train-images-idx3-ubyte.gz: <urlopen error" in message
    assert f"{MIRRORS[1]}train-images-idx3-ubyte.gz: checksum mismatch" in message
    assert list(cache.iterdir()) == []  # neither bad downloads nor temp files are kept


@pytest.mark.parametrize(
    "error",
    [
        urllib.error.URLError(socket.gaierror(-2, "Name or service not known")),
        urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
        ConnectionRefusedError(111, "Connection refused"),
    ],
)
def test_offline_stops_after_the_first_failure(tiny, cache, monkeypatch, capsys, error):
    calls = []

    def offline(url, out):
        calls.append(url)
        raise error

    monkeypatch.setattr(mnist_module, "_download", offline)
    with pytest.raises(DatasetError) as info:
        load_mnist()
    assert len(calls) == 1  # not 4 files x 2 mirrors
    message = str(info.value)
    assert "No network" in message and "CHAINRULE_OFFLINE=1" in message
    assert "CHAINRULE_DATA" in message


def test_a_mirror_that_is_down_is_not_offline(tiny, cache, monkeypatch):
    fake = use_mirrors(monkeypatch, tiny, "down", "good")  # plain OSError: try the next one
    load_mnist()
    assert len(fake.calls) == 8


def test_ensure_dataset_downloads_to_a_folder(tiny, tmp_path, monkeypatch):
    use_mirrors(monkeypatch, tiny, "good", "good")
    target = tmp_path / "mine"
    paths = ensure_dataset("mnist", download=True, download_to=target)
    assert sorted(p.name for p in paths.values()) == sorted(FILE_NAMES.values())
    assert all(p.parent == target for p in paths.values())
    assert not (default_cache_dir() / "mnist").exists()
    assert_is_tiny(load_mnist(data_dir=target, download=False), tiny)


def test_only_missing_files_are_downloaded(tiny, tmp_path, monkeypatch):
    folder = tiny.put(tmp_path / "d", ["train_images", "train_labels", "test_images"])
    fake = use_mirrors(monkeypatch, tiny, "good", "good")
    assert_is_tiny(load_mnist(data_dir=folder), tiny)
    assert fake.calls == [MIRRORS[0] + FILE_NAMES["test_labels"]]


def test_download_true_overrides_offline_env(tiny, monkeypatch):
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    fake = use_mirrors(monkeypatch, tiny, "good", "good")
    with pytest.raises(DatasetError, match="CHAINRULE_OFFLINE is set"):
        load_mnist()
    assert fake.calls == []
    assert_is_tiny(load_mnist(download=True), tiny)
    assert len(fake.calls) == 4


def test_corrupted_cache_file_is_downloaded_again(tiny, cache, monkeypatch):
    tiny.put(cache)
    corrupt(cache / "train-images-idx3-ubyte.gz")
    fake = use_mirrors(monkeypatch, tiny, "good", "good")
    assert_is_tiny(load_mnist(), tiny)
    assert fake.calls == [MIRRORS[0] + "train-images-idx3-ubyte.gz"]
    assert (cache / "train-images-idx3-ubyte.gz").read_bytes() == tiny.contents[
        "train-images-idx3-ubyte.gz"
    ]


def test_interrupted_download_leaves_no_temp(tiny, cache, monkeypatch):
    def interrupted(url, out):
        out.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(mnist_module, "_download", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_mnist()
    assert list(cache.iterdir()) == []


def test_ensure_dataset(tiny, tmp_path, monkeypatch):
    folder = tiny.put(tmp_path / "d")
    paths = ensure_dataset("mnist", data_dir=folder, download=False)
    assert paths == {role: folder / name for role, name in FILE_NAMES.items()}
    with pytest.raises(ValueError, match="unknown dataset"):
        ensure_dataset("cifar10")


def test_fashion_mnist_loader(tmp_path, monkeypatch):
    tiny = Tiny(tmp_path, "fashion-mnist", seed=2)
    monkeypatch.setitem(mnist_module._SPECS, "fashion-mnist", tiny.spec)
    tiny.put(tmp_path / "root" / "fashion-mnist")
    assert_is_tiny(load_fashion_mnist(data_dir=tmp_path / "root", download=False), tiny)
    assert len(FASHION_MNIST_CLASSES) == 10


def test_malformed_but_checksummed_files_are_rejected(tmp_path, monkeypatch):
    tiny = Tiny(tmp_path, "mnist", seed=3)
    bad_labels = np.array([0, 1, 2], dtype=np.uint8)  # 3 labels for 5 images
    write_idx(tiny.source / FILE_NAMES["train_labels"], bad_labels)
    tiny = _repin(tiny)
    monkeypatch.setitem(mnist_module._SPECS, "mnist", tiny.spec)
    with pytest.raises(DatasetError, match=r"5 images .* but 3 labels"):
        load_mnist(data_dir=tiny.source, download=False)


def _repin(tiny: Tiny) -> Tiny:
    """Recompute the tiny spec's checksums after its source files were rewritten."""
    specs = {}
    for role, name in FILE_NAMES.items():
        data = (tiny.source / name).read_bytes()
        tiny.contents[name] = data
        raw = gzip.decompress(data)
        specs[role] = FileSpec(
            name,
            len(data),
            hashlib.md5(data).hexdigest(),
            hashlib.sha256(data).hexdigest(),
            hashlib.md5(raw).hexdigest(),
            hashlib.sha256(raw).hexdigest(),
        )
    tiny.spec = DatasetSpec(key="mnist", title="Tiny mnist", mirrors=MIRRORS, **specs)
    return tiny


def test_pinned_tables_are_well_formed():
    for spec in (MNIST, FASHION_MNIST):
        assert set(spec.files) == set(FILE_NAMES)
        for role, fspec in spec.files.items():
            assert fspec.name == FILE_NAMES[role]
            for digest, length in ((fspec.md5, 32), (fspec.raw_md5, 32)):
                assert len(digest) == length and int(digest, 16) >= 0
            for digest in (fspec.sha256, fspec.raw_sha256):
                assert len(digest) == 64 and int(digest, 16) >= 0
        assert all(m.endswith("/") for m in spec.mirrors)
    assert MNIST.mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"


# --------------------------------------------------------------------------------------------
# the real files (slow)
# --------------------------------------------------------------------------------------------

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def real_data(monkeypatch) -> Path:
    # The autouse fixture has cleared CHAINRULE_DATA by now: look with the user's value.
    with monkeypatch.context() as m:
        if USER_DATA:
            m.setenv("CHAINRULE_DATA", USER_DATA)
        root = real_data_root("mnist", "fashion-mnist")
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    return root


@pytest.mark.slow
class TestRealData:
    def test_mnist_default(self, real_data):
        (x, t), (x_test, t_test) = load_mnist(data_dir=real_data)
        assert x.shape == (60000, 784) and x_test.shape == (10000, 784)
        assert x.dtype == np.float32 and t.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert np.bincount(t, minlength=10).tolist() == MNIST_TRAIN_COUNTS
        assert np.bincount(t_test, minlength=10).tolist() == MNIST_TEST_COUNTS
        assert t[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first training labels

    def test_mnist_unnormalized_unflattened_one_hot(self, real_data, monkeypatch):
        monkeypatch.setenv("CHAINRULE_DATA", str(real_data / "mnist"))
        (x, t), (x_test, t_test) = load_mnist(normalize=False, flatten=False, one_hot_label=True)
        assert x.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
        assert x.dtype == np.uint8 and x.min() == 0 and x.max() == 255
        assert t.shape == (60000, 10) and t.dtype == np.float32
        assert t.sum(axis=0).tolist() == MNIST_TRAIN_COUNTS
        assert t_test.sum(axis=0).tolist() == MNIST_TEST_COUNTS
        assert (t.sum(axis=1) == 1).all()

    def test_fashion_mnist(self, real_data):
        (x, t), (x_test, t_test) = load_fashion_mnist(data_dir=real_data, normalize=False)
        assert x.shape == (60000, 784) and x_test.shape == (10000, 784) and x.dtype == np.uint8
        assert np.bincount(t).tolist() == [6000] * 10
        assert np.bincount(t_test).tolist() == [1000] * 10

    def test_pinned_md5s_match_the_real_files(self, real_data):
        """Cross-checks the SHA-256 pins (used for verification) against the canonical MD5s."""
        for spec in (MNIST, FASHION_MNIST):
            for fspec in spec.files.values():
                data = (real_data / spec.key / fspec.name).read_bytes()
                assert len(data) == fspec.size
                assert hashlib.md5(data).hexdigest() == fspec.md5
                assert hashlib.sha256(data).hexdigest() == fspec.sha256
                raw = gzip.decompress(data)
                assert hashlib.md5(raw).hexdigest() == fspec.raw_md5
                assert hashlib.sha256(raw).hexdigest() == fspec.raw_sha256

    def test_wrong_dataset_folder_is_named(self, real_data):
        with pytest.raises(DatasetError, match="it is Fashion-MNIST's"):
            load_mnist(data_dir=real_data / "fashion-mnist")
