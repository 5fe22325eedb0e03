"""Argparse value types shared by the ``chainrule`` commands and ``benchmarks``.

Each type turns the text of a flag into a value or raises ``argparse.ArgumentTypeError`` with a
message saying what was expected, which argparse prints as ``argument --flag: MESSAGE``.

>>> positive_int("3"), ratio("0.5"), sizes("256,128"), init("He")
(3, 0.5, [256, 128], 'he')
>>> positive_int("0")
Traceback (most recent call last):
argparse.ArgumentTypeError: must be a positive integer, got '0'
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: The largest seed ``--seed`` accepts: NumPy's ``SeedSequence`` takes any non-negative integer,
#: and checkpoints keep the seed in JSON; a 64-bit bound keeps it an ordinary number everywhere.
MAX_SEED = 2**63 - 1


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**63 - 1]."""
    value = non_negative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEED}, got {text!r}")
    return value


def number(text: str) -> float:
    """A finite float."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite float >= 0."""
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {text!r}")
    return value


def ratio(text: str) -> float:
    """A number in [0, 1), such as a dropout ratio."""
    value = number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def factor(text: str) -> float:
    """A number in (0, 1], such as a step schedule's gamma."""
    value = number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value


def sizes(text: str) -> list[int]:
    """Comma-separated positive integers: ``"256,128"`` -> ``[256, 128]``."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 256,128, got {text!r}"
        ) from None
    if not values or any(n <= 0 for n in values):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return values


def init(text: str) -> str | float:
    """A weight initialisation: ``he``, ``xavier`` or a positive standard deviation."""
    if text.lower() in ("he", "xavier"):
        return text.lower()
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected he, xavier or a positive weight std such as 0.01, got {text!r}"
        ) from None


def at_most(parse: Callable[[str], Any], limit: float) -> Callable[[str], Any]:
    """``parse``, then refuse values above ``limit`` (a run of 10**400 steps never ends).

    >>> at_most(positive_int, 10)("11")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be at most 10, got '11'
    """

    def check(text: str) -> Any:
        value = parse(text)
        if value > limit:
            shown = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
            raise argparse.ArgumentTypeError(f"must be at most {shown}, got {text!r}")
        return value

    return check


def at_most_each(parse: Callable[[str], list[Any]], limit: int) -> Callable[[str], list[Any]]:
    """``parse`` a list, then refuse any item above ``limit``.

    >>> at_most_each(sizes, 1000)("50,2000")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: sizes must be at most 1,000, got '50,2000'
    """

    def check(text: str) -> list[Any]:
        values = parse(text)
        if any(v > limit for v in values):
            raise argparse.ArgumentTypeError(f"sizes must be at most {limit:,}, got {text!r}")
        return values

    return check


def int_list(kind: str) -> Callable[[str], list[int]]:
    """A type for comma-separated integers >= 1 (``"1,2"``), named ``kind`` in messages."""

    def parse(text: str) -> list[int]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty list of {kind}")
        try:
            values = [int(item) for item in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind} must be integers: {text!r}") from None
        if any(v < 1 for v in values):
            raise argparse.ArgumentTypeError(f"{kind} must be at least 1: {text!r}")
        return values

    return parse


def name_list(kind: str, allowed: Iterable[str]) -> Callable[[str], list[str]]:
    """A type for comma-separated names from ``allowed``, named ``kind`` in messages."""

    def parse(text: str) -> list[str]:
        names = tuple(allowed)
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty list of {kind}")
        unknown = [item for item in items if item not in names]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(unknown)}; choose from {', '.join(names)}"
            )
        return items

    return parse


class LazyChoices:
    """``choices=`` read from a registry when argparse needs them, not when the parser is built.

    Building ``chainrule``'s parser then imports no model or optimizer code, and a name
    registered after the parser was built is still a valid choice. Give the argument a
    ``metavar``: argparse would otherwise list the choices while adding it.

    >>> names = ["a"]
    >>> choices = LazyChoices(lambda: names)
    >>> names.append("b")
    >>> "b" in choices, list(choices)
    (True, ['a', 'b'])
    """

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:
        self._names = names

    def __contains__(self, value: Any) -> bool:
        return value in tuple(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._names()))

    def __len__(self) -> int:
        return len(tuple(self._names()))


class LazyText:
    """Text computed when a help message is formatted (for ``%(name)s`` in argparse help).

    >>> str(LazyText(lambda: "computed"))
    'computed'
    """

    def __init__(self, text: Callable[[], str]) -> None:
        self._text = text

    def __str__(self) -> str:
        return self._text()


__all__ = [
    "MAX_SEED",
    "LazyChoices",
    "LazyText",
    "at_most",
    "at_most_each",
    "factor",
    "init",
    "int_list",
    "name_list",
    "non_negative_float",
    "non_negative_int",
    "number",
    "positive_float",
    "positive_int",
    "ratio",
    "seed",
    "sizes",
]
