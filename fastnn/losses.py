"""Losses and their derivatives with respect to the network's output.

``y_true`` and ``y_pred`` are one sample, shape (n_outputs,), or a batch, shape
(n_samples, n_outputs); a batch's loss is the mean over samples and its prime is the
gradient of that mean. ``y_pred`` is what the last layer outputs:

* ``mse``: the mean over outputs of (ŷ − y)²; its prime is 2(ŷ − y)/n.
* ``binary_cross_entropy``: on sigmoid outputs, computed from the *logits* ŷ = z
  for stability (the sigmoid is part of the loss); its prime is (σ(z) − y)/n.
* ``cross_entropy``: on the softmax of the logits z, fused and stable; its prime is
  softmax(z) − y.

With either cross-entropy, end the network with a Dense layer: the loss applies the
sigmoid or softmax itself, and ``Network.predict`` returns probabilities. A Network
that ends in Sigmoid under binary cross-entropy fuses that layer into the loss, so it
trains on the logits before it (gradient p − y).

Every function takes ``backend``, as layers and networks do: "numba" (the default) runs
the compiled kernels, "numpy" their pure-NumPy twin, without loading Numba.
"""

from __future__ import annotations

import numpy as np

from .backends import get_ops
from .codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MSE
from .codes import LOSS_CODES as LOSSES


def loss_kind(name: str) -> int:
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}: use one of {sorted(LOSSES)}")
    return LOSSES[name]


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    z = np.ascontiguousarray(y_pred)
    if z.dtype not in (np.float32, np.float64):
        z = z.astype(np.float64)
    y = np.ascontiguousarray(y_true, dtype=z.dtype)
    if y.shape != z.shape or z.ndim not in (1, 2) or z.size == 0:
        raise ValueError(
            f"y_true has shape {y.shape} and y_pred {z.shape}: they must match, as "
            "(n_outputs,) for one sample or (n_samples, n_outputs) for a batch"
        )
    return y, z


def _value(kind: int, y_true, y_pred, backend: str) -> float:
    ops = get_ops(backend)  # validates the name first
    y, z = _pair(y_true, y_pred)
    if z.ndim == 1:
        return float(ops.loss_value(kind, y, z))
    return float(ops.batch_loss(kind, y, z))


def _prime(kind: int, y_true, y_pred, backend: str) -> np.ndarray:
    ops = get_ops(backend)  # validates the name first
    y, z = _pair(y_true, y_pred)
    out = np.empty_like(z)
    if z.ndim == 1:
        ops.loss_grad(kind, y, z, 1.0, out)
    else:
        ops.batch_loss_grad(kind, y, z, out)
    return out


def mse(y_true, y_pred, *, backend: str = "numba") -> float:
    """Mean squared error."""
    return _value(MSE, y_true, y_pred, backend)


def mse_prime(y_true, y_pred, *, backend: str = "numba") -> np.ndarray:
    """d mse / d y_pred = 2(y_pred − y_true)/n_outputs."""
    return _prime(MSE, y_true, y_pred, backend)


def binary_cross_entropy(y_true, y_pred, *, backend: str = "numba") -> float:
    """Binary cross-entropy of sigmoid(y_pred), from the logits y_pred."""
    return _value(BINARY_CROSS_ENTROPY, y_true, y_pred, backend)


def binary_cross_entropy_prime(y_true, y_pred, *, backend: str = "numba") -> np.ndarray:
    """d bce / d logits = (σ(y_pred) − y_true)/n_outputs."""
    return _prime(BINARY_CROSS_ENTROPY, y_true, y_pred, backend)


def cross_entropy(y_true, y_pred, *, backend: str = "numba") -> float:
    """Cross-entropy of softmax(y_pred) against y_true (one-hot or probabilities)."""
    return _value(CROSS_ENTROPY, y_true, y_pred, backend)


def cross_entropy_prime(y_true, y_pred, *, backend: str = "numba") -> np.ndarray:
    """d ce / d logits = sum(y_true)·softmax(y_pred) − y_true."""
    return _prime(CROSS_ENTROPY, y_true, y_pred, backend)
