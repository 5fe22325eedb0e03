"""``chainrule check FILE [--json] [--lang en|zh]``: the command's body, as ``main(argv)``.

The ``chainrule`` command's subcommand module needs only :func:`add_arguments` (on its
``check`` subparser) and :func:`run` (its ``run(args)``).

Exit status: 0 when every layer passes (warnings allowed), 1 when a layer fails or the file
cannot be checked, 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from chainrule.checking.report import LayerReport, format_reports
from chainrule.checking.runner import check_file


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


DESCRIPTION = (
    "Check the layers in a Python file: each class with forward and backward is run on random "
    "inputs, its gradients compared with numerical ones, and its mistakes named."
)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The command's arguments, for its own parser or a ``chainrule check`` subparser."""
    p.add_argument("file", help="the Python file with your layer classes")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the messages")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument(
        "--timeout", type=float, default=60.0, help="seconds allowed per class (default 60)"
    )
    return p


def build_parser(prog: str = "chainrule check") -> argparse.ArgumentParser:
    return add_arguments(_Parser(prog=prog, description=DESCRIPTION))


def render(reports: list[LayerReport], file: str, lang: str, as_json: bool) -> str:
    if as_json:
        doc = {
            "file": file,
            "ok": all(r.ok for r in reports),
            "layers": [r.to_dict(lang) for r in reports],
        }
        return json.dumps(doc, ensure_ascii=False, indent=2)
    return format_reports(reports, lang)


def run(args: argparse.Namespace) -> int:
    """Check ``args.file`` and print the reports; the exit status (0: all passed)."""
    try:
        reports = check_file(args.file, lang=args.lang, seed=args.seed, timeout=args.timeout)
    except Exception as e:  # a bug of ours, said in one line
        print(f"chainrule check: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(render(reports, args.file, args.lang, args.json))
    return 0 if all(r.ok for r in reports) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (never raises on the learner's behalf)."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
