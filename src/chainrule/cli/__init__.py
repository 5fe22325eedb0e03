"""The ``chainrule`` command: argparse subcommands, one module each, that call the library.

    chainrule demo [NAME ...]                     the seeds' worked examples
    chainrule train [--model mlp ...] [--save C]  train on MNIST / Fashion-MNIST (see --help)
    chainrule evaluate CKPT [--json]              test accuracy and loss of a checkpoint
    chainrule predict CKPT IMAGE [--invert]       class probabilities of one image
    chainrule graph "(x + y) * z" --set x=-2 ...  draw a computational graph
    chainrule check my_layers.py [--lang zh]      grade your own layers' backward

Each subcommand module has ``add_parser(sub)`` and ``run(args) -> int`` and imports what it
needs when it runs, so building the parser (and ``--help``) loads no models, ``viz`` or
``expr``. User errors (bad flags, missing files, bad values) print one line to stderr and exit
with status 2; an unexpected exception prints one line too, naming the command, and
``CHAINRULE_DEBUG=1`` shows its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from chainrule import __version__
from chainrule.cli import check, demo, evaluate, graph, predict, train
from chainrule.cli.common import ArgumentParser, UserError, use_device

#: The subcommand modules, in the order ``chainrule --help`` lists them.
COMMANDS = (demo, train, evaluate, predict, graph, check)


def build_parser() -> ArgumentParser:
    """The ``chainrule`` parser with every subcommand."""
    parser = ArgumentParser(
        prog="chainrule",
        description="Backpropagation through computational graphs, from the book to MNIST.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    from chainrule.backend import current_device
    from chainrule.backend import use_device as restore_device

    device_before = current_device()
    try:
        use_device(getattr(args, "device", None))
        return int(args.func(args))
    except UserError as e:
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or an unforeseen input: one line, the traceback on request
        if os.environ.get("CHAINRULE_DEBUG"):
            raise
        print(
            f"chainrule {args.command}: internal error: {type(e).__name__}: "
            f"{_one_line(e)} (run with CHAINRULE_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        restore_device(device_before)  # main() called from Python leaves the process as it was


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def entry_point() -> None:
    """Console-script entry: exit with :func:`main`'s status."""
    sys.exit(main())


__all__ = ["COMMANDS", "UserError", "build_parser", "entry_point", "main"]
