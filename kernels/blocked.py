"""Per-sample SGD with the first layer's updates applied a block of samples at a time:
the engine's ``fit_sgd_blocked``.

Within a block of K samples the first layer's weights after j updates are
W₀ − lr·Σ g_i x_iᵀ, so its output for sample t is
z_t = W₀x_t + b₀ − lr·Σ_{i<t} g_i (x_i·x_t + 1):
the products W₀x_t and x_i·x_t come from matrix products per block, and W₀ gets
one rank-K update at the block's end. Every sample still sees the weights left by
all samples before it: this is per-sample SGD, exactly, but W₀ is read once per
block instead of once per sample.

The block's products are cut into tasks of ``UNITS`` rows of W₀, each a
single-threaded BLAS call of a fixed shape, as in minibatch training: on several
threads the tasks are shared out and the result is the same bits as on one. Only
the products of the first layer run on several threads; the steps from sample to
sample stay on one, in order, as per-sample SGD requires.

The block's first-layer outputs and output gradients, K × h each, are kept as
column panels: units a .. b of all K samples are one contiguous (K, b - a) panel
starting at a·K, the very shape a task's product reads or writes. So no task
copies or transposes, and a sample's units are b - a contiguous values per panel.
"""

from __future__ import annotations

import numba
import numpy as np

from . import losses
from .activations import copy_flat
from .config import bare_ordered, ordered, parallel, serial
from .engine import (
    ZERO,
    U,
    _backward_sample,
    _close_epoch,
    _forward_sample,
    _sample_buffers,
    _weights,
)
from .minibatch import UNITS

FORWARD = 0  # task 0: the Gram matrix Xb·Xbᵀ (the odd size, first); then panels of P
UPDATE = 1  # rows of W₀ -= lr·Gbᵀ·Xb and of b₀ -= lr·Σ Gb


@serial(inline="always")
def _panel(buf, a, b, kb):
    """Units a .. b of a block's K × h column-panel matrix (see the module)."""
    return buf[a * kb : b * kb].reshape((kb, b - a))


@serial
def _task(op, c, W0, b0, Xb, pre, gb, gram, D, lr):
    """Task ``c`` of phase ``op`` on units c·UNITS onwards of the first layer. Tasks
    of one phase write disjoint parts and read only what earlier phases wrote."""
    h, m = W0.shape
    kb = Xb.shape[0]
    if op == FORWARD and c == 0:
        np.dot(Xb, Xb.T, gram)
        return
    a = (np.int64(c) - (op == FORWARD)) * UNITS  # a prange index may be unsigned
    b = min(h, a + UNITS)
    if op == FORWARD:
        P = _panel(pre, a, b, kb)
        np.dot(Xb, W0[a:b].T, P)
        for t in range(kb):
            for r in range(b - a):
                P[t, r] += b0[a + r]
        return
    G = _panel(gb, a, b, kb)
    np.dot(G.T, Xb, D[a:b])
    for r in range(b - a):
        acc = W0.dtype.type(0)
        for t in range(kb):
            acc += G[t, r]
        b0[a + r] -= lr * acc
        for col in range(m):
            W0[a + r, col] -= lr * D[a + r, col]


@parallel
def _phase(op, count, W0, b0, Xb, pre, gb, gram, D, lr, threads):
    """Tasks 0 .. count-1 of phase ``op``: shared out on several threads (taken one
    at a time, see ``fastnn.threads.numba_threads``), or in order on one."""
    if count > 1 and threads > 1:
        for c in numba.prange(count):
            _task(op, c, W0, b0, Xb, pre, gb, gram, D, lr)
    else:
        for c in range(count):
            _task(op, c, W0, b0, Xb, pre, gb, gram, D, lr)


