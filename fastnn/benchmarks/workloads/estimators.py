"""The scikit-learn estimators: ``fastnn.sklearn.FastMLPClassifier`` against
scikit-learn's ``MLPClassifier`` at the same settings, on digits.

Digits (64 features, 10 classes, scaled to [0, 1]), hidden layer (64,), 1,347
training rows, 450 test rows:

* ``adam``: Adam, batch 200, 200 iterations;
* ``lbfgs``: L-BFGS, 200 iterations;
* ``sgd1``: SGD, batch 1, no momentum, no L2, 30 iterations.

``tol=0`` and an unreachable ``n_iter_no_change`` make every system run all its
iterations. Both estimators start from the same weights (fastnn draws
scikit-learn's initial weights from the same ``random_state``); each fit's test
accuracy must be within ``ACCURACY_GAP`` of the other's.
"""

from __future__ import annotations

import warnings

from ..cases import Case, Unavailable, Workload, optional
from ..sizes import sizes_of

WORKLOADS: dict[str, dict] = {
    "adam": dict(solver="adam", batch_size=200, max_iter=200),
    "lbfgs": dict(solver="lbfgs", max_iter=200),
    "sgd1": dict(
        solver="sgd", batch_size=1, momentum=0.0, alpha=0.0, max_iter=30, learning_rate_init=0.01
    ),
}
#: The share of each workload's iterations run at each benchmark size.
ITERATIONS = {"full": 1.0, "quick": 0.25, "smoke": 0.1}
ACCURACY_GAP = 0.02


def digits():
    """Digits scaled to [0, 1], split as (X_train, X_test, y_train, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=450, random_state=0)


def settings(name: str, scale: float = 1.0) -> dict:
    """The estimators' parameters of workload ``name`` at ``scale`` of its iterations."""
    kw = dict(hidden_layer_sizes=(64,), random_state=0, tol=0.0, **WORKLOADS[name])
    kw["max_iter"] = max(1, round(kw["max_iter"] * scale))
    if kw["solver"] != "lbfgs":
        kw["n_iter_no_change"] = kw["max_iter"] + 1
    return kw


class EstimatorFit(Case):
    """One ``fit`` of a fresh estimator; ``result`` is its test accuracy."""

    def __init__(self, system: str, params: dict, data) -> None:
        super().__init__(system, units=1)
        if optional("sklearn") is None:
            raise Unavailable("scikit-learn is not installed")
        if system == "fastnn":
            from ...sklearn import FastMLPClassifier as estimator
        else:
            from sklearn.neural_network import MLPClassifier as estimator
        self.estimator, self.params, self.data = estimator, params, data

    def reset(self) -> None:
        self.model = self.estimator(**self.params)

    def run(self) -> None:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(self.data[0], self.data[2])

    def result(self) -> float:
        accuracy = float(self.model.score(self.data[1], self.data[3]))
        self.notes = f"test accuracy {accuracy:.4f}"
        return accuracy


def _close(got: float, want: float) -> str | None:
    if abs(got - want) > ACCURACY_GAP:
        return f"test accuracy {got:.4f} against {want:.4f}: more than {ACCURACY_GAP} apart"
    return None


def estimator_workload(name: str, size: str = "full", threads: int = 1) -> Workload:
    """``FastMLPClassifier`` against ``MLPClassifier`` on digits, workload ``name`` of
    ``WORKLOADS``, at the size's share of its iterations."""
    s = sizes_of(size)
    params = settings(name, ITERATIONS[size])
    data = {}

    def build(system: str):
        def make() -> Case:
            if not data and optional("sklearn") is not None:
                data["split"] = digits()
            return EstimatorFit(system, params, data.get("split"))

        return make

    return Workload(
        name=f"sklearn-digits-{name}",
        group=f"sklearn-digits-{name}",
        unit="run",
        builders={"fastnn": build("fastnn"), "sklearn": build("sklearn")},
        compare=_close,
        oracle="sklearn",
        repeats=s.slow_repeats if size == "full" else s.repeats,
        notes=f"digits, hidden (64,), {params['max_iter']} iterations of "
        f"{', '.join(f'{k}={v}' for k, v in WORKLOADS[name].items() if k != 'max_iter')}; "
        f"FastMLPClassifier against MLPClassifier, {threads} thread(s)",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [estimator_workload(name, size, threads) for name in WORKLOADS]
