"""The compiled engine of networks with convolutional layers.

It interprets the same plan as ``fastnn.kernels.engine`` (see ``fastnn.plan``), with
the layer kinds that work on (C, H, W) samples as well: ``CONV2D`` (its geometry
``geo`` in the plan's ``cfg`` row), ``MAXPOOL2D`` and ``AVGPOOL2D`` (``pgeo`` in
``cfg``), ``FLATTEN`` (a sample's C·H·W values are already flat: nothing to do) and
``DROPOUT`` (its rate in ``hyp``). A sample is a flat row of C·H·W values in C
order. The dense engine never dispatches on these kinds, so a dense network pays
nothing for them.

Each sample runs alone through every layer, on the one-sample ``*_flat`` helpers of
``conv``, ``dense`` and ``activations``, after being copied into an aligned scratch
row: a row's result never depends on its place in X or on X's alignment. Per-sample
SGD (``fit_sgd_conv``) updates each layer as it goes back; minibatch training with
any optimizer (``fit_minibatch_conv``) sums the samples' gradients in sample order,
then takes one optimizer step. Measured on LeNet-5 (float32, one thread), a sample
costs about the same either way: calling the two engines directly on 1,024
samples gave 83.5 µs (batch 64) against 82.1 µs (per sample), so the kernels a
sample runs, not the accumulation, set the cost. With the multi-channel loops
of ``conv_tiles`` (CPU time per sample, medians of two runs on a shared
two-core machine): batch 64 95.3/81.5 -> 77.0/67.3 µs, per sample
91.6/91.0 -> 74.2/74.8 µs, PyTorch eager at batch 64 87.3/85.1 µs.

Dropout's masks come from a counter-based generator (SplitMix64's finaliser) keyed
by the call's ``seed``, the epoch, the sample's position in it and the unit, so that
the same seed gives the same masks, and the NumPy twin draws the very same ones.
"""

from __future__ import annotations

import numpy as np

from ..codes import AVGPOOL2D, CONV2D, DENSE, DROPOUT, FLATTEN, MAXPOOL2D
from . import activations, conv, dense, losses, optimizers
from .activations import copy_flat
from .config import bare, serial
from .engine import ZERO, _arena, _close_epoch, _close_epoch_opt, _open_epoch_opt
from .optimizers import optimizer_step

U = np.uint64


@serial(inline="always")
def _geo(cfg, i):
    c = cfg[i]
    return (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11])


@serial(inline="always")
def _pgeo(cfg, i):
    c = cfg[i]
    return (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8])


@serial(inline="always")
def keep_unit(seed, counter, rate):
    """Whether dropout keeps the unit numbered ``counter``: a uniform in [0, 1) from
    SplitMix64's finaliser of seed + counter·φ, compared with ``rate``."""
    z = U(seed) + U(counter) * U(0x9E3779B97F4A7C15)
    z = (z ^ (z >> U(30))) * U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U(27))) * U(0x94D049BB133111EB)
    z = z ^ (z >> U(31))
    return np.float64(z >> U(11)) * 1.1102230246251565e-16 >= rate


@serial(inline="always")
def _forward(kinds, n_out, p_off, a_off, cfg, hyp, params, xs, acts, argmax, mask, work,
             seed, key):  # fmt: skip
    """One sample (xs) through every layer. ``key`` < 0: inference, dropout is the
    identity; else dropout draws its masks into ``mask`` with counters from
    ``key``."""
    for i in range(kinds.size):
        src = xs if i == 0 else acts
        s0 = 0 if i == 0 else a_off[i - 1]
        kind = kinds[i]
        o0 = a_off[i]
        n = n_out[i]
        if kind == DENSE:
            w = p_off[i]
            m = n_out[i - 1] if i > 0 else xs.size
            dense.forward_flat(params, w, params, w + n * m, n, m, src, s0, acts, o0)
        elif kind == CONV2D:
            geo = _geo(cfg, i)
            w = p_off[i]
            n_w = geo[3] * geo[0] * geo[4] * geo[5]
            conv.forward_flat(params, w, params, w + n_w, geo, src, s0, acts, o0, work)
        elif kind == MAXPOOL2D:
            conv.maxpool_forward_flat(_pgeo(cfg, i), src, s0, acts, o0, argmax, o0)
        elif kind == AVGPOOL2D:
            conv.avgpool_forward_flat(_pgeo(cfg, i), src, s0, acts, o0)
        elif kind == FLATTEN or (kind == DROPOUT and (key < 0 or hyp[i, 0] == 0)):
            copy_flat(src, s0, acts, o0, n)
        elif kind == DROPOUT:
            rate = hyp[i, 0]
            scale = acts.dtype.type(1.0 / (1.0 - rate))
            zero = acts.dtype.type(0)
            for j in range(n):
                m = scale if keep_unit(seed, key + o0 + j, rate) else zero
                mask[U(o0 + j)] = m
                acts[U(o0 + j)] = src[U(s0 + j)] * m
        else:
            activations.forward_flat(kind, src, s0, acts, o0, n, hyp[i, 0])


