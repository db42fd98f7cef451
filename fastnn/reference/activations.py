"""NumPy twins of ``fastnn.kernels.activations``."""

from __future__ import annotations

import numpy as np

from ..codes import IDENTITY as IDENTITY  # every code the dispatch takes, for its callers
from ..codes import LEAKY_RELU, RELU, SIGMOID, TANH


def tanh_forward(x, out):
    np.tanh(x, out=out)


def tanh_backward(y, grad, out):
    out[...] = grad * (1 - y * y)


def sigmoid_forward(x, out):
    # By sign: e^-|x| never overflows.
    e = np.exp(-np.abs(x))
    out[...] = np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(y, grad, out):
    out[...] = grad * y * (1 - y)


def relu_forward(x, out):
    np.maximum(x, 0, out=out)


def relu_backward(y, grad, out):
    out[...] = grad * (y > 0)


def _leaky_relu_forward(x, out, negative_slope):
    a = x.dtype.type(negative_slope)  # the slope in the data's type, as the kernel has it
    out[...] = np.where(x > 0, x, a * x)


def _leaky_relu_backward(y, grad, out, negative_slope):
    # y > 0 exactly where x > 0, for a slope >= 0.
    out[...] = grad * np.where(y > 0, y.dtype.type(1), y.dtype.type(negative_slope))


def identity_forward(x, out):
    out[...] = x


def identity_backward(y, grad, out):
    out[...] = grad


_FORWARD = {TANH: tanh_forward, SIGMOID: sigmoid_forward, RELU: relu_forward}
_BACKWARD = {TANH: tanh_backward, SIGMOID: sigmoid_backward, RELU: relu_backward}


def activation_forward(kind, x, out, alpha):
    # ``alpha``: the activation's float setting (LeakyReLU's slope).
    if kind == LEAKY_RELU:
        _leaky_relu_forward(x, out, alpha)
    else:
        _FORWARD.get(kind, identity_forward)(x, out)


def activation_backward(kind, y, grad, out, alpha):
    if kind == LEAKY_RELU:
        _leaky_relu_backward(y, grad, out, alpha)
    else:
        _BACKWARD.get(kind, identity_backward)(y, grad, out)
