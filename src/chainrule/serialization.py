"""Checkpoints: many named arrays plus JSON metadata in one crash-safe file.

File format (``chainrule-checkpoint``, version 1)
-------------------------------------------------
A checkpoint is an ordinary ZIP archive, so ``unzip -l model.ckpt`` shows what is inside:

``manifest.json``
    UTF-8 JSON object::

        {
          "format": "chainrule-checkpoint",
          "version": 1,
          "arrays": [
            {"name": "model/fc1.W", "file": "arrays/0.npy", "shape": [784, 50],
             "dtype": "<f4", "sha256": "<hex digest of the C-order array bytes>"},
            ...
          ],
          "meta": {...}
        }

``arrays/<i>.npy``
    One array per entry in NumPy's ``.npy`` format (C order, never pickled).

Entry names inside the archive are numbered, so an array name can be any non-empty string:
``model/fc1.W``, ``optim/m/0`` or names with spaces and non-ASCII characters all work.
The archive is written with fixed timestamps, so saving the same arrays and meta twice gives
byte-identical files.

Loading checks the ZIP structure, the CRC-32 of every entry, the manifest, and the SHA-256,
dtype and shape of every array; pickled (object) arrays are never loaded.  Any problem raises
:class:`CheckpointError`, whose message names the file and what is wrong.  A missing file
raises :class:`FileNotFoundError`.

Writes are atomic: data goes to a temporary file beside the target, is flushed and fsynced, and
only then replaces the target (``os.replace``); the directory is fsynced afterwards.  If anything
fails, the temporary file is removed and an existing checkpoint at the same path is left as it
was.  Temporary files left behind by crashed processes are removed by the next save to the same
path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np

from chainrule.backend import to_numpy

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointError",
    "atomic_write",
    "inspect_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT_NAME = "chainrule-checkpoint"
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
# DOS timestamps cannot go below 1980; a fixed value makes the output reproducible.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# bool, signed/unsigned integers, floats, complex: everything .npy stores without pickle and
# that a model or optimizer state needs.
_ALLOWED_KINDS = frozenset("biufc")
# Temp files whose owner cannot be checked (no usable process table) count as stale after this.
_STALE_AFTER_S = 24 * 3600


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read; the message names the file and the problem."""


# --------------------------------------------------------------------------------------------
# atomic writes (also used by chainrule.datasets)
# --------------------------------------------------------------------------------------------


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def pid_alive(pid: int) -> bool | None:
    """True/False when it can be told whether ``pid`` runs on this machine, else None."""
    if os.name != "posix":
        # os.kill on Windows would terminate the process instead of probing it.
        return None
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return None
    return True


