"""One self-contained HTML page that steps through the forward and backward passes.

The page holds the SVG drawing inline, a little CSS and JavaScript, and the steps as JSON (in a
``<script type="application/json">`` block): no network, no external file, so it opens from
disk in any current browser. **Next**/**Back** (or the ArrowRight/ArrowLeft keys) walk the
forward pass node by node (each value appears when it is computed), then the backward pass
(each op shows ``upstream × local = downstream`` for its inputs; each leaf shows its
gradient, added up with ``+=`` where the value was used more than once).

Numbers in the panel have six significant figures, like the ``explain`` table; every one
carries ``data-q`` naming the quantity (``value:q``, ``upstream:q``, ``local:q/x``,
``down:q/x``, ``part:x:1``, ``grad:x``) so tests can check them against the engine.
"""

from __future__ import annotations

import json
from typing import Any

from chainrule.viz.graph import Graph, Node, fmt_value, is_scalar
from chainrule.viz.svg import esc, to_svg

_INFIX = {"Add": "+", "Sub": "−", "Mul": "×", "Div": "/"}


def _part(text: str, cls: str = "", q: str = "") -> dict[str, str]:
    part = {"t": text}
    if cls:
        part["c"] = cls
    if q:
        part["q"] = q
    return part


def _num(a: Any, cls: str, q: str) -> dict[str, str]:
    """A number to check (class ``num``), or an array summary (class ``arr``)."""
    if a is not None and is_scalar(a):
        return _part(fmt_value(a, 6), f"num {cls}", q)
    return _part(fmt_value(a, 4), f"arr {cls}", q)


def _formula(graph: Graph, node: Node) -> str:
    """``q = x + y``: the op applied to its inputs' names (and constants)."""
    names = iter(e.name for e in graph.inputs_of(node.id))
    consts = dict(node.constants)
    n_inputs = len(graph.inputs_of(node.id)) + len(consts)
    args = [
        fmt_value(consts[k], 4) if k in consts else next(names, "?") for k in range(n_inputs)
    ]  # fmt: skip
    if node.op in _INFIX and len(args) == 2:
        rhs = f"{args[0]} {_INFIX[node.op]} {args[1]}"
    elif node.op == "Pow":
        rhs = f"{args[0]} ** {node.title.removeprefix('**')}"
    elif node.op == "Neg":
        rhs = f"-{args[0]}"
    else:
        fn = node.title if node.title.isidentifier() else node.op  # σ, exp, Affine1 ...
        rhs = f"{fn}({', '.join(args)})"
    return f"{node.name} = {rhs}"


def _forward_step(graph: Graph, node: Node) -> dict[str, Any]:
    if node.kind == "leaf":
        return {
            "heading": f"input {node.name}",
            "rows": [[_part(f"{node.name} = "), _num(node.value, "value", f"value:{node.name}")]],
        }
    ins = graph.inputs_of(node.id)
    row: list[dict[str, str]] = []
    for k, e in enumerate(ins):
        if k:
            row.append(_part(", "))
        row += [_part(f"{e.name} = "), _num(e.value, "value", f"value:{e.name}")]
    rows = [[_part(_formula(graph, node), "formula")]]
    if row:
        rows.append(row)
    rows.append([_part(f"{node.name} = "), _num(node.value, "value", f"value:{node.name}")])
    return {"heading": f"{node.op} → {node.name}", "rows": rows}


def _sum_row(node: Node) -> list[dict[str, str]]:
    """``dx = a + b = s`` (or just ``dx = s``)."""
    row = [_part(f"d{node.name} = ")]
    if len(node.parts) > 1:
        for k, p in enumerate(node.parts, 1):
            if k > 1:
                row.append(_part(" + "))
            row.append(_num(p, "grad", f"part:{node.name}:{k}"))
        row.append(_part(" = "))
    return row


def _backward_step(graph: Graph, node: Node) -> dict[str, Any]:
    out = graph.output_name
    if node.kind == "leaf":
        if node.grad is None:
            rows = [[_part(f"{node.name} gets no gradient (a constant, such as labels)", "note")]]
        else:
            rows = [[*_sum_row(node), _num(node.grad, "grad", f"grad:{node.name}")]]
            if len(node.parts) > 1:
                uses = f"{node.name} was used {len(node.parts)} times: the gradients add"
                rows.append([_part(uses, "note")])
            rows.append(
                [_part(f"d{out}/d{node.name}: how {out} moves when {node.name} moves", "note")]
            )
        return {"heading": f"input {node.name}", "rows": rows}
    rows = []
    up = [_num(node.upstream, "grad", f"upstream:{node.name}")]
    if len(node.parts) > 1:
        rows.append([*_sum_row(node), *up, _part("  (upstream, summed over the uses)", "note")])
    else:
        rows.append([_part(f"upstream d{node.name} = "), *up])
    for e in graph.inputs_of(node.id):
        if e.grad is None:
            rows.append([_part(f"{e.name}: no gradient", "note")])
            continue
        if e.local is not None:
            local = _num(e.local, "local", f"local:{node.name}/{e.name}")
        else:
            local = _part(f"∂{node.name}/∂{e.name}", "local")
        rows.append(
            [
                _part(f"{e.name}: "),
                _num(node.upstream, "grad", f"upstream:{node.name}"),
                _part(" × "),
                local,
                _part(" = "),
                _num(e.grad, "grad", f"down:{node.name}/{e.name}"),
                *([_part(f"   += into d{e.name}", "note")] if e.accumulated else []),
            ]
        )
    rows.append([_part("downstream = upstream × local derivative, for each input", "note")])
    if any(e.accumulated for e in graph.inputs_of(node.id)):
        rows.append([_part("+= : added to a gradient that arrived from another use", "note")])
    return {"heading": f"{node.op} → {node.name}", "rows": rows}


