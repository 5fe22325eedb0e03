"""A small, safe expression language for building computational graphs from text.

``chainrule graph "(x + y) * z" --set x=-2 y=5 z=-4`` turns its text into Tensors with this
module. The text is parsed by :func:`ast.parse` and then *checked node by node against a
whitelist*; it is never evaluated by Python (no ``eval``/``exec``), so nothing but arithmetic on
Tensors can happen. What is allowed:

* numbers (``2``, ``0.5``, ``1e-3``) and variable names (``x``, ``w0``);
* ``+ - * / **`` and unary ``-``/``+``, with parentheses; the exponent of ``**`` is a number;
* calls of ``exp log sqrt abs sigmoid relu tanh`` (one argument), ``maximum minimum`` (two),
  and ``max min`` (two arguments: elementwise like ``maximum``; one: the largest element);
* optionally, named stages before the result, separated by ``;`` or new lines, as in CS231n's
  staged backprop: ``sigy = sigmoid(y); num = x + sigy; num / (1 + x ** 2)``.

Every error is a :class:`ExpressionError` whose one-line message names the offending token or
construct and its column (1-based), e.g. ``column 3: attribute access 'os.system' is not
allowed``.

>>> e = parse("q = x + y; q * z")
>>> e.variables
('x', 'y', 'z')
>>> f = e.build({"x": -2.0, "y": 5.0, "z": -4.0})
>>> f.name, float(f.data), f.creator.inputs[0].name
('f', -12.0, 'q')
"""

from __future__ import annotations

import ast
import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from chainrule import functions as F
from chainrule.functions.checks import NonFiniteWarning
from chainrule.tensor import Tensor

__all__ = ["FUNCTIONS", "Expression", "ExpressionError", "parse"]

#: The callable names, with the numbers of arguments each accepts.
FUNCTIONS: dict[str, tuple[int, ...]] = {
    "exp": (1,),
    "log": (1,),
    "sqrt": (1,),
    "abs": (1,),
    "sigmoid": (1,),
    "relu": (1,),
    "tanh": (1,),
    "max": (1, 2),
    "min": (1, 2),
    "maximum": (2,),
    "minimum": (2,),
}

_UNARY_FUNCS: dict[str, Callable[[Any], Tensor]] = {
    "exp": F.exp,
    "log": F.log,
    "sqrt": F.sqrt,
    "abs": F.abs,
    "sigmoid": F.sigmoid,
    "relu": F.relu,
    "tanh": F.tanh,
    "max": F.max,
    "min": F.min,
}
_BINARY_FUNCS: dict[str, Callable[[Any, Any], Tensor]] = {
    "max": F.maximum,
    "min": F.minimum,
    "maximum": F.maximum,
    "minimum": F.minimum,
}
_BINOPS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", F.add),
    ast.Sub: ("-", F.sub),
    ast.Mult: ("*", F.mul),
    ast.Div: ("/", F.div),
    ast.Pow: ("**", F.pow),
}
# What a learner may type by mistake, named in the error message.
_DESCRIBE: dict[type, str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.Lambda: "lambda",
    ast.IfExp: "conditional expression",
    ast.ListComp: "comprehension",
    ast.GeneratorExp: "comprehension",
    ast.DictComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Dict: "dict",
    ast.Set: "set",
    ast.JoinedStr: "f-string",
    ast.Starred: "starred argument",
    ast.NamedExpr: "assignment expression ':='",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice",
}
_OP_TEXT: dict[type, str] = {
    ast.MatMult: "@",
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Not: "not",
    ast.Invert: "~",
}
_MAX_SOURCE = 10_000
_MAX_DEPTH = 200
_MAX_EXPONENT = 1_000  # |c| in x ** c: larger overflows any useful x, and 10 ** 10 ** 10 hangs


class ExpressionError(ValueError):
    """The text is not a valid expression; the message is one line naming what and where."""

    def __init__(self, message: str, column: int | None = None, line: int | None = None):
        self.column, self.line = column, line
        where = "" if column is None else f"column {column}: "
        if line is not None and column is not None:
            where = f"line {line}, {where}"
        super().__init__(where + message)


