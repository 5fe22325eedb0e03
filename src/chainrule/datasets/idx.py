"""Reading and writing IDX files, the format MNIST and Fashion-MNIST are distributed in.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimension sizes, then the elements in C order, big-endian.  Type codes:

====  ==================  ============
code  element             NumPy dtype
====  ==================  ============
0x08  unsigned byte       ``uint8``
0x09  signed byte         ``int8``
0x0B  short (2 bytes)     ``>i2``
0x0C  int (4 bytes)       ``>i4``
0x0D  float (4 bytes)     ``>f4``
0x0E  double (8 bytes)    ``>f8``
====  ==================  ============

Files may be gzip-compressed; compression is recognised by the gzip magic bytes ``1f 8b``,
whatever the file name.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..serialization import atomic_write

__all__ = ["DatasetError", "parse_idx", "read_idx", "write_idx"]

GZIP_MAGIC = b"\x1f\x8b"

_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_SIZE_TO_CODE: dict[tuple[str, int], int] = {
    (dtype.kind, dtype.itemsize): code for code, dtype in _CODE_TO_DTYPE.items()
}


class DatasetError(ValueError):
    """A data file is missing, unreadable, corrupted or not what was expected."""


def _decompress_if_gzip(data: bytes, source: str) -> bytes:
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except EOFError as exc:
        raise DatasetError(f"{source}: gzip data is truncated ({exc})") from exc
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{source}: gzip data is corrupted ({exc})") from exc


def parse_idx(data: bytes, source: str = "<bytes>", *, copy: bool = True) -> np.ndarray:
    """Decode the bytes of an IDX file (gzip-compressed or not) into an array.

    Args:
        data: The file contents.
        source: How to name the data in error messages (usually the file path).
        copy: If false, the result may be a read-only view of the decompressed bytes
            (saves one copy when the caller converts the array anyway).

    Returns:
        An array of the shape stored in the header, in native byte order.

    Raises:
        DatasetError: bad gzip data, bad magic number, unknown type code, or a payload whose
            length differs from what the header announces.
    """
    data = _decompress_if_gzip(data, source)
    if len(data) < 4:
        raise DatasetError(f"{source}: file is too short ({len(data)} bytes) for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"{source}: bad IDX magic number {data[:4].hex(' ')} (expected 00 00 <type> <ndim>); "
            "not an IDX file"
        )
    code, ndim = data[2], data[3]
    if code not in _CODE_TO_DTYPE:
        raise DatasetError(f"{source}: unknown IDX element type code 0x{code:02x}")
    if ndim == 0:
        raise DatasetError(f"{source}: IDX header declares zero dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(
            f"{source}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need "
            f"{header_size})"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _CODE_TO_DTYPE[code]
    expected = header_size + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "too long"
        raise DatasetError(
            f"{source}: IDX payload is {problem}: header says shape {shape} of {dtype.name} "
            f"({expected} bytes in all) but the data has {len(data)} bytes"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    if not dtype.isnative:
        return array.astype(dtype.newbyteorder("="))  # always a fresh, writable copy
    return array.copy() if copy else array


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw, into a writable array.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DatasetError: the file is corrupted, truncated, too long or not an IDX file; the
            message names the file and the problem.
    """
    path = Path(path)
    return parse_idx(path.read_bytes(), str(path))


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compresslevel: int = 6) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The element type follows the array dtype: uint8, int8, int16, int32, float32 or float64
    (any byte order).  The write is atomic: a temporary file in the same directory is fsynced
    and then moved over ``path``.  Gzip output is reproducible (no timestamp, no file name).

    Returns:
        ``Path(path)``.

    Raises:
        TypeError: the dtype has no IDX type code (e.g. int64, bool).
        ValueError: a 0-d array, or more than 255 dimensions / a dimension of 2**32 or more.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _KIND_SIZE_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(
            f"cannot write {path}: IDX has no element type for dtype {array.dtype} "
            "(use uint8, int8, int16, int32, float32 or float64)"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"cannot write {path}: IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"cannot write {path}: dimension too large for IDX: {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    with atomic_write(path) as fh:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=fh, compresslevel=compresslevel, mtime=0
            ) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            fh.write(header)
            fh.write(payload)
    return path
