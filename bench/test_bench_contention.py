"""The ``contention`` family: minibatch training while another process keeps a core
busy, fastnn at 1, 2 and default threads against PyTorch at 1 and 2.

The family compares thread counts, so this module runs on two threads at least,
whatever ``--bench-threads`` says; it needs two cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fastnn import benchmarks as fb
from fastnn.benchmarks.workloads import contention

if not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc"):
    pytest.skip("the busy process needs Linux", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def pinned_runtimes(two_threads):
    """Every runtime on two threads at least (this overrides conftest's)."""
    return two_threads


@pytest.mark.parametrize("system", list(contention.VARIANTS))
def test_contention(measure, bench_size, two_threads, system):
    """784-256-128-10 minibatch, batch 64, one core busy: µs per sample."""
    measure(fb.contention_workload(bench_size, two_threads), system)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_busy_process_spins_on_the_last_core_while_cases_are_open(two_threads):
    workload = fb.contention_workload("smoke", two_threads)
    first = workload.builders["fastnn"]()
    busy = first.busy
    try:
        second = workload.builders["fastnn-2t"]()
        pid = busy.proc.pid
        assert busy.users == 2 and _alive(pid)
        assert os.sched_getaffinity(pid) == {sorted(os.sched_getaffinity(0))[-1]}
        first.close()
        first.close()  # a second close releases nothing more
        assert busy.users == 1 and _alive(pid)
        second.close()
        assert busy.proc is None and not _alive(pid)
    finally:
        first.close()


def test_the_busy_process_stops_when_its_parent_dies():
    # The parent starts a spinner and exits at once, as a killed benchmark would.
    parent = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', sys.argv[1], str(os.getpid())])\n"
        "print(p.pid)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", parent, contention._SPIN],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(out.stdout)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"the spinner {pid} outlived its parent"


def test_one_thread_is_unavailable_with_its_reason():
    workload = fb.contention_workload("smoke", 1)
    with pytest.raises(fb.Unavailable, match="two threads"):
        workload.builders["fastnn"]()
    # The systems of the usual columns first, then the other thread counts.
    assert workload.systems == (
        "fastnn", "torch", "fastnn-2t", "fastnn-default", "fastnn-2t-forced", "torch-2t"
    )  # fmt: skip
