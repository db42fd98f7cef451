"""Dense-layer kernels: Y = W·X + B and its gradients.

``W`` is (n_out, n_in), ``b`` is (n_out,), one sample ``x`` is (n_in,) and a batch ``X``
is (n_samples, n_in), samples in rows. All arrays are C-contiguous and of one float
dtype; results go into the preallocated ``out``.
"""

from __future__ import annotations

import numpy as np

from .config import serial


@serial
def dense_forward(W, b, x, out):
    """out = W·x + b for one sample."""
    n_out, n_in = W.shape
    for i in range(n_out):
        acc = W.dtype.type(0)
        for j in range(n_in):
            acc += W[i, j] * x[j]
        out[i] = acc + b[i]


@serial
def dense_forward_batch(W, b, X, out):
    """out = X·Wᵀ + b for a batch of rows (BLAS gemm, then the bias)."""
    np.dot(X, W.T, out)
    n, n_out = out.shape
    for r in range(n):
        for i in range(n_out):
            out[r, i] += b[i]


@serial
def dense_input_grad(W, grad_out, out):
    """out = Wᵀ·grad_out: dC/dX for one sample."""
    n_out, n_in = W.shape
    for j in range(n_in):
        out[j] = W.dtype.type(0)
    for i in range(n_out):
        g = grad_out[i]
        for j in range(n_in):
            out[j] += W[i, j] * g


@serial
def dense_weight_grad(grad_out, x, out):
    """out = grad_out·xᵀ: dC/dW for one sample, an outer product."""
    n_out, n_in = out.shape
    for i in range(n_out):
        g = grad_out[i]
        for j in range(n_in):
            out[i, j] = g * x[j]


@serial
def sgd_update(param, grad, learning_rate):
    """param -= learning_rate * grad, in place, for arrays of any shape."""
    p = param.reshape(-1)
    g = grad.reshape(-1)
    lr = p.dtype.type(learning_rate)
    for i in range(p.size):
        p[i] -= lr * g[i]


@serial
def dense_backward_sgd(W, b, x, grad_out, learning_rate, grad_in):
    """One sample's backward step, fused into a single pass over W.

    Writes dC/dX = Wᵀ·grad_out into ``grad_in`` using the weights that forward used,
    then applies W -= lr·grad_out·xᵀ and b -= lr·grad_out in place.
    """
    n_out, n_in = W.shape
    lr = W.dtype.type(learning_rate)
    for j in range(n_in):
        grad_in[j] = W.dtype.type(0)
    for i in range(n_out):
        g = grad_out[i]
        step = lr * g
        for j in range(n_in):
            w = W[i, j]
            grad_in[j] += w * g
            W[i, j] = w - step * x[j]
        b[i] -= step
