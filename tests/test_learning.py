"""fastnn learns: the design's XOR example and scikit-learn's bundled digits."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fn

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float64)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_xor(backend):
    # The design's example: 2-3-1, tanh, MSE, learning rate 0.1, 1000 epochs.
    net = fn.Network(
        [fn.Dense(2, 3), fn.Tanh(), fn.Dense(3, 1), fn.Tanh()],
        loss="mse",
        backend=backend,
        seed=0,
    )
    start = net.evaluate(XOR_X, XOR_Y)
    history = net.fit(XOR_X, XOR_Y, epochs=1000, learning_rate=0.1, batch_size=1, shuffle=True)
    np.testing.assert_array_equal(net.predict(XOR_X).round(), XOR_Y)
    assert history["loss"][-1] < start / 10


def test_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = datasets.load_digits(return_X_y=True)  # bundled with scikit-learn: no download
    X = X / 16.0  # pixel intensities 0..16 -> [0, 1]
    X_train, X_test, y_train, y_test = model_selection.train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    net = fn.Network([fn.Dense(64, 64), fn.Tanh(), fn.Dense(64, 10)], loss="cross_entropy", seed=0)
    history = net.fit(X_train, y_train, epochs=30, learning_rate=0.1, batch_size=1, shuffle=True)
    accuracy = float((net.predict(X_test).argmax(axis=1) == y_test).mean())
    assert accuracy >= 0.97, f"test accuracy {accuracy:.4f}"
    assert history["loss"][-1] < history["loss"][0] / 10
