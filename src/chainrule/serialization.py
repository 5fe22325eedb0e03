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
dtype and shape of every array; pickled (object) arrays are never loaded.  Only a regular file
is opened (a directory, named pipe or device is refused without blocking); encrypted entries
and compression other than stored/deflated are refused; an archive that would inflate beyond
``max(64 MiB, 64 x its size)`` is refused before anything is inflated; each array's ``.npy``
header must match the manifest before its memory is allocated.  Any problem raises
:class:`CheckpointError`, whose message names the file and what is wrong (a damaged file
raises nothing else: every single-bit flip of a real checkpoint was tried).  A missing file
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
import math
import os
import secrets
import stat
import struct
import time
import zipfile
import zlib
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
# Reading a checkpoint never inflates more than max(64 MiB, 64 x the file's size) unless asked:
# save_checkpoint's stored entries never inflate, its deflated ones of real weights by < 2x.
MAX_INFLATED_FLOOR = 64 * 2**20
INFLATE_RATIO = 64
# What a damaged archive can raise inside zipfile, zlib, struct and NumPy's .npy reader.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
    UnicodeDecodeError,
    SyntaxError,
    MemoryError,
)
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
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {target}: the folder {directory} does not exist")
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
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"manifest.json is not valid JSON ({exc})")
    except RecursionError:
        fail("manifest.json is nested too deeply")
    _check_manifest(manifest, fail)
    return manifest


