"""The safe expression language: what it accepts, what it rejects (and how it says so), and
that it never hands text to Python's ``eval``/``exec``."""

from __future__ import annotations

import ast
import builtins
import doctest
import inspect
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import chainrule.expr as expr_module
from chainrule.explain import explain
from chainrule.expr import FUNCTIONS, ExpressionError, parse


def _build(source: str, **values: float):
    return parse(source).build(values)


# ----------------------------------------------------------------------------- valid input


def test_circuit_values_gradients_and_names() -> None:
    f = _build("(x + y) * z", x=-2.0, y=5.0, z=-4.0)
    assert f.name == "f" and float(f.data) == -12.0
    q, z = f.creator.inputs
    assert (q.name, z.name) == ("add1", "z")
    assert q.creator.inputs[0].name == "x"
    trace = explain(f)
    assert [s.output for s in trace] == ["f", "add1"]
    x, y = q.creator.inputs
    assert (float(x.grad), float(y.grad), float(z.grad)) == (-4.0, -4.0, 3.0)


def test_named_stages_name_their_nodes() -> None:
    e = parse("q = x + y; f = q * z")
    assert e.variables == ("x", "y", "z") and e.stages == ("q", "f")
    f = e.build({"x": -2, "y": 5, "z": -4})
    assert f.name == "f" and f.creator.inputs[0].name == "q"


def test_stages_on_separate_lines_and_a_bare_last_line() -> None:
    f = parse("t = x + y\nt ** 2").build({"x": 3, "y": 2})
    assert f.name == "f" and float(f.data) == 25.0
    f.backward()
    assert float(f.creator.inputs[0].creator.inputs[0].grad) == 10.0


def test_last_line_naming_a_stage_returns_that_stage() -> None:
    f = parse("q = x * 2; q").build({"x": 4})
    assert f.name == "q" and float(f.data) == 8.0


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ("x ** 2 + -x", {"x": 3.0}, 6.0),
        ("+x - 2 * y / 4", {"x": 1.0, "y": 2.0}, 0.0),
        ("exp(log(x)) + sqrt(x) + abs(-x)", {"x": 4.0}, 10.0),
        ("sigmoid(x) + tanh(x) + relu(x)", {"x": 0.0}, 0.5),
        ("max(x, y) + min(x, y) + maximum(x, 1) + minimum(y, 0)", {"x": 1.0, "y": -2.0}, -2.0),
        ("x ** -1 + x ** 0.5", {"x": 4.0}, 2.25),
        ("2 ** 3 * x", {"x": 1.0}, 8.0),
        ("1e-3 * x + 0.5", {"x": 1000.0}, 1.5),
    ],
)
def test_arithmetic_and_functions(source: str, values: dict, expected: float) -> None:
    assert_allclose(float(parse(source).build(values).data), expected)


def test_max_of_one_argument_is_the_largest_element() -> None:
    f = parse("max(x)").build({"x": np.array([1.0, 3.0, 2.0])})
    assert float(f.data) == 3.0
    f.backward()
    assert_allclose(f.creator.inputs[0].grad, [0.0, 1.0, 0.0])


def test_the_staged_example_matches_the_engine() -> None:
    f = parse(
        "sigy = sigmoid(y); num = x + sigy; sigx = sigmoid(x); xpy = x + y; "
        "xpysqr = xpy ** 2; den = sigx + xpysqr; invden = 1 / den; f = num * invden"
    ).build({"x": 3, "y": -4})
    trace = explain(f)
    assert any(e.accumulated for s in trace for e in s.edges)  # x and y are used twice
    assert_allclose(float(f.data), 1.5456448841066441)


def test_constants_stay_constants_and_are_folded() -> None:
    f = _build("x * (2 + 3)", x=1.0)
    assert f.creator.inputs[1] == 5.0  # a plain number, not a leaf Tensor
    assert parse("2 * 3").build({}).item() == 6.0


def test_variables_are_listed_in_order_of_first_use() -> None:
    assert parse("z * exp(y) + x * z").variables == ("z", "y", "x")
    assert parse("z * exp(y) + x * z").missing({"z": 1}) == ["y", "x"]


def test_auto_names_avoid_the_users_names() -> None:
    f = _build("add1 + add1 * y", add1=1.0, y=2.0)
    names = {f.name, f.creator.inputs[1].name}
    assert "add1" not in names - {f.creator.inputs[0].name}
    assert f.creator.inputs[1].name == "mul1"


def test_array_values_broadcast() -> None:
    f = parse("x * y").build({"x": np.array([1.0, 2.0]), "y": 3.0})
    assert f.shape == (2,)


# ----------------------------------------------------------------------------- rejected input


