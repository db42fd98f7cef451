"""``FastMLPRegressor``: scikit-learn's ``MLPRegressor`` on a fastnn network."""

from __future__ import annotations

import numpy as np
from sklearn.base import MultiOutputMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .base import BaseFastMLP
from .params import REGRESSION_LOSSES, choice


class FastMLPRegressor(MultiOutputMixin, RegressorMixin, BaseFastMLP):
    """A multi-layer perceptron regressor trained by fastnn.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default="squared_error"
        "squared_error" is half the squared error summed over the targets, averaged
        over the samples (scikit-learn's loss and gradient); "poisson" is the
        Poisson deviance of exp(output), the network's output being the log of the
        predicted mean.
    Others : as for ``FastMLPClassifier`` (see there), with ``early_stopping``
        monitoring the R² score of the held-out data.

    Attributes
    ----------
    network_ : fastnn.Network
        The fitted network (Dense layers and a linear output).
    n_iter_, loss_curve_, loss_, best_loss_, validation_scores_, best_validation_score_
    t_, n_features_in_, feature_names_in_, n_layers_, n_outputs_, out_activation_
    coefs_, intercepts_
        As for ``FastMLPClassifier``.
    """

    # scikit-learn reads the parameters from this signature: they are spelled out.
    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss="squared_error",
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
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dtype=dtype,
            backend=backend,
        )
        self.loss = loss

    def _check_loss(self) -> None:
        choice("loss", self.loss, REGRESSION_LOSSES)

    def _loss(self) -> str:
        return "mse"

    def _fullbatch_loss(self) -> str | None:
        return "poisson" if self.loss == "poisson" else None

    def _scale(self) -> float:
        # The network's mse is the mean of the squares over the targets; scikit-learn's
        # gradient is that of half their sum.
        return 1.0 if self.loss == "poisson" else 2.0 / self.n_outputs_

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _stratify(self) -> bool:
        return False

    def _validate_input(self, X, y, *, reset: bool, incremental: bool, binarizer=None):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
            dtype=self._input_dtype(reset), reset=reset,
        )  # fmt: skip
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' needs y >= 0 (counts or rates)")
        if reset:
            self._y_1d = y.ndim == 1
        Y = np.ascontiguousarray(y.reshape(y.shape[0], -1), dtype=X.dtype)
        return X, Y, y

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current network.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _predict_raw(self, X) -> np.ndarray:
        out = self._forward(X)
        if self.loss == "poisson":
            np.exp(out, out=out)
        return out

    def _validation_score(self, X, y, sample_weight) -> float:
        pred = self._predict_raw(X)
        if not np.isfinite(pred).all():
            return np.nan  # a diverged network: scikit-learn's score is NaN too
        return float(r2_score(y, pred.ravel() if self._y_1d else pred,
                              sample_weight=sample_weight))  # fmt: skip

    def onnx_outputs(self) -> dict:
        """The network and output form an ONNX export needs (``fastnn.onnx_export``):
        whether ``predict`` returns 1-D values."""
        check_is_fitted(self)
        return {"net": self.network_, "flat": self._y_1d}

    def predict(self, X):
        """The network's outputs (their exponential with ``loss="poisson"``).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs), like the y of ``fit``
        """
        pred = self._predict_raw(X)
        return pred.ravel() if self._y_1d else pred
