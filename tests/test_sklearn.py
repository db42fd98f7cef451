"""The scikit-learn estimators: sklearn's own estimator checks, plus their behaviour
in pipelines, searches, pickling, and agreement with the Network they wrap."""

from __future__ import annotations

import copy
import itertools
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import shuffle
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastnn as fn
from fastnn.optimizers import Adam
from fastnn.sklearn import ACTIVATIONS, FastMLPClassifier, FastMLPRegressor
from fastnn.sklearn.base import initial_weights
from fastnn.threads import _controller, default_threads

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
X_IRIS = StandardScaler().fit_transform(X_IRIS)
X_REG, Y_REG = make_regression(n_samples=120, n_features=5, noise=0.1, random_state=0)
Y_REG = Y_REG / Y_REG.std()

# Small, quick settings for sklearn's checks; they still reach the accuracy and R²
# those checks demand. The defaults, float32, per-sample SGD and L-BFGS are each
# checked; every configuration takes sparse input (the checks feed it CSR data).
PER_SAMPLE = dict(solver="sgd", batch_size=1, momentum=0.0, alpha=0.0)
CHECKED = [
    FastMLPClassifier(),
    FastMLPRegressor(),
    FastMLPClassifier((32,), max_iter=50, learning_rate_init=0.02, random_state=0),
    FastMLPRegressor((32,), max_iter=50, learning_rate_init=0.02, random_state=0),
    FastMLPClassifier(
        (32,), solver="sgd", dtype=np.float32, max_iter=50, learning_rate_init=0.02,
        random_state=0,
    ),
    FastMLPRegressor((32,), dtype=np.float32, max_iter=50, learning_rate_init=0.02,
                     random_state=0),
    FastMLPClassifier((16,), max_iter=20, learning_rate_init=0.01, random_state=0, **PER_SAMPLE),
    FastMLPRegressor((16,), max_iter=20, learning_rate_init=1e-3, random_state=0, **PER_SAMPLE),
    FastMLPClassifier((32,), solver="lbfgs", max_iter=100, random_state=0),
    FastMLPRegressor((32,), solver="lbfgs", max_iter=100, random_state=0),
    FastMLPRegressor(
        (32,), activation="tanh", backend="numpy", max_iter=50, learning_rate_init=0.02,
        random_state=0,
    ),
]  # fmt: skip


def expected_failures(estimator) -> dict[str, str]:
    """The checks an estimator cannot pass, each with its reason."""
    failures = {}
    if estimator.solver != "lbfgs":
        # Minibatches drawn from repeated rows are not the weighted minibatches of
        # the original rows: scikit-learn's own stochastic MLPs fail these as well.
        reason = "stochastic minibatches of repeated rows differ from weighted rows"
        failures["check_sample_weight_equivalence_on_dense_data"] = reason
        failures["check_sample_weight_equivalence_on_sparse_data"] = reason
    if estimator.dtype == np.float32 and isinstance(estimator, FastMLPRegressor):
        failures["check_regressor_multioutput"] = (
            "dtype=float32 predicts in float32, whatever the dtype of X"
        )
    return failures


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failures)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def start_network(random_state: int, widths, activation="relu", loss="mse", dtype=np.float64):
    """The network an estimator starts from (scikit-learn's initial weights, drawn
    from the random state in its order), and the random state after those draws."""
    rs = np.random.RandomState(random_state)
    start = initial_weights(rs, widths, activation)
    layers = []
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [fn.Dense(fan_in, fan_out), ACTIVATIONS[activation]()]
    seed = int(copy.deepcopy(rs).randint(np.iinfo(np.int32).max))  # peeked, not drawn
    net = fn.Network(layers[:-1], loss=loss, dtype=dtype, seed=seed)
    for layer, (coef, intercept) in zip(net.dense_layers, start, strict=True):
        layer.weights[...] = coef.T
        layer.bias[...] = intercept
    return net, rs


def quiet(estimator):
    return estimator.set_params(random_state=0)


