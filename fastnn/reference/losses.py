"""NumPy twins of ``fastnn.kernels.losses``."""

from __future__ import annotations

import numpy as np

from ..codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MSE


def mse_loss(y, z):
    return float(np.mean((z - y) ** 2))


def mse_grad(y, z, scale, out):
    out[...] = z.dtype.type(2 * scale / z.size) * (z - y)


def binary_cross_entropy_loss(y, z):
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def binary_cross_entropy_grad(y, z, scale, out):
    out[...] = z.dtype.type(scale / z.size) * (_sigmoid(z) - y)


def _log_softmax(z):
    shifted = z - np.max(z)
    return shifted - np.log(np.sum(np.exp(shifted)))


def cross_entropy_loss(y, z):
    return float(-np.sum(y * _log_softmax(z)))


def cross_entropy_grad(y, z, scale, out):
    out[...] = z.dtype.type(scale) * (np.sum(y) * np.exp(_log_softmax(z)) - y)


def softmax(z, out):
    out[...] = np.exp(_log_softmax(z))


_LOSS = {MSE: mse_loss, BINARY_CROSS_ENTROPY: binary_cross_entropy_loss}
_GRAD = {MSE: mse_grad, BINARY_CROSS_ENTROPY: binary_cross_entropy_grad}


def loss_value(kind, y, z):
    return _LOSS.get(kind, cross_entropy_loss)(y, z)


def loss_grad(kind, y, z, scale, out):
    _GRAD.get(kind, cross_entropy_grad)(y, z, scale, out)


def batch_loss(kind, Y, Z):
    return float(np.mean([loss_value(kind, y, z) for y, z in zip(Y, Z, strict=False)]))


def batch_loss_grad(kind, Y, Z, out):
    for y, z, o in zip(Y, Z, out, strict=False):
        loss_grad(kind, y, z, 1.0 / len(Z), o)


def output_transform(kind, Z, out):
    if kind == CROSS_ENTROPY:
        shifted = Z - Z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        out[...] = e / e.sum(axis=1, keepdims=True)
    elif kind == BINARY_CROSS_ENTROPY:
        out[...] = _sigmoid(Z)
    else:
        out[...] = Z
