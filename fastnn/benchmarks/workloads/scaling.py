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
        n=samples_for(hidden, size),
    )


def samples_for(hidden: int, size: str) -> int:
    """Samples for width ``hidden``: fewer for wider layers, about the same work."""
    s = sizes_of(size)
    return int(min(s.scaling_max, max(s.scaling_min, s.scaling_budget // hidden)))


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [scaling_workload(h, size, threads) for h in scaling_sizes(size)]
