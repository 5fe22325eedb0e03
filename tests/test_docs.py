"""Every ```python block in README.md and docs/ runs (each file's blocks in order, sharing one
namespace, as a reader would type them). Blocks fenced as ```py are shown but not run: they need
hardware the test machine may lack (a GPU)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_docs_exist() -> None:
    assert (ROOT / "README.md").exists()
    assert any(BLOCK.search(p.read_text(encoding="utf-8")) for p in DOCS)


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_code_blocks_run(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = BLOCK.findall(path.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)  # anything a snippet writes lands in a temporary folder
    namespace: dict[str, object] = {"__name__": "__doc_snippet__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{path.name} block {i + 1}", "exec"), namespace)
        except Exception as e:  # name the block in the failure
            pytest.fail(f"{path.name} block {i + 1} raised {type(e).__name__}: {e}\n{code}")