@dataclasses.dataclass(frozen=True)
class Expression:
    """A checked expression: its source, its free variables and named stages.

    ``variables`` are the names read before being assigned, in order of first use; ``stages``
    the names assigned, in order. :meth:`build` makes the graph.
    """

    source: str
    variables: tuple[str, ...]
    stages: tuple[str, ...]
    _body: tuple[ast.stmt, ...] = dataclasses.field(repr=False, compare=False)

    def missing(self, values: Mapping[str, Any]) -> list[str]:
        """The variables that ``values`` does not give, in order of first use."""
        return [v for v in self.variables if v not in values]

    def build(self, values: Mapping[str, Any], name: str = "f") -> Tensor:
        """Run the forward pass: leaves named after the variables, stages after their names.

        Unnamed intermediate nodes are called after their op (``add1``, ``mul1``, ...), the
        way :func:`chainrule.explain.explain` names them; the result is called ``name`` unless
        the last line is a bare stage name. ``values`` maps each variable to a number or array.
        """
        missing = self.missing(values)
        if missing:
            raise ExpressionError(f"no value given for {', '.join(missing)}")
        unknown = sorted(set(values) - set(self.variables))
        if unknown:
            raise ExpressionError(f"value given for {', '.join(unknown)}, not in the expression")
        builder = _Builder(self.source, reserved={*self.variables, *self.stages, name})
        scope: dict[str, Any] = {v: Tensor(_as_float(values[v], v), name=v) for v in self.variables}
        result: Any = None
        for stmt in self._body:
            if isinstance(stmt, ast.Assign):
                target = stmt.targets[0]
                assert isinstance(target, ast.Name)
                # A stage that renames a value or holds a number is an alias, not a node.
                result = scope[target.id] = builder.eval(stmt.value, scope, target.id)
            else:
                assert isinstance(stmt, ast.Expr)
                result = builder.eval(stmt.value, scope, name)
        if not isinstance(result, Tensor):
            result = Tensor(result, name=name)
        return result


