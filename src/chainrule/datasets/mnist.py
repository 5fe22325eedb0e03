"""MNIST and Fashion-MNIST loaders: find, verify (and if allowed, download) the IDX files.

Where the files are looked for, in this order (for each of the four files separately):

1. the ``data_dir`` argument,
2. the ``CHAINRULE_DATA`` environment variable,
3. the user cache, ``$XDG_CACHE_HOME/chainrule/<name>`` or ``~/.cache/chainrule/<name>``,

where ``<name>`` is ``mnist`` or ``fashion-mnist``.  ``data_dir`` and ``CHAINRULE_DATA`` may
name either the folder holding the files or a parent folder with ``mnist/`` and
``fashion-mnist/`` subfolders (the subfolder is tried first).  Each file may be gzip-compressed
(``train-images-idx3-ubyte.gz``) or not (``train-images-idx3-ubyte``).

Files still missing are downloaded into the user cache (when ``download`` is true, or when it
is None and ``CHAINRULE_OFFLINE`` is not set to 1), trying each mirror in turn.

Every file, found or downloaded, is checked against a pinned SHA-256 before it is used (the
canonical MD5s are pinned as well, for reference).  A file that does not match is never loaded:
found in ``data_dir`` or ``CHAINRULE_DATA`` it raises :class:`DatasetError` naming it; found in
the cache it is downloaded again when downloading is allowed, otherwise it raises as well.
Nothing is cached besides the original files (no pickle).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ..serialization import atomic_write
from .idx import DatasetError, parse_idx
from .specs import FASHION_MNIST, FASHION_MNIST_CLASSES, MNIST, DatasetSpec, FileSpec

__all__ = [
    "FASHION_MNIST_CLASSES",
    "default_cache_dir",
    "ensure_dataset",
    "load_fashion_mnist",
    "load_mnist",
]

ENV_DATA = "CHAINRULE_DATA"
ENV_OFFLINE = "CHAINRULE_OFFLINE"
_DOWNLOAD_TIMEOUT_S = 60.0
_USER_AGENT = "chainrule-datasets (python urllib)"

# Looked up at call time, so tests can substitute small datasets.
_SPECS: dict[str, DatasetSpec] = {MNIST.key: MNIST, FASHION_MNIST.key: FASHION_MNIST}


# --------------------------------------------------------------------------------------------
# where to look
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/chainrule`` if that variable is set, else ``~/.cache/chainrule``."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "chainrule"


def _offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class _Place:
    directory: Path
    origin: str  # "data_dir argument", "$CHAINRULE_DATA", "user cache"
    is_cache: bool = False


def _search_places(
    spec: DatasetSpec, data_dir: str | os.PathLike[str] | None, strict: bool = True
) -> list[_Place]:
    """The folders looked in, in order; a given folder that does not exist raises (strict)."""
    places: list[_Place] = []
    roots: list[tuple[Path, str]] = []
    if data_dir is not None:
        roots.append((Path(data_dir).expanduser(), "data_dir argument"))
    env = os.environ.get(ENV_DATA)
    if env:
        roots.append((Path(env).expanduser(), f"${ENV_DATA}"))
    for root, origin in roots:
        if strict and not root.is_dir():  # a typo here would otherwise send us downloading
            what = "data_dir" if origin.startswith("data_dir") else f"${ENV_DATA}"
            raise DatasetError(
                f"{what}={root}: no such folder; point it at a folder holding the "
                f"{spec.title} files or a parent with {spec.key}/ in it"
                + (f", or unset {ENV_DATA}" if what != "data_dir" else "")
            )
        places.append(_Place(root / spec.key, origin))
        places.append(_Place(root, origin))
    places.append(_Place(default_cache_dir() / spec.key, "user cache", is_cache=True))
    return places


# --------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _identify(digest: str) -> str:
    """Name the known file with this SHA-256, to explain a mix-up (e.g. Fashion in mnist/)."""
    for spec in _SPECS.values():
        for fspec in spec.files.values():
            if digest == fspec.sha256:
                return f"; it is {spec.title}'s {fspec.name}"
            if digest == fspec.raw_sha256:
                return f"; it is {spec.title}'s {fspec.raw_name}"
    return ""


def _mismatch_message(spec: DatasetSpec, fspec: FileSpec, path: Path, digest: str) -> str:
    return (
        f"{spec.title}: {path} is corrupted or not the expected file: its SHA-256 is {digest}, "
        f"expected {fspec.sha256} (gzip, MD5 {fspec.md5}) or {fspec.raw_sha256} "
        f"(uncompressed, MD5 {fspec.raw_md5}){_identify(digest)}. Delete or replace it."
    )


class _Mismatch(Exception):
    pass


def _find_local(
    spec: DatasetSpec, fspec: FileSpec, places: Sequence[_Place], may_download: bool
) -> tuple[Path, bytes] | None:
    """Return (path, verified bytes) of the first copy found, None if there is none usable."""
    for place in places:
        for candidate in (fspec.name, fspec.raw_name):
            path = place.directory / candidate
            if not path.is_file():
                continue
            data = path.read_bytes()
            digest = _sha256(data)
            if digest in (fspec.sha256, fspec.raw_sha256):
                return path, data
            if place.is_cache and may_download:
                return None  # a damaged download of ours: fetch it again
            raise DatasetError(_mismatch_message(spec, fspec, path, digest))
    return None


# --------------------------------------------------------------------------------------------
# downloading
# --------------------------------------------------------------------------------------------


def _download(url: str, out: IO[bytes]) -> None:
    """Copy the body of ``url`` into ``out`` (tests replace this function)."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        shutil.copyfileobj(response, out, 1 << 20)