@serial(inline="always")
def _backward(kinds, n_out, p_off, a_off, cfg, hyp, params, xs, acts, argmax, mask, work, lr,
              grads, accumulate, grad_a, grad_b, lowest):  # fmt: skip
    """Back through layers last .. ``lowest`` (the first with parameters), from the
    loss gradient in ``grad_a``; each layer with parameters computes its input
    gradient with the weights forward used, then takes its SGD step of rate ``lr``,
    or, when ``accumulate`` (a minibatch), adds its gradient into ``grads`` (laid out
    as ``params``) and leaves the weights as they are."""
    use_a = True
    for i in range(kinds.size - 1, lowest - 1, -1):
        g = grad_a if use_a else grad_b
        gin = grad_b if use_a else grad_a
        kind = kinds[i]
        src = xs if i == 0 else acts
        s0 = 0 if i == 0 else a_off[i - 1]
        n = n_out[i]
        if kind == DENSE:
            w = p_off[i]
            m = n_out[i - 1] if i > 0 else xs.size
            if accumulate:
                dense.backward_acc_flat(params, w, n, m, src, s0, g, 0, grads, w, grads,
                                        w + n * m, gin, 0, i != lowest)  # fmt: skip
            elif i == lowest:
                dense.update_flat(params, w, params, w + n * m, n, m, src, s0, g, 0, lr)
            else:
                dense.backward_sgd_flat(params, w, params, w + n * m, n, m, src, s0, g, 0, lr,
                                        gin, 0)  # fmt: skip
            use_a = not use_a
        elif kind == CONV2D:
            geo = _geo(cfg, i)
            w = p_off[i]
            b = w + geo[3] * geo[0] * geo[4] * geo[5]
            if accumulate:
                if i != lowest:
                    conv.input_grad_flat(params, w, geo, g, 0, gin, 0, work)
                conv.weight_grad_acc_flat(geo, src, s0, g, 0, grads, w, grads, b, work)
            elif i == lowest:
                conv.update_flat(params, w, params, b, geo, src, s0, g, 0, lr, work)
            else:
                conv.backward_sgd_flat(params, w, params, b, geo, src, s0, g, 0, lr, gin, 0,
                                       work)  # fmt: skip
            use_a = not use_a
        elif kind == MAXPOOL2D:
            conv.maxpool_backward_flat(_pgeo(cfg, i), g, 0, argmax, a_off[i], gin, 0)
            use_a = not use_a
        elif kind == AVGPOOL2D:
            conv.avgpool_backward_flat(_pgeo(cfg, i), g, 0, gin, 0)
            use_a = not use_a
        elif kind == DROPOUT:
            if hyp[i, 0] != 0:
                for j in range(n):
                    g[U(j)] *= mask[U(a_off[i] + j)]
        elif kind != FLATTEN:
            activations.backward_flat(kind, acts, a_off[i], g, ZERO, g, ZERO, n, hyp[i, 0])


@serial
def _buffers(kinds, n_in, n_out, a_off, cfg, like):
    """The scratch of one sample, laid out by ``_arena``: the input row, the
    activations, dropout's masks, two gradients as wide as the widest layer and the
    convolutions' work buffer; and the max-pools' argmax (int64)."""
    widest = 1
    space = 1
    for i in range(kinds.size):
        widest = max(widest, n_in[i], n_out[i])
        if kinds[i] == CONV2D:
            space = max(space, conv.workspace_size(_geo(cfg, i)))
    n_acts = a_off[-1] + n_out[-1]
    sizes = np.array([n_in[0], n_acts, n_acts, widest, widest, space])
    buf, at = _arena(like, sizes)
    return buf, at, sizes, np.zeros(n_acts, np.int64)