@pytest.mark.parametrize(
    ("source", "fragment", "column"),
    [
        ("x $ y", "invalid syntax near '$'", 3),
        ("x +", "invalid syntax", 4),
        ("os.system('rm -rf /')", "attribute access 'os.system'", 1),
        ("x.real", "attribute access 'x.real' is not allowed", 1),
        ("__import__('os')", "unknown function '__import__'", 1),
        ("open(x)", "unknown function 'open'", 1),
        ("eval(x)", "unknown function 'eval'", 1),
        ("x + print(y)", "unknown function 'print'", 5),
        ("(x)(y)", "unknown function 'x'", 2),
        ("exp(x)(y)", "call of expression 'exp(x)'", 1),
        ("x[0]", "indexing 'x[0]' is not allowed", 1),
        ("x @ y", "operator '@' is not allowed", 3),
        ("x // y", "operator '//' is not allowed", 3),
        ("x if y else z", "conditional expression", 1),
        ("lambda: 1", "lambda", 1),
        ("x < y", "comparison", 1),
        ("x and y", "boolean operator", 1),
        ("'text'", "is not a number", 1),
        ("True * x", "is not a number", 1),
        ("1j * x", "is not a number", 1),
        ("[x, y]", "list", 1),
        ("f'{x}'", "f-string", 1),
        ("x ** y", "the exponent 'y' must be a number", 6),
        ("exp(x, y)", "exp() takes 1 argument, got 2", 1),
        ("maximum(x)", "maximum() takes 2 arguments, got 1", 1),
        ("exp(x=1)", "keyword arguments", 5),
        ("exp + x", "function 'exp' must be called", 1),
        ("__x + 1", "names may not start with '__'", 1),
        ("import os", "statement 'import' is not allowed", 1),
        ("x; y", "'x' is not used", 1),
        ("x = 1; x = 2", "'x' is already defined", 8),
        ("a, b = x", "only 'name = expression' assignments", 1),
        ("x + \x00", "invalid character U+0000", 5),
        ("(x := 2)", "assignment expression", 2),
    ],
)
def test_rejections_name_the_token_and_column(source: str, fragment: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source)
    message = str(info.value)
    assert fragment in message, message
    assert message.startswith(f"column {column}:"), message
    assert info.value.column == column
    assert "\n" not in message


def test_multiline_errors_name_the_line() -> None:
    with pytest.raises(ExpressionError, match=r"^line 2, column 7: operator '@'"):
        parse("q = x\nr = q @ q")


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expression(source: str) -> None:
    with pytest.raises(ExpressionError, match="empty"):
        parse(source)


def test_too_long_or_too_deep_is_an_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError, match="too long"):
        parse("x + " * 5000 + "x")
    with pytest.raises(ExpressionError):
        parse("(" * 300 + "x" + ")" * 300 + " + -" * 1 + "x")
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse("-" * 400 + "x")


@pytest.mark.parametrize(
    ("source", "values", "fragment"),
    [
        ("1 / 0 + x", {"x": 1.0}, "'1 / 0' cannot be computed (float division by zero)"),
        ("9 ** 9 ** 9 * x", {"x": 1.0}, "the exponent 3.8742e+08 is too large in size"),
        ("x ** 1e308", {"x": 2.0}, "the exponent 1e+308 is too large in size (at most 1000)"),
        ("x + 1" + "0" * 400, {"x": 1.0}, "column 5: number '1000000000"),
        ("x + 1e309", {"x": 1.0}, "number '1e309' is too large"),
        ("x + (-8) ** 0.5", {"x": 1.0}, "'(-8) ** 0.5' cannot be computed (not a real number)"),
        ("x + max(3)", {"x": 1.0}, "'max(3)': with one argument max() is the maximum of a"),
        ("x + min(-3)", {"x": 1.0}, "min() is the minimum of a variable's elements"),
        ("exp(1000) * x", {"x": 1.0}, "'exp(1000)' cannot be computed (overflow"),
        ("log(-1) * x", {"x": 1.0}, "'log(-1)' cannot be computed"),
        ("x * y", {"x": 1.0}, "no value given for y"),
        ("x", {"x": 1.0, "w": 2.0}, "value given for w, not in the expression"),
        ("x", {"x": float("nan")}, "must be finite"),
        ("x", {"x": "one"}, "must be a number"),
        ("x * y", {"x": np.ones(2), "y": np.ones(3)}, "'x * y'"),
    ],
)
def test_build_errors(source: str, values: dict, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source).build(values)
    assert fragment in str(info.value)


def test_the_error_is_a_value_error() -> None:
    assert issubclass(ExpressionError, ValueError)


# ----------------------------------------------------------------------------- no eval, ever


def test_parse_and_build_never_call_eval_or_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec must not be used")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    f = parse("q = x + y; sigmoid(q) * exp(-z) / 2").build({"x": 1, "y": 2, "z": 0})
    assert math.isclose(float(f.data), 1 / (1 + math.exp(-3)) / 2)
    with pytest.raises(ExpressionError):
        parse("__import__('os').system('true')")


def test_module_source_names_no_eval_exec_or_compile() -> None:
    tree = ast.parse(inspect.getsource(expr_module))
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__"}


