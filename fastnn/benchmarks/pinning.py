"""Thread pinning: every runtime (Numba, BLAS, OpenMP, torch, XLA) on the same count.

Thread counts are pinned before the peers are imported and printed with the
results: Numba, every BLAS and OpenMP library that threadpoolctl sees (by name),
torch's intra- and inter-op pools, and XLA (one thread via ``XLA_FLAGS``; XLA has no
flag for other counts, so with more threads it uses every core).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from ..threads import BLAS_THREAD_VARIABLES as THREAD_ENV
from ..threads import available_cores, thread_environment
from ..validation import check_positive_int, install_hint
from .cases import optional

#: XLA's CPU runtime on one thread (read when JAX starts its backend).
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
#: Joins the lines of ``describe_threads`` into a row's "pinned" string.
PINNED_SEPARATOR = " | "


def resolve_threads(threads: int | None) -> int:
    """``threads``, checked; every core this process may use when it is None."""
    return available_cores() if threads is None else check_positive_int("threads", threads)


def pin_environment(threads: int, *, runtimes: bool = True) -> None:
    """Set the thread variables that libraries read when they load.

    ``XLA_FLAGS`` gets the one-thread flags when ``threads`` is 1 and JAX has not
    been imported yet; with ``runtimes``, ``NUMBA_NUM_THREADS`` (only before Numba is
    imported: Numba refuses a change once its threads run) and the OpenMP/BLAS
    variables for libraries loaded later and child processes. Nothing is restored:
    these variables only matter before a library loads.
    """
    if threads == 1 and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {XLA_ONE_THREAD}".strip()
    if runtimes:
        if "numba" not in sys.modules:
            os.environ["NUMBA_NUM_THREADS"] = str(threads)
        for name in THREAD_ENV:
            os.environ[name] = str(threads)


def thread_report(threads: int) -> dict[str, Any]:
    """The thread counts in force now, library by library."""
    import numba
    from threadpoolctl import threadpool_info

    info = threadpool_info()

    def pools(api: str) -> list[dict[str, Any]]:
        return [
            {
                # The file, inside its package's folder: NumPy and SciPy each bring
                # their own OpenBLAS, under the same prefix.
                "library": os.path.join(*lib["filepath"].split(os.sep)[-2:])
                if lib.get("filepath")
                else lib.get("prefix"),
                "api": lib.get("internal_api"),
                "version": lib.get("version"),
                "threads": lib.get("num_threads"),
            }
            for lib in info
            if lib.get("user_api") == api
        ]

    torch = sys.modules.get("torch")
    xla = None
    if "jax" in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        one = "xla_cpu_multi_thread_eigen=false" in flags
        xla = {"threads": 1 if one else available_cores(), "flags": flags}
    return {
        "requested": threads,
        "numba": numba.get_num_threads(),
        "numba_max": numba.config.NUMBA_NUM_THREADS,
        "blas": pools("blas"),
        "openmp": pools("openmp"),
        "torch": None
        if torch is None
        else {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        "xla": xla,
    }


def describe_threads(report: dict[str, Any]) -> str:
    """One line per runtime: the pinned thread counts of ``thread_report``."""

    def libs(entries) -> str:
        return ", ".join(
            f"{e['library']} ({e['api']} {e['version'] or ''}".rstrip() + f") = {e['threads']}"
            for e in entries
        )

    lines = [
        f"requested: {report['requested']}",
        f"numba: {report['numba']} (NUMBA_NUM_THREADS={report['numba_max']}; fastnn's "
        "task-parallel kernels run on this many threads)",
        f"BLAS: {libs(report['blas']) or 'none found by threadpoolctl'}",
    ]
    if report["openmp"]:
        lines.append(f"OpenMP: {libs(report['openmp'])}")
    torch = report["torch"]
    lines.append(
        "torch: not installed"
        if torch is None
        else f"torch: {torch['intra_op']} intra-op, {torch['inter_op']} inter-op"
    )
    xla = report["xla"]
    if xla is None:
        lines.append("XLA: jax not installed")
    elif xla["threads"] == 1:
        lines.append(f"XLA: 1 (XLA_FLAGS={xla['flags']})")
    else:
        lines.append(f"XLA: its default pool, all {xla['threads']} cores (no flag for N > 1)")
    return "\n".join(lines)


def _pin_process(cores) -> None:
    """Restrict every thread of this process to ``cores``: ``sched_setaffinity(0)``
    moves only the calling thread, and pools that runtimes started earlier keep
    their own masks. Threads started later inherit their creator's."""
    tasks = f"/proc/{os.getpid()}/task"
    tids = [int(t) for t in os.listdir(tasks)] if os.path.isdir(tasks) else [0]
    for tid in tids:
        with contextlib.suppress(OSError):  # a thread that has just exited
            os.sched_setaffinity(tid, cores)


@contextlib.contextmanager
def pinned_threads(threads: int | None = None, *, runtimes: bool = True) -> Iterator[dict]:
    """Pin every runtime to ``threads`` inside the block; yields ``thread_report``.

    Imports torch and jax (when installed) after setting their variables, so their
    pools start pinned; BLAS and OpenMP are limited through threadpoolctl (including
    SciPy's BLAS, which Numba's ``np.dot`` calls). On exit the Numba, torch and
    threadpoolctl settings are restored; environment variables stay (see
    ``pin_environment``), as does torch's inter-op count, which can be set only once.
    """
    n = resolve_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as err:
        raise ImportError(
            "the benchmarks pin BLAS threads with threadpoolctl, which is not installed: "
            + install_hint("bench")
        ) from err
    pin_environment(n, runtimes=runtimes)
    import numba
    import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS so it is limited too)

    numba_before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    torch = optional("torch")
    torch_before = None
    if torch is not None:
        torch_before = torch.get_num_threads()
        torch.set_num_threads(n)
        with contextlib.suppress(RuntimeError):  # set already, or parallel work started
            torch.set_num_interop_threads(n)
    jax = optional("jax")
    if jax is not None:
        jax.devices("cpu")  # start XLA's backend now, while XLA_FLAGS holds the pin
    limits = threadpool_limits(limits=n)
    # Thread-count flags alone do not bound every runtime (XLA's CPU client still
    # spreads a matrix product across cores): restrict every thread of the process,
    # the pools started above included, to n cores.
    cores_before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if cores_before is not None and n < len(cores_before):
        _pin_process(sorted(cores_before)[:n])
    try:
        yield thread_report(n)
    finally:
        if cores_before is not None:
            _pin_process(cores_before)
        limits.restore_original_limits()
        numba.set_num_threads(numba_before)
        if torch is not None:
            torch.set_num_threads(torch_before)


def child_environment(threads: int) -> dict[str, str]:
    """The environment of a benchmark's child process: this one's, threads pinned."""
    env = dict(os.environ)
    env.update(thread_environment(threads))
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
    return env
