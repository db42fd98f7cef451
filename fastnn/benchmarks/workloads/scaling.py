"""Per-sample SGD on 784-H-10 for a range of hidden widths H: where the cost leaves
the cache."""

from __future__ import annotations

from ..cases import Workload
from ..sizes import sizes_of
from .persample import persample_workload


def scaling_sizes(size: str = "full") -> tuple[int, ...]:
    """The hidden widths H of the scaling workloads."""
    return sizes_of(size).scaling_hidden


def scaling_workload(hidden: int, size: str = "full", threads: int = 1) -> Workload:
    """784-H-10 per-sample SGD, as ``persample_workload``: where the cost leaves the cache.

    Wider layers get fewer samples, so every run does about the same work.
    """
    return persample_workload(
        size,
        threads,
        hidden=hidden,
        name=f"scaling-784-{hidden}-10",
        group=f"scaling-784-{hidden}-10",
        systems=("fastnn", "numpy-tuned", "torch", "jax"),
        n=_samples(hidden, size),
    )


def _samples(hidden: int, size: str) -> int:
    """Samples for width ``hidden``: fewer for wider layers, about the same work."""
    s = sizes_of(size)
    return int(min(s.scaling_max, max(s.scaling_min, s.scaling_budget // hidden)))


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
        name="threads-784-1024-10",
        group="threads-784-1024-10",
        systems=("fastnn", "fastnn-1t"),
        n=_samples(1024, size),
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads,
    and with several threads, per-sample SGD on them against one."""
    rows = [scaling_workload(h, size, threads) for h in scaling_sizes(size)]
    return rows + ([threads_workload(size, threads)] if threads > 1 else [])
