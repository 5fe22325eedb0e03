"""Redraw the pictures of docs/tutorial.md (and docs/tutorial.zh.md, which shares its code).

    PYTHONPATH=src python docs/img/make_images.py

The tutorial's own ```python blocks are run, in order, with this folder as the working
directory, so each ``viz.save(..., "name.svg")`` in them writes its picture here: a picture
always shows exactly what the tutorial's code computes. The training curve is then drawn from
the ``losses`` list of the tutorial's training loop (this part needs matplotlib).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
TUTORIAL = HERE.parent / "tutorial.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def run_tutorial() -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "__doc_snippet__"}
    before = os.getcwd()
    os.chdir(HERE)
    try:
        for i, code in enumerate(BLOCK.findall(TUTORIAL.read_text(encoding="utf-8"))):
            exec(compile(code, f"tutorial.md block {i + 1}", "exec"), namespace)
    finally:
        os.chdir(before)
    return namespace


def draw_losses(losses: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    # Fixed ids and text kept as text: the file is small and changes only when the data does.
    matplotlib.rcParams["svg.hashsalt"] = "chainrule"
    matplotlib.rcParams["svg.fonttype"] = "none"
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    ax.plot(range(len(losses)), losses, color="#c0392b", linewidth=1.5)
    ax.set_xlabel("SGD step")
    ax.set_ylabel("cross-entropy loss (all 300 points)")
    ax.set_title("TwoLayerNet 2-50-3 on three spirals, SGD lr = 1.0, batch 60")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})


def main() -> None:
    namespace = run_tutorial()
    draw_losses(list(namespace["losses"]), HERE / "training-loss.svg")  # type: ignore[arg-type]
    for picture in sorted(HERE.glob("*.svg")):
        print(f"{picture.relative_to(HERE.parent.parent)}  {picture.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
