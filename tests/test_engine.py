"""The compiled engine against the design's layer-by-layer loop and the NumPy twin."""

import numpy as np
import pytest

import fastnn as fn
import fastnn.network as network_module
import fastnn.plan as plan_module


def _data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)), np.eye(k)[rng.integers(0, k, n)]


def _big(backend="numba", dtype=np.float64, seed=0):
    # 200·100 first-layer weights: large enough for the blocked per-sample path.
    layers = [fn.Dense(200, 100), fn.Tanh(), fn.Dense(100, 10), fn.Sigmoid()]
    return fn.Network(layers, loss="mse", dtype=dtype, backend=backend, seed=seed)


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def test_blocked_path_is_selected_for_large_first_layers():
    assert plan_module.sgd_block(_big()._plan) > 1
    small = fn.Network([fn.Dense(2, 3), fn.Tanh(), fn.Dense(3, 1)])
    assert plan_module.sgd_block(small._plan) == 1


@pytest.mark.parametrize("shuffle", [False, True])
def test_blocked_sgd_matches_twin_and_fused(monkeypatch, shuffle):
    X, Y = _data(150, 200, 10)  # 150 is not a multiple of the block: a partial block
    blocked, twin = _big(), _big("numpy")
    h1 = blocked.fit(X, Y, epochs=2, learning_rate=0.05, shuffle=shuffle)
    h2 = twin.fit(X, Y, epochs=2, learning_rate=0.05, shuffle=shuffle)
    assert _rel(blocked.params, twin.params) < 1e-10
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-10)
    monkeypatch.setattr(plan_module, "SGD_BLOCK_MIN_WEIGHTS", 10**9)
    fused = _big()
    fused.fit(X, Y, epochs=2, learning_rate=0.05, shuffle=shuffle)
    assert _rel(blocked.params, fused.params) < 1e-10


