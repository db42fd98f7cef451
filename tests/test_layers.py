"""The layers of the classic design, one at a time: Dense and the activations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import fastnn as fn
from fastnn.comparisons import max_relative_difference

BACKENDS = ("numba", "numpy")


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_sgd_step_by_hand(backend):
    # Dense 2→1, Y = W·X + B, with MSE against y = 1 and learning rate 0.1.
    layer = fn.Dense(2, 1, backend=backend)
    layer.weights[...] = [[0.5, -0.25]]
    layer.bias[...] = [0.1]
    x, y, lr = np.array([1.0, 2.0]), np.array([1.0]), 0.1

    z = layer.forward(x)
    # z = 0.5·1 + (-0.25)·2 + 0.1 = 0.1
    z_hand = 0.5 * 1.0 + (-0.25) * 2.0 + 0.1
    assert z[0] == pytest.approx(z_hand, rel=1e-15)

    g = fn.losses.mse_prime(y, z)
    # dC/dz = 2(z - y)/n_outputs = 2·(0.1 - 1)/1 = -1.8
    g_hand = 2 * (z_hand - 1.0) / 1
    assert g[0] == pytest.approx(g_hand, rel=1e-15)

    grad_in = layer.backward(g, lr)
    # dC/dX = Wᵀ·g with the weights forward used = [0.5·(-1.8), -0.25·(-1.8)] = [-0.9, 0.45]
    np.testing.assert_allclose(grad_in, [0.5 * g_hand, -0.25 * g_hand], rtol=1e-15)
    # W -= lr·g·xᵀ: [0.5 - 0.1·(-1.8)·1, -0.25 - 0.1·(-1.8)·2] = [0.68, 0.11]
    np.testing.assert_allclose(
        layer.weights, [[0.5 - lr * g_hand * 1.0, -0.25 - lr * g_hand * 2.0]], rtol=1e-15
    )
    # B -= lr·g: 0.1 - 0.1·(-1.8) = 0.28
    np.testing.assert_allclose(layer.bias, [0.1 - lr * g_hand], rtol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_forward_and_backward_sum_the_samples(backend, rng):
    # A batch's backward steps by the sum of the samples' gradients, all taken at the
    # starting weights; its forward is the per-sample forward row by row.
    layer = fn.Dense(3, 2, backend=backend, seed=0)
    X, G = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (4, 2))
    W, b = layer.weights.copy(), layer.bias.copy()
    rows = np.array([layer.forward(x) for x in X])
    np.testing.assert_allclose(layer.forward(X), rows, rtol=1e-14)
    grad_in = layer.backward(G, 0.5)
    np.testing.assert_allclose(grad_in, np.array([W.T @ g for g in G]), rtol=1e-14)
    step = sum(np.outer(g, x) for g, x in zip(G, X, strict=True))
    np.testing.assert_allclose(layer.weights, W - 0.5 * step, rtol=1e-14)
    np.testing.assert_allclose(layer.bias, b - 0.5 * G.sum(axis=0), rtol=1e-14)


def test_dense_shapes_follow_torch_linear():
    layer = fn.Dense(5, 3)
    assert layer.weights.shape == (3, 5)
    assert layer.bias.shape == (3,)
    assert layer.n_params == 3 * 5 + 3


def test_dense_weights_are_views_into_one_buffer():
    layer = fn.Dense(4, 2)
    buffer = np.zeros(layer.n_params)
    layer.bind(buffer)
    assert np.shares_memory(layer.weights, buffer) and np.shares_memory(layer.bias, buffer)
    buffer[:] = np.arange(layer.n_params)
    np.testing.assert_array_equal(layer.weights, np.arange(8).reshape(2, 4))
    np.testing.assert_array_equal(layer.bias, [8, 9])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", [fn.Tanh, fn.Sigmoid, fn.ReLU, fn.Identity])
def test_activation_layers(act, backend, rng):
    layer = act(backend=backend)
    x = rng.uniform(-3, 3, (4, 5))
    g = rng.uniform(-1, 1, x.shape)
    f, fprime = {
        fn.Tanh: (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
        fn.Sigmoid: (lambda x: 1 / (1 + np.exp(-x)), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
        fn.ReLU: (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
        fn.Identity: (lambda x: x, np.ones_like),
    }[act]
    np.testing.assert_allclose(layer.forward(x), f(x), rtol=1e-14, atol=1e-15)
    # backward multiplies the gradient by f′(X) and leaves the layer unchanged
    np.testing.assert_allclose(layer.backward(g, 0.1), g * fprime(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(layer.backward(g, 0.1), g * fprime(x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_layers_stay_float32(backend, rng):
    x = rng.uniform(-1, 1, (3, 4))  # float64 input: converted once, at the boundary
    for layer in (
        fn.Dense(4, 4, dtype=np.float32, backend=backend),
        fn.Tanh(dtype=np.float32, backend=backend),
    ):
        assert layer.dtype == np.float32
        for batch in (x, x[0]):
            y = layer.forward(batch)
            assert y.dtype == np.float32
            assert layer.backward(np.ones_like(y, dtype=np.float64), 0.1).dtype == np.float32
    assert fn.Dense(4, 4, dtype=np.float32).weights.dtype == np.float32


# -- initialisers -------------------------------------------------------------------

N_IN, N_OUT = 400, 300  # 120,000 weights: sample statistics within about 1%
GLOROT = np.sqrt(6 / (N_IN + N_OUT))
HE_UNIFORM = np.sqrt(6 / N_IN)
# scheme -> scipy.stats distribution and its (loc, scale)
SCHEMES = {
    None: ("uniform", (-GLOROT, 2 * GLOROT)),  # the default: Xavier/Glorot uniform
    "xavier": ("uniform", (-GLOROT, 2 * GLOROT)),
    "he": ("norm", (0, np.sqrt(2 / N_IN))),
    "he_uniform": ("uniform", (-HE_UNIFORM, 2 * HE_UNIFORM)),
    "xavier_normal": ("norm", (0, np.sqrt(2 / (N_IN + N_OUT)))),
    "lecun": ("norm", (0, np.sqrt(1 / N_IN))),
}


def _ks_pvalue(weights: np.ndarray, dist: str, args) -> float:
    return float(stats.kstest(weights.ravel(), dist, args=args).pvalue)


@pytest.mark.parametrize("init", list(SCHEMES), ids=str)
def test_initializer_statistics(init):
    layer = fn.Dense(N_IN, N_OUT, init=init, seed=5)
    dist, args = SCHEMES[init]
    # The drawn weights fit the scheme's distribution (Kolmogorov-Smirnov) ...
    assert _ks_pvalue(layer.weights, dist, args) > 1e-3
    # ... and no other scheme's: the test tells them apart.
    for other, (other_dist, other_args) in SCHEMES.items():
        if (other_dist, other_args) != (dist, args):
            assert _ks_pvalue(layer.weights, other_dist, other_args) < 1e-6, other
    np.testing.assert_array_equal(layer.bias, 0)


def test_zeros_initializer():
    layer = fn.Dense(3, 2, init="zeros")
    np.testing.assert_array_equal(layer.weights, 0)
    np.testing.assert_array_equal(layer.bias, 0)


def test_stand_alone_layer_seed():
    a, b, c = fn.Dense(6, 5, seed=1), fn.Dense(6, 5, seed=1), fn.Dense(6, 5, seed=2)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert max_relative_difference(a.weights, c.weights) > 0.1
