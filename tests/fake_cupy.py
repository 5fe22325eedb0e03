"""A stand-in for CuPy, so the GPU code paths run (and are checked) on a machine without a GPU.

It is *not* a GPU: arrays live in host memory and NumPy does the arithmetic. What it copies from
CuPy is the discipline that finds device bugs on a CPU-only machine:

* its arrays are their own type (``type(a).__module__ == "cupy"``), so
  :func:`chainrule.backend.get_array_module` picks this module for them;
* mixing one with a NumPy array in arithmetic raises ``TypeError`` (CuPy: "Unsupported type"),
  and so does an implicit conversion to NumPy (``np.asarray(device_array)``); only
  ``cupy.asnumpy``/``.get()`` bring data back, and ``cupy.asarray`` takes it there.

``with installed():`` puts it in ``sys.modules["cupy"]`` for a block (``install()`` and
``uninstall()`` by hand). Tests that need a real GPU skip unless the real CuPy sees a device.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

NAME = "cupy"


class MixingError(TypeError):
    """A NumPy array met a (fake) device array: a real GPU run would fail here too."""


def _unwrap(value: Any, where: str) -> Any:
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        raise MixingError(
            f"fake cupy: {where} got a NumPy array of shape {value.shape} next to device arrays "
            "(move it with cupy.asarray first)"
        )
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    return value


def _index(value: Any) -> Any:
    # NumPy integer or boolean index arrays are accepted by CuPy indexing only on the device.
    if isinstance(value, tuple):
        return tuple(_index(v) for v in value)
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        raise MixingError(f"fake cupy: indexing with a NumPy array of shape {value.shape}")
    return value


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ndarray(value)
    if isinstance(value, np.generic):  # CuPy's reductions give 0-d device arrays, not scalars
        return ndarray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class ndarray:
    """A device array of the fake: a NumPy array that will not mix with NumPy arrays."""

    __slots__ = ("__weakref__", "_a")
    __array_priority__ = 100.0

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    # --- what CuPy forbids
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed (fake cupy): use cupy.asnumpy"
        )

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        where = f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__
        args = [_unwrap(x, where) for x in inputs]
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o, where) for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        where = func.__name__
        return _wrap(
            func(*_unwrap(args, where), **{k: _unwrap(v, where) for k, v in kwargs.items()})
        )

    # --- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    base = property(lambda self: None if self._a.base is None else ndarray(self._a.base))

    @property
    def data(self) -> _MemoryPointer:
        """CuPy's ``.data`` is the device memory (a ``MemoryPointer``), not an array: code that
        reads ``getattr(x, "data", x)`` to unwrap a Tensor gets garbage from a device array."""
        return _MemoryPointer(self._a.nbytes)

    def __len__(self) -> int:
        return len(self._a)

    def __repr__(self) -> str:
        return "fake_cupy." + repr(self._a)

    def __getitem__(self, index: Any) -> Any:
        return _wrap(self._a[_index(index)])

    def __setitem__(self, index: Any, value: Any) -> None:
        self._a[_index(index)] = _unwrap(value, "__setitem__")

    # Python scalars out of one-element arrays: CuPy allows these (a synchronising copy).
    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __index__(self) -> int:
        return self._a.__index__()

    def item(self) -> Any:
        return self._a.item()

    def get(self) -> np.ndarray:
        """The data on the host (CuPy's name for it)."""
        return self._a.copy()

    def __iter__(self) -> Any:
        return (_wrap(row) for row in self._a)

    def __getattr__(self, name: str) -> Any:
        # Methods (reshape, sum, astype, copy, ...): NumPy's, on the host copy, results wrapped.
        # Never the array protocols (__array_interface__, ...): NumPy would read the data.
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args: Any, **kwargs: Any) -> Any:
            where = f"ndarray.{name}"
            kwargs = {k: _unwrap(v, where) for k, v in kwargs.items()}
            return _wrap(attr(*_unwrap(args, where), **kwargs))

        return method


class _MemoryPointer:
    """An opaque stand-in for ``cupy.cuda.MemoryPointer``."""

    def __init__(self, nbytes: int) -> None:
        self.mem_size = nbytes


def _binary(ufunc: np.ufunc, reflected: bool = False, inplace: bool = False) -> Any:
    def op(self: ndarray, other: Any) -> Any:
        if inplace:
            return ufunc(self, other, out=(self,))
        return ufunc(other, self) if reflected else ufunc(self, other)

    return op


