"""Bad input raises a ValueError or TypeError that says what to fix, before anything
changes; a diverging run stops with TrainingDivergedError and finite weights."""

from __future__ import annotations

import re

import numpy as np
import pytest

import fastnn as fn
from fastnn.layers import activation

BACKENDS = ("numba", "numpy")


def _net(backend="numba") -> fn.Network:
    return fn.Network([fn.Dense(3, 4), fn.Tanh(), fn.Dense(4, 2)], backend=backend, seed=0)


def _data(n=10):
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (n, 3)), rng.uniform(-1, 1, (n, 2))


def _with(array: np.ndarray, index, value) -> np.ndarray:
    out = array.astype(float)
    out[index] = value
    return out


X, Y = _data()

# name -> (call on (net, X, Y), exception type, a word the message must contain)
FIT_CASES = {
    "wrong feature count": (lambda n, X, Y: n.fit(X[:, :2], Y), ValueError, "features"),
    "wrong target count": (lambda n, X, Y: n.fit(X, Y[:, :1]), ValueError, "targets"),
    "X and Y lengths differ": (lambda n, X, Y: n.fit(X, Y[:-1]), ValueError, "samples"),
    "NaN in X": (lambda n, X, Y: n.fit(_with(X, (3, 1), np.nan), Y), ValueError, "NaN"),
    "inf in X": (lambda n, X, Y: n.fit(_with(X, (0, 0), np.inf), Y), ValueError, "inf"),
    "-inf in X": (lambda n, X, Y: n.fit(_with(X, (9, 2), -np.inf), Y), ValueError, "inf"),
    "NaN in Y": (lambda n, X, Y: n.fit(X, _with(Y, (5, 0), np.nan)), ValueError, "NaN"),
    "inf in Y": (lambda n, X, Y: n.fit(X, _with(Y, (2, 1), np.inf)), ValueError, "inf"),
    "complex X": (lambda n, X, Y: n.fit(X + 1j, Y), TypeError, "complex"),
    "complex Y": (lambda n, X, Y: n.fit(X, Y.astype(complex)), TypeError, "complex"),
    "object X": (lambda n, X, Y: n.fit(X.astype(object), Y), TypeError, "numeric"),
    "string X": (lambda n, X, Y: n.fit(X.astype(str), Y), TypeError, "numeric"),
    "string Y": (lambda n, X, Y: n.fit(X, Y.astype(str)), TypeError, "numeric"),
    "empty X and Y": (lambda n, X, Y: n.fit(X[:0], Y[:0]), ValueError, "empty"),
    "3-D X": (lambda n, X, Y: n.fit(X[None], Y), ValueError, "dimensions"),
    "learning rate 0": (lambda n, X, Y: n.fit(X, Y, learning_rate=0), ValueError, "learning_rate"),
    "negative learning rate": (
        lambda n, X, Y: n.fit(X, Y, learning_rate=-0.1), ValueError, "learning_rate"),
    "NaN learning rate": (
        lambda n, X, Y: n.fit(X, Y, learning_rate=np.nan), ValueError, "learning_rate"),
    "inf learning rate": (
        lambda n, X, Y: n.fit(X, Y, learning_rate=np.inf), ValueError, "learning_rate"),
    "string learning rate": (
        lambda n, X, Y: n.fit(X, Y, learning_rate="0.1"), TypeError, "learning_rate"),
    "epochs 0": (lambda n, X, Y: n.fit(X, Y, epochs=0), ValueError, "epochs"),
    "negative epochs": (lambda n, X, Y: n.fit(X, Y, epochs=-3), ValueError, "epochs"),
    "float epochs": (lambda n, X, Y: n.fit(X, Y, epochs=2.5), TypeError, "epochs"),
    "string epochs": (lambda n, X, Y: n.fit(X, Y, epochs="3"), TypeError, "epochs"),
    "bool epochs": (lambda n, X, Y: n.fit(X, Y, epochs=True), TypeError, "epochs"),
    "bad validation data": (
        lambda n, X, Y: n.fit(X, Y, validation_data=(X[:, :2], Y)), ValueError, "features"),
    "NaN in validation data": (
        lambda n, X, Y: n.fit(X, Y, validation_data=(_with(X, 0, np.nan), Y)), ValueError, "NaN"),
    "predict: wrong feature count": (lambda n, X, Y: n.predict(X[:, :1]), ValueError, "features"),
    "predict: NaN": (lambda n, X, Y: n.predict(_with(X, (1, 1), np.nan)), ValueError, "NaN"),
    "predict: strings": (lambda n, X, Y: n.predict(X.astype(str)), TypeError, "numeric"),
    "evaluate: lengths differ": (lambda n, X, Y: n.evaluate(X[:4], Y), ValueError, "samples"),
}  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_bad_call_raises_and_changes_nothing(case, backend):
    call, error, word = FIT_CASES[case]
    net = _net(backend)
    before = net.params.copy()
    with pytest.raises(error, match=re.escape(word)):
        call(net, X, Y)
    np.testing.assert_array_equal(net.params, before)
    # The network still works afterwards.
    net.fit(X, Y, epochs=1)
    assert not np.array_equal(net.params, before)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", [0, 255, 256, 700, 1199])
def test_predict_finds_a_non_finite_value_in_any_block(row, value, threads, backend):
    # predict's kernels check X block by block as they read it (across threads too):
    # the value must be reported wherever it lies, with its index.
    from fastnn.network import PREDICT_BLOCK

    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (1200, 3))
    assert X.shape[0] > 4 * PREDICT_BLOCK
    net = fn.Network([fn.Dense(3, 4), fn.ReLU(), fn.Dense(4, 2)], backend=backend,
                     threads=threads, seed=0)  # fmt: skip
    expected = net.predict(X)
    X[row, 2] = value
    with pytest.raises(ValueError, match=re.escape(f"(first at index ({row}, 2))")):
        net.predict(X)
    X[row, 2] = 0.5
    np.testing.assert_array_equal(net.predict(X)[row + 1 :], expected[row + 1 :])


