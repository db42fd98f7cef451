"""The estimators' parameter checks and the names and constants they accept."""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

from ..layers import Identity, Layer, ReLU, Sigmoid, Tanh

#: scikit-learn's activation names -> fastnn layers
ACTIVATIONS: dict[str, type[Layer]] = {
    "identity": Identity,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
}
STOCHASTIC_SOLVERS = ("sgd", "adam")
SOLVERS = ("lbfgs", *STOCHASTIC_SOLVERS)
LEARNING_RATES = ("constant", "invscaling", "adaptive")
REGRESSION_LOSSES = ("squared_error", "poisson")
#: ``batch_size="auto"`` is min(AUTO_BATCH, n_samples), as in scikit-learn.
AUTO_BATCH = 200
#: The "adaptive" schedule stops once the learning rate falls to this.
MIN_ADAPTIVE_RATE = 1e-6
#: scikit-learn's wording, which its tests match.
NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large "
    "values and need to be preprocessed."
)
TOO_SMALL = (
    "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
)


def real(name: str, value, low: float, high: float = np.inf, *, low_open=False, high_open=True):
    """``value`` as a float, checked to lie in the interval from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a real number")
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high and np.isfinite(value)):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name}={value!r} must be in {lo}{low}, {high}{hi}")
    return float(value)


def positive_int(name: str, value, *, allow_inf: bool = False) -> int | float:
    """``value`` checked to be an integer >= 1 (or ``np.inf`` where allowed)."""
    if allow_inf and isinstance(value, numbers.Real) and value == np.inf:
        return np.inf
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        extra = " or np.inf" if allow_inf else ""
        raise TypeError(f"{name}={value!r} must be a positive integer{extra}")
    if value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer (at least 1)")
    return int(value)


def choice(name: str, value, options: Iterable[str]) -> str:
    options = list(options)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}={value!r} is not supported: use one of {options}")
    return value


def verbosity(value) -> int:
    """``verbose`` as an int level (True is 1), as scikit-learn accepts it."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, numbers.Integral) and value >= 0:
        return int(value)
    raise ValueError(f"verbose={value!r} must be True, False or an integer >= 0")


def hidden_sizes(value) -> tuple[int, ...]:
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