for _name, _ufunc in {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power, "matmul": np.matmul,
    "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor,
}.items():  # fmt: skip
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
    setattr(ndarray, f"__r{_name}__", _binary(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _binary(_ufunc, inplace=True))
for _name, _ufunc in {
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal,
}.items():  # fmt: skip
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
ndarray.__neg__ = lambda self: np.negative(self)  # type: ignore[attr-defined]
ndarray.__pos__ = lambda self: self  # type: ignore[attr-defined]
ndarray.__abs__ = lambda self: np.absolute(self)  # type: ignore[attr-defined]
ndarray.__invert__ = lambda self: np.invert(self)  # type: ignore[attr-defined]
ndarray.__hash__ = None  # type: ignore[assignment]
ndarray.__module__ = NAME


class _Ufunc:
    """``cupy.exp`` and friends: the NumPy ufunc, refusing NumPy arrays, with ``.at``."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._u = ufunc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._u(*[_device(a, self._u.__name__) for a in args], **kwargs)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._u, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            where = f"{self._u.__name__}.{name}"
            result = method(*_unwrap(args, where), **kwargs)
            return _wrap(result)

        return call


def _device(value: Any, where: str) -> Any:
    if isinstance(value, np.ndarray):
        raise MixingError(f"fake cupy: {where} got a NumPy array of shape {value.shape}")
    return value


def asarray(a: Any, dtype: Any = None, order: Any = None) -> ndarray:
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    return ndarray(np.array(a, dtype=dtype, order=order, copy=True))


def asnumpy(a: Any) -> np.ndarray:
    return a._a.copy() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*arrays: Any) -> types.ModuleType:
    return sys.modules[NAME] if any(isinstance(a, ndarray) for a in arrays) else np


_CREATORS = {"zeros", "ones", "empty", "full", "arange", "eye", "linspace"}


def _module_getattr(name: str) -> Any:
    target = getattr(np, name)
    if isinstance(target, np.ufunc):
        return _Ufunc(target)
    if isinstance(target, type) or not callable(target):
        return target  # dtypes (float32, intp, ...), constants (inf, newaxis)
    if name in _CREATORS or name.endswith("_like"):

        def create(*args: Any, **kwargs: Any) -> Any:
            return _wrap(target(*_unwrap(args, name), **kwargs))

        return create

    def function(*args: Any, **kwargs: Any) -> Any:
        kwargs = {k: _unwrap(v, name) for k, v in kwargs.items()}
        return _wrap(target(*_unwrap(args, name), **kwargs))

    return function


class _Device:
    def __init__(self, index: int = 0) -> None:
        self.id = index

    def synchronize(self) -> None:
        pass

    def __enter__(self) -> _Device:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def build() -> types.ModuleType:
    module = types.ModuleType(NAME, __doc__)
    module.__getattr__ = _module_getattr  # type: ignore[method-assign]
    module.ndarray = ndarray  # type: ignore[attr-defined]
    module.asarray = asarray  # type: ignore[attr-defined]
    module.array = asarray  # type: ignore[attr-defined]
    module.asnumpy = asnumpy  # type: ignore[attr-defined]
    module.get_array_module = get_array_module  # type: ignore[attr-defined]
    module.__version__ = "0.0-fake"  # type: ignore[attr-defined]
    module.is_fake = True  # type: ignore[attr-defined]
    # cupy.lib.stride_tricks.as_strided: a strided view of a device array (the im2col windows)
    as_strided = _module_getattr("lib").stride_tricks.as_strided

    def strided(x: Any, shape: Any = None, strides: Any = None) -> Any:
        return _wrap(as_strided(_unwrap(x, "as_strided"), shape, strides))

    stride_tricks = types.SimpleNamespace(as_strided=strided)
    module.lib = types.SimpleNamespace(stride_tricks=stride_tricks)  # type: ignore[attr-defined]
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
    module.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        runtime=runtime, Device=_Device, get_device_id=lambda: 0
    )
    return module


def install() -> types.ModuleType:
    module = build()
    sys.modules[NAME] = module
    return module


def uninstall() -> None:
    sys.modules.pop(NAME, None)


@contextlib.contextmanager
def installed() -> Iterator[types.ModuleType]:
    """The stand-in as ``cupy`` inside the block; afterwards whatever was there before, and
    chainrule back on the CPU."""
    real = sys.modules.get(NAME)
    try:
        yield install()
    finally:
        from chainrule import backend

        backend.use_device("cpu")
        if real is not None:
            sys.modules[NAME] = real
        else:
            uninstall()