def _remove_stale_temps(target: Path) -> None:
    """Delete temp files for ``target`` left by processes that no longer run."""
    prefix = _temp_prefix(target)
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid_text, _, token = entry.name[len(prefix) :].partition("-")
        if not pid_text.isdigit() or not token:
            continue
        pid = int(pid_text)
        if pid == os.getpid():
            continue  # possibly another thread of ours writing right now
        alive = pid_alive(pid)
        try:
            if alive is False or (
                alive is None and now - entry.stat(follow_symlinks=False).st_mtime > _STALE_AFTER_S
            ):
                os.unlink(entry.path)
        except OSError:
            pass  # raced with another cleaner, or not ours to delete


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not support fsync on directories
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a binary file that replaces ``path`` atomically when the block exits cleanly.

    The data is written to ``.{name}.tmp-<pid>-<random>`` in the same directory, flushed,
    fsynced and moved over ``path`` with :func:`os.replace`; then the directory is fsynced.
    If the block raises (any exception, ``KeyboardInterrupt`` included) the temporary file is
    deleted and ``path`` is untouched.  Stale temporary files of dead processes for the same
    ``path`` are cleaned up first.  The parent directory must exist.
    """
    target = Path(path)
    directory = target.parent
    _remove_stale_temps(target)
    temp = directory / f"{_temp_prefix(target)}{os.getpid()}-{secrets.token_hex(6)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temp, flags, 0o666)  # the umask applies, as for an ordinary open()
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_directory(directory)


# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------


def _c_contiguous(array: np.ndarray) -> np.ndarray:
    # np.ascontiguousarray would turn 0-d arrays into 1-d ones.
    return array if array.flags.c_contiguous else array.copy(order="C")


def _array_sha256(array: np.ndarray) -> str:
    """SHA-256 of the C-order bytes of ``array`` (no copy when it is already C-contiguous)."""
    flat = _c_contiguous(array).reshape(-1)
    return hashlib.sha256(flat.view(np.uint8)).hexdigest()


def _prepare_arrays(
    arrays: Mapping[str, Any], require_finite: bool, target: Path
) -> list[tuple[str, np.ndarray]]:
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a mapping of name -> array, got {type(arrays).__name__}")
    prepared = []
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise CheckpointError(
                f"cannot save checkpoint {target}: array names must be non-empty strings, "
                f"got {name!r}"
            )
        array = _c_contiguous(to_numpy(value))  # from the GPU too
        if array.dtype.kind not in _ALLOWED_KINDS or array.dtype.fields is not None:
            raise CheckpointError(
                f"cannot save checkpoint {target}: array {name!r} has dtype {array.dtype}; "
                "only bool, integer, float and complex arrays can be stored"
            )
        if require_finite and array.dtype.kind in "fc":
            finite = np.isfinite(array)
            if not finite.all():
                n_nan = int(np.isnan(array).sum())
                n_inf = int(array.size - finite.sum()) - n_nan
                raise CheckpointError(
                    f"refusing to save checkpoint {target}: array {name!r} (shape "
                    f"{array.shape}) contains {n_nan} NaN and {n_inf} infinite value(s); "
                    "pass require_finite=False to save it anyway"
                )
        prepared.append((name, array))
    return prepared


def _zip_info(name: str, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def save_checkpoint(
    path: str | os.PathLike[str],
    arrays: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    *,
    require_finite: bool = True,
    compress: bool = False,
) -> Path:
    """Write ``arrays`` and ``meta`` to a single checkpoint file at ``path``, atomically.

    Args:
        path: Target file; its directory must exist.  Any suffix works (``.ckpt`` suggested).
        arrays: Mapping of non-empty string names to arrays (or array-likes) of a bool,
            integer, float or complex dtype.  Names may contain ``/`` and ``.``.
            Order is preserved.
        meta: JSON-serializable mapping stored in the manifest (``json`` defaults: tuples come
            back as lists, non-string keys of nested dicts as strings).
        require_finite: If true (the default) refuse to save when a float or complex array
            contains NaN or infinity; the error names the array.
        compress: Deflate the array entries (smaller, slower); default stores them.

    Returns:
        ``Path(path)``.

    Raises:
        CheckpointError: invalid name, unsupported dtype, non-finite values, or ``meta`` that
            cannot be encoded as JSON.  Nothing is written in these cases.
    """
    target = Path(path)
    prepared = _prepare_arrays(arrays, require_finite, target)
    if meta is not None and not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a mapping or None, got {type(meta).__name__}")

    entries = []
    for index, (name, array) in enumerate(prepared):
        entries.append(
            {
                "name": name,
                "file": f"arrays/{index}.npy",
                "shape": list(array.shape),
                "dtype": array.dtype.str,
                "sha256": _array_sha256(array),
            }
        )
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "arrays": entries,
        "meta": dict(meta) if meta is not None else {},
    }
    try:
        manifest_bytes = json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"cannot save checkpoint {target}: meta is not JSON-serializable ({exc})"
        ) from exc

    with atomic_write(target) as fh, zipfile.ZipFile(fh, mode="w") as zf:
        zf.writestr(_zip_info(_MANIFEST, compress), manifest_bytes)
        for entry, (_, array) in zip(entries, prepared, strict=True):
            big = array.nbytes > 2**31 - 2**20
            with zf.open(_zip_info(entry["file"], compress), mode="w", force_zip64=big) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)
    return target


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_Fail = Callable[[str], NoReturn]


def _check_manifest(manifest: Any, fail: _Fail) -> list[dict[str, Any]]:
    if not isinstance(manifest, dict):
        fail("manifest.json is not a JSON object")
    if manifest.get("format") != FORMAT_NAME:
        fail(f"manifest format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    version = manifest.get("version")
    if not _is_int(version) or version < 1:
        fail(f"manifest has an invalid version {version!r}")
    if version > FORMAT_VERSION:
        fail(
            f"checkpoint format version {version} is newer than this chainrule supports "
            f"({FORMAT_VERSION}); upgrade chainrule to read it"
        )
    entries = manifest.get("arrays")
    if not isinstance(entries, list):
        fail("manifest has no 'arrays' list")
    if not isinstance(manifest.get("meta", {}), dict):
        fail("manifest 'meta' is not a JSON object")
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            fail(f"manifest array entry {i} is not an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            fail(f"manifest array entry {i} has an invalid name {name!r}")
        if name in seen:
            fail(f"manifest lists array {name!r} twice")
        seen.add(name)
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            fail(f"array {name!r}: invalid shape {shape!r} in manifest")
        digest = entry.get("sha256")
        if (
            not isinstance(digest, str)
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            fail(f"array {name!r}: invalid sha256 {digest!r} in manifest")
        if not isinstance(entry.get("file"), str):
            fail(f"array {name!r}: invalid file entry {entry.get('file')!r} in manifest")
        try:
            dtype = np.dtype(entry.get("dtype"))
        except (TypeError, ValueError):
            fail(f"array {name!r}: invalid dtype {entry.get('dtype')!r} in manifest")
        if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None:
            fail(f"array {name!r}: dtype {dtype} is not allowed in a checkpoint")
    return entries


def _open_manifest(zf: zipfile.ZipFile, fail: _Fail) -> dict[str, Any]:
    try:
        raw = zf.read(_MANIFEST)
    except KeyError:
        fail("no manifest.json inside: not a chainrule checkpoint")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        fail(f"manifest.json is corrupted ({exc})")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"manifest.json is not valid JSON ({exc})")
    _check_manifest(manifest, fail)
    return manifest


def _open_zip(target: Path) -> tuple[zipfile.ZipFile, _Fail]:
    def fail(problem: str) -> NoReturn:
        raise CheckpointError(f"invalid checkpoint {target}: {problem}")

    if not target.exists():
        raise FileNotFoundError(f"checkpoint not found: {target}")
    try:
        zf = zipfile.ZipFile(target, mode="r")
    except zipfile.BadZipFile as exc:
        fail(f"not a ZIP archive, or truncated ({exc})")
    except (IsADirectoryError, PermissionError):
        raise
    except (OSError, EOFError, ValueError) as exc:
        fail(f"cannot read ZIP structure ({exc})")
    return zf, fail


def inspect_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the validated manifest of a checkpoint without reading its arrays.

    Useful to print what a checkpoint holds (names, shapes, dtypes, meta) cheaply.
    """
    target = Path(path)
    zf, fail = _open_zip(target)
    with zf:
        return _open_manifest(zf, fail)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns:
        ``(arrays, meta)``: a dict of name -> writable, C-contiguous array in the order they
        were saved, and the ``meta`` dict (``{}`` when none was saved).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated or corrupted (bad ZIP, CRC-32 or SHA-256
            mismatch), has no valid manifest, holds an array whose dtype or shape disagrees with
            the manifest or that would need pickle, or is not a chainrule checkpoint at all.
    """
    target = Path(path)
    zf, fail = _open_zip(target)
    with zf:
        manifest = _open_manifest(zf, fail)
        arrays: dict[str, np.ndarray] = {}
        for entry in manifest["arrays"]:
            name, member = entry["name"], entry["file"]
            where = f"array {name!r} (entry {member})"
            try:
                with zf.open(member) as fh:
                    array = np.lib.format.read_array(fh, allow_pickle=False)
                    trailing = fh.read(1)  # also makes zipfile check the CRC-32 of the entry
            except KeyError:
                fail(f"{where} is listed in the manifest but missing from the archive")
            except zipfile.BadZipFile as exc:
                fail(f"{where} is corrupted: checksum mismatch or damaged entry ({exc})")
            except (ValueError, OSError, EOFError) as exc:
                fail(f"{where} cannot be read ({exc})")
            if trailing:
                fail(f"{where} has unexpected bytes after the array data")
            expected_dtype = np.dtype(entry["dtype"])
            if array.dtype != expected_dtype:
                fail(f"{where} has dtype {array.dtype}, manifest says {expected_dtype}")
            if list(array.shape) != entry["shape"]:
                fail(f"{where} has shape {array.shape}, manifest says {tuple(entry['shape'])}")
            if array.dtype.kind not in _ALLOWED_KINDS or array.dtype.fields is not None:
                fail(f"{where} has disallowed dtype {array.dtype}")
            if _array_sha256(array) != entry["sha256"]:
                fail(f"{where} is corrupted: sha256 checksum mismatch")
            arrays[name] = _c_contiguous(array)
        return arrays, dict(manifest.get("meta", {}))
