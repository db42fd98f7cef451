"""The parameters, training loops and stopping rules both estimators share."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import io
from ..backends import BACKENDS
from ..builders import initial_weights, mlp
from ..fullbatch import FullBatch, check_sample_weight, fit_lbfgs, weight_mask
from ..layers import ACTIVATIONS, Dense
from ..network import Network, TrainingDivergedError
from ..optimizers import SGD, Adam, Optimizer
from ..validation import check_dtype, check_positive_int, writable
from .epochs import EngineEpochs, run_epoch
from .params import (
    AUTO_BATCH,
    LEARNING_RATES,
    MIN_ADAPTIVE_RATE,
    NON_FINITE,
    SOLVERS,
    STOCHASTIC_SOLVERS,
    TOO_SMALL,
    choice,
    hidden_sizes,
    real,
    verbosity,
)

#: Rows per densified chunk when a sparse X is predicted.
SPARSE_PREDICT_VALUES = 1 << 20


class _SGD(SGD):
    """SGD that also takes momentum=1.0, which scikit-learn accepts (the kernel takes
    any momentum; only the Network's own check stops at 1)."""

    def __init__(self, momentum: float, nesterov: bool) -> None:
        super().__init__(min(momentum, 0.5), nesterov)
        self.momentum = float(momentum)


class BaseFastMLP(BaseEstimator):
    """The parameters, training loops and stopping rules both estimators share."""

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
        max_fun=15000,
        dtype=None,
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
        self.max_fun = max_fun
        self.dtype = dtype
        self.backend = backend

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- checks ----------------------------------------------------------------
    def _check_params(self) -> None:
        """Check every parameter before any state changes."""
        hidden_sizes(self.hidden_layer_sizes)
        choice("activation", self.activation, ACTIVATIONS)
        choice("solver", self.solver, SOLVERS)
        choice("learning_rate", self.learning_rate, LEARNING_RATES)
        choice("backend", self.backend, BACKENDS)
        if self.dtype is not None:
            check_dtype(self.dtype)
        real("alpha", self.alpha, 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_positive_int("batch_size", self.batch_size)
        real("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        real("power_t", self.power_t, 0.0)
        check_positive_int("max_iter", self.max_iter)
        check_positive_int("max_fun", self.max_fun)
        check_positive_int("n_iter_no_change", self.n_iter_no_change, allow_inf=True)
        real("tol", self.tol, 0.0)
        real("momentum", self.momentum, 0.0, 1.0, high_open=False)
        real("validation_fraction", self.validation_fraction, 0.0, 1.0)
        if self.early_stopping and self.validation_fraction == 0:
            raise ValueError(
                "validation_fraction=0.0 leaves no validation data for early_stopping=True: "
                "use a fraction in (0, 1), e.g. 0.1"
            )
        real("beta_1", self.beta_1, 0.0, 1.0)
        real("beta_2", self.beta_2, 0.0, 1.0)
        real("epsilon", self.epsilon, 0.0, low_open=True)
        verbosity(self.verbose)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise TypeError(f"{name}={getattr(self, name)!r} must be True or False")
        self._check_loss()

    def _check_loss(self) -> None:
        """Checks of the subclass's own parameters."""

    def _check_solver(self) -> bool:
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers; solver="
                f"{self.solver!r} is not: use 'sgd' or 'adam'"
            )
        return True

    def _input_dtype(self, reset: bool):
        """The dtypes ``validate_data`` may return: the network's once it exists,
        else ``dtype``, else X's own float type (float64 for anything else)."""
        if not reset and hasattr(self, "network_"):
            return self.network_.dtype
        if self.dtype is not None:
            return check_dtype(self.dtype)
        return (np.float64, np.float32)

    # -- building ----------------------------------------------------------------
    def _new_network(self, n_features: int, n_outputs: int, dtype, seed: int) -> Network:
        widths = [n_features, *hidden_sizes(self.hidden_layer_sizes), n_outputs]
        layers = mlp(widths, self.activation)
        return Network(layers, loss=self._loss(), dtype=dtype, backend=self.backend, seed=seed)

    def _new_optimizer(self, scale: float) -> Optimizer:
        """The optimizer for gradients ``scale`` times scikit-learn's (see ``_scale``)."""
        if self.solver == "adam":
            # Adam is invariant to the gradient's scale but for epsilon.
            return Adam(beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon * scale)
        nesterov = bool(self.nesterovs_momentum) and self.momentum > 0
        if self.momentum >= 1:
            return _SGD(self.momentum, nesterov)
        return SGD(momentum=self.momentum, nesterov=nesterov)

    def _scale(self) -> float:
        """The network's loss over scikit-learn's, the same for their gradients: the
        network averages the squared error and the per-label cross-entropies over the
        outputs, scikit-learn halves the one and sums the other."""
        return 1.0

    def _reset(self, n_features: int, n_outputs: int, dtype) -> None:
        rs = self._random_state
        widths = [n_features, *hidden_sizes(self.hidden_layer_sizes), n_outputs]
        start = initial_weights(rs, widths, self.activation)
        # The network's own seed, peeked at without drawing: the estimator shuffles
        # and splits with draws from its random state in scikit-learn's order.
        seed = int(copy.deepcopy(rs).randint(np.iinfo(np.int32).max))
        self.network_ = self._new_network(n_features, n_outputs, dtype, seed)
        for layer, (coef, intercept) in zip(self._dense(), start, strict=True):
            layer.weights[...] = coef.T
            layer.bias[...] = intercept
        pending = self.__dict__.pop("_pending", {})
        if "coefs_" in pending:
            self.coefs_ = pending["coefs_"]
        if "intercepts_" in pending:
            self.intercepts_ = pending["intercepts_"]
        self.n_layers_ = len(hidden_sizes(self.hidden_layer_sizes)) + 2
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

    # -- training ----------------------------------------------------------------
    def _batch_size(self, n_samples: int) -> int:
        if isinstance(self.batch_size, str):
            return min(AUTO_BATCH, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                f"batch_size={self.batch_size} is larger than the {n_samples} training "
                f"samples: using {n_samples}",
                UserWarning,
                stacklevel=4,
            )
        return min(self.batch_size, n_samples)

    def _penalty(self, n_batches: int, n_samples: int) -> float:
        """scikit-learn's L2 term of the loss: alpha/2 · Σ‖W‖² per batch, averaged."""
        if self.alpha == 0:
            return 0.0
        squares = sum(float(np.dot(d.weights.ravel(), d.weights.ravel())) for d in self._dense())
        return 0.5 * self.alpha * squares * n_batches / n_samples

    def _dense(self) -> list[Dense]:
        return self.network_.dense_layers

    def _split(self, X, Y, y, sw):
        """Hold out ``validation_fraction`` of the samples for early stopping,
        stratified as scikit-learn does (single-output classification)."""
        stratify = Y.astype(bool) if self._stratify() and Y.shape[1] == 1 else None
        train, val = train_test_split(
            np.arange(X.shape[0]),
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        if val.size < 2:
            raise ValueError(TOO_SMALL)
        sw_train = sw_val = None
        if sw is not None:
            sw_train, sw_val = sw[train], sw[val]
        return X[train], Y[train], sw_train, X[val], y[val], sw_val

    def _fit(self, X, y, sample_weight=None, *, incremental: bool, binarizer=None):
        self._check_params()
        if self.early_stopping and incremental:
            raise ValueError(
                "partial_fit does not support early_stopping=True: set early_stopping=False"
            )
        first = not hasattr(self, "network_") or not (self.warm_start or incremental)
        X, Y, y = self._validate_input(
            X, y, reset=first, incremental=incremental, binarizer=binarizer
        )
        if not sp.issparse(X):
            X = writable(X)
        Y = writable(Y)
        # Drawn afresh at every call, as scikit-learn does.
        self._random_state = check_random_state(self.random_state)
        dtype = X.dtype if first else self.network_.dtype
        sw = None
        if sample_weight is not None:
            sw = check_sample_weight(sample_weight, X.shape[0], dtype)
            if not sw.any():
                raise ValueError(
                    "sample_weight is all zeros: give at least one sample a positive weight"
                )
            if (sw == 1).all():  # the default: the same path, and the same results
                sw = None
        if first:
            self._reset(X.shape[1], Y.shape[1], dtype)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sw)
        else:
            self._fit_stochastic(X, Y, y, sw, incremental)
        return self

    def _fit_lbfgs(self, X, Y, sw) -> None:
        net = self.network_
        level = verbosity(self.verbose)

        def report(params, value) -> None:
            self.loss_curve_.append(value)
            if level:
                print(f"Iteration {len(self.loss_curve_)}, loss = {value:.8f}")

        self.loss_curve_ = []
        try:
            result = fit_lbfgs(
                net, X, Y, l2=float(self.alpha), max_iter=int(self.max_iter),
                max_fun=int(self.max_fun), tol=float(self.tol), sample_weight=sw,
                callback=report, loss=self._fullbatch_loss(), loss_scale=1.0 / self._scale(),
            )  # fmt: skip
        except TrainingDivergedError as exc:
            raise ValueError(NON_FINITE) from exc
        self.n_iter_ = min(int(result.nit), int(self.max_iter))
        self.loss_ = float(result.fun)
        if result.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {result.nit} iteration(s) "
                f"(status={result.status}): {result.message}. Increase the number of "
                "iterations (max_iter) or scale the data.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _fullbatch_loss(self) -> str | None:
        """The full-batch kernel's loss, if not the network's own."""
        return None

    def _engine_ok(self, X, sw) -> bool:
        """Whether the compiled epochs of ``Network.fit`` can train on this data."""
        return not sp.issparse(X) and sw is None and self._fullbatch_loss() is None

    def _fit_stochastic(self, X, Y, y, sw, incremental: bool) -> None:
        net = self.network_
        level = verbosity(self.verbose)
        X_val = y_val = sw_val = None
        if self.early_stopping:
            X, Y, sw, X_val, y_val, sw_val = self._split(X, Y, y, sw)
        n = X.shape[0]
        batch = self._batch_size(n)
        n_batches = -(-n // batch)
        engine = self._engine_ok(X, sw)
        scale = self._scale() if engine else 1.0
        # Go on with the network's optimizer (and its state) unless its settings changed.
        optimizer = self._new_optimizer(scale)
        if net.optimizer is not None and net.optimizer.get_config() == optimizer.get_config():
            optimizer = net.optimizer
        net.optimizer = optimizer
        data = None if engine else FullBatch(net, X, Y, sw, self._fullbatch_loss())
        epochs = EngineEpochs(net, X, Y, batch, scale * self.alpha / batch) if engine else None
        mask = weight_mask(net)
        if self.early_stopping and self.validation_scores_ is None:  # switched on by warm start
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
        if not self.early_stopping and self.best_loss_ is None:
            self.best_loss_ = np.inf
        sgd_schedule = self.learning_rate if self.solver == "sgd" else "constant"

        self.n_iter_ = self.n_iter_ if incremental else 0
        iterations = 1 if incremental else self.max_iter
        best_params = None
        stopped = False
        order = np.arange(n, dtype=np.int64)
        # One BLAS thread limit for all the epochs (a limit costs milliseconds).
        with (epochs or data).threads():
            for _ in range(iterations):
                if self.shuffle:  # sklearn.utils.shuffle's permutations, drawn in place
                    self._random_state.shuffle(order)
                try:
                    if engine:
                        rate = self._learning_rate / (scale if self.solver == "sgd" else 1.0)
                        loss = epochs.run(order, rate, optimizer)
                        self.loss_ = loss / scale + self._penalty(n_batches, n)
                    else:
                        self.loss_ = run_epoch(data, order, batch, self._learning_rate, optimizer,
                                               float(self.alpha), 1.0 / self._scale(),
                                               mask)  # fmt: skip
                except TrainingDivergedError as exc:
                    if not self.early_stopping:
                        raise ValueError(NON_FINITE) from exc
                    # As scikit-learn: the run ends on a NaN score, the best weights kept.
                    self.loss_ = np.nan
                    self.loss_curve_.append(np.nan)
                    self.validation_scores_.append(np.nan)
                    self.n_iter_ += 1
                    stopped = True
                    break
                self.loss_curve_.append(self.loss_)
                self.n_iter_ += 1
                self.t_ += n
                if level:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")

                if self.early_stopping:
                    score = self._validation_score(X_val, y_val, sw_val)
                    self.validation_scores_.append(score)
                    if level:
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
                        if level:
                            print(f"{msg} Setting learning rate to {self._learning_rate:f}")
                    else:
                        if level:
                            print(f"{msg} Stopping.")
                        stopped = True
                        break
        if not incremental and not stopped and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        if best_params is not None:
            net.params[:] = best_params

    def fit(self, X, y, sample_weight=None):
        """Train from scratch (or go on, with ``warm_start=True``) on (X, y).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples' losses; ones by default.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        net = self.network_
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False, dtype=net.dtype)
        if not sp.issparse(X):
            return net.predict(writable(X))
        # A few rows at a time: a sparse X is never densified as a whole.
        X = X.tocsr()
        rows = max(1, SPARSE_PREDICT_VALUES // max(1, X.shape[1]))
        out = np.empty((X.shape[0], net.n_outputs), net.dtype)
        for start in range(0, X.shape[0], rows):
            out[start : start + rows] = net.predict(X[start : start + rows].toarray())
        return out

    # -- sklearn-style views of the weights ------------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Each Dense layer's weights as scikit-learn lays them out, (n_in, n_out):
        views of the network's parameters. Assigning copies the values in (before
        the first fit, they become the starting weights of ``partial_fit`` or a
        warm-started ``fit``)."""
        return self._weights("coefs_")

    @coefs_.setter
    def coefs_(self, value) -> None:
        self._set_weights("coefs_", value)

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Each Dense layer's bias, shape (n_out,): views of the network's parameters."""
        return self._weights("intercepts_")

    @intercepts_.setter
    def intercepts_(self, value) -> None:
        self._set_weights("intercepts_", value)

    def _weights(self, name: str) -> list[np.ndarray]:
        if "network_" not in self.__dict__:
            pending = self.__dict__.get("_pending", {})
            if name in pending:
                return pending[name]
            check_is_fitted(self, "network_")
        if name == "coefs_":
            return [d.weights.T for d in self._dense()]
        return [d.bias for d in self._dense()]

    def _set_weights(self, name: str, value) -> None:
        if "network_" not in self.__dict__:
            self.__dict__.setdefault("_pending", {})[name] = value
            return
        views = self._weights(name)
        if len(value) != len(views):
            raise ValueError(f"{name} needs {len(views)} arrays, one per layer; got {len(value)}")
        arrays = [np.asarray(v, dtype=w.dtype) for v, w in zip(value, views, strict=True)]
        for i, (a, w) in enumerate(zip(arrays, views, strict=True)):
            if a.shape != w.shape:
                raise ValueError(f"{name}[{i}] has shape {a.shape}: the layer needs {w.shape}")
        for a, w in zip(arrays, views, strict=True):
            w[...] = a

    # -- pickling ---------------------------------------------------------------
    def __getstate__(self):
        # A Network holds kernel modules, which do not pickle: store it in the
        # fastnn file format instead (plain arrays + JSON, checked on the way back).
        state = dict(super().__getstate__())  # a copy: it may be the live __dict__
        net = state.pop("network_", None)
        if net is not None:
            opt = net.optimizer
            if isinstance(opt, _SGD):
                # momentum=1 is outside what the file format's optimizer accepts: the
                # optimizer and its state travel beside the network.
                state["_sgd"] = (opt.momentum, opt.nesterov, opt.step, dict(opt.state))
                net.optimizer = None
                try:
                    state["_network_npz"] = io.to_bytes(net)
                finally:
                    net.optimizer = opt
            else:
                state["_network_npz"] = io.to_bytes(net)
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_network_npz", None)
        sgd = state.pop("_sgd", None)
        super().__setstate__(state)
        if data is not None:
            self.network_ = io.from_bytes(data)
        if sgd is not None:
            momentum, nesterov, step, buffers = sgd
            opt = _SGD(momentum, nesterov)
            opt.step, opt.state = step, buffers
            self.network_.optimizer = opt
