"""The step-through page in a real headless Chromium, driven by Selenium.

The page is opened from disk (file://, no network), Next is pressed (or ArrowRight typed) until
the end, and at every step exactly one node is highlighted; every node is highlighted once in
the forward pass and once in the backward pass; and every number the panel shows equals the
engine's (values, upstream gradients, local derivatives, downstream gradients, and the parts
added up at a fork). Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium``
package; without them the tests are skipped with the reason shown.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chainrule import Tensor
from chainrule.explain import explain
from chainrule.viz import draw, example_graph

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip("selenium is not installed (pip install selenium)", allow_module_level=True)

if not os.access(CHROMIUM, os.X_OK):  # pragma: no cover - depends on the machine
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
if not os.access(CHROMEDRIVER, os.X_OK):  # pragma: no cover - depends on the machine
    pytest.skip(
        f"no chromedriver at {CHROMEDRIVER} (apt-get install chromium-driver)",
        allow_module_level=True,
    )

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    with pytest.MonkeyPatch.context() as mp:
        # Selenium Manager must not try to fetch anything: both paths are given.
        mp.setenv("SE_OFFLINE", "true")
        try:
            service = Service(executable_path=CHROMEDRIVER)
            driver = webdriver.Chrome(service=service, options=options)
        except WebDriverException as e:  # pragma: no cover - depends on the machine
            pytest.skip(f"Chromium did not start under chromedriver: {e.msg}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


# ----------------------------------------------------------------------------- the engine's side


def engine_numbers(f: Tensor) -> dict[str, float]:
    """Every quantity the panel may show, named like its ``data-q``, from the engine itself."""
    trace = explain(f, retain_grad=True)
    numbers: dict[str, float] = {}
    stack, seen = [f], set()
    while stack:  # every tensor of the graph, by name
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        numbers[f"value:{t.name}"] = float(t.data)
        if t.grad is not None:
            numbers[f"grad:{t.name}"] = float(t.grad)
            numbers[f"upstream:{t.name}"] = float(t.grad)
        if t.creator is not None:
            stack.extend(x for x in t.creator.inputs if isinstance(x, Tensor))
    arrivals: dict[str, int] = {}
    for step in trace:
        for e in step.edges:
            numbers[f"local:{step.output}/{e.name}"] = float(e.local)
            numbers[f"down:{step.output}/{e.name}"] = float(e.downstream)
            arrivals[e.name] = arrivals.get(e.name, 0) + 1
            numbers[f"part:{e.name}:{arrivals[e.name]}"] = float(e.downstream)
    return numbers


def open_page(browser: Any, f: Tensor, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(draw(f, format="html"), encoding="utf-8")
    browser.get(page.resolve().as_uri())
    assert browser.find_element(By.ID, "step-heading").text.startswith("Press Next")


def snapshot(browser: Any) -> dict[str, Any]:
    """What the screen shows now: the highlighted nodes, the phase, the panel's numbers."""
    return browser.execute_script(
        """
        const current = [...document.querySelectorAll("svg g.node.current")].map(g => g.id);
        const nums = [...document.querySelectorAll("#panel [data-q]")]
          .filter(s => s.classList.contains("num"))
          .map(s => [s.getAttribute("data-q"), s.textContent]);
        const phase = document.querySelector("#step-heading span");
        return {current: current, nums: nums, phase: phase ? phase.textContent : null,
                pending: document.querySelectorAll("svg .pending").length,
                gradsShown: [...document.querySelectorAll("svg .line.grad, svg .line.product")]
                  .filter(t => !t.classList.contains("pending")).length,
                nextDisabled: document.getElementById("next").disabled};
        """
    )


def walk(browser: Any, numbers: dict[str, float], advance: Any) -> dict[str, list[str]]:
    """Step to the end; check one highlight and the panel's numbers at every step."""
    visits: dict[str, list[str]] = {"Forward": [], "Backward": []}
    checked = 0
    state = snapshot(browser)
    assert state["current"] == [] and state["gradsShown"] == 0
    while not state["nextDisabled"]:
        advance()
        state = snapshot(browser)
        assert len(state["current"]) == 1, state
        visits[state["phase"]].append(state["current"][0])
        if state["phase"] == "Forward":
            assert state["gradsShown"] == 0  # no gradient is on screen before backward starts
        for q, text in state["nums"]:
            assert q in numbers, q
            assert float(text) == pytest.approx(numbers[q], rel=1e-5, abs=1e-12), q
            checked += 1
    assert state["pending"] == 0  # at the end everything is on screen
    assert checked > 0
    return visits


