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
