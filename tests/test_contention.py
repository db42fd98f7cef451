"""With another process running on a core, a network asks for no more threads than
the cores left idle (a thread waiting for a busy core holds up every step), even when
a thread count is set."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

import fastnn as fn
from fastnn.threads import idle_cores


def _spin() -> None:
    while True:
        pass


def _network(threads=None) -> fn.Network:
    return fn.Network([fn.Dense(784, 256), fn.ReLU(), fn.Dense(256, 10)], threads=threads)


@pytest.fixture
def busy_core():
    if not hasattr(os, "sched_getaffinity") or os.cpu_count() < 2:
        pytest.skip("needs Linux and two cores")
    busy = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    busy.start()
    time.sleep(0.5)  # until it runs
    yield os.cpu_count() - 1
    busy.terminate()
    busy.join()


def test_default_threads_leave_out_a_busy_core(busy_core):
    assert 1 <= idle_cores() <= busy_core
    assert _network()._threads_for(4096) <= busy_core


def test_set_threads_leave_out_a_busy_core_too(busy_core):
    # No result depends on the thread count (tests/test_minibatch_threads.py), so a
    # set count is a ceiling, for training as for predict.
    assert _network(threads=busy_core + 1)._threads_for(4096) <= busy_core


def test_small_work_never_asks():
    assert _network(threads=2)._threads_for(4) == 1
