"""Minibatch training gives the same bits at any thread count: its products are tasks
of a fixed shape, each on one BLAS thread, and no sum is split between threads. So
fastnn may train on fewer threads than asked when cores are busy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn as fn
import fastnn.network

# A batch of 50 over 230 samples leaves a last batch of 30; layers of 300 and 200 units
# cut into several tasks, and the Tanh and ReLU pass gradients back through Wᵀ·G.
FIT = """
import json, sys
import numpy as np
import fastnn as fn
import fastnn.network as network

threads, dtype, optimizer, l2 = json.loads(sys.argv[1])
used = []
run_on = network.numba_threads
network.numba_threads = lambda n, run: used.append(n) or run_on(n, run)
network.idle_cores = lambda: 64  # whatever the machine's load: the count asked for
network.WORK_PER_THREAD = 1  # threads even for this small network
rng = np.random.default_rng(3)
X = rng.standard_normal((230, 40)).astype(dtype)
y = rng.integers(0, 10, 230)
layers = [fn.Dense(40, 300), fn.Tanh(), fn.Dense(300, 200), fn.ReLU(), fn.Dense(200, 10)]
net = fn.Network(layers, loss="cross_entropy", dtype=dtype, seed=0, threads=threads)
net.fit(X, y, epochs=2, learning_rate=0.01, batch_size=50, optimizer=optimizer, l2=l2)
sys.stdout.write(json.dumps([used, net.params.tobytes().hex()]))
"""

CASES = [("float32", "momentum", 0.0), ("float64", "adam", 1e-3), ("float32", "sgd", 1e-3)]


def _fit(threads: int, dtype: str, optimizer: str, l2: float) -> tuple[list[int], str]:
    """The fit above in a fresh process whose Numba pool has ``threads`` threads."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    proc = subprocess.run(
        [sys.executable, "-c", FIT, json.dumps([threads, dtype, optimizer, l2])],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    used, params = json.loads(proc.stdout)
    return used, params


@pytest.mark.parametrize(("dtype", "optimizer", "l2"), CASES)
def test_weights_are_bit_identical_at_one_two_and_four_threads(dtype, optimizer, l2):
    results = {}
    for threads in (1, 2, 4, 2):  # 2 twice: repeated runs agree too
        used, params = _fit(threads, dtype, optimizer, l2)
        assert used == [threads]  # the fit did run on that many threads
        results.setdefault(params, []).append(threads)
    assert len(results) == 1, f"weights differ between thread counts: {list(results.values())}"


def test_in_process_thread_counts_and_the_twin_agree(monkeypatch):
    monkeypatch.setattr(fastnn.network, "idle_cores", lambda: 64)
    monkeypatch.setattr(fastnn.network, "WORK_PER_THREAD", 1)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((130, 30))
    y = rng.integers(0, 3, 130)

    def fit(threads, backend="numba"):
        layers = [fn.Dense(30, 260), fn.Sigmoid(), fn.Dense(260, 140), fn.ReLU(), fn.Dense(140, 3)]
        net = fn.Network(layers, loss="cross_entropy", seed=1, threads=threads, backend=backend)
        net.fit(X, y, epochs=3, learning_rate=0.05, batch_size=40, optimizer="nesterov")
        return net.params

    one, two = fit(1), fit(2)
    assert one.tobytes() == two.tobytes()
    # The NumPy twin sums each product whole, in its own order: close, not the same bits.
    np.testing.assert_allclose(one, fit(1, backend="numpy"), rtol=1e-10, atol=1e-12)


def _fit_on_two_threads() -> bytes:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((96, 20))
    layers = [fn.Dense(20, 300), fn.ReLU(), fn.Dense(300, 1)]
    net = fn.Network(layers, seed=2, threads=2)
    net.fit(X, X[:, :1], epochs=1, learning_rate=0.01, batch_size=32)
    return net.params.tobytes()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_process_forked_after_a_two_thread_fit_trains_to_the_same_bits(monkeypatch):
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs a Numba pool of two threads")
    monkeypatch.setattr(fastnn.network, "idle_cores", lambda: 64)
    monkeypatch.setattr(fastnn.network, "WORK_PER_THREAD", 1)
    expected = _fit_on_two_threads()  # starts the thread pool in this process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: GNU OpenMP's pool would abort it
        try:
            os.write(write, _fit_on_two_threads())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        got = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert got == expected
