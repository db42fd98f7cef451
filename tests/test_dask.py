"""A scikit-learn search on a local Dask cluster, through joblib's Dask backend."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("distributed")

import joblib
from dask.distributed import Client, LocalCluster
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastnn.distributed import configure_cluster, worker_environment, worker_report
from fastnn.sklearn import FastMLPClassifier

pytestmark = pytest.mark.filterwarnings("ignore:Stochastic optimizer")


@pytest.fixture
def cache_dir(request, tmp_path):
    """One Numba cache for the cluster; kept between runs when pytest's cache is
    on, so only the first run compiles the kernels."""
    if getattr(request.config, "cache", None) is not None:
        return request.config.cache.mkdir("fastnn-dask-numba-cache")
    return tmp_path / "numba-cache"


def make_search() -> GridSearchCV:
    pipe = make_pipeline(
        StandardScaler(), FastMLPClassifier(max_iter=40, learning_rate_init=0.05, random_state=0)
    )
    grid = {
        "fastmlpclassifier__hidden_layer_sizes": [(4,), (12,)],
        "fastmlpclassifier__alpha": [1e-4, 1e-2],
    }
    return GridSearchCV(pipe, grid, cv=3, n_jobs=-1)


def test_worker_environment():
    env = worker_environment(3, "cache")
    assert env["NUMBA_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "3"
    assert env["NUMBA_CACHE_DIR"] == os.path.abspath("cache")
    assert "NUMBA_CACHE_DIR" not in worker_environment(1)
    with pytest.raises(ValueError, match="threads=0"):
        worker_environment(0)


def test_grid_search_on_local_cluster(cache_dir):
    X, y = load_iris(return_X_y=True)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        reports = configure_cluster(client, cache_dir=cache_dir)
        assert len(reports) == 2
        for report in reports.values():
            assert report["numba_threads"] == report["numba_num_threads"] == 1
            assert report["blas_threads"] == 1
            assert report["cache_dir"] == str(cache_dir)
            assert report["environment"]["NUMBA_CACHE_DIR"] == str(cache_dir)
            assert report["environment"]["OPENBLAS_NUM_THREADS"] == "1"
        # The first worker compiled (or loaded); the second only loaded its cache.
        second = reports[sorted(reports)[1]]
        assert second["cache_hits"] > 0 and second["cache_misses"] == 0, reports
        assert any(name.endswith(".nbi") for _, _, files in os.walk(cache_dir) for name in files)

        search = make_search()
        with joblib.parallel_config(backend="dask"):
            search.fit(X, y)
        after = client.run(worker_report)
        for address, report in after.items():
            assert report["blas_threads"] == 1
            # The warm-up compiled everything the search needed: no worker compiled
            # again (read-only inputs from Dask included).
            assert report["cache_misses"] == reports[address]["cache_misses"]
            # Both workers took part: they ran estimator kernels after the warm-up.
            assert report["cache_hits"] >= reports[address]["cache_hits"]
        log = client.run(lambda dask_worker: len(dask_worker.state.log))
        assert all(n > 0 for n in log.values())

    local = make_search().set_params(n_jobs=1).fit(X, y)
    assert search.best_params_ == local.best_params_
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert search.best_estimator_.score(X, y) > 0.8


# A worker process that loaded Numba before its nanny set NUMBA_NUM_THREADS (to a
# count other than the pool's), then got the worker plugin and compiled a kernel.
LATE_VARIABLE = """
import os
from types import SimpleNamespace
import numba
from numba.np.ufunc import parallel
from fastnn.distributed import FastnnWorkerPlugin
os.environ["NUMBA_NUM_THREADS"] = str(parallel.NUM_THREADS + 1)
plugin = FastnnWorkerPlugin(threads=parallel.NUM_THREADS + 1)
plugin.setup(SimpleNamespace(state=SimpleNamespace(nthreads=1)))
numba.get_num_threads()  # starts Numba's threads
assert numba.njit(lambda x: x + 1)(1) == 2  # a compile reads the variables again
assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS == parallel.NUM_THREADS
assert os.environ["NUMBA_NUM_THREADS"] == str(parallel.NUM_THREADS)
print("ok")
"""


def test_worker_plugin_keeps_numba_compiling_after_a_late_thread_variable():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", LATE_VARIABLE], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


class FlakyClient:
    """A client whose first registrations lose their connection, as when the
    workers restart under them; its workers come back after ``back_after`` waits."""

    def __init__(self, failures: int, back_after: int = 0) -> None:
        self.failures = failures
        self.back_after = back_after
        self.registered: list[str] = []

    def nthreads(self):
        return {"tcp://a": 1, "tcp://b": 1}

    def register_plugin(self, plugin):
        from distributed.comm.core import CommClosedError

        if self.failures:
            self.failures -= 1
            raise CommClosedError("in <TCP (closed) ConnectionPool.register_nanny_plugin>")
        self.registered.append(plugin.name)

    def wait_for_workers(self, n, timeout):
        assert n == 2 and timeout > 0
        if self.back_after:
            self.back_after -= 1
            raise TimeoutError(f"Only 0/{n} workers arrived after {timeout}")

    def run(self, function):
        return {address: {"address": address} for address in self.nthreads()}


def test_configure_cluster_retries_a_closed_registration(monkeypatch):
    import fastnn.distributed as fd

    monkeypatch.setattr(fd, "RETRY_PAUSE_S", 0.0, raising=False)
    client = FlakyClient(failures=2)
    reports = configure_cluster(client, warm_up=False)
    assert client.registered == ["fastnn-environment", "fastnn-threads"]
    assert sorted(reports) == ["tcp://a", "tcp://b"]


def test_configure_cluster_names_its_timeout(monkeypatch):
    import fastnn.distributed as fd

    monkeypatch.setattr(fd, "RETRY_PAUSE_S", 0.0, raising=False)
    named = r"2 Dask workers .* within 120.0 s .*WORKER_TIMEOUT_S.*0/2"
    with pytest.raises(TimeoutError, match=named):
        configure_cluster(FlakyClient(failures=0, back_after=1), warm_up=False)
    monkeypatch.setattr(fd, "WORKER_TIMEOUT_S", 0.0, raising=False)
    with pytest.raises(TimeoutError, match="CommClosedError") as info:
        configure_cluster(FlakyClient(failures=10**6), warm_up=False)
    assert type(info.value.__cause__).__name__ == "CommClosedError"
