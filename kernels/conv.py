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

* Stride 1 (LeNet's case): the "extended row" form. With the input zero-padded
  into a work buffer of width WP, output (i, j) reads the input at flat offset
  p + ki·WP + kj, p = i·WP + j, so for one tap (c, ki, kj) the whole output plane
  is one contiguous multiply-add over p < (HO-1)·WP + WO: a long loop that
  vectorises, instead of HO rows of WO (8 in LeNet's second layer, too short for
  the vector loop). The WP - WO columns past each row are computed and dropped,
  and the length is rounded up to a whole number of the vector loop's blocks
  (``BLOCK``), so that no element falls to its scalar remainder (LeNet's second
  layer: 92 -> 96). Four taps and four output channels share each pass of the
  forward sum (``conv_tiles.madd4x4``; two or one channel for the last ones when
  O is not a multiple of four): each input value loaded feeds four channels, and
  each accumulator is loaded and stored once per four taps. The input gradient is
  the same sum run the other way: for each input tap, eight (then four, then one)
  output channels' gradients spread to width WP per pass (``madd8``). Each weight
  gradient is a dot product over p, four taps of two output channels per pass
  (``dot4x2``; ``dot4`` for an odd last channel). Which loop runs depends only on
  the shapes, so every result is the same bits on every call. The taps are walked
  by a cursor (``_next_tap``): an integer division per tap cost more than its
  multiply-adds in LeNet's second layer.
* Any other stride: direct loops over output rows, clipped to the input at the
  borders (no padded copy).
* Batches: the same one-sample loops, sample by sample; a sample's result is the
  same bits as when it is computed alone, whatever its place in the batch. A
  straightforward lowering onto BLAS (im2col, then one sgemm over a batch of 64)
  measured slower on LeNet's layers, one thread: 1.5x the time of these loops for
  the second convolution's forward pass and 8x for the first (C = 1: the copy
  into columns costs more than the product saves). A whole minibatch lowered
  onto BLAS was measured as well, end to end: every layer's batch held
  plane-major, (C, rows, HO·WO), so that each Conv2D is one sgemm over the
  batch's im2col columns (weight gradient columns·Gᵀ, input gradient Wᵀ·G and
  col2im) and each Dense one sgemm as in ``minibatch``. On LeNet-5 (float32, one
  thread, CPU time per sample over 1,024 samples) it tied these loops at batch
  64 (median 69.3 and 80.3 µs against 71.1 and 79.1 µs in two runs) and lost at
  batch 128 (88.4 against 71.4 µs: the columns no longer stay in cache), so
  batches keep these loops. LeNet's products are too skinny for sgemm to run
  near its peak: 6 or 16 output channels, an inner dimension of 25 in the first
  convolution's forward pass and 16 in the second's input gradient.

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
from .conv_tiles import dot4, dot4x2, madd1, madd4, madd4x2, madd4x4, madd8

# Unsigned offsets, as in dense.py: a signed index gets a wraparound check per element.
U = np.uint64


#: Length multiple of the extended rows: LLVM's float32 vector loop on AVX2 takes 32
#: values per iteration (8 lanes, 4 interleaved), and a remainder runs scalar.
BLOCK = 32


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
    """Stride-1 form: the padded input's height and width, the extended plane's
    length rounded up to BLOCK, and where the extended planes start in the work
    buffer (after the padded input and one BLOCK of slack for the rounded loops)."""
    C, H, W, _O, KH, KW, _SH, _SW, PH, PW, HO, WO = geo
    hp = max(H + PH, HO + KH - 1)
    wp = max(W + PW, WO + KW - 1)
    n = ((HO - 1) * wp + WO + BLOCK - 1) // BLOCK * BLOCK
    return hp, wp, n, C * hp * wp + BLOCK


@serial(inline="always")
def workspace_size(geo):
    """Length of the work buffer the one-sample helpers take for ``geo``: a padded
    input and an extended plane per output channel; 1 for the strided form."""
    O, SH, SW = geo[3], geo[6], geo[7]
    if SH != 1 or SW != 1:
        return 1
    _hp, _wp, n, e0 = _extended(geo)
    return e0 + O * n


@serial(inline="always")
def _next_tap(ki, kj, off, KH, KW, hp, wp):
    """The tap after (ki, kj), whose input is at offset ``off`` of the padded input:
    kernel columns, then rows, then channels."""
    kj += 1
    off += 1
    if kj == KW:
        kj = 0
        ki += 1
        off += wp - KW
        if ki == KH:
            ki = 0
            off += (hp - KH) * wp
    return ki, kj, off


@serial(inline="always")
def _zero(work, start, n):
    zero = work.dtype.type(0)
    for k in range(n):
        work[U(start + k)] = zero


@serial(inline="always")
def _pad_into(geo, x, x0, work, hp, wp, e0):
    """work[:e0] = the input, zero-padded (stride-1 form)."""
    C, H, W, PH, PW = geo[0], geo[1], geo[2], geo[8], geo[9]
    _zero(work, 0, e0)
    for c in range(C):
        for y in range(H):
            src = U(x0 + (c * H + y) * W)
            dst = U((c * hp + y + PH) * wp + PW)
            for j in range(W):
                work[dst + U(j)] = x[src + U(j)]


