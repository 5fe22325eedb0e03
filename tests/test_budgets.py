"""Budgets that keep the code readable (issue "One model, one training loop", DESIGN.md):
the engine core at most 450 code lines, no source file over 400, no class over 250, no
function over 60. "Code lines" are lines holding code: not blank, not comments, not docstrings.
Exceptions are named below, each with the reason it is allowed."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "chainrule"
ENGINE_CORE = ("tensor.py", "function.py", "config.py", "backend.py")
LIMITS = {"file": 400, "class": 250, "function": 60, "engine": 450}

#: "path::qualified.name" -> why it may be longer than its budget (keep this list short).
EXCEPTIONS: dict[str, str] = {}


def code_lines(source: str) -> tuple[set[int], ast.Module]:
    """The line numbers that hold code, and the parsed module."""
    tree = ast.parse(source)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                docstrings.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in skip or tok.type == tokenize.ENDMARKER:
            continue
        lines.update(n for n in range(tok.start[0], tok.end[0] + 1) if n not in docstrings)
    return lines, tree


def _blocks(node: ast.AST, prefix: str, rel: str, lines: set[int]) -> list[tuple[str, str, int]]:
    """(kind, "path::qualified.name", code lines) of every class and function under node."""
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{child.name}"
            kind = "class" if isinstance(child, ast.ClassDef) else "function"
            end = child.end_lineno or child.lineno
            count = sum(1 for n in lines if child.lineno <= n <= end)
            found.append((kind, f"{rel}::{name}", count))
            found += _blocks(child, name + ".", rel, lines)
        else:
            found += _blocks(child, prefix, rel, lines)
    return found


def _measure() -> tuple[dict[str, int], list[tuple[str, str, int]]]:
    files: dict[str, int] = {}
    blocks: list[tuple[str, str, int]] = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        lines, tree = code_lines(path.read_text(encoding="utf-8"))
        files[rel] = len(lines)
        blocks += _blocks(tree, "", rel, lines)
    return files, blocks


FILES, BLOCKS = _measure()


def test_the_counter_counts_code_not_prose() -> None:
    source = '"""Doc."""\n\n# comment\ndef f(x):\n    """Doc\n    more."""\n    return x  # why\n'
    lines, _ = code_lines(source)
    assert lines == {4, 7}


def test_engine_core_is_small() -> None:
    total = sum(FILES[name] for name in ENGINE_CORE)
    assert total <= LIMITS["engine"], {name: FILES[name] for name in ENGINE_CORE}


@pytest.mark.parametrize("path", sorted(FILES))
def test_no_file_over_budget(path: str) -> None:
    if path in EXCEPTIONS:
        return
    assert FILES[path] <= LIMITS["file"], f"{path}: {FILES[path]} code lines"


def test_no_class_or_function_over_budget() -> None:
    over = [
        f"{where}: {count} code lines (budget {LIMITS[kind]})"
        for kind, where, count in BLOCKS
        if count > LIMITS[kind] and where not in EXCEPTIONS
    ]
    assert not over, "\n".join(over)


def test_every_exception_is_still_needed() -> None:
    sizes = {where: count for _, where, count in BLOCKS} | FILES
    for where in EXCEPTIONS:
        assert where in sizes, f"{where} no longer exists: drop its exception"
