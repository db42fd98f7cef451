"""A layer belongs to one network, and every view of a parameter reads its one buffer."""

from __future__ import annotations

import copy
import gc
import pickle

import numpy as np
import pytest

import fastnn as fn

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([[0], [1], [1], [0]], dtype=np.float64)


def _layers():
    return [fn.Dense(2, 3), fn.Tanh(), fn.Dense(3, 1)]


def test_layers_of_a_live_network_are_refused_before_anything_changes():
    layers = _layers()
    a = fn.Network(layers, seed=0)
    params = a.params.copy()
    with pytest.raises(ValueError, match=r"layers\[0\].*already belongs.*copy\.deepcopy"):
        fn.Network(layers, seed=1)
    # a is untouched: its layers still view its own buffer, with its own weights.
    assert np.array_equal(a.params, params)
    assert np.shares_memory(a.layers[0].weights, a.params)
    out = X
    for layer in a.layers:
        out = layer.forward(out)
    # Equal to rounding: predict sums in input order with fused multiply-adds, the
    # layers through BLAS; b's weights would be off by far more.
    np.testing.assert_allclose(out, a.predict(X), rtol=1e-12, atol=1e-15)


def test_one_layer_twice_in_a_network_is_refused():
    dense = fn.Dense(3, 3)
    with pytest.raises(ValueError, match=r"layers\[0\] and layers\[2\] are the same"):
        fn.Network([dense, fn.Tanh(), dense])


def test_deep_copies_and_layers_of_a_dead_network_build_new_networks():
    layers = _layers()
    a = fn.Network(layers, seed=0)
    b = fn.Network(copy.deepcopy(layers), seed=1)
    assert not np.shares_memory(a.params, b.params)
    assert not np.array_equal(a.params, b.params)
    for net in (a, b):  # each network's layers view its own buffer
        assert all(np.shares_memory(d.weights, net.params) for d in net.dense_layers)
    del a
    gc.collect()
    c = fn.Network(layers, seed=2)
    assert np.shares_memory(c.layers[0].weights, c.params)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "save"])
def test_copied_and_loaded_networks_own_their_layers(how, tmp_path):
    net = fn.Network(_layers(), seed=0)
    net.fit(X, Y, epochs=20, learning_rate=0.1)
    if how == "pickle":
        again = pickle.loads(pickle.dumps(net))
    elif how == "deepcopy":
        again = copy.deepcopy(net)
    else:
        net.save(tmp_path / "m.npz")
        again = fn.load(tmp_path / "m.npz")
    assert np.array_equal(again.predict(X), net.predict(X))
    assert all(np.shares_memory(d.weights, again.params) for d in again.dense_layers)
    # The copy's layers are its own: a network of the original's layers is refused,
    # while the copy trains without touching the original.
    before = net.params.copy()
    again.fit(X, Y, epochs=5, learning_rate=0.1)
    assert np.array_equal(net.params, before)
    with pytest.raises(ValueError, match="already belongs"):
        fn.Network(again.layers)


def test_params_has_one_home():
    net = fn.Network(_layers(), seed=0)
    buffer = net.params
    new = np.arange(net.params.size, dtype=np.float64) / 10
    net.params = new  # copies into the buffer the layers view
    assert net.params is buffer
    assert np.array_equal(net.layers[0].weights.ravel(), new[:6])
    with pytest.raises(ValueError, match="13 values"):
        net.params = np.zeros(5)


@pytest.mark.filterwarnings("ignore:Stochastic optimizer")
def test_views_export_and_save_read_the_networks_buffer(tmp_path):
    from fastnn.sklearn import FastMLPRegressor

    rng = np.random.default_rng(0)
    Xr, yr = rng.normal(size=(30, 3)), rng.normal(size=30)
    est = FastMLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(Xr, yr)
    net = est.network_
    # Assigning a layer's weights writes into the buffer, which every view reads.
    net.layers[0].weights = np.zeros((4, 3))
    assert not net.params[:12].any()
    assert np.shares_memory(est.coefs_[0], net.params)
    assert not est.coefs_[0].any()
    assert np.ptp(est.predict(Xr)) == 0  # the first layer no longer sees X
    net.save(tmp_path / "m.npz")
    assert np.array_equal(fn.load(tmp_path / "m.npz").params, net.params)