def test_bad_integer_labels():
    net = fn.Network([fn.Dense(3, 4), fn.Tanh(), fn.Dense(4, 2)], loss="cross_entropy")
    before = net.params.copy()
    with pytest.raises(ValueError, match="labels"):
        net.fit(X, np.array([0, 1, 2, 0, 1, 0, 1, 0, 1, 0]))  # 2 is not a class of 2
    with pytest.raises(ValueError, match="labels"):
        net.fit(X, -np.ones(10, dtype=int))
    np.testing.assert_array_equal(net.params, before)


def _dense_pair():
    a, b = fn.Dense(2, 3, seed=1), fn.Dense(3, 1, seed=2)
    return [a, fn.Tanh(), b]


# name -> (build from a list of layers, exception type, a word the message must contain)
BUILD_CASES = {
    "sizes don't chain": (
        lambda layers: fn.Network([*layers, fn.Dense(4, 1)]), ValueError, "chain"),
    "unknown loss": (lambda layers: fn.Network(layers, loss="hinge"), ValueError, "unknown loss"),
    "loss not a string": (lambda layers: fn.Network(layers, loss=None), ValueError, "loss"),
    "unknown backend": (lambda layers: fn.Network(layers, backend="jax"), ValueError, "backend"),
    "integer dtype": (lambda layers: fn.Network(layers, dtype=np.int32), TypeError, "dtype"),
    "float16 dtype": (lambda layers: fn.Network(layers, dtype=np.float16), TypeError, "dtype"),
    "not a layer": (lambda layers: fn.Network([*layers, np.tanh]), TypeError, "not a fastnn layer"),
    "no layers": (lambda layers: fn.Network([]), ValueError, "at least one layer"),
    "no Dense layer": (lambda layers: fn.Network([fn.Tanh()]), ValueError, "Dense"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BUILD_CASES))
def test_bad_network_raises_and_leaves_its_layers_alone(case):
    build, error, word = BUILD_CASES[case]
    layers = _dense_pair()
    before = [(layer.weights.copy(), layer.weights.base) for layer in layers[::2]]
    with pytest.raises(error, match=re.escape(word)):
        build(layers)
    for layer, (weights, base) in zip(layers[::2], before, strict=True):
        np.testing.assert_array_equal(layer.weights, weights)
        assert layer.weights.base is base  # not rebound into a new network's buffer


@pytest.mark.parametrize(
    ("make", "error", "word"),
    [
        (lambda: activation("swish"), ValueError, "unknown activation"),
        (lambda: fn.Dense(2, 3, init="glorot"), ValueError, "unknown init"),
        (lambda: fn.Dense(0, 3), ValueError, "input_size"),
        (lambda: fn.Dense(2, -1), ValueError, "output_size"),
        (lambda: fn.Dense(2.0, 3), TypeError, "input_size"),
        (lambda: fn.Dense(2, 3, dtype="int64"), TypeError, "dtype"),
        (lambda: fn.Dense(2, 3, backend="cuda"), ValueError, "backend"),
        (lambda: fn.Tanh(backend="torch"), ValueError, "backend"),
    ],
    ids=["activation", "init", "zero width", "negative width", "float width", "dtype",
         "dense backend", "activation backend"],
)  # fmt: skip
def test_bad_layer(make, error, word):
    with pytest.raises(error, match=re.escape(word)):
        make()
    assert activation("relu").name == "relu"  # known names still resolve


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_misuse(backend):
    layer = fn.Dense(3, 2, backend=backend, seed=0)
    before = layer.weights.copy()
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones(2), 0.1)
    with pytest.raises(ValueError, match="shape"):
        layer.forward(np.ones(4))
    layer.forward(np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones(3), 0.1)
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones((2, 2)), 0.1)  # forward saw one sample
    np.testing.assert_array_equal(layer.weights, before)


# -- diverging runs -----------------------------------------------------------------


def _diverging(backend):
    # Unscaled data and too large a learning rate on a linear output: the weights
    # grow without bound and the loss overflows to inf within a few epochs.
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 10, (20, 3))
    Y = rng.uniform(0, 10, (20, 2))
    net = fn.Network([fn.Dense(3, 4), fn.Identity(), fn.Dense(4, 2)], backend=backend, seed=0)
    # A few sane epochs first, so the weights to restore are not the initial ones.
    net.fit(X, Y, epochs=2, learning_rate=1e-3)
    return net, X, Y


# Per-sample SGD blows up within its first epoch; a minibatch of 4 takes a few epochs.
DIVERGING_RATES = {1: 0.05, 4: 0.017}


@pytest.mark.parametrize("batch_size", sorted(DIVERGING_RATES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_diverging_run_raises_and_restores_the_epoch(backend, batch_size):
    lr = DIVERGING_RATES[batch_size]
    net, X, Y = _diverging(backend)
    with pytest.raises(fn.TrainingDivergedError, match=r"epoch \d+") as info:
        net.fit(X, Y, epochs=100, learning_rate=lr, batch_size=batch_size)
    assert "learning_rate" in str(info.value)
    assert np.isfinite(net.params).all()
    # The weights are those at the start of the epoch that diverged: the same
    # network trained for the epochs before it.
    epoch = int(re.search(r"epoch (\d+)", str(info.value)).group(1))
    twin, _, _ = _diverging(backend)
    if epoch > 1:
        twin.fit(X, Y, epochs=epoch - 1, learning_rate=lr, batch_size=batch_size)
    np.testing.assert_array_equal(net.params, twin.params)
