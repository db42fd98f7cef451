"""The compiled training engine: one ``@njit`` interpreter of a network's plan.

A plan is a few int64 arrays, one entry per layer:

* ``kinds``: ``DENSE`` or an activation code from ``activations`` (TANH, ...);
* ``n_in``, ``n_out``: the layer's input and output widths;
* ``p_off``: where a Dense layer's W (then its b) starts in the parameter buffer;
* ``a_off``: where the layer's output starts in the activation buffer.

All parameters live in one contiguous buffer, so the engine reaches every layer by
offset, and the Python layers see the same memory through views.

Per-sample SGD follows the design's loop exactly: forward, loss gradient, then each
layer's backward, which uses the weights forward used and then updates them. The one
liberty is an ordering one: the first layer's update for sample t is deferred and
fused with the first layer's forward for sample t + 1, which is the very next thing
the loop would do to that matrix. Both then share a single pass over W₀, the largest
matrix in most networks, and the arithmetic is unchanged.
"""

from __future__ import annotations

import numpy as np

from .activations import RELU, activation_backward, activation_forward
from .config import serial
from .dense import dense_backward_sgd, dense_forward, dense_forward_batch
from .losses import batch_loss, batch_loss_grad, loss_grad, loss_value
from .optimizers import optimizer_step

DENSE = 0


@serial
def _copy(src, dst):
    """dst[:] = src for 1-D arrays of one length (a plain loop: slice assignment
    would compile Numba's shape-error formatting, seconds of start-up)."""
    for i in range(src.size):
        dst[i] = src[i]


@serial
def _widest(n_in, n_out):
    w = 0
    for i in range(n_in.size):
        w = max(w, n_in[i], n_out[i])
    return w


@serial
def _weights(params, p_off, n_out, n_in, i):
    start = p_off[i]
    stop = start + n_out[i] * n_in[i]
    return params[start:stop].reshape((n_out[i], n_in[i])), params[stop : stop + n_out[i]]


@serial
def _output(acts, a_off, n_out, i):
    return acts[a_off[i] : a_off[i] + n_out[i]]


@serial
def _forward_sample(kinds, n_in, n_out, p_off, a_off, params, x, acts, first):
    """Forward one sample through layers ``first`` .. end; outputs land in ``acts``."""
    for i in range(first, kinds.size):
        inp = x if i == 0 else _output(acts, a_off, n_out, i - 1)
        out = _output(acts, a_off, n_out, i)
        if kinds[i] == DENSE:
            W, b = _weights(params, p_off, n_out, n_in, i)
            dense_forward(W, b, inp, out)
        else:
            activation_forward(kinds[i], inp, out)


@serial
def _update_and_forward(W, b, g, lr, x_prev, x_next, z):
    """W -= lr·g·x_prevᵀ, b -= lr·g and z = W·x_next + b, in one pass over W."""
    n_out, n_in = W.shape
    for r in range(n_out):
        step = lr * g[r]
        acc = W.dtype.type(0)
        for c in range(n_in):
            w = W[r, c] - step * x_prev[c]
            W[r, c] = w
            acc += w * x_next[c]
        b[r] -= step
        z[r] = acc + b[r]


@serial
def _update(W, b, g, lr, x):
    n_out, n_in = W.shape
    for r in range(n_out):
        step = lr * g[r]
        for c in range(n_in):
            W[r, c] -= step * x[c]
        b[r] -= step


@serial
def _backward_sample(kinds, n_in, n_out, p_off, a_off, params, y, lr, loss_kind,
                     acts, grad_a, grad_b, first_dense):  # fmt: skip
    """Loss gradient, then backward with immediate SGD updates through every layer
    after ``first_dense``. Returns the gradient at ``first_dense``'s output, whose
    update the caller applies (so it can defer or batch it)."""
    last = kinds.size - 1
    g = grad_a[: n_out[last]]
    loss_grad(loss_kind, y, _output(acts, a_off, n_out, last), 1.0, g)
    use_a = True
    for i in range(last, first_dense, -1):
        g = grad_a[: n_out[i]] if use_a else grad_b[: n_out[i]]
        if kinds[i] != DENSE:
            activation_backward(kinds[i], _output(acts, a_off, n_out, i), g, g)
        else:
            W, b = _weights(params, p_off, n_out, n_in, i)
            gin = grad_b[: n_in[i]] if use_a else grad_a[: n_in[i]]
            dense_backward_sgd(W, b, _output(acts, a_off, n_out, i - 1), g, lr, gin)
            use_a = not use_a
    return grad_a[: n_out[first_dense]] if use_a else grad_b[: n_out[first_dense]]


