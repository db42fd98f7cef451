"""Activation kernels and their derivatives.

Every ``*_forward(x, out)`` writes f(x) into ``out``. Every ``*_backward(y, grad, out)``
writes ``grad * f'(x)`` into ``out``, with the derivative expressed through the
layer's *output* ``y = f(x)`` (1 - y² for tanh, y(1 - y) for the sigmoid, y > 0 for
ReLU), which saves recomputing f. The arrays are 1-D or 2-D and C-contiguous; ``out``
may alias ``x`` or ``grad``.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from .config import serial

TANH, SIGMOID, RELU, IDENTITY = 1, 2, 3, 4

# float32 tanh, written so LLVM can vectorise it (libm's tanhf is a scalar call, and
# it dominated the per-sample cost of a tanh layer). For |x| >= 0.3,
# tanh|x| = (1 - e)/(1 + e) with e = exp(-2|x|) = 2^k·exp(r), |r| <= ln2/2, exp(r) by
# its degree-7 Taylor polynomial and 2^k from a table; for |x| < 0.3 the odd Taylor
# series of tanh through x⁹. Both are within a few float32 ulps of tanh.
_POW2 = np.array([2.0**-k for k in range(32)], dtype=np.float32)
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_SMALL = np.float32(0.3)
_CLAMP = np.float32(9.0)  # tanh(9) rounds to 1 in float32


@serial
def _tanh_fast32(x, out):
    one = np.float32(1)
    for i in range(x.size):
        v = x[i]
        a = min(abs(v), _CLAMP)
        y = np.float32(-2) * a
        kf = np.floor(y * _LOG2E + np.float32(0.5))
        r = y - kf * _LN2_HI - kf * _LN2_LO
        p = np.float32(1 / 5040)
        p = p * r + np.float32(1 / 720)
        p = p * r + np.float32(1 / 120)
        p = p * r + np.float32(1 / 24)
        p = p * r + np.float32(1 / 6)
        p = p * r + np.float32(0.5)
        p = p * r + one
        p = p * r + one
        # Clamped, so that a NaN input can never index outside the table.
        e = p * _POW2[min(max(np.int32(-kf), 0), 31)]
        big = (one - e) / (one + e)
        s = a * a
        q = np.float32(62 / 2835)
        q = q * s - np.float32(17 / 315)
        q = q * s + np.float32(2 / 15)
        q = q * s - np.float32(1 / 3)
        small = a + a * s * q
        t = small if a < _SMALL else big
        t = t if v >= 0 else -t
        out[i] = t if v == v else v  # NaN stays NaN


@serial
def _tanh_libm(x, out):
    for i in range(x.size):
        out[i] = np.tanh(x[i])


def _tanh_into(x, out):
    """tanh of 1-D ``x`` into ``out``: the vectorised form in float32, libm otherwise."""
    raise NotImplementedError  # only ever called compiled


@overload(_tanh_into)
def _tanh_into_impl(x, out):
    if x.dtype == types.float32:
        return lambda x, out: _tanh_fast32(x, out)
    return lambda x, out: _tanh_libm(x, out)


@serial
def tanh_forward(x, out):
    _tanh_into(x.reshape(-1), out.reshape(-1))


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
