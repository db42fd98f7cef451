"""Convolutional networks in the Network: building and shape checks, the compiled
engine against its NumPy twin, gradients by central differences, per-sample steps
against torch.optim.SGD, saving, pickling and learning the digits."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import fastnn as fn
from fastnn.datasets import load_digits, stratified_split


def _layers(dropout: float = 0.0):
    # Stride 1 and 2, "same" and explicit padding, both poolings, Dropout: every kind.
    return [
        fn.Conv2D(2, 3, 3, padding="same"),
        fn.Tanh(),
        fn.MaxPool2D(2),
        fn.Conv2D(3, 4, (2, 3), stride=2, padding=1),
        fn.Sigmoid(),
        fn.AvgPool2D(2, stride=1),
        fn.Flatten(),
        fn.Dropout(dropout),
        fn.Dense(8, 3),
    ]


SHAPE = (2, 9, 8)


def _net(backend="numba", dtype=np.float64, dropout=0.0, loss="cross_entropy", seed=3):
    return fn.Network(_layers(dropout), loss=loss, dtype=dtype, backend=backend, seed=seed,
                      input_shape=SHAPE)  # fmt: skip


def _data(rng, n=12):
    return rng.normal(size=(n, *SHAPE)), rng.integers(0, 3, n)


# -- building ------------------------------------------------------------------------
def test_shapes_chain_and_params_bind():
    net = _net()
    assert net.n_features == 2 * 9 * 8 and net.n_outputs == 3
    conv = net.layers[0]
    assert np.shares_memory(conv.weights, net.params)
    conv.weights[0, 0, 0, 0] = 0.25  # one home: the view writes the buffer
    assert net.params[0] == 0.25
    assert "input_shape=(2, 9, 8)" in repr(net)


def test_missing_input_shape_says_to_pass_it():
    with pytest.raises(ValueError, match=r"input_shape=\("):
        fn.Network([fn.Conv2D(1, 2, 3), fn.Flatten(), fn.Dense(72, 2)])


def test_shape_errors_name_layer_and_shapes():
    with pytest.raises(ValueError, match=r"layers\[2\].*144.*\(1, 8, 8\) -> \[0\] Conv2D"):
        fn.Network([fn.Conv2D(1, 4, 3), fn.Flatten(), fn.Dense(64, 2)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"layers\[1\].*\(3, 3, 3\).*smaller"):
        fn.Network([fn.Conv2D(1, 3, 6), fn.Conv2D(3, 1, 4), fn.Flatten(), fn.Dense(1, 1)],
                   input_shape=(1, 8, 8))  # fmt: skip
    with pytest.raises(ValueError, match=r"layers\[0\].*Flatten\(\) before it"):
        fn.Network([fn.Dense(64, 2)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="input_shape"):
        fn.Network(_layers(), input_shape=(7, 8))


def test_x_shapes(rng):
    net = _net()
    X, _ = _data(rng, 3)
    full = net.predict(X)
    assert np.array_equal(net.predict(X[1]), full[1:2])  # one (C, H, W) sample
    assert np.array_equal(net.predict(X.reshape(3, -1)), full)  # flat rows
    with pytest.raises(ValueError, match=r"samples of shape \(2, 9, 8\)"):
        net.predict(rng.normal(size=(3, 2, 8, 9)))


# -- the engine ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_engine_matches_twin(rng, dtype, dropout, measured):
    X, y = _data(rng)
    nets = [_net(backend, dtype, dropout) for backend in ("numba", "numpy")]
    tol = 1e-4 if dtype == np.float32 else 1e-11
    preds = [net.predict(X) for net in nets]
    assert measured("cnn predict vs twin", np.abs(preds[0] - preds[1]).max()) < tol
    hist = [net.fit(X, y, epochs=3, learning_rate=0.1, shuffle=True) for net in nets]
    assert np.allclose(hist[0]["loss"], hist[1]["loss"], rtol=tol)
    diff = np.abs(nets[0].params - nets[1].params).max()
    assert measured("cnn fit vs twin", diff) < tol
    assert np.abs(nets[0].params - _net(dtype=dtype).params).max() > 0.01  # it trained


def test_row_result_independent_of_position(rng):
    net = _net()
    X, _ = _data(rng, 9)
    full = net.predict(X)
    for r in (0, 4, 8):
        assert np.array_equal(net.predict(X[r : r + 1]), full[r : r + 1])
    assert np.array_equal(net.predict(X[::-1])[::-1], full)


def test_same_seed_same_bits_and_dropout_masks_vary(rng):
    X, y = _data(rng)
    a, b, c = _net(dropout=0.4), _net(dropout=0.4), _net(dropout=0.4, seed=4)
    c.params = a.params
    for net in (a, b, c):
        net.fit(X, y, epochs=2, learning_rate=0.1, shuffle=True)
    assert np.array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)  # another seed: other masks, order


def test_dropout_is_identity_in_predict(rng):
    X, _ = _data(rng)
    with_dropout, without = _net(dropout=0.5), _net()
    without.params = with_dropout.params
    assert np.array_equal(with_dropout.predict(X), without.predict(X))
    assert with_dropout.evaluate(X, np.zeros(len(X), np.int64)) == without.evaluate(
        X, np.zeros(len(X), np.int64)
    )


def test_divergence_restores_params(rng):
    net = _net(loss="mse", dtype=np.float32)
    X, _ = _data(rng)
    Y = np.full((len(X), 3), 1e30)
    before = net.params.copy()
    with pytest.raises(fn.TrainingDivergedError):
        net.fit(X, Y, epochs=2, learning_rate=10.0)
    assert np.array_equal(net.params, before)


def test_stop_flag_restores_epoch_start(rng):
    from fastnn.kernels import fit_sgd_conv

    net = _net()
    X, y = _data(rng)
    Y = np.eye(3)[y]
    before = net.params.copy()
    stop = np.ones(1, np.int64)
    order = np.tile(np.arange(len(X)), (2, 1))
    done = fit_sgd_conv(*net._plan.arrays, net.params, X.reshape(len(X), -1), Y, order, 0.1, 2,
                        0, np.empty(2), np.empty_like(net.params), stop)  # fmt: skip
    assert done == 0 and np.array_equal(net.params, before)


# -- gradients -----------------------------------------------------------------------
def test_whole_cnn_gradient_by_central_differences(rng):
    """One per-sample SGD step moves the parameters by -lr·dC/dθ: compare with
    central differences of the loss over every parameter."""
    net = _net()
    X, y = _data(rng, 1)
    p0 = net.params.copy()
    net.fit(X, y, epochs=1, learning_rate=1.0)
    grad = p0 - net.params
    probe = _net()
    h = 1e-6
    numeric = np.empty_like(p0)
    for j in range(p0.size):
        probe.params = p0
        probe.params[j] = p0[j] + h
        up = probe.evaluate(X, y)
        probe.params[j] = p0[j] - h
        numeric[j] = (up - probe.evaluate(X, y)) / (2 * h)
    assert np.allclose(grad, numeric, rtol=1e-5, atol=1e-8)


# -- PyTorch -------------------------------------------------------------------------
def _torch_net(torch, net):
    """``_net()`` in PyTorch (float64), starting from ``net``'s weights."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding="same"), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(3, 4, (2, 3), stride=2, padding=1), nn.Sigmoid(), nn.AvgPool2d(2, stride=1),
        nn.Flatten(), nn.Dropout(0.0), nn.Linear(8, 3),
    ).double()  # fmt: skip
    with torch.no_grad():
        for layer, mine in zip(model, net.layers, strict=True):
            if hasattr(mine, "weights"):
                layer.weight.copy_(torch.from_numpy(mine.weights.copy()))
                layer.bias.copy_(torch.from_numpy(mine.bias.copy()))
    return model