def _check_sizes(zf: zipfile.ZipFile, file_size: int, limit: int | None, fail: _Fail) -> None:
    """Refuse encrypted or oddly compressed entries and archives that inflate beyond ``limit``."""
    total = 0
    for info in zf.infolist():
        if info.flag_bits & 0x1:
            fail(f"entry {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            fail(f"entry {info.filename!r} uses unsupported compression {info.compress_type}")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            fail(f"entry {info.filename!r} is stored but its sizes disagree")
        if info.compress_size > file_size:
            fail(f"entry {info.filename!r} claims more bytes than the file has")
        total += info.file_size
    if limit is None:
        limit = max(MAX_INFLATED_FLOOR, INFLATE_RATIO * file_size)
    if total > limit:
        fail(
            f"it would inflate to {total} bytes from a file of {file_size} bytes (limit "
            f"{limit}); refusing a possible decompression bomb (pass max_inflated= to allow)"
        )


def _open_zip(target: Path, stack: contextlib.ExitStack) -> tuple[zipfile.ZipFile, int, _Fail]:
    """Open ``target`` as a ZIP without blocking: only an existing regular file is read."""

    def fail(problem: str) -> NoReturn:
        raise CheckpointError(f"invalid checkpoint {target}: {problem}")

    if not target.exists() and not target.is_symlink():
        raise FileNotFoundError(f"checkpoint not found: {target}")
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer; fstat then refuses it.
        fd = os.open(
            target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        )
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint not found: {target}") from None
    except IsADirectoryError:
        fail("it is a directory, not a file")
    except OSError as exc:
        fail(f"cannot open it ({exc.strerror or exc})")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            fail("it is a directory, not a file")
        fail("it is not a regular file (a pipe, socket or device)")
    fh = stack.enter_context(os.fdopen(fd, "rb"))
    if os.name == "posix":
        os.set_blocking(fd, True)
    try:
        zf = stack.enter_context(zipfile.ZipFile(fh, mode="r"))
    except zipfile.BadZipFile as exc:
        fail(f"not a ZIP archive, or truncated ({exc})")
    return zf, info.st_size, fail


@contextlib.contextmanager
def _reading(target: Path, max_inflated: int | None) -> Iterator[tuple[zipfile.ZipFile, _Fail]]:
    """Open a checkpoint for reading; any failure of a damaged file becomes CheckpointError."""
    with contextlib.ExitStack() as stack:
        try:
            zf, size, fail = _open_zip(target, stack)
            _check_sizes(zf, size, max_inflated, fail)
            yield zf, fail
        except (CheckpointError, FileNotFoundError):
            raise
        except _READ_ERRORS as exc:
            # A damaged archive can make zipfile, zlib or NumPy raise almost anything.
            raise CheckpointError(
                f"invalid checkpoint {target}: damaged or unreadable ({type(exc).__name__}: {exc})"
            ) from exc


def inspect_checkpoint(
    path: str | os.PathLike[str], *, max_inflated: int | None = None
) -> dict[str, Any]:
    """Return the validated manifest of a checkpoint without reading its arrays.

    Useful to print what a checkpoint holds (names, shapes, dtypes, meta) cheaply. Raises as
    :func:`load_checkpoint` does.
    """
    target = Path(path)
    with _reading(target, max_inflated) as (zf, fail):
        return _open_manifest(zf, fail)


def _read_npy(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    shape: tuple[int, ...],
    expected_dtype: np.dtype,
    where: str,
    fail: _Fail,
) -> np.ndarray:
    nbytes = math.prod(shape) * expected_dtype.itemsize
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            fail(f"{where} has unsupported .npy version {version}")
        read_header = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
        header_shape, fortran, dtype = read_header(fh, max_header_size=10_000)
        if dtype != expected_dtype or dtype.hasobject:
            fail(f"{where} has dtype {dtype}, manifest says {expected_dtype}")
        if header_shape != shape or fortran:
            fail(f"{where} has shape {header_shape}, manifest says {shape}")
        array = np.empty(shape, dtype=dtype)
        view = array.reshape(-1).view(np.uint8)
        got = 0
        while got < nbytes:
            n = fh.readinto(view[got:])
            if not n:
                fail(f"{where} is truncated")
            got += n
        if fh.read(1):  # also makes zipfile check the CRC-32 of the entry
            fail(f"{where} has unexpected bytes after the array data")
    return array


def _read_entry(zf: zipfile.ZipFile, entry: dict[str, Any], fail: _Fail) -> np.ndarray:
    """One array, its .npy header checked against the manifest before anything is allocated."""
    name, member = entry["name"], entry["file"]
    where = f"array {name!r} (entry {member})"
    expected_dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
    try:
        info = zf.getinfo(member)
    except KeyError:
        fail(f"{where} is listed in the manifest but missing from the archive")
    if math.prod(shape) * expected_dtype.itemsize > info.file_size:
        fail(f"{where} needs more bytes than its entry holds ({info.file_size})")
    try:
        array = _read_npy(zf, info, shape, expected_dtype, where, fail)
    except CheckpointError:
        raise
    except zipfile.BadZipFile as exc:
        fail(f"{where} is corrupted: checksum mismatch or damaged entry ({exc})")
    except _READ_ERRORS as exc:
        fail(f"{where} cannot be read ({type(exc).__name__}: {exc})")
    if _array_sha256(array) != entry["sha256"]:
        fail(f"{where} is corrupted: sha256 checksum mismatch")
    return array


def load_checkpoint(
    path: str | os.PathLike[str], *, max_inflated: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the checkpoint file.
        max_inflated: refuse archives whose entries inflate to more bytes than this; default
            ``max(MAX_INFLATED_FLOOR, INFLATE_RATIO * file size)`` (64 MiB, 64x), which every
            checkpoint :func:`save_checkpoint` writes meets (stored entries never inflate).

    Returns:
        ``(arrays, meta)``: a dict of name -> writable, C-contiguous array in the order they
        were saved, and the ``meta`` dict (``{}`` when none was saved).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: anything else: a directory, pipe or device instead of a file; a
            truncated or corrupted file (bad ZIP, CRC-32 or SHA-256 mismatch, damaged headers);
            no valid manifest; an array whose dtype or shape disagrees with the manifest or
            that would need pickle; an archive that would inflate beyond ``max_inflated``.
            Never any other exception for a damaged file.
    """
    target = Path(path)
    with _reading(target, max_inflated) as (zf, fail):
        manifest = _open_manifest(zf, fail)
        arrays = {entry["name"]: _read_entry(zf, entry, fail) for entry in manifest["arrays"]}
        return arrays, dict(manifest.get("meta", {}))
