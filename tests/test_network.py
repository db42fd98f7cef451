"""The Network: fit against the design's loop and the NumPy twin, seeds, dtypes, predict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import fastnn as fn
from fastnn.comparisons import max_relative_difference

BACKENDS = ("numba", "numpy")
LOSSES = ("mse", "binary_cross_entropy", "cross_entropy")


def _layers(loss: str) -> list:
    # 4-6-5-3: tanh and sigmoid hidden layers; logits out for the cross-entropies.
    hidden = [fn.Dense(4, 6), fn.Tanh(), fn.Dense(6, 5), fn.Sigmoid(), fn.Dense(5, 3)]
    return [*hidden, fn.Tanh()] if loss == "mse" else hidden


def _net(loss="mse", backend="numba", dtype=np.float64, seed=0) -> fn.Network:
    return fn.Network(_layers(loss), loss=loss, dtype=dtype, backend=backend, seed=seed)


def _data(loss: str, n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 4))
    if loss == "cross_entropy":
        return X, np.eye(3)[rng.integers(0, 3, n)]
    if loss == "binary_cross_entropy":
        return X, rng.integers(0, 2, (n, 3)).astype(float)
    return X, rng.uniform(-0.8, 0.8, (n, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_step_of_a_2_2_1_network_by_hand(backend):
    net = fn.Network(
        [fn.Dense(2, 2), fn.Tanh(), fn.Dense(2, 1)], loss="mse", backend=backend, seed=0
    )
    W1, b1, W2, b2 = [[0.1, -0.2], [0.3, 0.4]], [0.05, -0.05], [[0.5, -0.6]], [0.2]
    net.layers[0].weights[...], net.layers[0].bias[...] = W1, b1
    net.layers[2].weights[...], net.layers[2].bias[...] = W2, b2
    x1, x2, y, lr = 1.0, 0.5, 0.25, 0.1

    # forward: z = W1·x + b1, a = tanh(z), out = W2·a + b2
    z1 = 0.1 * x1 - 0.2 * x2 + 0.05  # 0.1 - 0.1 + 0.05 = 0.05
    z2 = 0.3 * x1 + 0.4 * x2 - 0.05  # 0.3 + 0.2 - 0.05 = 0.45
    a1, a2 = math.tanh(z1), math.tanh(z2)  # ≈ 0.04996, 0.42190
    out = 0.5 * a1 - 0.6 * a2 + 0.2  # ≈ 0.02498 - 0.25314 + 0.2 = -0.02816
    # backward: MSE' = 2(out - y)/1 ≈ -0.55632
    g = 2 * (out - y)
    # output layer: dW2 = g·aᵀ, db2 = g; its input gradient W2ᵀ·g uses the old W2
    da1, da2 = 0.5 * g, -0.6 * g
    # tanh: multiply by 1 - a²
    dz1, dz2 = da1 * (1 - a1 * a1), da2 * (1 - a2 * a2)
    # first layer: dW1 = dz·xᵀ, db1 = dz
    expected = [
        [0.1 - lr * dz1 * x1, -0.2 - lr * dz1 * x2, 0.3 - lr * dz2 * x1, 0.4 - lr * dz2 * x2],
        [0.05 - lr * dz1, -0.05 - lr * dz2],
        [0.5 - lr * g * a1, -0.6 - lr * g * a2],
        [0.2 - lr * g],
    ]
    history = net.fit([[x1, x2]], [[y]], epochs=1, learning_rate=lr)
    assert history["loss"] == [pytest.approx((out - y) ** 2, rel=1e-14)]
    np.testing.assert_allclose(net.params, np.concatenate(expected), rtol=1e-14)


@pytest.mark.parametrize("loss", LOSSES)
def test_fit_equals_the_design_loop(loss, measured):
    X, Y = _data(loss)
    net = _net(loss)
    prime = getattr(fn.losses, f"{loss}_prime")
    start = net.params.copy()
    for _ in range(2):
        for x, y in zip(X, Y, strict=True):
            out = x
            for layer in net.layers:
                out = layer.forward(out)
            grad = prime(y, out)
            for layer in reversed(net.layers):
                grad = layer.backward(grad, 0.1)
    by_layers = net.params.copy()
    net.params[:] = start
    net.fit(X, Y, epochs=2, learning_rate=0.1)
    diff = measured("fit vs design loop, float64", max_relative_difference(net.params, by_layers))
    assert diff <= 1e-12


@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_backends_end_with_the_same_weights(dtype, loss, batch_size, measured):
    X, Y = _data(loss)
    runs = []
    for backend in BACKENDS:
        net = _net(loss, backend, dtype, seed=7)
        hist = net.fit(X, Y, epochs=5, learning_rate=0.1, batch_size=batch_size, shuffle=True)
        runs.append((net.params, hist["loss"], net.predict(X)))
    (p_a, h_a, y_a), (p_b, h_b, y_b) = runs
    name = np.dtype(dtype).name
    # float32: both round every operation to 24 bits, in different orders, so the
    # runs drift apart by a few float32 epsilons per epoch.
    tol = 1e-10 if dtype == np.float64 else 1e-5
    diff = measured(f"numba vs numpy backend, {name}", max_relative_difference(p_a, p_b))
    assert diff <= tol
    assert max_relative_difference(h_a, h_b) <= tol
    assert max_relative_difference(y_a, y_b) <= tol


@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_end_to_end(backend, batch_size):
    X, Y = _data("cross_entropy")
    net = _net("cross_entropy", backend, np.float32)
    hist = net.fit(X, Y, epochs=3, batch_size=batch_size, validation_data=(X, Y))
    assert net.params.dtype == np.float32
    assert all(layer.weights.dtype == np.float32 for layer in net.dense_layers)
    assert net.predict(X).dtype == np.float32
    for key in ("loss", "val_loss"):
        assert all(isinstance(v, float) and math.isfinite(v) for v in hist[key])
    # The recorded validation loss is the float32 network's own loss.
    assert hist["val_loss"][-1] == pytest.approx(net.evaluate(X, Y), rel=1e-6)


def test_same_seed_same_start_for_float32_and_float64():
    # Initial weights are drawn in float64 and rounded once.
    p64, p32 = _net(dtype=np.float64).params, _net(dtype=np.float32).params
    np.testing.assert_array_equal(p32, p64.astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeds(backend):
    X, Y = _data("mse")

    def trained(seed):
        net = _net(backend=backend, seed=seed)
        start = net.params.copy()
        net.fit(X, Y, epochs=3, learning_rate=0.1, shuffle=True)
        return start, net.params

    (s1, p1), (s2, p2), (s3, p3) = trained(1), trained(1), trained(2)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(p1, p2)
    assert max_relative_difference(s1, s3) > 0.1
    assert max_relative_difference(p1, p3) > 0.1


def test_shuffle_draws_from_the_seed():
    # Same seed and start, visiting order is all that differs: shuffled runs differ
    # from an unshuffled one, and agree with each other.
    X, Y = _data("mse")
    results = []
    for shuffle in (False, True, True):
        net = _net(seed=4)
        net.fit(X, Y, epochs=2, learning_rate=0.1, shuffle=shuffle)
        results.append(net.params)
    np.testing.assert_array_equal(results[1], results[2])
    assert max_relative_difference(results[0], results[1]) > 1e-6


def test_dense_weights_are_views_into_params():
    X, Y = _data("mse")
    net = _net()
    net.fit(X, Y, epochs=1)
    offset = 0
    for layer in net.dense_layers:
        assert np.shares_memory(layer.weights, net.params)
        assert np.shares_memory(layer.bias, net.params)
        n_w = layer.weights.size
        np.testing.assert_array_equal(net.params[offset : offset + n_w], layer.weights.ravel())
        np.testing.assert_array_equal(
            net.params[offset + n_w : offset + layer.n_params], layer.bias
        )
        offset += layer.n_params
    assert offset == net.params.size
    net.params[:] = 0
    assert not net.dense_layers[0].weights.any()
    np.testing.assert_array_equal(net.predict(X), 0)  # tanh(0·x + 0)


def test_history():
    X, Y = _data("mse")
    net = _net()
    hist = net.fit(X, Y, epochs=4, learning_rate=0.05)
    assert list(hist) == ["loss"] and len(hist["loss"]) == 4
    hist = net.fit(X, Y, epochs=3, learning_rate=0.05, validation_data=(X[:10], Y[:10]))
    assert len(hist["loss"]) == len(hist["val_loss"]) == 3
    assert hist["val_loss"][-1] == pytest.approx(net.evaluate(X[:10], Y[:10]), rel=1e-12)
    # The epoch loss is the mean of the per-sample losses met during the epoch.
    net2 = _net()
    start = net2.params.copy()
    first = net2.fit(X[:1], Y[:1], epochs=1, learning_rate=0.05)["loss"][0]
    net2.params[:] = start
    assert first == pytest.approx(net2.evaluate(X[:1], Y[:1]), rel=1e-12)


def test_history_is_the_same_with_and_without_per_epoch_work(monkeypatch):
    # Without per-epoch work the epochs run in chunks of one kernel call each; with a
    # callback they run one at a time. Both histories and weights must agree.
    import fastnn.network

    monkeypatch.setattr(fastnn.network, "MAX_ORDER", 3 * 40)  # chunks of 3 epochs
    X, Y = _data("mse")
    X, Y = X[:40], Y[:40]
    whole, stepped = _net(), _net()
    seen = []
    h_whole = whole.fit(X, Y, epochs=7, learning_rate=0.05, shuffle=True)
    h_stepped = stepped.fit(
        X, Y, epochs=7, learning_rate=0.05, shuffle=True, callback=lambda e, h: seen.append(e)
    )
    assert seen == list(range(1, 8))
    assert len(h_whole["loss"]) == 7
    assert h_whole == h_stepped
    np.testing.assert_array_equal(whole.params, stepped.params)


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_labels_with_cross_entropy(backend):
    X, onehot = _data("cross_entropy")
    labels = onehot.argmax(axis=1)
    a, b = _net("cross_entropy", backend), _net("cross_entropy", backend)
    ha = a.fit(X, labels, epochs=2, shuffle=True)
    hb = b.fit(X, onehot, epochs=2, shuffle=True)
    np.testing.assert_array_equal(a.params, b.params)
    assert ha == hb
    assert a.evaluate(X, labels) == b.evaluate(X, onehot)


def test_he_before_relu_xavier_elsewhere():
    n_in, n_hidden = 300, 200
    net = fn.Network(
        [fn.Dense(n_in, n_hidden), fn.ReLU(), fn.Dense(n_hidden, n_hidden), fn.Tanh(),
         fn.Dense(n_hidden, 10, init="lecun")]
    )  # fmt: skip
    first, second, third = net.dense_layers
    he = stats.kstest(first.weights.ravel(), "norm", args=(0, np.sqrt(2 / n_in)))
    assert he.pvalue > 1e-3
    limit = np.sqrt(6 / (2 * n_hidden))
    xavier = stats.kstest(second.weights.ravel(), "uniform", args=(-limit, 2 * limit))
    assert xavier.pvalue > 1e-3
    assert np.abs(second.weights).max() <= limit
    lecun = stats.kstest(third.weights.ravel(), "norm", args=(0, np.sqrt(1 / n_hidden)))
    assert lecun.pvalue > 1e-3


def _logits(net: fn.Network, X: np.ndarray) -> np.ndarray:
    out = X
    for layer in net.layers:
        out = layer.forward(out)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", LOSSES)
def test_predict(loss, backend):
    X, Y = _data(loss)
    net = _net(loss, backend)
    net.fit(X, Y, epochs=2)
    P, Z = net.predict(X), _logits(net, X)
    assert P.shape == (len(X), 3)
    if loss == "cross_entropy":
        np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-14)
        expected = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    elif loss == "binary_cross_entropy":
        expected = 1 / (1 + np.exp(-Z))
    else:
        expected = Z
    if loss != "mse":
        assert ((P > 0) & (P < 1)).all()
    np.testing.assert_allclose(P, expected, rtol=1e-13, atol=1e-15)
    # One sample as a vector is one row.
    np.testing.assert_allclose(net.predict(X[0]), P[:1], rtol=1e-13)
