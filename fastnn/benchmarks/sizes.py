"""How large each workload is at each benchmark size.

A new workload family may keep its own sizes in its module, keyed by ``SIZES``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Benchmark sizes: "full" for real measurements, "quick" for a sanity run of the
#: runner, "smoke" for the test suite's single pass with timings off.
SIZES = ("full", "quick", "smoke")


@dataclass(frozen=True)
class Sizes:
    """The size of every workload at one benchmark size ("full", "quick", "smoke")."""

    persample: int
    xor_epochs: int
    xor_twin_epochs: int
    digits_epochs: int
    minibatch: int
    predict: int
    scaling_hidden: tuple[int, ...]
    scaling_budget: int  # samples × hidden units per scaling run
    scaling_max: int
    repeats: int
    slow_repeats: int  # repeats of the slow peers (the twin on XOR, sklearn)
    cold_repeats: int
    cold_start: bool = True
    scaling_min: int = 1
    race_target: float = 0.97  # the digits race: test accuracy to reach
    race_max_epochs: int = 200


SIZE_TABLE: dict[str, Sizes] = {
    "full": Sizes(
        persample=2000,
        xor_epochs=10_000,
        xor_twin_epochs=10_000,
        digits_epochs=30,
        minibatch=8192,
        predict=16_384,
        scaling_hidden=(32, 64, 128, 256, 512, 1024, 2048),
        scaling_budget=512_000,
        scaling_max=2000,
        scaling_min=200,
        repeats=7,
        slow_repeats=3,
        cold_repeats=3,
    ),
    "quick": Sizes(
        persample=200,
        xor_epochs=1000,
        xor_twin_epochs=100,
        digits_epochs=3,
        minibatch=512,
        predict=2048,
        scaling_hidden=(32, 128),
        scaling_budget=25_600,
        scaling_max=200,
        repeats=3,
        slow_repeats=3,
        cold_repeats=2,
    ),
    # One pass with timings off: the smallest sizes that still take every code path
    # (784×128 uses the blocked first-layer update; 512 rows are two predict blocks).
    "smoke": Sizes(
        persample=16,
        xor_epochs=20,
        xor_twin_epochs=10,
        digits_epochs=1,
        minibatch=128,
        predict=512,
        scaling_hidden=(32, 128),
        scaling_budget=2048,
        scaling_max=16,
        repeats=1,
        slow_repeats=1,
        cold_repeats=1,
        cold_start=False,
        race_target=0.5,
        race_max_epochs=5,
    ),
}


def sizes_of(size: str) -> Sizes:
    """The workload sizes of ``size``; a ValueError names the choices."""
    if size not in SIZE_TABLE:
        raise ValueError(f"unknown benchmark size {size!r}: use one of {list(SIZE_TABLE)}")
    return SIZE_TABLE[size]
