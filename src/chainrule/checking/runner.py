"""Running one layer class through the checks: construct, forward, backward, numerical
gradients, and a :class:`~chainrule.checking.report.LayerReport` at the end.

Every call into the learner's code goes through :meth:`_Check.call`, which catches whatever it
raises and turns it into a diagnosis carrying the learner's own (trimmed) traceback. ``np.random``
is re-seeded before each ``forward`` (and restored afterwards), so a Dropout that draws its mask
with ``np.random.rand``, as the book's does, draws the same mask every time and has a gradient.
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.checking import diagnose, loading
from chainrule.checking.report import Diagnosis, GradientResult, LayerReport, status_of
from chainrule.checking.specs import Spec, book_name, spec_for
from chainrule.gradcheck import compare, numerical_gradient

_FORWARD_SEED = 12345


class LayerTimeout(Exception):
    """The learner's layer ran past the time limit (an endless loop, a huge array)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"still running after {seconds:g} s")


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`LayerTimeout` inside whatever runs after ``seconds`` (POSIX main thread
    only; elsewhere, or with ``None``, no limit)."""
    if (
        seconds is None
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    limit = float(seconds)

    def expire(signum: int, frame: Any) -> None:
        raise LayerTimeout(limit)

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class _Failed(Exception):
    """The learner's code raised; the diagnosis is already recorded."""


@contextlib.contextmanager
def _seeded_global_rng() -> Iterator[None]:
    # The book's Dropout draws from NumPy's legacy global generator: seed that one.
    saved = np.random.get_state()  # noqa: NPY002
    np.random.seed(_FORWARD_SEED)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(saved)  # noqa: NPY002