def fit_sgd_blocked(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order,
                    learning_rate, loss_kind, block, epoch_loss, snapshot, stop):  # fmt: skip
    """``fit_sgd`` with the first layer's updates applied ``block`` samples at a time
    (see the module's docstring), for networks whose first layer is Dense and too
    large for L1. The first layer's products run on Numba's threads for the caller
    (``fastnn.threads.numba_threads``), with BLAS on one thread: the result is the
    same bits at any thread count. Separate from ``fit_sgd`` so that small networks
    never compile the matrix-product path. ``stop`` is checked before every block.
    """
    h, m = int(n_out[0]), int(n_in[0])
    acts, grad_a, grad_b, _, xb, pre, gram, gb, D = _sample_buffers(
        n_in, n_out, a_off, params, block * m, block * h, block * block, block * h, h * m
    )
    return _blocked_epochs(kinds, n_in, n_out, p_off, a_off, hyp, params, X.reshape(-1),
                           Y.reshape(-1), Y.shape[1], order, learning_rate, loss_kind, block,
                           epoch_loss, snapshot, stop, acts, grad_a, grad_b, xb, pre, gram, gb,
                           D.reshape(h, m), numba.get_num_threads())  # fmt: skip


@ordered
def _blocked_epochs(kinds, n_in, n_out, p_off, a_off, hyp, params, xf, yf, k, order,
                    learning_rate, loss_kind, block, epoch_loss, snapshot, stop, acts, grad_a,
                    grad_b, xb, pre, gram, gb, D, threads):  # fmt: skip
    """``fit_sgd_blocked``'s epochs, on buffers it allocated, on ``threads`` threads
    (Numba's count for the caller's thread, which cached code cannot read)."""
    dt = params.dtype
    lr = dt.type(learning_rate)
    h = n_out[0]
    m = n_in[0]
    W0, b0 = _weights(params, p_off, n_out, n_in, 0)
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
            Xb = xb[: kb * m].reshape((kb, m))
            for t in range(kb):
                copy_flat(xf, order[e, start + t] * m, xb, t * m, m)
            Gm = gram[: kb * kb].reshape((kb, kb))
            _phase(FORWARD, tasks + 1, W0, b0, Xb, pre, gb, Gm, D, lr, threads)
            total += _block_samples(kinds, n_in, n_out, p_off, a_off, hyp, params, xb, yf, k,
                                    order[e, start : start + kb], lr, loss_kind, acts, grad_a,
                                    grad_b, pre, gram, gb)  # fmt: skip
            if not np.isfinite(total):
                break
            _phase(UPDATE, tasks, W0, b0, Xb, pre, gb, Gm, D, lr, threads)
        if not _close_epoch(total, e, n, params, snapshot, epoch_loss):
            return e
    return n_epochs


@bare_ordered
def _block_samples(kinds, n_in, n_out, p_off, a_off, hyp, params, xb, yf, k, samples, lr,
                   loss_kind, acts, grad_a, grad_b, pre, gram, gb):  # fmt: skip
    """The per-sample steps of one block of ``fit_sgd_blocked``: each sample's first
    layer output is corrected for the block's earlier updates (see the module), then
    forward, loss and backward through the later layers; the first layer's output
    gradients are kept in ``gb``. ``pre`` and ``gb`` are column panels (see the
    module). Returns the block's summed loss, stopping at the first non-finite one.
    No reference counting here."""
    dt = params.dtype
    last = kinds.size - 1
    h = n_out[0]
    kb = samples.size
    total = 0.0
    for t in range(kb):
        s = samples[t]
        for a in range(0, h, UNITS):
            w = min(h, a + UNITS) - a
            z0 = U(a_off[0] + a)
            copy_flat(pre, a * kb + t * w, acts, z0, w)
            for j in range(t):
                c = lr * (gram[j * kb + t] + dt.type(1))
                g0 = U(a * kb + j * w)
                for r in range(w):
                    acts[z0 + U(r)] -= c * gb[g0 + U(r)]
        _forward_sample(kinds, n_in, n_out, p_off, a_off, hyp, params, xb, t * n_in[0], acts, 1)
        loss = losses.loss_value_flat(loss_kind, yf, s * k, acts, a_off[last], k)
        total += loss
        if not np.isfinite(loss):
            break
        in_a = _backward_sample(kinds, n_in, n_out, p_off, a_off, hyp, params, yf, s * k, lr,
                                loss_kind, acts, grad_a, grad_b, 0)  # fmt: skip
        g = grad_a if in_a else grad_b
        for a in range(0, h, UNITS):
            w = min(h, a + UNITS) - a
            copy_flat(g, a, gb, a * kb + t * w, w)
    return total