@serial
def forward_conv(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Z):
    """The last layer's outputs for every row of X (flat samples), into Z, one row at
    a time. Returns whether X is all finite."""
    buf, at, sizes, argmax = _buffers(kinds, n_in, n_out, a_off, cfg, params)
    xs, acts, mask = buf[at[0] : at[0] + sizes[0]], buf[at[1] :], buf[at[2] :]
    work = buf[at[5] : at[5] + sizes[5]]
    last = kinds.size - 1
    finite = True
    for r in range(X.shape[0]):
        for c in range(X.shape[1]):
            v = X[r, c]
            finite &= abs(v) < np.inf
            xs[c] = v
        _forward(kinds, n_out, p_off, a_off, cfg, hyp, params, xs, acts, argmax, mask, work,
                 0, -1)  # fmt: skip
        for u in range(n_out[last]):
            Z[r, u] = acts[a_off[last] + u]
    return finite


@serial
def fit_sgd_conv(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order,
                 learning_rate, loss_kind, seed, epoch_loss, snapshot, stop):  # fmt: skip
    """Per-sample SGD of a convolutional network over the epochs of ``order``, as
    ``engine.fit_sgd``: forward, loss gradient, then each layer's backward with the
    weights forward used and its immediate update. ``seed`` keys dropout's masks.
    Returns the epochs completed; on a non-finite loss or weight, or once
    ``stop[0]`` is set, ``params`` is restored from ``snapshot`` and the epoch's
    index returned."""
    buf, at, sizes, argmax = _buffers(kinds, n_in, n_out, a_off, cfg, params)
    return _epochs(kinds, n_out, p_off, a_off, cfg, hyp, params, X.reshape(-1), X.shape[1],
                   Y.reshape(-1), order, learning_rate,
                   loss_kind, seed, epoch_loss, snapshot, stop, buf[at[0] : at[0] + sizes[0]],
                   buf[at[1] :], buf[at[2] :], buf[at[3] :], buf[at[4] :],
                   buf[at[5] : at[5] + sizes[5]], argmax)  # fmt: skip


@serial(inline="always")
def _sizes(kinds, n_out, p_off, a_off):
    """The last layer, the output width, the activations of one sample and the first
    layer with parameters (the lowest that backward reaches)."""
    last = kinds.size - 1
    k = n_out[last]
    lowest = 0
    while p_off[lowest] < 0:
        lowest += 1
    return last, k, a_off[last] + k, lowest


@bare
def _epochs(kinds, n_out, p_off, a_off, cfg, hyp, params, xf, m, yf, order, learning_rate,
            loss_kind, seed, epoch_loss, snapshot, stop, xs, acts, mask, grad_a, grad_b, work,
            argmax):  # fmt: skip
    """``fit_sgd_conv``'s epochs, on buffers it allocated."""
    lr = params.dtype.type(learning_rate)
    last, k, n_acts, lowest = _sizes(kinds, n_out, p_off, a_off)
    n_epochs, n = order.shape
    for e in range(n_epochs):
        copy_flat(params, ZERO, snapshot, ZERO, params.size)
        total = 0.0
        for t in range(n):
            if stop[0] != 0:
                total = np.nan  # ends the epoch as a divergence does: restored
                break
            s = order[e, t]
            for c in range(m):
                xs[c] = xf[s * m + c]
            key = (e * n + t) * n_acts
            _forward(kinds, n_out, p_off, a_off, cfg, hyp, params, xs, acts, argmax, mask, work,
                     seed, key)  # fmt: skip
            loss = losses.loss_value_flat(loss_kind, yf, s * k, acts, a_off[last], k)
            total += loss
            if not np.isfinite(loss):
                break
            losses.loss_grad_flat(loss_kind, yf, s * k, acts, a_off[last], k, 1.0, grad_a, ZERO)
            # Per-sample SGD steps as it goes: no gradient buffer (an empty one).
            _backward(kinds, n_out, p_off, a_off, cfg, hyp, params, xs, acts, argmax, mask, work,
                      lr, params[:0], False, grad_a, grad_b, lowest)  # fmt: skip
        if not _close_epoch(total, e, n, params, snapshot, epoch_loss):
            return e
    return n_epochs


