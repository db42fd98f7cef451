"""The loss and its gradient over a whole training set, in one compiled call.

``fullbatch_loss_grad`` runs the plan (see ``engine``) forward and backward over every
row of X, ``block`` rows at a time through matrix-matrix products, and returns the
summed, per-sample weighted loss Σ wᵢ·ℓ(yᵢ, f(xᵢ)) while it writes the gradient of
that sum with respect to the whole parameter buffer into ``grad``. Sums, not means:
the results of parts of a data set add up to the result of the whole, whichever
machine computed each part. Full-batch solvers (L-BFGS) call it once per evaluation.

Here a block holds its samples in rows: layer i's output for the block is the
(rows, n_out[i]) matrix at ``block * a_off[i]`` of ``acts``.

X comes dense, or as CSR arrays (``data``, ``indices``, ``indptr``) when the first
layer is Dense: its product is then sparse × dense, and X is never densified. The
unused form is passed empty (a dense X of shape (0, n_features), or ``indptr`` of
size 0).

``loss_kind`` is one of ``losses``' kinds, or ``POISSON``: the Poisson deviance of
exp(z) (the constant y·log y − y included), whose gradient is exp(z) − y.
"""

from __future__ import annotations

import numpy as np

from ..codes import DENSE
from . import losses
from .activations import activation_backward, activation_forward, copy_flat
from .config import serial

POISSON = 3


@serial
def _rows(buf, offset, rows, cols):
    return buf[offset : offset + rows * cols].reshape((rows, cols))


@serial
def _layer(params, p_off, n_out, n_in, i):
    """Layer i's W (n_out, n_in) and b as views of the parameter buffer."""
    start = p_off[i]
    stop = start + n_out[i] * n_in[i]
    return params[start:stop].reshape((n_out[i], n_in[i])), params[stop : stop + n_out[i]]


@serial
def _csr_product(data, indices, indptr, samples, WT, Z):
    """Z = X[samples] · W.T for CSR X, with WT = W.T laid out (n_in, n_out)."""
    h = Z.shape[1]
    zero = Z.dtype.type(0)
    for r in range(samples.size):
        z = Z[r]
        for j in range(h):
            z[j] = zero
        s = samples[r]
        for p in range(indptr[s], indptr[s + 1]):
            v = data[p]
            w = WT[indices[p]]
            for j in range(h):
                z[j] += v * w[j]


@serial
def _csr_weight_grad(data, indices, indptr, samples, G, gT):
    """gT += X[samples].T · G for CSR X: gT is dW transposed, (n_in, n_out)."""
    h = G.shape[1]
    for r in range(samples.size):
        g = G[r]
        s = samples[r]
        for p in range(indptr[s], indptr[s + 1]):
            v = data[p]
            out = gT[indices[p]]
            for j in range(h):
                out[j] += v * g[j]


@serial
def _loss_rows(kind, Y, Z, sw, G):
    """Σ sw[r]·ℓ(Y[r], Z[r]) over the block's rows; G[r] = sw[r]·dℓ/dz."""
    rows, k = Z.shape
    yf = Y.reshape(-1)
    zf = Z.reshape(-1)
    gf = G.reshape(-1)
    total = 0.0
    for r in range(rows):
        w = sw[r]
        if kind == POISSON:
            acc = 0.0
            for j in range(k):
                z = zf[r * k + j]
                y = yf[r * k + j]
                mu = np.exp(z)
                acc += mu - y * z
                if y > 0:
                    acc += y * np.log(y) - y
                else:
                    acc -= y
                gf[r * k + j] = w * (mu - y)
            total += w * acc
        else:
            total += w * losses.loss_value_flat(kind, yf, r * k, zf, r * k, k)
            losses.loss_grad_flat(kind, yf, r * k, zf, r * k, k, w, gf, r * k)
    return total


