"""Minibatch training (784-256-128-10, batch 64, momentum, float32) with another process
busy on one of the cores: fastnn at one and two threads and at its default
(``threads=None``: two cores, less the busy ones) against PyTorch at one and two.

fastnn trains on no more threads than the cores other processes leave idle, a set
``threads`` included, and its weights are the same bits at any count. The row
"fastnn threads=2 on the busy core" takes that check away (two threads whatever the
load), to show what a thread on a busy core costs.

A busy-loop process pinned to the last core of this process's cores runs for the
whole measurement. The systems are timed round-robin in one process (one epoch of
each per round), and the medians are printed with their ratios. Needs two cores.

    python bench/contention.py --repeats 7
    python bench/contention.py --no-load      # the same, without the busy process
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import time

import fastnn.network
from fastnn import benchmarks


def _spin(core: int) -> None:
    os.sched_setaffinity(0, {core})
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-load", action="store_true", help="no busy process")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("needs two cores")
    busy = None
    if not args.no_load:
        busy = multiprocessing.get_context("spawn").Process(target=_spin, args=(cores[-1],))
        busy.start()
    try:
        with benchmarks.pinned_threads(2) as report:
            print("threads:", {k: report[k] for k in ("requested", "numba", "torch")})
            print("busy process on core", cores[-1] if busy else None)
            measure(args.repeats)
    finally:
        if busy is not None:
            busy.terminate()
            busy.join()


@contextlib.contextmanager
def _every_core_idle(on: bool):
    """With ``on``, fastnn sees no other process on any core while inside."""
    idle = fastnn.network.idle_cores
    if on:
        fastnn.network.idle_cores = lambda: os.cpu_count() or 1
    try:
        yield
    finally:
        fastnn.network.idle_cores = idle


FORCED = "fastnn threads=2 on the busy core"


def measure(repeats: int) -> None:
    import torch

    cases = {}
    for t in (1, 2, None):
        workload = benchmarks.minibatch_workload("full", threads=t)
        for system in ("fastnn", "torch") if t else ("fastnn",):
            cases[f"{system} threads={t}"] = (t or 2, workload.builders[system]())
    cases[FORCED] = (2, benchmarks.minibatch_workload("full", threads=2).builders["fastnn"]())
    times: dict[str, list[float]] = {name: [] for name in cases}
    used: dict[str, set[int]] = {name: set() for name in cases if name.startswith("fastnn")}
    for _ in range(repeats):
        for name, (t, case) in cases.items():
            torch.set_num_threads(t)
            case.reset()
            with _every_core_idle(name == FORCED):
                if name in used:
                    used[name].add(case.net._threads_for(64))
                start = time.perf_counter()
                case.run()
                times[name].append((time.perf_counter() - start) / case.units)
    base = statistics.median(times["fastnn threads=1"])
    print(f"minibatch-784-256-128-10, batch 64, {repeats} rounds, median µs per sample:")
    for name, t in times.items():
        med = statistics.median(t)
        on = f"   trained on {sorted(used[name])} threads" if name in used else ""
        print(f"  {name:34s} {med * 1e6:7.1f} µs   time / fastnn threads=1: {med / base:5.2f}{on}")
    for t, ours in ((1, 1), (2, 2), (2, None)):
        ratio = statistics.median(times[f"torch threads={t}"]) / statistics.median(
            times[f"fastnn threads={ours}"]
        )
        print(f"  torch threads={t} / fastnn threads={ours} = {ratio:.2f}")


if __name__ == "__main__":
    main()