@serial
def fit_minibatch_conv(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order, batch,
                       learning_rates, loss_kind, l2, opt_kind, hyper, state_a, state_b, step,
                       seed, epoch_loss, snapshot, stop):  # fmt: skip
    """Minibatch training of a convolutional network, as ``minibatch.fit_minibatch``
    (same arguments, plus ``seed``, which keys dropout's masks as in
    ``fit_sgd_conv``): each batch's gradient is the mean of its samples', then one
    optimizer step on the whole parameter buffer.

    Each sample of a batch runs alone through the one-sample kernels, forward then
    backward with the batch's weights, and adds its gradient into one buffer, in
    sample order: the sum, and so every result, is the same bits whatever the
    heap's layout. Lowering a batch onto BLAS (im2col) measured slower on LeNet's
    layers than these loops (see ``conv``), and the loops need no batch-sized
    activations. On one thread, as per-sample SGD."""
    buf, at, sizes, argmax = _buffers(kinds, n_in, n_out, a_off, cfg, params)
    gbuf, gat = _arena(params, np.array([params.size]))
    return _minibatch_epochs(kinds, n_out, p_off, a_off, cfg, hyp, params, X.reshape(-1),
                             X.shape[1], Y.reshape(-1), order, batch, learning_rates, loss_kind,
                             l2, opt_kind, hyper, state_a, state_b, step, seed, epoch_loss,
                             snapshot, stop, buf[at[0] : at[0] + sizes[0]], buf[at[1] :],
                             buf[at[2] :], buf[at[3] :], buf[at[4] :],
                             buf[at[5] : at[5] + sizes[5]], argmax,
                             gbuf[gat[0] : gat[0] + params.size])  # fmt: skip


@bare
def _minibatch_epochs(kinds, n_out, p_off, a_off, cfg, hyp, params, xf, m, yf, order, batch,
                      learning_rates, loss_kind, l2, opt_kind, hyper, state_a, state_b, step,
                      seed, epoch_loss, snapshot, stop, xs, acts, mask, grad_a, grad_b, work,
                      argmax, grads):  # fmt: skip
    """``fit_minibatch_conv``'s epochs, on buffers it allocated."""
    dt = params.dtype.type
    last, k, n_acts, lowest = _sizes(kinds, n_out, p_off, a_off)
    n_epochs, n = order.shape
    B = min(batch, n)
    size = params.size
    stateful = opt_kind != optimizers.SGD  # plain SGD's state buffers stay unused
    decay = dt(l2)
    for e in range(n_epochs):
        _open_epoch_opt(params, snapshot, stateful, state_a, state_b)
        step0 = step[0]
        total = 0.0
        for start in range(0, n, B):
            if stop[0] != 0:
                total = np.nan  # ends the epoch as a divergence does: restored
                break
            rows = min(B, n - start)
            scale = 1.0 / rows  # the gradient of the batch's mean loss
            for j in range(size):
                grads[U(j)] = dt(0)
            for t in range(start, start + rows):
                s = order[e, t]
                for c in range(m):
                    xs[c] = xf[s * m + c]
                key = (e * n + t) * n_acts  # the masks fit_sgd_conv draws at t
                _forward(kinds, n_out, p_off, a_off, cfg, hyp, params, xs, acts, argmax, mask,
                         work, seed, key)  # fmt: skip
                loss = losses.loss_value_flat(loss_kind, yf, s * k, acts, a_off[last], k)
                total += loss
                if not np.isfinite(loss):
                    break
                losses.loss_grad_flat(loss_kind, yf, s * k, acts, a_off[last], k, scale, grad_a,
                                      ZERO)  # fmt: skip
                _backward(kinds, n_out, p_off, a_off, cfg, hyp, params, xs, acts, argmax, mask,
                          work, 0.0, grads, True, grad_a, grad_b, lowest)  # fmt: skip
            if not np.isfinite(total):
                break
            if l2 > 0:  # l2·W on the weights; biases are not regularised
                for i in range(kinds.size):
                    w = p_off[i]
                    count = n_out[i] * (n_out[i - 1] if i > 0 else m) if kinds[i] == DENSE else 0
                    if kinds[i] == CONV2D:
                        geo = _geo(cfg, i)
                        count = geo[3] * geo[0] * geo[4] * geo[5]
                    for j in range(w, w + count):
                        grads[U(j)] += decay * params[U(j)]
            step[0] += 1
            optimizer_step(opt_kind, params, grads, state_a, state_b, learning_rates[e], hyper,
                           step[0])  # fmt: skip
        if not _close_epoch_opt(total, e, n, params, snapshot, epoch_loss, stateful, state_a,
                                state_b, step, step0):  # fmt: skip
            return e
    return n_epochs