def test_blocked_fit_equals_design_loop():
    X, Y = _data(70, 200, 10)
    net = _big()
    start = net.params.copy()
    for x, y in zip(X, Y, strict=True):
        out = x
        for layer in net.layers:
            out = layer.forward(out)
        grad = fn.losses.mse_prime(y, out)
        for layer in reversed(net.layers):
            grad = layer.backward(grad, 0.1)
    by_layers = net.params.copy()
    net.params[:] = start
    net.fit(X, Y, epochs=1, learning_rate=0.1)
    assert _rel(net.params, by_layers) < 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_stays_float32_in_every_path(dtype):
    X, Y = _data(80, 200, 10)
    for batch_size, optimizer in ((1, "sgd"), (16, "adam")):
        net = _big(dtype=dtype)
        hist = net.fit(X, Y, epochs=1, batch_size=batch_size, optimizer=optimizer)
        assert net.params.dtype == dtype
        assert net.predict(X).dtype == dtype
        assert np.isfinite(hist["loss"]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_matches_twin_across_blocks(dtype):
    n = network_module.PREDICT_BLOCK * 2 + 7  # two full blocks and a partial one
    X, _ = _data(n, 200, 10)
    a, b = _big(dtype=dtype), _big("numpy", dtype=dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=tol, atol=tol)


def test_chunked_epochs_equal_one_call(monkeypatch):
    X, Y = _data(40, 5, 2)
    make = lambda: fn.Network([fn.Dense(5, 4), fn.ReLU(), fn.Dense(4, 2)], seed=3)  # noqa: E731
    whole = make()
    whole.fit(X, Y, epochs=6, shuffle=True)
    monkeypatch.setattr(network_module, "MAX_ORDER", 40 * 4)  # four epochs per call
    chunked = make()
    chunked.fit(X, Y, epochs=6, shuffle=True)
    np.testing.assert_array_equal(whole.params, chunked.params)


def test_network_starting_with_an_activation():
    X, Y = _data(30, 4, 2)
    for batch_size in (1, 8):
        result = []
        for backend in ("numba", "numpy"):
            layers = [fn.Tanh(), fn.Dense(4, 3), fn.Sigmoid(), fn.Dense(3, 2)]
            net = fn.Network(layers, loss="cross_entropy", backend=backend, seed=1)
            net.fit(X, Y, epochs=2, batch_size=batch_size)
            result.append((net.params.copy(), net.predict(X)))
        assert _rel(result[0][0], result[1][0]) < 1e-10
        np.testing.assert_allclose(result[0][1], result[1][1], rtol=1e-10)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize(("batch_size", "optimizer"), [(1, "sgd"), (1, "adam"), (8, "momentum")])
def test_divergence_restores_the_epoch_start(backend, batch_size, optimizer):
    X, Y = _data(64, 200, 10)
    X = X * 1e3
    net = fn.Network([fn.Dense(200, 30), fn.Dense(30, 10)], backend=backend, seed=0)
    net.fit(X[:8], Y[:8], epochs=1, learning_rate=1e-12)
    before = net.params.copy()
    with pytest.raises(fn.TrainingDivergedError, match="epoch 1"):
        net.fit(X, Y, epochs=3, learning_rate=1e200, batch_size=batch_size, optimizer=optimizer)
    assert np.isfinite(net.params).all()
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_weights_that_overflow_under_a_finite_loss_are_restored(backend):
    # AdamW's decay factor 1 - lr·wd is about -1e198 here: the weights reach ~1e198
    # in epoch 1 and overflow in epoch 2, while the saturated tanh output keeps the
    # loss finite throughout. The weights must go back to their epoch-2 start.
    X, Y = np.array([[0.5, -0.5]]), np.array([[1.0]])
    layers = [fn.Dense(2, 2), fn.Tanh(), fn.Dense(2, 1), fn.Tanh()]
    net = fn.Network(layers, backend=backend, seed=0)
    after_epoch = []
    opt = fn.optimizers.Adam(weight_decay=0.01)
    with pytest.raises(fn.TrainingDivergedError, match="epoch 2"):
        net.fit(X, Y, epochs=3, learning_rate=1e200, optimizer=opt,
                callback=lambda e, h: after_epoch.append(net.params.copy()))  # fmt: skip
    assert len(after_epoch) == 1 and np.abs(after_epoch[0]).max() > 1e100
    np.testing.assert_array_equal(net.params, after_epoch[0])


def test_divergence_in_a_later_epoch_keeps_earlier_progress():
    X = np.array([[1.0], [2.0]])
    Y = np.array([[1.0], [2.0]])
    net = fn.Network([fn.Dense(1, 1)], seed=0)
    seen = []
    # lr 0.6 makes plain SGD on this data oscillate with growing amplitude.
    with pytest.raises(fn.TrainingDivergedError) as info:
        net.fit(X, Y, epochs=2000, learning_rate=0.6, callback=lambda e, h: seen.append(e))
    epoch = int(str(info.value).split("epoch ")[1].split(":")[0])
    assert epoch == len(seen) + 1 > 1
    assert np.isfinite(net.params).all()


def test_network_pickles_with_weights_as_views():
    import pickle

    X, Y = _data(20, 200, 10)
    net = _big()
    net.fit(X, Y, epochs=1)
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.predict(X), net.predict(X))
    again.layers[0].weights[0, 0] = 42.0  # still a view into the parameter buffer
    assert again.params[0] == 42.0
    again.fit(X, Y, epochs=1)


def test_read_only_input_is_accepted():
    X, Y = _data(20, 200, 10)
    X.flags.writeable = False
    net = _big()
    net.fit(X, Y, epochs=1)
    assert net.predict(X).shape == (20, 10)


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [({"seed": -1}, ValueError, "seed"), ({"seed": "a"}, ValueError, "seed")],
)
def test_bad_seed(kwargs, error, word):
    with pytest.raises(error, match=word):
        fn.Network([fn.Dense(2, 1)], **kwargs)


def test_shuffle_must_be_a_bool():
    net = fn.Network([fn.Dense(2, 1)])
    before = net.params.copy()
    with pytest.raises(TypeError, match="shuffle"):
        net.fit(np.ones((3, 2)), np.ones((3, 1)), shuffle="no")
    np.testing.assert_array_equal(net.params, before)


def test_float32_overflow_and_ragged_input_are_named():
    net = fn.Network([fn.Dense(2, 1)], dtype=np.float32)
    with pytest.raises(ValueError, match="float32 range"):
        net.fit(np.full((2, 2), 1e39), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="rectangular"):
        net.fit([[1.0, 2.0], [3.0]], np.zeros((2, 1)))
