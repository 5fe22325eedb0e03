"""The one-line error machinery every command shares.

A command raises :class:`UserError` for anything the user asked for that cannot be done (a bad
value, a missing file); :func:`chainrule.cli.main` prints it as one line,
``chainrule COMMAND: error: ...``, and exits with status 2. This module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path
from typing import Any, NoReturn


class UserError(Exception):
    """A problem with what the user asked for: reported in one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """Reports a bad command line in one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def check_output_path(flag: str, path: str) -> None:
    """``path`` can be written as a file: its folder exists and it is not a folder itself."""
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: the folder {parent} does not exist")
    if Path(path).is_dir():
        raise UserError(f"{flag} {path}: is a folder, expected a file name")


def check_output_folder(flag: str, path: str) -> None:
    """``path`` is a folder or can be made one: neither it nor a parent is a file."""
    folder = Path(path).expanduser()
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is a file" if candidate == folder else f"{candidate} is a file"
                raise UserError(f"{flag} {path}: {what}, expected a folder")
            return


def check_input_file(what: str, path: str) -> None:
    """``path`` is an existing regular file, checked before anything opens it.

    A named pipe would block the reader forever and a device such as ``/dev/zero`` never
    ends, so both are refused here, as are folders.
    """
    try:
        mode = os.stat(Path(path).expanduser()).st_mode
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{what} {path} is a folder, expected a file")
    if not stat.S_ISREG(mode):
        raise UserError(f"{what} {path} is not a regular file (a pipe, socket or device)")


def require_plotting(flag: str = "--plot") -> None:
    """matplotlib is importable, or a one-line error naming ``flag``."""
    from chainrule.plotting import MissingDependencyError, require_matplotlib

    try:
        require_matplotlib()
    except MissingDependencyError as exc:
        raise UserError(f"{flag}: {exc}") from None


def add_device_flag(parser: Any) -> None:
    """``--device cpu|cuda`` on a subcommand's parser."""
    from chainrule.backend import DEVICES

    parser.add_argument(
        "--device",
        choices=DEVICES,
        help="where the model runs: cpu (NumPy, default) or cuda (an NVIDIA GPU through CuPy)",
    )


def use_device(device: str | None) -> None:
    """``--device``: build models there (CuPy is imported only for ``cuda``)."""
    from chainrule.backend import DeviceError
    from chainrule.backend import use_device as _use

    try:
        _use(device or "cpu")
    except DeviceError as exc:
        raise UserError(str(exc)) from None
