"""Exact per-sample SGD on several cores: 784-1024-10 at ``threads`` threads against
one thread (a family of its own, run in a process where no peer has started its
thread pools; it needs two cores and is empty with ``--threads 1``)."""

from __future__ import annotations

from ..cases import Workload
from .persample import persample_workload
from .scaling import samples_for


def threads_workload(size: str = "full", threads: int = 2) -> Workload:
    """Exact per-sample SGD on ``threads`` cores against one: 784-1024-10, whose first
    layer's products run as tasks on the cores (``fastnn-1t``: fastnn on one thread;
    the weights are the same bits, and ``scaling-784-1024-10`` checks them against
    NumPy). fastnn alone: a peer's idle threads in the same process take a core from
    fastnn's second thread (after PyTorch had run on two threads, fastnn's two-thread
    fits were slower than its one-thread fits, its OpenMP team's threads still
    holding the cores), and no peer runs exact per-sample SGD on several cores."""
    return persample_workload(
        size,
        threads,
        hidden=1024,
        name="cores-784-1024-10",
        group="cores-784-1024-10",
        systems=("fastnn", "fastnn-1t"),
        # Four times the scaling row's samples: a fit of a few ms is at the mercy of
        # when the second thread wakes; 2,000 samples at full size.
        n=4 * samples_for(1024, size),
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workload at ``size`` on ``threads`` threads (none on one)."""
    return [threads_workload(size, threads)] if threads > 1 else []