@pytest.fixture(autouse=True)
def _no_convergence_noise():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# -- agreement with the Network ------------------------------------------------------
def test_adam_epochs_match_one_network_fit():
    # Adam's moments must carry over from epoch to epoch (and call to call).
    est = FastMLPClassifier(
        (8,), solver="adam", alpha=0.0, batch_size=30, shuffle=True,
        learning_rate_init=0.01, random_state=3,
    )  # fmt: skip
    for _ in range(3):
        est.partial_fit(X_IRIS, Y_IRIS, classes=[0, 1, 2])
    net, rs = start_network(3, [4, 8, 3], loss="cross_entropy")
    adam = Adam()
    # Each call draws its permutation from a fresh random state, as scikit-learn's;
    # the first after the initial weights.
    for state in (rs, np.random.RandomState(3), np.random.RandomState(3)):
        order = shuffle(np.arange(len(Y_IRIS)), random_state=state)
        net.fit(X_IRIS[order], Y_IRIS[order], epochs=1, learning_rate=0.01, batch_size=30,
                optimizer=adam)  # fmt: skip
    assert est.n_iter_ == 3
    assert np.array_equal(est.network_.params, net.params)


def test_per_sample_sgd_matches_network_fit():
    est = FastMLPRegressor(
        (6,), activation="tanh", solver="sgd", momentum=0.0, alpha=0.0, batch_size=1,
        learning_rate_init=0.01, max_iter=4, tol=0.0, n_iter_no_change=10, random_state=5,
    )  # fmt: skip
    est.fit(X_REG, Y_REG)
    # The network's mse is the squared error; scikit-learn's loss is half of it, and
    # so is its gradient: the same steps take half the network's learning rate.
    net, rs = start_network(5, [5, 6, 1], "tanh")
    losses, order = [], np.arange(len(Y_REG))
    for _ in range(4):  # scikit-learn's permutations, each of the one before
        order = shuffle(order, random_state=rs)
        history = net.fit(X_REG[order], Y_REG[order], learning_rate=0.005, batch_size=1)
        losses += history["loss"]
    assert est.n_iter_ == 4
    assert np.array_equal(est.network_.params, net.params)
    assert est.loss_curve_ == [h / 2 for h in losses]  # alpha=0: no penalty term


def test_l2_penalty_is_scaled_by_the_batch():
    kwargs = dict(solver="sgd", momentum=0.0, batch_size=20, max_iter=2, random_state=0)
    est = FastMLPRegressor((4,), alpha=0.5, **kwargs).fit(X_REG, Y_REG)
    net, rs = start_network(0, [5, 4, 1])
    order = np.arange(len(Y_REG))
    for _ in range(2):
        order = shuffle(order, random_state=rs)
        # Half the learning rate on the network's (doubled) loss, and twice alpha/batch.
        net.fit(X_REG[order], Y_REG[order], learning_rate=0.0005, batch_size=20,
                optimizer="sgd", l2=2 * 0.5 / 20)  # fmt: skip
    assert np.array_equal(est.network_.params, net.params)
    assert est.loss_curve_[-1] > net.evaluate(X_REG, Y_REG) * 0.5  # includes the L2 term


# -- classification ------------------------------------------------------------------
def test_pipeline_learns_iris():
    pipe = make_pipeline(
        StandardScaler(), FastMLPClassifier((16,), learning_rate_init=0.01, random_state=0)
    )
    pipe.fit(X_IRIS, Y_IRIS)
    assert pipe.score(X_IRIS, Y_IRIS) > 0.9
    clf = pipe[-1]
    assert clf.network_.loss == "cross_entropy" and clf.out_activation_ == "softmax"
    proba = pipe.predict_proba(X_IRIS)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1)
    assert np.array_equal(pipe.predict(X_IRIS), clf.classes_[proba.argmax(axis=1)])


def test_grid_search_over_estimator_params():
    search = GridSearchCV(
        FastMLPClassifier(max_iter=30, learning_rate_init=0.02, random_state=0),
        {"hidden_layer_sizes": [(4,), (16,)], "activation": ["tanh", "relu"]},
        cv=3,
    )
    search.fit(X_IRIS, Y_IRIS)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_score_ == max(search.cv_results_["mean_test_score"])
    assert search.best_estimator_.hidden_layer_sizes == search.best_params_["hidden_layer_sizes"]


