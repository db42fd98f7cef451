"""How many cores fastnn's kernels use.

Minibatch training cuts each layer's products into tasks of fixed shape, each a
single-threaded BLAS call, and runs them on Numba's threads (``numba_threads``);
predict splits its rows across Python threads. Either way a result is the same bits
at any thread count, so the count is free to follow the load. Per-sample SGD steps
from sample to sample on one thread; on a wide first layer, that layer's products
run as tasks on Numba's threads, with the same bits at any count. Every kernel
releases the GIL and may be called from several Python threads at once (Numba's
``omp`` and ``tbb`` threading layers allow that; its ``workqueue`` layer, used only
when neither is installed, does not). A fit on one thread starts no Numba thread
pool; once one has, a process forked from this one trains on one thread (GNU OpenMP
is not fork-safe), with the same results.

A thread that waits for one on a busy core holds up the step: when another process
holds one of the cores, BLAS's spinning threads made two threads many times slower
than one (see ``bench/contention.py``). So a network asks for no more threads than
there are cores nobody else is running on (``idle_cores``), whatever ``threads`` says.

BLAS threads are set through threadpoolctl when it is installed (it comes with the
``sklearn``, ``bench`` and ``dev`` extras); without it, BLAS keeps its own default,
which is every core.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: Variables that size the thread pools of the OpenMP and BLAS libraries NumPy and
#: SciPy may load (and NumExpr's), read once, when each library loads.
BLAS_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: The same, with Numba's.
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", *BLAS_THREAD_VARIABLES)


def thread_environment(threads: int) -> dict[str, str]:
    """Every variable of ``THREAD_VARIABLES`` set to ``threads``: the environment
    that sizes a new process's pools (Numba, OpenMP, BLAS) before they load."""
    return dict.fromkeys(THREAD_VARIABLES, str(threads))


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _running_threads(task_dir: str) -> int:
    """How many of the threads under ``task_dir`` (/proc/PID/task) are running."""
    count = 0
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread has exited
            continue
        # The state follows the command name, which is in parentheses and may hold spaces.
        count += stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"R"
    return count


def idle_cores() -> int:
    """The cores that no other process is running on at this moment (at least 1).

    Linux's count of running threads (/proc/loadavg) less this process's own. A
    snapshot counts this process's running threads just before and just after
    reading the total, and keeps the larger count (one of its threads that goes to
    sleep in between would pass for another process). When the first snapshot sees
    others running, the fewest others of three is taken, so a thread that runs
    for an instant (a kernel worker) does not cost a fit its threads, while a
    process that keeps a core busy shows in all three. Elsewhere:
    ``available_cores()``.
    """
    cores = available_cores()
    try:
        others = _other_running()
        if others > 0:  # confirmed by two more (each costs about 0.2 ms)
            others = min(others, _other_running(), _other_running())
    except (OSError, ValueError, IndexError):
        return cores
    return max(1, min(cores, (os.cpu_count() or cores) - others))


def _other_running() -> int:
    """Running threads outside this process, in one snapshot (see ``idle_cores``)."""
    tasks = f"/proc/{os.getpid()}/task"
    before = _running_threads(tasks)
    with open("/proc/loadavg", "rb") as f:
        running = int(f.read().split()[3].split(b"/")[0])
    return running - max(before, _running_threads(tasks))


def _controller():
    # Keyed on whether Numba is loaded: only Numba's kernels call SciPy's BLAS, and
    # loading it takes a quarter of a warm ``fastnn predict`` (NumPy twin only).
    return _controller_for("numba" in sys.modules or "fastnn.kernels" in sys.modules)


@functools.cache
def _controller_for(with_scipy_blas: bool):
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    if with_scipy_blas:
        # Numba's np.dot calls SciPy's BLAS: load it first, or the controller won't see it.
        import scipy.linalg.cython_blas  # noqa: F401

    return ThreadpoolController()


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Limit BLAS to ``n`` threads inside the block (no-op without threadpoolctl)."""
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=n, user_api="blas"):
        yield


#: The process that started Numba's thread pool, if one did.
_pool_pid: int | None = None


def numba_threads(n: int, run: Callable[..., T]) -> Callable[..., T]:
    """``run``, with the Numba parallel regions it starts on ``n`` threads (at most
    Numba's pool, ``NUMBA_NUM_THREADS``) that take their iterations one at a time, so
    a thread that the system holds back delays only the task it has. Both settings
    belong to the calling thread, so they are made in whichever thread calls ``run``.
    One thread in a process forked after its parent started the pool."""

    import numba

    def call(*args: Any) -> T:
        global _pool_pid
        count = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
        if count > 1:
            if _pool_pid not in (None, os.getpid()):
                count = 1  # the pool is the parent's: in a fork, it would abort
            else:
                _pool_pid = os.getpid()
        threads = numba.get_num_threads()
        if count == 1 == threads:
            return run(*args)  # no parallel region starts: nothing to set (a small epoch)
        numba.set_num_threads(count)
        chunk = numba.set_parallel_chunksize(1)
        try:
            return run(*args)
        finally:
            numba.set_parallel_chunksize(chunk)
            numba.set_num_threads(threads)

    return call


def default_threads() -> int:
    """The BLAS threads a network may use now: every core, or fewer when an outer
    threadpoolctl limit is in force (joblib's workers, a Dask worker configured by
    ``fastnn.distributed``, or ``threadpool_limits``)."""
    cores = available_cores()
    controller = _controller()
    if controller is None:
        return cores
    limits = [lib["num_threads"] for lib in controller.select(user_api="blas").info()]
    return max(1, min([cores, *limits]))