class _Offline(Exception):
    """The network is unreachable (no DNS, connection refused): stop trying the mirrors."""


def _means_offline(exc: BaseException) -> bool:
    """A failure that means "no network" rather than "this mirror is down"."""
    import socket
    import urllib.error

    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, socket.gaierror | ConnectionRefusedError):
        return True
    return isinstance(reason, OSError) and reason.errno in (101, 113)  # net/host unreachable


class _HashingWriter:
    """File-like wrapper that hashes what passes through it."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> int:
        self._hash.update(chunk)
        self.size += len(chunk)
        return self._out.write(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _fetch(
    spec: DatasetSpec, fspec: FileSpec, errors: list[str], target_dir: Path
) -> tuple[Path, bytes] | None:
    """Download one file into ``target_dir``, trying each mirror; None if all fail.

    Raises :class:`_Offline` at the first failure that means there is no network at all."""
    target = target_dir / fspec.name
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        errors.append(f"cannot create the cache folder {target_dir}: {exc}")
        return None
    for mirror in spec.mirrors:
        url = mirror + fspec.name
        print(f"chainrule: downloading {url} ...", file=sys.stderr, flush=True)
        try:
            with atomic_write(target) as fh:
                writer = _HashingWriter(fh)
                _download(url, writer)  # type: ignore[arg-type]
                digest = writer.hexdigest()
                if digest != fspec.sha256:
                    raise _Mismatch(
                        f"checksum mismatch ({writer.size} bytes, SHA-256 {digest}, "
                        f"expected {fspec.sha256}); discarded"
                    )
        except Exception as exc:  # network errors come in many types; all mean "next mirror"
            detail = str(exc) or type(exc).__name__
            errors.append(f"{url}: {detail}")
            print(f"chainrule: failed: {detail}", file=sys.stderr, flush=True)
            if _means_offline(exc):
                raise _Offline(detail) from None
            continue
        return target, target.read_bytes()
    return None


# --------------------------------------------------------------------------------------------
# putting it together
# --------------------------------------------------------------------------------------------


def _missing_message(
    spec: DatasetSpec,
    missing: Sequence[FileSpec],
    places: Sequence[_Place],
    download_note: str,
    errors: Sequence[str],
    loader: str,
) -> str:
    lines = [
        f"{spec.title}: {len(missing)} of {len(spec.files)} files not found: "
        + ", ".join(f.name for f in missing),
        "Looked in (in this order; the uncompressed name without .gz is accepted too):",
    ]
    lines += [f"  {p.directory}  ({p.origin})" for p in places]
    if not os.environ.get(ENV_DATA):
        lines.append(f"  (${ENV_DATA} is not set)")
    lines.append(download_note)
    lines += [f"  {e}" for e in errors]
    cache = default_cache_dir() / spec.key
    lines += [
        "To supply the files, either:",
        "  - download them yourself from one of these mirrors (checksums are verified):",
        *(f"      {m}<file name>" for m in spec.mirrors),
        f"    and put them in {cache}, or in any folder you then pass as",
        f"    {loader}(data_dir=...) or set {ENV_DATA}=... to (that folder, or a parent",
        f"    folder holding a {spec.key}/ subfolder);",
        f"  - or let chainrule download them: {loader}(download=True)"
        + (f" or unset {ENV_OFFLINE}" if _offline() else "")
        + ".",
    ]
    return "\n".join(lines)


def _resolve(
    spec: DatasetSpec,
    data_dir: str | os.PathLike[str] | None,
    download: bool | None,
    loader: str,
    download_to: Path | None = None,
) -> dict[str, tuple[Path, bytes]]:
    may_download = (not _offline()) if download is None else bool(download)
    places = _search_places(spec, data_dir)
    found: dict[str, tuple[Path, bytes]] = {}
    missing: dict[str, FileSpec] = {}
    for role, fspec in spec.files.items():
        hit = _find_local(spec, fspec, places, may_download)
        if hit is None:
            missing[role] = fspec
        else:
            found[role] = hit

    errors: list[str] = []
    offline = False
    if missing and may_download:
        target = download_to or default_cache_dir() / spec.key
        try:
            for role, fspec in list(missing.items()):
                hit = _fetch(spec, fspec, errors, target)
                if hit is not None:
                    found[role] = hit
                    del missing[role]
        except _Offline:
            offline = True

    if missing:
        if offline:
            note = (
                "No network (stopped after the first failure; nothing else was tried). To "
                f"work offline, supply the files as below and set {ENV_OFFLINE}=1:"
            )
        elif may_download:
            note = "Download failed from every mirror:"
        elif download is False:
            note = "Download not attempted: download=False."
        else:
            note = f"Download not attempted: {ENV_OFFLINE} is set."
        raise DatasetError(
            _missing_message(spec, list(missing.values()), places, note, errors, loader)
        )
    return found


def ensure_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool | None = None,
    download_to: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Make sure the four files of ``"mnist"`` or ``"fashion-mnist"`` are available.

    Looks them up and downloads what is missing exactly as the loaders do, and verifies them.
    ``download_to`` puts the downloads in that folder instead of the user cache.

    Returns:
        ``{"train_images": path, "train_labels": ..., "test_images": ..., "test_labels": ...}``
    """
    if name not in _SPECS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(_SPECS))}")
    target = None if download_to is None else Path(download_to).expanduser()
    found = _resolve(_SPECS[name], data_dir, download, "ensure_dataset", target)
    return {role: path for role, (path, _) in found.items()}


