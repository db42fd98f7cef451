"""Per-sample SGD with the first layer's updates applied a block of samples at a time:
the engine's ``fit_sgd_blocked``.

Within a block of K samples the first layer's weights after j updates are
W₀ − lr·Σ g_i x_iᵀ, so its output for sample t is
z_t = W₀x_t + b₀ − lr·Σ_{i<t} g_i (x_i·x_t + 1):
the products W₀x_t and x_i·x_t come from matrix products per block, and W₀ gets
one rank-K update at the block's end. Every sample still sees the weights left by
all samples before it: this is per-sample SGD, exactly, but W₀ is read once per
block instead of once per sample.

The products are register tiles of ``simd.row_tile`` (the kernel predict runs on):
every element is one fused multiply-add per term, in a fixed order, so its bits
depend on neither the heap nor the tile it falls in, and the update is applied to
W₀ as each tile finishes (W = fma(-lr, Σ, W)), with no second pass. The block is
kept twice: rows of samples (``xb``, for the update and the Gram matrix) and its
transpose (``xbt``, K padded to a whole tile, for the outputs W₀·Xbᵀ).

The products are cut into tasks of ``UNITS`` rows of W₀, as in minibatch training:
on several threads the tasks are shared out, and the result is the same bits as on
one. Only the products of the first layer run on several threads; the steps from
sample to sample stay on one, in order, as per-sample SGD requires.
"""

from __future__ import annotations

import numba
import numpy as np

from . import losses
from .activations import copy_flat
from .config import bare_ordered, ordered, parallel
from .dense import dense_rows, tile_units
from .engine import ZERO, U, _backward_sample, _close_epoch, _forward_sample, _sample_buffers
from .minibatch import UNITS
from .simd import (
    TILE_ROWS,
    VECTOR_BYTES,
    fma,
    tile_full_update,
    tile_full_update_1,
    tile_one_update,
    tile_one_update_1,
)

# Phases as int64 values, not literals: a literal argument compiles a helper once more
# for each value. FORWARD: task 0 is the Gram matrix Xb·Xbᵀ (the odd size, first), the
# others rows of W₀·Xbᵀ + b₀; UPDATE: rows of W₀ -= lr·Gᵀ·Xb and of b₀ -= lr·Σ G.
FORWARD = np.int64(0)
UPDATE = np.int64(1)
STRIP = 64  # inputs per strip of the block's transpose


@ordered
def _update_rows(gt, kp, xb, m, kb, W, a, b, lr):
    """W[r] = fma(-lr, Σ_t gt[r·kp + t]·xb[t], W[r]) for rows a ≤ r < b of the flat
    (h, m) W, the sum over t < kb in order; whole tiles, then one-vector tiles, then
    the last columns one at a time, each sum in the same order."""
    lanes = VECTOR_BYTES // W.itemsize
    step = tile_units(W)
    full = m // step * step
    ones = full + (m - full) // lanes * lanes
    r = a
    while r + TILE_ROWS <= b:
        for u in range(0, full, step):
            tile_full_update(gt, r * kp, kp, xb, u, m, W, r * m + u, m, kb, lr)
        for u in range(full, ones, lanes):
            tile_full_update_1(gt, r * kp, kp, xb, u, m, W, r * m + u, m, kb, lr)
        r += TILE_ROWS
    while r < b:
        for u in range(0, full, step):
            tile_one_update(gt, r * kp, kp, xb, u, m, W, r * m + u, m, kb, lr)
        for u in range(full, ones, lanes):
            tile_one_update_1(gt, r * kp, kp, xb, u, m, W, r * m + u, m, kb, lr)
        r += 1
    zero = W.dtype.type(0)
    for r in range(a, b):
        for c in range(ones, m):
            acc = zero
            for t in range(kb):
                acc = fma(gt[r * kp + t], xb[t * m + c], acc)
            W[r * m + c] = fma(-lr, acc, W[r * m + c])


@ordered
def _task(op, c, W, b0, m, xb, xbt, kp, kb, pt, gt, gram, lr):
    """Task ``c`` of phase ``op`` on rows c·UNITS onwards of the first layer (W: its
    flat weights). Tasks of one phase write disjoint parts and read only what
    earlier phases wrote."""
    h = b0.size
    if op == FORWARD and c == 0:
        dense_rows(xb, ZERO, m, m, xbt, kp, gram, ZERO, kp)
        return
    a = (c - (op == FORWARD)) * UNITS
    b = min(h, a + UNITS)
    if op == FORWARD:
        dense_rows(W, a * m, m, m, xbt, kp, pt, a * kp, b - a)
        for r in range(a, b):
            for t in range(kb):
                pt[r * kp + t] += b0[r]
        return
    _update_rows(gt, kp, xb, m, kb, W, a, b, lr)
    for r in range(a, b):
        acc = W.dtype.type(0)
        for t in range(kb):
            acc += gt[r * kp + t]
        b0[r] -= lr * acc


@parallel
def _phase(op, count, W, b0, m, xb, xbt, kp, kb, pt, gt, gram, lr, threads):
    """Tasks 0 .. count-1 of phase ``op``: shared out on several threads (taken one
    at a time, see ``fastnn.threads.numba_threads``), or in order on one."""
    if count > 1 and threads > 1:
        for c in numba.prange(count):
            _task(op, np.int64(c), W, b0, m, xb, xbt, kp, kb, pt, gt, gram, lr)
    else:
        for c in range(count):
            _task(op, c, W, b0, m, xb, xbt, kp, kb, pt, gt, gram, lr)


