"""FastMLPClassifier against scikit-learn's MLPClassifier, at the same settings.

Digits (64 features, 10 classes, scaled to [0, 1]), hidden layer (64,), 1,347
training rows, 450 test rows, one thread for every runtime:

* ``adam``: Adam, batch 200, 200 iterations;
* ``lbfgs``: L-BFGS, 200 iterations;
* ``sgd1``: SGD, batch 1, no momentum, no L2, 30 iterations.

``tol=0`` and an unreachable ``n_iter_no_change`` make every system run all its
iterations. Both estimators start from the same weights (fastnn draws
scikit-learn's initial weights from the same ``random_state``). The systems are
timed round-robin, one fit each per round, so drift on a shared machine falls on
both alike; the medians and their ratio are reported with each test accuracy.

Run ``python bench/test_bench_sklearn.py [--repeats N]`` for the table; under pytest
(timings off, the project's default) each workload runs once at a tenth of its
iterations, and the two accuracies are checked against each other.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from fastnn.sklearn import FastMLPClassifier  # noqa: E402

WORKLOADS: dict[str, dict] = {
    "adam": dict(solver="adam", batch_size=200, max_iter=200),
    "lbfgs": dict(solver="lbfgs", max_iter=200),
    "sgd1": dict(
        solver="sgd", batch_size=1, momentum=0.0, alpha=0.0, max_iter=30, learning_rate_init=0.01
    ),
}
SYSTEMS = {"sklearn": MLPClassifier, "fastnn": FastMLPClassifier}


def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=450, random_state=0)


def settings(name: str, scale: float = 1.0) -> dict:
    kw = dict(hidden_layer_sizes=(64,), random_state=0, tol=0.0, **WORKLOADS[name])
    kw["max_iter"] = max(1, round(kw["max_iter"] * scale))
    if kw["solver"] != "lbfgs":
        kw["n_iter_no_change"] = kw["max_iter"] + 1
    return kw


def fit_once(system: str, name: str, data, scale: float = 1.0) -> tuple[float, float]:
    """(seconds, test accuracy) of one fit."""
    X_train, X_test, y_train, y_test = data
    est = SYSTEMS[system](**settings(name, scale))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return seconds, float(est.score(X_test, y_test))


def run(names, repeats: int, scale: float = 1.0) -> dict:
    """Median seconds and accuracies per (workload, system), the systems round-robin."""
    data = digits()
    results = {}
    with threadpool_limits(1):
        for name in names:
            fit_once("fastnn", name, data, min(scale, 0.05))  # compile (cached on disk)
            times: dict[str, list[float]] = {s: [] for s in SYSTEMS}
            accuracy: dict[str, float] = {}
            for _ in range(repeats):
                for system in SYSTEMS:
                    seconds, accuracy[system] = fit_once(system, name, data, scale)
                    times[system].append(seconds)
            results[name] = {s: (statistics.median(t), accuracy[s]) for s, t in times.items()}
    return results


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_accuracy_matches_sklearn(name):
    """At a tenth of the iterations, fastnn's test accuracy is within 2 points of
    scikit-learn's (the speed-ups are measured by running this file)."""
    result = run([name], repeats=1, scale=0.1)[name]
    assert abs(result["fastnn"][1] - result["sklearn"][1]) <= 0.02, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    args = parser.parse_args()
    import numba

    numba.set_num_threads(1)
    with threadpool_limits(1):
        pins = ", ".join(f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info())
    print(f"threads: numba=1, {pins}; {args.repeats} rounds, medians")
    results = run(args.workloads, args.repeats)
    print(f"{'workload':<8} {'sklearn s':>10} {'fastnn s':>10} {'speed-up':>9} "
          f"{'sklearn acc':>12} {'fastnn acc':>11}")  # fmt: skip
    for name, r in results.items():
        (ts, acc_s), (tf, acc_f) = r["sklearn"], r["fastnn"]
        print(f"{name:<8} {ts:>10.3f} {tf:>10.3f} {ts / tf:>8.1f}x {acc_s:>12.4f} {acc_f:>11.4f}")


if __name__ == "__main__":
    main()
