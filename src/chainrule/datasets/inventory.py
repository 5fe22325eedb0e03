"""What the loaders would find, checked and fetched ahead of time: ``chainrule data``.

:func:`inventory` lists, for one dataset, each place the loaders look in (see
:mod:`chainrule.datasets.mnist`) and which of the four files each holds, optionally verifying
their checksums; :func:`download_dataset` fetches the files into a folder of your choice
(``<folder>/<dataset>/``, the layout ``CHAINRULE_DATA`` and ``data_dir`` accept), verified,
skipping those already there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import mnist
from .idx import DatasetError

__all__ = ["FileStatus", "PlaceReport", "dataset_names", "download_dataset", "inventory"]


def dataset_names() -> tuple[str, ...]:
    """The datasets the loaders know: ``("mnist", "fashion-mnist")``."""
    return tuple(mnist._SPECS)


@dataclass(frozen=True)
class FileStatus:
    """One of the four files as found in one place: ``status`` is ``"found"`` (not hashed),
    ``"verified"`` (its SHA-256 matches) or ``"corrupt"`` (it does not: never loaded)."""

    role: str
    path: Path
    size: int
    status: str


@dataclass
class PlaceReport:
    """One folder the loaders look in, why (``origin``), whether it exists, and its files."""

    directory: Path
    origin: str
    exists: bool
    files: list[FileStatus] = field(default_factory=list)


def inventory(
    name: str, data_dir: str | os.PathLike[str] | None = None, *, verify: bool = False
) -> list[PlaceReport]:
    """Every place searched for dataset ``name``, in the loaders' order, and what it holds.

    A folder given as ``data_dir`` or ``$CHAINRULE_DATA`` that does not exist is listed with
    ``exists=False`` (the loaders raise on it).  With ``verify`` each file is hashed.
    """
    spec = _spec(name)
    reports = []
    for place in mnist._search_places(spec, data_dir, strict=False):
        report = PlaceReport(place.directory, place.origin, place.directory.is_dir())
        for role, fspec in spec.files.items():
            for candidate in (fspec.name, fspec.raw_name):
                path = place.directory / candidate
                if report.exists and path.is_file():
                    report.files.append(_status(role, path, fspec, verify))
                    break
        reports.append(report)
    return reports


def _status(role: str, path: Path, fspec: mnist.FileSpec, verify: bool) -> FileStatus:
    if not verify:
        return FileStatus(role, path, path.stat().st_size, "found")
    data = path.read_bytes()
    ok = mnist._sha256(data) in (fspec.sha256, fspec.raw_sha256)
    return FileStatus(role, path, len(data), "verified" if ok else "corrupt")


def _spec(name: str) -> mnist.DatasetSpec:
    if name not in mnist._SPECS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    return mnist._SPECS[name]


def download_dataset(name: str, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Download the files of ``name`` into ``folder/<name>/``; verified ones there are kept.

    Returns ``{role: path}`` of the four files.  Raises :class:`DatasetError` when a file
    cannot be fetched from any mirror, at once when the network is unreachable.
    """
    spec = _spec(name)
    target = Path(folder).expanduser() / spec.key
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create {target}: {exc}") from None
    place = mnist._Place(target, "download folder", is_cache=True)  # a bad copy is replaced
    paths: dict[str, Path] = {}
    for role, fspec in spec.files.items():
        hit = mnist._find_local(spec, fspec, [place], may_download=True)
        errors: list[str] = []
        if hit is None:
            try:
                hit = mnist._fetch(spec, fspec, errors, target)
            except mnist._Offline as exc:
                raise DatasetError(
                    f"{spec.title}: no network ({exc}); nothing else was tried. Download the "
                    f"files elsewhere from {spec.mirrors[0]}<file name> and copy them to "
                    f"{target}, then set {mnist.ENV_DATA}={target.parent}"
                ) from None
        if hit is None:
            raise DatasetError(
                f"{spec.title}: {fspec.name} could not be downloaded: " + "; ".join(errors)
            )
        paths[role] = hit[0]
    return paths