def test_the_whitelist_is_the_documented_one() -> None:
    assert set(FUNCTIONS) == {
        "exp", "log", "sqrt", "abs", "sigmoid", "relu", "tanh",
        "max", "min", "maximum", "minimum",
    }  # fmt: skip


def test_doctests() -> None:
    result = doctest.testmod(expr_module)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------- fuzzing
# Whatever the text: the parser's own error or a graph; never another exception, never a hang,
# never code run (a canary function reachable by name must stay uncalled).

_TOKENS = [
    "x", "y", "z", "q", "w0", "__x", "1", "0", "2.5", "1e3", "1e999", "9" * 30, "0x1f", "1j",
    "+", "-", "*", "/", "**", "//", "%", "@", "(", ")", ",", ";", "\n", "=", " ", ".", "[", "]",
    "exp", "log", "sqrt", "abs", "sigmoid", "relu", "tanh", "max", "min", "maximum", "minimum",
    "canary", "__import__", "'os'", "lambda", ":", "if", "else", "not", "<", "==", "...", "{",
    "}", "'s'", "f'{x}'", "\\", "#", "\t", "\x00", "é", "→",
]  # fmt: skip


def _check_one(source: str, calls: list[int]) -> None:
    import time
    import warnings

    from chainrule.functions.checks import NonFiniteWarning

    start = time.perf_counter()
    try:
        e = parse(source)
        values = {v: np.float64(0.5 + i) for i, v in enumerate(e.variables)}
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", NonFiniteWarning)  # log(x) at x <= 0: IEEE's answer
            f = e.build(values)
        assert isinstance(f, expr_module.Tensor)
    except ExpressionError as err:
        assert "\n" not in str(err)  # one line
    assert time.perf_counter() - start < 2.0, f"slow: {source!r}"
    assert not calls, f"code ran for {source!r}"


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(builtins, "canary", lambda *a: calls.append(1), raising=False)
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: calls.append(1), raising=True)
    monkeypatch.setattr(builtins, "exec", lambda *a, **k: calls.append(1), raising=True)
    return calls


def _random_expression(rng: np.random.Generator, depth: int = 0) -> str:
    """A well-formed expression over the whitelist (numbers, variables, ops, calls)."""
    if depth > 4 or rng.random() < 0.25:
        return str(rng.choice(["x", "y", "z", "0", "1", "2.5", "1e-3", "1e300", "(-8)", "3e3"]))
    kind = rng.integers(5)
    a = _random_expression(rng, depth + 1)
    if kind == 0:
        return f"{a} {rng.choice(['+', '-', '*', '/', '**'])} {_random_expression(rng, depth + 1)}"
    if kind == 1:
        return f"-({a})"
    if kind == 2:
        return f"{rng.choice(sorted(FUNCTIONS))}({a})"
    if kind == 3:
        b = _random_expression(rng, depth + 1)
        return f"{rng.choice(['max', 'min', 'maximum', 'minimum'])}({a}, {b})"
    return f"q = {a}; q * {_random_expression(rng, depth + 1)}"


def test_fuzz_random_well_formed_expressions(canary: list[int]) -> None:
    rng = np.random.default_rng(11)
    for _ in range(2000):
        _check_one(_random_expression(rng), canary)


def test_fuzz_token_soup_gives_a_graph_or_the_parsers_error(canary: list[int]) -> None:
    rng = np.random.default_rng(12)
    for _ in range(4000):
        n = int(rng.integers(1, 25))
        source = "".join(rng.choice(_TOKENS, n))
        source = source.replace("\\n", "\n").replace("\\t", "\t").replace("\\x00", "\x00")
        _check_one(source, canary)


def _grammar() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(["x", "y", "z", "0", "1", "2.5", "1e-3", "1e300", "(-8)", "0.0"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binop = st.tuples(inner, st.sampled_from(" + - * / ** ".split(" ")[1:-1]), inner)
        call1 = st.tuples(st.sampled_from(sorted(FUNCTIONS)), inner)
        call2 = st.tuples(st.sampled_from(["max", "min", "maximum", "minimum"]), inner, inner)
        return st.one_of(
            binop.map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            inner.map(lambda s: f"({s})"),
            inner.map(lambda s: f"-{s}"),
            call1.map(lambda t: f"{t[0]}({t[1]})"),
            call2.map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        )

    expr = st.recursive(leaf, extend, max_leaves=12)
    staged = st.tuples(expr, expr).map(lambda t: f"q = {t[0]}; {t[1]} + q")
    return st.one_of(expr, staged)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(source=_grammar())
def test_fuzz_well_formed_expressions_build_or_fail_cleanly(source: str) -> None:
    calls: list[int] = []
    builtins.canary = lambda *a: calls.append(1)  # type: ignore[attr-defined]
    try:
        _check_one(source, calls)
    finally:
        del builtins.canary  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(source=st.text(max_size=40))
def test_fuzz_arbitrary_text_fails_cleanly(source: str) -> None:
    _check_one(source, [])