@serial
def _epoch_fused(kinds, n_in, n_out, p_off, a_off, params, X, Y, order, lr, loss_kind,
                 acts, grad_a, grad_b, pending):  # fmt: skip
    """One epoch, the first layer's update fused with the next sample's forward.
    Returns the summed loss (non-finite if the run diverged)."""
    first_dense = 0
    while kinds[first_dense] != DENSE:
        first_dense += 1
    W0, b0 = _weights(params, p_off, n_out, n_in, first_dense)
    fuse = first_dense == 0
    g0 = pending[: n_out[first_dense]]
    total = 0.0
    prev = -1
    for k in range(order.size):
        s = order[k]
        x = X[s]
        if prev >= 0:
            _update_and_forward(W0, b0, g0, lr, X[prev], x, _output(acts, a_off, n_out, 0))
            _forward_sample(kinds, n_in, n_out, p_off, a_off, params, x, acts, 1)
        else:
            _forward_sample(kinds, n_in, n_out, p_off, a_off, params, x, acts, 0)
        loss = loss_value(loss_kind, Y[s], _output(acts, a_off, n_out, kinds.size - 1))
        total += loss
        if not np.isfinite(loss):
            return total
        g = _backward_sample(kinds, n_in, n_out, p_off, a_off, params, Y[s], lr, loss_kind,
                             acts, grad_a, grad_b, first_dense)  # fmt: skip
        if fuse:
            _copy(g, g0)
            prev = s
        else:
            inp = x if first_dense == 0 else _output(acts, a_off, n_out, first_dense - 1)
            _update(W0, b0, g, lr, inp)
    if prev >= 0:
        _update(W0, b0, g0, lr, X[prev])
    return total


@serial
def _epoch_blocked(kinds, n_in, n_out, p_off, a_off, params, X, Y, order, lr, loss_kind,
                   acts, grad_a, grad_b, block, xb, pre, gram, gb, dw):  # fmt: skip
    """One epoch of per-sample SGD with the first layer's updates applied in blocks.

    Within a block of K samples the first layer's weights after k updates are
    W₀ − lr·Σ g_j x_jᵀ, so its output for sample t is
    z_t = W₀x_t + b₀ − lr·Σ_{j<t} g_j (x_j·x_t + 1):
    the products W₀x_t and x_j·x_t come from two matrix-matrix products per block,
    and W₀ gets one rank-K update at the block's end. Every sample still sees the
    weights left by all samples before it: this is per-sample SGD, exactly, but W₀
    is read once per block instead of once per sample.
    """
    W0, b0 = _weights(params, p_off, n_out, n_in, 0)
    h = n_out[0]
    m = n_in[0]
    total = 0.0
    for start in range(0, order.size, block):
        kb = min(block, order.size - start)
        Xb = xb[: kb * m].reshape((kb, m))
        for t in range(kb):
            _copy(X[order[start + t]], Xb[t])
        P = pre[: kb * h].reshape((kb, h))
        dense_forward_batch(W0, b0, Xb, P)
        Gm = gram[: kb * kb].reshape((kb, kb))
        np.dot(Xb, Xb.T, Gm)
        Gb = gb[: kb * h].reshape((kb, h))
        z = _output(acts, a_off, n_out, 0)
        for t in range(kb):
            s = order[start + t]
            _copy(P[t], z)
            for j in range(t):
                c = lr * (Gm[j, t] + Gm.dtype.type(1))
                gj = Gb[j]
                for r in range(h):
                    z[r] -= c * gj[r]
            _forward_sample(kinds, n_in, n_out, p_off, a_off, params, Xb[t], acts, 1)
            loss = loss_value(loss_kind, Y[s], _output(acts, a_off, n_out, kinds.size - 1))
            total += loss
            if not np.isfinite(loss):
                return total
            g = _backward_sample(kinds, n_in, n_out, p_off, a_off, params, Y[s], lr, loss_kind,
                                 acts, grad_a, grad_b, 0)  # fmt: skip
            _copy(g, Gb[t])
        # W₀ -= lr·Gbᵀ·Xb and b₀ -= lr·Σ Gb: the block's rank-K update.
        D = dw[: h * m].reshape((h, m))
        np.dot(Gb.T, Xb, D)
        for r in range(h):
            acc = Gb.dtype.type(0)
            for t in range(kb):
                acc += Gb[t, r]
            b0[r] -= lr * acc
            for c in range(m):
                W0[r, c] -= lr * D[r, c]
    return total


