"""The ``cli`` family: a warm ``fastnn predict`` on a small CSV file against a fresh
Python process that imports scikit-learn, unpickles an ``MLPClassifier`` and predicts
the same file; both whole processes.

In the smoke pass (timings off) the fastnn case runs both: its reference is the
scikit-learn process, and each must reach a working model's test accuracy.
"""

from __future__ import annotations

import pytest

from fastnn import benchmarks as fb

pytest.importorskip("sklearn")


@pytest.mark.parametrize("system", ("fastnn", "sklearn"))
def test_startup_predict(measure, benchmark, bench_size, bench_threads, system):
    """A warm ``fastnn predict`` of 30 iris rows against scikit-learn's, start to exit."""
    if benchmark.disabled and system == "sklearn":
        pytest.skip("the smoke pass runs the scikit-learn process as fastnn's reference")
    workload = fb.cli_workload(bench_size, bench_threads)
    case = measure(workload, system)
    assert case.notes.startswith("test accuracy")


def test_a_model_that_predicts_badly_is_a_mismatch():
    workload = fb.cli_workload("smoke", 1)
    assert workload.compare(0.5, 1.0) is not None
    assert workload.compare(0.93, 0.5) is None
    assert {workload.reference_of(s) for s in workload.systems} == {"fastnn", "sklearn"}