@serial(inline="always")
def _spread_grad(geo, g, g0, work, wp, n, e0):
    """work[e0:] = the output gradient, one plane of n per output channel, rows
    spread to width WP with zeros between them and after the last."""
    O, HO, WO = geo[3], geo[10], geo[11]
    _zero(work, e0, O * n)
    for o in range(O):
        for i in range(HO):
            dst = U(e0 + o * n + i * wp)
            src = U(g0 + (o * HO + i) * WO)
            for j in range(WO):
                work[dst + U(j)] = g[src + U(j)]


@serial(inline="always")
def forward_flat(Wt, w0, b, b0, geo, x, x0, out, o0, work):
    """out = W ⋆ x + b for one sample (see the module notes for the two forms)."""
    C, H, W, O, KH, KW, SH, SW, PH, PW, HO, WO = geo
    T = C * KH * KW
    if SH == 1 and SW == 1:
        hp, wp, n, e0 = _extended(geo)
        _pad_into(geo, x, x0, work, hp, wp, e0)
        _zero(work, e0, O * n)
        o = 0
        while o < O:
            # Channels four (or two, or one) at a time share each pass over the
            # input: fewer loads per multiply-add than one channel per pass.
            group = 4 if o + 4 <= O else (2 if o + 2 <= O else 1)
            ext = U(e0 + o * n)
            row = w0 + o * T
            t, ki, kj, off = 0, 0, 0, 0
            while t + 4 <= T:
                s0 = U(off)
                ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
                s1 = U(off)
                ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
                s2 = U(off)
                ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
                s3 = U(off)
                ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
                a = U(row + t)
                if group == 4:
                    madd4x4(work, ext, n, s0, s1, s2, s3, Wt, a, T)
                elif group == 2:
                    madd4x2(work, ext, n, s0, s1, s2, s3, Wt, a, T)
                else:
                    madd4(work, ext, s0, s1, s2, s3, Wt[a], Wt[a + U(1)], Wt[a + U(2)],
                           Wt[a + U(3)], n)  # fmt: skip
                t += 4
            while t < T:
                for k in range(group):
                    madd1(work, ext + U(k * n), U(off), Wt[U(row + k * T + t)], n)
                ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
                t += 1
            o += group
        for o in range(O):
            ext = U(e0 + o * n)
            bias = b[U(b0 + o)]
            for i in range(HO):
                dst = U(o0 + (o * HO + i) * WO)
                e = ext + U(i * wp)
                for j in range(WO):
                    out[dst + U(j)] = work[e + U(j)] + bias
        return
    for o in range(O):
        bias = b[U(b0 + o)]
        for i in range(HO):
            dst = U(o0 + (o * HO + i) * WO)
            _zero(out, dst, WO)
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
def input_grad_flat(Wt, w0, geo, g, g0, grad_in, i0, work):
    """grad_in = dC/dx for one sample, from the output gradient g."""
    C, H, W, O, KH, KW, SH, SW, PH, PW, HO, WO = geo
    T = C * KH * KW
    if SH == 1 and SW == 1:
        hp, wp, n, e0 = _extended(geo)
        _spread_grad(geo, g, g0, work, wp, n, e0)
        _zero(work, 0, e0)
        # Tap t of every output channel sends W[o, t]·g[o] to the inputs it read.
        # The rounded tail of each pass adds W·0 past the plane: no change.
        ki, kj, off = 0, 0, 0
        for t in range(T):
            d = U(off)
            o = 0
            while o + 8 <= O:
                madd8(work, d, U(e0 + o * n), n, Wt, U(w0 + o * T + t), T)
                o += 8
            while o + 4 <= O:
                a = U(w0 + o * T + t)
                s = U(e0 + o * n)
                madd4(work, d, s, s + U(n), s + U(2 * n), s + U(3 * n), Wt[a], Wt[a + U(T)],
                      Wt[a + U(2 * T)], Wt[a + U(3 * T)], n)  # fmt: skip
                o += 4
            while o < O:
                madd1(work, d, U(e0 + o * n), Wt[U(w0 + o * T + t)], n)
                o += 1
            ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
        for c in range(C):
            for y in range(H):
                src = U((c * hp + y + PH) * wp + PW)
                dst = U(i0 + (c * H + y) * W)
                for j in range(W):
                    grad_in[dst + U(j)] = work[src + U(j)]
        return
    _zero(grad_in, i0, C * H * W)
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
    HO, WO = geo[10], geo[11]
    acc = g.dtype.type(0)
    start = U(g0 + o * HO * WO)
    for p in range(HO * WO):
        acc += g[start + U(p)]
    return acc


