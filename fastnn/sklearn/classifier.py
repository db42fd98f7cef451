"""``FastMLPClassifier``: scikit-learn's ``MLPClassifier`` on a fastnn network."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .base import BaseFastMLP


class FastMLPClassifier(ClassifierMixin, BaseFastMLP):
    """A multi-layer perceptron classifier trained by fastnn.

    Two classes train one logistic output with ``binary_cross_entropy`` (as
    scikit-learn's ``MLPClassifier`` does); more classes train a softmax output
    with ``cross_entropy``; a multilabel indicator ``y`` trains one logistic output
    per label, the per-label losses summed as in scikit-learn.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        The width of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        The hidden layers' activation.
    solver : {"lbfgs", "sgd", "adam"}, default="adam"
        "lbfgs" is SciPy's L-BFGS-B on the loss and gradient over the whole
        training set, each evaluation one compiled call.
    alpha : float, default=0.0001
        L2 penalty, scaled as in scikit-learn (alpha/2·‖W‖² over the batch's weight).
    batch_size : int or "auto", default="auto"
        "auto" is ``min(200, n_samples)``; 1 with ``solver="sgd"``, ``momentum=0`` and
        ``alpha=0`` runs fastnn's compiled per-sample SGD.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The schedule of ``solver="sgd"``, as in scikit-learn.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
        The exponent of "invscaling".
    max_iter : int, default=200
        The most epochs (iterations of L-BFGS) ``fit`` runs.
    shuffle : bool, default=True
        Shuffle the samples each epoch.
    random_state : int, RandomState or None, default=None
        Seeds the initial weights, the shuffling and the early-stopping split.
    tol : float, default=1e-4
    verbose : bool or int, default=False
        Print each iteration's loss.
    warm_start : bool, default=False
        Go on from the current network when ``fit`` is called again.
    momentum : float, default=0.9
        Of ``solver="sgd"``, in [0, 1].
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its accuracy has
        not improved by ``tol`` for ``n_iter_no_change`` epochs; the best epoch's
        weights are kept.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float
        Adam's settings, defaults 0.9, 0.999 and 1e-8.
    n_iter_no_change : int or np.inf, default=10
        Without early stopping, training stops when the training loss has not
        improved by ``tol`` for this many epochs.
    max_fun : int, default=15000
        The most loss evaluations of ``solver="lbfgs"``.
    dtype : np.float32, np.float64 or None, default=None
        The float type of the network, end to end; None follows X (float32 X trains
        a float32 network, anything else float64).
    backend : {"numba", "numpy"}, default="numba"

    Attributes
    ----------
    classes_ : ndarray
    network_ : fastnn.Network
        The fitted network; its ``predict`` returns the class probabilities.
    n_iter_ : int
        Epochs run by the last ``fit`` (``partial_fit`` adds one per call).
    loss_curve_ : list of float
        Each iteration's training loss plus the L2 penalty.
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
        multiclass = self._label_binarizer.y_type_ == "multiclass"
        return "cross_entropy" if multiclass else "binary_cross_entropy"

    def _scale(self) -> float:
        # The network averages the per-label losses; scikit-learn sums them.
        return 1.0 if self._loss() == "cross_entropy" else 1.0 / self.n_outputs_

    def _out_activation(self) -> str:
        return "softmax" if self._loss() == "cross_entropy" else "logistic"

    def _stratify(self) -> bool:
        return True

    def _set_binarizer(self, binarizer: LabelBinarizer) -> None:
        self._label_binarizer = binarizer
        self.classes_ = binarizer.classes_
        self._multilabel = binarizer.y_type_.startswith("multilabel")

    def _validate_input(self, X, y, *, reset: bool, incremental: bool, binarizer=None):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
            dtype=self._input_dtype(reset), reset=reset,
        )  # fmt: skip
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if binarizer is not None:  # the first partial_fit, with its classes
            self._set_binarizer(binarizer)
        if reset and not incremental:
            self._set_binarizer(LabelBinarizer().fit(y))
        else:
            if self._multilabel != type_of_target(y).startswith("multilabel"):
                raise ValueError(
                    "y switches between multilabel and single-label targets: keep the "
                    "kind of y used in the first fit"
                )
            if not self._multilabel:
                labels = np.unique(y)
                if (
                    self.warm_start
                    and not incremental
                    and not np.array_equal(labels, self.classes_)
                ):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{labels}"
                    )
                unknown = np.setdiff1d(labels, self.classes_)
                if unknown.size:
                    raise ValueError(
                        f"y has classes {unknown.tolist()} not in classes_ "
                        f"{self.classes_.tolist()}: pass every class to the first fit or "
                        "partial_fit(classes=...)"
                    )
        Y = self._label_binarizer.transform(y).astype(X.dtype)
        return X, Y, y

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing from the current network.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), optional
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
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={classes!r} differs from classes_ {self.classes_.tolist()} of "
                "the first partial_fit call"
            )
        return self._fit(X, y, sample_weight, incremental=True, binarizer=binarizer)

    def _validation_score(self, X, y, sample_weight) -> float:
        pred = self._label_binarizer.inverse_transform(self.network_.predict(X))
        return float(accuracy_score(y, pred, sample_weight=sample_weight))

    def onnx_outputs(self) -> dict:
        """The network and output form an ONNX export needs (``fastnn.onnx_export``):
        labels from ``classes_``, and probabilities."""
        check_is_fitted(self)
        return {"net": self.network_, "classes": self.classes_, "multilabel": self._multilabel}

    def predict(self, X):
        """The predicted class of each sample (a 0/1 indicator matrix for multilabel).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        proba = self._forward(X)  # checks that the estimator is fitted
        return self._label_binarizer.inverse_transform(proba)

    def predict_proba(self, X):
        """The probability of each class (of each label, for multilabel).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

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
