"""Central-difference checks, in float64, of every gradient fastnn computes.

Dense.backward applies its SGD step in place, so a parameter's gradient is recovered
from the step it took: (before - after) / learning_rate. The learning rate is a power
of two, which makes that division exact.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import fastnn as fn
from fastnn.comparisons import max_relative_difference

BACKENDS = ("numba", "numpy")
LR = 0.5
# Central differences err by O(h²)·f‴ from truncation and O(eps/h)·|f| from rounding;
# h = 1e-6 balances them near 1e-10 for functions of order one.
H = 1e-6
TOL = 1e-7


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = H) -> np.ndarray:
    """d f / d x by central differences, perturbing ``x`` in place (and restoring it)."""
    grad = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def check(measured, label: str, analytic, numeric) -> None:
    diff = measured(f"gradient check: {label}", max_relative_difference(analytic, numeric))
    assert diff <= TOL, f"{label}: relative difference {diff:.3e}"


# -- Dense --------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [False, True], ids=["sample", "batch"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_gradients(backend, batch, rng, measured):
    layer = fn.Dense(4, 3, backend=backend, seed=1)
    x = rng.uniform(-1, 1, (5, 4) if batch else 4)
    g = rng.uniform(-1, 1, (5, 3) if batch else 3)  # dC/dY of C = sum(g·Y)

    def cost() -> float:
        return float(np.sum(g * layer.forward(x)))

    num_x = numerical_gradient(cost, x)
    num_w = numerical_gradient(cost, layer.weights)
    num_b = numerical_gradient(cost, layer.bias)
    w0, b0 = layer.weights.copy(), layer.bias.copy()
    layer.forward(x)
    grad_in = layer.backward(g, LR)
    check(measured, "Dense dC/dX", grad_in, num_x)
    check(measured, "Dense dC/dW", (w0 - layer.weights) / LR, num_w)
    check(measured, "Dense dC/dB", (b0 - layer.bias) / LR, num_b)


# -- activations --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu", "identity"])
def test_activation_gradients(name, backend, rng, measured):
    act = fn.layers.ACTIVATIONS[name](backend=backend)
    # Away from ReLU's kink at 0, where no derivative exists; out to the tails too.
    x = rng.uniform(0.05, 4, (3, 5)) * rng.choice([-1, 1], (3, 5))
    g = rng.uniform(-1, 1, x.shape)
    act.forward(x)
    analytic = act.backward(g, LR)
    numeric = numerical_gradient(lambda: float(np.sum(g * act.forward(x))), x)
    check(measured, "activations", analytic, numeric)


# -- losses -------------------------------------------------------------------------


def _targets(loss: str, shape, rng) -> np.ndarray:
    if loss == "mse":
        return rng.uniform(-2, 2, shape)
    if loss == "binary_cross_entropy":
        return rng.uniform(0, 1, shape)
    # One-hot rows, with one soft row in a batch: the prime handles both.
    k = shape[-1]
    y = np.eye(k)[rng.integers(0, k, shape[:-1] or None)]
    if y.ndim == 2:
        y[0] = rng.dirichlet(np.ones(k))
    return y


@pytest.mark.parametrize("shape", [(4,), (1,), (6, 3), (5, 1)], ids=str)
@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy", "cross_entropy"])
def test_loss_primes(loss, shape, rng, measured):
    value = getattr(fn.losses, loss)
    prime = getattr(fn.losses, f"{loss}_prime")
    y = _targets(loss, shape, rng)
    z = rng.uniform(-3, 3, shape)
    numeric = numerical_gradient(lambda: value(y, z), z)
    check(measured, "loss primes", prime(y, z), numeric)


# -- whole networks -----------------------------------------------------------------

NETWORKS = {
    "mse": lambda: [fn.Dense(3, 5), fn.Tanh(), fn.Dense(5, 4), fn.ReLU(), fn.Dense(4, 2),
                    fn.Sigmoid()],
    "binary_cross_entropy": lambda: [fn.Dense(3, 5), fn.Sigmoid(), fn.Dense(5, 4), fn.ReLU(),
                                     fn.Dense(4, 2)],
    "cross_entropy": lambda: [fn.Dense(3, 5), fn.ReLU(), fn.Dense(5, 4), fn.Tanh(),
                              fn.Dense(4, 2)],
}  # fmt: skip


def _network(loss: str, backend: str = "numba") -> fn.Network:
    return fn.Network(NETWORKS[loss](), loss=loss, backend=backend, seed=3)


def _data(loss: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(-1.5, 1.5, (n, 3)), _targets(loss, (n, 2), rng)


def _numeric_network_gradient(net: fn.Network, X, Y) -> np.ndarray:
    return numerical_gradient(lambda: net.evaluate(X, Y), net.params)


def _assert_relus_away_from_kinks(net: fn.Network, X) -> None:
    # A pre-activation within h of 0 would make the central difference meaningless.
    out = X
    for layer in net.layers:
        if isinstance(layer, fn.ReLU):
            assert np.abs(out).min() > 1e3 * H
        out = layer.forward(out)


@pytest.mark.parametrize("loss", sorted(NETWORKS))
def test_network_gradient_by_layers(loss, rng, measured):
    # The design's loop on one sample: every layer's backward steps by LR·gradient.
    net = _network(loss)
    X, Y = _data(loss, 1, rng)
    _assert_relus_away_from_kinks(net, X)
    numeric = _numeric_network_gradient(net, X, Y)
    start = net.params.copy()
    out = X[0]
    for layer in net.layers:
        out = layer.forward(out)
    grad = getattr(fn.losses, f"{loss}_prime")(Y[0], out)
    for layer in reversed(net.layers):
        grad = layer.backward(grad, LR)
    check(measured, "network (layer by layer)", (start - net.params) / LR, numeric)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", sorted(NETWORKS))
def test_network_gradient_by_fit(loss, backend, rng, measured):
    net = _network(loss, backend)
    X, Y = _data(loss, 1, rng)
    _assert_relus_away_from_kinks(net, X)
    numeric = _numeric_network_gradient(net, X, Y)
    start = net.params.copy()
    net.fit(X, Y, epochs=1, learning_rate=LR)
    check(measured, "network (per-sample fit)", (start - net.params) / LR, numeric)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", sorted(NETWORKS))
def test_network_gradient_of_a_minibatch(loss, backend, rng, measured):
    # One batch of all the samples: the step follows the gradient of the mean loss.
    net = _network(loss, backend)
    X, Y = _data(loss, 7, rng)
    _assert_relus_away_from_kinks(net, X)
    numeric = _numeric_network_gradient(net, X, Y)
    start = net.params.copy()
    net.fit(X, Y, epochs=1, learning_rate=LR, batch_size=len(X))
    check(measured, "network (one minibatch)", (start - net.params) / LR, numeric)
