"""A diverging fit restores the weights and the optimizer's state to one moment."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fn
from fastnn.optimizers import Schedule

BACKENDS = ("numba", "numpy")
RNG = np.random.default_rng(5)
X = RNG.normal(size=(32, 4))
Y = RNG.normal(size=(32, 1))


class Explode(Schedule):
    """The base rate in the first epoch, then one that overflows the weights."""

    def __call__(self, base: float, epoch: int) -> float:
        return base if epoch == 0 else 1e200


def _state(net: fn.Network) -> tuple:
    opt = net.optimizer
    return net.params.copy(), {k: v.copy() for k, v in opt.state.items()}, opt.step


def _assert_same(a: tuple, b: tuple) -> None:
    assert np.array_equal(a[0], b[0])
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        assert np.array_equal(a[1][key], b[1][key]), key
    assert a[2] == b[2]


def _net(backend: str) -> fn.Network:
    return fn.Network([fn.Dense(4, 8), fn.Tanh(), fn.Dense(8, 1)], backend=backend, seed=0)


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_state_at_the_start_of_the_diverging_epoch_is_restored(backend, optimizer, tmp_path):
    net = _net(backend)
    net.fit(X, Y, epochs=2, learning_rate=0.01, batch_size=8, optimizer=optimizer)
    after_epoch = []

    def record(epoch, history):
        after_epoch.append(_state(net))

    with pytest.raises(fn.TrainingDivergedError, match="epoch 2"):
        net.fit(X, Y, epochs=3, learning_rate=0.01, batch_size=8, optimizer=optimizer,
                lr_schedule=Explode(), callback=record)  # fmt: skip
    assert len(after_epoch) == 1
    _assert_same(_state(net), after_epoch[0])
    # Training goes on from there, and so does a saved copy.
    net.save(tmp_path / "m.npz")
    again = fn.load(tmp_path / "m.npz")
    _assert_same(_state(again), after_epoch[0])
    for model in (net, again):
        model.fit(X, Y, epochs=2, learning_rate=1e-6, batch_size=8, optimizer=optimizer)
        assert np.isfinite(model.params).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_diverging_first_epoch_of_a_long_fit_leaves_the_state_as_it_was(backend):
    net = _net(backend)
    net.fit(X, Y, epochs=3, learning_rate=0.01, batch_size=8, optimizer="adam")
    before = _state(net)
    with pytest.raises(fn.TrainingDivergedError, match="epoch 1"):
        net.fit(X, Y, epochs=50, learning_rate=1e200, batch_size=8, optimizer="adam")
    _assert_same(_state(net), before)
    net.fit(X, Y, epochs=2, learning_rate=1e-6, batch_size=8, optimizer="adam")
    assert np.isfinite(net.params).all()
