"""Minibatch training under load: the minibatch workload (784-256-128-10, batch 64,
float32) while another process keeps one of this process's cores busy.

fastnn runs at one thread (``fastnn``, the baseline), two (``fastnn-2t``) and its
default (``fastnn-default``: ``threads=None``); it trains on no more threads than the
cores other processes leave idle, a set count included, and each row's notes say on
how many it did. ``fastnn-2t-forced`` takes that check away (two threads whatever the
load). PyTorch runs at one (``torch``) and two (``torch-2t``). All six are timed
round-robin in one process,
so every ratio is to fastnn on one thread under the same load. BLAS threads wait
for each other by spinning, so a thread whose core is taken holds up every product.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

from ...threads import available_cores
from ..cases import Case, Unavailable, Workload
from .minibatch import minibatch_workload

# Spins on one core until its parent exits (so a killed benchmark leaves no spinner).
_SPIN = """\
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""

#: System -> (the minibatch workload's system it runs, its thread count).
VARIANTS: dict[str, tuple[str, int | None]] = {
    "fastnn": ("fastnn", 1),
    "fastnn-2t": ("fastnn", 2),
    "fastnn-default": ("fastnn", None),
    "fastnn-2t-forced": ("fastnn", 2),
    "torch": ("torch", 1),
    "torch-2t": ("torch", 2),
}
#: The system that trains on two threads whatever the load: fastnn is told that every
#: core is idle, to show what a thread on the busy core costs.
FORCED = "fastnn-2t-forced"


@contextlib.contextmanager
def _every_core_idle(on: bool) -> Iterator[None]:
    """With ``on``, fastnn sees no other process on any core while inside."""
    from ... import network

    idle = network.idle_cores
    if on:
        network.idle_cores = lambda: os.cpu_count() or 1
    try:
        yield
    finally:
        network.idle_cores = idle


class BusyCore:
    """A busy-loop process pinned to the last core this process may use, shared by
    the cases of a workload: started by the first ``acquire``, stopped by the last
    ``release``."""

    def __init__(self) -> None:
        self.users = 0
        self.proc: subprocess.Popen | None = None
        self.core: int | None = None

    def acquire(self) -> None:
        if self.proc is None:
            self.core = sorted(os.sched_getaffinity(0))[-1]
            self.proc = subprocess.Popen([sys.executable, "-c", _SPIN, str(os.getpid())])
            os.sched_setaffinity(self.proc.pid, {self.core})
        self.users += 1

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None


class UnderLoad(Case):
    """A case of the minibatch workload, run while ``busy`` holds a core; a torch case
    gets its thread count before every run (torch's is one setting per process)."""

    def __init__(self, system: str, inner: Case, busy: BusyCore, torch_threads=None) -> None:
        super().__init__(system, inner.units, inner.scale, inner.notes, inner.repeats)
        self.inner, self.busy, self.torch_threads = inner, busy, torch_threads
        self.used: set[int] = set()  # the thread counts fastnn trained on
        busy.acquire()
        self._held = True

    def reset(self) -> None:
        if self.torch_threads is not None:
            self.inner.torch.set_num_threads(self.torch_threads)
        self.inner.reset()

    def run(self):
        with _every_core_idle(self.system == FORCED):
            net = getattr(self.inner, "net", None)
            if hasattr(net, "_threads_for"):
                self.used.add(net._threads_for(64))
                self.notes = f"trained on {sorted(self.used)} thread(s)"
            return self.inner.run()

    def result(self):
        return self.inner.result()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if self._held:
                self._held = False
                self.busy.release()


def contention_workload(size: str = "full", threads: int = 2) -> Workload:
    """The minibatch workload with a busy process on one core: fastnn at 1, 2 and
    default threads, PyTorch at 1 and 2 (``VARIANTS``). Needs two threads and cores.

    fastnn at one thread is checked against fastnn at two, and every other system
    against fastnn at one (the minibatch family checks fastnn against its twin).
    """
    busy = BusyCore()
    by_threads = {t: minibatch_workload(size, t) for t in (1, 2, None)}

    def builder(system: str, base: str, t: int | None):
        def build() -> Case:
            if not hasattr(os, "sched_setaffinity"):
                raise Unavailable("needs Linux: the busy process is pinned with sched_setaffinity")
            if threads < 2 or available_cores() < 2:
                raise Unavailable(
                    f"needs two cores and two threads (has {available_cores()} cores, "
                    f"threads={threads}); run without --threads 1"
                )
            inner = by_threads[t].builders[base]()
            torch_threads = t if base == "torch" else None
            return UnderLoad(system, inner, busy, torch_threads)

        return build

    base = by_threads[1]
    checks = None
    if base.check_builders is not None:
        by_check = {t: w.check_builders for t, w in by_threads.items()}

        def check_builder(system: str, b: str, t: int | None):
            return lambda: UnderLoad(system, by_check[t][b](), busy, t if b == "torch" else None)

        checks = {name: check_builder(name, b, t) for name, (b, t) in VARIANTS.items()}
    return Workload(
        name="contention-minibatch-784-256-128-10",
        group="contention-minibatch-784-256-128-10",
        unit="sample",
        builders={name: builder(name, b, t) for name, (b, t) in VARIANTS.items()},
        check_builders=checks,
        compare=base.compare,
        oracle="fastnn-2t",
        repeats=base.repeats,
        notes=f"{base.notes.split(',')[0]}, one epoch, batch 64, a busy process on the last "
        "core; fastnn and torch at 1 thread, -2t at 2, fastnn-default at threads=None, "
        "fastnn-2t-forced at 2 whatever the load",
    )


def workloads(size: str = "full", threads: int = 2) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [contention_workload(size, threads)]
