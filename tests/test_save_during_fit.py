"""Saving from another thread while a fit runs writes a consistent snapshot."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastnn as fn

RNG = np.random.default_rng(11)
X = RNG.normal(size=(512, 16))
y = RNG.integers(0, 3, 512)


@pytest.mark.parametrize("batch_size", [1, 16])
def test_files_saved_during_a_fit_load_and_hold_one_epochs_state(tmp_path, batch_size):
    net = fn.Network([fn.Dense(16, 32), fn.Tanh(), fn.Dense(32, 3)], loss="cross_entropy", seed=0)
    optimizer = "sgd" if batch_size == 1 else "adam"
    kw = {"learning_rate": 0.01, "batch_size": batch_size, "optimizer": optimizer}
    net.fit(X, y, epochs=1, **kw)  # compile first, so the saves overlap the training
    epochs = {}  # the state at the end of every epoch, by the optimizer's step

    def record(epoch, history):
        epochs[epoch] = (net.params.copy(), net.optimizer.step)

    record(0, None)
    paths = []
    stop = threading.Event()

    def save_in_a_loop():
        while not stop.is_set():
            path = tmp_path / f"m{len(paths)}.npz"
            net.save(path)
            paths.append(path)

    saver = threading.Thread(target=save_in_a_loop)
    saver.start()
    try:
        net.fit(X, y, epochs=300, callback=record, **kw)
    finally:
        stop.set()
        saver.join()
    assert len(paths) >= 3
    for path in paths:
        again = fn.load(path)  # raises on a torn file (checksum mismatch)
        # The weights and the step count come from the same moment between updates.
        assert any(
            np.array_equal(again.params, params) and again.optimizer.step == step
            for params, step in epochs.values()
        ), path


def test_a_save_during_one_long_compiled_call_waits_for_it(tmp_path):
    # No per-epoch work: all the epochs run in one compiled call, which a save waits for.
    net = fn.Network([fn.Dense(16, 32), fn.Tanh(), fn.Dense(32, 3)], loss="cross_entropy")
    net.fit(X[:8], y[:8], epochs=1, optimizer="adam", batch_size=4)  # compile
    before = net.params.copy()
    started = threading.Event()

    def train():
        started.set()
        net.fit(X, y, epochs=200, optimizer="adam", batch_size=4)

    trainer = threading.Thread(target=train)
    trainer.start()
    started.wait()
    while np.array_equal(net.params, before):  # until the compiled call is training
        pass
    net.save(tmp_path / "m.npz")
    trainer.join()
    again = fn.load(tmp_path / "m.npz")
    assert not np.array_equal(again.params, before)
    assert np.array_equal(again.params, net.params)
    assert again.optimizer.step == net.optimizer.step == 2 + 200 * 128
