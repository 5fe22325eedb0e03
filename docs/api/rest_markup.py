"""A griffe extension for the API reference: chainrule's docstrings are written for a terminal
and for ``help()`` (reST roles, ``>>>`` doctests, ``::`` literal blocks, ``.. math::``, simple
tables); this rewrites each docstring into the Markdown that mkdocstrings renders, leaving the
words alone. Doctests become ``pycon`` code blocks, ``:class:`~a.b.C``` becomes ```C```.

Loaded by mkdocs.yml (``extensions: [docs/api/rest_markup.py]``); not part of the package.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|math|const):`(~?)([^`]+)`")
TABLE_RULE = re.compile(r"^\s*=+(?:\s+=+)+\s*$")
LIST_ITEM = re.compile(r"^\s*(?:\d+\.|[-*])\s+")
DIRECTIVE = re.compile(r"^(\s*)\.\. (math|code-block|code)::\s*(\S*)\s*$")


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    if tilde:  # ~a.b.C shows as C, as Sphinx does
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _fence(lines: list[str], lang: str, indent: str) -> list[str]:
    return [f"{indent}```{lang}", *lines, f"{indent}```"]


def _indented_block(lines: list[str], start: int, base: int) -> int:
    """The index just past the block indented deeper than ``base`` that starts at ``start``
    (blank lines inside it included, trailing ones not)."""
    end = start
    i = start
    while i < len(lines):
        if lines[i].strip() and _indent(lines[i]) <= base:
            break
        if lines[i].strip():
            end = i + 1
        i += 1
    return end


def _list_indent(lines: list[str]) -> list[str]:
    """Python-Markdown keeps a line in a list item only when it is indented by 4 spaces; reST
    (and these docstrings) indent it under the item's text (3 after ``1.``): re-indent."""
    out: list[str] = []
    width = 0  # the marker width of the list item being continued, 0 outside one
    for line in lines:
        item = LIST_ITEM.match(line)
        if item and _indent(line) == 0:
            width = item.end()
        elif line.strip() and _indent(line) < width:
            width = 0
        if width and not item and line.strip() and width < 4:
            line = " " * (4 - width) + line
        out.append(line)
    return out


def to_markdown(text: str) -> str:
    """Rewrite one docstring's reST constructs as Markdown."""
    lines = _list_indent(text.splitlines())
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        pad = line[: _indent(line)]
        if stripped.startswith(">>> "):  # a doctest: through the next blank line
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            block = [ln[len(pad) :] if ln.startswith(pad) else ln for ln in lines[i:j]]
            out += _fence([pad + ln for ln in block], "pycon", pad)
            i = j
            continue
        directive = DIRECTIVE.match(line)
        if directive or (stripped.endswith("::") and not stripped.startswith("..")):
            lang = "text"
            if directive:
                lang = "text" if directive.group(2) == "math" else (directive.group(3) or "text")
            else:
                head = line[:-1].rstrip(":") + ":" if line.rstrip() != pad + "::" else ""
                lang = "python"
                if head.strip():
                    out.append(head)
            item = LIST_ITEM.match(line)  # a list item's block belongs to the item's text
            pad = " " * max(item.end(), 4) if item else pad
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            end = _indented_block(lines, j, len(pad))
            if end > j:
                body_pad = min(_indent(ln) for ln in lines[j:end] if ln.strip())
                body = [ln[body_pad:] for ln in lines[j:end]]
                out += ["", *_fence([pad + ln if ln else ln for ln in body], lang, pad), ""]
                i = end
                continue
        if TABLE_RULE.match(line):  # a simple table: three rules, header between the first two
            rules = [k for k in range(i, len(lines)) if TABLE_RULE.match(lines[k])][:3]
            if len(rules) == 3:
                out += ["", *_fence(lines[i : rules[2] + 1], "text", pad), ""]
                i = rules[2] + 1
                continue
        out.append(ROLE.sub(_role, line))
        i += 1
    return "\n".join(out)


class RestMarkup(griffe.Extension):
    """Rewrite every docstring griffe loads (see :func:`to_markdown`)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