def test_binary_uses_one_logistic_output_and_keeps_labels():
    y = np.where(Y_IRIS == 0, "setosa", "other")
    clf = FastMLPClassifier((8,), learning_rate_init=0.02, max_iter=40, random_state=0)
    clf.fit(X_IRIS, y)
    assert list(clf.classes_) == ["other", "setosa"]
    assert clf.network_.n_outputs == 1 and clf.network_.loss == "binary_cross_entropy"
    proba = clf.predict_proba(X_IRIS)
    assert proba.shape == (150, 2) and np.allclose(proba.sum(axis=1), 1)
    assert np.array_equal(clf.predict(X_IRIS), clf.classes_[(proba[:, 1] > 0.5).astype(int)])
    assert clf.score(X_IRIS, y) > 0.95


def test_multilabel():
    Y = np.column_stack([Y_IRIS == 0, Y_IRIS == 2, X_IRIS[:, 0] > 0]).astype(int)
    clf = FastMLPClassifier((16,), learning_rate_init=0.02, max_iter=60, random_state=0)
    clf.fit(X_IRIS, Y)
    assert clf.network_.loss == "binary_cross_entropy" and clf.network_.n_outputs == 3
    pred = clf.predict(X_IRIS)
    assert pred.shape == (150, 3)
    assert np.array_equal(pred, (clf.predict_proba(X_IRIS) > 0.5).astype(int))
    assert (pred == Y).mean() > 0.9


def test_one_class_behaves_as_scikit_learn():
    from sklearn.neural_network import MLPClassifier

    y = np.full(10, 7)
    ours = FastMLPClassifier((4,), max_iter=5, random_state=0).fit(X_IRIS[:10], y)
    theirs = MLPClassifier((4,), max_iter=5, random_state=0).fit(X_IRIS[:10], y)
    assert np.array_equal(ours.classes_, theirs.classes_)
    assert np.array_equal(ours.predict(X_IRIS), theirs.predict(X_IRIS))
    assert ours.predict_proba(X_IRIS).shape == theirs.predict_proba(X_IRIS).shape


def test_float32_end_to_end():
    clf = FastMLPClassifier((8,), dtype=np.float32, max_iter=20, random_state=0)
    clf.fit(X_IRIS, Y_IRIS)
    assert clf.network_.dtype == np.float32
    assert clf.predict_proba(X_IRIS).dtype == np.float32
    assert all(c.dtype == np.float32 for c in clf.coefs_)


def test_numpy_backend_matches_numba():
    kwargs = dict(solver="sgd", momentum=0.0, alpha=0.0, batch_size=1, max_iter=3,
                  learning_rate_init=0.01, random_state=0)  # fmt: skip
    a = FastMLPClassifier((6,), backend="numba", **kwargs).fit(X_IRIS, Y_IRIS)
    b = FastMLPClassifier((6,), backend="numpy", **kwargs).fit(X_IRIS, Y_IRIS)
    np.testing.assert_allclose(a.predict_proba(X_IRIS), b.predict_proba(X_IRIS), atol=1e-10)


# -- partial_fit, warm_start, stopping -------------------------------------------------
def test_partial_fit_needs_classes_first():
    clf = FastMLPClassifier((4,))
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match="NaN"):
        clf.partial_fit(np.full((3, 4), np.nan), [0, 1, 2], classes=[0, 1, 2])
    assert not hasattr(clf, "classes_")  # a refused first call leaves nothing behind
    clf.partial_fit(X_IRIS[:50], Y_IRIS[:50], classes=[0, 1, 2])  # one class seen so far
    assert list(clf.classes_) == [0, 1, 2] and clf.n_iter_ == 1
    clf.partial_fit(X_IRIS, Y_IRIS)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X_IRIS[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="differs from classes_"):
        clf.partial_fit(X_IRIS, Y_IRIS, classes=[0, 1])


def test_partial_fit_refuses_early_stopping():
    with pytest.raises(ValueError, match="early_stopping"):
        FastMLPRegressor(early_stopping=True).partial_fit(X_REG, Y_REG)


