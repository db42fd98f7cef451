"""Dense-layer kernels: Y = W·X + B and its gradients.

``W`` is (n_out, n_in), ``b`` is (n_out,), one sample ``x`` is (n_in,) and a batch ``X``
is (n_samples, n_in), samples in rows. All arrays are C-contiguous and of one float
dtype; results go into the preallocated ``out``.

The one-sample kernels run on ``*_flat`` forms that address W, b, x and the outputs by
offsets into flat buffers: the engine keeps every layer in one parameter buffer and
calls those directly, without building views.
"""

from __future__ import annotations

import numpy as np

from . import simd
from .config import ordered, serial
from .simd import (
    TILE_ROWS,
    TILE_VECTORS,
    VECTOR_BYTES,
    fma,
    tile_full,
    tile_full_1,
    tile_one,
    tile_one_1,
)

# The *_flat kernels index with unsigned offsets: a signed index such as
# W[w0 + r * n_in + c] gets Numba's negative-index wraparound check on every element,
# which stops the loop from vectorising, and slicing views instead costs an atomic
# reference count per view, which dominates small layers.
U = np.uint64


@serial(inline="always")
def forward_flat(W, w0, b, b0, n_out, n_in, x, x0, out, o0):
    """out = W·x + b, with W row-major at W[w0:], b at b[b0:], x at x[x0:]. Each
    row's sum runs in the fixed order of ``simd.dot``."""
    for r in range(n_out):
        out[U(o0 + r)] = simd.dot(W, w0 + r * n_in, x, x0, n_in) + b[U(b0 + r)]


@serial(inline="always")
def backward_sgd_flat(W, w0, b, b0, n_out, n_in, x, x0, g, g0, lr, grad_in, i0):
    """grad_in = Wᵀ·g with the weights forward used, then W -= lr·g·xᵀ, b -= lr·g:
    one pass over W. Every element is one ``fma`` of its own (rows in order), so
    the vector loop and its scalar remainder give the same bits."""
    xs = U(x0)
    gi = U(i0)
    zero = W.dtype.type(0)
    for c in range(n_in):
        grad_in[gi + U(c)] = zero
    for r in range(n_out):
        gr = g[U(g0 + r)]
        step = lr * gr
        row = U(w0 + r * n_in)
        for c in range(n_in):
            w = W[row + U(c)]
            grad_in[gi + U(c)] = fma(w, gr, grad_in[gi + U(c)])
            W[row + U(c)] = fma(-step, x[xs + U(c)], w)
        b[U(b0 + r)] -= step


@serial(inline="always")
def update_flat(W, w0, b, b0, n_out, n_in, x, x0, g, g0, lr):
    """W -= lr·g·xᵀ and b -= lr·g, for a layer whose input gradient nobody needs."""
    xs = U(x0)
    for r in range(n_out):
        step = lr * g[U(g0 + r)]
        row = U(w0 + r * n_in)
        for c in range(n_in):
            W[row + U(c)] = fma(-step, x[xs + U(c)], W[row + U(c)])
        b[U(b0 + r)] -= step


@serial(inline="always")
def backward_acc_flat(W, w0, n_out, n_in, x, x0, g, g0, dW, d0, db, db0, grad_in, i0, need_in):
    """dW += g·xᵀ and db += g (a minibatch sums its samples), with dW and db at
    dW[d0:] and db[db0:]; with ``need_in``, grad_in = Wᵀ·g as well, in the same
    pass over W. Every element is one ``fma`` of its own, rows in order, as in
    ``backward_sgd_flat``."""
    xs = U(x0)
    gi = U(i0)
    if need_in:
        zero = W.dtype.type(0)
        for c in range(n_in):
            grad_in[gi + U(c)] = zero
    for r in range(n_out):
        gr = g[U(g0 + r)]
        row = U(w0 + r * n_in)
        drow = U(d0 + r * n_in)
        if need_in:
            for c in range(n_in):
                grad_in[gi + U(c)] = fma(W[row + U(c)], gr, grad_in[gi + U(c)])
                dW[drow + U(c)] = fma(gr, x[xs + U(c)], dW[drow + U(c)])
        else:
            for c in range(n_in):
                dW[drow + U(c)] = fma(gr, x[xs + U(c)], dW[drow + U(c)])
        db[U(db0 + r)] += gr


