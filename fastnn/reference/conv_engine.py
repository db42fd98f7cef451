"""NumPy twin of ``fastnn.kernels.conv_engine``: convolutional networks, one sample at
a time, on the NumPy layer twins. Same signatures as the kernels."""

from __future__ import annotations

import numpy as np

from ..codes import AVGPOOL2D, CONV2D, DENSE, DROPOUT, FLATTEN, MAXPOOL2D
from . import conv
from .activations import activation_backward, activation_forward
from .engine import EpochState, _close_epoch
from .losses import loss_grad, loss_value
from .optimizers import optimizer_step


def keep_units(seed: int, counters: np.ndarray, rate: float) -> np.ndarray:
    """The kernels' ``keep_unit`` for an array of counters (SplitMix64's finaliser)."""
    z = np.uint64(seed) + counters.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53 >= rate


def _layer(i, kinds, n_out, p_off, cfg, params):
    """Layer i's (W, b, stride, padding, kernel, input shape, output shape)."""
    c = [int(v) for v in cfg[i]]
    if kinds[i] == CONV2D:
        C, H, W, O, KH, KW, SH, SW, PH, PW, HO, WO = c
        n_w = O * C * KH * KW
        off = p_off[i]
        Wt = params[off : off + n_w].reshape(O, C, KH, KW)
        return Wt, params[off + n_w : off + n_w + O], (SH, SW), (PH, PW), (C, H, W), (O, HO, WO)
    C, H, W, KH, KW, SH, SW, HO, WO = c[:9]
    return None, None, (SH, SW), (KH, KW), (C, H, W), (C, HO, WO)


def _forward(kinds, n_in, n_out, p_off, cfg, hyp, params, x, seed, key, n_acts, a_off):
    """Every layer's output (flat) for one flat sample x, and the dropout masks and
    max-pool argmaxes by layer. ``key`` None: inference."""
    outs, saved = [], {}
    for i, kind in enumerate(kinds):
        if kind == DENSE:
            o, m = n_out[i], n_in[i]
            W = params[p_off[i] : p_off[i] + o * m].reshape(o, m)
            x = W @ x + params[p_off[i] + o * m : p_off[i] + o * m + o]
        elif kind in (CONV2D, MAXPOOL2D, AVGPOOL2D):
            W, b, stride, second, in_shape, out_shape = _layer(i, kinds, n_out, p_off, cfg, params)
            y = np.empty(out_shape, params.dtype)
            xi = x.reshape(in_shape)
            if kind == CONV2D:
                conv.conv2d_forward(xi, W, b, stride, second, y)
            elif kind == MAXPOOL2D:
                arg = np.empty(out_shape, np.int64)
                conv.maxpool2d_forward(xi, second, stride, y, arg)
                saved[i] = arg
            else:
                conv.avgpool2d_forward(xi, second, stride, y)
            x = y.reshape(-1)
        elif kind == FLATTEN or (kind == DROPOUT and (key is None or hyp[i, 0] == 0)):
            x = x.copy()
        elif kind == DROPOUT:
            rate = hyp[i, 0]
            keep = keep_units(seed, key + a_off[i] + np.arange(x.size), rate)
            mask = keep * params.dtype.type(1.0 / (1.0 - rate))
            saved[i] = mask
            x = x * mask
        else:
            y = np.empty_like(x)
            activation_forward(kind, x, y, hyp[i, 0])
            x = y
        outs.append(x)
    return outs, saved


def forward_conv(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Z):
    for r in range(X.shape[0]):
        outs, _ = _forward(kinds, n_in, n_out, p_off, cfg, hyp, params, X[r], 0, None, 0, a_off)
        Z[r] = outs[-1]
    return bool(np.isfinite(X).all())