def test_warm_start_continues_training():
    reg = FastMLPRegressor((8,), max_iter=5, tol=0.0, warm_start=True, random_state=0)
    reg.fit(X_REG, Y_REG)
    net, before = reg.network_, reg.network_.params.copy()
    reg.fit(X_REG, Y_REG)
    assert reg.network_ is net and len(reg.loss_curve_) == 10
    assert not np.array_equal(net.params, before)
    cold = FastMLPRegressor((8,), max_iter=5, tol=0.0, random_state=0).fit(X_REG, Y_REG)
    assert np.array_equal(cold.network_.params, before)  # fit without warm_start restarts


def test_no_improvement_stops_and_skips_the_warning():
    reg = FastMLPRegressor((4,), tol=1e9, n_iter_no_change=3, max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg.fit(X_REG, Y_REG)
    # As in scikit-learn: the first epoch sets the best loss, and training stops
    # once more than n_iter_no_change epochs in a row fail to beat it by tol.
    assert reg.n_iter_ == 1 + 3 + 1


def test_max_iter_warns():
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        FastMLPRegressor((4,), max_iter=3, tol=0.0, random_state=0).fit(X_REG, Y_REG)


def test_early_stopping_keeps_the_best_epoch():
    reg = FastMLPRegressor(
        (16,), early_stopping=True, validation_fraction=0.25, n_iter_no_change=4,
        learning_rate_init=0.01, max_iter=300, random_state=0,
    )  # fmt: skip
    reg.fit(X_REG, Y_REG)
    assert reg.n_iter_ < 300 and len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert reg.best_loss_ is None
    # The held-out quarter is the same split the estimator drew from its random state.
    from sklearn.model_selection import train_test_split

    _, rs = start_network(0, [5, 16, 1])  # the initial weights and seed came first
    _, val = train_test_split(np.arange(len(Y_REG)), random_state=rs, test_size=0.25)
    assert reg.score(X_REG[val], Y_REG[val]) == pytest.approx(reg.best_validation_score_)


def test_adaptive_learning_rate_divides_by_five_until_tiny():
    reg = FastMLPRegressor(
        (4,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.1, tol=1e9,
        n_iter_no_change=1, max_iter=1000, random_state=0,
    )  # fmt: skip
    reg.fit(X_REG, Y_REG)
    rate, divisions = 0.1, 0
    while rate > 1e-6:
        rate, divisions = rate / 5, divisions + 1
    # After the first epoch, every 2 stale epochs trigger a division; the trigger
    # after the last division stops.
    assert reg.n_iter_ == 1 + 2 * (divisions + 1)
    assert reg._learning_rate == pytest.approx(rate)


def test_invscaling_follows_samples_seen():
    reg = FastMLPRegressor((4,), solver="sgd", learning_rate="invscaling", power_t=0.5,
                           learning_rate_init=0.05, max_iter=3, random_state=0)  # fmt: skip
    reg.fit(X_REG, Y_REG)
    assert reg.t_ == 3 * len(Y_REG)
    assert reg._learning_rate == pytest.approx(0.05 / (reg.t_ + 1) ** 0.5)


# -- regression --------------------------------------------------------------------------
def test_regressor_1d_and_2d_targets():
    reg = FastMLPRegressor((32,), learning_rate_init=0.01, max_iter=200, random_state=0)
    reg.fit(X_REG, Y_REG)
    assert reg.predict(X_REG).shape == (120,) and reg.score(X_REG, Y_REG) > 0.9
    Y2 = np.column_stack([Y_REG, -Y_REG])
    reg2 = clone(reg).fit(X_REG, Y2)
    assert reg2.predict(X_REG).shape == (120, 2) and reg2.n_outputs_ == 2
    assert reg2.score(X_REG, Y2) > 0.9
    assert [c.shape for c in reg2.coefs_] == [(5, 32), (32, 2)]
    assert [b.shape for b in reg2.intercepts_] == [(32,), (2,)]


# -- pickling, validation, threads ---------------------------------------------------------
def test_pickle_round_trip_keeps_predictions():
    clf = FastMLPClassifier((8,), max_iter=20, random_state=0).fit(X_IRIS, Y_IRIS)
    data = pickle.dumps(clf)
    assert b"fastnn.network" not in data  # the network travels as an .npz, not a pickle
    again = pickle.loads(data)
    assert np.array_equal(again.predict_proba(X_IRIS), clf.predict_proba(X_IRIS))
    assert clf.network_ is not None  # pickling left the original whole
    again.partial_fit(X_IRIS, Y_IRIS)  # and the copy trains on, Adam state included
    assert again.network_.optimizer.step == clf.network_.optimizer.step + 1


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"activation": "softplus"}, ValueError, "activation='softplus'"),
        ({"solver": "newton"}, ValueError, "solver='newton'"),
        ({"hidden_layer_sizes": (8, 0)}, ValueError, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": "8"}, TypeError, "hidden_layer_sizes"),
        ({"learning_rate_init": 0.0}, ValueError, "learning_rate_init"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"momentum": 1.5}, ValueError, "momentum"),
        ({"n_iter_no_change": 0}, ValueError, "n_iter_no_change"),
        ({"verbose": -1}, ValueError, "verbose"),
        ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
        ({"dtype": np.int32}, TypeError, "dtype"),
        ({"backend": "cuda"}, ValueError, "backend='cuda'"),
        ({"shuffle": "yes"}, TypeError, "shuffle"),
    ],
)
def test_bad_parameters_fail_before_any_change(params, error, match):
    clf = FastMLPClassifier((4,), max_iter=5, random_state=0).fit(X_IRIS, Y_IRIS)
    net, before = clf.network_, clf.network_.params.copy()
    clf.set_params(**params)
    with pytest.raises(error, match=match):
        clf.fit(X_IRIS, Y_IRIS)
    assert clf.network_ is net and np.array_equal(net.params, before)


