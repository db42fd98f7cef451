"""Minibatch training of convolutional networks: the compiled engine against its NumPy
twin, steps against torch.optim (SGD, momentum, Adam, with L2), bits by seed,
divergence and Ctrl-C restoring the optimizer too, and learning the digits."""

from __future__ import annotations

import numpy as np
import pytest
from test_cnn import _data, _net, _torch_net

import fastnn as fn
from fastnn.codes import ADAM, SGD
from fastnn.datasets import load_digits

#: (optimizer, l2, dropout, batch_size): every optimizer kind, L2, Dropout, a batch of
#: one and batches that leave a smaller last one.
CASES = [
    ("sgd", 0.0, 0.0, 4),
    ("momentum", 1e-3, 0.4, 5),
    ("nesterov", 0.01, 0.0, 1),
    ("adam", 0.0, 0.0, 4),
    ("adamw", 1e-3, 0.3, 13),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_engine_matches_twin(rng, dtype, case, measured):
    optimizer, l2, dropout, batch = case
    X, y = _data(rng, 13)
    nets = [_net(backend, dtype, dropout) for backend in ("numba", "numpy")]
    hist = [
        net.fit(X, y, epochs=3, learning_rate=0.05, batch_size=batch, shuffle=True,
                optimizer=optimizer, l2=l2)
        for net in nets
    ]  # fmt: skip
    tol = 1e-4 if dtype == np.float32 else 1e-12
    assert np.allclose(hist[0]["loss"], hist[1]["loss"], rtol=tol, atol=0)
    diff = np.abs(nets[0].params - nets[1].params).max()
    assert measured(f"cnn minibatch vs twin, {np.dtype(dtype).name}", diff) < tol
    assert np.abs(nets[0].params - _net(dtype=dtype).params).max() > 0.01  # it trained
    for a, b in zip(nets[0].optimizer.state.values(), nets[1].optimizer.state.values(),
                    strict=True):  # fmt: skip
        assert np.abs(a - b).max() < tol
    assert nets[0].optimizer.step == nets[1].optimizer.step == 3 * -(-13 // batch)


def _fit_minibatch_conv(net, X, Y, order, opt_kind, hyper, stop=0):
    """``fit_minibatch_conv`` called directly on ``net``, with fresh optimizer state."""
    from fastnn.kernels import fit_minibatch_conv

    state = np.zeros((2, net.params.size))
    step = np.zeros(1, np.int64)
    done = fit_minibatch_conv(*net._plan.arrays, net.params, X.reshape(len(X), -1), Y, order, 1,
                              np.full(len(order), 0.1), 2, 0.0, opt_kind, hyper, state[0],
                              state[1], step, 0, np.empty(len(order)),
                              np.empty(3 * net.params.size), np.full(1, stop))  # fmt: skip
    return done, step[0]


def test_batch_of_one_is_per_sample_sgd(rng):
    """Plain SGD in batches of one through the minibatch engine: the per-sample
    steps of fit_sgd_conv (up to rounding: the step is applied after the sum)."""
    X, y = _data(rng)
    Y = np.eye(3)[y]
    a, b = _net(), _net()
    order = np.tile(rng.permutation(len(X)), (2, 1))
    done, steps = _fit_minibatch_conv(a, X, Y, order, SGD, np.zeros(6))
    assert done == 2 and steps == 2 * len(X)
    b.fit(X[order[0]], Y[order[0]], epochs=2, learning_rate=0.1)
    assert np.abs(a.params - b.params).max() < 1e-13


def test_stop_flag_restores_epoch_start(rng):
    net = _net()
    X, y = _data(rng)
    before = net.params.copy()
    order = np.tile(np.arange(len(X)), (2, 1))
    done, steps = _fit_minibatch_conv(net, X, np.eye(3)[y], order, ADAM, np.array(
        [0, 0, 0.9, 0.999, 1e-8, 0]), stop=1)  # fmt: skip
    assert done == 0 and steps == 0 and np.array_equal(net.params, before)


@pytest.mark.parametrize("make", [lambda: fn.optimizers.SGD(momentum=0.9), fn.optimizers.Adam])
def test_divergence_restores_weights_and_optimizer(rng, make):
    optimizer = make()  # one object: its state carries over from the first fit
    net = _net(loss="mse")
    X, _ = _data(rng)
    net.fit(X, rng.normal(size=(len(X), 3)), epochs=1, learning_rate=0.01, batch_size=4,
            optimizer=optimizer)  # fmt: skip
    before = net.params.copy()
    state = {key: value.copy() for key, value in net.optimizer.state.items()}
    step = net.optimizer.step
    assert step == 3 and np.abs(state["a"]).max() > 0
    with pytest.raises(fn.TrainingDivergedError):
        net.fit(X, np.full((len(X), 3), 1e300), epochs=2, learning_rate=10.0, batch_size=4,
                optimizer=optimizer)  # fmt: skip
    assert np.array_equal(net.params, before) and net.optimizer.step == step
    for key, value in state.items():
        assert np.array_equal(net.optimizer.state[key], value)


def test_same_seed_same_bits_whatever_the_alignment(rng):
    X, y = _data(rng)
    # The same samples one element off their usual alignment.
    shifted = np.empty(X.size + 1)[1:].reshape(X.shape)
    shifted[...] = X
    nets = [_net(dropout=0.4), _net(dropout=0.4), _net(dropout=0.4, seed=4)]
    nets[2].params = nets[0].params
    for net, data in zip(nets, (X, shifted, X), strict=True):
        net.fit(data, y, epochs=2, learning_rate=0.05, batch_size=5, shuffle=True,
                optimizer="adam", l2=1e-3)  # fmt: skip
    assert np.array_equal(nets[0].params, nets[1].params)
    assert not np.array_equal(nets[0].params, nets[2].params)  # other masks, order


def test_validation_schedule_and_early_stopping(rng):
    X, y = _data(rng, 20)
    net = _net()
    hist = net.fit(X, y, epochs=6, learning_rate=0.05, batch_size=4, optimizer="momentum",
                   lr_schedule="step", validation_fraction=0.25, early_stopping=True,
                   patience=2)  # fmt: skip
    assert len(hist["val_loss"]) == len(hist["loss"]) == net.stopped_epoch
    assert np.isfinite(hist["val_loss"]).all()


# -- PyTorch -------------------------------------------------------------------------
#: (fastnn optimizer, torch optimizer and its settings, l2)
TORCH_CASES = [
    ("sgd", "SGD", {}, 0.0),
    ("momentum", "SGD", {"momentum": 0.9}, 0.0),
    ("nesterov", "SGD", {"momentum": 0.9, "nesterov": True}, 0.01),
    ("adam", "Adam", {"eps": 1e-8}, 0.0),
    ("adam", "Adam", {"eps": 1e-8}, 0.01),
    ("adamw", "AdamW", {"eps": 1e-8, "weight_decay": 0.01}, 0.0),
]


@pytest.mark.parametrize("case", TORCH_CASES, ids=str)
def test_minibatch_steps_match_torch(rng, case, measured):
    """Minibatch steps (batches of 4, 4 and 2) give torch's weights. fastnn's l2 adds
    l2·W to the weight gradients only: in torch, the penalty l2/2·‖W‖² on the
    weights. fastnn's "adamw" decays by 0.01, as torch's AdamW below."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    name, torch_name, settings, l2 = case
    net = _net()
    X, y = _data(rng, 10)
    model = _torch_net(torch, net)
    lr = 0.05
    opt = getattr(torch.optim, torch_name)(model.parameters(), lr=lr, **settings)
    weights = [p for p in model.parameters() if p.dim() > 1]
    for _ in range(3):
        for start in range(0, len(X), 4):
            opt.zero_grad()
            out = model(torch.from_numpy(X[start : start + 4]))
            loss = nn.functional.cross_entropy(out, torch.from_numpy(y[start : start + 4]))
            loss = loss + l2 / 2 * sum((w * w).sum() for w in weights)
            loss.backward()
            opt.step()
    net.fit(X, y, epochs=3, learning_rate=lr, batch_size=4, optimizer=name, l2=l2)
    theirs = np.concatenate([p.detach().numpy().reshape(-1) for p in model.parameters()])
    assert np.abs(net.params - _net().params).max() > 0.01  # it trained
    assert measured(f"cnn {name} vs torch", np.abs(net.params - theirs).max()) < 1e-10


# -- learning ------------------------------------------------------------------------
def test_digits_cnn_minibatch_adam_reaches_98_percent():
    from sklearn.model_selection import train_test_split

    X, y = load_digits()
    X = X.reshape(-1, 1, 8, 8)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    net = fn.Network(
        [fn.Conv2D(1, 16, 3, padding=1), fn.ReLU(), fn.MaxPool2D(2), fn.Flatten(),
         fn.Dropout(0.25), fn.Dense(256, 10)],
        loss="cross_entropy", input_shape=(1, 8, 8), seed=0,
    )  # fmt: skip
    net.fit(Xtr, ytr, epochs=30, learning_rate=0.005, batch_size=32, shuffle=True,
            optimizer="adam")  # fmt: skip
    assert (net.predict(Xte).argmax(axis=1) == yte).mean() >= 0.98
