"""Activation kernels and their derivatives.

Every ``*_forward(x, out)`` writes f(x) into ``out``. Every ``*_backward(y, grad, out)``
writes ``grad * f'(x)`` into ``out``, with the derivative expressed through the
layer's *output* ``y = f(x)`` (1 - y² for tanh, y(1 - y) for the sigmoid, y > 0 for
ReLU), which saves recomputing f. The arrays are 1-D or 2-D and C-contiguous; ``out``
may alias ``x`` or ``grad``.
"""

from __future__ import annotations

import numpy as np

from .config import serial

TANH, SIGMOID, RELU, IDENTITY = 1, 2, 3, 4


@serial
def tanh_forward(x, out):
    xf = x.reshape(-1)
    of = out.reshape(-1)
    for i in range(xf.size):
        of[i] = np.tanh(xf[i])


@serial
def tanh_backward(y, grad, out):
    yf = y.reshape(-1)
    gf = grad.reshape(-1)
    of = out.reshape(-1)
    one = yf.dtype.type(1)
    for i in range(yf.size):
        of[i] = gf[i] * (one - yf[i] * yf[i])


@serial
def sigmoid_forward(x, out):
    xf = x.reshape(-1)
    of = out.reshape(-1)
    one = xf.dtype.type(1)
    for i in range(xf.size):
        v = xf[i]
        if v >= 0:
            of[i] = one / (one + np.exp(-v))
        else:
            e = np.exp(v)
            of[i] = e / (one + e)


@serial
def sigmoid_backward(y, grad, out):
    yf = y.reshape(-1)
    gf = grad.reshape(-1)
    of = out.reshape(-1)
    one = yf.dtype.type(1)
    for i in range(yf.size):
        of[i] = gf[i] * yf[i] * (one - yf[i])


@serial
def relu_forward(x, out):
    xf = x.reshape(-1)
    of = out.reshape(-1)
    zero = xf.dtype.type(0)
    for i in range(xf.size):
        v = xf[i]
        of[i] = v if v > zero else zero


@serial
def relu_backward(y, grad, out):
    yf = y.reshape(-1)
    gf = grad.reshape(-1)
    of = out.reshape(-1)
    zero = yf.dtype.type(0)
    for i in range(yf.size):
        of[i] = gf[i] if yf[i] > zero else zero


@serial
def identity_forward(x, out):
    xf = x.reshape(-1)
    of = out.reshape(-1)
    for i in range(xf.size):
        of[i] = xf[i]


@serial
def identity_backward(y, grad, out):
    gf = grad.reshape(-1)
    of = out.reshape(-1)
    for i in range(gf.size):
        of[i] = gf[i]


@serial
def activation_forward(kind, x, out):
    """Dispatch on ``kind`` (TANH, SIGMOID, RELU or IDENTITY); used by the engine."""
    if kind == TANH:
        tanh_forward(x, out)
    elif kind == SIGMOID:
        sigmoid_forward(x, out)
    elif kind == RELU:
        relu_forward(x, out)
    else:
        identity_forward(x, out)


@serial
def activation_backward(kind, y, grad, out):
    if kind == TANH:
        tanh_backward(y, grad, out)
    elif kind == SIGMOID:
        sigmoid_backward(y, grad, out)
    elif kind == RELU:
        relu_backward(y, grad, out)
    else:
        identity_backward(y, grad, out)