def test_unfitted():
    with pytest.raises(NotFittedError):
        FastMLPRegressor().predict(X_REG)
    with pytest.raises(NotFittedError):
        FastMLPClassifier().coefs_  # noqa: B018


def test_network_respects_an_outer_blas_limit():
    controller = _controller()
    if controller is None or not controller.select(user_api="blas").lib_controllers:
        pytest.skip("threadpoolctl sees no BLAS library")
    with controller.limit(limits=1, user_api="blas"):
        assert default_threads() == 1
        clf = FastMLPClassifier((4,), max_iter=2, random_state=0).fit(X_IRIS, Y_IRIS)
        assert clf.network_.n_threads == 1
    # The network follows the limit of the moment, not the one it was built under.
    assert clf.network_.threads is None


def test_read_only_inputs_reach_the_network_writable(monkeypatch):
    # Numba would compile every kernel again for read-only arrays (Dask hands
    # tasks read-only inputs), so the estimators pass the network writable ones.
    X = X_IRIS.copy()
    X.flags.writeable = False
    y = Y_IRIS.copy()
    y.flags.writeable = False
    clf = FastMLPClassifier((4,), max_iter=2, random_state=0)
    seen = []
    fit, predict = fn.Network.fit, fn.Network.predict

    def spy_fit(self, X, Y, *args, **kwargs):
        seen.append(X.flags.writeable and Y.flags.writeable)
        return fit(self, X, Y, *args, **kwargs)

    def spy_predict(self, X):
        seen.append(X.flags.writeable)
        return predict(self, X)

    monkeypatch.setattr(fn.Network, "fit", spy_fit)
    monkeypatch.setattr(fn.Network, "predict", spy_predict)
    clf.fit(X, y).predict(X)
    assert len(seen) == 3 and all(seen)


def test_warm_start_with_changed_solver_and_stopping():
    reg = FastMLPRegressor((8,), solver="sgd", max_iter=3, warm_start=True, random_state=0)
    reg.fit(X_REG, Y_REG)
    assert reg.network_.optimizer.name == "sgd"
    reg.set_params(solver="adam", early_stopping=True).fit(X_REG, Y_REG)
    assert reg.network_.optimizer.name == "adam" and reg.network_.optimizer.step > 0
    assert len(reg.validation_scores_) == reg.n_iter_ > 0
    adam = reg.network_.optimizer
    reg.set_params(early_stopping=False).fit(X_REG, Y_REG)
    assert reg.network_.optimizer is adam  # unchanged settings: state carries on
    assert np.isfinite(reg.best_loss_)