@serial(inline="always")
def _weight_grad_strided(geo, x, x0, g, g0, o, t):
    """dC/dW[o, t] of one sample, t = (c, ki, kj), by the direct loops."""
    _C, H, W, _O, KH, KW, SH, SW, PH, PW, HO, WO = geo
    c = t // (KH * KW)
    ki = t // KW - c * KH
    kj = t - (t // KW) * KW
    acc = g.dtype.type(0)
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
def _weight_grads(geo, x, x0, g, g0, work, dW, d0, db, db0, scale):
    """dW[d0 + o·T + t] += scale·dC/dW[o, t] and db[db0 + o] += scale·dC/db[o] for
    one sample: scale 1 accumulates a gradient, -lr takes an SGD step."""
    C, _H, _W, O, KH, KW, SH, SW, _PH, _PW, _HO, _WO = geo
    T = C * KH * KW
    hp, wp, n, e0 = _extended(geo)
    if SH == 1 and SW == 1:
        _pad_into(geo, x, x0, work, hp, wp, e0)
        _spread_grad(geo, g, g0, work, wp, n, e0)
    if SH != 1 or SW != 1:
        for o in range(O):
            db[U(db0 + o)] += scale * _bias_grad(geo, g, g0, o)
            for t in range(T):
                dW[U(d0 + o * T + t)] += scale * _weight_grad_strided(geo, x, x0, g, g0, o, t)
        return
    for o in range(O):
        db[U(db0 + o)] += scale * _bias_grad(geo, g, g0, o)
    o = 0
    while o < O:
        # Two channels per pass when there are two: each input value loaded serves
        # both channels' dot products.
        pair = o + 2 <= O
        row = d0 + o * T
        go = U(e0 + o * n)
        t, ki, kj, off = 0, 0, 0, 0
        while t < T:
            # Four taps per pass; past the last tap the cursor's offsets stay inside
            # the work buffer and their sums are dropped.
            s0 = U(off)
            ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
            s1 = U(min(off, e0 - n))
            ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
            s2 = U(min(off, e0 - n))
            ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
            s3 = U(min(off, e0 - n))
            ki, kj, off = _next_tap(ki, kj, off, KH, KW, hp, wp)
            if pair:
                r = dot4x2(work, go, n, s0, s1, s2, s3)
                for k in range(min(4, T - t)):
                    dW[U(row + t + k)] += scale * r[k]
                    dW[U(row + T + t + k)] += scale * r[4 + k]
            else:
                r1 = dot4(work, go, s0, s1, s2, s3, n)
                for k in range(min(4, T - t)):
                    dW[U(row + t + k)] += scale * r1[k]
            t += 4
        o += 2 if pair else 1


@serial(inline="always")
def weight_grad_acc_flat(geo, x, x0, g, g0, dW, d0, db, db0, work):
    """dW += dC/dW and db += dC/db of one sample (a minibatch sums its samples)."""
    _weight_grads(geo, x, x0, g, g0, work, dW, d0, db, db0, dW.dtype.type(1))


@serial(inline="always")
def update_flat(Wt, w0, b, b0, geo, x, x0, g, g0, lr, work):
    """W -= lr·dC/dW and b -= lr·dC/db for one sample, for a layer whose input
    gradient nobody needs (the first)."""
    _weight_grads(geo, x, x0, g, g0, work, Wt, w0, b, b0, -lr)


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
    plane, the first one on ties. A NaN counts as the maximum, as in PyTorch.

    A row of outputs at a time, the window's taps in row order: each tap is a
    select across the row, which vectorises (a scalar scan per window branches on
    every comparison, and random data mispredicts half of them)."""
    P, H, W, KH, KW, SH, SW, HO, WO = pgeo
    for q in range(P):
        plane = x0 + q * H * W
        for i in range(HO):
            k = (q * HO + i) * WO
            dst, arg = U(o0 + k), U(a0 + k)
            top = i * SH * W
            for j in range(WO):
                out[dst + U(j)] = x[U(plane + top + j * SW)]
                argmax[arg + U(j)] = top + j * SW
            for ki in range(KH):
                for kj in range(KW):
                    if ki == 0 and kj == 0:
                        continue
                    at = top + ki * W + kj
                    for j in range(WO):
                        v = x[U(plane + at + j * SW)]
                        best = out[dst + U(j)]
                        take = v > best or (v != v and best == best)
                        out[dst + U(j)] = v if take else best
                        argmax[arg + U(j)] = at + j * SW if take else argmax[arg + U(j)]


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
    """out = the mean of each window (its sum in row order, times 1/(KH·KW)), a row
    of outputs at a time, as in max pooling."""
    P, H, W, KH, KW, SH, SW, HO, WO = pgeo
    scale = out.dtype.type(1.0 / (KH * KW))
    for q in range(P):
        plane = x0 + q * H * W
        for i in range(HO):
            dst = U(o0 + (q * HO + i) * WO)
            _zero(out, dst, WO)
            for ki in range(KH):
                for kj in range(KW):
                    at = plane + (i * SH + ki) * W + kj
                    for j in range(WO):
                        out[dst + U(j)] += x[U(at + j * SW)]
            for j in range(WO):
                out[dst + U(j)] *= scale


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
