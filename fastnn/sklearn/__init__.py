"""scikit-learn estimators on fastnn networks: ``FastMLPClassifier`` and
``FastMLPRegressor``.

They take scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` parameters, with the
same meaning (the L-BFGS, SGD and Adam solvers, sample weights, sparse input, the
losses scaled as scikit-learn scales them), plus fastnn's own ``dtype`` and
``backend``, and work anywhere a scikit-learn estimator does (``Pipeline``,
``GridSearchCV``, ``clone``, pickle). Each SGD or Adam iteration (epoch) is one
``Network.fit(..., epochs=1)`` call, or, for weighted, sparse or Poisson data, one
pass of ``fastnn.sklearn.epochs``; L-BFGS runs on ``fastnn.fullbatch``.

Needs scikit-learn: ``pip install "fastnn-numba[sklearn]"``.
"""

try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        'fastnn.sklearn needs scikit-learn: pip install "fastnn-numba[sklearn]"'
    ) from exc

from .classifier import FastMLPClassifier
from .params import ACTIVATIONS
from .regressor import FastMLPRegressor

__all__ = ["ACTIVATIONS", "FastMLPClassifier", "FastMLPRegressor"]
