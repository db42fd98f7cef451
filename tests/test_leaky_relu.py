"""LeakyReLU: its kernels against the twin, its gradients, PyTorch, saving and ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastnn as fn
from fastnn import kernels, reference
from fastnn.builders import mlp
from fastnn.codes import LEAKY_RELU
from fastnn.layers import ACTIVATIONS, LAYERS, LeakyReLU

BACKENDS = ("numba", "numpy")
DTYPES = (np.float32, np.float64)


def _net(slope, dtype=np.float64, backend="numba", widths=(5, 12, 9, 3), **kwargs):
    layers = mlp(widths, "leaky_relu", negative_slope=slope)
    return fn.Network(layers, dtype=dtype, backend=backend, seed=4, **kwargs)


def _data(rng, n=40, widths=(5, 12, 9, 3)):
    return rng.normal(size=(n, widths[0])), rng.normal(size=(n, widths[-1]))


# -- the layer ---------------------------------------------------------------------


def test_registered_with_its_name_code_and_setting():
    assert LAYERS["LeakyReLU"] is LeakyReLU and ACTIVATIONS["leaky_relu"] is LeakyReLU
    layer = LeakyReLU(0.2)
    assert layer.code == LEAKY_RELU and layer.alpha == 0.2
    assert layer.to_spec() == {"type": "LeakyReLU", "negative_slope": 0.2}
    assert repr(layer) == "LeakyReLU(negative_slope=0.2)"
    assert LeakyReLU().negative_slope == 0.01  # torch's default


@pytest.mark.parametrize(
    "slope, error",
    [
        (-0.1, ValueError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        pytest.param(10**400, ValueError, id="huge-int"),
        (True, TypeError),
        ("0.1", TypeError),
    ],
)
def test_refuses_a_bad_slope(slope, error):
    with pytest.raises(error, match="negative_slope="):
        LeakyReLU(slope)


@pytest.mark.parametrize("shape", [(1, 3), (2, 4), (5, 7), (16, 9)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_kernel_equals_twin(dtype, shape, rng):
    # (1, 3) and (2, 4) take the engine's inline gradient (8 values or fewer).
    x = rng.uniform(-3, 3, shape).astype(dtype)
    g = rng.uniform(-1, 1, shape).astype(dtype)
    outs = []
    for ops in (kernels, reference):
        y, grad = np.empty_like(x), np.empty_like(x)
        ops.activation_forward(LEAKY_RELU, x, y, 0.3)
        ops.activation_backward(LEAKY_RELU, y, g, grad, 0.3)
        outs.append((y, grad))
    (y_k, g_k), (y_t, g_t) = outs
    assert y_k.dtype == dtype and g_k.dtype == dtype
    np.testing.assert_array_equal(y_k, y_t)
    np.testing.assert_array_equal(g_k, g_t)
    np.testing.assert_array_equal(y_t, np.where(x > 0, x, dtype(0.3) * x))
    np.testing.assert_array_equal(g_t, np.where(x > 0, g, g * dtype(0.3)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_by_central_differences(backend, rng):
    layer = LeakyReLU(0.25, backend=backend)
    x = rng.uniform(0.05, 3, (3, 6)) * rng.choice([-1, 1], (3, 6))  # away from the kink
    g = rng.uniform(-1, 1, x.shape)
    layer.forward(x)
    analytic = layer.backward(g, 0.1)
    numeric = np.empty_like(x)
    h = 1e-6
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        numeric[i] = np.sum(g * (layer.forward(xp) - layer.forward(xm))) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_network_gradient_by_central_differences(backend, rng):
    # One minibatch step of plain SGD moves the weights by lr times the gradient.
    X, Y = _data(rng, n=8)
    net = _net(0.2, backend=backend)
    p0 = net.params.copy()
    lr = 1e-3
    net.fit(X, Y, epochs=1, batch_size=8, learning_rate=lr)
    analytic = (p0 - net.params) / lr
    numeric = np.empty_like(p0)
    h = 1e-6
    for i in range(p0.size):
        losses = []
        for step in (h, -h):
            net.params = p0
            net.params[i] += step
            losses.append(net.evaluate(X, Y))
        numeric[i] = (losses[0] - losses[1]) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# -- through the engine ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "widths, batch",
    [((5, 12, 9, 3), 1), ((5, 4, 3, 2), 1), ((300, 64, 3), 1), ((5, 12, 9, 3), 8)],
    ids=["per-sample", "per-sample-narrow", "per-sample-blocked", "minibatch"],
)
def test_compiled_engine_equals_twin_and_the_slope_counts(widths, batch, dtype, rng):
    X, Y = _data(rng, widths=widths)
    preds = {}
    for slope in (0.0, 0.3):
        runs = []
        for backend in BACKENDS:
            net = _net(slope, dtype, backend, widths)
            net.fit(X, Y, epochs=3, batch_size=batch, learning_rate=0.01, shuffle=True)
            runs.append((net.params.copy(), net.predict(X)))
        (p_numba, y_numba), (p_numpy, y_numpy) = runs
        tol = 2e-4 if dtype == np.float32 else 1e-11
        np.testing.assert_allclose(p_numba, p_numpy, rtol=tol, atol=tol)
        np.testing.assert_allclose(y_numba, y_numpy, rtol=tol, atol=tol)
        preds[slope] = y_numba
    # The slope reaches the kernels: a different slope trains a different network.
    assert np.abs(preds[0.0] - preds[0.3]).max() > 1e-3


def test_initial_weights_are_he_as_before_a_relu():
    leaky = fn.Network([fn.Dense(6, 5), LeakyReLU(), fn.Dense(5, 2)], seed=3)
    relu = fn.Network([fn.Dense(6, 5), fn.ReLU(), fn.Dense(5, 2)], seed=3)
    np.testing.assert_array_equal(leaky.params, relu.params)


# -- PyTorch -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_matches_torch(backend, dtype, rng):
    torch = pytest.importorskip("torch")
    x = rng.uniform(-3, 3, (7, 5)).astype(dtype)
    g = rng.uniform(-1, 1, x.shape).astype(dtype)
    layer = LeakyReLU(0.15, dtype=dtype, backend=backend)
    t = torch.tensor(x, requires_grad=True)
    out = torch.nn.LeakyReLU(0.15)(t)
    out.backward(torch.tensor(g))
    np.testing.assert_array_equal(layer.forward(x), out.detach().numpy())
    np.testing.assert_array_equal(layer.backward(g, 0.1), t.grad.numpy())


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("backend", BACKENDS)
def test_training_matches_torch(backend, batch, rng):
    torch = pytest.importorskip("torch")
    X, Y = _data(rng, n=32)
    net = _net(0.2, backend=backend)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 12), torch.nn.LeakyReLU(0.2), torch.nn.Linear(12, 9),
        torch.nn.LeakyReLU(0.2), torch.nn.Linear(9, 3),
    ).double()  # fmt: skip
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for linear, (W, b) in zip(linears, net.dense_params(), strict=True):
            linear.weight.copy_(torch.tensor(W))
            linear.bias.copy_(torch.tensor(b))
    net.fit(X, Y, epochs=2, batch_size=batch, learning_rate=0.05)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    for _ in range(2):
        for start in range(0, len(X), batch):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(
                model(Xt[start : start + batch]), Yt[start : start + batch]
            )
            loss.backward()
            opt.step()
    for linear, (W, b) in zip(linears, net.dense_params(), strict=True):
        np.testing.assert_allclose(W, linear.weight.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, linear.bias.detach().numpy(), rtol=1e-10, atol=1e-12)


# -- saving and ONNX -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_save_and_load_keep_the_slope(tmp_path, dtype, rng):
    X, Y = _data(rng)
    net = _net(0.37, dtype)
    net.fit(X, Y, epochs=2, learning_rate=0.01)
    path = tmp_path / "leaky.npz"
    net.save(path)
    with np.load(path) as archive:
        meta = json.loads(archive["metadata"].tobytes())
    assert meta["layers"][1] == {"type": "LeakyReLU", "negative_slope": 0.37}
    loaded = fn.load(path)
    assert [layer.negative_slope for layer in loaded.layers[1::2]] == [0.37, 0.37]
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    # Training goes on alike.
    net.fit(X, Y, epochs=1, learning_rate=0.01)
    loaded.fit(X, Y, epochs=1, learning_rate=0.01)
    np.testing.assert_array_equal(loaded.params, net.params)


def _rewrite_layer(path, index, spec):
    """The model file at ``path`` with layer ``index`` replaced and the checksum
    recomputed, as a hostile writer would."""
    from fastnn import io

    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "metadata"}
        meta = json.loads(archive["metadata"].tobytes())
    meta["layers"][index] = spec
    meta["checksum"]["digest"] = io._checksum(meta, arrays)
    data = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, metadata=data, **arrays)


@pytest.mark.parametrize("slope", [-1.0, "0.1", None, [0.1], pytest.param(10**400, id="huge-int")])
def test_a_file_with_a_bad_slope_is_refused(tmp_path, slope):
    path = tmp_path / "bad.npz"
    _net(0.1).save(path)
    _rewrite_layer(path, 1, {"type": "LeakyReLU", "negative_slope": slope})
    with pytest.raises(ValueError, match=r"layers\[1\] is not a valid LeakyReLU layer"):
        fn.load(path)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_onnx_export_matches_predict(tmp_path, dtype, rng):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    X, Y = _data(rng)
    net = _net(0.1, dtype)  # 0.1 is not a float32: a float64 graph must keep it whole
    net.fit(X, Y, epochs=2, learning_rate=0.01)
    path = tmp_path / "leaky.onnx"
    net.to_onnx(path)
    model = onnx.load(str(path))
    assert [n.op_type for n in model.graph.node][:4] == ["Gemm", "PRelu", "Gemm", "PRelu"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"X": X.astype(dtype)})
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype
    np.testing.assert_allclose(out, net.predict(X), rtol=0, atol=tol)