def test_per_sample_sgd_matches_torch(rng, measured):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = _net()
    X, y = _data(rng, 8)
    model = _torch_net(torch, net)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(2):
        for s in range(len(X)):
            opt.zero_grad()
            out = model(torch.from_numpy(X[s : s + 1]))
            nn.functional.cross_entropy(out, torch.from_numpy(y[s : s + 1])).backward()
            opt.step()
    net.fit(X, y, epochs=2, learning_rate=0.2)
    theirs = np.concatenate([p.detach().numpy().reshape(-1) for p in model.parameters()])
    assert measured("cnn sgd vs torch", np.abs(net.params - theirs).max()) < 1e-10


# -- persistence ---------------------------------------------------------------------
def test_save_load_and_pickle_round_trip(rng, tmp_path):
    net = _net(dropout=0.25)
    X, y = _data(rng)
    net.fit(X, y, epochs=1, learning_rate=0.1)
    path = tmp_path / "cnn.npz"
    net.save(path)
    for other in (fn.load(path), pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert other.input_shape == SHAPE and repr(other) == repr(net)
        assert np.array_equal(other.params, net.params)
        assert np.array_equal(other.predict(X), net.predict(X))
        assert np.shares_memory(other.layers[3].weights, other.params)
    # Training goes on the same way from the copy.
    again = fn.load(path)
    net.fit(X, y, epochs=1, learning_rate=0.1, shuffle=True)
    again.fit(X, y, epochs=1, learning_rate=0.1, shuffle=True)
    assert np.array_equal(again.params, net.params)


# -- learning ------------------------------------------------------------------------
def test_digits_cnn_reaches_98_percent():
    from sklearn.model_selection import train_test_split

    X, y = load_digits()
    X = X.reshape(-1, 1, 8, 8)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    net = fn.Network(
        [fn.Conv2D(1, 8, 3, padding=1), fn.ReLU(), fn.MaxPool2D(2), fn.Flatten(),
         fn.Dense(128, 10)],
        loss="cross_entropy", input_shape=(1, 8, 8), seed=0,
    )  # fmt: skip
    net.fit(Xtr, ytr, epochs=20, learning_rate=0.02, shuffle=True)
    assert (net.predict(Xte).argmax(axis=1) == yte).mean() >= 0.98


def test_stratified_split_keeps_each_digits_share():
    _, y = load_digits()
    train, test = stratified_split(y, test_size=0.25, seed=0)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(y.size))
    counts, held = np.bincount(y), np.bincount(y[test], minlength=10)
    np.testing.assert_array_equal(held, np.round(0.25 * counts))
    assert len(set(y[test[:20]])) > 1  # shuffled, not sorted by class
    again = stratified_split(y, test_size=0.25, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, test), strict=True))
    assert not np.array_equal(stratified_split(y, 0.25, seed=1)[1], test)
    for bad, error in [(0.0, ValueError), (1, ValueError), ("0.25", TypeError), (True, TypeError)]:
        with pytest.raises(error, match="test_size"):
            stratified_split(y, test_size=bad)
    with pytest.raises(ValueError, match="1-D array of labels"):
        stratified_split(y.reshape(-1, 1))
