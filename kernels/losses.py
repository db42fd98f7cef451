"""Loss kernels for one sample, in numerically stable forms.

``y`` is the target and ``z`` the last layer's output, both (n_outputs,). The two
cross-entropies take *logits*: the sigmoid (binary) or softmax (categorical) is part
of the loss, which keeps log(0) out of the forward pass and gives the simple
gradients σ(z) - y and softmax(z) - y.

``*_grad(y, z, scale, out)`` writes ``scale * dC/dz`` into ``out``; a batch of n
samples passes ``scale = 1/n`` to get the gradient of the mean loss.
"""

from __future__ import annotations

import numpy as np

from .config import serial

MSE, BINARY_CROSS_ENTROPY, CROSS_ENTROPY = 0, 1, 2


@serial
def mse_loss(y, z):
    acc = z.dtype.type(0)
    for i in range(z.size):
        d = z[i] - y[i]
        acc += d * d
    return acc / z.dtype.type(z.size)


@serial
def mse_grad(y, z, scale, out):
    c = z.dtype.type(2) * z.dtype.type(scale) / z.dtype.type(z.size)
    for i in range(z.size):
        out[i] = c * (z[i] - y[i])


@serial
def binary_cross_entropy_loss(y, z):
    # max(z, 0) - z·y + log(1 + e^-|z|): the logits form, finite for every finite z.
    zero = z.dtype.type(0)
    acc = zero
    for i in range(z.size):
        v = z[i]
        acc += max(v, zero) - v * y[i] + np.log1p(np.exp(-abs(v)))
    return acc / z.dtype.type(z.size)


@serial
def binary_cross_entropy_grad(y, z, scale, out):
    one = z.dtype.type(1)
    c = z.dtype.type(scale) / z.dtype.type(z.size)
    for i in range(z.size):
        v = z[i]
        if v >= 0:
            s = one / (one + np.exp(-v))
        else:
            e = np.exp(v)
            s = e / (one + e)
        out[i] = c * (s - y[i])


@serial
def cross_entropy_loss(y, z):
    # sum(y)·logsumexp(z) - y·z, with the maximum taken out of the exponentials.
    m = z[0]
    for i in range(1, z.size):
        m = max(m, z[i])
    s = z.dtype.type(0)
    ysum = z.dtype.type(0)
    yz = z.dtype.type(0)
    for i in range(z.size):
        s += np.exp(z[i] - m)
        ysum += y[i]
        yz += y[i] * z[i]
    return ysum * (m + np.log(s)) - yz


@serial
def cross_entropy_grad(y, z, scale, out):
    # d/dz = sum(y)·softmax(z) - y
    m = z[0]
    for i in range(1, z.size):
        m = max(m, z[i])
    s = z.dtype.type(0)
    ysum = z.dtype.type(0)
    for i in range(z.size):
        e = np.exp(z[i] - m)
        out[i] = e
        s += e
        ysum += y[i]
    c = z.dtype.type(scale)
    k = ysum / s
    for i in range(z.size):
        out[i] = c * (k * out[i] - y[i])


@serial
def softmax(z, out):
    m = z[0]
    for i in range(1, z.size):
        m = max(m, z[i])
    s = z.dtype.type(0)
    for i in range(z.size):
        e = np.exp(z[i] - m)
        out[i] = e
        s += e
    inv = z.dtype.type(1) / s
    for i in range(z.size):
        out[i] *= inv


@serial
def loss_value(kind, y, z):
    """The loss of one sample, dispatched on ``kind`` (MSE, BINARY_CROSS_ENTROPY, ...)."""
    if kind == MSE:
        return mse_loss(y, z)
    if kind == BINARY_CROSS_ENTROPY:
        return binary_cross_entropy_loss(y, z)
    return cross_entropy_loss(y, z)


@serial
def loss_grad(kind, y, z, scale, out):
    if kind == MSE:
        mse_grad(y, z, scale, out)
    elif kind == BINARY_CROSS_ENTROPY:
        binary_cross_entropy_grad(y, z, scale, out)
    else:
        cross_entropy_grad(y, z, scale, out)


@serial
def batch_loss(kind, Y, Z):
    """The mean over rows of the per-sample loss."""
    acc = 0.0
    for r in range(Z.shape[0]):
        acc += loss_value(kind, Y[r], Z[r])
    return acc / Z.shape[0]


@serial
def batch_loss_grad(kind, Y, Z, out):
    """Gradient of ``batch_loss`` with respect to ``Z``, row by row."""
    n = Z.shape[0]
    for r in range(n):
        loss_grad(kind, Y[r], Z[r], 1.0 / n, out[r])


@serial
def output_transform(kind, Z, out):
    """What predict returns: the identity for MSE, σ(z) for binary and softmax(z) for
    categorical cross-entropy. Z and out are (n_samples, n_outputs)."""
    one = Z.dtype.type(1)
    for r in range(Z.shape[0]):
        if kind == CROSS_ENTROPY:
            softmax(Z[r], out[r])
        elif kind == BINARY_CROSS_ENTROPY:
            for i in range(Z.shape[1]):
                v = Z[r, i]
                if v >= 0:
                    out[r, i] = one / (one + np.exp(-v))
                else:
                    e = np.exp(v)
                    out[r, i] = e / (one + e)
        else:
            for i in range(Z.shape[1]):
                out[r, i] = Z[r, i]
