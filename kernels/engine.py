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

from .activations import activation_backward, activation_forward
from .config import serial
from .dense import dense_backward_sgd, dense_forward, dense_forward_batch
from .losses import loss_grad, loss_value

DENSE = 0


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
def fit_sgd(
    kinds, n_in, n_out, p_off, a_off, params, X, Y, order, learning_rate, loss_kind,
    acts, grad_a, grad_b, pending, snapshot, epoch_loss,
):  # fmt: skip
    """Per-sample SGD over ``order.shape[0]`` epochs; row e of ``order`` is epoch e's
    sample order.

    Writes each epoch's mean training loss into ``epoch_loss`` and returns the number
    of epochs completed. If a loss turns non-finite, the parameters are restored to
    ``snapshot`` (their state at the start of that epoch) and the epoch's index is
    returned, so no NaN ever stays behind.
    """
    lr = params.dtype.type(learning_rate)
    n_layers = kinds.size
    last = n_layers - 1
    fuse = kinds[0] == DENSE
    # The first layer with parameters needs no input gradient.
    first_dense = 0
    while kinds[first_dense] != DENSE:
        first_dense += 1
    W0, b0 = _weights(params, p_off, n_out, n_in, first_dense)
    g0 = pending[: n_out[first_dense]]
    n_epochs, n = order.shape
    for e in range(n_epochs):
        snapshot[:] = params
        total = 0.0
        have_pending = False
        prev = 0
        for k in range(n):
            s = order[e, k]
            x = X[s]
            if have_pending:
                _update_and_forward(W0, b0, g0, lr, X[prev], x, _output(acts, a_off, n_out, 0))
                _forward_sample(kinds, n_in, n_out, p_off, a_off, params, x, acts, 1)
            else:
                _forward_sample(kinds, n_in, n_out, p_off, a_off, params, x, acts, 0)
            z = _output(acts, a_off, n_out, last)
            loss = loss_value(loss_kind, Y[s], z)
            if not np.isfinite(loss):
                params[:] = snapshot
                return e
            total += loss
            g = grad_a[: n_out[last]]
            loss_grad(loss_kind, Y[s], z, 1.0, g)
            use_a = True
            for i in range(last, first_dense - 1, -1):
                g = grad_a[: n_out[i]] if use_a else grad_b[: n_out[i]]
                if kinds[i] != DENSE:
                    activation_backward(kinds[i], _output(acts, a_off, n_out, i), g, g)
                elif i == first_dense:
                    if fuse:
                        g0[:] = g
                        have_pending = True
                    else:
                        inp = x if i == 0 else _output(acts, a_off, n_out, i - 1)
                        _update(W0, b0, g, lr, inp)
                else:
                    W, b = _weights(params, p_off, n_out, n_in, i)
                    inp = _output(acts, a_off, n_out, i - 1)
                    gin = grad_b[: n_in[i]] if use_a else grad_a[: n_in[i]]
                    dense_backward_sgd(W, b, inp, g, lr, gin)
                    use_a = not use_a
            prev = s
        if have_pending:
            _update(W0, b0, g0, lr, X[prev])
        mean = total / n
        epoch_loss[e] = mean
    return n_epochs


@serial
def forward_batch(kinds, n_in, n_out, p_off, params, X, Z, work_a, work_b, block):
    """The network's last-layer outputs for every row of X, ``block`` rows at a time
    through matrix-matrix kernels; ``work_a``/``work_b`` hold block × widest layer."""
    n = X.shape[0]
    last = kinds.size - 1
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = stop - start
        src = X[start:stop]
        use_a = True
        for i in range(kinds.size):
            if i == last:
                dst = Z[start:stop]
            elif use_a:
                dst = work_a[: rows * n_out[i]].reshape((rows, n_out[i]))
            else:
                dst = work_b[: rows * n_out[i]].reshape((rows, n_out[i]))
            if kinds[i] == DENSE:
                W, b = _weights(params, p_off, n_out, n_in, i)
                dense_forward_batch(W, b, src, dst)
            else:
                activation_forward(kinds[i], src, dst)
            src = dst
            use_a = not use_a