def page_data(graph: Graph) -> dict[str, Any]:
    """The steps of both passes, for the page's script (and for tests)."""
    steps: list[dict[str, Any]] = []
    forward: dict[str, int] = {}
    backward: dict[str, int] = {}
    for nid in graph.forward_order:
        forward[nid] = len(steps)
        steps.append({"phase": "forward", "node": nid, **_forward_step(graph, graph.node(nid))})
    for nid in graph.backward_order:
        backward[nid] = len(steps)
        steps.append({"phase": "backward", "node": nid, **_backward_step(graph, graph.node(nid))})
    return {
        "title": graph.title,
        "output": graph.output_name,
        "root": graph.root,
        "steps": steps,
        "forward": forward,
        "backward": backward,
        "backwardStart": len(graph.forward_order),
    }


def _json_for_script(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # Inside <script>, "</script>" or "<!--" would end the block early: escape every "<".
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 12px 20px 4px; }
h1 { font-size: 1.2rem; margin: 0 0 4px; }
p.help { margin: 0; color: #555; font-size: .9rem; }
#figure { overflow: auto; background: #fff; border-top: 1px solid #ddd;
  border-bottom: 1px solid #ddd; max-height: 70vh; }
#controls { display: flex; align-items: center; gap: 12px; padding: 10px 20px; }
#controls button { font-size: 1rem; padding: 4px 14px; }
#status { font-family: monospace; color: #444; }
#zoom { margin-left: auto; display: flex; align-items: center; gap: 6px; }
#zoom-level { font-family: monospace; color: #444; min-width: 3.5em; text-align: center; }
#panel { margin: 0 20px 20px; padding: 10px 14px; background: #fff; border: 1px solid #ddd;
  border-radius: 6px; font-family: DejaVu Sans Mono, Menlo, Consolas, monospace;
  min-height: 6em; }
