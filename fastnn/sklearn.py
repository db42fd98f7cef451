"""scikit-learn estimators on fastnn networks: ``FastMLPClassifier`` and
``FastMLPRegressor``.

They take scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` parameters where those
mean the same thing, plus fastnn's own ``dtype`` and ``backend``, and work anywhere a
scikit-learn estimator does (``Pipeline``, ``GridSearchCV``, ``clone``, pickle).
Each iteration (epoch) is one ``Network.fit(..., epochs=1)`` call; the stopping
rules (``tol``, ``n_iter_no_change``, ``early_stopping``) and learning-rate
schedules follow scikit-learn's.

Needs scikit-learn: ``pip install "fastnn-numba[sklearn]"``.
"""

from __future__ import annotations

import itertools
import numbers
import warnings
from collections.abc import Iterable

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        'fastnn.sklearn needs scikit-learn: pip install "fastnn-numba[sklearn]"'
    ) from exc

from . import io
from .backends import BACKENDS
from .layers import Dense, Identity, Layer, ReLU, Sigmoid, Tanh
from .network import Network
from .optimizers import SGD, Adam, Optimizer
from .validation import check_dtype

#: scikit-learn's activation names -> fastnn layers
ACTIVATIONS: dict[str, type[Layer]] = {
    "identity": Identity,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
}
SOLVERS = ("sgd", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: ``batch_size="auto"`` is min(AUTO_BATCH, n_samples), as in scikit-learn.
AUTO_BATCH = 200
#: The "adaptive" schedule stops once the learning rate falls to this.
MIN_ADAPTIVE_RATE = 1e-6


def _writable(a: np.ndarray) -> np.ndarray:
    """``a``, copied if read-only: Numba compiles every kernel again for read-only
    arrays (as Dask and memory-mapped inputs are), which costs far more than a copy."""
    return a if a.flags.writeable else a.copy()


# -- parameter checks --------------------------------------------------------------
def _real(name: str, value, low: float, high: float = np.inf, *, low_open=False, high_open=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a real number")
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high and np.isfinite(value)):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name}={value!r} must be in {lo}{low}, {high}{hi}")
    return float(value)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be a positive integer")
    if value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer (at least 1)")
    return int(value)


def _choice(name: str, value, options: Iterable[str]) -> str:
    options = list(options)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}={value!r} is not supported: use one of {options}")
    return value


def _hidden_sizes(value) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(
            f"hidden_layer_sizes={value!r} must be an int or a sequence of ints, e.g. (100,)"
        )
    sizes = tuple(value)
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(
                f"hidden_layer_sizes={value!r} must hold positive integers, e.g. (64, 32)"
            )
    return tuple(int(s) for s in sizes)


