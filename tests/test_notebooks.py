"""The tutorials as notebooks (docs/notebooks/*.ipynb): in step with their markdown, committed
with every output, and run again here with nbclient, checking what each cell shows.

What a cell shows is checked by its MIME types: a drawing (a cell ending in ``viz.draw(...)``)
as ``image/svg+xml``, an ``explain(...)`` table as ``text/html``, training curves
(``history_figure(...)``) as ``image/png``, a Tensor as its text repr with value and gradient.
Running the notebooks needs the ``notebook`` extra (nbclient, ipykernel, jupytext); without it
those tests skip and say so.
"""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "docs" / "notebooks"
PAIRS = {"tutorial.md": "tutorial.ipynb", "tutorial.zh.md": "tutorial.zh.ipynb"}
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def build_module() -> Any:
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source(cell: dict[str, Any]) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def expected_mime(code: str) -> str | None:
    """The MIME type the cell's last line must show, or None when it shows nothing special."""
    last = code.rstrip().splitlines()[-1]
    if last.startswith("viz.draw("):
        return "image/svg+xml"
    if last.startswith("explain("):
        return "text/html"
    if last.startswith("history_figure("):
        return "image/png"
    if re.fullmatch(r"x\s*#.*", last):
        return "text/plain"
    return None


def check_outputs(nb: dict[str, Any], name: str) -> dict[str, int]:
    """Every code cell ran without error; each shows what its last line promises."""
    seen = {"image/svg+xml": 0, "text/html": 0, "image/png": 0, "text/plain": 0}
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        code = source(cell)
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        assert not errors, f"{name} code cell {i + 1} raised {errors[0].get('ename')}"
        assert cell.get("execution_count") is not None, f"{name} code cell {i + 1} never ran"
        want = expected_mime(code)
        if want is None:
            continue
        shown = [o["data"] for o in cell["outputs"] if o["output_type"] == "execute_result"]
        assert shown and want in shown[-1], f"{name} cell {i + 1} shows {shown}, not {want}"
        data = shown[-1][want]
        text = data if isinstance(data, str) else "".join(data)
        if want == "image/svg+xml":
            assert text.lstrip().startswith("<svg") and "</svg>" in text
        elif want == "text/html":
            assert text.startswith("<table") and "chainrule-explain" in text
        elif want == "text/plain":
            assert text.startswith("Tensor(") and "grad=" in text
        seen[want] += 1
    return seen


def test_notebooks_are_committed_and_in_step_with_their_markdown() -> None:
    for md, ipynb in PAIRS.items():
        nb = json.loads((NOTEBOOKS / ipynb).read_text(encoding="utf-8"))
        blocks = [b.rstrip("\n") for b in BLOCK.findall((ROOT / "docs" / md).read_text("utf-8"))]
        cells = [source(c) for c in nb["cells"] if c["cell_type"] == "code"]
        assert cells == blocks, f"{ipynb} is out of date: run python docs/notebooks/build.py"
        assert nb["metadata"]["jupytext"]["formats"] == "md,notebooks//ipynb"


@pytest.mark.parametrize("md", list(PAIRS))
def test_committed_notebooks_show_every_output(md: str) -> None:
    nb = json.loads((NOTEBOOKS / PAIRS[md]).read_text(encoding="utf-8"))
    seen = check_outputs(nb, PAIRS[md])
    assert seen["image/svg+xml"] >= 8 and seen["text/html"] >= 1 and seen["image/png"] >= 1
    if md.endswith(".zh.md"):
        text = json.dumps(nb, ensure_ascii=False)
        assert "上游梯度" in text and "局部导数" in text  # Chinese tables and pictures


def test_markdown_cells_match_jupytext() -> None:
    pytest.importorskip("jupytext", reason="pairing check needs the notebook extra (jupytext)")
    build = build_module()
    for md, ipynb in PAIRS.items():
        fresh = build.notebook_from(ROOT / "docs" / md)
        committed = json.loads((NOTEBOOKS / ipynb).read_text(encoding="utf-8"))
        assert [(c.cell_type, c.source) for c in fresh.cells] == [
            (c["cell_type"], source(c)) for c in committed["cells"]
        ], f"{ipynb} is out of date: run python docs/notebooks/build.py"


@pytest.mark.slow
@pytest.mark.parametrize("md", list(PAIRS))
def test_notebooks_run_and_show_rich_output(md: str) -> None:
    pytest.importorskip("nbclient", reason="running notebooks needs the notebook extra (nbclient)")
    pytest.importorskip("ipykernel", reason="running notebooks needs the notebook extra")
    pytest.importorskip("jupytext", reason="running notebooks needs the notebook extra")
    build = build_module()
    nb = build.notebook_from(ROOT / "docs" / md)
    with warnings.catch_warnings():
        # jupyter_client's own deprecation notices (paths, datetime) are not chainrule's.
        warnings.simplefilter("ignore", DeprecationWarning)
        build.execute(nb, timeout=240)
    seen = check_outputs(json.loads(json.dumps(nb)), md)
    assert seen == {"image/svg+xml": 8, "text/html": 1, "image/png": 1, "text/plain": 1}
