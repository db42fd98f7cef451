"""Running fastnn on a Dask cluster: one shared compile cache, no oversubscription.

``configure_cluster(client)`` prepares every worker of a ``dask.distributed``
cluster for fastnn:

* **Threads.** Each worker gets as many threads as its ``nthreads`` (its share of
  the cores): ``NUMBA_NUM_THREADS`` and the OpenMP/BLAS thread variables are set
  in the worker's environment as its process starts (a nanny plugin, which
  restarts the workers; ``configure_cluster`` waits until they are back), and in
  the running worker a threadpoolctl BLAS limit is applied (a worker plugin).
  fastnn's scikit-learn estimators size their networks to that BLAS limit, so
  workers never oversubscribe the cores. The variables take effect for libraries
  the worker loads after they are set: a worker process imports the main script
  first, so a script that runs on a cluster keeps its imports inside the function
  guarded by ``if __name__ == "__main__"`` (see the README's example).
* **Compile cache.** Numba compiles fastnn's kernels once per machine and caches
  them on disk. Pointing every worker's ``NUMBA_CACHE_DIR`` at one directory lets
  the workers share that cache; with ``warm_up=True`` one worker compiles first and
  the others load its result instead of compiling the same kernels at once.

Use it with scikit-learn's searches through joblib's Dask backend::

    from dask.distributed import Client, LocalCluster
    import joblib

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1") as cluster, \\
            Client(cluster) as client:
        configure_cluster(client, cache_dir="numba-cache")
        with joblib.parallel_config(backend="dask"):
            search.fit(X, y)

Needs the ``dask`` extra: ``pip install ".[dask]"`` from a fastnn checkout.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from .validation import install_hint

try:
    from distributed.diagnostics.plugin import NannyPlugin, WorkerPlugin
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"fastnn.distributed needs dask.distributed: {install_hint('dask')}") from exc

from .threads import THREAD_VARIABLES, blas_threads, thread_environment
from .validation import check_dtype, check_positive_int

#: Seconds ``configure_cluster`` waits for the workers to come back from the restart
#: its nanny plugin causes (they import the main script again, which on a busy
#: machine takes a while) before it raises a TimeoutError.
WORKER_TIMEOUT_S = 120.0
#: Seconds between two tries of a registration whose connection closed.
RETRY_PAUSE_S = 0.5


def worker_environment(threads: int, cache_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """The environment a worker process should start with.

    Parameters
    ----------
    threads : int
        Threads for Numba, OpenMP and BLAS: the worker's share of the cores.
    cache_dir : str or os.PathLike, optional
        Numba's on-disk compile cache (``NUMBA_CACHE_DIR``), as an absolute path.

    Returns
    -------
    dict of str to str
    """
    threads = check_positive_int("threads", threads)
    env = thread_environment(threads)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = os.path.abspath(os.fspath(cache_dir))
    return env


def _check_cache_dir(cache_dir) -> str | None:
    if cache_dir is None:
        return None
    if not isinstance(cache_dir, str | os.PathLike):
        raise TypeError(f"cache_dir={cache_dir!r} must be a path (str or os.PathLike) or None")
    return os.path.abspath(os.fspath(cache_dir))


class FastnnNannyPlugin(NannyPlugin):
    """Sets each worker's thread and cache variables before its process starts.

    Registering it restarts the workers, so that Numba and the BLAS libraries read
    the variables when they load (unless the worker process loaded them before,
    while importing the main script). Workers without a nanny are unaffected; the
    ``FastnnWorkerPlugin`` covers them as far as a running process allows.

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        One ``NUMBA_CACHE_DIR`` for every worker.
    threads : int, optional
        Threads per worker; by default each worker's ``nthreads``.
    """

    name = "fastnn-environment"
    restart = True

    def __init__(self, cache_dir=None, threads: int | None = None) -> None:
        self.cache_dir = _check_cache_dir(cache_dir)
        self.threads = None if threads is None else check_positive_int("threads", threads)

    def setup(self, nanny) -> None:
        threads = self.threads or nanny.nthreads or 1
        nanny.env.update(worker_environment(threads, self.cache_dir))


class FastnnWorkerPlugin(WorkerPlugin):
    """Limits a running worker's BLAS threads and points Numba's cache.

    Numba's thread pool keeps the size it got when Numba loaded (fastnn's kernels
    are serial and never use it); ``NUMBA_NUM_THREADS`` is kept at that size, so
    that no later compile in the worker fails (``match_numba_threads``).

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Applied to Numba's configuration, which takes effect for kernels the
        worker has not loaded yet (fastnn loads them on first use).
    threads : int, optional
        Threads per worker; by default the worker's ``nthreads``.
    """

    name = "fastnn-threads"

    def __init__(self, cache_dir=None, threads: int | None = None) -> None:
        self.cache_dir = _check_cache_dir(cache_dir)
        self.threads = None if threads is None else check_positive_int("threads", threads)
        self._limit: contextlib.ExitStack | None = None

    def setup(self, worker) -> None:
        threads = self.threads or worker.state.nthreads or 1
        env = worker_environment(threads, self.cache_dir)
        # Numba's pool size is fixed once Numba is loaded, and numba.set_num_threads
        # holds only for the calling thread, not the worker's task threads; fastnn's
        # kernels are serial, so only BLAS needs a limit at run time.
        del env["NUMBA_NUM_THREADS"]
        os.environ.update(env)
        import numba

        if self.cache_dir is not None:
            numba.config.CACHE_DIR = self.cache_dir
        match_numba_threads()
        # Process-wide: holds for every thread until teardown.
        self._limit = contextlib.ExitStack()
        self._limit.enter_context(blas_threads(threads))

    def teardown(self, worker) -> None:
        if self._limit is not None:
            self._limit.close()
            self._limit = None


def match_numba_threads() -> None:
    """Make ``NUMBA_NUM_THREADS`` and Numba's configuration agree with the size of
    Numba's thread pool, so that no later compile fails.

    Numba fixes its pool size when it is imported, and reads its variables again
    before each compile, raising a RuntimeError there once its threads run with a
    count other than the variable's. A worker's variable can change after Numba
    loaded: a nanny sets the environment after the worker process imported the main
    script, which may import Numba. The pool size cannot change then (fastnn's
    kernels are serial: they never use that pool), so the variable follows it.
    """
    import numba
    from numba.core.compiler_lock import global_compiler_lock
    from numba.np.ufunc import parallel

    with global_compiler_lock:  # no compile in another thread reloads meanwhile
        size = str(parallel.NUM_THREADS)
        if os.environ.get("NUMBA_NUM_THREADS") == size == str(numba.config.NUMBA_NUM_THREADS):
            return
        os.environ["NUMBA_NUM_THREADS"] = size
        try:
            numba.config.reload_config()
        except RuntimeError:  # the threads already run, with the configured count
            os.environ["NUMBA_NUM_THREADS"] = str(numba.config.NUMBA_NUM_THREADS)
            numba.config.reload_config()


def _kernel_dispatchers() -> list:
    from numba.core.registry import CPUDispatcher

    seen: dict[int, Any] = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("fastnn.kernels") and module is not None:
            for value in vars(module).values():
                if isinstance(value, CPUDispatcher):
                    seen[id(value)] = value
    return list(seen.values())


def worker_report() -> dict[str, Any]:
    """What a worker runs with: its thread settings, Numba's cache directory, and
    how many kernel signatures it compiled (cache misses) or loaded (cache hits).

    Run it on every worker with ``client.run(worker_report)``.
    """
    import numba

    from .threads import default_threads

    hits = misses = 0
    for dispatcher in _kernel_dispatchers():
        hits += sum(dispatcher.stats.cache_hits.values())
        misses += sum(dispatcher.stats.cache_misses.values())
    return {
        "numba_threads": numba.get_num_threads(),
        "numba_num_threads": numba.config.NUMBA_NUM_THREADS,
        "blas_threads": default_threads(),
        "cache_dir": numba.config.CACHE_DIR or None,
        "cache_hits": hits,
        "cache_misses": misses,
        "environment": {k: os.environ.get(k) for k in (*THREAD_VARIABLES, "NUMBA_CACHE_DIR")},
    }


def warm_up(dtypes: Iterable = (np.float64,)) -> dict[str, Any]:
    """Compile (or load from the cache) the kernels the scikit-learn estimators
    run by default, for each dtype; return ``worker_report()``.

    That is minibatch training (with an optimizer state and L2) and predict, on a
    tiny network: the kernels are specialised on array types only, so this covers
    any layer sizes, activations, losses and optimizers. Per-sample SGD
    (``batch_size=1``) is left to compile on first use, then shared through the
    cache like the rest.
    """
    from .layers import Dense, ReLU
    from .network import Network

    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3))
    y = rng.integers(0, 2, size=16)
    for dtype in dtypes:
        net = Network([Dense(3, 4), ReLU(), Dense(4, 2)], loss="cross_entropy", dtype=dtype)
        net.fit(X, y, epochs=1, batch_size=4, optimizer="adam", l2=1e-4)
        net.predict(X)
    return worker_report()


def configure_cluster(
    client,
    cache_dir: str | os.PathLike | None = None,
    *,
    threads: int | None = None,
    warm_up: bool = True,
    dtypes: Iterable = (np.float64,),
) -> dict[str, dict[str, Any]]:
    """Prepare every worker of ``client``'s cluster for fastnn.

    Registers ``FastnnNannyPlugin`` (restarting workers that have a nanny, so
    their environment is set before Numba loads) and ``FastnnWorkerPlugin``; with
    ``warm_up``, compiles fastnn's kernels on one worker, then loads them from the
    shared cache on the others. Workers that join later get the same settings.

    Each registration waits until all the workers there were are running again; a
    connection that closes while they restart is retried. If they are not back
    within ``WORKER_TIMEOUT_S`` seconds (a module variable), a TimeoutError says so.

    Parameters
    ----------
    client : dask.distributed.Client
    cache_dir : str or os.PathLike, optional
        One Numba cache directory for the cluster; it must be reachable by every
        worker (all workers of a LocalCluster share the machine's disk). By default
        Numba's own location is kept: next to fastnn's kernels when that is
        writable, which all processes on a machine already share.
    threads : int, optional
        Threads per worker; by default each worker's ``nthreads``.
    warm_up : bool
        Compile the kernels before any task needs them.
    dtypes : iterable of dtype
        The float types to warm up (np.float32 and/or np.float64).

    Returns
    -------
    dict
        ``worker_report()`` of each worker, by address.

    Raises
    ------
    TimeoutError
        If the workers are not all running again within ``WORKER_TIMEOUT_S``.
    """
    cache_dir = _check_cache_dir(cache_dir)
    if threads is not None:
        threads = check_positive_int("threads", threads)
    dtypes = [check_dtype(d) for d in dtypes]
    if cache_dir is not None:
        os.makedirs(cache_dir, exist_ok=True)
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    n_workers = len(client.nthreads())
    # The nanny plugin restarts the workers: wait until they are all back.
    _register(client, FastnnNannyPlugin(cache_dir, threads), n_workers, deadline)
    _register(client, FastnnWorkerPlugin(cache_dir, threads), n_workers, deadline)
    workers = sorted(client.nthreads())
    if not warm_up or not workers:
        return client.run(worker_report)
    # One worker compiles and fills the cache; then the rest load from it at once.
    first = client.submit(_warm_up_task, dtypes, workers=[workers[0]], pure=False)
    reports = {workers[0]: first.result()}
    rest = [
        client.submit(_warm_up_task, dtypes, workers=[w], pure=False, allow_other_workers=False)
        for w in workers[1:]
    ]
    for address, future in zip(workers[1:], rest, strict=True):
        reports[address] = future.result()
    return reports


def _register(client, plugin, n_workers: int, deadline: float) -> None:
    """Register ``plugin``, then wait for ``n_workers`` workers, before ``deadline``.

    A connection that closes while the workers restart (CommClosedError, an
    OSError) is retried until the deadline; a TimeoutError names the limit.
    """
    while True:
        try:
            client.register_plugin(plugin)
            client.wait_for_workers(n_workers, timeout=max(deadline - time.monotonic(), 0.001))
            return
        except TimeoutError as exc:  # a subclass of OSError: caught first
            error: OSError = exc
        except OSError as exc:
            if time.monotonic() < deadline:
                time.sleep(RETRY_PAUSE_S)
                continue
            error = exc
        raise TimeoutError(
            f"configure_cluster: the {n_workers} Dask workers were not all running "
            f"with fastnn's {plugin.name!r} plugin within {WORKER_TIMEOUT_S} s "
            f"(fastnn.distributed.WORKER_TIMEOUT_S) after {type(error).__name__}: {error}; "
            "see client.get_worker_logs() for why, or raise the limit on a busy machine"
        ) from error


def _warm_up_task(dtypes) -> dict[str, Any]:
    return warm_up(dtypes)


# Training, prediction and evaluation on the cluster (imported last: they need dask).
from .dask_data import evaluate, predict  # noqa: E402, F401
from .dask_training import fit  # noqa: E402, F401
