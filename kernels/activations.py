"""Activation kernels and their derivatives.

Every ``*_forward(x, out)`` writes f(x) into ``out``. Every ``*_backward(y, grad, out)``
writes ``grad * f'(x)`` into ``out``, with the derivative expressed through the
layer's *output* ``y = f(x)`` (1 - y² for tanh, y(1 - y) for the sigmoid, y > 0 for
ReLU; 1 where y > 0, else the slope, for LeakyReLU), which saves recomputing f.
LeakyReLU has no kernel of its own: it runs through ``activation_forward`` and
``activation_backward``, whose ``alpha`` is its slope. The arrays are 1-D or 2-D and C-contiguous; a
forward ``out`` may alias ``x``, a backward one ``grad`` (not ``y``).

All of them run on ``forward_flat`` / ``backward_flat``, which work on a run of ``n``
values at given offsets of flat buffers: the engine calls those directly, so its
per-sample loop never builds an array view.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from ..codes import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH
from .config import bare, serial

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


@serial(inline="always")
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


@serial(inline="always")
def _tanh32(v):
    one = np.float32(1)
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
    return t if v == v else v  # NaN stays NaN


# float64 tanh in the same form (libm's tanh is a scalar call of 25-45 ns): exp(r)
# by its degree-13 Taylor polynomial, and the odd series of tanh through x²¹ below
# |x| = 0.3; within 2.5 ulps of tanh (libm: about 1).
_POW2_64 = np.array([2.0**-k for k in range(64)], dtype=np.float64)
_TANH_CLAMP_64 = 19.1  # tanh(19.1) rounds to 1 in float64
_EXP_TAYLOR_64 = np.array([1.0 / math.factorial(d) for d in range(14)])
# tanh x = Σ c_n x^(2n+1), c_n = 2^(2n)(2^(2n) - 1)·B_2n/(2n)!  (B: Bernoulli numbers)
_TANH_SERIES_64 = np.array(
    [
        -0.3333333333333333,
        0.13333333333333333,
        -0.05396825396825397,
        0.021869488536155203,
        -0.008863235529902197,
        0.003592128036572481,
        -0.0014558343870513183,
        0.000590027440945586,
        -0.00023912911424355248,
        9.691537956929451e-05,
    ]
)


@serial(inline="always")
def _tanh64(v):
    a = min(abs(v), _TANH_CLAMP_64)
    y = -2.0 * a
    kf = np.floor(y * 1.4426950408889634 + 0.5)
    r = y - kf * 6.93147180369123816490e-01 - kf * 1.90821492927058770002e-10
    # Both polynomials by Estrin's scheme (pairs, then pairs of pairs): 4 multiply-adds
    # deep instead of Horner's 13, and a small layer's tanh is a chain of latencies.
    c = _EXP_TAYLOR_64
    r2 = r * r
    r4 = r2 * r2
    lo = ((c[0] + c[1] * r) + (c[2] + c[3] * r) * r2) + (
        (c[4] + c[5] * r) + (c[6] + c[7] * r) * r2
    ) * r4
    hi = ((c[8] + c[9] * r) + (c[10] + c[11] * r) * r2) + (c[12] + c[13] * r) * r4
    e = (lo + hi * (r4 * r4)) * _POW2_64[min(max(np.int64(-kf), 0), 63)]
    big = (1.0 - e) / (1.0 + e)
    c = _TANH_SERIES_64
    s = a * a
    s2 = s * s
    s4 = s2 * s2
    q = ((c[0] + c[1] * s) + (c[2] + c[3] * s) * s2) + (
        (c[4] + c[5] * s) + (c[6] + c[7] * s) * s2 + (c[8] + c[9] * s) * s4
    ) * s4
    small = a + a * s * q
    t = small if a < 0.3 else big
    t = t if v >= 0 else -t
    return t if v == v else v  # NaN stays NaN


@serial(inline="always")
def _sigmoid32(v):
    one = np.float32(1)
    e = _exp_neg32(abs(v))  # by sign: e^-|x| never overflows
    s = one / (one + e)
    s = s if v >= 0 else e * s
    return s if v == v else v


@serial
def _sigmoid_by_sign(v):
    one = type(v)(1)
    if v >= 0:
        return one / (one + np.exp(-v))
    e = np.exp(v)
    return e / (one + e)


# Each activation's loop is its own compiled function, which LLVM vectorises (inside
# a dispatch on a run-time ``kind`` it leaves them scalar). They index with unsigned
# offsets, so they need neither views (an atomic reference count each, which
# dominates small layers) nor Numba's negative-index checks (which stop
# vectorisation).
U = np.uint64


@bare
def _tanh_loop32(x, x0, out, o0, n):
    for i in range(n):
        out[U(o0) + U(i)] = _tanh32(x[U(x0) + U(i)])


@bare
def _tanh_loop64(x, x0, out, o0, n):
    for i in range(n):
        out[U(o0) + U(i)] = _tanh64(x[U(x0) + U(i)])


@bare
def _sigmoid_loop32(x, x0, out, o0, n):
    for i in range(n):
        out[U(o0) + U(i)] = _sigmoid32(x[U(x0) + U(i)])


@bare
def _sigmoid_loop64(x, x0, out, o0, n):
    for i in range(n):
        out[U(o0) + U(i)] = _sigmoid_by_sign(x[U(x0) + U(i)])


# The same tanh as a function of its own, for scalar calls. Compiled from the source
# directly: wrapping the inlined version would cost Numba's inlining (most of a
# second) once more.
_tanh_one32 = bare(_tanh32.py_func)
_tanh_one64 = bare(_tanh64.py_func)


# The functions below call the float32 or the float64 version by the dtype of their
# first argument. The choice is made while the caller is typed, so each version is
# compiled once, for its own dtype only. (Choosing the scalar function by dtype
# inside one shared loop made Numba compile the whole tanh twice, about a second of
# every cold start.)
def _is32(t) -> bool:
    return getattr(t, "dtype", t) == types.float32


def _loop_by_dtype(loop32, loop64):
    def loop(x, x0, out, o0, n):
        raise NotImplementedError  # only ever called compiled

    @overload(loop, inline="always")
    def _impl(x, x0, out, o0, n):
        f = loop32 if _is32(x) else loop64
        return lambda x, x0, out, o0, n: f(x, x0, out, o0, n)

    return loop


_tanh_loop = _loop_by_dtype(_tanh_loop32, _tanh_loop64)
_sigmoid_loop = _loop_by_dtype(_sigmoid_loop32, _sigmoid_loop64)


def _tanh_one(v):
    raise NotImplementedError  # only ever called compiled


@overload(_tanh_one, inline="always")
def _tanh_one_impl(v):
    f = _tanh_one32 if _is32(v) else _tanh_one64
    return lambda v: f(v)


@bare
def _relu_loop(x, x0, out, o0, n):
    zero = x.dtype.type(0)
    for i in range(n):
        v = x[U(x0) + U(i)]
        out[U(o0) + U(i)] = v if v > zero else zero


@bare
def _leaky_relu_loop(x, x0, out, o0, n, alpha):
    zero = x.dtype.type(0)
    a = x.dtype.type(alpha)
    for i in range(n):
        v = x[U(x0) + U(i)]
        out[U(o0) + U(i)] = v if v > zero else a * v


@bare
def copy_flat(x, x0, out, o0, n):
    """out[o0:o0+n] = x[x0:x0+n]: the identity's loop, and the engine's copy. (A plain
    loop: slice assignment would compile Numba's shape-error formatting, seconds of
    start-up.)"""
    for i in range(n):
        out[U(o0) + U(i)] = x[U(x0) + U(i)]


# g·f'(x), with f' written through y = f(x), for the gradient loops below.
@serial(inline="always")
def _tanh_grad(y, g):
    return g * (type(y)(1) - y * y)


@serial(inline="always")
def _sigmoid_grad(y, g):
    return g * y * (type(y)(1) - y)


@serial(inline="always")
def _relu_grad(y, g):
    # The design's product g·f'(x), f' = 1 or 0: a select would vectorise in the
    # three-array loop but turn into a conditional store in place, which does not.
    return g * type(y)(y > type(y)(0))


@serial(inline="always")
def _leaky_relu_grad(y, g, a):
    # y > 0 exactly where x > 0, for a slope a >= 0: f' = 1 there, else a.
    return g * (type(y)(1) if y > type(y)(0) else a)


# g = g·f'(y), in place: the engine's calls. (A three-array loop called in place
# would fail LLVM's overlap check, which knows nothing of two arguments that point
# at the same values, and run its scalar loop, several times slower.)
@bare
def _tanh_grad_in_place(y, y0, g, g0, n):
    for i in range(n):
        g[U(g0) + U(i)] = _tanh_grad(y[U(y0) + U(i)], g[U(g0) + U(i)])


@bare
def _sigmoid_grad_in_place(y, y0, g, g0, n):
    for i in range(n):
        g[U(g0) + U(i)] = _sigmoid_grad(y[U(y0) + U(i)], g[U(g0) + U(i)])


@bare
def _relu_grad_in_place(y, y0, g, g0, n):
    for i in range(n):
        g[U(g0) + U(i)] = _relu_grad(y[U(y0) + U(i)], g[U(g0) + U(i)])


@bare
def _leaky_relu_grad_in_place(y, y0, g, g0, n, alpha):
    a = y.dtype.type(alpha)
    for i in range(n):
        g[U(g0) + U(i)] = _leaky_relu_grad(y[U(y0) + U(i)], g[U(g0) + U(i)], a)


# Below this width a call costs more than the loop it makes (a small network's
# per-sample step is a chain of such calls), so the gradient runs inline instead.
_SHORT = 8


@serial(inline="always")
def _grad_in_place_short(kind, y, y0, g, g0, n, alpha):
    # One loop per kind: no test of ``kind`` per value.
    if kind == TANH:
        for i in range(n):
            g[U(g0) + U(i)] = _tanh_grad(y[U(y0) + U(i)], g[U(g0) + U(i)])
    elif kind == SIGMOID:
        for i in range(n):
            g[U(g0) + U(i)] = _sigmoid_grad(y[U(y0) + U(i)], g[U(g0) + U(i)])
    elif kind == RELU:
        for i in range(n):
            g[U(g0) + U(i)] = _relu_grad(y[U(y0) + U(i)], g[U(g0) + U(i)])
    elif kind == LEAKY_RELU:
        a = y.dtype.type(alpha)
        for i in range(n):
            g[U(g0) + U(i)] = _leaky_relu_grad(y[U(y0) + U(i)], g[U(g0) + U(i)], a)


# A tanh of so few values costs less as scalar calls than as one call of the loop.
_SHORT_TANH = 4


@serial(inline="always")
def _same(a, a0, b, b0):
    """Whether a[a0:] and b[b0:] start at the same address."""
    return a.ctypes.data + a0 * a.itemsize == b.ctypes.data + b0 * b.itemsize


@serial(inline="always")
def forward_flat(kind, x, x0, out, o0, n, alpha):
    """out[o0:o0+n] = f(x[x0:x0+n]) for activation ``kind``, whose float setting (the
    plan's ``hyp[i, 0]``) is ``alpha``."""
    if kind == TANH:
        if n <= _SHORT_TANH:
            for i in range(n):
                out[U(o0) + U(i)] = _tanh_one(x[U(x0) + U(i)])
        else:
            _tanh_loop(x, x0, out, o0, n)
    elif kind == SIGMOID:
        _sigmoid_loop(x, x0, out, o0, n)
    elif kind == RELU:
        _relu_loop(x, x0, out, o0, n)
    elif kind == LEAKY_RELU:
        _leaky_relu_loop(x, x0, out, o0, n, alpha)
    else:
        copy_flat(x, x0, out, o0, n)


@serial(inline="always")
def backward_flat(kind, y, y0, grad, g0, out, o0, n, alpha):
    """out[o0:o0+n] = grad[g0:g0+n]·f'(x), with f' written through y = f(x): a copy
    into ``out`` unless it is ``grad`` itself, then one pass in place."""
    if not _same(grad, g0, out, o0):
        copy_flat(grad, g0, out, o0, n)
    if n <= _SHORT:
        _grad_in_place_short(kind, y, y0, out, o0, n, alpha)
    elif kind == TANH:
        _tanh_grad_in_place(y, y0, out, o0, n)
    elif kind == SIGMOID:
        _sigmoid_grad_in_place(y, y0, out, o0, n)
    elif kind == RELU:
        _relu_grad_in_place(y, y0, out, o0, n)
    elif kind == LEAKY_RELU:
        _leaky_relu_grad_in_place(y, y0, out, o0, n, alpha)


@serial
def activation_forward(kind, x, out, alpha):
    """Dispatch on ``kind`` (an activation code of ``fastnn.codes``); ``alpha`` is the
    activation's float setting, ignored by those that have none."""
    forward_flat(kind, x.reshape(-1), 0, out.reshape(-1), 0, x.size, alpha)


@serial
def activation_backward(kind, y, grad, out, alpha):
    backward_flat(kind, y.reshape(-1), 0, grad.reshape(-1), 0, out.reshape(-1), 0, y.size,
                  alpha)  # fmt: skip


@serial
def tanh_forward(x, out):
    activation_forward(TANH, x, out, 0.0)


@serial
def tanh_backward(y, grad, out):
    activation_backward(TANH, y, grad, out, 0.0)


@serial
def sigmoid_forward(x, out):
    activation_forward(SIGMOID, x, out, 0.0)


@serial
def sigmoid_backward(y, grad, out):
    activation_backward(SIGMOID, y, grad, out, 0.0)


@serial
def relu_forward(x, out):
    activation_forward(RELU, x, out, 0.0)


@serial
def relu_backward(y, grad, out):
    activation_backward(RELU, y, grad, out, 0.0)


@serial
def identity_forward(x, out):
    activation_forward(IDENTITY, x, out, 0.0)


@serial
def identity_backward(y, grad, out):
    activation_backward(IDENTITY, y, grad, out, 0.0)
