"""NumPy twin of ``fastnn.kernels.fullbatch``: the whole-data-set loss and gradient,
plainly, on every row at once. The workspace buffers and ``block`` are accepted and
ignored."""

from __future__ import annotations

import numpy as np

from ..codes import DENSE
from .activations import activation_backward, activation_forward
from .engine import _layers
from .losses import loss_grad, loss_value

POISSON = 3


def _loss_rows(kind, Y, Z, sw, G):
    if kind == POISSON:
        mu = np.exp(Z)
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1)), 0)
        G[...] = sw[:, None] * (mu - Y)
        return float(np.sum(sw * np.sum(mu - Y * Z + ylogy - Y, axis=1, dtype=np.float64)))
    total = 0.0
    for r in range(Z.shape[0]):
        total += float(sw[r]) * loss_value(kind, Y[r], Z[r])
        loss_grad(kind, Y[r], Z[r], float(sw[r]), G[r])
    return total


def fullbatch_loss_grad(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, data, indices,
                        indptr, Y, sw, samples, loss_kind, block, grad, acts, delta_a, delta_b,
                        tmp, WT, gT, xb, yb, wb):  # fmt: skip
    if indptr.size > 0:
        import scipy.sparse as sp  # only sparse inputs need it; predict stays light

        X = sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, int(n_in[0])))
    X, Y, sw = X[samples], Y[samples], sw[samples]
    layers = _layers(kinds, n_in, n_out, p_off, hyp, params)
    grads = _layers(kinds, n_in, n_out, p_off, hyp, grad)
    outputs = []
    x = X
    for kind, W, b, alpha in layers:
        if kind == DENSE:
            x = np.asarray(x @ W.T) + b
        else:
            y = np.empty_like(x)
            activation_forward(kind, x, y, alpha)
            x = y
        outputs.append(x)
    G = np.empty_like(outputs[-1])
    total = _loss_rows(loss_kind, Y, outputs[-1], sw, G)
    grad[:] = 0
    first = next(i for i, k in enumerate(kinds) if k == DENSE)
    for i in range(len(layers) - 1, first - 1, -1):
        kind, W, _, alpha = layers[i]
        if kind != DENSE:
            activation_backward(kind, outputs[i], G, G, alpha)
            continue
        A = X if i == 0 else outputs[i - 1]
        _, dW, db, _ = grads[i]
        dW[...] = np.asarray(G.T @ A)
        db[...] = G.sum(axis=0)
        G = G @ W
    return total
