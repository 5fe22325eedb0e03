"""Loading a learner's file safely and finding its layer classes.

The file runs in a fresh module (never as ``__main__``, so its ``if __name__ == "__main__":``
demo does not run), with its own folder on ``sys.path`` for the duration (so ``from layers
import ...`` next to it works). Whatever it raises is caught and reported with its traceback
trimmed to the learner's file: the frames of chainrule and of Python's import machinery are not
the learner's business.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sys
import traceback
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.checking.report import Diagnosis

_CHAINRULE_DIR = str(Path(__file__).resolve().parents[1])
_counter = itertools.count()


def trimmed_traceback(exc: BaseException, learner_file: str | None, last: bool = True) -> str:
    """The traceback of ``exc`` keeping only the learner's frames.

    Frames in ``learner_file`` are kept; without one (or when none is there), every frame
    outside chainrule's own package and Python's import machinery. The last line is the
    exception itself.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if learner_file and _same_file(f.filename, learner_file)]
    if not mine:
        mine = [
            f
            for f in frames
            if not f.filename.startswith(_CHAINRULE_DIR) and not f.filename.startswith("<frozen")
        ]
    lines = traceback.format_list(mine)
    if last:  # the exception itself (not for our own timeout: the frames say where it was)
        lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


@contextlib.contextmanager
def learner_code() -> Iterator[None]:
    """Run learner code quietly: its NumPy and Python warnings are not ours to raise (pytest
    runs with warnings as errors), and its floating-point complaints are judged by results.
    Its prints go to stderr."""
    # What the learner prints goes to stderr: stdout carries the report (and --json must parse).
    with (
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
        contextlib.redirect_stdout(sys.stderr),
    ):
        warnings.simplefilter("ignore")
        yield


def exception_args(exc: BaseException) -> dict[str, str]:
    msg = str(exc).strip().splitlines()
    return {"exc": type(exc).__name__, "msg": msg[0] if msg else "(no message)"}


class LoadError(Exception):
    """The learner's file could not be loaded; ``diagnosis`` says why."""

    def __init__(self, diagnosis: Diagnosis):
        self.diagnosis = diagnosis
        super().__init__(diagnosis.message())


def load_module(path: str | Path) -> types.ModuleType:
    """Execute the file at ``path`` in a fresh module and return it; :class:`LoadError` when the
    file is missing, does not parse, or raises while running."""
    path = Path(path)
    shown = str(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LoadError(Diagnosis("load_missing", args={"file": shown, "msg": str(e)})) from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as e:
        text = (e.text or "").rstrip("\n")
        where = f'  File "{shown}", line {e.lineno}\n    {text.strip()}\n' if text else ""
        raise LoadError(
            Diagnosis(
                "load_syntax",
                args={"file": shown, "line": e.lineno, "msg": e.msg},
                traceback=f"{where}SyntaxError: {e.msg}\n",
            )
        ) from None
    name = f"_chainrule_check_{next(_counter)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        with learner_code():
            exec(code, module.__dict__)
    except BaseException as e:  # SystemExit from a script is reported too
        if isinstance(e, KeyboardInterrupt):
            raise
        raise LoadError(
            Diagnosis(
                "load_raised",
                args={"file": shown, **exception_args(e)},
                traceback=trimmed_traceback(e, str(path)),
            )
        ) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module


def unload(module: types.ModuleType) -> None:
    """Forget the learner's module and the modules it imported from its own folder, so that a
    later check of another folder's ``layers.py`` does not find this one's in the cache."""
    sys.modules.pop(module.__name__, None)
    folder = Path(str(module.__file__)).resolve().parent
    for name, m in list(sys.modules.items()):
        f = getattr(m, "__file__", None)
        if f and Path(f).resolve().parent == folder:
            sys.modules.pop(name, None)


def layer_classes(module: types.ModuleType) -> list[type]:
    """The classes defined in ``module`` (not imported into it) that have both ``forward`` and
    ``backward``: the book's definition of a layer. In the order the file defines them."""
    found = []
    for obj in vars(module).values():
        if (
            isinstance(obj, type)
            and obj.__module__ == module.__name__
            and callable(getattr(obj, "forward", None))
            and callable(getattr(obj, "backward", None))
        ):
            found.append(obj)
    return found


def source_file(cls: type) -> str | None:
    import inspect

    try:
        return inspect.getsourcefile(cls)
    except (TypeError, OSError):
        return None


def describe(value: Any) -> str:
    """A short description of a value for a message: ``0``, ``None``, ``array (3,)``."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
