"""PNG, when a renderer is installed: CairoSVG (renders our SVG) or Graphviz's ``dot``.

Neither is a dependency of chainrule; without both, asking for PNG raises
:class:`RendererNotFound` saying what to install (SVG, DOT and HTML always work).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess

from chainrule.viz.dot import to_dot
from chainrule.viz.graph import Graph
from chainrule.viz.svg import to_svg


class RenderError(RuntimeError):
    """The PNG could not be made."""


class RendererNotFound(RenderError):
    """No program or package that can turn the drawing into PNG is installed."""


def to_png(graph: Graph, scale: float = 2.0) -> bytes:
    """PNG bytes: CairoSVG on our SVG if importable, else ``dot -Tpng`` on the DOT text."""
    try:
        cairosvg = importlib.import_module("cairosvg")
    except ImportError:
        cairosvg = None
    if cairosvg is not None:
        return cairosvg.svg2png(bytestring=to_svg(graph).encode("utf-8"), scale=scale)
    dot = shutil.which("dot")
    if dot is not None:
        done = subprocess.run(
            [dot, "-Tpng", f"-Gdpi={int(72 * scale)}"],
            input=to_dot(graph).encode("utf-8"),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0 or not done.stdout.startswith(b"\x89PNG"):
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RenderError(f"dot -Tpng failed: {reason[-1] if reason else done.returncode}")
        return done.stdout
    raise RendererNotFound(
        "PNG output needs a renderer: `pip install cairosvg` (draws this SVG) or Graphviz's "
        "`dot` (e.g. `apt-get install graphviz`); .svg, .dot and .html need nothing"
    )
