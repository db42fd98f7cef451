"""NumPy twins of ``fastnn.kernels.dense``: the design's formulas, one line each."""

from __future__ import annotations

import numpy as np


def dense_forward(W, b, x, out):
    out[...] = W @ x + b


def dense_forward_batch(W, b, X, out):
    out[...] = X @ W.T + b


def dense_input_grad(W, grad_out, out):
    out[...] = W.T @ grad_out


def dense_weight_grad(grad_out, x, out):
    out[...] = np.outer(grad_out, x)


def sgd_update(param, grad, learning_rate):
    param -= param.dtype.type(learning_rate) * grad


def dense_backward_sgd(W, b, x, grad_out, learning_rate, grad_in):
    # dC/dX with the weights forward used, then the SGD step on W and B.
    grad_in[...] = W.T @ grad_out
    sgd_update(W, np.outer(grad_out, x), learning_rate)
    sgd_update(b, grad_out, learning_rate)
