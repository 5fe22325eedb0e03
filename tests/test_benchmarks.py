"""Tests for the benchmark harness (``python -m benchmarks``): it runs end to end, and its rows
do the same work (the plain-NumPy reference and chainrule's paths agree on loss and gradients).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks` lives at the repository root, next to src/
    sys.path.insert(0, str(ROOT))

from benchmarks import __main__ as cli  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks import train_throughput as tt  # noqa: E402

from chainrule.optim import SGD  # noqa: E402

TINY_SIZES = [(6, 5, 3), (12, 9, 7, 4)]


def _tiny_problem(sizes: tuple[int, ...], init: str = "std:0.5", n: int = 8):
    weights = tt.initial_weights(sizes, init, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, sizes[0]))
    t = rng.integers(0, sizes[-1], size=n)
    return weights, x, t


def _assert_grads_equal(grads: dict, expected: list) -> None:
    for i, (dW, db) in enumerate(expected, start=1):
        np.testing.assert_allclose(grads[f"W{i}"], dW, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(grads[f"b{i}"], db, rtol=1e-10, atol=1e-13)


# --------------------------------------------------------------------------- end to end


def test_quick_run_writes_json_with_all_rows(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    command = [sys.executable, "-m", "benchmarks", "--quick", "--threads", "1", "--json", out]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text(encoding="utf-8"))
    (result,) = payload["results"]
    assert result["threads"] == 1
    expected = {(net, row) for net in ("small", "big") for row in tt.ROW_NAMES if row != "pytorch"}
    found = {(r["net"], r["row"]) for r in result["rows"]}
    assert expected <= found
    assert (("small", "pytorch") in found) == (result["torch"] is not None)
    for row in result["rows"]:
        for key in ("samples_per_s_median", "samples_per_s_min", "epoch_seconds", "gflops"):
            assert row[key] > 0, (row["net"], row["row"], key)
        assert len(row["seconds"]) == 2 and all(s > 0 for s in row["seconds"])
        assert row["samples_per_s_min"] <= row["samples_per_s_median"] <= row["samples_per_s_max"]
        assert row["memory"]["peak_rss_mb"] > 0
        assert row["memory"]["delta_rss_mb"] >= 0
        assert all(np.isfinite(row["final_losses"]))
    assert all(v > 0 for v in result["peak_gflops"].values())
    assert payload["machine"]["cpu"]
    assert "| small | chainrule-layers |" in done.stdout
    assert "| big | numpy-f32 |" in done.stdout


# --------------------------------------------------------------------------- equal work


@pytest.mark.parametrize("sizes", TINY_SIZES)
def test_reference_matches_chainrule_layers(sizes: tuple[int, ...]) -> None:
    weights, x, t = _tiny_problem(sizes)
    loss, grads = tt.reference_gradient(weights, x, t)
    net, _ = tt.build_layers_net(sizes, weights, np.float64)
    _assert_grads_equal(net.gradient(x, t), grads)
    assert float(net.last_layer.loss) == pytest.approx(loss, rel=1e-12)


def test_reference_matches_book_mlp_fallback() -> None:
    weights, x, t = _tiny_problem(TINY_SIZES[1])
    loss, grads = tt.reference_gradient(weights, x, t)
    net = tt.BookMLP(weights, np.float64)
    _assert_grads_equal(net.gradient(x, t), grads)
    assert float(net.last_layer.loss) == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("use_nn", [True, False])
@pytest.mark.parametrize("sizes", TINY_SIZES)
def test_reference_matches_chainrule_autograd(sizes: tuple[int, ...], use_nn: bool) -> None:
    weights, x, t = _tiny_problem(sizes)
    loss, grads = tt.reference_gradient(weights, x, t)
    model = tt.AutogradMLP(weights, np.float64, use_nn=use_nn)
    out = model.loss(x, t)
    out.backward()
    names = [f"{p}{i}" for i in range(1, len(weights) + 1) for p in "Wb"]
    _assert_grads_equal({k: p.grad for k, p in zip(names, model.params)}, grads)
    assert float(out.data) == pytest.approx(loss, rel=1e-12)


def test_one_sgd_step_matches_reference() -> None:
    sizes = TINY_SIZES[1]
    weights, x, t = _tiny_problem(sizes)
    ref = [(W.copy(), b.copy()) for W, b in weights]
    _, grads = tt.reference_gradient(ref, x, t)
    tt.reference_sgd(ref, grads, lr=0.1)
    net, _ = tt.build_layers_net(sizes, weights, np.float64)
    SGD(0.1).update(net.params, net.gradient(x, t))
    for i, (W, b) in enumerate(ref, start=1):
        np.testing.assert_allclose(net.params[f"W{i}"], W, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(net.params[f"b{i}"], b, rtol=1e-12, atol=1e-15)


def test_reference_float32_stays_float32() -> None:
    weights, x, t = _tiny_problem(TINY_SIZES[1])
    w32 = [(W.astype(np.float32), b.astype(np.float32)) for W, b in weights]
    loss, grads = tt.reference_gradient(w32, x.astype(np.float32), t)
    assert np.isfinite(loss)
    assert all(g.dtype == np.float32 for pair in grads for g in pair)
    _, grads64 = tt.reference_gradient(weights, x, t)
    np.testing.assert_allclose(grads[0][0], grads64[0][0], rtol=1e-3, atol=1e-5)


def test_rows_train_the_same_initial_net() -> None:
    """All rows start from the same weights, so one step gives (nearly) the same loss."""
    x, t = tt.make_data(64)
    spec = tt.NetSpec("tiny", (784, 16, 10), batch=32, lr=0.1, init="he", default_steps=1)
    losses = {name: tt.build_row(spec, name, x, t, 1).run(1) for name in tt.ROW_NAMES[:4]}
    assert max(losses.values()) - min(losses.values()) < 1e-4


# --------------------------------------------------------------------------- bookkeeping


def test_useful_flops_counts_forward_dw_and_dx_after_the_first_layer() -> None:
    # layer 1 (784x50): forward + dW; layer 2 (50x10): forward + dW + dx
    assert tt.useful_flops((784, 50, 10), 100) == 2 * 100 * (2 * 784 * 50 + 3 * 50 * 10)


def test_interleaving_rotates_the_order() -> None:
    order: list[str] = []

    def make(name: str) -> tt.Row:
        return tt.Row("n", name, "float32", lambda x, t: order.append(name) or 0.0, [(0, 0)])

    rows = [make(name) for name in "abc"]
    tt.interleaved_timing(rows, {"n": 1}, repeats=3, warmup=1)
    assert "".join(order) == "abc" + "abc" + "bca" + "cab"
    assert all(len(r.seconds) == 3 for r in rows)


def test_ratio_vs_pytorch_is_paired_per_round() -> None:
    def row(name: str, seconds: list[float]) -> dict:
        return {"net": "small", "row": name, "dtype": "float32", "batch": 10, "steps": 1,
                "flops_per_step": 1e9, "seconds": seconds}  # fmt: skip

    result = {"threads": 1, "peak_gflops": {"float32": 2.0, "torch float32": 4.0}, "rows": [
        row("numpy-f32", [1.0, 2.0, 4.0]), row("pytorch", [2.0, 4.0, 8.0])]}  # fmt: skip
    report.summarise(result)
    mine, torch = result["rows"]
    assert mine["ratio_vs_pytorch"] == pytest.approx(2.0)  # twice as fast in every round
    assert mine["samples_per_s_median"] == pytest.approx(5.0)
    assert mine["percent_of_peak"] == pytest.approx(25.0)  # 0.5 GFLOP/s of 2
    assert torch["percent_of_peak"] == pytest.approx(6.25)  # 0.25 of torch's own 4
    assert "| small | numpy-f32 |" in report.markdown_table(result)


def test_cli_row_names_match_the_module() -> None:
    assert cli.ROW_NAMES == tt.ROW_NAMES
    assert set(cli.NET_NAMES) == set(tt.NETS)


def test_worker_env_sets_threads_and_can_drop_coretype(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "512")
    kept = cli.worker_env(2, unset_coretype=False)
    assert kept["OPENBLAS_NUM_THREADS"] == kept["OMP_NUM_THREADS"] == "2"
    assert kept["OPENBLAS_CORETYPE"] == "Haswell"
    dropped = cli.worker_env(1, unset_coretype=True)
    assert "OPENBLAS_CORETYPE" not in dropped and "OPENBLAS_L2_SIZE" not in dropped
    assert dropped["MKL_NUM_THREADS"] == "1"