def _as_float(value: Any, name: str) -> Any:
    arr = np.asarray(value.data if isinstance(value, Tensor) else value)
    if arr.dtype.kind not in "biuf":
        raise ExpressionError(f"value of {name} must be a number, got {value!r}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ExpressionError(f"value of {name} must be finite, got {value!r}")
    return arr


def _error(source: str, node: ast.AST, message: str, column: int | None = None) -> ExpressionError:
    """An error at ``node`` (or at ``column`` of its line), naming the line when there are many."""
    col = getattr(node, "col_offset", None)
    if column is None and col is not None:
        column = col + 1
    line = getattr(node, "lineno", None) if "\n" in source else None
    return ExpressionError(message, column=column, line=line)


def _segment(source: str, node: ast.AST) -> str:
    text = ast.get_source_segment(source, node) or type(node).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def parse(source: str) -> Expression:
    """Check ``source`` against the whitelist and return an :class:`Expression`.

    Raises :class:`ExpressionError` naming the first offending token or construct.
    """
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be text, got {type(source).__name__}")
    if len(source) > _MAX_SOURCE:
        raise ExpressionError(f"expression is too long ({len(source)} > {_MAX_SOURCE} characters)")
    if not source.strip():
        raise ExpressionError("the expression is empty")
    if "\n" not in source:
        source = source.strip()
    for i, ch in enumerate(source):
        if not ch.isprintable() and ch not in "\n\t\r":
            line = source.count("\n", 0, i) + 1
            column = i - (source.rfind("\n", 0, i) + 1) + 1
            raise ExpressionError(
                f"invalid character U+{ord(ch):04X}",
                column=column,
                line=line if "\n" in source else None,
            )
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as e:
        raise _syntax_error(source, e) from None
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes, absurd nesting
        raise ExpressionError(f"cannot parse the expression ({e})") from None
    body = tuple(tree.body)
    if not body:
        raise ExpressionError("the expression is empty")
    checker = _Checker(source)
    for i, stmt in enumerate(body):
        checker.statement(stmt, last=i == len(body) - 1)
    return Expression(source, tuple(checker.variables), tuple(checker.stages), body)


def _syntax_error(source: str, e: SyntaxError) -> ExpressionError:
    lines = source.splitlines() or [""]
    line_no = max(1, min(e.lineno or 1, len(lines)))
    line = lines[line_no - 1]
    col = e.offset or 1
    near = line[col - 1 : col].strip() if 0 < col <= len(line) else ""
    token = f" near {near!r}" if near else " at the end"
    detail = "" if e.msg == "invalid syntax" else f" ({e.msg})"
    return ExpressionError(
        f"invalid syntax{token}{detail}", column=col, line=line_no if len(lines) > 1 else None
    )


class _Checker:
    """Walks the tree once, rejecting anything off the whitelist; collects the names."""

    def __init__(self, source: str):
        self.source = source
        self.variables: list[str] = []
        self.stages: list[str] = []

    def fail(self, node: ast.AST, message: str, column: int | None = None) -> ExpressionError:
        return _error(self.source, node, message, column)

    def op_column(self, node: ast.BinOp, text: str) -> int | None:
        """The column of the operator token between the operands (ast does not record it)."""
        left, right = node.left, node.right
        if left.end_lineno != right.lineno or left.end_col_offset is None:
            return None
        line = self.source.splitlines()[right.lineno - 1]
        found = line.find(text, left.end_col_offset, right.col_offset)
        return None if found < 0 else found + 1

    def statement(self, stmt: ast.stmt, last: bool) -> None:
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                raise self.fail(stmt, "only 'name = expression' assignments are allowed")
            self.expr(stmt.value, 0)
            name = stmt.targets[0].id
            self._check_name(stmt.targets[0], name)
            if name in self.variables or name in self.stages:
                raise self.fail(stmt.targets[0], f"{name!r} is already defined")
            if name in FUNCTIONS:
                raise self.fail(stmt.targets[0], f"{name!r} is a function name")
            self.stages.append(name)
            if last:
                return
        elif isinstance(stmt, ast.Expr):
            if not last:
                raise self.fail(
                    stmt, f"{_segment(self.source, stmt)!r} is not used: only the last line "
                    "may be a bare expression (name the others: 'q = x + y')"
                )  # fmt: skip
            self.expr(stmt.value, 0)
        else:
            kind = type(stmt).__name__.lower()
            raise self.fail(stmt, f"statement '{kind}' is not allowed (only expressions)")

    def _check_name(self, node: ast.AST, name: str) -> None:
        if name.startswith("__"):
            raise self.fail(node, f"name {name!r} is not allowed (names may not start with '__')")

    def expr(self, node: ast.AST, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise self.fail(node, "the expression is nested too deeply")
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self.fail(node, f"constant {_segment(self.source, node)!r} is not a number")
            if not (abs(v) <= 1e300 if isinstance(v, int) else math.isfinite(v)):
                raise self.fail(node, f"number {_segment(self.source, node)!r} is too large")
            return
        if isinstance(node, ast.Name):
            self._check_name(node, node.id)
            if node.id in FUNCTIONS:
                raise self.fail(node, f"function {node.id!r} must be called: {node.id}(...)")
            if node.id not in self.stages and node.id not in self.variables:
                self.variables.append(node.id)
            return
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                op = _OP_TEXT.get(type(node.op), type(node.op).__name__)
                raise self.fail(
                    node,
                    f"operator {op!r} is not allowed (use + - * / **)",
                    self.op_column(node, op),
                )
            self.expr(node.left, depth + 1)
            self.expr(node.right, depth + 1)
            if isinstance(node.op, ast.Pow) and not self._is_number(node.right):
                raise self.fail(
                    node.right,
                    f"the exponent {_segment(self.source, node.right)!r} must be a number "
                    "(write exp(y * log(x)) for a variable exponent)",
                )
            return
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                op = _OP_TEXT.get(type(node.op), type(node.op).__name__)
                raise self.fail(node, f"operator {op!r} is not allowed")
            self.expr(node.operand, depth + 1)
            return
        if isinstance(node, ast.Call):
            self.call(node, depth)
            return
        what = _DESCRIBE.get(type(node), type(node).__name__)
        raise self.fail(node, f"{what} {_segment(self.source, node)!r} is not allowed")

    def _is_number(self, node: ast.AST) -> bool:
        """True for constant subexpressions (numbers, and arithmetic on numbers only)."""
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.UnaryOp):
            return self._is_number(node.operand)
        if isinstance(node, ast.BinOp):
            return self._is_number(node.left) and self._is_number(node.right)
        return False

    def call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            what = _DESCRIBE.get(type(func), "expression")
            raise self.fail(
                func, f"call of {what} {_segment(self.source, func)!r} is not allowed "
                f"(callable: {', '.join(FUNCTIONS)})"
            )  # fmt: skip
        if func.id not in FUNCTIONS:
            raise self.fail(
                func, f"unknown function {func.id!r} (callable: {', '.join(FUNCTIONS)})"
            )
        if node.keywords:
            kw = node.keywords[0]
            raise self.fail(kw, f"{func.id}(): keyword arguments are not allowed")
        arity = FUNCTIONS[func.id]
        if len(node.args) not in arity:
            wanted = " or ".join(str(n) for n in arity)
            plural = "" if arity == (1,) else "s"
            raise self.fail(
                node, f"{func.id}() takes {wanted} argument{plural}, got {len(node.args)}"
            )
        for arg in node.args:
            self.expr(arg, depth + 1)


class _Builder:
    """Evaluates a checked tree on Tensors (constants stay Python floats)."""

    def __init__(self, source: str, reserved: set[str]):
        self.source = source
        self.counts: dict[str, int] = {}
        self.reserved = reserved

    def _auto_name(self, op: str) -> str:
        while True:
            self.counts[op] = self.counts.get(op, 0) + 1
            candidate = f"{op}{self.counts[op]}"
            if candidate not in self.reserved:
                return candidate

    def _label(self, t: Tensor, name: str | None) -> Tensor:
        if t.creator is not None and t.name is None:
            t.name = name if name is not None else self._auto_name(type(t.creator).__name__.lower())
        return t

    def _constant(self, node: ast.AST, compute: Callable[[], Any]) -> float:
        try:
            with np.errstate(all="raise"), warnings.catch_warnings():
                warnings.simplefilter("error", NonFiniteWarning)  # log(0): no constant
                value = compute()
            if isinstance(value, complex):  # (-8) ** 0.5 in Python
                raise ValueError("not a real number")
            value = float(value.data if isinstance(value, Tensor) else value)
        except (ArithmeticError, ValueError, NonFiniteWarning) as e:  # includes overflow
            reason = e.args[-1] if e.args else type(e).__name__
            reason = "not finite" if isinstance(e, NonFiniteWarning) else reason
            what = f"{_segment(self.source, node)!r} cannot be computed ({reason})"
            raise _error(self.source, node, what) from None
        if not math.isfinite(value):
            raise _error(self.source, node, f"{_segment(self.source, node)!r} is not finite")
        return value

    def eval(self, node: ast.AST, scope: Mapping[str, Any], name: str | None = None) -> Any:
        """The value of ``node``: a Tensor, or a float when only numbers are involved.

        ``name`` is given to the node this call creates (the stage or result name); nodes
        created below it are named after their op. The checker has bounded the depth.
        """
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return scope[node.id]
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.eval(node.operand, scope, name)
            x = self.eval(node.operand, scope)
            return self._label(F.neg(x), name) if isinstance(x, Tensor) else -x
        if isinstance(node, ast.BinOp):
            a, b = self.eval(node.left, scope), self.eval(node.right, scope)
            fn = _BINOPS[type(node.op)][1]
            if isinstance(node.op, ast.Pow) and not abs(b) <= _MAX_EXPONENT:
                raise _error(
                    self.source, node.right, f"the exponent {b:g} is too large in size "
                    f"(at most {_MAX_EXPONENT})"
                )  # fmt: skip
            if not isinstance(a, Tensor) and not isinstance(b, Tensor):
                return self._constant(node, lambda: _python_binop(node.op, a, b))
            return self._label(self._apply(node, fn, a, b), name)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            args = [self.eval(a, scope) for a in node.args]
            fn = (_UNARY_FUNCS if len(args) == 1 else _BINARY_FUNCS)[node.func.id]
            if (
                len(args) == 1
                and node.func.id in ("max", "min")
                and not isinstance(args[0], Tensor)
            ):
                raise _error(
                    self.source, node, f"{_segment(self.source, node)!r}: with one argument "
                    f"{node.func.id}() is the {node.func.id}imum of a variable's elements, and "
                    f"a number has none to compare (write {node.func.id}(a, b))"
                )  # fmt: skip
            if not any(isinstance(a, Tensor) for a in args):
                return self._constant(node, lambda: fn(*args))
            return self._label(self._apply(node, fn, *args), name)
        raise AssertionError(f"unchecked node {type(node).__name__}")  # pragma: no cover

    def _apply(self, node: ast.AST, fn: Callable[..., Tensor], *args: Any) -> Tensor:
        try:
            return fn(*args)
        except (ValueError, TypeError) as e:  # shapes that do not broadcast, say
            raise _error(self.source, node, f"{_segment(self.source, node)!r}: {e}") from None


def _python_binop(op: ast.operator, a: float, b: float) -> float:
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, ast.Div):
        return a / b
    return a**b
