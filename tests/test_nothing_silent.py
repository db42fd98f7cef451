"""The guarantees of one home for the weights, consistent copies, clean stops and safe
files, tried where their own tests do not reach: copies taken while a fit runs,
Ctrl-C between epochs, divergence under every optimizer, saturated float32 outputs,
memory maps with shuffling, and hostile bytes through every way in."""

from __future__ import annotations

import copy
import io
import pickle
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastnn as fn
from fastnn import io as fio
from fastnn.optimizers import Schedule

RNG = np.random.default_rng(12)
X = RNG.normal(size=(64, 5))
Y = RNG.normal(size=(64, 2))


def _small(backend: str = "numba") -> fn.Network:
    return fn.Network([fn.Dense(5, 8), fn.Tanh(), fn.Dense(8, 2)], backend=backend, seed=0)


# -- copies taken while a fit runs --------------------------------------------------
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copy_taken_during_a_fit_holds_one_moment(how):
    Xc = RNG.normal(size=(512, 16))
    yc = RNG.integers(0, 3, 512)
    net = fn.Network([fn.Dense(16, 32), fn.Tanh(), fn.Dense(32, 3)], loss="cross_entropy")
    kw = {"learning_rate": 0.01, "batch_size": 16, "optimizer": "adam"}
    net.fit(Xc, yc, epochs=1, **kw)  # compile first, so the copies overlap the training
    epochs = {}  # the state at the end of every epoch, by epoch

    def record(epoch, history):
        epochs[epoch] = (net.params.copy(), net.optimizer.step, net.optimizer.state["a"].copy())

    record(0, None)
    copies = []
    stop = threading.Event()

    def copy_in_a_loop():
        while not stop.is_set():
            taken = pickle.loads(pickle.dumps(net)) if how == "pickle" else copy.deepcopy(net)
            copies.append(taken)

    copier = threading.Thread(target=copy_in_a_loop)
    copier.start()
    try:
        net.fit(Xc, yc, epochs=100, callback=record, **kw)
    finally:
        stop.set()
        copier.join()
    assert len(copies) >= 3
    for i, again in enumerate(copies):
        # Weights, step count and moments of the same moment between updates.
        assert any(
            np.array_equal(again.params, params)
            and again.optimizer.step == step
            and np.array_equal(again.optimizer.state["a"], moments)
            for params, step, moments in epochs.values()
        ), f"copy {i} of {len(copies)} mixes two moments"
        assert all(np.shares_memory(d.weights, again.params) for d in again.dense_layers)


# -- Ctrl-C between epochs ------------------------------------------------------------
@pytest.mark.parametrize("where", ["callback", "validation_fraction", "early_stopping"])
def test_ctrl_c_in_a_callback_counts_the_epochs_completed(where):
    net = _small()
    net.fit(X, Y, epochs=7, learning_rate=0.01, batch_size=8, optimizer="adam")
    twin = _small()
    twin.fit(X, Y, epochs=7, learning_rate=0.01, batch_size=8, optimizer="adam")

    def press_ctrl_c(epoch, history):
        if epoch == 3:
            raise KeyboardInterrupt

    kw = {"callback": press_ctrl_c, "learning_rate": 0.01, "batch_size": 8, "optimizer": "adam"}
    if where == "validation_fraction":
        kw["validation_fraction"] = 0.25
    elif where == "early_stopping":
        kw["early_stopping"] = True
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y, epochs=10, **kw)
    assert net.stopped_epoch == 3  # not the 7 of the fit before
    # The network is at the end of epoch 3: the same fit stopped there by its count.
    kw.pop("callback")
    twin.fit(X, Y, epochs=3, **kw)
    assert np.array_equal(net.params, twin.params)
    assert net.optimizer.step == twin.optimizer.step
    net.fit(X, Y, epochs=1, learning_rate=0.01, batch_size=8, optimizer="adam")  # trains on
    assert np.isfinite(net.params).all()


# -- divergence under every optimizer -------------------------------------------------
class _Explode(Schedule):
    def __call__(self, base: float, epoch: int) -> float:
        return base if epoch == 0 else 1e200


