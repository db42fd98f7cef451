"""The runner: build, cross-check and time every workload, one row per system.

Every case starts from fastnn's initial weights on the same data, with the same
architecture, dtype, loss and learning rate. Before anything is timed, each case
runs once (that run also absorbs compilation: Numba, XLA) and its result is checked
against its reference: weights or outputs within float32 tolerance, or the test
accuracy for digits. A case that disagrees is reported as a mismatch and not timed.
Times are medians over several repeats, each from the same initial state, taken
round-robin (one run of each system per round), so that drift on a shared machine
falls on every system alike.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence

from .cases import BASELINE, Case, Unavailable, Workload, cross_check, time_case
from .machine import sgemm_rate
from .pinning import PINNED_SEPARATOR, describe_threads, pinned_threads, resolve_threads
from .workloads import FAMILIES


def _row(workload: Workload, system: str, threads: int, pinned: str, **values) -> dict:
    row = {
        "workload": workload.name,
        "system": system,
        "unit": workload.unit,
        "units": None,
        "median_s": None,
        "unit_us": None,
        "ratio": None,
        "threads": threads,
        "n_repeats": 0,
        "times_s": [],
        "status": "ok",
        "notes": "",
        "about": workload.notes,
        "pinned": pinned,
    }
    row.update(values)
    return row


def run_workload(
    workload: Workload, threads: int, pinned: str = "", log: Callable[[str], object] = print
) -> list[dict]:
    """Build, cross-check and time every system of one workload; one row per system."""
    rows: dict[str, dict] = {}
    cases: dict[str, Case] = {}
    try:
        for system in workload.systems:
            try:
                cases[system] = workload.builders[system]()
            except Unavailable as err:
                rows[system] = _row(
                    workload, system, threads, pinned, status="skipped", notes=str(err)
                )
        log(f"{workload.name}: checking {', '.join(cases)}")
        try:
            problems = cross_check(workload, cases)
        except Exception as err:  # one broken peer must not lose every other result
            problems = {system: f"{type(err).__name__}: {err}" for system in cases}
        accuracies = {}
        if workload.name.startswith("digits"):
            accuracies = {system: case.result() for system, case in cases.items()}
        repeats: dict[str, int] = {}
        for system, case in cases.items():
            if problems.get(system):
                rows[system] = _row(
                    workload, system, threads, pinned, status="mismatch", notes=problems[system]
                )
            else:
                repeats[system] = case.repeats or workload.repeats
                log(f"{workload.name}: timing {system} ({repeats[system]} runs)")
        # Round-robin, one run of each system per round: on a shared machine whose
        # speed drifts, the systems' medians then come from the same stretches of
        # time, and a slow spell cannot fall on one system alone.
        times: dict[str, list[float]] = {system: [] for system in repeats}
        for i in range(max(repeats.values(), default=0)):
            for system in repeats:
                if i < repeats[system]:
                    times[system] += time_case(cases[system], 1)
        for system, runs in times.items():
            case = cases[system]
            runs = [t * case.scale for t in runs]
            median = statistics.median(runs)
            units = round(case.units * case.scale)
            rows[system] = _row(
                workload,
                system,
                threads,
                pinned,
                units=units,
                median_s=median,
                unit_us=median / units * 1e6,
                n_repeats=repeats[system],
                times_s=runs,
                notes=case.notes,
            )
            if system in accuracies:
                rows[system]["accuracy"] = accuracies[system]
    finally:
        for case in cases.values():
            case.close()
    base = rows.get(BASELINE)
    for row in rows.values():
        if base is not None and base["median_s"] and row["median_s"] is not None:
            row["ratio"] = row["median_s"] / base["median_s"]
    return [rows[s] for s in workload.systems]


def run(
    quick: bool = False,
    threads: int | None = None,
    *,
    families: Sequence[str] | None = None,
    log: Callable[[str], object] | None = None,
) -> list[dict]:
    """Run the benchmarks and return one row per workload and system.

    Parameters
    ----------
    quick : bool
        Small sizes and 3 repeats: a sanity run, not a measurement.
    threads : int, optional
        Threads for every runtime (default: every core). fastnn's per-sample SGD steps
        on one, with a wide first layer's products on them; its minibatch training and
        predict, and every peer, use them.
    families : sequence of str, optional
        Run only these families of ``FAMILIES`` (default: all).
    log : callable(str), optional
        Progress messages (default: printed to stderr).

    Returns
    -------
    list of dict
        Keys: workload, system, unit, units, median_s (seconds per run, scaled to the
        full workload), unit_us (µs per unit), ratio (median / fastnn's median),
        threads, n_repeats, times_s, status ("ok", "skipped", "mismatch"), notes
        (on this row), about (the workload's sizes), pinned (the thread counts in
        force), sgemm (the machine's single-core sgemm rate, measured at the start:
        see ``machine.sgemm_rate``), and accuracy on digits.
    """
    n = resolve_threads(threads)
    chosen = list(FAMILIES) if families is None else list(families)
    for name in chosen:
        if name not in FAMILIES:
            raise ValueError(f"unknown benchmark family {name!r}: use any of {list(FAMILIES)}")
    if log is None:

        def log(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

    size = "quick" if quick else "full"
    rows: list[dict] = []
    with pinned_threads(n) as report:
        pinned = describe_threads(report).replace("\n", PINNED_SEPARATOR)
        xla = report["xla"]
        log("measuring the machine's single-core sgemm rate")
        sgemm = sgemm_rate(repeats=3 if quick else 5)
        for name in chosen:
            for workload in FAMILIES[name](size, n):
                rows.extend(run_workload(workload, n, pinned, log))
        for row in rows:
            row["sgemm"] = sgemm
    if xla is not None and xla["threads"] != n:
        for row in rows:
            if row["system"] == "jax" and row["status"] == "ok":
                note = f"XLA used all {xla['threads']} cores: no flag pins it to {n}"
                row["notes"] = f"{row['notes']}; {note}" if row["notes"] else note
    return rows