class _Check:
    def __init__(self, cls: type, spec: Spec, learner_file: str | None):
        self.cls, self.spec, self.file = cls, spec, learner_file
        self.diagnoses: list[Diagnosis] = []
        self.usable = True
        self.forward_wrong = False
        self.gradients: list[GradientResult] = []
        first = next(iter(spec.inputs.values()), None)
        self.batch = int(first.shape[0]) if isinstance(first, np.ndarray) and first.ndim else None

    def add(self, d: Diagnosis | None) -> None:
        if d is not None:
            self.diagnoses.append(d)

    def call(self, code: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run learner code; on an exception record ``code`` (or the missing state behind it)
        with the learner's traceback and raise :class:`_Failed`."""
        try:
            with loading.learner_code():
                return fn(*args, **kwargs)
        except BaseException as e:  # sys.exit() in a layer is the learner's too
            if isinstance(e, KeyboardInterrupt):
                raise
            method = code.split("_")[0]
            d = None
            if isinstance(e, NotImplementedError):  # an abstract base class: nothing to check
                self.add(Diagnosis("abstract", "note", {"cls": self.cls.__name__}))
                raise _Failed from None
            if isinstance(e, LayerTimeout):
                d = Diagnosis("timeout", args={"method": method, "seconds": e.seconds})
            elif method in ("forward", "backward") and hasattr(self, "layer"):
                d = diagnose.missing_state(self.layer, method, e)
            d = d or Diagnosis(code, args={"cls": self.cls.__name__, **loading.exception_args(e)})
            d.traceback = loading.trimmed_traceback(e, self.file, not isinstance(e, LayerTimeout))
            if code == "init_raised":
                d.args["args"] = ", ".join(_arg_names(self.spec))
            self.add(d)
            raise _Failed from None

    def forward(self, inputs: dict[str, Any]) -> Any:
        with _seeded_global_rng():
            return self.call(
                "forward_raised", self.layer.forward, *inputs.values(), **self.spec.forward_kwargs
            )

    # -- the steps -------------------------------------------------------------------------

    def construct(self, layer: Any) -> None:
        if isinstance(layer, type):
            s = self.spec
            layer = self.call("init_raised", layer, *s.init_args, **s.init_kwargs)
        self.layer = layer

    def run_forward(self) -> Any:
        """Forward on copies of the inputs; warn when it changes them; check its output."""
        given = {k: _copy(v) for k, v in self.spec.inputs.items()}
        out = self.forward(given)
        for name, v in given.items():
            if isinstance(v, np.ndarray) and not np.array_equal(v, self.spec.inputs[name]):
                self.add(Diagnosis("forward_mutates_input", "warning", {"name": name}))
        want = self.reference(out)
        numeric = _numeric(out)
        if out is None or numeric is None or (numeric.ndim == 0 and np.ndim(want) > 0):
            self.usable = False  # nothing to differentiate numerically
            if out is None:
                self.add(Diagnosis("forward_none"))
            elif want is None:
                self.add(Diagnosis("forward_not_array", args={"value": loading.describe(out)}))
            else:
                shape = str(np.shape(want))
                self.add(Diagnosis("forward_constant", args={"value": repr(out), "shape": shape}))
            if want is None:
                raise _Failed
            return np.zeros(np.shape(want))
        raw = np.asarray(out)
        if raw.dtype.kind == "f" and raw.dtype.itemsize < 8:
            self.add(Diagnosis("low_precision", "warning", {"dtype": str(raw.dtype)}))
        if want is not None:
            d = diagnose.forward_diagnosis(self.spec, numeric, want, self.spec.inputs, self.batch)
            self.forward_wrong = d is not None and d.severity == "error"
            self.add(d)
        self.out = out
        again = _numeric(self.forward({k: _copy(v) for k, v in self.spec.inputs.items()}))
        if again is None or not diagnose._close(again, numeric, 1e-12):
            self.add(Diagnosis("forward_nondeterministic"))
            raise _Failed
        return out

    def reference(self, out: Any) -> Any:
        """chainrule's output for these inputs (``None`` when there is no reference, or the
        learner's output is too odd for it to apply)."""
        if self.spec.reference is None:
            return None
        try:
            with loading.learner_code():
                return np.asarray(self.spec.reference(self.layer, self.spec.inputs, out))
        except Exception:
            return None

    def run_backward(self, out: Any) -> dict[str, Any]:
        """Backward under a random ``dout`` (1 for a loss); the returned gradients by name."""
        if self.spec.loss:
            dout: Any = 1.0
        else:
            dout = np.random.default_rng(7).standard_normal(np.shape(out))
        self.dout = dout
        given = _copy(dout)
        if self.spec.loss and _takes_no_arguments(self.layer.backward):
            returned = self.call("backward_raised", self.layer.backward)  # def backward(self)
        else:
            returned = self.call("backward_raised", self.layer.backward, given)
        if isinstance(dout, np.ndarray) and not np.array_equal(given, dout):
            self.add(Diagnosis("dout_mutated", "warning"))
        return self.unpack(returned)

    def unpack(self, returned: Any) -> dict[str, Any]:
        names = self.spec.grads
        if returned is None and names:
            self.add(Diagnosis("backward_none"))
            return {}
        if isinstance(returned, (tuple, list)) and len(returned) == 1 and len(names) == 1:
            returned = returned[0]
        if isinstance(returned, list) and len(names) == 1:
            returned = np.asarray(returned)  # a nested list is one gradient, not several
        values = list(returned) if isinstance(returned, (tuple, list)) else [returned]
        if len(values) != len(names):
            self.add(
                Diagnosis(
                    "wrong_count",
                    args={"got": len(values), "want": len(names), "names": ", ".join(names)},
                )
            )
            return {}
        return {"d" + n: v for n, v in zip(names, values)}

    def gradient_pairs(self, returned: dict[str, Any]) -> dict[str, tuple[np.ndarray, Any]]:
        """``{"dx": (x, dx), "dW": (W, dW) ...}`` for every gradient that can be compared."""
        pairs: dict[str, tuple[np.ndarray, Any]] = {}
        for name in self.spec.grads:
            x = self.spec.inputs[name]
            self.gradients.append(GradientResult("d" + name, x.shape))
            if "d" + name in returned:
                pairs["d" + name] = (x, returned["d" + name])
        for param, grad in self.param_names().items():
            p = getattr(self.layer, param)
            self.gradients.append(GradientResult(grad, np.shape(p)))
            g = getattr(self.layer, grad, None)
            if g is None:
                args = {"grad": grad, "param": param, "shape": str(np.shape(p))}
                self.add(Diagnosis("param_grad_missing", args=args, gradient=grad))
            else:
                pairs[grad] = (p, g)
        return {k: v for k, v in pairs.items() if self.shape_ok(k, *v)}

    def param_names(self) -> dict[str, str]:
        if self.spec.params is not None:
            return {p: g for p, g in self.spec.params.items() if hasattr(self.layer, p)}
        state = vars(self.layer)
        return {
            k[1:]: k
            for k in state
            if k.startswith("d")
            and k[1:] not in self.spec.inputs
            and k[1:] not in ("out", "y")  # saved outputs, not parameters
            and isinstance(state.get(k[1:]), np.ndarray)
            and state[k[1:]].dtype.kind == "f"
        }

    def shape_ok(self, grad: str, x: np.ndarray, g: Any) -> bool:
        param = grad[1:]
        if g is None or (np.ndim(g) == 0 and x.ndim > 0):
            args = {"value": repr(g), "grad": grad, "shape": str(x.shape)}
            self.add(Diagnosis("backward_constant", args=args, gradient=grad))
            return False
        if np.shape(g) != x.shape:
            self.add(diagnose.shape_diagnosis(grad, param, np.shape(g), x.shape, self.batch))
            return False
        return True

    def compare(self, pairs: dict[str, tuple[np.ndarray, Any]]) -> None:
        """Relative errors from :func:`chainrule.gradcheck.compare` (kinks excluded), and a
        diagnosis for each gradient that fails."""
        if not pairs or not self.usable:
            return
        arrays = {k: x for k, (x, _) in pairs.items()}
        analytic = {k: np.asarray(g, dtype=np.float64) for k, (_, g) in pairs.items()}
        f, probe = self.objective()
        try:
            report = compare(
                f, arrays, analytic, rtol=self.spec.rtol, kink_probe=probe, raise_on_failure=False
            )
        except _Failed:
            self.diagnoses[-1].code = "numeric_failed"
            return
        numerical = {k: numerical_gradient(lambda _: f(), x) for k, x in arrays.items()}
        for t in report.tensors:
            result = next(r for r in self.gradients if r.name == t.name)
            result.rel_error, result.kinks = t.rel_error, len(t.kink_crossings)
        self.diagnose_values(report, analytic, numerical, self.reference_gradients(arrays))

    def reference_gradients(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """When forward is wrong: the numerical gradients of chainrule's layer, to tell the
        learner whether backward is right for the operation that forward should compute."""
        ref = self.spec.reference
        if not self.forward_wrong or ref is None:
            return {}
        inputs, dout, out = self.spec.inputs, self.dout, self.out

        def f() -> float:
            with loading.learner_code():
                return float((np.asarray(ref(self.layer, inputs, out), np.float64) * dout).sum())

        return {k: numerical_gradient(lambda _: f(), x) for k, x in arrays.items()}

    def objective(self) -> tuple[Callable[[], float], Callable[[], Any] | None]:
        """``f() = sum(forward(inputs) * dout)``, and the kink probe of chainrule's twin."""
        twin = self.spec.probe() if self.spec.probe else None
        inputs, dout = self.spec.inputs, self.dout

        def f() -> float:
            out = self.forward({k: _copy(v) for k, v in inputs.items()})
            if twin is not None:
                twin.forward(*inputs.values())
            return float((np.asarray(out, dtype=np.float64) * dout).sum())

        probe = None
        if twin is not None:
            probe = lambda: [("kink", np.array(twin.kink_state(), copy=True))]  # noqa: E731
        return f, probe

    def diagnose_values(
        self, report: Any, analytic: dict, numerical: dict, reference: dict
    ) -> None:
        failing = [t for t in report.tensors if not t.ok]
        inputs = {k: analytic[k] for k in analytic if k[1:] in self.spec.inputs}
        swapped = diagnose.swapped_pairs(inputs, {k: numerical[k] for k in inputs})
        named = set()
        for g, h in swapped:
            self.add(Diagnosis("grad_swapped", args={"grad": g, "other": h}, gradient=g))
            named |= {g, h}
        for t in failing:
            if t.name in named:
                continue
            if t.name in reference and diagnose._close(analytic[t.name], reference[t.name]):
                args = {"grad": t.name, "ref": self.spec.book_name}
                self.add(Diagnosis("grad_matches_reference", "note", args, gradient=t.name))
                continue
            valid = np.ones(t.shape, bool)
            for index, _ in t.kink_crossings:
                valid[index] = False
            self.add(
                diagnose.value_diagnosis(
                    t.name, analytic[t.name], numerical[t.name], valid, t.rel_error, self.batch
                )
            )


def _numeric(v: Any) -> np.ndarray | None:
    """``v`` as a float64 array, or ``None`` when it is not numbers (a string, None ...)."""
    try:
        with loading.learner_code():
            a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return a


def _takes_no_arguments(method: Any) -> bool:
    try:
        return not inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _copy(v: Any) -> Any:
    return v.copy() if isinstance(v, np.ndarray) else v


def _arg_names(spec: Spec) -> list[str]:
    shown = [_short(a) for a in spec.init_args]
    return shown + [f"{k}={_short(v)}" for k, v in spec.init_kwargs.items()]


def _short(v: Any) -> str:
    return f"<array {v.shape}>" if isinstance(v, np.ndarray) else repr(v)


def check_layer(
    layer: Any,
    *,
    spec: Spec | None = None,
    seed: int = 0,
    lang: str = "en",
    timeout: float | None = None,
) -> LayerReport:
    """Check a learner's layer class (or instance): forward against chainrule's layer of the
    same name, every gradient against a float64 numerical one, and name what is wrong.

    >>> from chainrule.checking import check_layer
    >>> class Square:
    ...     check_inputs = {"x": (3, 2)}
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x * x
    ...     def backward(self, dout):
    ...         return -2 * self.x * dout
    >>> report = check_layer(Square)
    >>> report.status, report.diagnoses[0].code
    ('FAIL', 'grad_sign')
    >>> print(report.diagnoses[0].message("zh"))
    dx 的符号反了：它是数值梯度的相反数
    """
    cls = layer if isinstance(layer, type) else type(layer)
    spec = spec or spec_for(cls, np.random.default_rng(seed))
    if spec is None:
        d = Diagnosis("skip_unknown", "note", {"cls": cls.__name__})
        return LayerReport(cls.__name__, "SKIP", diagnoses=[d], lang=lang)
    check = _Check(cls, spec, loading.source_file(cls))
    if spec.guessed:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in spec.inputs.items())
        check.add(Diagnosis("guessed_inputs", "note", {"inputs": shapes}))
    try:
        with time_limit(timeout):
            check.construct(layer)
            out = check.run_forward()
            returned = check.run_backward(out)
            check.compare(check.gradient_pairs(returned))
    except _Failed:
        pass
    except LayerTimeout as e:  # between two calls of the learner's code
        check.add(Diagnosis("timeout", args={"method": "check", "seconds": e.seconds}))
    except Exception as e:  # a bug of ours: one line, never a traceback
        args = {"cls": cls.__name__, **loading.exception_args(e)}
        check.add(Diagnosis("internal", args=args))
    abstract = any(d.code == "abstract" for d in check.diagnoses)
    return LayerReport(
        cls.__name__,
        "SKIP" if abstract else status_of(check.diagnoses),
        recognised_as=spec.book_name or book_name(cls),
        gradients=check.gradients,
        diagnoses=check.diagnoses,
        lang=lang,
    )


def check_file(
    path: str | Path, lang: str = "en", seed: int = 0, timeout: float | None = None
) -> list[LayerReport]:
    """Load the learner's file and check every layer class in it.

    A file that cannot be loaded (missing, a syntax error, an exception while importing) or
    that has no layer class gives one report with status ``"ERROR"``, named after the file.
    ``timeout`` (seconds per class) stops a layer that runs forever.
    """
    try:
        module = loading.load_module(path)
    except loading.LoadError as e:
        return [LayerReport(Path(path).name, "ERROR", diagnoses=[e.diagnosis], lang=lang)]
    try:
        classes = loading.layer_classes(module)
        if not classes:
            d = Diagnosis("no_layers", args={"file": str(path)})
            return [LayerReport(Path(path).name, "ERROR", diagnoses=[d], lang=lang)]
        return [check_layer(c, seed=seed, lang=lang, timeout=timeout) for c in classes]
    finally:
        loading.unload(module)