@serial
def _close_epoch(total, e, n, params, snapshot, epoch_loss):
    """Record epoch e's mean loss. If the loss or any parameter is no longer finite
    (saturating activations can keep the loss finite while weights overflow), restore
    the parameters to the epoch's start and return False."""
    ok = np.isfinite(total)
    for i in range(params.size):
        ok = ok and np.isfinite(params[i])
    if not ok:
        _copy(snapshot, params)
        return False
    epoch_loss[e] = total / n
    return True


@serial
def fit_sgd(kinds, n_in, n_out, p_off, a_off, params, X, Y, order, learning_rate,
            loss_kind, epoch_loss, snapshot):  # fmt: skip
    """Per-sample SGD over ``order.shape[0]`` epochs; row e of ``order`` is epoch e's
    sample order. Each sample's first-layer update is fused with the next sample's
    first-layer forward (see ``_epoch_fused``).

    Writes each epoch's mean training loss into ``epoch_loss`` and returns the number
    of epochs completed. If a loss turns non-finite, the parameters are restored to
    ``snapshot`` (their state at the start of that epoch) and the epoch's index is
    returned, so no NaN ever stays behind.
    """
    dt = params.dtype
    lr = dt.type(learning_rate)
    widest = _widest(n_in, n_out)
    acts = np.empty(a_off[-1] + n_out[-1], dt)
    grad_a = np.empty(widest, dt)
    grad_b = np.empty(widest, dt)
    pending = np.empty(widest, dt)
    n_epochs, n = order.shape
    for e in range(n_epochs):
        _copy(params, snapshot)
        total = _epoch_fused(kinds, n_in, n_out, p_off, a_off, params, X, Y, order[e], lr,
                             loss_kind, acts, grad_a, grad_b, pending)  # fmt: skip
        if not _close_epoch(total, e, n, params, snapshot, epoch_loss):
            return e
    return n_epochs


@serial
def fit_sgd_blocked(kinds, n_in, n_out, p_off, a_off, params, X, Y, order, learning_rate,
                    loss_kind, block, epoch_loss, snapshot):  # fmt: skip
    """``fit_sgd`` with the first layer's updates applied ``block`` samples at a time
    (see ``_epoch_blocked``): the same per-sample SGD, for networks whose first layer
    is Dense and too large for L1. Separate from ``fit_sgd`` so that small networks
    never compile the matrix-product path."""
    dt = params.dtype
    lr = dt.type(learning_rate)
    widest = _widest(n_in, n_out)
    acts = np.empty(a_off[-1] + n_out[-1], dt)
    grad_a = np.empty(widest, dt)
    grad_b = np.empty(widest, dt)
    xb = np.empty(block * n_in[0], dt)
    pre = np.empty(block * n_out[0], dt)
    gram = np.empty(block * block, dt)
    gb = np.empty(block * n_out[0], dt)
    dw = np.empty(n_out[0] * n_in[0], dt)
    n_epochs, n = order.shape
    for e in range(n_epochs):
        _copy(params, snapshot)
        total = _epoch_blocked(kinds, n_in, n_out, p_off, a_off, params, X, Y, order[e], lr,
                               loss_kind, acts, grad_a, grad_b, block, xb, pre, gram, gb,
                               dw)  # fmt: skip
        if not _close_epoch(total, e, n, params, snapshot, epoch_loss):
            return e
    return n_epochs