@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adamw"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_divergence_restores_every_optimizers_state(backend, optimizer, batch_size):
    net = _small(backend)
    kw = {"learning_rate": 0.01, "batch_size": batch_size, "optimizer": optimizer}
    net.fit(X, Y, epochs=2, **kw)
    states = []

    def record(epoch, history):
        opt = net.optimizer
        states.append((net.params.copy(), {k: v.copy() for k, v in opt.state.items()}, opt.step))

    with pytest.raises(fn.TrainingDivergedError, match="epoch 2"):
        net.fit(X, Y, epochs=3, lr_schedule=_Explode(), callback=record, **kw)
    params, state, step = states[0]
    assert np.array_equal(net.params, params)
    assert net.optimizer.state.keys() == state.keys()
    assert all(np.array_equal(net.optimizer.state[k], v) for k, v in state.items())
    assert net.optimizer.step == step
    kw["learning_rate"] = 1e-6
    net.fit(X, Y, epochs=2, **kw)
    assert np.isfinite(net.params).all()


# -- the fused Sigmoid in float32 ------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_saturated_float32_sigmoid_output_keeps_a_finite_loss(backend):
    net = fn.Network(
        [fn.Dense(3, 4), fn.Tanh(), fn.Dense(4, 1), fn.Sigmoid()],
        loss="binary_cross_entropy", dtype=np.float32, backend=backend,
    )  # fmt: skip
    Xb = RNG.uniform(-1, 1, (8, 3)).astype(np.float32)
    net.layers[2].weights[...] = 0
    for bias, target in ((100, 0), (-100, 1)):
        net.layers[2].bias[...] = bias
        assert net.evaluate(Xb, np.full((8, 1), target)) == pytest.approx(100, rel=1e-6)
    net.layers[2].bias[...] = 100
    net.fit(Xb, np.zeros((8, 1)), epochs=1, learning_rate=0.5, batch_size=4, optimizer="sgd")
    # Two batches, each moving the bias by lr·mean(p − y) = 0.5.
    assert net.layers[2].bias[0] == np.float32(99)
    assert net.params.dtype == np.float32 and np.isfinite(net.params).all()


# -- memory maps --------------------------------------------------------------------
def test_shuffled_fit_from_a_memmap_reads_it_in_place(tmp_path):
    rng = np.random.default_rng(4)
    in_ram = rng.normal(size=(20_000, 100)).astype(np.float32)
    y = rng.integers(0, 2, 20_000)
    np.save(tmp_path / "X.npy", in_ram)
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")

    def run(Xs, ys):
        net = fn.Network([fn.Dense(100, 16), fn.ReLU(), fn.Dense(16, 2)],
                         loss="cross_entropy", dtype=np.float32, seed=0)  # fmt: skip
        history = net.fit(Xs, ys, epochs=2, learning_rate=0.01, shuffle=True,
                          validation_fraction=0.2, early_stopping=True)  # fmt: skip
        return net, history

    run(in_ram[:256], y[:256])  # compile
    tracemalloc.start()
    try:
        net, history = run(X_map, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X_map.nbytes / 4, f"{peak / 1e6:.1f} MB allocated while training"
    twin, twin_history = run(in_ram, y)
    assert history == twin_history
    assert np.array_equal(net.params, twin.params)


# -- hostile bytes through every way in ----------------------------------------------
def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("params.npy", b"\0" * (64 << 20))
    return buffer.getvalue()


def test_hostile_bytes_through_from_bytes_and_an_estimators_unpickling():
    from fastnn.sklearn import FastMLPRegressor

    good = fio.to_bytes(_small())
    mid = len(good) // 2
    hostile = {
        "bomb": _zip_bomb(),
        "truncated": good[: len(good) // 2],
        "garbage": b"PK\x03\x04" + bytes(200),
        "flipped": good[:mid] + bytes([good[mid] ^ 0xFF]) + good[mid + 1 :],
    }
    est = FastMLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with pytest.warns(Warning):
        est.fit(X, Y[:, 0])
    state = est.__getstate__()
    for name, data in hostile.items():
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match="<bytes>"):
                fio.from_bytes(data)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 * len(data) + (4 << 20), f"{name}: {peak / 1e6:.1f} MB"
        # An estimator's pickle carries its network as these bytes: the same checks.
        fresh = FastMLPRegressor.__new__(FastMLPRegressor)
        with pytest.raises(ValueError, match="<bytes>"):
            fresh.__setstate__({**state, "_network_npz": data})
