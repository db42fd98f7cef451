"""Property tests: on random small networks and data, the compiled engine and the
pure-NumPy twin train to the same weights, and everything stays finite."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastnn as fn
from fastnn.comparisons import max_relative_difference

LOSSES = ("mse", "binary_cross_entropy", "cross_entropy")
ACTIVATIONS = (None, "tanh", "sigmoid", "relu", "identity")
# The engine's reductions run in another order than NumPy's, a few ulps apart per
# step; over a few epochs of a small network that stays within 1e-15 of the largest
# weight. Inputs, targets and learning rates are bounded so that no run diverges.
TOL = 1e-12


@st.composite
def problems(draw):
    """A random architecture, loss, training settings and bounded data."""
    loss = draw(st.sampled_from(LOSSES))
    n_dense = draw(st.integers(1, 3))
    widths = draw(st.lists(st.integers(1, 6), min_size=n_dense + 1, max_size=n_dense + 1))
    acts = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=n_dense, max_size=n_dense))
    if loss != "mse":
        acts[-1] = None  # the cross-entropies take the last Dense layer's logits
    n = draw(st.integers(1, 12))
    values = st.floats(-1, 1, allow_nan=False, allow_infinity=False)
    X = draw(arrays(np.float64, (n, widths[0]), elements=values))
    k = widths[-1]
    if loss == "mse":
        Y = draw(arrays(np.float64, (n, k), elements=values))
    elif loss == "binary_cross_entropy":
        Y = draw(arrays(np.float64, (n, k), elements=st.floats(0, 1)))
    else:
        Y = np.eye(k)[draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))]
    fit = {
        "epochs": draw(st.integers(1, 3)),
        "learning_rate": draw(st.floats(1e-3, 0.05)),
        "batch_size": draw(st.sampled_from([1, 1, 3, n])),
        "shuffle": draw(st.booleans()),
    }
    seed = draw(st.integers(0, 2**32 - 1))
    return loss, widths, acts, X, Y, fit, seed


def _network(loss, widths, acts, backend, seed) -> fn.Network:
    layers = []
    for n_in, n_out, act in zip(widths, widths[1:], acts, strict=False):
        layers.append(fn.Dense(n_in, n_out))
        if act is not None:
            layers.append(fn.layers.ACTIVATIONS[act]())
    return fn.Network(layers, loss=loss, backend=backend, seed=seed)


@settings(max_examples=25, deadline=None)  # Numba compiles on its first call
@given(problems())
def test_backends_agree_and_stay_finite(measured, problem):
    loss, widths, acts, X, Y, fit, seed = problem
    results = []
    for backend in ("numba", "numpy"):
        net = _network(loss, widths, acts, backend, seed)
        hist = net.fit(X, Y, **fit)
        results.append((net.params, np.array(hist["loss"]), net.predict(X), net.evaluate(X, Y)))
    (p_a, h_a, y_a, e_a), (p_b, h_b, y_b, e_b) = results
    for value in (p_a, h_a, y_a, e_a):
        assert np.isfinite(value).all()
    assert len(h_a) == fit["epochs"]
    assert measured("properties: numba vs numpy", max_relative_difference(p_a, p_b)) <= TOL
    # Losses and predictions are of order one, except where training drove them to
    # near zero by cancellation: there the difference is measured against one.
    assert max_relative_difference(h_a, h_b, floor=1.0) <= TOL
    assert max_relative_difference(y_a, y_b, floor=1.0) <= TOL
    assert max_relative_difference(e_a, e_b, floor=1.0) <= TOL
    if loss != "mse":
        assert ((y_a >= 0) & (y_a <= 1)).all()
    if loss == "cross_entropy":
        np.testing.assert_allclose(y_a.sum(axis=1), 1, rtol=1e-12)
