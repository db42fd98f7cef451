"""Ctrl-C during a long fit: it stops within a fraction of a second, raises
KeyboardInterrupt, and leaves the network at the end of its last completed epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    import numpy as np
    import fastnn as fn

    mode, backend = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    width = {"sgd-small": (16, 32), "sgd-blocked": (64, 256), "adam": (64, 256)}[mode]
    n = 2048 if backend == "numba" else 256
    X = rng.normal(size=(n, width[0])).astype(np.float32)
    y = rng.integers(0, 4, n)
    kw = {"batch_size": 32, "optimizer": "adam"} if mode == "adam" else {}
    kw["shuffle"] = True

    def make():
        net = fn.Network([fn.Dense(*width), fn.Tanh(), fn.Dense(width[1], 4)],
                         loss="cross_entropy", dtype=np.float32, backend=backend, seed=0)
        net.fit(X[:64], y[:64], epochs=2, learning_rate=0.01, **kw)  # compile, start Adam
        return net

    def state(net):
        opt = net.optimizer
        return [net.params.copy(), *(v.copy() for v in opt.state.values()), opt.step,
                str(net.rng_state)]

    net = make()
    before = net.params.copy()

    def announce():  # once the long fit's compiled call is training
        while np.array_equal(net.params, before):
            time.sleep(0.001)
        print("ready", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    try:
        net.fit(X, y, epochs=10**6, learning_rate=0.01, **kw)
        print(json.dumps({"finished": True}))
        sys.exit()
    except KeyboardInterrupt as exc:
        caught = time.monotonic()
        note = str(exc)
    done = net.stopped_epoch
    twin = make()
    if done:
        twin.fit(X, y, epochs=done, learning_rate=0.01, **kw)
    same = all(np.array_equal(a, b) for a, b in zip(state(net), state(twin), strict=True))
    net.fit(X[:64], y[:64], epochs=1, learning_rate=0.01, **kw)  # trains on
    print(json.dumps({"caught": caught, "epochs": done, "same": same, "note": note,
                      "finite": bool(np.isfinite(net.predict(X)).all())}))
    """
)


@pytest.mark.parametrize(
    ("mode", "backend"),
    [("sgd-small", "numba"), ("sgd-blocked", "numba"), ("adam", "numba"), ("adam", "numpy")],
)
def test_ctrl_c_stops_a_long_fit_at_an_epoch_boundary(mode, backend):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(0.5)  # well into the long fit
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert "finished" not in result
    # About 0.5 s is the goal; the bound leaves room for a busy machine.
    assert result["caught"] - sent < 1.0, result
    assert result["same"], result  # weights, moments, step and shuffling of one epoch's end
    assert result["finite"]
    assert f"after {result['epochs']} completed epochs" in result["note"]


@pytest.mark.parametrize("kw", [{}, {"batch_size": 8, "optimizer": "adam"}])
def test_a_fit_in_the_worker_thread_equals_one_inline(monkeypatch, kw):
    import numpy as np

    import fastnn as fn
    import fastnn.network

    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(64, 5)), rng.normal(size=(64, 2))
    nets = []
    for limit in (fastnn.network.THREAD_WORK, 0):  # inline, then in the worker thread
        monkeypatch.setattr(fastnn.network, "THREAD_WORK", limit)
        net = fn.Network([fn.Dense(5, 8), fn.Tanh(), fn.Dense(8, 2)], seed=0)
        nets.append((net, net.fit(X, Y, epochs=3, learning_rate=0.05, shuffle=True, **kw)))
    (a, history_a), (b, history_b) = nets
    assert history_a == history_b
    assert np.array_equal(a.params, b.params)


def test_worker_threads_are_kept_and_reused():
    """A long call runs on a kept worker thread (a parallel region from a new thread
    each time builds a new OpenMP team): calls one after another share one worker,
    and concurrent calls get one each, every result going to its own caller."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from fastnn import interrupt

    def workers() -> set[int]:
        return {t.ident for t in threading.enumerate() if t.name == "fastnn-fit"}

    seen = set()

    def run(stop):
        seen.add(threading.get_ident())
        return int(stop[0]) + 7

    for _ in range(5):
        assert interrupt.call(run, threaded=True) == (7, False)
    assert len(seen) == 1 and seen <= workers()

    def slow(value):
        def run(stop):
            time.sleep(0.05)
            return value

        return interrupt.call(run, threaded=True)

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(slow, range(3))) == [(v, False) for v in range(3)]
    assert len(workers()) >= 3

    def fail(stop):
        raise ValueError("from the worker")

    with pytest.raises(ValueError, match="from the worker"):
        interrupt.call(fail, threaded=True)
    assert interrupt.call(run, threaded=True) == (7, False)  # the worker lives on
