"""Build the tutorial notebooks from their markdown sources and run them, keeping every output.

The markdown files are the source (``docs/tutorial.md``, ``docs/tutorial.zh.md``); jupytext
pairs each with a notebook here (``docs/jupytext.toml``: ``md`` beside ``notebooks//ipynb``):
every ```python block becomes a code cell, everything else markdown. The notebook is then
executed with nbclient in a temporary folder (the pictures the tutorial saves land there) and
written with its outputs, so a reader sees every table, picture and curve without running it.

Run from the repository root after editing a tutorial (needs ``pip install -e '.[notebook]'``)::

    python docs/notebooks/build.py            # both notebooks
    python docs/notebooks/build.py --check    # exit 1 if a notebook's code differs from its .md
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent
#: markdown source -> notebook
PAIRS = {
    DOCS / "tutorial.md": HERE / "tutorial.ipynb",
    DOCS / "tutorial.zh.md": HERE / "tutorial.zh.ipynb",
}
LINK = re.compile(r"\]\((?!https?:|#|/)([^)\s]+)\)")


def _relink(m: re.Match[str]) -> str:
    """A link of the .md (relative to docs/) as seen from docs/notebooks/."""
    target = m.group(1)
    for md, ipynb in PAIRS.items():
        if target.split("#")[0] == md.name:
            return f"]({ipynb.name}{target[len(md.name) :]})"
    return f"](../{target})"


KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook_from(md: Path):  # -> nbformat.NotebookNode
    """The notebook jupytext makes of ``md``, before it runs."""
    import jupytext
    import nbformat

    nb = jupytext.read(md, fmt="md")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            cell.source = LINK.sub(_relink, cell.source)
        # Shell examples (```bash) are for a terminal: shown, as in the .md, not run.
        if cell.cell_type == "code" and cell.source.startswith("%%"):
            magic, _, body = cell.source.partition("\n")
            fence = f"```{magic[2:].strip()}\n{body.rstrip()}\n```"
            nb.cells[i] = nbformat.v4.new_markdown_cell(fence)
    nb.metadata["kernelspec"] = dict(KERNEL)
    nb.metadata["jupytext"] = {"formats": "md,notebooks//ipynb"}
    return nb


def execute(nb, timeout: int = 300):  # -> nbformat.NotebookNode
    """Run every cell in a fresh kernel whose working folder is a temporary one."""
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as tmp:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": tmp}},
            record_timing=False,
        )
        client.execute()
    return nb


def code_cells(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare code with the .md")
    args = parser.parse_args(argv)
    import jupytext

    stale = []
    for md, ipynb in PAIRS.items():
        fresh = notebook_from(md)
        if args.check:
            if not ipynb.exists() or code_cells(jupytext.read(ipynb)) != code_cells(fresh):
                stale.append(ipynb)
            continue
        execute(fresh)
        jupytext.write(fresh, ipynb, fmt="ipynb")
        print(f"wrote {ipynb.relative_to(DOCS.parent)}")
    for path in stale:
        print(f"{path.relative_to(DOCS.parent)} is out of date: run {Path(__file__).name}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
