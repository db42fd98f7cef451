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

# float32 tanh and sigmoid, written so LLVM can vectorise them (libm's expf and tanhf
# are scalar calls, and they dominated the per-sample cost of such a layer).
# exp(-a) for a >= 0 is 2^k·exp(r) with |r| <= ln2/2: exp(r) by its degree-7 Taylor
# polynomial, 2^k from a table. Then tanh|x| = (1 - e)/(1 + e) with e = exp(-2|x|),
# except for |x| < 0.3, where the odd Taylor series of tanh through x⁹ is used.
# Both stay within a few float32 ulps of libm.
_POW2 = np.array([2.0**-k for k in range(128)], dtype=np.float32)
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_CLAMP = np.float32(87.0)  # exp(-87) is still a normal float32
_SMALL = np.float32(0.3)
_TANH_CLAMP = np.float32(9.0)  # tanh(9) rounds to 1 in float32


@serial
def _exp_neg32(a):
    """exp(-a) for float32 a >= 0, flushed to 0 below exp(-87) ≈ 1.6e-38 (where the
    exact value would be subnormal). NaN in, finite junk out: callers pass NaN on."""
    y = -min(a, _EXP_CLAMP)
    kf = np.floor(y * _LOG2E + np.float32(0.5))
    r = y - kf * _LN2_HI - kf * _LN2_LO
    p = np.float32(1 / 5040)
    p = p * r + np.float32(1 / 720)
    p = p * r + np.float32(1 / 120)
    p = p * r + np.float32(1 / 24)
    p = p * r + np.float32(1 / 6)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1)
    p = p * r + np.float32(1)
    # Clamped, so that a NaN input can never index outside the table.
    e = p * _POW2[min(max(np.int32(-kf), 0), 127)]
    return e if a <= _EXP_CLAMP else np.float32(0)


@serial
def _tanh_fast32(x, out):
    one = np.float32(1)
    for i in range(x.size):
        v = x[i]
        a = min(abs(v), _TANH_CLAMP)
        e = _exp_neg32(np.float32(2) * a)
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
def _sigmoid_fast32(x, out):
    one = np.float32(1)
    for i in range(x.size):
        v = x[i]
        e = _exp_neg32(abs(v))  # by sign: e^-|x| never overflows
        s = one / (one + e)
        s = s if v >= 0 else e * s
        out[i] = s if v == v else v


@serial
def _sigmoid_libm(x, out):
    one = x.dtype.type(1)
    for i in range(x.size):
        v = x[i]
        if v >= 0:
            out[i] = one / (one + np.exp(-v))
        else:
            e = np.exp(v)
            out[i] = e / (one + e)


def _sigmoid_into(x, out):
    """σ of 1-D ``x`` into ``out``: the vectorised form in float32, libm otherwise."""
    raise NotImplementedError  # only ever called compiled


@overload(_sigmoid_into)
def _sigmoid_into_impl(x, out):
    if x.dtype == types.float32:
        return lambda x, out: _sigmoid_fast32(x, out)
    return lambda x, out: _sigmoid_libm(x, out)


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
    _sigmoid_into(x.reshape(-1), out.reshape(-1))


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
