"""The design's binary network, [..., Dense(k, 1), Sigmoid()] with binary cross-entropy:
the final Sigmoid and the loss run fused, in the stable from-logits form."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fn

BACKENDS = ("numba", "numpy")
RNG = np.random.default_rng(3)
X = RNG.uniform(-1, 1, (24, 3))
Y = (X.sum(axis=1, keepdims=True) > 0).astype(float)


def _pair(backend="numba", dtype=np.float64, seed=0):
    """The same network twice: ending in Sigmoid, and ending in its Dense (logits)."""
    fused = fn.Network(
        [fn.Dense(3, 4), fn.Tanh(), fn.Dense(4, 1), fn.Sigmoid()],
        loss="binary_cross_entropy", dtype=dtype, backend=backend, seed=seed,
    )  # fmt: skip
    logits = fn.Network(
        [fn.Dense(3, 4), fn.Tanh(), fn.Dense(4, 1)],
        loss="binary_cross_entropy", dtype=dtype, backend=backend, seed=seed,
    )  # fmt: skip
    return fused, logits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_size", [1, 8])
def test_trains_exactly_as_the_logit_network(backend, dtype, batch_size):
    fused, logits = _pair(backend, dtype)
    assert np.array_equal(fused.params, logits.params)
    opt = "sgd" if batch_size == 1 else "adam"
    h1 = fused.fit(X, Y, epochs=5, learning_rate=0.1, batch_size=batch_size, optimizer=opt)
    h2 = logits.fit(X, Y, epochs=5, learning_rate=0.1, batch_size=batch_size, optimizer=opt)
    assert h1 == h2
    assert np.array_equal(fused.params, logits.params)
    # predict gives probabilities, the sigmoid applied once.
    p = fused.predict(X)
    assert np.array_equal(p, logits.predict(X))
    assert ((p > 0) & (p < 1)).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_saturated_output_keeps_a_finite_loss_and_gradient(backend):
    fused, _ = _pair(backend)
    # Output logit 100 for every sample: W2 = 0, b2 = 100.
    fused.layers[2].weights[...] = 0
    fused.layers[2].bias[...] = 100
    zeros = np.zeros((len(X), 1))
    assert fused.evaluate(X, zeros) == pytest.approx(100, rel=1e-12)
    # One per-sample step on one sample: the bias moves by lr·(p − y) = lr·(1 − 0).
    fused.fit(X[:1], zeros[:1], epochs=1, learning_rate=0.5)
    assert fused.layers[2].bias[0] == pytest.approx(100 - 0.5, rel=1e-12)
    assert np.isfinite(fused.params).all()


def test_manual_loop_on_the_same_layers():
    fused, logits = _pair()
    # Forward through every layer, Sigmoid included, gives predict's probabilities.
    out = X
    for layer in fused.layers:
        out = layer.forward(out)
    np.testing.assert_allclose(out, fused.predict(X), rtol=1e-14, atol=0)
    # The stable step: stop at the logits, whose BCE gradient is p − y, and go back
    # from the last Dense layer. It matches fit's per-sample SGD bit for bit here.
    for x, y in zip(X, Y, strict=True):
        z = x
        for layer in fused.layers[:-1]:
            z = layer.forward(z)
        grad = fn.losses.binary_cross_entropy_prime(y, z)
        for layer in reversed(fused.layers[:-1]):
            grad = layer.backward(grad, 0.1)
    logits.fit(X, Y, epochs=1, learning_rate=0.1)
    np.testing.assert_allclose(fused.params, logits.params, rtol=1e-12, atol=1e-15)


def test_onnx_and_save_round_trip(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    fused, _ = _pair()
    fused.fit(X, Y, epochs=3, learning_rate=0.1, batch_size=4, optimizer="adam")
    fused.to_onnx(tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"X": X})
    np.testing.assert_allclose(out, fused.predict(X), rtol=0, atol=1e-12)
    fused.save(tmp_path / "m.npz")
    again = fn.load(tmp_path / "m.npz")
    assert isinstance(again.layers[-1], fn.Sigmoid)
    assert np.array_equal(again.predict(X), fused.predict(X))
    h1 = again.fit(X, Y, epochs=2, learning_rate=0.1, batch_size=4, optimizer="adam")
    h2 = fused.fit(X, Y, epochs=2, learning_rate=0.1, batch_size=4, optimizer="adam")
    assert h1 == h2
