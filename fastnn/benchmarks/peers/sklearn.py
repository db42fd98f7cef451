"""sklearn: ``MLPClassifier`` on the digits workload and in the digits race.

scikit-learn is imported when a case is built, not with this module.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..cases import Case, RaceCase, Unavailable


class SklearnDigits(Case):
    """``MLPClassifier`` with per-sample SGD, started from fastnn's initial weights.

    A warm-started classifier is set up on one sample of each class (untimed), its
    ``coefs_`` / ``intercepts_`` are overwritten with fastnn's initial weights, and
    the timed ``fit`` continues from them for ``epochs`` epochs.
    """

    def __init__(self, init, data, epochs, learning_rate, **kwargs):
        super().__init__("sklearn", units=len(data[0]) * epochs, **kwargs)
        try:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.neural_network import MLPClassifier
        except ImportError as err:
            raise Unavailable("scikit-learn is not installed") from err
        self.MLPClassifier, self.ConvergenceWarning = MLPClassifier, ConvergenceWarning
        self.init, self.data, self.epochs, self.lr = init, data, epochs, learning_rate

    def reset(self) -> None:
        Xtr, ytr = self.data[:2]
        clf = self.MLPClassifier(
            hidden_layer_sizes=(self.init[0][0].shape[0],),
            activation="tanh",
            solver="sgd",
            alpha=0.0,
            batch_size=1,
            learning_rate="constant",
            learning_rate_init=self.lr,
            momentum=0.0,
            nesterovs_momentum=False,
            max_iter=1,
            shuffle=True,
            random_state=0,
            tol=0.0,
            n_iter_no_change=self.epochs + 1,
            early_stopping=False,
            warm_start=True,
        )
        first = np.unique(ytr, return_index=True)[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.ConvergenceWarning)
            clf.fit(Xtr[first], ytr[first])
        for coef, intercept, (W, b) in zip(clf.coefs_, clf.intercepts_, self.init, strict=True):
            coef[...] = W.T
            intercept[...] = b
        clf.set_params(max_iter=self.epochs)
        self.clf = clf

    def run(self) -> None:
        Xtr, ytr, _, _ = self.data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.ConvergenceWarning)
            self.clf.fit(Xtr, ytr)

    def result(self) -> float:
        _, _, Xte, yte = self.data
        return float(np.mean(self.clf.predict(Xte) == yte))


class SklearnRace(RaceCase):
    def __init__(self, data, target, max_epochs, *, hidden, activation, learning_rate, batch,
                 **kw):  # fmt: skip
        super().__init__("sklearn", data, target, max_epochs, **kw)
        try:
            from sklearn.neural_network import MLPClassifier
        except ImportError as err:
            raise Unavailable("scikit-learn is not installed") from err
        self.make = lambda: MLPClassifier(
            hidden_layer_sizes=(hidden,),
            activation=activation,
            solver="adam",
            learning_rate_init=learning_rate,
            batch_size=batch,
            random_state=0,
        )
        self.classes = np.unique(data[1])
        self.describe = f"adam, batch {batch}, lr {learning_rate}, {hidden} {activation}"

    def reset(self) -> None:
        self.clf = self.make()

    def epoch(self) -> None:
        # partial_fit is one pass over the data that keeps Adam's state between calls.
        Xtr, ytr = self.data[:2]
        self.clf.partial_fit(Xtr, ytr, classes=self.classes)

    def predict_classes(self, X):
        return self.clf.predict(X)
