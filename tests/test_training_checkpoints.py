"""Checkpoints that must not load: crafted metas, mismatched dtypes, damaged or hostile files,
non-regular files, and a second process writing the same checkpoint."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from chainrule.serialization import CheckpointError, load_checkpoint, save_checkpoint
from chainrule.training import Trainer
from chainrule.training.lock import CheckpointLock
from test_training import blobs, make_trainer, small_config

DEAD_PID = 2**22 + 4242  # above Linux's and macOS's largest pid: never a running process


@pytest.fixture(scope="module")
def data():
    (x, t), (xt, tt) = blobs(500, 1), blobs(200, 2)
    return x, t, xt, tt


@pytest.fixture
def saved(data, tmp_path) -> Path:
    """A real checkpoint, written mid-epoch (iteration 13 of 10-step epochs)."""
    trainer = make_trainer(data, iterations=13, eval_every=13)
    trainer.fit()
    return trainer.save(tmp_path / "run.ckpt")


def params_of(trainer) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in trainer.model.params.items()}


def rewrite(path: Path, edit_meta=None, edit_arrays=None) -> None:
    """Rewrite a checkpoint with crafted content (valid file structure and checksums)."""
    arrays, meta = load_checkpoint(path)
    if edit_meta is not None:
        edit_meta(meta)
    if edit_arrays is not None:
        edit_arrays(arrays)
    save_checkpoint(path, arrays, meta, require_finite=False)


def assert_refused(data, path: Path, match: str) -> None:
    trainer = make_trainer(data, iterations=40)
    before = params_of(trainer)
    with pytest.raises(CheckpointError, match=match):
        trainer.restore(path)
    after = params_of(trainer)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing changed
    assert trainer.iteration == 0


# --------------------------------------------------------------------------------------------
# crafted contents
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.bool_, np.complex64])
def test_arrays_of_another_dtype_are_never_cast(data, saved, dtype):
    rewrite(saved, edit_arrays=lambda a: a.update({"model/W1": a["model/W1"].astype(dtype)}))
    assert_refused(data, saved, rf"'W1'.*dtype {np.dtype(dtype)}.*float32.*never cast")


def test_optimizer_state_of_another_shape_or_dtype_is_refused(data, tmp_path):
    from chainrule.optim import Adam

    trainer = make_trainer(data, optimizer=Adam(lr=0.01), iterations=3)
    trainer.fit()
    path = trainer.save(tmp_path / "adam.ckpt")
    rewrite(path, edit_arrays=lambda a: a.update({"optim/m/W1": a["optim/m/W1"].astype(complex)}))
    other = make_trainer(data, optimizer=Adam(lr=0.01), iterations=3)
    with pytest.raises(CheckpointError, match=r"optimizer state 'm/W1'.*dtype complex128"):
        other.restore(path)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m["position"].update(iteration=-50), "iteration is -50"),
        (lambda m: m["position"].update(iteration="x"), "iteration is 'x'"),
        (lambda m: m["position"].update(iteration=True), "iteration is True"),
        (lambda m: m["position"].update(batches_done=10**6), "1000000 batches done"),
        (lambda m: m["position"].update(batches_done=-1), "-1 batches done"),
        (lambda m: m["position"].update(batches_done=11), "11 batches done"),
        (lambda m: m["position"].update(batches_done=2.5), "batches_done is 2.5"),
        (lambda m: m["position"].update(iteration=14), "does not fit iteration 14"),
        (lambda m: m["position"].update(epoch_rng_state=None), "no epoch generator state"),
        (lambda m: m["position"].update(epoch_rng_state={"bit_generator": "PCG64"}), "state"),
        (lambda m: m["position"]["epoch_rng_state"]["state"].update(state="x"), "state"),
        (lambda m: m["position"].update(rngs=[1]), "'rngs' entry is a list"),
        (lambda m: m["position"].update(seconds=-1.0), "seconds is -1.0"),
        (lambda m: m.update(history="x"), "history is a str"),
        (lambda m: m["history"].update(test_acc="x"), "history entry 'test_acc'"),
        (lambda m: m["history"].update(test_acc=[0.5, 0.6]), "different lengths"),
        (lambda m: m["trainer"].update(schedule="x"), "unknown schedule"),
        (lambda m: m["trainer"].update(base_lr="abc"), "abc"),
        (lambda m: m.update(trainer=[1, 2]), "'trainer' entry is a list"),
        (lambda m: m.update(position="x"), "'position' entry is a str"),
        (lambda m: m.update(optimizer=["x"]), "'optimizer' entry is a list"),
        (lambda m: m.update(version="2"), "version"),
        (lambda m: m.update(engine="autograd"), "'autograd' model"),
        (lambda m: m.pop("history"), "missing entry 'history'"),
    ],
)
def test_out_of_range_positions_and_wrong_types_are_refused(data, saved, edit, match):
    rewrite(saved, edit_meta=edit)
    assert_refused(data, saved, match)


def test_a_valid_checkpoint_still_resumes_mid_epoch(data, saved):
    trainer = make_trainer(data, iterations=40)
    trainer.restore(saved)
    assert trainer.iteration == 13
    trainer.fit()
    assert trainer.iteration == 40


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.update(model=["x"]), "records no model config"),
        (lambda m: m["trainer"].update(eval_batch_size="abc"), "eval_batch_size is 'abc'"),
        (lambda m: m["trainer"].update(batch_size=0), "batch_size is 0"),
        (lambda m: m["trainer"].update(eval_every=-3), "eval_every is -3"),
        (lambda m: m["trainer"].update(seed=1.5), "seed is 1.5"),
        (lambda m: m.update(trainer=[1]), "'trainer' entry is a list"),
        (lambda m: m["optimizer"].update(name="Nope"), "Nope"),
    ],
)
def test_from_checkpoint_refuses_a_bad_meta(data, saved, edit, match):
    rewrite(saved, edit_meta=edit)
    with pytest.raises(CheckpointError, match=match):
        Trainer.from_checkpoint(saved, *data, progress="none")


# --------------------------------------------------------------------------------------------
# damaged and hostile files
# --------------------------------------------------------------------------------------------


def test_single_bit_flips_only_ever_raise_checkpoint_error(data, saved):
    good = saved.read_bytes()
    reference = load_checkpoint(saved)[0]
    rng = np.random.default_rng(7)
    # Every byte of the ZIP headers and the manifest's neighbourhood, then random bytes.
    positions = list(range(0, 200)) + list(range(len(good) - 400, len(good)))
    positions += rng.integers(0, len(good), 200).tolist()
    outcomes = {"refused": 0, "loaded": 0}
    for i, pos in enumerate(positions):
        bit = 1 << (i % 8)
        damaged = bytearray(good)
        damaged[pos] ^= bit
        saved.write_bytes(bytes(damaged))
        try:
            arrays, _ = load_checkpoint(saved)
        except CheckpointError:
            outcomes["refused"] += 1
            continue
        # A flip in a field nothing reads (a timestamp, "version made by") may load, but
        # then it must load exactly the saved arrays.
        outcomes["loaded"] += 1
        assert arrays.keys() == reference.keys()
        for key, value in reference.items():
            np.testing.assert_array_equal(arrays[key], value)
        make_trainer(data, iterations=20).restore(saved)
    assert outcomes["refused"] > 400


def bomb(path: Path, inflated: int) -> None:
    """A valid-looking checkpoint whose one deflated entry inflates to ``inflated`` bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (inflated // 8,)}
    )
    manifest = {
        "format": "chainrule-checkpoint",
        "version": 1,
        "arrays": [
            {
                "name": "w",
                "file": "arrays/0.npy",
                "shape": [inflated // 8],
                "dtype": "<f8",
                "sha256": "0" * 64,
            }
        ],
        "meta": {},
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        info = zipfile.ZipInfo("arrays/0.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as out:
            out.write(header.getvalue())
            chunk = bytes(2**20)
            for _ in range(inflated // len(chunk)):
                out.write(chunk)


def test_a_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.ckpt"
    bomb(path, 128 * 2**20)
    assert path.stat().st_size < 2**20
    with pytest.raises(CheckpointError, match=r"would inflate to .* refusing"):
        load_checkpoint(path)
    # The limit is a keyword away for a caller who trusts the file (then the checksum fails).
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path, max_inflated=2**30)


def test_an_npy_header_claiming_a_huge_shape_is_refused_before_allocating(saved):
    with zipfile.ZipFile(saved) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(entries["manifest.json"])
    first = manifest["arrays"][0]
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": first["dtype"], "fortran_order": False, "shape": (10**6, 10**6)}
    )
    nbytes = int(np.prod(first["shape"])) * np.dtype(first["dtype"]).itemsize
    entries[first["file"]] = header.getvalue() + bytes(nbytes)
    with zipfile.ZipFile(saved, "w") as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    with pytest.raises(CheckpointError, match=r"shape \(1000000, 1000000\)"):
        load_checkpoint(saved)
    manifest["arrays"][0]["shape"] = [10**6, 10**6]
    entries["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(saved, "w") as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    with pytest.raises(CheckpointError, match="needs more bytes than its entry holds"):
        load_checkpoint(saved)


def test_a_deeply_nested_manifest_is_refused(tmp_path):
    path = tmp_path / "deep.ckpt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match=r"nested too deeply|not a JSON object"):
        load_checkpoint(path)


@pytest.mark.parametrize(("offset", "value", "match"), [(6, 0x01, "encrypted"), (8, 99, "99")])
def test_encrypted_or_oddly_compressed_entries_are_refused(saved, offset, value, match):
    data = bytearray(saved.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the last entry's central directory record
    data[central + offset + 2] = value  # central records have 2 more bytes before the field
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(saved)


def test_directories_pipes_and_devices_are_refused_without_blocking(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)
    if os.path.exists("/dev/zero"):
        with pytest.raises(CheckpointError, match="not a regular file"):
            load_checkpoint("/dev/zero")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.ckpt"
        os.mkfifo(fifo)
        outcome: list[BaseException] = []

        def load() -> None:
            try:
                load_checkpoint(fifo)
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        worker.join(timeout=10)
        if worker.is_alive():  # unblock the reader so the test process can end
            with open(fifo, "wb"):
                pass
            pytest.fail("load_checkpoint blocked on a named pipe")
        assert isinstance(outcome[0], CheckpointError) and "regular file" in str(outcome[0])


def test_saving_into_a_missing_folder_names_the_folder(data, tmp_path):
    target = tmp_path / "missing" / "run.ckpt"
    with pytest.raises(FileNotFoundError) as e:
        save_checkpoint(target, {"w": np.ones(2)})
    assert f"the folder {target.parent} does not exist" in str(e.value)
    assert ".tmp-" not in str(e.value)
    trainer = make_trainer(data, iterations=2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        trainer.save(target)


# --------------------------------------------------------------------------------------------
# one writer per checkpoint
# --------------------------------------------------------------------------------------------


def lock_file(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def test_a_checkpoint_of_another_live_run_is_refused(data, tmp_path):
    target = tmp_path / "shared.ckpt"
    other = os.getppid()  # a live process that is not this one
    lock_file(target).write_text(f"{other}\n")
    trainer = make_trainer(data, iterations=10, checkpoint=target)
    with pytest.raises(CheckpointError, match=rf"another running training \(process {other}"):
        trainer.fit()
    assert trainer.iteration == 0 and not target.exists()
    with pytest.raises(CheckpointError, match="another running training"):
        trainer.save(target)
    assert lock_file(target).read_text() == f"{other}\n"  # the other run's lock is left alone


def test_a_stale_lock_of_a_dead_process_is_taken_over_and_released(data, tmp_path):
    target = tmp_path / "run.ckpt"
    lock_file(target).write_text(f"{DEAD_PID}\n")
    seen = []
    trainer = make_trainer(
        data,
        iterations=10,
        checkpoint=target,
        on_epoch=lambda tr, rec: seen.append(lock_file(target).read_text()),
    )
    trainer.fit()
    assert seen == [f"{os.getpid()}\n"]  # held by this process while training
    assert target.exists() and not lock_file(target).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]


def test_two_trainers_of_one_process_share_the_lock(data, tmp_path):
    target = tmp_path / "run.ckpt"
    lock = CheckpointLock(target)
    with lock.held():
        make_trainer(data, iterations=10, checkpoint=target).fit()
        assert lock_file(target).exists()  # the outer holder still has it
    assert not lock_file(target).exists()


def test_a_real_second_process_is_refused(data, tmp_path):
    import subprocess

    target = tmp_path / "run.ckpt"
    code = (
        "import sys, time; from chainrule.training.lock import CheckpointLock; "
        f"lock = CheckpointLock({str(target)!r}); lock.acquire(); print('held', flush=True); "
        "sys.stdin.read(); lock.release()"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        trainer = make_trainer(data, iterations=10, checkpoint=target)
        with pytest.raises(CheckpointError, match=f"process {holder.pid}"):
            trainer.fit()
    finally:
        holder.communicate(b"", timeout=30)
    assert not lock_file(target).exists()
    make_trainer(data, iterations=10, checkpoint=target).fit()  # free again
    assert load_checkpoint(target)[1]["position"]["iteration"] == 10
    assert small_config()  # the same model config as the other tests