def fit_sgd_blocked(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order,
                    learning_rate, loss_kind, block, epoch_loss, snapshot, stop):  # fmt: skip
    """``fit_sgd`` with the first layer's updates applied ``block`` samples at a time
    (see the module's docstring), for networks whose first layer is Dense and too
    large for L1. The first layer's products run on Numba's threads for the caller
    (``fastnn.threads.numba_threads``): the result is the same bits at any thread
    count. Separate from ``fit_sgd`` so that small networks never compile the
    matrix-product path. ``stop`` is checked before every block.
    """
    h, m = int(n_out[0]), int(n_in[0])
    lanes = VECTOR_BYTES // params.itemsize
    kp = -(-block // lanes) * lanes  # whole vectors
    acts, grad_a, grad_b, _, xb, xbt, pt, gt, gram, gb = _sample_buffers(
        n_in, n_out, a_off, params, kp * m, m * kp, h * kp, h * kp, kp * kp, block * h
    )
    xbt[:] = 0  # the padding columns of a block are multiplied, never read
    gt[:] = 0
    return _blocked_epochs(kinds, n_in, n_out, p_off, a_off, hyp, params, X.reshape(-1),
                           Y.reshape(-1), Y.shape[1], order, learning_rate, loss_kind, block,
                           kp, epoch_loss, snapshot, stop, acts, grad_a, grad_b, xb, xbt, pt,
                           gt, gram, gb, numba.get_num_threads())  # fmt: skip


@ordered
def _blocked_epochs(kinds, n_in, n_out, p_off, a_off, hyp, params, xf, yf, k, order,
                    learning_rate, loss_kind, block, kp, epoch_loss, snapshot, stop, acts,
                    grad_a, grad_b, xb, xbt, pt, gt, gram, gb, threads):  # fmt: skip
    """``fit_sgd_blocked``'s epochs, on buffers it allocated, on ``threads`` threads
    (Numba's count for the caller's thread, which cached code cannot read)."""
    dt = params.dtype
    lr = dt.type(learning_rate)
    h = n_out[0]
    m = n_in[0]
    w0 = p_off[0]
    W = params[w0 : w0 + h * m]
    b0 = params[w0 + h * m : w0 + h * m + h]
    tasks = (h + UNITS - 1) // UNITS
    n_epochs, n = order.shape
    for e in range(n_epochs):
        copy_flat(params, ZERO, snapshot, ZERO, params.size)
        total = 0.0
        for start in range(0, n, block):
            if stop[0] != 0:
                total = np.nan  # restored, as after a divergence
                break
            kb = min(block, n - start)
            for t in range(kb):
                copy_flat(xf, order[e, start + t] * m, xb, t * m, m)
            # Xbᵀ by strips of inputs whose columns stay in L1 (a plain scatter
            # touched a cache line per input per sample: 0.8 µs a sample at m = 784).
            for c0 in range(0, m, STRIP):
                c1 = min(m, c0 + STRIP)
                for t in range(kb):
                    for c in range(c0, c1):
                        xbt[U(c * kp + t)] = xb[U(t * m + c)]
            _phase(FORWARD, tasks + 1, W, b0, m, xb, xbt, kp, kb, pt, gt, gram, lr, threads)
            total += _block_samples(kinds, n_in, n_out, p_off, a_off, hyp, params, xb, yf, k,
                                    order[e, start : start + kb], lr, loss_kind, kp, acts,
                                    grad_a, grad_b, pt, gram, gb, gt)  # fmt: skip
            if not np.isfinite(total):
                break
            _phase(UPDATE, tasks, W, b0, m, xb, xbt, kp, kb, pt, gt, gram, lr, threads)
        if not _close_epoch(total, e, n, params, snapshot, epoch_loss):
            return e
    return n_epochs


@bare_ordered
def _block_samples(kinds, n_in, n_out, p_off, a_off, hyp, params, xb, yf, k, samples, lr,
                   loss_kind, kp, acts, grad_a, grad_b, pt, gram, gb, gt):  # fmt: skip
    """The per-sample steps of one block of ``fit_sgd_blocked``: each sample's first
    layer output (column t of ``pt``) is corrected for the block's earlier updates
    (see the module), then forward, loss and backward through the later layers; the
    first layer's output gradients are kept in ``gb`` (a row per sample) and in
    ``gt`` (a column per sample). Returns the block's summed loss, stopping at the
    first non-finite one. No reference counting here."""
    dt = params.dtype
    last = kinds.size - 1
    h = n_out[0]
    kb = samples.size
    total = 0.0
    z0 = U(a_off[0])
    for t in range(kb):
        s = samples[t]
        for r in range(h):
            acts[z0 + U(r)] = pt[U(r * kp + t)]
        for j in range(t):
            c = lr * (gram[j * kp + t] + dt.type(1))
            g0 = U(j * h)
            for r in range(h):
                acts[z0 + U(r)] -= c * gb[g0 + U(r)]
        _forward_sample(kinds, n_in, n_out, p_off, a_off, hyp, params, xb, t * n_in[0], acts, 1)
        loss = losses.loss_value_flat(loss_kind, yf, s * k, acts, a_off[last], k)
        total += loss
        if not np.isfinite(loss):
            break
        in_a = _backward_sample(kinds, n_in, n_out, p_off, a_off, hyp, params, yf, s * k, lr,
                                loss_kind, acts, grad_a, grad_b, 0)  # fmt: skip
        g = grad_a if in_a else grad_b
        copy_flat(g, ZERO, gb, t * h, h)
        for r in range(h):
            gt[U(r * kp + t)] = g[U(r)]
    return total
