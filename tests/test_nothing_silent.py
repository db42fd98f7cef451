"""The guarantees of one home for the weights, consistent copies, clean stops and safe
files, tried where their own tests do not reach: copies taken while a fit runs,
Ctrl-C between epochs, divergence under every optimizer, saturated float32 outputs,
memory maps with shuffling, and hostile bytes through every way in."""

from __future__ import annotations

import copy
import io
import os
import pickle
import re
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
def _copy(net: fn.Network, how: str, path) -> fn.Network:
    if how == "pickle":
        return pickle.loads(pickle.dumps(net))
    if how == "deepcopy":
        return copy.deepcopy(net)
    net.save(path)
    return fn.load(path)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "save"])
def test_a_copy_taken_during_a_fit_holds_one_moment(how, tmp_path):
    Xc = RNG.normal(size=(512, 16))
    yc = RNG.integers(0, 3, 512)
    net = fn.Network([fn.Dense(16, 32), fn.Tanh(), fn.Dense(32, 3)], loss="cross_entropy")
    kw = {"learning_rate": 0.01, "batch_size": 16, "optimizer": "adam", "shuffle": True}
    net.fit(Xc, yc, epochs=1, **kw)  # compile first, so the copies overlap the training

    def moment():
        opt = net.optimizer
        return net.params.copy(), opt.step, opt.state["a"].copy(), str(net.rng_state)

    epochs = [moment()]  # the state at the end of every epoch
    copies = []
    stop = threading.Event()

    def copy_in_a_loop():
        while not stop.is_set():
            copies.append(_copy(net, how, tmp_path / f"m{len(copies)}.npz"))

    copier = threading.Thread(target=copy_in_a_loop)
    copier.start()
    try:
        net.fit(Xc, yc, epochs=100, callback=lambda e, h: epochs.append(moment()), **kw)
    finally:
        stop.set()
        copier.join()
    assert len(copies) >= 3
    for i, again in enumerate(copies):
        # Weights, step count, moments and shuffling state of one moment between updates.
        taken = (again.params, again.optimizer.step, again.optimizer.state["a"])
        assert any(
            np.array_equal(taken[0], p)
            and taken[1] == s
            and np.array_equal(taken[2], m)
            and str(again.rng_state) == r
            for p, s, m, r in epochs
        ), f"copy {i} of {len(copies)} mixes two moments"
        assert all(np.shares_memory(d.weights, again.params) for d in again.dense_layers)


