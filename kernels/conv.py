"""Conv2D, max-pool and average-pool kernels.

Layouts are PyTorch's: one sample ``x`` is (C, H, W), a batch (N, C, H, W); the
weights ``W`` are (O, C, KH, KW) and the bias ``b`` is (O,); the convolution is a
cross-correlation. ``stride`` is (SH, SW) and ``padding`` is (PH, PW), the zeros
added above and left of the input; the output array's shape fixes the output size,
so a bottom or right padding that differs from the top or left one (``"same"`` with
an even kernel) needs no argument of its own. All arrays are C-contiguous and of one
float dtype; results go into the preallocated ``out`` arrays.

Every one-sample kernel runs on a ``*_flat`` helper that addresses its arrays by
offsets into flat buffers, as the engine calls them. A helper takes the layer's
geometry as one tuple ``geo = (C, H, W, O, KH, KW, SH, SW, PH, PW, HO, WO)``.

How each output is computed, and why:

* Stride 1, one sample (LeNet's case): the "extended row" form. With the input
  zero-padded into a work buffer of width WP, output (i, j) reads the input at
  flat offset i·WP + j + ki·WP + kj, so for one tap (c, ki, kj) the whole output
  plane is one contiguous axpy over p = i·WP + j, p < (HO-1)·WP + WO: a long loop
  that vectorises, instead of HO short rows of WO (8 in LeNet's second layer, too
  short for the vector loop). The WP - WO columns past each row are computed and
  dropped (50 % more work for LeNet's second layer, 17 % for its first: still far
  faster than the short rows). The input gradient scatters the same way from a
  gradient spread to width WP, and each weight gradient is one dot product of
  length (HO-1)·WP + WO.
* Any other stride: direct loops over output rows, clipped to the input at the
  borders (no padded copy).
* Batches: the same one-sample loops, sample by sample; a sample's result is the
  same bits as when it is computed alone, whatever its place in the batch.

Every output element is summed in one fixed order (channel, kernel row, kernel
column, then the bias; the input gradient over output channel, kernel row, kernel
column)
and the loops vectorise across independent output elements, so results do not
depend on how buffers are aligned. The weight-gradient and pooling sums run in the
order of their loops, the same for every call.
"""

from __future__ import annotations

import numpy as np

from .config import serial

# Unsigned offsets, as in dense.py: a signed index gets a wraparound check per element.
U = np.uint64


