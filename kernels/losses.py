"""Loss kernels, in numerically stable forms.

``y`` is the target and ``z`` the last layer's output, both (n_outputs,). The two
cross-entropies take *logits*: the sigmoid (binary) or softmax (categorical) is part
of the loss, which keeps log(0) out of the forward pass and gives the simple
gradients σ(z) - y and softmax(z) - y.

``*_grad(y, z, scale, out)`` writes ``scale * dC/dz`` into ``out``; a batch of n
samples passes ``scale = 1/n`` to get the gradient of the mean loss.

Each kernel runs on a ``*_flat`` form that reads ``k`` values at given offsets of flat
buffers, which the engine calls directly.
"""

from __future__ import annotations

import numpy as np

from ..codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MSE, SIGMOID
from .activations import forward_flat
from .config import serial


@serial(inline="always")  # a compile of its own costs more
def _max(z, z0, k):
    m = z[z0]
    for i in range(1, k):
        m = max(m, z[z0 + i])
    return m


@serial(inline="always")
def loss_value_flat(kind, y, y0, z, z0, k):
    """The loss of one sample: targets y[y0:y0+k], outputs z[z0:z0+k]."""
    acc = z.dtype.type(0)
    if kind == MSE:
        for i in range(k):
            d = z[z0 + i] - y[y0 + i]
            acc += d * d
        return acc / z.dtype.type(k)
    if kind == BINARY_CROSS_ENTROPY:
        # max(z, 0) - z·y + log(1 + e^-|z|): the logits form, finite for finite z.
        zero = z.dtype.type(0)
        for i in range(k):
            v = z[z0 + i]
            acc += max(v, zero) - v * y[y0 + i] + np.log1p(np.exp(-abs(v)))
        return acc / z.dtype.type(k)
    # sum(y)·logsumexp(z) - y·z, with the maximum taken out of the exponentials.
    m = _max(z, z0, k)
    ysum = z.dtype.type(0)
    yz = z.dtype.type(0)
    for i in range(k):
        acc += np.exp(z[z0 + i] - m)
        ysum += y[y0 + i]
        yz += y[y0 + i] * z[z0 + i]
    return ysum * (m + np.log(acc)) - yz


@serial(inline="always")
def loss_grad_flat(kind, y, y0, z, z0, k, scale, out, o0):
    """out[o0:o0+k] = scale · dC/dz for one sample."""
    dt = z.dtype.type
    if kind == MSE:
        c = dt(2) * dt(scale) / dt(k)
        for i in range(k):
            out[o0 + i] = c * (z[z0 + i] - y[y0 + i])
    elif kind == BINARY_CROSS_ENTROPY:
        c = dt(scale) / dt(k)
        # σ(z) by the activation's own loop, which is compiled already.
        forward_flat(SIGMOID, z, z0, out, o0, k, 0.0)
        for i in range(k):
            out[o0 + i] = c * (out[o0 + i] - y[y0 + i])
    else:
        # d/dz = sum(y)·softmax(z) - y
        m = _max(z, z0, k)
        s = dt(0)
        ysum = dt(0)
        for i in range(k):
            e = np.exp(z[z0 + i] - m)
            out[o0 + i] = e
            s += e
            ysum += y[y0 + i]
        c = dt(scale)
        ratio = ysum / s
        for i in range(k):
            out[o0 + i] = c * (ratio * out[o0 + i] - y[y0 + i])


@serial
def softmax_flat(z, z0, out, o0, k):
    m = _max(z, z0, k)
    s = z.dtype.type(0)
    for i in range(k):
        e = np.exp(z[z0 + i] - m)
        out[o0 + i] = e
        s += e
    inv = z.dtype.type(1) / s
    for i in range(k):
        out[o0 + i] *= inv


@serial
def loss_value(kind, y, z):
    """The loss of one sample, dispatched on ``kind`` (MSE, BINARY_CROSS_ENTROPY, ...)."""
    return loss_value_flat(kind, y, 0, z, 0, z.size)


@serial
def loss_grad(kind, y, z, scale, out):
    loss_grad_flat(kind, y, 0, z, 0, z.size, scale, out, 0)


@serial
def mse_loss(y, z):
    return loss_value(MSE, y, z)


@serial
def mse_grad(y, z, scale, out):
    loss_grad(MSE, y, z, scale, out)


@serial
def binary_cross_entropy_loss(y, z):
    return loss_value(BINARY_CROSS_ENTROPY, y, z)


@serial
def binary_cross_entropy_grad(y, z, scale, out):
    loss_grad(BINARY_CROSS_ENTROPY, y, z, scale, out)


@serial
def cross_entropy_loss(y, z):
    return loss_value(CROSS_ENTROPY, y, z)


@serial
def cross_entropy_grad(y, z, scale, out):
    loss_grad(CROSS_ENTROPY, y, z, scale, out)


@serial
def softmax(z, out):
    softmax_flat(z, 0, out, 0, z.size)


@serial
def batch_loss(kind, Y, Z):
    """The mean over rows of the per-sample loss."""
    n, k = Z.shape
    yf = Y.reshape(-1)
    zf = Z.reshape(-1)
    acc = 0.0
    for r in range(n):
        acc += loss_value_flat(kind, yf, r * k, zf, r * k, k)
    return acc / n


@serial
def batch_loss_grad(kind, Y, Z, out):
    """Gradient of ``batch_loss`` with respect to ``Z``, row by row."""
    n, k = Z.shape
    yf = Y.reshape(-1)
    zf = Z.reshape(-1)
    of = out.reshape(-1)
    for r in range(n):
        loss_grad_flat(kind, yf, r * k, zf, r * k, k, 1.0 / n, of, r * k)


@serial
def output_transform(kind, Z, out):
    """What predict returns: the identity for MSE, σ(z) for binary and softmax(z) for
    categorical cross-entropy. Z and out are (n_samples, n_outputs)."""
    n, k = Z.shape
    zf = Z.reshape(-1)
    of = out.reshape(-1)
    if kind == CROSS_ENTROPY:
        for r in range(n):
            softmax_flat(zf, r * k, of, r * k, k)
    elif kind == BINARY_CROSS_ENTROPY:
        forward_flat(SIGMOID, zf, 0, of, 0, zf.size, 0.0)
    else:
        for i in range(zf.size):
            of[i] = zf[i]
