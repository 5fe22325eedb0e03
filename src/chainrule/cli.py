"""The ``chainrule`` command: argparse subcommands that call library functions.

Every subcommand is a small function ``cmd_NAME(args) -> int``; user errors (bad flags, missing
files, bad values) print one line to stderr and return a non-zero status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chainrule import __version__


class UserError(Exception):
    """A problem with what the user asked for: reported in one line, exit status 2."""


def cmd_demo(args: argparse.Namespace) -> int:
    from chainrule.examples import EXAMPLES, run

    names = args.names or list(EXAMPLES)
    unknown = [n for n in names if n not in EXAMPLES]
    if unknown:
        raise UserError(f"unknown example {unknown[0]!r}; choose from {', '.join(EXAMPLES)}")
    for i, name in enumerate(names):
        if i:
            print()
        print(run(name), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Backpropagation through computational graphs, from the book to MNIST.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    from chainrule.examples import EXAMPLES

    demo = sub.add_parser(
        "demo",
        help="run the seeds' worked examples and print their numbers",
        description="Run worked examples: " + ", ".join(EXAMPLES) + " (default: all).",
    )
    demo.add_argument("names", nargs="*", metavar="NAME", help="example to run")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as e:
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    """Console-script entry: exit with :func:`main`'s status."""
    sys.exit(main())
