"""The benchmark's building blocks: cases (one system's run of a workload),
workloads, and how results are cross-checked and timed."""

from __future__ import annotations

import gc
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Every system, in the order the table shows them.
SYSTEMS = ("fastnn", "fastnn-numpy", "numpy-tuned", "torch", "jax", "sklearn")
#: The system every ratio is relative to.
BASELINE = "fastnn"

Weights = list[tuple[np.ndarray, np.ndarray]]


class Unavailable(Exception):
    """A case cannot run here (a peer is not installed, or fastnn lacks a feature)."""


def optional(module: str):
    """The module, or None when it is not installed (or fails to import)."""
    try:
        return importlib.import_module(module)
    except Exception:  # a broken optional install counts as absent
        return None


class Case:
    """One system's implementation of one workload.

    ``reset`` restores the initial state (not timed), ``run`` is the timed work,
    ``result`` returns what the cross-check compares.

    Parameters
    ----------
    system : str
        One of ``SYSTEMS``.
    units : int
        Samples (or rows, or runs) one ``run`` processes.
    scale : float
        The factor from one ``run`` to the workload's full size: a slow system may
        run a fraction of the workload (see ``notes``), its times are multiplied.
    notes : str
        Printed with the row.
    repeats : int, optional
        Overrides the workload's repeat count.
    """

    def __init__(
        self,
        system: str,
        units: int,
        scale: float = 1.0,
        notes: str = "",
        repeats: int | None = None,
    ) -> None:
        self.system = system
        self.units = units
        self.scale = scale
        self.notes = notes
        self.repeats = repeats

    def reset(self) -> None:
        """Restore the initial state; not timed."""

    def run(self) -> float | None:
        """Do the timed work. May return a duration measured inside (a child process)."""
        raise NotImplementedError

    def result(self) -> Any:
        """What the cross-check compares: weights, outputs or an accuracy."""
        raise NotImplementedError

    def close(self) -> None:
        """Release temporary resources."""


Compare = Callable[[Any, Any], "str | None"]


@dataclass
class Workload:
    """A benchmark workload: a case builder per system, and how results are compared.

    Attributes
    ----------
    name : str
        The row label, e.g. "persample-784-128-10".
    group : str
        The pytest-benchmark group (one per workload family, e.g. "scaling-784-H-10").
    unit : str
        What ``Case.units`` counts: "sample", "row" or "run".
    builders : dict
        System -> a function building its timed case; raises ``Unavailable``.
    compare : callable(result, reference_result) -> str or None
        A message when the results disagree, None when they agree.
    repeats : int
        Timed runs per case (the median is reported).
    oracle : str
        fastnn's own reference (other systems are checked against fastnn).
    check_builders : dict, optional
        Cases to cross-check with, when the check runs at another size than the
        timing (a scaled-down system is compared at its own size).
    fallbacks : dict, optional
        System -> the system it is checked against when its reference could not be
        built (fastnn lacks a feature the peers have): the peers then check each
        other, and their rows are timed without fastnn's.
    notes : str
        Printed with the workload.
    """

    name: str
    group: str
    unit: str
    builders: dict[str, Callable[[], Case]]
    compare: Compare
    repeats: int
    oracle: str = "fastnn-numpy"
    check_builders: dict[str, Callable[[], Case]] | None = None
    fallbacks: dict[str, str] | None = None
    notes: str = ""

    @property
    def systems(self) -> tuple[str, ...]:
        """The systems of ``SYSTEMS`` it builds, in that order, then any others (e.g.
        one system at several thread counts) in the order of ``builders``."""
        known = tuple(s for s in SYSTEMS if s in self.builders)
        return known + tuple(s for s in self.builders if s not in known)

    def reference_of(self, system: str) -> str:
        """The system whose result ``system`` is checked against."""
        return self.oracle if system == BASELINE else BASELINE


