"""Training from a memory-mapped X reads it in place: no whole copy in RAM."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import fastnn as fn

N, M = 20_000, 100  # 8 MB of float32


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(2)
    path = tmp_path_factory.mktemp("memmap") / "X.npy"
    np.save(path, rng.normal(size=(N, M)).astype(np.float32))
    return path, rng.integers(0, 2, N)


def _net(hidden: int) -> fn.Network:
    return fn.Network(
        [fn.Dense(M, hidden), fn.ReLU(), fn.Dense(hidden, 2)],
        loss="cross_entropy", dtype=np.float32, seed=0,
    )  # fmt: skip


CASES = {
    "per-sample": (16, {"batch_size": 1}),
    "per-sample blocked": (256, {"batch_size": 1}),
    "minibatch, validation split": (
        16, {"batch_size": 64, "optimizer": "adam", "validation_fraction": 0.2}),
}  # fmt: skip


@pytest.mark.parametrize("mode", ["r", "r+"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_from_a_memmap_allocates_no_copy_of_X(data, case, mode):
    path, y = data
    hidden, kw = CASES[case]
    X = np.load(path, mmap_mode=mode)
    in_ram = np.load(path)
    _net(hidden).fit(in_ram[:256], y[:256], epochs=1, learning_rate=0.01, **kw)  # compile
    net = _net(hidden)
    tracemalloc.start()
    try:
        history = net.fit(X, y, epochs=1, learning_rate=0.01, **kw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Under the smallest copy to catch, the validation split's 20% of X (1.6 MB); the
    # peak holds one 1024-row block of X (0.4 MB), Y converted and the index arrays.
    assert peak < 0.15 * X.nbytes, f"{peak / 1e6:.2f} MB allocated while training"
    # The same run as from the array in RAM, and the file is untouched.
    twin = _net(hidden)
    assert twin.fit(in_ram, y, epochs=1, learning_rate=0.01, **kw) == history
    assert np.array_equal(net.params, twin.params)
    assert np.array_equal(np.load(path), in_ram)
    assert np.array_equal(net.predict(X[:100]), twin.predict(in_ram[:100]))
