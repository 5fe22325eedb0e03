"""``chainrule graph``: draw the graph of an expression, a worked example or a model.

:mod:`chainrule.viz` and :mod:`chainrule.expr` are imported when the command runs, not when
the parser is built, so the other commands never load them. Examples::

    chainrule graph "(x + y) * z" --set x=-2 y=5 z=-4 -o circuit.svg
    chainrule graph "q = x + y; q * z" --set x=-2 y=5 z=-4 -o circuit.html
    chainrule graph --example staged -o staged.html
    chainrule graph --model two-layer -o two_layer.svg
"""

from __future__ import annotations

import argparse
import math
import warnings
from typing import Any

import numpy as np

from chainrule.cli.args import LazyChoices
from chainrule.cli.common import UserError, first_line

_EPILOG = """\
expressions: numbers, names, + - * / ** (number exponents), unary -, parentheses, and
exp log sqrt abs sigmoid relu tanh max min maximum minimum. Name stages with ';':
  "q = x + y; f = q * z". Write a leading minus in parentheses: "(-x) * y".
formats by suffix: .svg .dot/.gv .html/.htm (step-through page) .png (needs cairosvg or dot).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``graph`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "graph",
        help="draw a computational graph with its values and gradients",
        description=(
            "Build the graph of an expression (or a worked example, or a model), run the\n"
            "forward and backward passes, print the backward pass node by node, and draw\n"
            "the picture: values in green, gradients in red, upstream x local = downstream."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("expression", nargs="?", help='e.g. "(x + y) * z"')
    p.add_argument(
        "--set",
        dest="values",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME=VALUE",
        help="the variables' values: numbers, or comma-separated lists (x=1,2,3)",
    )
    p.add_argument(
        "--example",
        choices=LazyChoices(_example_names),
        metavar="NAME",
        help="a worked example to draw: %(choices)s",
    )
    p.add_argument(
        "--model",
        choices=LazyChoices(_model_names),
        metavar="NAME",
        help="a small model to draw: %(choices)s",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the picture (format by suffix)")
    p.add_argument("--title", help="a title for the picture")
    p.add_argument(
        "--direction",
        choices=("LR", "TB"),
        default="LR",
        help="LR: inputs on the left (default); TB: inputs on top, for wide graphs",
    )
    p.add_argument(
        "--lang",
        choices=("en", "zh"),
        default="en",
        help="the language of the printed table's columns and the picture's words",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the backward pass")
    p.set_defaults(func=run)
    return p


# What chainrule.expr raises today besides ExpressionError for expressions it cannot handle
# (an integer literal too large for a float, a complex power, a function given too few
# arguments, nesting too deep for Python): reported as one line, like an ExpressionError.
_EXPRESSION_FAULTS = (ArithmeticError, TypeError, ValueError, AttributeError, RecursionError)


def _example_names() -> list[str]:
    from chainrule.examples import EXAMPLES

    return list(EXAMPLES)


def _model_names() -> list[str]:
    from chainrule.viz.examples import MODELS

    return list(MODELS)


def parse_values(items: list[str]) -> dict[str, Any]:
    """``["x=-2", "w=1,2"]`` -> ``{"x": -2.0, "w": array([1., 2.])}``; one-line errors."""
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UserError(f"--set expects NAME=VALUE, got {item!r}")
        if name in values:
            raise UserError(f"--set gives {name} twice")
        try:
            numbers = [float(v) for v in text.split(",")]
        except ValueError:
            raise UserError(f"--set {name}: {text!r} is not a number") from None
        if not all(math.isfinite(v) for v in numbers):
            raise UserError(f"--set {name}: {text!r} is not finite")
        values[name] = numbers[0] if len(numbers) == 1 and "," not in text else np.array(numbers)
    return values


def _fmt_set(values: dict[str, Any]) -> str:
    parts = []
    for k, v in values.items():
        text = f"{v:g}" if isinstance(v, float) else ",".join(f"{x:g}" for x in v)
        parts.append(f"{k}={text}")
    return ", ".join(parts)


def _build(args: argparse.Namespace) -> tuple[Any, str, Any]:
    """The output Tensor, a title and the backward seed (None: the default 1)."""
    from chainrule.expr import ExpressionError, parse
    from chainrule.viz.examples import example_graph, model_graph

    if args.example is not None:
        return (*example_graph(args.example), None)
    if args.model is not None:
        return (*model_graph(args.model), None)
    try:
        expr = parse(args.expression)
    except ExpressionError as e:
        raise UserError(f"bad expression: {e}") from None
    except _EXPRESSION_FAULTS as e:  # the parser should say ExpressionError; say it for it
        raise UserError(f"bad expression: {first_line(e)}") from None
    values = parse_values(args.values)
    missing = expr.missing(values)
    if missing:
        hint = " ".join(f"{m}=..." for m in missing)
        raise UserError(f"no value for {', '.join(missing)} (add --set {hint})")
    extra = [k for k in values if k not in expr.variables]
    if extra:
        raise UserError(f"--set {', '.join(extra)}: not a variable of the expression")
    try:
        root = expr.build(values)
    except ExpressionError as e:
        raise UserError(f"bad expression: {e}") from None
    except FloatingPointError:
        raise  # NumPy's warnings turned errors: reported by run() as "not finite"
    except _EXPRESSION_FAULTS as e:
        raise UserError(f"bad expression: cannot evaluate it: {first_line(e)}") from None
    title = args.expression if expr.stages else f"{root.name} = {args.expression}"
    if values:
        title += f" at {_fmt_set(values)}"
    return root, title, (np.ones_like(root.data) if root.size != 1 else None)


def run(args: argparse.Namespace) -> int:
    """Build, run forward and backward, print the trace, write the picture."""
    from chainrule.viz import RenderError, build_graph, format_for, save

    chosen = [args.expression is not None, args.example is not None, args.model is not None]
    if sum(chosen) != 1:
        raise UserError("give exactly one of: an EXPRESSION, --example NAME, --model NAME")
    if args.values and args.expression is None:
        raise UserError("--set gives values to an EXPRESSION's variables")
    if args.quiet and not args.output:
        raise UserError("-q/--quiet without -o FILE would do nothing: add -o FILE or drop -q")
    if args.output:
        try:
            format_for(args.output)
        except ValueError as e:
            raise UserError(str(e)) from None

    from chainrule.functions.checks import NonFiniteWarning

    try:
        # NumPy's floating-point warnings (log of a negative, overflow) and chainrule's own
        # warning about non-finite results become one-line errors.
        with np.errstate(all="raise"), warnings.catch_warnings():
            warnings.simplefilter("error", NonFiniteWarning)
            root, title, dout = _build(args)
            graph = build_graph(
                root,
                dout=dout,
                title=args.title or title,
                lang=args.lang,
                direction=args.direction,
            )
    except (FloatingPointError, NonFiniteWarning) as e:
        raise UserError(f"not finite at these values ({first_line(e)})") from None
    if not args.quiet:
        print(graph.title)
        if dout is not None:
            print(f"({root.name} has shape {root.shape}: the backward pass starts from ones)")
        print(graph.trace if len(graph.trace) else "(no backward pass: nothing needs a gradient)")
    if args.output:
        try:
            save(graph, args.output)
        except RenderError as e:
            raise UserError(str(e)) from None
        except OSError as e:
            raise UserError(f"cannot write {args.output}: {e.strerror or e}") from None
        if not args.quiet:
            print(f"wrote {args.output}")
    return 0


# The names this module had as chainrule.viz.cli.
add_graph_parser = add_parser
cmd_graph = run

__all__ = ["add_graph_parser", "add_parser", "cmd_graph", "parse_values", "run"]
