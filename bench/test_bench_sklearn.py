"""FastMLPClassifier against scikit-learn's MLPClassifier at the same settings: the
``sklearn`` family of ``fastnn.benchmarks`` (its workloads, ``adam``, ``lbfgs`` and
``sgd1`` on digits, are described in ``fastnn/benchmarks/workloads/estimators.py``).

Run ``python bench/test_bench_sklearn.py [--quick] [--json PATH]`` for the table
(``fastnn bench --only sklearn --threads 1``: both systems round-robin, medians,
ratios, thread pins); under pytest (timings off, the project's default) each workload
runs once at a tenth of its iterations, and fastnn's test accuracy must be within
two points of scikit-learn's.
"""

from __future__ import annotations

import sys

import pytest

from fastnn import benchmarks as fb
from fastnn.benchmarks.workloads import estimators

pytest.importorskip("sklearn")


@pytest.mark.parametrize("name", list(estimators.WORKLOADS))
@pytest.mark.parametrize("system", ("fastnn", "sklearn"))
def test_estimator_against_sklearn(measure, benchmark, bench_size, bench_threads, name, system):
    """One fit of FastMLPClassifier and of MLPClassifier: seconds per fit."""
    if benchmark.disabled and system == "sklearn":
        pytest.skip("the smoke pass fits MLPClassifier as fastnn's reference")
    case = measure(fb.estimator_workload(name, bench_size, bench_threads), system)
    assert case.notes.startswith("test accuracy")


def test_accuracies_further_apart_than_two_points_are_a_mismatch():
    compare = fb.estimator_workload("adam", "smoke").compare
    assert compare(0.95, 0.96) is None
    assert "apart" in compare(0.90, 0.96)


if __name__ == "__main__":
    sys.exit(fb.main(["--only", "sklearn", "--threads", "1", *sys.argv[1:]]))
