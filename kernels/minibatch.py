"""Minibatch training on tasks: the engine's ``fit_minibatch``.

Every matrix product of a step is cut into tasks of a fixed shape, each a
single-threaded BLAS call, which Numba's threads take one at a time: no sum is split
between threads, so the result is the same bits at any thread count, and a thread
that the machine deschedules holds up only its own task. See ``fit_minibatch``.
"""

from __future__ import annotations

import numba
import numpy as np

from ..codes import DENSE
from . import optimizers
from .activations import activation_backward, activation_forward, copy_flat
from .config import parallel, serial
from .engine import (
    _add_scaled,
    _arena,
    _bias_activation,
    _block,
    _close_epoch_opt,
    _first_dense,
    _open_epoch_opt,
    _transpose,
    _weights,
    _widest,
)
from .losses import batch_loss, batch_loss_grad
from .optimizers import optimizer_step

#: Units per task in a minibatch step. Every matrix product of a step is cut into
#: tasks of this many output units (rows of W·A or of dW), each a single-threaded BLAS
#: call of a shape fixed by the layer and the batch, and the optimizer's step into
#: ranges of STEP_RANGE parameters: a task's bits are the same whichever thread runs
#: it, and no sum is split between threads, so no result depends on the thread count.
UNITS = 128
STEP_RANGE = 1 << 16
FORWARD = 0  # a Dense layer's Z = f(W·A + b)
BACKWARD = 1  # its dW = G·Aᵀ, db and l2; and Gin = Wᵀ·G back through the activations
STEP = 2  # the optimizer's step


@serial
def _task(op, i, c, net, G, Gin, rows, stride, l2, opt_kind, lr, step):
    """Task ``c`` of phase ``op`` for Dense layer ``i``. A FORWARD task computes units
    c·UNITS onwards of the layer's output; a BACKWARD task those units' gradients,
    except task 0 of a layer that passes a gradient back, which computes all of
    Gin; a STEP task parameters c·STEP_RANGE onwards. Tasks of one phase write
    disjoint parts and read only what earlier phases wrote. ``net`` holds the step's
    arrays (see ``fit_minibatch``)."""
    kinds, n_in, n_out, p_off, a_off, hyp, params, grads, Xb, acts, hyper, state_a, state_b = net
    if op == STEP:
        a = c * STEP_RANGE
        b = min(params.size, a + STEP_RANGE)
        optimizer_step(opt_kind, params[a:b], grads[a:b], state_a[a:b], state_b[a:b], lr,
                       hyper, step)  # fmt: skip
        return
    W, bias = _weights(params, p_off, n_out, n_in, i)
    if op == FORWARD:
        a = c * UNITS
        b = min(n_out[i], a + UNITS)
        fused = i + 1 < kinds.size and kinds[i + 1] != DENSE
        j = i + 1 if fused else i
        dst = _block(acts, stride * a_off[j], n_out[i], rows)[a:b]
        if i == 0:
            np.dot(W[a:b], Xb.T, dst)
        else:
            np.dot(W[a:b], _block(acts, stride * a_off[i - 1], n_in[i], rows), dst)
        _bias_activation(kinds[j] if fused else DENSE, dst, bias[a:b], hyp[j, 0])
        return
    if i > _first_dense(kinds):
        if c == 0:
            # One task: W[:, a:b]ᵀ as a BLAS operand would take a copy of W.
            np.dot(W.T, G, Gin)
            h = i - 1
            while kinds[h] != DENSE:  # the activations between the previous Dense and i
                activation_backward(kinds[h], _block(acts, stride * a_off[h], n_out[h], rows),
                                    Gin, Gin, hyp[h, 0])  # fmt: skip
                h -= 1
            return
        c -= 1
    a = c * UNITS
    b = min(n_out[i], a + UNITS)
    dW, db = _weights(grads, p_off, n_out, n_in, i)
    if i == 0:
        np.dot(G[a:b], Xb, dW[a:b])
    else:
        np.dot(G[a:b], _block(acts, stride * a_off[i - 1], n_in[i], rows).T, dW[a:b])
    for r in range(a, b):
        acc = params.dtype.type(0)
        g = G[r]
        for col in range(rows):
            acc += g[col]
        db[r] = acc
    if l2 > 0:
        _add_scaled(dW[a:b], W[a:b], l2)


@parallel
def _phase(op, i, count, net, G, Gin, rows, stride, l2, opt_kind, lr, step, threads):
    """Tasks 0 .. count-1 of phase ``op``: on several threads, which take them one at a
    time (``fastnn.threads.numba_threads`` sets both), or in order on one."""
    if count > 1 and threads > 1:
        for c in numba.prange(count):
            _task(op, i, c, net, G, Gin, rows, stride, l2, opt_kind, lr, step)
    else:
        for c in range(count):
            _task(op, i, c, net, G, Gin, rows, stride, l2, opt_kind, lr, step)


