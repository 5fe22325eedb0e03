"""``python -m benchmarks.optim_update``: microseconds per optimizer update on a net's shapes.

Times ``opt.update(params, grads)`` of chainrule's optimizers, float32, on the parameter shapes of
the small net (784-50-10: ``W1`` 784x50, ``b1`` 50, ``W2`` 50x10, ``b2`` 10), of the big one, or
on tiny ones where the arithmetic is negligible (``--net tiny``: the bookkeeping alone), next to
the bare NumPy arithmetic of SGD (``np.multiply(g, lr, out=w); p -= w`` per parameter, no
checks): the difference is what the optimizer's bookkeeping costs per step. The ``unchecked``
rows are the current code with ``check_finite = False``: the difference to the ``chainrule`` row
is what refusing a NaN/inf gradient costs (one reduction per gradient).

``--baseline PATH`` loads another version of ``chainrule.optim``: a copy of the package's folder
(``git archive HEAD~1 src/chainrule/optim | tar -x -C /tmp/old``, then
``--baseline /tmp/old/src/chainrule/optim``) or an older single-file ``optim.py`` (e.g. the one
before the checks were cached: ``git show 822a089:src/chainrule/optim.py > /tmp/optim_old.py``),
and times it side by side, so a before/after comparison is measured under the same load. Rows are
interleaved: every round runs each row once, in a rotating order; the table shows the best and
the median round, and the ratio of each row's time to the current code's (same rule; the NumPy
row against SGD) paired round by round: above 1 is slower than the current code.

Elementwise NumPy does not use BLAS threads, but run it as the other benchmarks are run::

    export OPENBLAS_NUM_THREADS=1 PYTHONPATH=src
    python -m benchmarks.optim_update
    python -m benchmarks.optim_update --baseline /tmp/optim_old.py --net big
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

SHAPES = {
    "tiny": {"W1": (4, 5), "b1": (5,), "W2": (5, 3), "b2": (3,)},  # arithmetic ~0: overhead only
    "small": {"W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)},
    "big": {
        "W1": (784, 1024), "b1": (1024,), "W2": (1024, 1024), "b2": (1024,),
        "W3": (1024, 10), "b3": (10,),
    },
}  # fmt: skip
RULES = {"sgd": "SGD", "momentum": "Momentum", "adam": "Adam"}
HYPER = {"sgd": {"lr": 0.1}, "momentum": {"lr": 0.1}, "adam": {"lr": 1e-3}}


def load_optim(path: Path) -> ModuleType:
    """Import another version of ``chainrule.optim`` from ``path`` as a module of its own.

    ``path`` is the package's folder (``src/chainrule/optim``, or a copy of an older one, e.g.
    from ``git archive``) or an older single-file ``optim.py``. A missing ``.../optim.py``
    next to an ``optim/`` package means the package (the module became one).
    """
    if path.suffix == ".py" and not path.exists() and path.with_suffix("").is_dir():
        path = path.with_suffix("")
    if path.name == "__init__.py":
        path = path.parent
    name = "chainrule_optim_baseline"
    if path.is_dir():  # a package: its relative imports resolve inside the copy
        spec = importlib.util.spec_from_file_location(
            name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so that the package's relative imports find it
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError as exc:
        raise SystemExit(f"cannot import {path}: {exc}") from None
    return module


def make_problem(net: str, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """float32 parameters and (small) gradients of ``net``'s shapes."""
    rng = np.random.default_rng(seed)
    shapes = SHAPES[net]
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    grads = {k: (1e-6 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}
    return params, grads


def bare_sgd(params: dict[str, np.ndarray], lr: float) -> Callable[[Any, Any], None]:
    """SGD's arithmetic with nothing around it: the floor for ``SGD.update``."""
    work = {k: np.empty_like(p) for k, p in params.items()}

    def update(params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for key, p in params.items():
            w = work[key]
            np.multiply(grads[key], lr, out=w)
            p -= w

    return update


def build_rows(
    net: str, rules: list[str], baseline: ModuleType | None
) -> list[tuple[str, Callable[[], None]]]:
    """``(name, run-one-update)`` per row; each row updates its own copy of the parameters."""
    import chainrule.optim as current

    versions = [("chainrule", current), ("unchecked", current)]
    versions += [("baseline", baseline)] if baseline else []
    rows = []
    for rule in rules:
        for label, module in versions:
            params, grads = make_problem(net)
            opt = getattr(module, RULES[rule])(**HYPER[rule])
            if label == "unchecked":  # what the non-finite gradient check costs
                opt.check_finite = False
            rows.append((f"{label} {RULES[rule]}", _bind(opt.update, params, grads)))
    params, grads = make_problem(net)
    floor = bare_sgd(params, HYPER["sgd"]["lr"])
    rows.append(("numpy SGD arithmetic", _bind(floor, params, grads)))
    return rows


def _bind(update: Callable[[Any, Any], None], params: Any, grads: Any) -> Callable[[], None]:
    return lambda: update(params, grads)


def time_rows(
    rows: list[tuple[str, Callable[[], None]]], number: int, repeats: int
) -> dict[str, list[float]]:
    """Microseconds per call of each row, one value per round; rounds rotate the order."""
    for _, run in rows:  # warm-up: first-update allocation and checks happen here
        for _ in range(max(1, number // 10)):
            run()
    times: dict[str, list[float]] = {name: [] for name, _ in rows}
    n = len(rows)
    for r in range(repeats):
        for name, run in (rows[(r + i) % n] for i in range(n)):
            start = time.perf_counter()
            for _ in range(number):
                run()
            times[name].append((time.perf_counter() - start) / number * 1e6)
    return times


def table(times: dict[str, list[float]]) -> str:
    lines = [
        "| row | µs/update best | median | time / chainrule's (paired rounds, median) |",
        "|---|--:|--:|--:|",
    ]
    for name, us in times.items():
        rule = name.split()[-1]
        ref = times.get(f"chainrule {rule}") if name != "numpy SGD arithmetic" else None
        if name == "numpy SGD arithmetic":
            ref = times.get("chainrule SGD")
        ratio = "–" if ref is None else f"{statistics.median(a / b for a, b in zip(us, ref)):.2f}"
        lines.append(f"| {name} | {min(us):.2f} | {statistics.median(us):.2f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.optim_update", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--net", choices=sorted(SHAPES), default="small")
    parser.add_argument(
        "--rules", default="sgd,momentum,adam", help=f"comma-separated, from {', '.join(RULES)}"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another chainrule.optim (package folder or optim.py) to time side by side",
    )
    parser.add_argument("--number", type=int, default=1000, help="updates per timed run")
    parser.add_argument("--repeats", type=int, default=15, help="rounds")
    args = parser.parse_args(argv)
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    unknown = [r for r in rules if r not in RULES]
    if unknown or args.number < 1 or args.repeats < 1:
        parser.error(f"unknown rules {unknown}" if unknown else "--number, --repeats must be >= 1")
    baseline = load_optim(args.baseline) if args.baseline else None
    rows = build_rows(args.net, rules, baseline)
    times = time_rows(rows, args.number, args.repeats)
    shapes = ", ".join(f"{k} {v}" for k, v in SHAPES[args.net].items())
    print(f"{args.net} net float32 parameters ({shapes}); {args.repeats} rounds x {args.number} "
          f"updates; NumPy {np.__version__}, Python {sys.version.split()[0]}\n")  # fmt: skip
    print(table(times))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
