"""``chainrule demo [NAME ...]``: run the worked examples and print their numbers."""

from __future__ import annotations

import argparse
from typing import Any

from chainrule.cli.common import UserError


def add_parser(sub: Any) -> None:
    from chainrule.examples import EXAMPLES  # names only: the examples run on demand

    demo = sub.add_parser(
        "demo",
        help="run the worked examples of the book's chapter 5 and CS231n (apple, circuit, "
        "sigmoid neuron, ...) and print their numbers",
        description="Run worked examples: " + ", ".join(EXAMPLES) + " (default: all).",
    )
    demo.add_argument("names", nargs="*", metavar="NAME", help="example to run")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.examples import EXAMPLES
    from chainrule.examples import run as run_example

    names = args.names or list(EXAMPLES)
    unknown = [n for n in names if n not in EXAMPLES]
    if unknown:
        raise UserError(f"unknown example {unknown[0]!r}; choose from {', '.join(EXAMPLES)}")
    for i, name in enumerate(names):
        if i:
            print()
        print(run_example(name), flush=True)
    return 0