def fit_minibatch(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order, batch,
                  learning_rates, loss_kind, l2, opt_kind, hyper, state_a, state_b, step,
                  epoch_loss, snapshot, stop):  # fmt: skip
    """Minibatch training: gradients averaged over each batch (the last may be
    smaller), then one optimizer step on the whole parameter buffer.

    ``learning_rates[e]`` is epoch e's learning rate; ``l2`` adds l2·W to every
    weight gradient; ``opt_kind``, ``hyper``, ``state_a``, ``state_b`` select and carry
    the optimizer (see ``optimizers.optimizer_step``), and ``step[0]`` counts its steps
    across calls. Returns the number of epochs completed. On a non-finite loss, or
    when ``stop[0]`` is set (checked before every batch), the parameters, the
    optimizer's state and its step count are all restored to their values at the
    start of the epoch: ``snapshot`` holds 3 × params.size values for them.

    A batch is held feature-major, one column per sample, so the products are the
    design's own: Z = W·X, dC/dW = G·Xᵀ and dC/dX = Wᵀ·G. They run as tasks (see
    ``UNITS``) on Numba's threads, with BLAS on one thread: the result is bit for bit
    the same at any thread count. On one thread no parallel region starts.
    """
    return _minibatch_epochs(kinds, n_in, n_out, p_off, a_off, hyp, params, X, Y, order, batch,
                             learning_rates, loss_kind, l2, opt_kind, hyper, state_a, state_b,
                             step, epoch_loss, snapshot, stop, numba.get_num_threads())  # fmt: skip


@serial
def _minibatch_epochs(kinds, n_in, n_out, p_off, a_off, hyp, params, X, Y, order, batch,
                      learning_rates, loss_kind, l2, opt_kind, hyper, state_a, state_b, step,
                      epoch_loss, snapshot, stop, threads):  # fmt: skip
    """``fit_minibatch`` on ``threads`` threads (Numba's count for the caller's thread,
    which compiled code cannot read and still be cached)."""
    n_epochs, n = order.shape
    B = min(batch, n)
    last = kinds.size - 1
    k = n_out[last]
    widest = _widest(n_in, n_out)
    sizes = np.array([B * (a_off[-1] + k), B * n_in[0], B * k, B * k, B * widest, B * widest,
                      params.size])  # fmt: skip
    buf, at = _arena(params, sizes)
    acts = buf[at[0] : at[0] + sizes[0]]
    xb = buf[at[1] : at[1] + sizes[1]]
    yb = buf[at[2] : at[2] + sizes[2]]
    zb = buf[at[3] : at[3] + sizes[3]]
    grad_a = buf[at[4] : at[4] + sizes[4]]
    grad_b = buf[at[5] : at[5] + sizes[5]]
    grads = buf[at[6] : at[6] + sizes[6]]
    grads[:] = 0
    first_dense = _first_dense(kinds)
    xf = X.reshape(-1)
    yf = Y.reshape(-1)
    nf = n_in[0]
    size = params.size
    stateful = opt_kind != optimizers.SGD  # plain SGD's state buffers stay unused
    for e in range(n_epochs):
        _open_epoch_opt(params, snapshot, stateful, state_a, state_b)
        step0 = step[0]
        lr = learning_rates[e]
        total = 0.0
        for start in range(0, n, B):
            if stop[0] != 0:
                total = np.nan  # restored, as after a divergence
                break
            rows = min(B, n - start)
            Yb = _block(yb, 0, rows, k)
            for t in range(rows):
                s = order[e, start + t]
                copy_flat(xf, s * nf, xb, t * nf, nf)
                copy_flat(yf, s * k, yb, t * k, k)
            Xb = _block(xb, 0, rows, n_in[0])
            net = (kinds, n_in, n_out, p_off, a_off, hyp, params, grads, Xb, acts, hyper,
                   state_a, state_b)  # fmt: skip
            G = Gin = _block(grad_a, 0, k, rows)  # placeholders until the loss gradient
            i = 0
            if kinds[0] != DENSE:
                dst = _block(acts, 0, n_out[0], rows)
                _transpose(Xb, dst)
                activation_forward(kinds[0], dst, dst, hyp[0, 0])
                i = 1
            while i < kinds.size:
                if kinds[i] == DENSE:
                    u = (n_out[i] + UNITS - 1) // UNITS
                    _phase(FORWARD, i, u, net, G, Gin, rows, B, l2, opt_kind, lr, step[0], threads)
                    i += 2 if i + 1 < kinds.size and kinds[i + 1] != DENSE else 1
                else:  # an activation after another activation
                    src = _block(acts, B * a_off[i - 1], n_out[i - 1], rows)
                    activation_forward(kinds[i], src, _block(acts, B * a_off[i], n_out[i], rows),
                                       hyp[i, 0])  # fmt: skip
                    i += 1
            # The loss works on samples in rows: transpose the (k, rows) output.
            Zb = _block(zb, 0, rows, k)
            _transpose(_block(acts, B * a_off[last], k, rows), Zb)
            loss = batch_loss(loss_kind, Yb, Zb)
            total += loss * rows
            if not np.isfinite(loss):
                break
            batch_loss_grad(loss_kind, Yb, Zb, Zb)
            _transpose(Zb, G)
            i = last
            while kinds[i] != DENSE:  # activations after the last Dense layer
                activation_backward(kinds[i], _block(acts, B * a_off[i], n_out[i], rows), G, G,
                                    hyp[i, 0])  # fmt: skip
                i -= 1
            step[0] += 1
            use_a = True
            while True:
                count = (n_out[i] + UNITS - 1) // UNITS
                if i > first_dense:
                    Gin = _block(grad_b if use_a else grad_a, 0, n_in[i], rows)
                    count += 1
                _phase(BACKWARD, i, count, net, G, Gin, rows, B, l2, opt_kind, lr, step[0], threads)
                if i == first_dense:
                    break
                G = Gin
                use_a = not use_a
                i -= 1
                while kinds[i] != DENSE:
                    i -= 1
            count = (size + STEP_RANGE - 1) // STEP_RANGE
            _phase(STEP, 0, count, net, G, Gin, rows, B, l2, opt_kind, lr, step[0], threads)
        if not _close_epoch_opt(total, e, n, params, snapshot, epoch_loss, stateful, state_a,
                                state_b, step, step0):  # fmt: skip
            return e
    return n_epochs