def test_a_refused_second_network_leaves_export_and_layers_agreeing(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    layers = [fn.Dense(5, 3), fn.Tanh(), fn.Dense(3, 2)]
    a = fn.Network(layers, seed=0)
    with pytest.raises(ValueError, match="already belongs"):
        fn.Network(layers, seed=1)
    a.to_onnx(tmp_path / "a.onnx")
    session = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {"X": X})
    out = X
    for layer in a.layers:
        out = layer.forward(out)
    np.testing.assert_allclose(exported, a.predict(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out, a.predict(X), rtol=1e-12, atol=1e-14)


# -- Ctrl-C between epochs ------------------------------------------------------------
@pytest.mark.parametrize("where", ["callback", "validation_fraction", "early_stopping"])
def test_ctrl_c_in_a_callback_counts_the_epochs_completed(where, tmp_path):
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
    # It saves and loads like any other state, and trains on.
    net.save(tmp_path / "m.npz")
    again = fn.load(tmp_path / "m.npz")
    assert np.array_equal(again.params, twin.params)
    assert again.optimizer.step == twin.optimizer.step
    net.fit(X, Y, epochs=1, learning_rate=0.01, batch_size=8, optimizer="adam")
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


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_divergence_inside_one_compiled_call_rewinds_the_shuffling_state(backend):
    # No per-epoch work: the epochs run in one call, whose shuffles are drawn at once.
    kw = {"learning_rate": 1.0, "shuffle": True}
    net = _small(backend)
    with pytest.raises(fn.TrainingDivergedError) as info:
        net.fit(X * 10, Y * 100, epochs=50, **kw)
    epoch = int(re.search(r"at epoch (\d+)", str(info.value))[1])
    assert epoch > 2
    # The state is that of the same fit stopped before the diverging epoch, the
    # generator that shuffles included: saved now, it holds one moment.
    twin = _small(backend)
    twin.fit(X * 10, Y * 100, epochs=epoch - 1, **kw)
    assert np.array_equal(net.params, twin.params)
    assert net.rng_state == twin.rng_state
    with pytest.raises(fn.TrainingDivergedError, match="at epoch 1:"):
        net.fit(X, Y, epochs=50, learning_rate=1e200, batch_size=8, optimizer="adam", shuffle=True)
    assert net.rng_state == twin.rng_state


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
def _peak(run):
    """(what run() returned or raised, the peak bytes Python allocated meanwhile)."""
    tracemalloc.start()
    try:
        try:
            result = run()
        except Exception as exc:  # the caller checks it
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


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
    (net, history), peak = _peak(lambda: run(X_map, y))
    assert peak < X_map.nbytes / 4, f"{peak / 1e6:.1f} MB allocated while training"
    twin, twin_history = run(in_ram, y)
    assert history == twin_history
    assert np.array_equal(net.params, twin.params)


def test_a_float32_memmap_is_converted_once_for_a_float64_network(tmp_path):
    # The copy the README documents: one float64 copy of X, never two (2x).
    rng = np.random.default_rng(6)
    in_ram = rng.normal(size=(10_000, 50)).astype(np.float32)
    y = rng.integers(0, 2, 10_000)
    np.save(tmp_path / "X.npy", in_ram)
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    net = fn.Network([fn.Dense(50, 8), fn.ReLU(), fn.Dense(8, 2)], loss="cross_entropy")
    net.fit(in_ram[:64], y[:64])  # compile
    _, peak = _peak(lambda: net.fit(X_map, y, epochs=1, learning_rate=0.01))
    converted = X_map.size * 8
    assert converted <= peak < 1.5 * converted, f"{peak / 1e6:.1f} MB"
    # predict and evaluate convert such an X once too (nothing for one of their dtype).
    for run in (lambda: net.predict(X_map), lambda: net.evaluate(X_map, y)):
        _, peak = _peak(run)
        assert converted <= peak < 1.5 * converted, f"{peak / 1e6:.1f} MB"
    X64 = X_map.astype(np.float64)
    _, peak = _peak(lambda: net.predict(X64))
    assert peak < converted / 4, f"{peak / 1e6:.1f} MB"


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
        error, peak = _peak(lambda data=data: fio.from_bytes(data))
        assert isinstance(error, ValueError) and "<bytes>" in str(error), (name, error)
        assert peak < 3 * len(data) + (4 << 20), f"{name}: {peak / 1e6:.1f} MB"
        # An estimator's pickle carries its network as these bytes: the same checks.
        fresh = FastMLPRegressor.__new__(FastMLPRegressor)
        with pytest.raises(ValueError, match="<bytes>"):
            fresh.__setstate__({**state, "_network_npz": data})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_load_refuses_what_is_not_a_regular_file_at_once(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "model.npz"
        os.mkfifo(path)  # opening it to read would wait for a writer forever
    else:
        path = "/dev/zero"  # reads never end
        if not os.path.exists(path):
            pytest.skip("no /dev/zero")
    box = []

    def load():
        try:
            fn.load(path)
        except Exception as exc:  # handed to the test's thread
            box.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(timeout=10)
    assert not loader.is_alive(), f"load({str(path)!r}) still waits after 10 s"
    assert isinstance(box[0], ValueError), box
    assert str(path) in str(box[0]) and "not a regular file" in str(box[0])


# -- the same seed in threads that run at once ----------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fits_running_at_once_in_threads_give_each_its_own_bits(dtype):
    rng = np.random.default_rng(7)
    Xs = rng.standard_normal((256, 64)).astype(dtype)
    ys = rng.integers(0, 10, 256)
    # The blocked per-sample loop and minibatch Adam at a set count.
    paths = {"blocked": (256, 1), "minibatch": (256, 16)}

    def run(path):
        hidden, batch = paths[path]
        layers = [fn.Dense(64, hidden), fn.ReLU(), fn.Dense(hidden, 10)]
        net = fn.Network(layers, loss="cross_entropy", dtype=dtype, seed=0, threads=1)
        opt = "adam" if batch > 1 else "sgd"
        net.fit(Xs, ys, epochs=2, learning_rate=0.01, batch_size=batch, optimizer=opt)
        return net.params.tobytes()

    alone = {path: run(path) for path in paths}
    together: list[tuple[str, bytes]] = []
    threads = [
        threading.Thread(target=lambda p=path: together.append((p, run(p))))
        for path in [*paths, *paths]  # each path twice, all at once
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(together) == 2 * len(paths)
    for path, params in together:
        assert params == alone[path], f"{path} differs when run beside other fits"