#panel h2 { font-size: 1rem; margin: 0 0 6px; }
#panel .row { margin: 2px 0; white-space: pre-wrap; }
#panel .value { color: #1b7f2a; } #panel .grad { color: #c62828; }
#panel .local { color: #5e35b1; } #panel .note { color: #666; font-style: italic; }
#panel .phase-forward { color: #1b7f2a; } #panel .phase-backward { color: #c62828; }
svg .pending { visibility: hidden; }
svg .node.current rect.box { stroke: #ef6c00; stroke-width: 3.5; fill: #fff3e0; }
svg .node.done rect.box { stroke-width: 1.6; }
svg .edge.active path.wire { stroke: #ef6c00; stroke-width: 2.6; }
"""

_JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chainrule-steps").textContent);
  var svg = document.querySelector("#figure svg");
  var pos = -1;
  var last = data.steps.length - 1;
  var INF = 1e9;
  function fwd(id) { return id in data.forward ? data.forward[id] : INF; }
  function bwd(id) { return id in data.backward ? data.backward[id] : INF; }
  // When each piece of text appears: values with their producer's forward step, gradients
  // with the backward step of the op that sent them (or of the node that holds them).
  var shows = [];
  svg.querySelectorAll("g.edge").forEach(function (g) {
    var s = g.getAttribute("data-source"), t = g.getAttribute("data-target");
    g.querySelectorAll(".line.value").forEach(function (el) { shows.push([el, fwd(s)]); });
    g.querySelectorAll(".line.grad").forEach(function (el) {
      shows.push([el, t ? bwd(t) : data.backwardStart]);
    });
  });
  svg.querySelectorAll("g.node").forEach(function (g) {
    var id = g.getAttribute("data-node");
    g.querySelectorAll(".line.value").forEach(function (el) { shows.push([el, fwd(id)]); });
    g.querySelectorAll(".line.grad, .line.product, .line.merge").forEach(function (el) {
      shows.push([el, bwd(id)]);
    });
  });
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function render() {
    shows.forEach(function (p) { p[0].classList.toggle("pending", pos < p[1]); });
    var step = pos >= 0 ? data.steps[pos] : null;
    svg.querySelectorAll("g.node").forEach(function (g) {
      g.classList.toggle("current", step !== null && g.id === step.node);
    });
    svg.querySelectorAll("g.edge").forEach(function (g) {
      g.classList.toggle("active", step !== null && g.getAttribute("data-target") === step.node);
    });
    var heading = document.getElementById("step-heading");
    var rows = document.getElementById("step-rows");
    rows.textContent = "";
    heading.textContent = "";
    if (step === null) {
      heading.textContent = "Press Next (or \\u2192) to start the forward pass.";
      document.getElementById("status").textContent = "0 / " + data.steps.length;
    } else {
      var phase = step.phase === "forward" ? "Forward" : "Backward";
      heading.appendChild(el("span", "phase-" + step.phase, phase));
      heading.appendChild(document.createTextNode(" \\u00b7 " + step.heading));
      step.rows.forEach(function (r) {
        var row = el("div", "row");
        r.forEach(function (p) {
          var s = el("span", p.c || "", p.t);
          if (p.q) { s.setAttribute("data-q", p.q); }
          row.appendChild(s);
        });
        rows.appendChild(row);
      });
      document.getElementById("status").textContent = (pos + 1) + " / " + data.steps.length;
      var current = svg.getElementById(step.node);
      if (current && current.scrollIntoView) {
        current.scrollIntoView({block: "nearest", inline: "center"});
      }
    }
    document.getElementById("panel").setAttribute("data-step", String(pos));
    document.getElementById("back").disabled = pos < 0;
    document.getElementById("next").disabled = pos >= last;
  }
  function go(to) {
    pos = Math.max(-1, Math.min(last, to));
    render();
  }
  // Zoom: the SVG keeps its viewBox, so changing its size scales the whole drawing.
  var baseW = parseFloat(svg.getAttribute("width"));
  var baseH = parseFloat(svg.getAttribute("height"));
  var zoom = 1;
  function setZoom(z) {
    zoom = Math.max(0.1, Math.min(4, z));
    svg.setAttribute("width", String(Math.round(baseW * zoom * 10) / 10));
    svg.setAttribute("height", String(Math.round(baseH * zoom * 10) / 10));
    document.getElementById("zoom-level").textContent = Math.round(zoom * 100) + "%";
  }
  function fit() {
    var box = document.getElementById("figure");
    setZoom(Math.min(1, (box.clientWidth - 4) / baseW));
  }
  document.getElementById("zoom-in").addEventListener("click", function () {
    setZoom(zoom * 1.25);
  });
  document.getElementById("zoom-out").addEventListener("click", function () {
    setZoom(zoom / 1.25);
  });
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.getElementById("next").addEventListener("click", function () { go(pos + 1); });
  document.getElementById("back").addEventListener("click", function () { go(pos - 1); });
  document.addEventListener("keydown", function (e) {
    var keys = {ArrowRight: pos + 1, ArrowLeft: pos - 1, Home: -1, End: last};
    if (e.key in keys && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      go(keys[e.key]);
    }
    var zooms = {"+": 1.25, "=": 1.25, "-": 0.8};
    if (e.key in zooms && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      setZoom(zoom * zooms[e.key]);
    } else if (e.key === "0" && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      fit();
    }
  });
  render();
})();
"""


def to_html(graph: Graph) -> str:
    """The stepper page: inline SVG, CSS, JavaScript and the steps as JSON."""
    title = graph.caption
    return f"""<!DOCTYPE html>
<html lang="{graph.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{esc(title)}</h1>
<p class="help">Step through the forward pass, then the backward pass, one node at a time:
<b>Next</b>/<b>Back</b> or the &#8594;/&#8592; keys; zoom with &#8722;/+/fit or the
-/+/0 keys. Green: values; red: gradients.</p>
</header>
<div id="controls">
<button id="back" type="button">&#9664; Back</button>
<button id="next" type="button">Next &#9654;</button>
<span id="status"></span>
<span id="zoom">
<button id="zoom-out" type="button" title="zoom out (-)">&#8722;</button>
<span id="zoom-level">100%</span>
<button id="zoom-in" type="button" title="zoom in (+)">+</button>
<button id="zoom-fit" type="button" title="fit the width (0)">fit</button>
</span>
</div>
<div id="panel" aria-live="polite"><h2 id="step-heading"></h2><div id="step-rows"></div></div>
<div id="figure">
{to_svg(graph)}</div>
<noscript><p>JavaScript is off: the drawing above shows every value and gradient at once.</p>
</noscript>
<script type="application/json" id="chainrule-steps">{_json_for_script(page_data(graph))}</script>
<script>{_JS}</script>
</body>
</html>
"""