@serial
def fullbatch_loss_grad(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, data, indices,
                        indptr, Y, sw, samples, loss_kind, block, grad, acts, delta_a, delta_b,
                        tmp, WT, gT, xb, yb, wb):  # fmt: skip
    """Σᵢ sw[i]·ℓ(Y[i], f(X[i])) over the rows i in ``samples``, returned as a float;
    its gradient with respect to ``params`` is written into ``grad`` (laid out as
    ``params``).

    Buffers, all of the parameters' dtype: ``acts`` block·(a_off[-1] + n_out[-1]);
    ``delta_a`` and ``delta_b`` block·(widest layer); ``tmp`` the largest n_out·n_in;
    ``WT`` and ``gT`` n_in[0]·n_out[0] for CSR X (else empty); ``xb`` block·n_in[0]
    for dense X (else empty), ``yb`` block·n_outputs and ``wb`` block, where each
    block's rows are gathered.
    """
    dt = params.dtype
    sparse = indptr.size > 0
    n = samples.size
    nf = n_in[0]
    xf = X.reshape(-1)
    yf = Y.reshape(-1)
    last = kinds.size - 1
    k = n_out[last]
    first_dense = 0
    while kinds[first_dense] != DENSE:
        first_dense += 1
    for i in range(grad.size):
        grad[i] = dt.type(0)
    if sparse:
        W0, _ = _layer(params, p_off, n_out, n_in, 0)
        WTm = WT.reshape((n_in[0], n_out[0]))
        WTm[:, :] = W0.T
        gTm = gT.reshape((n_in[0], n_out[0]))
        gTm[:, :] = dt.type(0)
    total = 0.0
    for start in range(0, n, block):
        rows = min(block, n - start)
        ids = samples[start : start + rows]
        # Rows in order (all of a full batch) are read in place; others are gathered.
        s0 = ids[0]
        in_order = ids[rows - 1] - s0 == rows - 1
        for t in range(1, rows if in_order else 0):
            if ids[t] != s0 + t:
                in_order = False
                break
        if in_order:
            Xb = _rows(xf, s0 * nf, 0 if sparse else rows, nf)
            Yb = _rows(yf, s0 * k, rows, k)
            Wb = sw[s0 : s0 + rows]
        else:
            Xb = _rows(xb, 0, 0 if sparse else rows, nf)
            Yb = _rows(yb, 0, rows, k)
            Wb = wb[:rows]
            for t in range(rows):
                s = ids[t]
                if not sparse:
                    copy_flat(xf, s * nf, xb, t * nf, nf)
                copy_flat(yf, s * k, yb, t * k, k)
                wb[t] = sw[s]
        # forward
        for i in range(kinds.size):
            Z = _rows(acts, block * a_off[i], rows, n_out[i])
            if kinds[i] == DENSE:
                W, b = _layer(params, p_off, n_out, n_in, i)
                if i == 0 and sparse:
                    _csr_product(data, indices, indptr, ids, WTm, Z)
                elif i == 0:
                    np.dot(Xb, W.T, Z)
                else:
                    np.dot(_rows(acts, block * a_off[i - 1], rows, n_in[i]), W.T, Z)
                for r in range(rows):
                    z = Z[r]
                    for j in range(n_out[i]):
                        z[j] += b[j]
            elif i == 0:
                copy_flat(Xb.reshape(-1), 0, acts, 0, rows * n_out[0])
                activation_forward(kinds[0], Z, Z, hyp[0, 0])
            else:
                activation_forward(kinds[i], _rows(acts, block * a_off[i - 1], rows, n_in[i]), Z,
                                   hyp[i, 0])  # fmt: skip
        # loss, and its gradient at the output
        G = _rows(delta_a, 0, rows, k)
        total += _loss_rows(loss_kind, Yb, _rows(acts, block * a_off[last], rows, k),
                            Wb, G)  # fmt: skip
        # backward
        use_a = True
        for i in range(last, first_dense - 1, -1):
            if kinds[i] != DENSE:
                activation_backward(kinds[i], _rows(acts, block * a_off[i], rows, n_out[i]), G, G,
                                    hyp[i, 0])  # fmt: skip
                continue
            W, _ = _layer(params, p_off, n_out, n_in, i)
            dW, db = _layer(grad, p_off, n_out, n_in, i)
            if i == 0 and sparse:
                _csr_weight_grad(data, indices, indptr, ids, G, gTm)
            else:
                A = Xb if i == 0 else _rows(acts, block * a_off[i - 1], rows, n_in[i])
                T = _rows(tmp, 0, n_out[i], n_in[i])
                np.dot(G.T, A, T)
                dW += T
            for r in range(rows):
                g = G[r]
                for j in range(n_out[i]):
                    db[j] += g[j]
            if i > first_dense:
                Gin = _rows(delta_b if use_a else delta_a, 0, rows, n_in[i])
                np.dot(G, W, Gin)
                G = Gin
                use_a = not use_a
    if sparse:
        dW0, _ = _layer(grad, p_off, n_out, n_in, 0)
        dW0 += gTm.T
    return total
