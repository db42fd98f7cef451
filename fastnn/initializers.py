"""Weight initialisation schemes for Dense layers."""

from __future__ import annotations

import numpy as np

INITIALIZERS = ("xavier", "xavier_normal", "he", "he_uniform", "lecun", "zeros")


def initialize(
    name: str,
    weights: np.ndarray,
    bias: np.ndarray,
    rng: np.random.Generator,
    fan_out: int | None = None,
) -> None:
    """Fill ``weights`` (n_out, n_in) in place by scheme ``name``; zero the bias.

    ``"xavier"`` is Glorot's uniform U(±√(6/(n_in + n_out))), ``"xavier_normal"``
    N(0, 2/(n_in + n_out)); ``"he"`` is He's normal N(0, 2/n_in), the default before a
    ReLU, and ``"he_uniform"`` U(±√(6/n_in)); ``"lecun"`` is N(0, 1/n_in).
    Values are drawn in float64 and rounded once, so float32 and float64 networks
    with the same seed start from the same weights, up to rounding.

    ``fan_out`` replaces n_out in the Glorot schemes: a convolution's is
    O·KH·KW, with its weights passed as (O, C·KH·KW).
    """
    n_out, n_in = weights.shape
    fan = n_out if fan_out is None else fan_out
    if name == "xavier":
        limit = np.sqrt(6.0 / (n_in + fan))
        values = rng.uniform(-limit, limit, size=(n_out, n_in))
    elif name == "xavier_normal":
        values = rng.normal(0.0, np.sqrt(2.0 / (n_in + fan)), size=(n_out, n_in))
    elif name == "he":
        values = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in))
    elif name == "he_uniform":
        limit = np.sqrt(6.0 / n_in)
        values = rng.uniform(-limit, limit, size=(n_out, n_in))
    elif name == "lecun":
        values = rng.normal(0.0, np.sqrt(1.0 / n_in), size=(n_out, n_in))
    elif name == "zeros":
        values = np.zeros((n_out, n_in))
    else:
        raise ValueError(f"unknown init {name!r}: use one of {list(INITIALIZERS)}")
    weights[...] = values
    bias[...] = 0