@serial(inline="always")
def _span(k, stride, pad, n_in, n_out):
    """The outputs j in [lo, hi) whose input j·stride + k - pad lies in [0, n_in)."""
    d = pad - k
    lo = 0 if d <= 0 else (d + stride - 1) // stride
    e = n_in - 1 - k + pad
    hi = 0 if e < 0 else min(e // stride + 1, n_out)
    return lo, max(lo, hi)


@serial(inline="always")
def _extended(geo):
    """Padded input height and width, and the extended plane's length, of the
    stride-1 form."""
    _C, H, W, _O, KH, KW, _SH, _SW, PH, PW, HO, WO = geo
    hp = max(H + PH, HO + KH - 1)
    wp = max(W + PW, WO + KW - 1)
    return hp, wp, (HO - 1) * wp + WO


@serial(inline="always")
def workspace_size(geo):
    """Length of the work buffer the one-sample helpers take for ``geo``: a padded
    input (C·HP·WP) and an extended output plane per output channel (O·HO·WP); 1
    for the strided form, which needs none."""
    C, _H, _W, O, _KH, _KW, SH, SW, _PH, _PW, HO, _WO = geo
    if SH != 1 or SW != 1:
        return 1
    hp, wp, _n = _extended(geo)
    return C * hp * wp + O * HO * wp


@serial(inline="always")
def _pad_into(geo, x, x0, work, hp, wp):
    """work[:C·HP·WP] = the input, zero-padded (stride-1 form)."""
    C, H, W, _O, _KH, _KW, _SH, _SW, PH, PW, _HO, _WO = geo
    zero = work.dtype.type(0)
    for k in range(C * hp * wp):
        work[U(k)] = zero
    for c in range(C):
        for y in range(H):
            src = U(x0 + (c * H + y) * W)
            dst = U((c * hp + y + PH) * wp + PW)
            for j in range(W):
                work[dst + U(j)] = x[src + U(j)]


@serial(inline="always")
def forward_flat(Wt, w0, b, b0, geo, x, x0, out, o0, work):
    """out = W ⋆ x + b for one sample (see the module notes for the two forms)."""
    C, H, W, O, KH, KW, SH, SW, PH, PW, HO, WO = geo
    if SH == 1 and SW == 1:
        hp, wp, n = _extended(geo)
        _pad_into(geo, x, x0, work, hp, wp)
        e0 = C * hp * wp
        zero = work.dtype.type(0)
        for o in range(O):
            ext = U(e0 + o * HO * wp)
            for p in range(n):
                work[ext + U(p)] = zero
            for c in range(C):
                for ki in range(KH):
                    row = U(w0 + ((o * C + c) * KH + ki) * KW)
                    src = U((c * hp + ki) * wp)
                    for kj in range(KW):
                        w = Wt[row + U(kj)]
                        s = src + U(kj)
                        for p in range(n):
                            work[ext + U(p)] += w * work[s + U(p)]
            bias = b[U(b0 + o)]
            for i in range(HO):
                dst = U(o0 + (o * HO + i) * WO)
                e = ext + U(i * wp)
                for j in range(WO):
                    out[dst + U(j)] = bias + work[e + U(j)]
        return
    for o in range(O):
        bias = b[U(b0 + o)]
        for i in range(HO):
            dst = U(o0 + (o * HO + i) * WO)
            for j in range(WO):
                out[dst + U(j)] = work.dtype.type(0)
            for c in range(C):
                for ki in range(KH):
                    y = i * SH + ki - PH
                    if y < 0 or y >= H:
                        continue
                    row = w0 + ((o * C + c) * KH + ki) * KW
                    for kj in range(KW):
                        lo, hi = _span(kj, SW, PW, W, WO)
                        w = Wt[U(row + kj)]
                        src = x0 + (c * H + y) * W + kj - PW
                        for j in range(lo, hi):
                            out[dst + U(j)] += w * x[U(src + j * SW)]
            for j in range(WO):
                out[dst + U(j)] += bias


@serial(inline="always")
def _spread_grad(geo, g, g0, work, e0, wp):
    """work[e0:] = the output gradient, rows spread to width WP, zeros between."""
    _C, _H, _W, O, _KH, _KW, _SH, _SW, _PH, _PW, HO, WO = geo
    zero = work.dtype.type(0)
    for o in range(O):
        for i in range(HO):
            dst = U(e0 + (o * HO + i) * wp)
            src = U(g0 + (o * HO + i) * WO)
            for j in range(WO):
                work[dst + U(j)] = g[src + U(j)]
            for j in range(WO, wp):
                work[dst + U(j)] = zero


@serial(inline="always")
def input_grad_flat(Wt, w0, geo, g, g0, grad_in, i0, work):
    """grad_in = dC/dx for one sample, from the output gradient g."""
    C, H, W, O, KH, KW, SH, SW, PH, PW, HO, WO = geo
    zero = work.dtype.type(0)
    if SH == 1 and SW == 1:
        hp, wp, n = _extended(geo)
        e0 = C * hp * wp
        _spread_grad(geo, g, g0, work, e0, wp)
        for k in range(e0):
            work[U(k)] = zero
        for o in range(O):
            ext = U(e0 + o * HO * wp)
            for c in range(C):
                for ki in range(KH):
                    row = U(w0 + ((o * C + c) * KH + ki) * KW)
                    dst = U((c * hp + ki) * wp)
                    for kj in range(KW):
                        w = Wt[row + U(kj)]
                        d = dst + U(kj)
                        for p in range(n):
                            work[d + U(p)] += w * work[ext + U(p)]
        for c in range(C):
            for y in range(H):
                src = U((c * hp + y + PH) * wp + PW)
                dst = U(i0 + (c * H + y) * W)
                for j in range(W):
                    grad_in[dst + U(j)] = work[src + U(j)]
        return
    for k in range(C * H * W):
        grad_in[U(i0 + k)] = zero
    for o in range(O):
        for i in range(HO):
            src = g0 + (o * HO + i) * WO
            for c in range(C):
                for ki in range(KH):
                    y = i * SH + ki - PH
                    if y < 0 or y >= H:
                        continue
                    row = w0 + ((o * C + c) * KH + ki) * KW
                    for kj in range(KW):
                        lo, hi = _span(kj, SW, PW, W, WO)
                        w = Wt[U(row + kj)]
                        dst = i0 + (c * H + y) * W + kj - PW
                        for j in range(lo, hi):
                            grad_in[U(dst + j * SW)] += w * g[U(src + j)]


@serial(inline="always")
def _bias_grad(geo, g, g0, o):
    _C, _H, _W, _O, _KH, _KW, _SH, _SW, _PH, _PW, HO, WO = geo
    acc = g.dtype.type(0)
    start = U(g0 + o * HO * WO)
    for p in range(HO * WO):
        acc += g[start + U(p)]
    return acc


@serial(inline="always")
def _weight_grad(geo, x, x0, g, g0, o, c, ki, kj, work, e0, hp, wp, n):
    """dC/dW[o, c, ki, kj] for one sample. In the stride-1 form the padded input
    and the spread gradient are already in ``work`` (at 0 and ``e0``)."""
    _C, H, W, _O, _KH, _KW, SH, SW, PH, PW, HO, WO = geo
    acc = g.dtype.type(0)
    if SH == 1 and SW == 1:
        ext = U(e0 + o * HO * wp)
        src = U((c * hp + ki) * wp + kj)
        for p in range(n):
            acc += work[ext + U(p)] * work[src + U(p)]
        return acc
    lo, hi = _span(kj, SW, PW, W, WO)
    for i in range(HO):
        y = i * SH + ki - PH
        if y < 0 or y >= H:
            continue
        grow = g0 + (o * HO + i) * WO
        src = x0 + (c * H + y) * W + kj - PW
        for j in range(lo, hi):
            acc += g[U(grow + j)] * x[U(src + j * SW)]
    return acc


@serial(inline="always")
def _prepare_weight_grad(geo, x, x0, g, g0, work):
    """Fill ``work`` for _weight_grad; returns (e0, hp, wp, n)."""
    C, _H, _W, _O, _KH, _KW, SH, SW, _PH, _PW, _HO, _WO = geo
    if SH == 1 and SW == 1:
        hp, wp, n = _extended(geo)
        _pad_into(geo, x, x0, work, hp, wp)
        e0 = C * hp * wp
        _spread_grad(geo, g, g0, work, e0, wp)
        return e0, hp, wp, n
    return 0, 0, 0, 0


@serial(inline="always")
def weight_grad_acc_flat(geo, x, x0, g, g0, dW, d0, db, db0, work):
    """dW += dC/dW and db += dC/db of one sample (a minibatch sums its samples)."""
    C, _H, _W, O, KH, KW, _SH, _SW, _PH, _PW, _HO, _WO = geo
    e0, hp, wp, n = _prepare_weight_grad(geo, x, x0, g, g0, work)
    for o in range(O):
        db[U(db0 + o)] += _bias_grad(geo, g, g0, o)
        for c in range(C):
            for ki in range(KH):
                row = U(d0 + ((o * C + c) * KH + ki) * KW)
                for kj in range(KW):
                    dW[row + U(kj)] += _weight_grad(
                        geo, x, x0, g, g0, o, c, ki, kj, work, e0, hp, wp, n
                    )


@serial(inline="always")
def update_flat(Wt, w0, b, b0, geo, x, x0, g, g0, lr, work):
    """W -= lr·dC/dW and b -= lr·dC/db for one sample, for a layer whose input
    gradient nobody needs (the first)."""
    C, _H, _W, O, KH, KW, _SH, _SW, _PH, _PW, _HO, _WO = geo
    e0, hp, wp, n = _prepare_weight_grad(geo, x, x0, g, g0, work)
    for o in range(O):
        b[U(b0 + o)] -= lr * _bias_grad(geo, g, g0, o)
        for c in range(C):
            for ki in range(KH):
                row = U(w0 + ((o * C + c) * KH + ki) * KW)
                for kj in range(KW):
                    step = lr * _weight_grad(geo, x, x0, g, g0, o, c, ki, kj, work, e0, hp, wp, n)
                    Wt[row + U(kj)] -= step


@serial(inline="always")
def backward_sgd_flat(Wt, w0, b, b0, geo, x, x0, g, g0, lr, grad_in, i0, work):
    """grad_in = dC/dx with the weights forward used, then W -= lr·dC/dW and
    b -= lr·dC/db."""
    input_grad_flat(Wt, w0, geo, g, g0, grad_in, i0, work)
    update_flat(Wt, w0, b, b0, geo, x, x0, g, g0, lr, work)


# -- pooling -----------------------------------------------------------------------
# Pooling works plane by plane: x is (P, H, W) with P = C for one sample and N·C for a
# batch (a free reshape), and ``pgeo = (P, H, W, KH, KW, SH, SW, HO, WO)``. Windows lie
# inside the input (no padding), as HO = (H - KH) // SH + 1 gives.


@serial(inline="always")
def maxpool_forward_flat(pgeo, x, x0, out, o0, argmax, a0):
    """out = the maximum of each window; argmax = its flat index y·W + x within the
    plane, the first one on ties. A NaN counts as the maximum, as in PyTorch."""
    P, H, W, KH, KW, SH, SW, HO, WO = pgeo
    for q in range(P):
        plane = x0 + q * H * W
        for i in range(HO):
            for j in range(WO):
                first = (i * SH) * W + j * SW
                best = x[U(plane + first)]
                at = first
                for ki in range(KH):
                    row = (i * SH + ki) * W + j * SW
                    for kj in range(KW):
                        v = x[U(plane + row + kj)]
                        if v > best or (v != v and best == best):
                            best = v
                            at = row + kj
                k = (q * HO + i) * WO + j
                out[U(o0 + k)] = best
                argmax[U(a0 + k)] = at


@serial(inline="always")
def maxpool_backward_flat(pgeo, g, g0, argmax, a0, grad_in, i0):
    """grad_in = each output's gradient routed to its window's argmax (summed where
    windows overlap), zero elsewhere."""
    P, H, W, _KH, _KW, _SH, _SW, HO, WO = pgeo
    zero = grad_in.dtype.type(0)
    for k in range(P * H * W):
        grad_in[U(i0 + k)] = zero
    for q in range(P):
        plane = i0 + q * H * W
        for k in range(q * HO * WO, (q + 1) * HO * WO):
            grad_in[U(plane + argmax[U(a0 + k)])] += g[U(g0 + k)]


@serial(inline="always")
def avgpool_forward_flat(pgeo, x, x0, out, o0):
    """out = the mean of each window (its sum in row order, times 1/(KH·KW))."""
    P, H, W, KH, KW, SH, SW, HO, WO = pgeo
    scale = out.dtype.type(1.0 / (KH * KW))
    for q in range(P):
        plane = x0 + q * H * W
        for i in range(HO):
            for j in range(WO):
                acc = out.dtype.type(0)
                for ki in range(KH):
                    row = U(plane + (i * SH + ki) * W + j * SW)
                    for kj in range(KW):
                        acc += x[row + U(kj)]
                out[U(o0 + (q * HO + i) * WO + j)] = acc * scale


@serial(inline="always")
def avgpool_backward_flat(pgeo, g, g0, grad_in, i0):
    """grad_in = each output's gradient / (KH·KW) spread over its window."""
    P, H, W, KH, KW, SH, SW, HO, WO = pgeo
    scale = grad_in.dtype.type(1.0 / (KH * KW))
    zero = grad_in.dtype.type(0)
    for k in range(P * H * W):
        grad_in[U(i0 + k)] = zero
    for q in range(P):
        plane = i0 + q * H * W
        for i in range(HO):
            for j in range(WO):
                share = g[U(g0 + (q * HO + i) * WO + j)] * scale
                for ki in range(KH):
                    row = U(plane + (i * SH + ki) * W + j * SW)
                    for kj in range(KW):
                        grad_in[row + U(kj)] += share


# -- the kernels ---------------------------------------------------------------------


@serial(inline="always")
def _geometry(x, Wt, stride, padding, out):
    """``geo`` of one sample from the shapes of its (C, H, W) input, the weights and
    its (O, HO, WO) output (the last three dimensions of batches)."""
    n = x.ndim
    m = out.ndim
    return (x.shape[n - 3], x.shape[n - 2], x.shape[n - 1], Wt.shape[0], Wt.shape[2],
            Wt.shape[3], stride[0], stride[1], padding[0], padding[1], out.shape[m - 2],
            out.shape[m - 1])  # fmt: skip


@serial(inline="always")
def _pool_geometry(x, kernel, stride, out):
    n = x.ndim
    planes = x.size // (x.shape[n - 2] * x.shape[n - 1])
    return (planes, x.shape[n - 2], x.shape[n - 1], kernel[0], kernel[1], stride[0],
            stride[1], out.shape[n - 2], out.shape[n - 1])  # fmt: skip


@serial(inline="always")
def _work(geo, dtype_of):
    return np.empty(workspace_size(geo), dtype_of.dtype)


@serial
def conv2d_forward(x, W, b, stride, padding, out):
    """out (O, HO, WO) = W ⋆ x + b for one sample x (C, H, W)."""
    geo = _geometry(x, W, stride, padding, out)
    forward_flat(W.reshape(-1), 0, b, 0, geo, x.reshape(-1), 0, out.reshape(-1), 0, _work(geo, x))


@serial
def conv2d_forward_batch(x, W, b, stride, padding, out):
    """out (N, O, HO, WO) = W ⋆ x + b for a batch x (N, C, H, W), sample by sample."""
    geo = _geometry(x, W, stride, padding, out)
    work = _work(geo, x)
    xf, of, wf = x.reshape(-1), out.reshape(-1), W.reshape(-1)
    n_in, n_out = x[0].size, out[0].size
    for s in range(x.shape[0]):
        forward_flat(wf, 0, b, 0, geo, xf, s * n_in, of, s * n_out, work)


@serial
def conv2d_input_grad(W, grad_out, stride, padding, out):
    """out (C, H, W) = dC/dx of one sample from its output gradient (O, HO, WO)."""
    geo = _geometry(out, W, stride, padding, grad_out)
    input_grad_flat(W.reshape(-1), 0, geo, grad_out.reshape(-1), 0, out.reshape(-1), 0,
                    _work(geo, out))  # fmt: skip


@serial
def conv2d_input_grad_batch(W, grad_out, stride, padding, out):
    """out (N, C, H, W) = dC/dx of each sample of a batch."""
    geo = _geometry(out, W, stride, padding, grad_out)
    work = _work(geo, out)
    gf, of, wf = grad_out.reshape(-1), out.reshape(-1), W.reshape(-1)
    n_in, n_out = out[0].size, grad_out[0].size
    for s in range(out.shape[0]):
        input_grad_flat(wf, 0, geo, gf, s * n_out, of, s * n_in, work)


@serial
def conv2d_weight_grad_acc(x, grad_out, stride, padding, dW, db):
    """dW += dC/dW and db += dC/db of one sample x (C, H, W)."""
    geo = _geometry(x, dW, stride, padding, grad_out)
    weight_grad_acc_flat(geo, x.reshape(-1), 0, grad_out.reshape(-1), 0, dW.reshape(-1), 0,
                         db, 0, _work(geo, x))  # fmt: skip


@serial
def conv2d_weight_grad_batch(x, grad_out, stride, padding, dW, db):
    """dW, db = the sums of dC/dW and dC/db over a batch x (N, C, H, W), added
    sample by sample in batch order."""
    geo = _geometry(x, dW, stride, padding, grad_out)
    work = _work(geo, x)
    xf, gf, df = x.reshape(-1), grad_out.reshape(-1), dW.reshape(-1)
    zero = dW.dtype.type(0)
    df[:] = zero
    db[:] = zero
    n_in, n_out = x[0].size, grad_out[0].size
    for s in range(x.shape[0]):
        weight_grad_acc_flat(geo, xf, s * n_in, gf, s * n_out, df, 0, db, 0, work)


@serial
def conv2d_backward_sgd(x, W, b, grad_out, stride, padding, learning_rate, grad_in):
    """One sample's backward step: grad_in = dC/dx with the weights forward used,
    then W -= lr·dC/dW and b -= lr·dC/db in place."""
    geo = _geometry(x, W, stride, padding, grad_out)
    lr = W.dtype.type(learning_rate)
    backward_sgd_flat(W.reshape(-1), 0, b, 0, geo, x.reshape(-1), 0, grad_out.reshape(-1), 0,
                      lr, grad_in.reshape(-1), 0, _work(geo, x))  # fmt: skip


@serial
def maxpool2d_forward(x, kernel, stride, out, argmax):
    """out = max over each (KH, KW) window of x (..., H, W), every ``stride``;
    argmax (int64, out's shape) = the flat index y·W + x of that maximum in its plane."""
    pgeo = _pool_geometry(x, kernel, stride, out)
    maxpool_forward_flat(pgeo, x.reshape(-1), 0, out.reshape(-1), 0, argmax.reshape(-1), 0)


@serial
def maxpool2d_backward(grad_out, argmax, grad_in):
    """grad_in (..., H, W) = grad_out routed to each window's recorded maximum."""
    n = grad_in.ndim
    H, W = grad_in.shape[n - 2], grad_in.shape[n - 1]
    pgeo = (grad_in.size // (H * W), H, W, 1, 1, 1, 1, grad_out.shape[n - 2],
            grad_out.shape[n - 1])  # fmt: skip
    maxpool_backward_flat(pgeo, grad_out.reshape(-1), 0, argmax.reshape(-1), 0,
                          grad_in.reshape(-1), 0)  # fmt: skip


@serial
def avgpool2d_forward(x, kernel, stride, out):
    """out = the mean over each (KH, KW) window of x (..., H, W), every ``stride``."""
    pgeo = _pool_geometry(x, kernel, stride, out)
    avgpool_forward_flat(pgeo, x.reshape(-1), 0, out.reshape(-1), 0)


@serial
def avgpool2d_backward(grad_out, kernel, stride, grad_in):
    """grad_in (..., H, W) = each output's gradient shared equally over its window."""
    pgeo = _pool_geometry(grad_in, kernel, stride, grad_out)
    avgpool_backward_flat(pgeo, grad_out.reshape(-1), 0, grad_in.reshape(-1), 0)
