"""With another process running on a core, a network asks for no more threads than
the cores left idle (a BLAS thread waiting for a busy core holds up every product)."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

import fastnn as fn
from fastnn.threads import available_cores, idle_cores


def _spin() -> None:
    while True:
        pass


@pytest.fixture
def busy_core():
    if not hasattr(os, "sched_getaffinity") or os.cpu_count() < 2:
        pytest.skip("needs Linux and two cores")
    busy = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    busy.start()
    time.sleep(0.5)  # until it runs
    yield
    busy.terminate()
    busy.join()


def test_threads_leave_out_a_busy_core(busy_core):
    assert 1 <= idle_cores() <= os.cpu_count() - 1
    cores = available_cores()
    net = fn.Network([fn.Dense(784, 256), fn.ReLU(), fn.Dense(256, 10)], threads=cores)
    assert net._threads_for(4096) <= max(1, os.cpu_count() - 1)


def test_small_work_never_asks():
    net = fn.Network([fn.Dense(2, 1)], threads=2)
    assert net._threads_for(4) == 1
