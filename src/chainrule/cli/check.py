"""``chainrule check FILE``: grade the layers in a learner's file (:mod:`chainrule.checking`).

The checker is a library (``chainrule.checking.check_file``); this module only parses the
command line and hands it to :func:`chainrule.checking.main`, which prints the reports and
returns the exit status: 0 when every layer passes, 1 when one fails or the file cannot be
checked.
"""

from __future__ import annotations

import argparse
from typing import Any

from chainrule.cli import args as types


def add_parser(sub: Any) -> None:
    check = sub.add_parser(
        "check",
        help="check your own layers' forward and backward against numerical gradients",
        description=(
            "Check the layers in a Python file: each class with forward and backward is run on "
            "random inputs, its gradients compared with numerical ones, and its mistakes named."
        ),
    )
    check.add_argument("file", metavar="FILE", help="the Python file with your layer classes")
    check.add_argument("--json", action="store_true", help="print the reports as JSON")
    check.add_argument(
        "--lang", choices=("en", "zh"), default="en", help="language of the messages (en)"
    )
    check.add_argument(
        "--seed", type=types.seed, default=0, help="seed of the random inputs (default 0)"
    )
    check.add_argument(
        "--timeout",
        type=types.positive_float,
        default=60.0,
        metavar="SECONDS",
        help="seconds allowed per class (default 60)",
    )
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.checking import main as check_main

    argv = [args.file, "--lang", args.lang, "--seed", str(args.seed)]
    argv += ["--timeout", repr(args.timeout)] + (["--json"] if args.json else [])
    return check_main(argv)