def cross_check(workload: Workload, cases: dict[str, Case]) -> dict[str, str | None]:
    """Warm up every case (one untimed run from its initial state) and check it.

    Each system in ``cases`` is compared with ``workload.reference_of(system)``, which
    must be in ``cases`` too (or, when it is not, with the system ``workload.fallbacks``
    names, if that one is). Returns a message per system that disagrees (or could
    not be checked), None for one that agrees. With ``check_builders``, the check
    runs on separately built cases of the check size, and the warm-up on the timed
    ones.
    """
    results: dict[str, Any] = {}
    for system, case in cases.items():
        case.reset()
        case.run()
        results[system] = case.result()
    if workload.check_builders is not None:
        results = {}
        for system in cases:
            check = workload.check_builders[system]()
            try:
                check.reset()
                check.run()
                results[system] = check.result()
            finally:
                check.close()
    problems: dict[str, str | None] = {}
    for system in cases:
        reference = workload.reference_of(system)
        fallback = (workload.fallbacks or {}).get(system)
        if reference not in results and fallback in results:
            reference = fallback
        if reference not in results:
            problems[system] = f"no {reference} result to check against"
            continue
        problems[system] = workload.compare(results[system], results[reference])
    return problems


def time_case(case: Case, repeats: int) -> list[float]:
    """Seconds of ``repeats`` timed runs, each after ``reset`` (garbage collector off)."""
    times = []
    for _ in range(repeats):
        case.reset()
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            inner = case.run()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        times.append(inner if inner is not None else elapsed)
    return times


class RaceCase(Case):
    """A race to a test accuracy: train epoch by epoch, scoring the test set after each,
    until the accuracy reaches ``target`` (or ``max_epochs`` pass). One ``run`` is the
    whole race, scoring included, so every system pays for its own predict."""

    def __init__(self, system, data, target, max_epochs, **kwargs):
        super().__init__(system, units=1, **kwargs)
        self.data, self.target, self.max_epochs = data, target, max_epochs
        self.reached = (0.0, 0)

    def epoch(self) -> None:
        raise NotImplementedError

    def predict_classes(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run(self) -> None:
        _, _, Xte, yte = self.data
        accuracy, epoch = 0.0, 0
        while epoch < self.max_epochs and accuracy < self.target:
            self.epoch()
            epoch += 1
            accuracy = float(np.mean(self.predict_classes(Xte) == yte))
        self.reached = (accuracy, epoch)
        self.notes = f"{self.describe}; test accuracy {accuracy:.3f} after {epoch} epochs"

    def result(self) -> float:
        return self.reached[0]


def as_float64(weights: Weights) -> Weights:
    """[(W, b), ...] in float64, the type every weights comparison works in."""
    return [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in weights]


def weights_agree(rtol: float, atol: float, initial: Weights | None = None) -> Compare:
    """A comparison of [(W, b), ...] results within ``rtol`` / ``atol``.

    With ``initial``, it also fails when the reference run left its weights within
    tolerance of them: such a check could not tell two systems apart.
    """

    def compare(got: Weights, want: Weights) -> str | None:
        if len(got) != len(want):
            return f"{len(got)} layers, expected {len(want)}"
        for i, (pair, ref) in enumerate(zip(got, want, strict=True)):
            for name, a, e in zip("Wb", pair, ref, strict=True):
                if a.shape != e.shape:
                    return f"layer {i} {name} has shape {a.shape}, expected {e.shape}"
                if not np.allclose(a, e, rtol=rtol, atol=atol):
                    err = float(np.max(np.abs(a - e)))
                    return f"layer {i} {name} differs by up to {err:.3g} (rtol={rtol}, atol={atol})"
        if initial is not None:
            moved = max(
                float(np.max(np.abs(e - i0)))
                for ref, init in zip(want, initial, strict=True)
                for e, i0 in zip(ref, init, strict=True)
            )
            if moved <= 10 * atol:
                return f"the run moved the weights by only {moved:.3g}: the check is vacuous"
        return None

    return compare


def outputs_agree(rtol: float, atol: float) -> Compare:
    """A comparison of output arrays within ``rtol`` / ``atol``."""

    def compare(got: np.ndarray, want: np.ndarray) -> str | None:
        if got.shape != want.shape:
            return f"output shape {got.shape}, expected {want.shape}"
        if not np.allclose(got, want, rtol=rtol, atol=atol):
            err = float(np.max(np.abs(got - want)))
            return f"outputs differ by up to {err:.3g} (rtol={rtol}, atol={atol})"
        return None

    return compare


# float32 per-sample SGD through a different summation order drifts by a few ulps per
# step; after thousands of steps 1e-3 relative is comfortably above it and far below
# what a wrong gradient (or a missed update) produces.
F32_RTOL, F32_ATOL = 1e-3, 2e-5
