"""Optimizers, schedules and the training extras against their NumPy twins."""

import numpy as np
import pytest

import fastnn as fn
from fastnn import kernels, reference
from fastnn.optimizers import (
    SGD,
    Adam,
    InverseScaling,
    StepDecay,
    from_config,
    get_optimizer,
    get_schedule,
)

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "adamw"]


def _data(n=120, d=12, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.eye(k)[rng.integers(0, k, n)]


def _net(backend, dtype=np.float64, seed=5):
    layers = [fn.Dense(12, 16), fn.ReLU(), fn.Dense(16, 8), fn.Tanh(), fn.Dense(8, 4)]
    return fn.Network(layers, loss="cross_entropy", dtype=dtype, backend=backend, seed=seed)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_kernel_matches_twin(name, dtype):
    rng = np.random.default_rng(1)
    opt = get_optimizer(name)
    p = rng.normal(size=257).astype(dtype)
    copies = {}
    for ops in (kernels, reference):
        params = p.copy()
        a, b = np.zeros_like(params), np.zeros_like(params)
        for step in range(1, 6):
            grads = np.sin(params * step).astype(dtype)  # the same sequence for both
            ops.optimizer_step(opt.kind, params, grads, a, b, 0.01, opt.hyper(), step)
        copies[ops.__name__] = params
    # float32: Adam's m/√v divides values that carry float32 rounding.
    rtol, atol = (1e-10, 0.0) if dtype == np.float64 else (1e-5, 1e-6)
    np.testing.assert_allclose(
        copies["fastnn.kernels"], copies["fastnn.reference"], rtol=rtol, atol=atol
    )
    assert copies["fastnn.kernels"].dtype == dtype
    assert not np.array_equal(copies["fastnn.kernels"], p)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("batch_size", [1, 16])
def test_training_matches_twin(name, batch_size):
    X, Y = _data()
    result = {}
    for backend in ("numba", "numpy"):
        net = _net(backend)
        hist = net.fit(X, Y, epochs=3, learning_rate=0.01, batch_size=batch_size,
                       shuffle=True, optimizer=name, l2=1e-3)  # fmt: skip
        result[backend] = (net.params.copy(), hist["loss"])
    a, b = result["numba"][0], result["numpy"][0]
    assert np.abs(a - b).max() / np.abs(b).max() < 1e-10
    np.testing.assert_allclose(result["numba"][1], result["numpy"][1], rtol=1e-10)


def test_momentum_by_hand():
    # One parameter, gradient g = 2 each step, lr = 0.1, momentum 0.5:
    # v1 = 2, p1 = 1 - 0.1·2 = 0.8; v2 = 0.5·2 + 2 = 3, p2 = 0.8 - 0.1·3 = 0.5.
    p = np.array([1.0])
    v = np.zeros(1)
    for _ in range(2):
        kernels.momentum_step(p, np.array([2.0]), v, 0.1, 0.5, False)
    assert p[0] == pytest.approx(1 - 0.1 * 2 - 0.1 * (0.5 * 2 + 2))
    # Nesterov's first step from v = 0: v1 = 2, p -= 0.1·(2 + 0.5·2) = 0.3.
    p, v = np.array([1.0]), np.zeros(1)
    kernels.momentum_step(p, np.array([2.0]), v, 0.1, 0.5, True)
    assert p[0] == pytest.approx(1 - 0.1 * (2 + 0.5 * 2))


def test_adam_first_step_moves_by_learning_rate():
    # With bias correction, Adam's first step is lr·g/(|g| + ε) ≈ lr·sign(g).
    p = np.array([1.0, -1.0])
    g = np.array([3.0, -0.5])
    m, v = np.zeros(2), np.zeros(2)
    kernels.adam_step(p, g, m, v, 0.01, 0.9, 0.999, 1e-8, 0.0, 1)
    np.testing.assert_allclose(p, [1.0 - 0.01, -1.0 + 0.01], rtol=1e-6)


def test_adamw_decays_weights_without_gradient():
    p = np.array([2.0])
    kernels.adam_step(p, np.zeros(1), np.zeros(1), np.zeros(1), 0.1, 0.9, 0.999, 1e-8, 0.5, 1)
    assert p[0] == pytest.approx(2.0 * (1 - 0.1 * 0.5))


def test_optimizer_object_keeps_state_across_fits():
    X, Y = _data()
    opt = Adam()
    net = _net("numba")
    net.fit(X, Y, epochs=1, batch_size=30, optimizer=opt)
    steps = opt.step
    assert steps == 4 and np.abs(opt.state["a"]).sum() > 0
    net.fit(X, Y, epochs=1, batch_size=30, optimizer=opt)
    assert opt.step == 2 * steps
    # Two one-epoch fits with one object equal one two-epoch fit.
    other = _net("numba")
    other.fit(X, Y, epochs=2, batch_size=30, optimizer=Adam())
    np.testing.assert_allclose(net.params, other.params, rtol=1e-12)


def test_config_round_trip():
    for opt in (SGD(momentum=0.8, nesterov=True), Adam(beta1=0.8, weight_decay=0.1)):
        again = from_config(opt.get_config())
        assert type(again) is type(opt) and again.get_config() == opt.get_config()


def test_schedules():
    assert get_schedule("constant")(0.1, 7) == 0.1
    assert StepDecay(step_size=2, gamma=0.5)(0.8, 5) == pytest.approx(0.8 * 0.5**2)
    assert InverseScaling(power_t=0.5)(1.0, 3) == pytest.approx(0.5)


def test_schedule_changes_training():
    X, Y = _data()
    a, b = _net("numba"), _net("numba")
    a.fit(X, Y, epochs=3, learning_rate=0.05)
    b.fit(X, Y, epochs=3, learning_rate=0.05, lr_schedule=StepDecay(step_size=1, gamma=0.1))
    assert not np.allclose(a.params, b.params)
    # Epoch 1 uses the base rate in both, so a one-epoch run is identical.
    c, d = _net("numba"), _net("numba")
    c.fit(X, Y, epochs=1, learning_rate=0.05)
    d.fit(X, Y, epochs=1, learning_rate=0.05, lr_schedule="step")
    np.testing.assert_array_equal(c.params, d.params)


def test_early_stopping_restores_best_weights():
    X, Y = _data(n=200)
    Xv, Yv = _data(n=60, seed=9)
    net = _net("numba")
    snapshots = []
    hist = net.fit(X, Y, epochs=60, learning_rate=0.5, batch_size=8, optimizer="momentum",
                   validation_data=(Xv, Yv), early_stopping=True, patience=3,
                   callback=lambda e, h: snapshots.append(net.params.copy()))  # fmt: skip
    best = int(np.argmin(hist["val_loss"]))
    assert len(hist["loss"]) < 60  # it stopped
    assert len(hist["loss"]) - 1 - best == 3  # three epochs without improvement
    np.testing.assert_array_equal(net.params, snapshots[best])
    assert net.evaluate(Xv, Yv) == pytest.approx(min(hist["val_loss"]))


def test_validation_fraction_holds_out_data():
    X, Y = _data(n=100)
    net = _net("numba")
    hist = net.fit(X, Y, epochs=2, validation_fraction=0.2)
    assert len(hist["val_loss"]) == 2
    # The held-out samples are not trained on: the same split on a twin network
    # trained on the remaining 80 rows gives the same weights.
    twin = _net("numba")
    idx = np.random.default_rng(np.random.SeedSequence(5).spawn(2)[1]).permutation(100)
    train = np.sort(idx[20:])
    twin.fit(X[train], Y[train], epochs=2)
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-12)


def test_l2_shrinks_weights():
    X, Y = _data()
    plain, reg = _net("numba"), _net("numba")
    plain.fit(X, Y, epochs=5, batch_size=10)
    reg.fit(X, Y, epochs=5, batch_size=10, l2=0.5)
    assert np.linalg.norm(reg.layers[0].weights) < np.linalg.norm(plain.layers[0].weights)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"optimizer": "rmsprop"}, ValueError),
        ({"lr_schedule": "cosine"}, ValueError),
        ({"l2": -1.0}, ValueError),
        ({"validation_fraction": 1.5}, ValueError),
        ({"patience": 0}, ValueError),
    ],
)
def test_bad_training_options(kwargs, error):
    X, Y = _data()
    net = _net("numba")
    before = net.params.copy()
    with pytest.raises(error):
        net.fit(X, Y, **kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_optimizer_settings_are_checked():
    with pytest.raises(ValueError, match="momentum"):
        SGD(momentum=1.5)
    with pytest.raises(ValueError, match="nesterov"):
        SGD(nesterov=True)
    with pytest.raises(ValueError, match="beta1"):
        Adam(beta1=1.0)
