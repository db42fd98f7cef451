"""NumPy twin of ``fastnn.kernels.engine``: the design's training loop, plainly.

Same signatures as the kernels (declared in ``fastnn.backends.Backend``). Knobs that
only shape the compiled engine's memory traffic (``fit_sgd_blocked``'s ``block``, the
predict ``block`` and its workspace) are accepted and ignored: this twin does each
step exactly as the design states it.
"""

from __future__ import annotations

import numpy as np

from ..codes import DENSE
from .activations import activation_backward, activation_forward
from .losses import batch_loss, batch_loss_grad, loss_grad, loss_value
from .optimizers import optimizer_step


def _layers(kinds, n_in, n_out, p_off, hyp, params):
    """(kind, W, b, alpha) per layer: W and b views into ``params`` (None for
    activations), alpha an activation's float setting."""
    out = []
    for kind, i, o, off, alpha in zip(kinds, n_in, n_out, p_off, hyp[:, 0], strict=True):
        if kind == DENSE:
            W = params[off : off + o * i].reshape(o, i)
            b = params[off + o * i : off + o * i + o]
            out.append((kind, W, b, alpha))
        else:
            out.append((kind, None, None, alpha))
    return out


def _forward(layers, x):
    """Every layer's output for input x (one sample or a batch of rows)."""
    outputs = []
    for kind, W, b, alpha in layers:
        if kind == DENSE:
            x = x @ W.T + b
        else:
            y = np.empty_like(x)
            activation_forward(kind, x, y, alpha)
            x = y
        outputs.append(x)
    return outputs


def _close_epoch(total, e, n, params, snapshot, epoch_loss):
    if not (np.isfinite(total) and np.isfinite(params).all()):
        params[:] = snapshot
        return False
    epoch_loss[e] = total / n
    return True


def _first_dense(kinds):
    return next(i for i, k in enumerate(kinds) if k == DENSE)


# Overflow is expected in a diverging run: the epoch check reports it as an error.
@np.errstate(over="ignore", invalid="ignore")
def fit_sgd(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order, learning_rate,
            loss_kind, epoch_loss, snapshot, stop):  # fmt: skip
    layers = _layers(kinds, n_in, n_out, p_off, hyp, params)
    first = _first_dense(kinds)
    lr = params.dtype.type(learning_rate)
    for e, idx in enumerate(order):
        snapshot[:] = params
        total = 0.0
        for s in idx:
            if stop[0]:
                params[:] = snapshot
                return e
            outputs = _forward(layers, X[s])
            loss = loss_value(loss_kind, Y[s], outputs[-1])
            if not np.isfinite(loss):
                params[:] = snapshot
                return e
            total += loss
            g = np.empty_like(outputs[-1])
            loss_grad(loss_kind, Y[s], outputs[-1], 1.0, g)
            for i in range(len(layers) - 1, first - 1, -1):
                kind, W, b, alpha = layers[i]
                if kind != DENSE:
                    activation_backward(kind, outputs[i], g, g, alpha)
                    continue
                x = X[s] if i == 0 else outputs[i - 1]
                g_in = W.T @ g
                W -= lr * np.outer(g, x)
                b -= lr * g
                g = g_in
        if not _close_epoch(total, e, len(idx), params, snapshot, epoch_loss):
            return e
    return len(order)


def fit_sgd_blocked(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order,
                    learning_rate, loss_kind, block, epoch_loss, snapshot, stop):  # fmt: skip
    # Blocking changes only the kernel's memory traffic, not the arithmetic.
    return fit_sgd(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order,
                   learning_rate, loss_kind, epoch_loss, snapshot, stop)  # fmt: skip


class EpochState:
    """The weights, both optimizer buffers and the step count at an epoch's start, kept
    in ``snapshot`` (3 × params.size values) so that a diverging or stopped epoch can
    put all four back."""

    def __init__(self, params, state_a, state_b, step, snapshot):
        self.live = (params, state_a, state_b)
        self.saved = snapshot.reshape(3, -1)
        self.step = step
        self.step0 = int(step[0])

    def save(self) -> None:
        for buffer, copy in zip(self.live, self.saved, strict=True):
            copy[:] = buffer
        self.step0 = int(self.step[0])

    def restore(self, epoch: int) -> int:
        """Put the epoch's starting state back; returns ``epoch`` (the epochs completed)."""
        for buffer, copy in zip(self.live, self.saved, strict=True):
            buffer[:] = copy
        self.step[0] = self.step0
        return epoch


@np.errstate(over="ignore", invalid="ignore")
def fit_minibatch(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order, batch,
                  learning_rates, loss_kind, l2, opt_kind, hyper, state_a, state_b, step,
                  epoch_loss, snapshot, stop):  # fmt: skip
    layers = _layers(kinds, n_in, n_out, p_off, hyp, params)
    first = _first_dense(kinds)
    grads = np.zeros_like(params)
    grad_layers = _layers(kinds, n_in, n_out, p_off, hyp, grads)
    epoch = EpochState(params, state_a, state_b, step, snapshot)
    for e, idx in enumerate(order):
        epoch.save()
        total = 0.0
        for start in range(0, len(idx), batch):
            if stop[0]:
                return epoch.restore(e)
            rows = idx[start : start + batch]
            Xb, Yb = X[rows], Y[rows]
            outputs = _forward(layers, Xb)
            loss = batch_loss(loss_kind, Yb, outputs[-1])
            if not np.isfinite(loss):
                return epoch.restore(e)
            total += loss * len(rows)
            G = np.empty_like(outputs[-1])
            batch_loss_grad(loss_kind, Yb, outputs[-1], G)
            for i in range(len(layers) - 1, first - 1, -1):
                kind, W, _, alpha = layers[i]
                if kind != DENSE:
                    activation_backward(kind, outputs[i], G, G, alpha)
                    continue
                _, dW, db, _ = grad_layers[i]
                dW[...] = G.T @ (Xb if i == 0 else outputs[i - 1]) + params.dtype.type(l2) * W
                db[...] = G.sum(axis=0)
                G = G @ W
            step[0] += 1
            optimizer_step(
                opt_kind, params, grads, state_a, state_b, learning_rates[e], hyper, step[0]
            )
        if not _close_epoch(total, e, len(idx), params, epoch.saved[0], epoch_loss):
            return epoch.restore(e)
    return len(order)


@np.errstate(over="ignore", invalid="ignore")
def forward_batch(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Z, acts, block):
    Z[...] = _forward(_layers(kinds, n_in, n_out, p_off, hyp, params), X)[-1]
    return bool(np.isfinite(X).all())
