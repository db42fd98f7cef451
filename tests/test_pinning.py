"""The benchmarks' thread pinning, outside bench/ (whose modules run pinned)."""

from __future__ import annotations

import os
import threading

import pytest

pytest.importorskip("threadpoolctl")
from fastnn import benchmarks as fb


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs a process allowed on two cores or more",
)
def test_pinned_threads_pins_threads_started_before_it():
    # A runtime's pool (XLA's, torch's) is often started before the pin: its threads
    # must be moved too, or a "one thread" run quietly uses every core.
    cores = os.sched_getaffinity(0)
    started, release = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: (started.set(), release.wait(30)))
    worker.start()
    started.wait(30)
    try:
        with fb.pinned_threads(1, runtimes=False):
            assert len(os.sched_getaffinity(0)) == 1
            assert len(os.sched_getaffinity(worker.native_id)) == 1
        assert os.sched_getaffinity(worker.native_id) == cores
    finally:
        release.set()
        worker.join()
    assert os.sched_getaffinity(0) == cores


def test_child_processes_get_every_thread_variable(monkeypatch):
    # One list of variables, fastnn.threads', sizes the benchmarks' child processes
    # and Dask's workers alike.
    from fastnn.threads import THREAD_VARIABLES

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    env = fb.child_environment(3)
    assert {name: env[name] for name in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, "3")
    assert "XLA_FLAGS" not in env
    assert fb.XLA_ONE_THREAD in fb.child_environment(1)["XLA_FLAGS"]
    assert set(fb.THREAD_ENV) | {"NUMBA_NUM_THREADS"} == set(THREAD_VARIABLES)