@serial(inline="always")
def update_forward_flat(W, w0, b, b0, n_out, n_in, xp, p0, g, g0, lr, xn, n0, z, z0):
    """W -= lr·g·x_pᵀ, b -= lr·g, then z = W·x_n + b: one pass over W for one
    sample's update and the next sample's forward (``simd.update_dot``: the same
    weights and the same sum as ``update_flat`` then ``forward_flat``)."""
    for r in range(n_out):
        step = lr * g[U(g0 + r)]
        acc = simd.update_dot(W, w0 + r * n_in, xp, p0, step, xn, n0, n_in)
        b[U(b0 + r)] -= step
        z[U(z0 + r)] = acc + b[U(b0 + r)]


@ordered
def dense_forward(W, b, x, out):
    """out = W·x + b for one sample."""
    n_out, n_in = W.shape
    forward_flat(W.reshape(-1), 0, b, 0, n_out, n_in, x, 0, out, 0)


@serial
def dense_forward_batch(W, b, X, out):
    """out = X·Wᵀ + b for a batch of rows (BLAS gemm, then the bias)."""
    np.dot(X, W.T, out)
    n, n_out = out.shape
    for r in range(n):
        for i in range(n_out):
            out[r, i] += b[i]


@ordered(inline="always")
def tile_units(x):
    """Units per tile for arrays like ``x``: a layer's padded width is a multiple."""
    return TILE_VECTORS * (VECTOR_BYTES // x.itemsize)


@ordered
def dense_rows(xf, x0, xs, k, wt, width, out, o0, rows):
    """out[o0 + r·width + u] = x_r·Wᵀ for each row r < ``rows``, x_r being the ``k``
    values at xf[x0 + r·xs] and Wᵀ the (k, width) matrix in ``wt``, its width a
    multiple of one vector (whole tiles, then one-vector tiles for the rest).

    Every element is the sum of its products in input order, one fused
    multiply-add each (``simd.row_tile``): a row's outputs are the same bits
    wherever the row is in X and whatever rows come with it."""
    lanes = VECTOR_BYTES // out.itemsize
    step = tile_units(wt)
    full = width // step * step
    r = 0
    while r + TILE_ROWS <= rows:
        at = o0 + r * width
        for u in range(0, full, step):
            tile_full(xf, x0 + r * xs, xs, wt, u, width, out, at + u, width, k)
        for u in range(full, width, lanes):
            tile_full_1(xf, x0 + r * xs, xs, wt, u, width, out, at + u, width, k)
        r += TILE_ROWS
    while r < rows:
        at = o0 + r * width
        for u in range(0, full, step):
            tile_one(xf, x0 + r * xs, xs, wt, u, width, out, at + u, width, k)
        for u in range(full, width, lanes):
            tile_one_1(xf, x0 + r * xs, xs, wt, u, width, out, at + u, width, k)
        r += 1


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


@ordered
def dense_backward_sgd(W, b, x, grad_out, learning_rate, grad_in):
    """One sample's backward step, fused into a single pass over W.

    Writes dC/dX = Wᵀ·grad_out into ``grad_in`` using the weights that forward used,
    then applies W -= lr·grad_out·xᵀ and b -= lr·grad_out in place.
    """
    n_out, n_in = W.shape
    lr = W.dtype.type(learning_rate)
    backward_sgd_flat(W.reshape(-1), 0, b, 0, n_out, n_in, x, 0, grad_out, 0, lr, grad_in, 0)
