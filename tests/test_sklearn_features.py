"""The estimators against scikit-learn's MLPs step for step: the same initial weights
give the same first steps (the losses scaled as scikit-learn scales them), L-BFGS
reaches the same solution, sample weights count as repeated rows, sparse X trains
as its dense twin, and the dtype follows X."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("sklearn")

from sklearn.datasets import make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from fastnn.sklearn import FastMLPClassifier, FastMLPRegressor

X_REG, Y_REG3 = make_regression(n_samples=60, n_features=6, n_targets=3, random_state=0)
X_REG = X_REG / X_REG.std()
Y_REG3 = Y_REG3 / Y_REG3.std()
X_ML, Y_ML = make_multilabel_classification(n_samples=60, n_features=6, n_classes=4,
                                            random_state=0)  # fmt: skip
X_ML = X_ML / X_ML.max()
Y_MC = (X_REG[:, 0] > 0).astype(int) + (X_REG[:, 1] > 0.5)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


CASES = {
    "regression, 1 target": (MLPRegressor, FastMLPRegressor, X_REG, Y_REG3[:, 0]),
    "regression, 3 targets": (MLPRegressor, FastMLPRegressor, X_REG, Y_REG3),
    "binary": (MLPClassifier, FastMLPClassifier, X_REG, (Y_MC > 0).astype(int)),
    "multiclass": (MLPClassifier, FastMLPClassifier, X_REG, Y_MC),
    "multilabel": (MLPClassifier, FastMLPClassifier, X_ML, Y_ML),
}


def both(case, **params):
    theirs_cls, ours_cls, X, y = CASES[case]
    params = dict(hidden_layer_sizes=(5,), activation="tanh", random_state=0, **params)
    return theirs_cls(**params).fit(X, y), ours_cls(**params).fit(X, y)


def assert_same_weights(theirs, ours, rtol):
    for a, b in zip(theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_,
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_steps_are_scikit_learns(case, momentum):
    # Three epochs of two minibatches each, in order: every step is scikit-learn's,
    # which only holds if the gradient (and so the loss) is scaled as scikit-learn's.
    theirs, ours = both(case, solver="sgd", batch_size=30, shuffle=False, max_iter=3,
                        alpha=1e-3, momentum=momentum, learning_rate_init=0.05)  # fmt: skip
    assert_same_weights(theirs, ours, 1e-9)
    if case != "regression, 3 targets":  # scikit-learn reports 1/k of its data term there
        # The L2 term is taken at the epoch's end weights, scikit-learn's at each batch's.
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-4)


@pytest.mark.parametrize("case", list(CASES))
def test_adam_steps_are_close_to_scikit_learns(case):
    # Adam adds epsilon to √v̂ where scikit-learn adds it to √v: not bit for bit.
    theirs, ours = both(case, solver="adam", batch_size=30, shuffle=False, max_iter=3,
                        learning_rate_init=0.01)  # fmt: skip
    assert_same_weights(theirs, ours, 1e-3)


@pytest.mark.parametrize("case", list(CASES))
def test_lbfgs_reaches_scikit_learns_solution(case):
    theirs, ours = both(case, solver="lbfgs", max_iter=15, alpha=1e-3)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6) or case.endswith("3 targets")
    assert_same_weights(theirs, ours, 1e-4)


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
def test_sample_weights_count_as_repeated_rows(solver):
    X, y = X_REG, Y_REG3[:, 0]
    w = np.random.default_rng(0).integers(0, 3, X.shape[0])
    params = dict(hidden_layer_sizes=(5,), solver=solver, random_state=0, max_iter=5,
                  batch_size=500, shuffle=False, alpha=1e-2)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # batch_size > n_samples
        weighted = FastMLPRegressor(**params).fit(X, y, sample_weight=w)
        repeated = FastMLPRegressor(**params).fit(np.repeat(X, w, 0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-7)
    # The engine's epochs (repeated rows) take the L2 term at the epoch's end weights.
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-3)


def test_all_zero_and_negative_weights_are_refused():
    est = FastMLPRegressor((3,), max_iter=2)
    with pytest.raises(ValueError, match="all zeros"):
        est.fit(X_REG, Y_REG3[:, 0], sample_weight=np.zeros(X_REG.shape[0]))
    with pytest.raises(ValueError, match="negative"):
        est.fit(X_REG, Y_REG3[:, 0], sample_weight=-np.ones(X_REG.shape[0]))
    assert not hasattr(est, "network_")


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csr_array, sp.csc_matrix])
def test_sparse_x_trains_as_dense(solver, fmt):
    X = X_ML.copy()
    X[X < 0.3] = 0
    params = dict(hidden_layer_sizes=(5,), solver=solver, random_state=0, max_iter=5,
                  shuffle=False)  # fmt: skip
    dense = FastMLPClassifier(**params).fit(X, Y_ML)
    sparse = FastMLPClassifier(**params).fit(fmt(X), Y_ML)
    np.testing.assert_allclose(sparse.predict_proba(fmt(X)), dense.predict_proba(X), rtol=1e-9)
    np.testing.assert_array_equal(sparse.predict(X), sparse.predict(fmt(X)))


@pytest.mark.parametrize(
    ("x_dtype", "dtype", "expected"),
    [
        (np.float32, None, np.float32),
        (np.float64, None, np.float64),
        (np.int64, None, np.float64),
        (np.float32, np.float64, np.float64),
        (np.float64, np.float32, np.float32),
    ],
)
def test_dtype_follows_x_unless_set(x_dtype, dtype, expected):
    X = (X_REG * 10).astype(x_dtype)
    est = FastMLPRegressor((4,), max_iter=3, dtype=dtype, random_state=0).fit(X, Y_REG3[:, 0])
    assert est.network_.dtype == expected
    assert all(c.dtype == expected for c in est.coefs_ + est.intercepts_)
    assert est.predict(X).dtype == expected
    # A later call converts X to the network's dtype, whatever X's own.
    assert est.partial_fit(X.astype(np.float64), Y_REG3[:, 0]).network_.dtype == expected


def test_verbose_levels_print_the_loss(capsys):
    FastMLPClassifier((3,), max_iter=2, verbose=2, solver="sgd").fit(X_REG, Y_MC)
    FastMLPClassifier((3,), max_iter=2, verbose=1, solver="lbfgs").fit(X_REG, Y_MC)
    out = capsys.readouterr().out
    assert out.count("Iteration 1, loss = ") == 2
    FastMLPClassifier((3,), max_iter=2, verbose=0).fit(X_REG, Y_MC)
    assert capsys.readouterr().out == ""


def test_partial_fit_exists_only_for_stochastic_solvers():
    assert hasattr(FastMLPRegressor(solver="adam"), "partial_fit")
    assert not hasattr(FastMLPRegressor(solver="lbfgs"), "partial_fit")
    assert not hasattr(FastMLPClassifier(solver="lbfgs"), "partial_fit")


def test_momentum_one_pickles_and_trains_on():
    # scikit-learn accepts momentum=1.0; the file format's optimizer does not, so the
    # estimator carries that optimizer's state beside the network.
    est = FastMLPClassifier((3,), solver="sgd", momentum=1.0, max_iter=2, random_state=0)
    est.fit(X_REG, Y_MC)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X_REG), est.predict_proba(X_REG))
    assert again.network_.optimizer.momentum == 1.0
    np.testing.assert_array_equal(again.network_.optimizer.state["a"],
                                  est.network_.optimizer.state["a"])  # fmt: skip
    est.partial_fit(X_REG, Y_MC)
    again.partial_fit(X_REG, Y_MC)
    np.testing.assert_array_equal(again.network_.params, est.network_.params)