def _decode(spec: DatasetSpec, found: dict[str, tuple[Path, bytes]]) -> dict[str, np.ndarray]:
    arrays = {role: parse_idx(data, str(path), copy=False) for role, (path, data) in found.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_path, label_path = found[f"{split}_images"][0], found[f"{split}_labels"][0]
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != spec.image_shape:
            raise DatasetError(
                f"{image_path}: expected uint8 images of shape (N, {spec.image_shape[0]}, "
                f"{spec.image_shape[1]}), got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise DatasetError(
                f"{label_path}: expected a 1-D uint8 label vector, got {labels.dtype} "
                f"{labels.shape}"
            )
        if len(labels) != len(images):
            raise DatasetError(
                f"{spec.title} {split} split: {len(images)} images in {image_path} but "
                f"{len(labels)} labels in {label_path}"
            )
        if labels.size and int(labels.max()) >= spec.num_classes:
            raise DatasetError(
                f"{label_path}: label {int(labels.max())} out of range 0..{spec.num_classes - 1}"
            )
    return arrays


def _load(
    spec: DatasetSpec,
    normalize: bool,
    flatten: bool,
    one_hot_label: bool,
    data_dir: str | os.PathLike[str] | None,
    download: bool | None,
    dtype: np.dtype | type,
    loader: str,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    float_dtype = np.dtype(dtype)
    if (normalize or one_hot_label) and float_dtype.kind != "f":
        raise ValueError(f"dtype must be a floating-point type, got {float_dtype}")
    arrays = _decode(spec, _resolve(spec, data_dir, download, loader))

    def images(x: np.ndarray) -> np.ndarray:
        if normalize:
            # One pass, same result as the book's x.astype(dtype); x /= 255.0
            out = np.empty(x.shape, dtype=float_dtype)
            np.divide(x, float_dtype.type(255.0), out=out, dtype=float_dtype)
        else:
            out = x.copy()  # x may be a read-only view of the decompressed file
        n = len(out)
        return out.reshape(n, -1) if flatten else out.reshape(n, 1, *spec.image_shape)

    def labels(t: np.ndarray) -> np.ndarray:
        if one_hot_label:
            out = np.zeros((len(t), spec.num_classes), dtype=float_dtype)
            out[np.arange(len(t)), t] = 1
            return out
        return t.astype(np.int64)

    return (
        (images(arrays["train_images"]), labels(arrays["train_labels"])),
        (images(arrays["test_images"]), labels(arrays["test_labels"])),
    )


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool | None = None,
    dtype: np.dtype | type = np.float32,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST as ``(x_train, t_train), (x_test, t_test)``, like the book's ``load_mnist``.

    Args:
        normalize: Pixels as ``dtype`` in [0, 1] (``pixel / 255.0``); otherwise uint8 0..255.
        flatten: Images of shape (N, 784); otherwise (N, 1, 28, 28).
        one_hot_label: Labels as one-hot rows of shape (N, 10) in ``dtype``; otherwise
            integer class indices of shape (N,) and dtype **int64** (the book's files give
            uint8; int64 avoids wrap-around surprises in arithmetic and indexes the same).
        data_dir: Folder holding the files, or its parent with an ``mnist/`` subfolder.
            Searched first; see the module documentation for the full lookup order.
        download: True to download missing files, False never to, None (default) to
            download unless the environment variable ``CHAINRULE_OFFLINE`` is 1.
        dtype: Floating dtype of normalized images and one-hot labels (default float32).

    N is 60000 for the training set and 10000 for the test set.  All arrays are fresh,
    writable and C-contiguous.

    Raises:
        DatasetError: files missing (the message lists which, where they were looked for and
            how to supply them), or a file that fails its checksum or is malformed.
    """
    return _load(
        _SPECS["mnist"], normalize, flatten, one_hot_label, data_dir, download, dtype, "load_mnist"
    )


def load_fashion_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool | None = None,
    dtype: np.dtype | type = np.float32,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load Fashion-MNIST; same options and results as :func:`load_mnist`.

    ``data_dir`` may hold the files or a ``fashion-mnist/`` subfolder.  Class names, by label,
    are in :data:`FASHION_MNIST_CLASSES`.
    """
    return _load(
        _SPECS["fashion-mnist"],
        normalize,
        flatten,
        one_hot_label,
        data_dir,
        download,
        dtype,
        "load_fashion_mnist",
    )