def check_visits(visits: dict[str, list[str]], f: Tensor) -> None:
    n_nodes = len(draw_nodes(f))
    for phase in ("Forward", "Backward"):
        assert sorted(visits[phase]) == sorted(set(visits[phase])), phase
        assert len(visits[phase]) == n_nodes, phase


def draw_nodes(f: Tensor) -> list[str]:
    from chainrule.viz import build_graph

    return [n.id for n in build_graph(f).nodes]


def shown_wires(browser: Any) -> list[tuple[str, str, str, str]]:
    """(input name, consumer name, value text, gradient text) of every wire on screen."""
    return browser.execute_script(
        """
        return [...document.querySelectorAll("svg g.edge:not(.output)")].map(g => [
          g.getAttribute("data-name"),
          document.getElementById(g.getAttribute("data-target")).getAttribute("data-name"),
          g.querySelector(".line.value .value").textContent,
          g.querySelector(".line.grad").textContent]);
        """
    )


# ----------------------------------------------------------------------------- the tests


def test_circuit_page_steps_through_both_passes(browser: Any, tmp_path: Path) -> None:
    f = example_graph("circuit")[0]
    numbers = engine_numbers(f)
    open_page(browser, f, tmp_path)
    nxt = browser.find_element(By.ID, "next")
    visits = walk(browser, numbers, nxt.click)
    check_visits(visits, f)
    assert visits["Forward"][-1] == visits["Backward"][0]  # backward starts at the output
    # The wires' labels on screen: the engine's values and gradients (4 significant figures).
    wires = shown_wires(browser)
    assert len(wires) == 4
    for name, target, value, grad in wires:
        assert float(value) == pytest.approx(numbers[f"value:{name}"], rel=1e-3)
        assert float(grad) == pytest.approx(numbers[f"down:{target}/{name}"], rel=1e-3)
    assert browser.find_element(By.ID, "status").text == "10 / 10"


def test_staged_page_with_the_keyboard(browser: Any, tmp_path: Path) -> None:
    f = example_graph("staged")[0]
    numbers = engine_numbers(f)
    open_page(browser, f, tmp_path)
    body = browser.find_element(By.TAG_NAME, "body")
    visits = walk(browser, numbers, lambda: body.send_keys(Keys.ARROW_RIGHT))
    check_visits(visits, f)
    # x and y are used several times: their gradients arrive in parts and are added.
    assert any(q.startswith("part:x:") for q in numbers)
    total = sum(v for q, v in numbers.items() if q.startswith("part:x:"))
    assert total == pytest.approx(numbers["grad:x"])
    # ArrowLeft goes back one node; Home returns to the start.
    last = snapshot(browser)["current"]
    body.send_keys(Keys.ARROW_LEFT)
    assert snapshot(browser)["current"] != last
    body.send_keys(Keys.ARROW_RIGHT)
    assert snapshot(browser)["current"] == last
    body.send_keys(Keys.HOME)
    state = snapshot(browser)
    assert state["current"] == [] and state["gradsShown"] == 0


def test_the_panel_shows_the_plus_equals_merge(browser: Any, tmp_path: Path) -> None:
    x = Tensor(3.0, name="x")
    f = x * x + x
    f.name = "f"
    open_page(browser, f, tmp_path)
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.END)
    text = browser.find_element(By.ID, "panel").text
    assert "dx = 1 + 3 + 3 = 7" in text  # from the Add first, then twice from the Mul


def test_zoom_buttons_and_keys_scale_the_drawing(browser: Any, tmp_path: Path) -> None:
    f = example_graph("sigmoid-neuron")[0]  # wider than the window
    open_page(browser, f, tmp_path)

    def size() -> tuple[float, float]:
        svg = browser.find_element(By.CSS_SELECTOR, "#figure svg")
        return float(svg.get_attribute("width")), float(svg.get_attribute("height"))

    w0, h0 = size()
    browser.find_element(By.ID, "zoom-in").click()
    assert size() == pytest.approx((w0 * 1.25, h0 * 1.25), abs=0.1)
    assert browser.find_element(By.ID, "zoom-level").text == "125%"
    browser.find_element(By.ID, "zoom-out").click()
    browser.find_element(By.ID, "zoom-out").click()
    assert size() == pytest.approx((w0 * 0.8, h0 * 0.8), abs=0.1)
    browser.find_element(By.TAG_NAME, "body").send_keys("+")
    assert size() == pytest.approx((w0, h0), abs=0.1)
    browser.find_element(By.TAG_NAME, "body").send_keys("0")  # fit: never wider than the view
    width = browser.execute_script("return document.getElementById('figure').clientWidth")
    assert size()[0] <= max(w0, width)
    assert size()[0] == pytest.approx(min(w0, width - 4), abs=0.2)
