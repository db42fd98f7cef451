"""The estimators' engine epochs against ``Network.fit`` on the shuffled rows."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import fastnn as fn
from fastnn.optimizers import SGD, Adam
from fastnn.sklearn.epochs import EngineEpochs


def _net(dtype, loss="cross_entropy"):
    layers = [fn.Dense(6, 8), fn.ReLU(), fn.Dense(8, 3)]
    return fn.Network(layers, loss=loss, dtype=dtype, seed=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("batch", "optimizer", "l2"),
    [(16, "adam", 1e-3), (1, "sgd", 0.0), (7, "sgd", 0.0)],
)
def test_engine_epochs_match_fit_on_the_gathered_rows(dtype, batch, optimizer, l2):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 6)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 50)]
    net = _net(dtype)
    twin = copy.deepcopy(net)
    make = (lambda: Adam()) if optimizer == "adam" else (lambda: SGD())
    opt, twin_opt = make(), make()
    epochs = EngineEpochs(net, X, Y, batch, l2)
    for _ in range(3):
        order = rng.permutation(50).astype(np.int64)
        with epochs.threads():
            loss = epochs.run(order, 0.05, opt)
        history = twin.fit(X[order], Y[order], epochs=1, learning_rate=0.05,
                           batch_size=batch, optimizer=twin_opt, l2=l2)  # fmt: skip
        assert loss == history["loss"][0]
        np.testing.assert_array_equal(net.params, twin.params)
    assert opt.step == twin_opt.step
    assert net.optimizer is opt


def test_engine_epoch_divergence_restores_the_epoch_start():
    X = np.ones((20, 6))
    Y = np.full((20, 3), 1e200)  # a squared error beyond any float
    net = _net(np.float64, loss="mse")
    start = net.params.copy()
    with pytest.raises(fn.TrainingDivergedError):
        EngineEpochs(net, X, Y, 5, 0.0).run(np.arange(20, dtype=np.int64), 0.1, SGD())
    np.testing.assert_array_equal(net.params, start)


def test_in_place_shuffle_draws_sklearn_utils_shuffle_permutations():
    # The estimators shuffle their row order in place each epoch; scikit-learn's
    # MLP draws its orders with sklearn.utils.shuffle from the same random state.
    from sklearn.utils import check_random_state, shuffle

    ours, theirs = check_random_state(3), check_random_state(3)
    order = np.arange(101, dtype=np.int64)
    expected = order.copy()
    for _ in range(5):
        ours.shuffle(order)
        expected = shuffle(expected, random_state=theirs)
        np.testing.assert_array_equal(order, expected)
