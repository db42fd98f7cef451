"""Building networks from a short description: a multilayer perceptron from its widths.

The command line, the scikit-learn estimators and the benchmarks describe their
networks this way; the layer kinds come from the registry (``fastnn.layers``), so an
activation added there is available here by its name. ``initial_weights`` draws the
starting weights scikit-learn's MLPs draw, which the estimators and ``fastnn train``
start from.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from .layers import ACTIVATIONS, Dense, Layer, Sigmoid
from .layers import activation as make_activation
from .validation import check_positive_int


def mlp(
    widths: Sequence[int],
    activation: str = "relu",
    output_activation: str | None = None,
    *,
    init: str | None = None,
    **settings,
) -> list[Layer]:
    """The layers of a multilayer perceptron.

    Parameters
    ----------
    widths : sequence of int
        The input width, every hidden width, then the output width, e.g.
        ``(784, 128, 10)``: at least two, each a positive integer.
    activation : str
        The activation after every hidden Dense layer ("relu", "tanh", "sigmoid",
        "identity", or any name in ``fastnn.layers.ACTIVATIONS``).
    output_activation : str or None
        An activation after the last Dense layer; None leaves the output linear (the
        cross-entropy losses take logits, and MSE regresses).
    init : str, optional
        Every Dense layer's initial weights (``Dense``'s ``init``); by default the
        Network picks by the activation that follows.
    **settings
        The hidden activation's settings, e.g. ``negative_slope=0.1``.

    Returns
    -------
    list of Layer
        ``[Dense(w0, w1), act, Dense(w1, w2), act, ..., Dense(w[-2], w[-1])]``, fresh
        layers for one Network.

    Examples
    --------
    >>> mlp([2, 3, 1], "tanh", "tanh")
    [Dense(2, 3), Tanh(), Dense(3, 1), Tanh()]
    """
    widths = [check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths)]
    if len(widths) < 2:
        raise ValueError(
            f"widths={widths!r} needs the input and the output width at least, e.g. [4, 16, 2]"
        )
    make_activation(activation, **settings)  # a bad name or setting fails before any layer
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        layers.append(Dense(n_in, n_out, init))
        if i < len(widths) - 2:
            layers.append(make_activation(activation, **settings))
    if output_activation is not None:
        layers.append(make_activation(output_activation))
    return layers


def initial_weights(rs: np.random.RandomState, widths, activation: str) -> list[tuple]:
    """scikit-learn's initial weights of a multilayer perceptron, drawn as it draws them.

    Glorot-uniform weights and biases alike, U(±√(f/(n_in + n_out))) with f = 2 before
    a logistic activation and 6 otherwise, layer by layer from ``rs``: for one
    random_state, scikit-learn's ``MLPClassifier`` and fastnn start from one point.

    Parameters
    ----------
    rs : numpy.random.RandomState
        Drawn from in scikit-learn's order (each layer's weights, then its biases).
    widths : sequence of int
        The input width, every hidden width, then the output width.
    activation : str
        The hidden activation's name (a name of ``fastnn.layers.ACTIVATIONS``).

    Returns
    -------
    list of (ndarray, ndarray)
        Each Dense layer's (coef, intercept): coef of shape (n_in, n_out), as
        scikit-learn lays it out (the transpose of ``Dense.weights``), and intercept
        of shape (n_out,).
    """
    factor = 2.0 if ACTIVATIONS.get(activation) is Sigmoid else 6.0
    start = []
    for fan_in, fan_out in itertools.pairwise(widths):
        bound = np.sqrt(factor / (fan_in + fan_out))
        start.append((rs.uniform(-bound, bound, (fan_in, fan_out)),
                      rs.uniform(-bound, bound, fan_out)))  # fmt: skip
    return start
