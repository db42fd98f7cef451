"""The ``dask`` family: one epoch of 784-256-128-10 minibatch SGD through
``fastnn.distributed.fit`` on loopback clusters of one and two single-thread workers,
against ``Network.fit`` in this process.

The smoke pass (timings off) runs the two-worker cluster only, checked against
``Network.fit`` (its test accuracy within ``ACCURACY_GAP``); the family compares
worker counts, so this module runs on two threads at least and needs two cores.
"""

from __future__ import annotations

import pytest

from fastnn import benchmarks as fb
from fastnn.benchmarks.workloads import dask_fit

pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module", autouse=True)
def pinned_runtimes(two_threads):
    """Every runtime on two threads at least (this overrides conftest's)."""
    return two_threads


@pytest.mark.parametrize("system", ("fastnn", "dask-1w", "dask-2w"))
def test_dask_averaging(measure, benchmark, bench_size, two_threads, system):
    """One epoch on Dask with 1 and 2 workers, and ``Network.fit``: µs per sample."""
    if benchmark.disabled and system != "dask-2w":
        pytest.skip("the smoke pass runs the two-worker cluster against Network.fit")
    case = measure(fb.dask_workload(bench_size, two_threads), system)
    assert case.notes.startswith("test accuracy")


def test_accuracy_check_catches_a_shortfall_and_a_vacuous_reference():
    compare = fb.dask_workload("smoke", 2).compare
    assert compare(0.97, 0.99) is None
    assert "below" in compare(0.99 - 2 * dask_fit.ACCURACY_GAP, 0.99)
    assert "vacuous" in compare(0.3, 0.3)


def test_rows_are_the_same_wherever_they_are_made():
    whole = dask_fit.teacher_rows(0, 100)
    assert (dask_fit.teacher_rows(40, 100) != whole[40:]).any()  # a block's own draws
    X, y = dask_fit._local(100, 40)
    assert X.shape == (100, 784) and set(y) <= set(range(10))
    blocks = [dask_fit.teacher_rows(a, min(a + 40, 100)) for a in (0, 40, 80)]
    for start, block in zip((0, 40, 80), blocks, strict=True):
        assert (X[start : start + len(block)] == block[:, :784]).all()


def test_two_workers_on_one_thread_are_unavailable():
    workload = fb.dask_workload("smoke", 1)
    with pytest.raises(fb.Unavailable, match="2 workers need 2 threads"):
        workload.builders["dask-2w"]()
    assert workload.systems == ("fastnn", "dask-1w", "dask-2w")
