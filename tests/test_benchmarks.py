"""Tests for the benchmark harness (``python -m benchmarks``): it runs end to end, and its rows
do the same work (the plain-NumPy references and chainrule agree on losses, outputs and
gradients; PyTorch too, where it is installed).
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
from benchmarks import conv_throughput as ct  # noqa: E402
from benchmarks import convnet_throughput as cn  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks import train_throughput as tt  # noqa: E402

from chainrule.functions import Conv2d, im2col  # noqa: E402
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


def _quick_run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    command = [sys.executable, "-m", "benchmarks", "--quick", "--threads", "1", "--json", out]
    done = subprocess.run(
        [*command, *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # generous: the machine may be shared by many jobs
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_quick_run_writes_json_with_all_rows(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = _quick_run(tmp_path)
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
        budget = row["memory"]["budget_mb"]
        assert set(budget) == {"parameters", "gradients", "optimizer_state", "activations"}
        assert row["memory"]["budget_ratio"] > 0
        assert all(np.isfinite(row["final_losses"]))
    assert all(v > 0 for v in result["peak_gflops"].values())
    assert payload["machine"]["cpu"]
    assert "| small | chainrule-layers |" in done.stdout
    assert "| big | numpy-f32 |" in done.stdout


def test_memory_budget_counts_parameters_gradients_and_one_batch_of_activations() -> None:
    # 784-50-10 at batch 100, float32: W1 784x50 + b1 50 + W2 50x10 + b2 10 = 39,760 numbers;
    # activations: 100 x 50 before and after the ReLU, then the 100 x 10 scores.
    budget = tt.memory_budget(tt.NETS["small"], itemsize=4)
    assert budget == {
        "parameters": 39_760 * 4,
        "gradients": 39_760 * 4,
        "optimizer_state": 0,
        "activations": (2 * 100 * 50 + 100 * 10) * 4,
    }
    assert tt.memory_budget(tt.NETS["big"], itemsize=8)["parameters"] == 8 * (
        784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
    )


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


def test_gpu_rows_are_compared_with_pytorch_on_the_gpu() -> None:
    def row(name: str, seconds: list[float]) -> dict:
        return {"net": "big", "row": name, "dtype": "float32", "batch": 10, "steps": 1,
                "flops_per_step": 1e9, "seconds": seconds}  # fmt: skip

    peaks = {"float32": 2.0, "torch float32": 4.0, "cuda float32": 100.0,
             "torch cuda float32": 50.0}  # fmt: skip
    result = {"threads": 1, "peak_gflops": peaks, "rows": [
        row("chainrule-layers", [1.0, 1.0]), row("pytorch", [2.0, 2.0]),
        row("chainrule-layers-cuda", [0.1, 0.1]), row("pytorch-cuda", [0.3, 0.3])]}  # fmt: skip
    report.summarise(result)
    cpu, _, gpu, torch_gpu = result["rows"]
    assert cpu["ratio_vs_pytorch"] == pytest.approx(2.0)
    assert gpu["ratio_vs_pytorch"] == pytest.approx(3.0)  # against pytorch-cuda, not pytorch
    assert gpu["percent_of_peak"] == pytest.approx(10.0)  # 10 GFLOP/s of CuPy's 100
    assert torch_gpu["percent_of_peak"] == pytest.approx(100 / 15)  # 3.33 of torch's 50


def test_gpu_rows_run_the_same_steps_on_the_device() -> None:
    # Through the CuPy stand-in (tests/fake_cupy.py): same arithmetic as the CPU row, on
    # arrays that refuse to mix with NumPy's, so one step must give the CPU row's loss exactly.
    import fake_cupy

    with fake_cupy.installed():
        x, t = tt.make_data(64)
        spec = tt.NetSpec("tiny", (784, 16, 10), batch=32, lr=0.1, init="he", default_steps=1)
        for name in ("chainrule-layers", "chainrule-autograd"):
            cpu, gpu = (
                tt.build_row(spec, name, x, t, 1),
                tt.build_row(spec, name + "-cuda", x, t, 1),
            )
            assert type(gpu.batches[0][0]).__module__ == "cupy"
            assert gpu.name == name + "-cuda"
            assert [gpu.run(1) for _ in range(2)] == [cpu.run(1) for _ in range(2)]


def test_convnet_gpu_rows_run_the_same_steps_on_the_device() -> None:
    # SimpleConvNet's layers and autograd rows on the stand-in: the conv, pool and Adam code
    # must keep every array on the "device" and compute what the CPU rows compute. The first
    # loss is bit for bit the CPU's; then the weights differ in rounding, since the CPU sums
    # dW over blocks of output rows and a GPU in one block (conv._blocks).
    import fake_cupy

    with fake_cupy.installed():
        x, t = tt.make_data(200)
        for name in ("chainrule-layers", "chainrule-autograd"):
            cpu = cn.build_row(cn.NETS["simple-cnn"], name, x, t, threads=1)
            gpu = cn.build_row(cn.NETS["simple-cnn"], name + "-cuda", x, t, threads=1)
            assert type(gpu.batches[0][0]).__module__ == "cupy"
            assert gpu.name == name + "-cuda" and "on the GPU" in gpu.notes[-1]
            assert gpu.run(1) == cpu.run(1)
            assert gpu.run(1) == pytest.approx(cpu.run(1), rel=1e-5)


def test_gpu_flag_without_a_gpu_says_why_the_rows_are_missing() -> None:
    notes: list[str] = []
    missing = cli._gpu_rows_missing(["numpy-f32", *cli.GPU_ROW_NAMES], notes)
    ok_cupy, _ = tt.cupy_gpu()
    ok_torch, _ = tt.torch_cuda()
    assert ("chainrule-layers-cuda" in missing) == (not ok_cupy)
    assert ("pytorch-cuda" in missing) == (not ok_torch)
    assert len(notes) == len({r for r in missing if r.startswith("pytorch")}) + (not ok_cupy)


def test_cli_row_names_match_the_module() -> None:
    assert cli.ROW_NAMES == tt.ROW_NAMES
    assert cli.GPU_ROW_NAMES == tt.GPU_ROW_NAMES
    assert set(cli.MLP_NETS) == set(tt.NETS)
    assert set(cli.NET_NAMES) == set(tt.NETS) | {ct.SIMPLE_CONV.name} | set(cn.NETS)
    assert cli.build_parser().parse_args([]).nets == list(cli.MLP_NETS)  # conv is opt-in
    assert cli.build_parser().parse_args(["--nets", "simple-cnn,deep-cnn"]).nets == list(cn.NETS)


def test_worker_env_sets_threads_and_can_drop_coretype(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "512")
    kept = cli.worker_env(2, unset_coretype=False)
    assert kept["OPENBLAS_NUM_THREADS"] == kept["OMP_NUM_THREADS"] == "2"
    assert kept["OPENBLAS_CORETYPE"] == "Haswell"
    dropped = cli.worker_env(1, unset_coretype=True)
    assert "OPENBLAS_CORETYPE" not in dropped and "OPENBLAS_L2_SIZE" not in dropped
    assert dropped["MKL_NUM_THREADS"] == "1"


# --------------------------------------------------------------------------- convolution

CONV_CASES = [
    # x (N, C, H, W), W (FN, C, FH, FW), stride, pad
    ((3, 1, 8, 8), (4, 1, 5, 5), 1, 0),  # SimpleConvNet's layer, small
    ((2, 2, 7, 9), (3, 2, 3, 3), 2, 1),
    ((2, 3, 6, 5), (2, 3, 2, 2), 1, 2),
]


def _conv_problem(x_shape, w_shape, stride, pad, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    W = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    oh = (x_shape[2] + 2 * pad - w_shape[2]) // stride + 1
    ow = (x_shape[3] + 2 * pad - w_shape[3]) // stride + 1
    dout = rng.standard_normal((x_shape[0], w_shape[0], oh, ow))
    return x, W, b, dout


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad"), CONV_CASES)
def test_conv_reference_matches_chainrule(x_shape, w_shape, stride, pad) -> None:
    x, W, b, dout = _conv_problem(x_shape, w_shape, stride, pad)
    ref = ct.ReferenceConv(W, b, stride, pad)
    op = Conv2d(stride, pad)
    np.testing.assert_allclose(ref.forward(x), op.forward(x, W, b), rtol=1e-12, atol=1e-12)
    dx_ref = ref.backward(dout)
    dx, dW, db = op.backward(dout)
    np.testing.assert_allclose(dx_ref, dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.dW, dW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.db, db, rtol=1e-12, atol=1e-12)
    # Without dx (SimpleConvNet's first layer): the same dW and db, no dx from either.
    ref_no_dx = ct.ReferenceConv(W, b, stride, pad, need_dx=False)
    op.needs_input_grad = (False, True, True)
    ref_no_dx.forward(x)
    op.forward(x, W, b)
    assert ref_no_dx.backward(dout) is None
    none, dW2, db2 = op.backward(dout)
    assert none is None
    np.testing.assert_allclose(ref_no_dx.dW, dW2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref_no_dx.db, db2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad"), CONV_CASES)
def test_reference_im2col_is_chainrules_transposed_and_col2im_its_adjoint(
    x_shape, w_shape, stride, pad
) -> None:
    x, _, _, _ = _conv_problem(x_shape, w_shape, stride, pad)
    fh, fw = w_shape[2:]
    rows = ct.reference_im2col(x, fh, fw, stride, pad)
    cols = im2col(x, fh, fw, stride, pad)  # (K, OH*OW*N), batch fastest
    k, n = cols.shape[0], x_shape[0]
    np.testing.assert_array_equal(rows, cols.reshape(k, -1, n).transpose(2, 1, 0).reshape(-1, k))
    c = np.random.default_rng(1).standard_normal(rows.shape)
    back = ct.reference_col2im(c, x_shape, fh, fw, stride, pad)
    assert back.shape == x_shape
    assert np.vdot(rows, c) == pytest.approx(np.vdot(x, back), rel=1e-12)


def test_simple_conv_spec_shapes_and_flops() -> None:
    spec = ct.SIMPLE_CONV
    assert (spec.batch, spec.in_shape, spec.filter_shape) == (100, (1, 28, 28), (30, 1, 5, 5))
    assert spec.out_hw == (24, 24)
    one = 2 * 100 * 30 * 1 * 5 * 5 * 24 * 24
    assert [spec.flops(mode) for mode in ct.MODES] == [one, 2 * one, 3 * one]
    with pytest.raises(ValueError, match="not a positive whole number"):
        ct.out_size(28, 5, 2, 0)


TINY_CONV = ct.ConvSpec("conv", in_shape=(1, 8, 8), filters=3, size=3, batch=4)


@pytest.mark.parametrize("mode", ct.MODES)
def test_conv_rows_run_and_agree(mode: str) -> None:
    x, t = ct.make_images(12, TINY_CONV.in_shape)
    impls = ["chainrule", "im2col-ref"] + (["pytorch"] if tt.torch_available()[0] else [])
    results = {}
    for impl in impls:
        row = ct.build_conv_row(TINY_CONV, impl, mode, x, t, threads=1)
        assert (row.net, ct.split_name(row.name)) == ("conv", (impl, mode))
        assert len(row.batches) == 3
        results[impl] = row.run(4)  # wraps around the pool
    assert all(np.isfinite(v) for v in results.values())
    # same filters, data and dout: the same first output (forward) or dW entry, in float32
    assert max(results.values()) - min(results.values()) < 1e-4 * max(1, abs(results["chainrule"]))


def test_pytorch_conv_matches_the_reference() -> None:
    torch = pytest.importorskip("torch")
    x, W, b, dout = _conv_problem(*CONV_CASES[1])
    ref = ct.ReferenceConv(W, b, 2, 1)
    xt = torch.from_numpy(x).requires_grad_(True)
    Wt = torch.from_numpy(W).requires_grad_(True)
    bt = torch.from_numpy(b).requires_grad_(True)
    out = torch.nn.functional.conv2d(xt, Wt, bt, stride=2, padding=1)
    out.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out.detach().numpy(), ref.forward(x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), ref.backward(dout), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Wt.grad.numpy(), ref.dW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bt.grad.numpy(), ref.db, rtol=1e-10, atol=1e-12)


def test_quick_conv_run_prints_the_ratio_table(tmp_path: Path) -> None:
    done = _quick_run(tmp_path, "--nets", "conv")
    payload = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    (result,) = payload["results"]
    found = {(r["impl"], r["mode"]) for r in result["rows"]}
    impls = ["chainrule", "im2col-ref"] + (["pytorch"] if result["torch"] else [])
    assert found == {(impl, mode) for impl in impls for mode in ct.MODES}
    for row in result["rows"]:
        assert row["net"] == "conv" and row["batch"] == 100
        assert len(row["ms_per_step"]) == 2 and all(ms > 0 for ms in row["ms_per_step"])
        assert row["gflops"] > 0 and row["memory"]["peak_rss_mb"] > 0
        assert row["ratio_vs_reference"] > 0
        assert (row["ratio_vs_pytorch"] is None) == (result["torch"] is None)
    assert {(e["impl"], e["backward"]) for e in result["conv_backward"]} == {
        (impl, which) for impl in impls for which in ("no dx", "with dx")
    }
    assert "| chainrule | fwd+bwd, no dx |" in done.stdout
    assert "| im2col-ref | forward |" in done.stdout
    assert "Backward alone" in done.stdout
    assert "| small |" not in done.stdout  # only the nets asked for


def test_conv_ratios_pair_the_same_mode_round_by_round() -> None:
    def row(impl: str, mode: str, ms: list[float]) -> dict:
        return {"net": "conv", "row": f"{impl} {mode}", "impl": impl, "mode": mode,
                "dtype": "float32", "batch": 100, "steps": 1, "flops_per_step": 1e9,
                "seconds": [m / 1000 for m in ms]}  # fmt: skip

    rows = [
        row("chainrule", "forward", [2.0, 4.0]),
        row("chainrule", "fwd+bwd, no dx", [6.0, 12.0]),
        row("chainrule", "fwd+bwd", [8.0, 16.0]),
        row("im2col-ref", "forward", [4.0, 8.0]),
        row("im2col-ref", "fwd+bwd, no dx", [8.0, 16.0]),
        row("im2col-ref", "fwd+bwd", [16.0, 32.0]),
        row("pytorch", "forward", [1.0, 2.0]),
        row("pytorch", "fwd+bwd, no dx", [3.0, 6.0]),
        row("pytorch", "fwd+bwd", [20.0, 40.0]),
    ]
    result = {"threads": 1, "peak_gflops": {"float32": 100.0}, "rows": rows}
    report.summarise(result)
    by = {(r["impl"], r["mode"]): r for r in rows}
    assert by["chainrule", "forward"]["ratio_vs_pytorch"] == pytest.approx(0.5)
    assert by["chainrule", "fwd+bwd, no dx"]["ratio_vs_pytorch"] == pytest.approx(0.5)
    assert by["chainrule", "fwd+bwd"]["ratio_vs_pytorch"] == pytest.approx(2.5)
    assert by["chainrule", "fwd+bwd"]["ratio_vs_reference"] == pytest.approx(2.0)
    assert by["pytorch", "forward"]["ratio_vs_pytorch"] == pytest.approx(1.0)
    backward = {(e["impl"], e["backward"]): e for e in result["conv_backward"]}
    # chainrule: 4 and 8 ms without dx, 6 and 12 with; pytorch: 2 and 4, 19 and 38
    assert backward["chainrule", "no dx"]["ms_median"] == pytest.approx(6.0)
    assert backward["chainrule", "no dx"]["ratio_vs_pytorch"] == pytest.approx(0.5)
    assert backward["chainrule", "with dx"]["ratio_vs_pytorch"] == pytest.approx(19 / 6)
    text = report.markdown_table(result)
    assert "| chainrule | fwd+bwd | 12.00 | 8.00 | 16.00 |" in text
    assert "fwd+bwd, no dx: 0.50× PyTorch's speed (met)" in text
    assert "fwd+bwd: 2.50× PyTorch's speed (met)" in text
    assert "| net | row |" not in text  # no training rows, no training table


def test_optim_update_benchmark_times_current_baseline_and_floor(capsys) -> None:
    from benchmarks import optim_update

    baseline = ROOT / "src" / "chainrule" / "optim.py"  # itself, loaded as a second module
    argv = ["--net", "tiny", "--rules", "sgd,adam", "--number", "3", "--repeats", "2"]
    assert optim_update.main([*argv, "--baseline", str(baseline)]) == 0
    text = capsys.readouterr().out
    for name in ("chainrule SGD", "baseline SGD", "chainrule Adam", "baseline Adam"):
        assert f"| {name} |" in text
    assert "| numpy SGD arithmetic |" in text
    params, grads = optim_update.make_problem("small")
    assert {k: v.shape for k, v in params.items()} == optim_update.SHAPES["small"]
    assert all(v.dtype == np.float32 for v in (*params.values(), *grads.values()))


# --------------------------------------------------------------------------- conv-net training


def test_convnet_flops_and_memory_budget_count_every_layer() -> None:
    simple = cn.NETS["simple-cnn"]
    conv = 2 * 30 * 1 * 5 * 5 * 24 * 24  # per image: 30 filters 5x5 on 24x24 outputs
    affine = 2 * 4320 * 100 + 2 * 100 * 10
    assert simple.flops_per_step == 100 * (2 * conv + 3 * affine)  # no dx for the images
    budget = cn.memory_budget(simple)
    params = 30 * 25 + 30 + 4320 * 100 + 100 + 100 * 10 + 10
    assert budget["parameters"] == budget["gradients"] == 4 * params
    assert budget["optimizer_state"] == 2 * 4 * params  # Adam's two moments
    per_image = 2 * 30 * 24 * 24 + 4320 + 100 + 100 + 10  # conv, relu, pool, affine, relu, affine
    assert budget["activations"] == 4 * 100 * per_image
    deep = cn.NETS["deep-cnn"]
    assert 5.0e9 < deep.flops_per_step < 5.5e9  # issue #16: about 5.2 GFLOP a step


def test_convnet_rows_train_the_same_net() -> None:
    """SimpleConvNet: same weights, same batches, the same losses from every row."""
    x, t = tt.make_data(200)
    names = [r for r in cn.ROWS if r != "pytorch" or tt.torch_available()[0]]
    rows = [cn.build_row(cn.NETS["simple-cnn"], name, x, t, threads=1) for name in names]
    losses = np.array([[row.run(1) for _ in range(2)] for row in rows])
    np.testing.assert_allclose(losses, losses[:1].repeat(len(rows), 0), rtol=1e-4)


def test_deep_convnet_twins_compute_the_same_loss() -> None:
    """DeepConvNet with dropout off: the book net, its autograd replay and the torch copy."""
    from chainrule.config import using_config

    x, t = tt.make_data(8)
    net = cn.NETS["deep-cnn"].build()
    with using_config("train", False):
        book = float(net.loss(x, t))
        replay = float(cn.AutogradConvNet(net).loss(x, t).data)
        twin, what = cn.autograd_twin(cn.NETS["deep-cnn"], net)
        assert what == "chainrule.nn.DeepConvNet"
        twin_loss = float(twin.loss(x, t).data)
    np.testing.assert_allclose([replay, twin_loss], book, rtol=1e-5)
    if tt.torch_available()[0]:
        import torch

        model = cn._torch_model(net).eval()
        scores = model(torch.from_numpy(x.reshape(-1, 1, 28, 28)))
        loss = torch.nn.functional.cross_entropy(scores, torch.from_numpy(t)).item()
        np.testing.assert_allclose(loss, book, rtol=1e-5)


def test_convnet_targets_are_reported_with_wall_and_cpu_ratios() -> None:
    def row(name: str, wall: float, cpu: float) -> dict:
        return {"net": "simple-cnn", "row": name, "seconds": [1.0, 1.0], "spread": 1.0,
                "ratio_vs_pytorch": wall, "cpu_ratio_vs_pytorch": cpu}  # fmt: skip

    lines = report._convnet_targets([row("chainrule-layers", 1.5, 1.4), row("pytorch", 1, 1)])
    assert lines[0] == (
        "- simple-cnn chainrule-layers: 1.50× PyTorch's samples/s (wall), 1.40× (CPU time); "
        "target 1.3× (met)"
    )
    lines = report._convnet_targets([row("chainrule-autograd", 1.5, 1.2)])
    assert lines[0].endswith("(not met)")  # both measures must meet it


def test_conv_profile_on_cuda_without_cupy_is_a_usage_error(monkeypatch, capsys) -> None:
    from benchmarks import conv_profile

    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        conv_profile.main(["--device", "cuda", "--steps", "1"])
    assert exit_info.value.code == 2
    assert "--device cuda: device 'cuda' needs CuPy" in capsys.readouterr().err
    from chainrule import current_device

    assert current_device() == "cpu"
