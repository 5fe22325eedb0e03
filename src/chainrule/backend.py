"""Devices: which array module (NumPy or CuPy) an array belongs to, and moving arrays.

Ops never import NumPy's functions for array work directly when the array could live on a GPU:
they ask :func:`get_array_module` for the module that owns their inputs, so the same code runs
on NumPy arrays (the CPU) and CuPy arrays (an NVIDIA GPU). CuPy is imported only by
:func:`use_device` ``("cuda")``, by :func:`to_device` ``(..., "cuda")``, or when one of its
arrays is seen, so CPU-only installs never touch it.

Where things run is decided by where the arrays are. :func:`use_device` sets the device that
new models are built on (:func:`chainrule.models.build_model`, ``chainrule train --device``);
:func:`move_arrays` moves an existing network, the :class:`~chainrule.training.Trainer` puts the
data where the model's parameters are, and results come back with :func:`to_numpy`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, cast

import numpy as np

DEVICES = ("cpu", "cuda")

_current = "cpu"


class DeviceError(RuntimeError):
    """The requested device cannot be used here (no CuPy, no GPU)."""


def get_array_module(*arrays: object) -> ModuleType:
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        if type(a).__module__.partition(".")[0] == "cupy":
            import cupy  # only reached when a CuPy array already exists

            return cast(ModuleType, cupy)
    return np


def _check_name(device: str) -> str:
    name = str(device).lower()
    if name == "gpu":
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose 'cpu' or 'cuda'")
    return name


def _cupy() -> ModuleType:
    """Import CuPy and check that it sees a GPU, or say what is missing."""
    try:
        import cupy
    except ImportError as exc:
        raise DeviceError(
            "device 'cuda' needs CuPy, which is not installed (" + str(exc) + "): install the "
            "CuPy build for your CUDA version, e.g. pip install cupy-cuda12x"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken: CuPy raises its own errors
        raise DeviceError(f"device 'cuda': CuPy cannot reach a GPU ({exc})") from None
    if count < 1:
        raise DeviceError("device 'cuda': CuPy sees no GPU on this machine")
    return cast(ModuleType, cupy)


def use_device(device: str) -> None:
    """Build new models on ``device``: ``"cpu"`` (NumPy, the default) or ``"cuda"`` (CuPy).

    >>> import chainrule
    >>> chainrule.use_device("cpu"); chainrule.current_device()
    'cpu'
    """
    global _current
    name = _check_name(device)
    if name == "cuda":
        _cupy()
    _current = name


def current_device() -> str:
    """The device set by :func:`use_device` (``"cpu"`` unless changed)."""
    return _current


def device_of(array: Any) -> str:
    """``"cuda"`` for a CuPy array, else ``"cpu"``."""
    return "cpu" if get_array_module(array) is np else "cuda"


def to_device(array: Any, device: str | None = None) -> Any:
    """``array`` on ``device`` (default: :func:`current_device`); itself if already there."""
    name = _current if device is None else _check_name(device)
    if name == "cpu":
        return to_numpy(array)
    if device_of(array) == "cuda":
        return array
    return _cupy().asarray(array)


def to_numpy(array: Any) -> np.ndarray:
    """``array`` as a NumPy array on the host (a copy if it was on the GPU)."""
    if device_of(array) == "cuda":
        import cupy

        return cast(np.ndarray, cupy.asnumpy(array))
    return np.asarray(array)


def move_arrays(obj: Any, device: str | None = None) -> Any:
    """Move every array held by ``obj`` to ``device`` in place, and return ``obj``.

    ``obj`` is a network of the book's kind (``params`` plus layers), an optimizer, or any
    chainrule object, list or dict: the arrays in its attributes are replaced, recursively
    through chainrule objects, dicts and lists. An array held in several places (a weight in
    ``params`` and in its ``Affine`` layer) is moved once and stays shared.
    """
    name = _current if device is None else _check_name(device)
    moved: dict[int, Any] = {}
    seen: set[int] = set()

    def convert(value: Any) -> Any:
        key = id(value)
        if key not in moved:
            moved[key] = to_device(value, name)
        return moved[key]

    def is_array(value: Any) -> bool:
        return isinstance(value, np.ndarray) or get_array_module(value) is not np

    def visit(node: Any) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, dict):
            items: Any = list(node.items())
            for key, value in items:
                if is_array(value):
                    node[key] = convert(value)
                else:
                    visit(value)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if is_array(value):
                    node[i] = convert(value)
                else:
                    visit(value)
        elif type(node).__module__.partition(".")[0] == "chainrule":
            slots = [s for c in type(node).__mro__ for s in getattr(c, "__slots__", ())]
            names = list(getattr(node, "__dict__", {})) + [s for s in slots if s != "__weakref__"]
            for attr in names:
                value = getattr(node, attr, None)
                if is_array(value):
                    object.__setattr__(node, attr, convert(value))
                elif value is not None:
                    visit(value)

    visit(obj)
    return obj