@serial
def _bias_activation(kind, Z, b):
    """The epilogue of a Dense layer's matrix product: Z = f(Z + b), with Z
    feature-major (one row per unit), so each row adds one bias value."""
    units, cols = Z.shape
    zero = Z.dtype.type(0)
    for r in range(units):
        z = Z[r]
        bias = b[r]
        if kind == RELU:
            for c in range(cols):
                v = z[c] + bias
                z[c] = v if v > zero else zero
        else:
            for c in range(cols):
                z[c] += bias
            if kind != DENSE:
                activation_forward(kind, z, z)


@serial
def _add_scaled(out, x, scale):
    """out += scale·x, for 2-D arrays of one shape."""
    c = out.dtype.type(scale)
    of = out.reshape(-1)
    xf = x.reshape(-1)
    for i in range(of.size):
        of[i] += c * xf[i]


@serial
def _block(buf, offset, rows, cols):
    return buf[offset : offset + rows * cols].reshape((rows, cols))


@serial
def _transpose(src, dst):
    """dst = srcᵀ, in tiles so that both sides stay in cache."""
    rows, cols = src.shape
    tile = 32
    for r0 in range(0, rows, tile):
        for c0 in range(0, cols, tile):
            for r in range(r0, min(r0 + tile, rows)):
                for c in range(c0, min(c0 + tile, cols)):
                    dst[c, r] = src[r, c]


@serial
def _forward_cols(kinds, n_in, n_out, p_off, a_off, params, Xb, acts, cols, stride):
    """Forward a block of ``cols`` samples. ``Xb`` holds them in rows; every layer's
    output is feature-major, the (n_out[i], cols) block at ``stride * a_off[i]`` of
    ``acts``, so each Dense layer is Z = W·X, as in the design (the first one reads
    ``Xb`` through BLAS's transpose flag). A Dense layer followed by an activation
    writes straight into the activation's block, bias and activation fused."""
    if kinds[0] == DENSE:
        W, b = _weights(params, p_off, n_out, n_in, 0)
        fused = kinds.size > 1 and kinds[1] != DENSE
        j = 1 if fused else 0
        dst = _block(acts, stride * a_off[j], n_out[0], cols)
        np.dot(W, Xb.T, dst)
        _bias_activation(kinds[j] if fused else DENSE, dst, b)
        i = j + 1
    else:
        dst = _block(acts, 0, n_out[0], cols)
        _transpose(Xb, dst)
        activation_forward(kinds[0], dst, dst)
        i = 1
    while i < kinds.size:
        src = _block(acts, stride * a_off[i - 1], n_out[i - 1], cols)
        if kinds[i] == DENSE:
            W, b = _weights(params, p_off, n_out, n_in, i)
            fused = i + 1 < kinds.size and kinds[i + 1] != DENSE
            j = i + 1 if fused else i
            dst = _block(acts, stride * a_off[j], n_out[i], cols)
            np.dot(W, src, dst)
            _bias_activation(kinds[j] if fused else DENSE, dst, b)
            i = j + 1
        else:
            activation_forward(kinds[i], src, _block(acts, stride * a_off[i], n_out[i], cols))
            i += 1