class _BaseFastMLP(BaseEstimator):
    """The parameters, training loop and stopping rules both estimators share."""

    _loss_for_regression = "mse"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        dtype=np.float64,
        backend="numba",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.backend = backend

    # -- checks ----------------------------------------------------------------
    def _check_params(self) -> None:
        """Check every parameter before any state changes."""
        _hidden_sizes(self.hidden_layer_sizes)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("solver", self.solver, SOLVERS)
        _choice("learning_rate", self.learning_rate, LEARNING_RATES)
        _choice("backend", self.backend, BACKENDS)
        check_dtype(self.dtype)
        _real("alpha", self.alpha, 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _positive_int("batch_size", self.batch_size)
        _real("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        _real("power_t", self.power_t, 0.0)
        _positive_int("max_iter", self.max_iter)
        _positive_int("n_iter_no_change", self.n_iter_no_change)
        _real("tol", self.tol, 0.0)
        _real("momentum", self.momentum, 0.0, 1.0)
        _real("validation_fraction", self.validation_fraction, 0.0, 1.0, low_open=True)
        _real("beta_1", self.beta_1, 0.0, 1.0)
        _real("beta_2", self.beta_2, 0.0, 1.0)
        _real("epsilon", self.epsilon, 0.0, low_open=True)
        for name in ("shuffle", "verbose", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise TypeError(f"{name}={getattr(self, name)!r} must be True or False")

    # -- building ----------------------------------------------------------------
    def _new_network(self, n_features: int, n_outputs: int, loss: str, seed: int) -> Network:
        widths = [n_features, *_hidden_sizes(self.hidden_layer_sizes)]
        layers: list[Layer] = []
        for n_in, n_out in itertools.pairwise(widths):
            layers += [Dense(n_in, n_out), ACTIVATIONS[self.activation]()]
        layers.append(Dense(widths[-1], n_outputs))
        return Network(
            layers,
            loss=loss,
            dtype=self.dtype,
            backend=self.backend,
            seed=seed,
        )

    def _new_optimizer(self) -> Optimizer:
        if self.solver == "adam":
            return Adam(beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon)
        return SGD(
            momentum=self.momentum,
            nesterov=bool(self.nesterovs_momentum) and self.momentum > 0,
        )

    # -- training ----------------------------------------------------------------
    def _batch_size(self, n_samples: int) -> int:
        if isinstance(self.batch_size, str):
            return min(AUTO_BATCH, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                f"batch_size={self.batch_size} is larger than the {n_samples} training "
                f"samples: using {n_samples}",
                UserWarning,
                stacklevel=3,
            )
        return min(self.batch_size, n_samples)

    def _reset(self, n_features: int, n_outputs: int) -> None:
        self._random_state = check_random_state(self.random_state)
        seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        self.network_ = self._new_network(n_features, n_outputs, self._loss(), seed)
        self.n_layers_ = len(_hidden_sizes(self.hidden_layer_sizes)) + 2
        self.n_outputs_ = n_outputs
        self.out_activation_ = self._out_activation()
        self.t_ = 0
        self.n_iter_ = 0
        self.loss_curve_: list[float] = []
        self._learning_rate = float(self.learning_rate_init)
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _penalty(self, n_batches: int, n_samples: int) -> float:
        """scikit-learn's L2 term of the loss: alpha/2 · Σ‖W‖² per batch, averaged."""
        if self.alpha == 0:
            return 0.0
        squares = sum(float(np.dot(w.ravel(), w.ravel())) for w, _ in self._dense_params())
        return 0.5 * self.alpha * squares * n_batches / n_samples

    def _dense_params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        # Read from the network's own buffer, the one home of the weights.
        return self.network_.dense_params()

    def _split(self, X, Y, y):
        """(X_train, Y_train, X_val, y_val): hold out ``validation_fraction`` for
        early stopping, stratified for single-output classification."""
        stratify = y if self._stratify() else None
        train, val = train_test_split(
            np.arange(X.shape[0]),
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        if val.size < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves {val.size} validation "
                "sample(s): increase validation_fraction or pass more samples"
            )
        return X[train], Y[train], X[val], y[val]

    def _fit(self, X, y, *, incremental: bool, binarizer=None):
        self._check_params()
        if self.early_stopping and incremental:
            raise ValueError(
                "partial_fit does not support early_stopping=True: set early_stopping=False"
            )
        first = not hasattr(self, "network_") or not (self.warm_start or incremental)
        X, Y, y = self._validate_input(
            X, y, reset=first, incremental=incremental, binarizer=binarizer
        )
        X, Y = _writable(X), _writable(Y)
        if first:
            self._reset(X.shape[1], Y.shape[1])
        net = self.network_

        X_val = y_val = None
        if self.early_stopping:
            X, Y, X_val, y_val = self._split(X, Y, y)
        n = X.shape[0]
        batch = self._batch_size(n)
        n_batches = -(-n // batch)
        # Go on with the network's optimizer (and its state) unless its settings changed.
        optimizer = self._new_optimizer()
        if net.optimizer is not None and net.optimizer.get_config() == optimizer.get_config():
            optimizer = net.optimizer
        if self.early_stopping and self.validation_scores_ is None:  # switched on by warm start
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
        if not self.early_stopping and self.best_loss_ is None:
            self.best_loss_ = np.inf
        sgd_schedule = self.learning_rate if self.solver == "sgd" else "constant"

        self.n_iter_ = self.n_iter_ if incremental else 0
        iterations = 1 if incremental else self.max_iter
        best_params = None
        converged = False
        for _ in range(iterations):
            history = net.fit(
                X,
                Y,
                epochs=1,
                learning_rate=self._learning_rate,
                batch_size=batch,
                shuffle=bool(self.shuffle),
                optimizer=optimizer,
                l2=self.alpha / batch,
            )
            self.loss_ = history["loss"][0] + self._penalty(n_batches, n)
            self.loss_curve_.append(self.loss_)
            self.n_iter_ += 1
            self.t_ += n
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")

            if self.early_stopping:
                score = self._validation_score(X_val, y_val)
                self.validation_scores_.append(score)
                if self.verbose:
                    print(f"Validation score: {score:f}")
                improved = score >= self.best_validation_score_ + self.tol
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_params = net.params.copy()
            else:
                improved = self.loss_ <= self.best_loss_ - self.tol
                self.best_loss_ = min(self.best_loss_, self.loss_)
            self._no_improvement_count = 0 if improved else self._no_improvement_count + 1

            if sgd_schedule == "invscaling":
                self._learning_rate = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                msg = (
                    f"{what} did not improve more than tol={self.tol:f} for "
                    f"{self.n_iter_no_change} consecutive epochs."
                )
                if sgd_schedule == "adaptive" and self._learning_rate > MIN_ADAPTIVE_RATE:
                    self._learning_rate /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(f"{msg} Setting learning rate to {self._learning_rate:f}")
                else:
                    if self.verbose:
                        print(f"{msg} Stopping.")
                    converged = True
                    break
        if not incremental and not converged and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic optimizer: maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if best_params is not None:
            net.params[:] = best_params
        return self

    def fit(self, X, y):
        """Train from scratch (or go on, with ``warm_start=True``) on (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.network_.dtype)
        return self.network_.predict(_writable(X))

    # -- sklearn-style views of the weights ------------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Each Dense layer's weights as scikit-learn lays them out, (n_in, n_out):
        views of the network's parameters."""
        check_is_fitted(self)
        return [w.T for w, _ in self._dense_params()]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Each Dense layer's bias, shape (n_out,): views of the network's parameters."""
        check_is_fitted(self)
        return [b for _, b in self._dense_params()]

    def onnx_outputs(self) -> dict:
        """The network and output form an ONNX export needs (``fastnn.onnx_export``)."""
        check_is_fitted(self)
        if isinstance(self, ClassifierMixin):  # labels from these classes, and probabilities
            return {"net": self.network_, "classes": self.classes_, "multilabel": self._multilabel}
        return {"net": self.network_, "flat": self._y_1d}  # whether predict returns 1-D

    # -- pickling ---------------------------------------------------------------
    def __getstate__(self):
        # A Network holds kernel modules, which do not pickle: store it in the
        # fastnn file format instead (plain arrays + JSON, checked on the way back).
        state = dict(super().__getstate__())  # a copy: it may be the live __dict__
        net = state.pop("network_", None)
        if net is not None:
            state["_network_npz"] = io.to_bytes(net)
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_network_npz", None)
        super().__setstate__(state)
        if data is not None:
            self.network_ = io.from_bytes(data)


class FastMLPClassifier(ClassifierMixin, _BaseFastMLP):
    """A multi-layer perceptron classifier trained by fastnn.

    Two classes train one logistic output with ``binary_cross_entropy`` (as
    scikit-learn's ``MLPClassifier`` does); more classes train a softmax output
    with ``cross_entropy``; a multilabel indicator ``y`` trains one logistic output
    per label with ``binary_cross_entropy``.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        The width of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        The hidden layers' activation.
    solver : {"sgd", "adam"}, default="adam"
    alpha : float, default=0.0001
        L2 penalty, scaled as in scikit-learn: ``l2 = alpha / batch_size``.
    batch_size : int or "auto", default="auto"
        "auto" is ``min(200, n_samples)``; 1 with ``solver="sgd"``, ``momentum=0`` and
        ``alpha=0`` runs fastnn's compiled per-sample SGD.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The schedule of ``solver="sgd"``, as in scikit-learn.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
        The exponent of "invscaling".
    max_iter : int, default=200
        The most epochs ``fit`` runs.
    shuffle : bool, default=True
        Shuffle the samples each epoch.
    random_state : int, RandomState or None, default=None
        Seeds the initial weights, the shuffling and the early-stopping split.
    tol : float, default=1e-4
    verbose : bool, default=False
        Print the loss of each epoch.
    warm_start : bool, default=False
        Go on from the current network when ``fit`` is called again.
    momentum : float, default=0.9
        Of ``solver="sgd"``, in [0, 1).
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified) and stop when its
        accuracy has not improved by ``tol`` for ``n_iter_no_change`` epochs; the
        best epoch's weights are kept.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float
        Adam's settings, defaults 0.9, 0.999 and 1e-8.
    n_iter_no_change : int, default=10
        Without early stopping, training stops when the training loss has not
        improved by ``tol`` for this many epochs.
    dtype : np.float32 or np.float64, default=np.float64
        The float type of the network, end to end.
    backend : {"numba", "numpy"}, default="numba"

    Attributes
    ----------
    classes_ : ndarray
    network_ : fastnn.Network
        The fitted network; its ``predict`` returns the class probabilities.
    n_iter_ : int
        Epochs run by the last ``fit`` (``partial_fit`` adds one per call).
    loss_curve_ : list of float
        Each epoch's mean training loss plus the L2 penalty.
    loss_, best_loss_, validation_scores_, best_validation_score_, t_
        As in scikit-learn's ``MLPClassifier``.
    n_features_in_, feature_names_in_, n_layers_, n_outputs_, out_activation_
    coefs_, intercepts_ : list of ndarray
        Views of the weights ((n_in, n_out), as scikit-learn lays them out) and biases.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _loss(self) -> str:
        return (
            "cross_entropy"
            if self._label_binarizer.y_type_ == "multiclass"
            else ("binary_cross_entropy")
        )

    def _out_activation(self) -> str:
        return "softmax" if self._loss() == "cross_entropy" else "logistic"

    def _stratify(self) -> bool:
        return not self._multilabel

    def _validate_input(self, X, y, *, reset: bool, incremental: bool, binarizer=None):
        dtype = check_dtype(self.dtype)
        X, y = validate_data(self, X, y, multi_output=True, dtype=dtype, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if binarizer is not None:  # the first partial_fit, with its classes
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
            self._multilabel = binarizer.y_type_.startswith("multilabel")
        if reset and not incremental:
            binarizer = LabelBinarizer().fit(y)
            if len(binarizer.classes_) < 2:
                raise ValueError(
                    f"y holds only one class ({binarizer.classes_[0]!r}): a classifier needs "
                    "samples of at least 2 classes"
                )
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
            self._multilabel = binarizer.y_type_.startswith("multilabel")
        else:
            if self._multilabel != type_of_target(y).startswith("multilabel"):
                raise ValueError(
                    "y switches between multilabel and single-label targets: keep the "
                    "kind of y used in the first fit"
                )
            if not self._multilabel:
                unknown = np.setdiff1d(np.unique(y), self.classes_)
                if unknown.size:
                    raise ValueError(
                        f"y has classes {unknown.tolist()} not in classes_ "
                        f"{self.classes_.tolist()}: pass every class to the first fit or "
                        "partial_fit(classes=...)"
                    )
                if self.warm_start and not incremental and len(np.unique(y)) != len(self.classes_):
                    raise ValueError(
                        f"warm_start needs y with the same classes as before, "
                        f"{self.classes_.tolist()}"
                    )
        Y = self._label_binarizer.transform(y).astype(dtype)
        return X, Y, y

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like, optional
            Every class y may ever hold; required on the first call (not for
            multilabel y), and must not change afterwards.

        Returns
        -------
        self
        """
        binarizer = None
        if not hasattr(self, "network_"):
            self._check_params()
            if type_of_target(y).startswith("multilabel"):
                binarizer = LabelBinarizer().fit(y)
            elif classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit, e.g. "
                    "partial_fit(X, y, classes=np.unique(y_all))"
                )
            else:
                binarizer = LabelBinarizer().fit(np.asarray(classes))
                if len(binarizer.classes_) < 2:
                    raise ValueError(f"classes={classes!r} must hold at least 2 classes")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={classes!r} differs from classes_ {self.classes_.tolist()} of "
                "the first partial_fit call"
            )
        return self._fit(X, y, incremental=True, binarizer=binarizer)

    def _validation_score(self, X, y) -> float:
        proba = self.network_.predict(X)
        return float(accuracy_score(y, self._label_binarizer.inverse_transform(proba)))

    def predict(self, X):
        """The predicted class of each sample (a 0/1 indicator matrix for multilabel).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        proba = self._forward(X)
        return self._label_binarizer.inverse_transform(proba)

    def predict_proba(self, X):
        """The probability of each class (of each label, for multilabel).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        proba = self._forward(X)
        if proba.shape[1] == 1 and not self._multilabel:
            return np.hstack([1 - proba, proba])
        return proba

    def predict_log_proba(self, X):
        """The log of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class FastMLPRegressor(MultiOutputMixin, RegressorMixin, _BaseFastMLP):
    """A multi-layer perceptron regressor trained by fastnn, on the squared error.

    Parameters
    ----------
    Those of ``FastMLPClassifier`` (see there), with ``early_stopping`` monitoring
    the R² score of the held-out data.

    Attributes
    ----------
    network_ : fastnn.Network
        The fitted network (Dense layers, a linear output, ``loss="mse"``).
    n_iter_, loss_curve_, loss_, best_loss_, validation_scores_, best_validation_score_
    t_, n_features_in_, feature_names_in_, n_layers_, n_outputs_, out_activation_
    coefs_, intercepts_
        As for ``FastMLPClassifier``.
    """

    def _loss(self) -> str:
        return "mse"

    def _out_activation(self) -> str:
        return "identity"

    def _stratify(self) -> bool:
        return False

    def _validate_input(self, X, y, *, reset: bool, incremental: bool, binarizer=None):
        dtype = check_dtype(self.dtype)
        X, y = validate_data(
            self, X, y, multi_output=True, y_numeric=True, dtype=dtype, reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if reset:
            self._y_1d = y.ndim == 1
        Y = np.ascontiguousarray(y.reshape(y.shape[0], -1), dtype=dtype)
        return X, Y, y

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing from the current network.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True)

    def _validation_score(self, X, y) -> float:
        pred = self.network_.predict(X)
        return float(r2_score(y, pred.ravel() if self._y_1d else pred))

    def predict(self, X):
        """The network's outputs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs), like the y of ``fit``
        """
        pred = self._forward(X)
        return pred.ravel() if self._y_1d else pred