def _backward(kinds, n_in, n_out, p_off, cfg, hyp, params, x, outs, saved, g, lr, grads=None):
    """Back through the layers from the loss gradient g: each layer with parameters
    takes its SGD step, or, given ``grads`` (laid out as ``params``), adds its
    gradient there and leaves the weights as they are."""
    lowest = int(np.flatnonzero(p_off >= 0)[0])
    for i in range(len(kinds) - 1, lowest - 1, -1):
        kind = kinds[i]
        src = x if i == 0 else outs[i - 1]
        if kind == DENSE:
            o, m = n_out[i], n_in[i]
            W = params[p_off[i] : p_off[i] + o * m].reshape(o, m)
            b = params[p_off[i] + o * m : p_off[i] + o * m + o]
            gin = g @ W
            if grads is None:
                W -= lr * np.outer(g, src)
                b -= lr * g
            else:
                grads[p_off[i] : p_off[i] + o * m] += np.outer(g, src).reshape(-1)
                grads[p_off[i] + o * m : p_off[i] + o * m + o] += g
            g = gin
        elif kind == CONV2D:
            W, b, stride, padding, in_shape, out_shape = _layer(i, kinds, n_out, p_off, cfg, params)
            gin = np.empty(in_shape, params.dtype)
            xi, gi = src.reshape(in_shape), g.reshape(out_shape)
            if grads is None:
                conv.conv2d_backward_sgd(xi, W, b, gi, stride, padding, lr, gin)
            else:
                dW, db, *_ = _layer(i, kinds, n_out, p_off, cfg, grads)
                conv.conv2d_input_grad(W, gi, stride, padding, gin)
                conv.conv2d_weight_grad_acc(xi, gi, stride, padding, dW, db)
            g = gin.reshape(-1)
        elif kind in (MAXPOOL2D, AVGPOOL2D):
            _, _, stride, kernel, in_shape, out_shape = _layer(i, kinds, n_out, p_off, cfg, params)
            gin = np.empty(in_shape, params.dtype)
            if kind == MAXPOOL2D:
                conv.maxpool2d_backward(g.reshape(out_shape), saved[i], gin)
            else:
                conv.avgpool2d_backward(g.reshape(out_shape), kernel, stride, gin)
            g = gin.reshape(-1)
        elif kind == DROPOUT:
            g = g * saved[i] if i in saved else g
        elif kind != FLATTEN:
            out = np.empty_like(g)
            activation_backward(kind, outs[i], g, out, hyp[i, 0])
            g = out


@np.errstate(over="ignore", invalid="ignore")
def fit_sgd_conv(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order,
                 learning_rate, loss_kind, seed, epoch_loss, snapshot, stop):  # fmt: skip
    lr = params.dtype.type(learning_rate)
    n_acts = int(a_off[-1] + n_out[-1])
    n = order.shape[1]
    for e, idx in enumerate(order):
        snapshot[:] = params
        total = 0.0
        for t, s in enumerate(idx):
            if stop[0]:
                params[:] = snapshot
                return e
            key = (e * n + t) * n_acts
            outs, saved = _forward(kinds, n_in, n_out, p_off, cfg, hyp, params, X[s], seed, key,
                                   n_acts, a_off)  # fmt: skip
            loss = loss_value(loss_kind, Y[s], outs[-1])
            total += loss
            if not np.isfinite(loss):
                break
            g = np.empty_like(outs[-1])
            loss_grad(loss_kind, Y[s], outs[-1], 1.0, g)
            _backward(kinds, n_in, n_out, p_off, cfg, hyp, params, X[s], outs, saved, g, lr)
        if not (np.isfinite(total) and np.isfinite(params).all()):
            params[:] = snapshot
            return e
        epoch_loss[e] = total / n
    return order.shape[0]


def _weights_mask(kinds, n_in, n_out, p_off, cfg, size):
    """True at the weights in the parameter buffer, False at the biases."""
    mask = np.zeros(size, bool)
    for i, kind in enumerate(kinds):
        if kind == DENSE:
            mask[p_off[i] : p_off[i] + n_out[i] * n_in[i]] = True
        elif kind == CONV2D:
            C, _, _, O, KH, KW = (int(v) for v in cfg[i, :6])
            mask[p_off[i] : p_off[i] + O * C * KH * KW] = True
    return mask


@np.errstate(over="ignore", invalid="ignore")
def fit_minibatch_conv(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order, batch,
                       learning_rates, loss_kind, l2, opt_kind, hyper, state_a, state_b, step,
                       seed, epoch_loss, snapshot, stop):  # fmt: skip
    n_acts = int(a_off[-1] + n_out[-1])
    n = order.shape[1]
    grads = np.empty_like(params)
    decay = params.dtype.type(l2) * _weights_mask(kinds, n_in, n_out, p_off, cfg, params.size)
    epoch = EpochState(params, state_a, state_b, step, snapshot)
    for e, idx in enumerate(order):
        epoch.save()
        total = 0.0
        for start in range(0, n, batch):
            if stop[0]:
                return epoch.restore(e)
            rows = idx[start : start + batch]
            grads[:] = 0
            for t, s in enumerate(rows, start):
                key = (e * n + t) * n_acts
                outs, masks = _forward(kinds, n_in, n_out, p_off, cfg, hyp, params, X[s], seed,
                                       key, n_acts, a_off)  # fmt: skip
                loss = loss_value(loss_kind, Y[s], outs[-1])
                total += loss
                if not np.isfinite(loss):
                    return epoch.restore(e)
                g = np.empty_like(outs[-1])
                loss_grad(loss_kind, Y[s], outs[-1], 1.0 / len(rows), g)
                _backward(kinds, n_in, n_out, p_off, cfg, hyp, params, X[s], outs, masks, g, 0,
                          grads)  # fmt: skip
            grads += decay * params
            step[0] += 1
            optimizer_step(opt_kind, params, grads, state_a, state_b, learning_rates[e], hyper,
                           step[0])  # fmt: skip
        if not _close_epoch(total, e, n, params, epoch.saved[0], epoch_loss):
            return epoch.restore(e)
    return order.shape[0]