@serial
def fit_minibatch(kinds, n_in, n_out, p_off, a_off, params, X, Y, order, batch,
                  learning_rates, loss_kind, l2, opt_kind, hyper, state_a, state_b, step,
                  epoch_loss, snapshot):  # fmt: skip
    """Minibatch training: gradients averaged over each batch (the last may be
    smaller), then one optimizer step on the whole parameter buffer.

    ``learning_rates[e]`` is epoch e's learning rate; ``l2`` adds l2·W to every
    weight gradient; ``opt_kind``, ``hyper``, ``state_a``, ``state_b`` select and carry
    the optimizer (see ``optimizers.optimizer_step``), and ``step[0]`` counts its steps
    across calls. Returns the number of epochs completed; on a non-finite loss the
    parameters are restored to ``snapshot``, as in ``fit_sgd``.

    A batch is held feature-major, one column per sample, so the products are the
    design's own: Z = W·X, dC/dW = G·Xᵀ and dC/dX = Wᵀ·G.
    """
    dt = params.dtype
    n_epochs, n = order.shape
    B = min(batch, n)
    last = kinds.size - 1
    k = n_out[last]
    widest = _widest(n_in, n_out)
    acts = np.empty(B * (a_off[-1] + k), dt)
    xb = np.empty(B * n_in[0], dt)
    yb = np.empty(B * k, dt)
    zb = np.empty(B * k, dt)
    grad_a = np.empty(B * widest, dt)
    grad_b = np.empty(B * widest, dt)
    grads = np.zeros_like(params)
    first_dense = 0
    while kinds[first_dense] != DENSE:
        first_dense += 1
    for e in range(n_epochs):
        _copy(params, snapshot)
        total = 0.0
        for start in range(0, n, B):
            rows = min(B, n - start)
            Xb = _block(xb, 0, rows, n_in[0])
            Yb = _block(yb, 0, rows, k)
            for t in range(rows):
                _copy(X[order[e, start + t]], Xb[t])
                _copy(Y[order[e, start + t]], Yb[t])
            _forward_cols(kinds, n_in, n_out, p_off, a_off, params, Xb, acts, rows, B)
            # The loss works on samples in rows: transpose the (k, rows) output.
            Zb = _block(zb, 0, rows, k)
            _transpose(_block(acts, B * a_off[last], k, rows), Zb)
            loss = batch_loss(loss_kind, Yb, Zb)
            total += loss * rows
            if not np.isfinite(loss):
                break
            batch_loss_grad(loss_kind, Yb, Zb, Zb)
            G = _block(grad_a, 0, k, rows)
            _transpose(Zb, G)
            use_a = True
            for i in range(last, first_dense - 1, -1):
                if kinds[i] != DENSE:
                    activation_backward(kinds[i], _block(acts, B * a_off[i], n_out[i], rows), G, G)
                    continue
                W, _ = _weights(params, p_off, n_out, n_in, i)
                dW, db = _weights(grads, p_off, n_out, n_in, i)
                if i == 0:
                    np.dot(G, Xb, dW)
                else:
                    np.dot(G, _block(acts, B * a_off[i - 1], n_in[i], rows).T, dW)
                for r in range(n_out[i]):
                    acc = dt.type(0)
                    g = G[r]
                    for c in range(rows):
                        acc += g[c]
                    db[r] = acc
                if l2 > 0:
                    _add_scaled(dW, W, l2)
                if i > first_dense:
                    Gin = _block(grad_b if use_a else grad_a, 0, n_in[i], rows)
                    np.dot(W.T, G, Gin)
                    G = Gin
                    use_a = not use_a
            step[0] += 1
            optimizer_step(opt_kind, params, grads, state_a, state_b, learning_rates[e],
                           hyper, step[0])  # fmt: skip
        if not _close_epoch(total, e, n, params, snapshot, epoch_loss):
            return e
    return n_epochs


@serial
def forward_batch(kinds, n_in, n_out, p_off, a_off, params, X, Z, acts, block):
    """The last layer's outputs for every row of X, written into Z, ``block`` rows at a
    time through matrix-matrix products; ``acts`` holds one block of activations."""
    n = X.shape[0]
    last = kinds.size - 1
    for start in range(0, n, block):
        rows = min(block, n - start)
        _forward_cols(kinds, n_in, n_out, p_off, a_off, params, X[start : start + rows], acts,
                      rows, block)  # fmt: skip
        _transpose(_block(acts, block * a_off[last], n_out[last], rows), Z[start : start + rows])
