"""The compiled training engine: one ``@njit`` interpreter of a network's plan.

A plan is a few arrays, one entry (row) per layer, ``fastnn.plan.PlanArrays``:

* ``kinds``: ``DENSE`` or an activation code of ``fastnn.codes`` (TANH, ...);
* ``n_in``, ``n_out``: the layer's input and output widths;
* ``p_off``: where a Dense layer's W (then its b) starts in the parameter buffer;
* ``a_off``: where the layer's output starts in the activation buffer;
* ``cfg`` (int64) and ``hyp`` (float64): a layer kind's own integers and floats;
  ``hyp[i, 0]`` is an activation's ``alpha`` (LeakyReLU's slope).

The public functions' signatures are declared once, in ``fastnn.backends.Backend``.

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

from ..codes import DENSE, RELU
from . import activations, dense, losses
from .activations import activation_forward, copy_flat
from .config import bare, bare_ordered, ordered, serial

U = np.uint64  # unsigned offsets: no wraparound checks (see dense.py)
# An int64 zero offset. A literal 0 passed to a compiled helper is typed Literal[int](0),
# and the helper is compiled once more for it.
ZERO = np.int64(0)


@bare
def _widest(n_in, n_out):
    w = 0
    for i in range(n_in.size):
        w = max(w, n_in[i], n_out[i])
    return w


@serial(inline="always")  # a compile of its own costs more
def _first_dense(kinds):
    i = 0
    while kinds[i] != DENSE:
        i += 1
    return i


@serial
def _weights(params, p_off, n_out, n_in, i):
    """Layer i's W and b as views (for the matrix-product paths, once per block)."""
    start = p_off[i]
    stop = start + n_out[i] * n_in[i]
    return params[start:stop].reshape((n_out[i], n_in[i])), params[stop : stop + n_out[i]]


@serial(inline="always")
def _forward_sample(kinds, n_in, n_out, p_off, a_off, hyp, params, xf, x0, acts, first):
    """Forward one sample through layers ``first`` .. end. Layer 0 reads
    xf[x0:], layer i > 0 reads layer i-1's output; layer i writes acts[a_off[i]:]."""
    for i in range(first, kinds.size):
        src = xf if i == 0 else acts
        s0 = x0 if i == 0 else a_off[i - 1]
        if kinds[i] == DENSE:
            w = p_off[i]
            dense.forward_flat(params, w, params, w + n_out[i] * n_in[i], n_out[i], n_in[i],
                               src, s0, acts, a_off[i])  # fmt: skip
        else:
            activations.forward_flat(kinds[i], src, s0, acts, a_off[i], n_out[i], hyp[i, 0])


@serial(inline="always")
def _backward_sample(kinds, n_in, n_out, p_off, a_off, hyp, params, yf, y0, lr, loss_kind,
                     acts, grad_a, grad_b, first_dense):  # fmt: skip
    """Loss gradient, then backward with immediate SGD updates through every layer
    after ``first_dense``. Returns True when the gradient at ``first_dense``'s output
    is in ``grad_a`` (else ``grad_b``); the caller applies that layer's update, so it
    can defer it or batch it."""
    last = kinds.size - 1
    losses.loss_grad_flat(loss_kind, yf, y0, acts, a_off[last], n_out[last], 1.0, grad_a, ZERO)
    use_a = True
    for i in range(last, first_dense, -1):
        g = grad_a if use_a else grad_b
        if kinds[i] != DENSE:
            activations.backward_flat(kinds[i], acts, a_off[i], g, ZERO, g, ZERO, n_out[i],
                                      hyp[i, 0])  # fmt: skip
        else:
            w = p_off[i]
            gin = grad_b if use_a else grad_a
            dense.backward_sgd_flat(params, w, params, w + n_out[i] * n_in[i], n_out[i],
                                    n_in[i], acts, a_off[i - 1], g, 0, lr, gin, 0)  # fmt: skip
            use_a = not use_a
    return use_a


#: Every scratch buffer starts on a boundary of this many bytes.
ALIGN = 64
#: Bytes left unused around each scratch buffer. The compiler guards a vectorised loop
#: whose stores may overlap its loads with a test on the distance between the two
#: pointers (under a few hundred bytes: run the scalar loop), and the scalar and
#: vector loops sum in different orders. With every buffer this far from any other
#: array, that test takes the same branch whatever the heap's layout.
GUARD = 4096


@serial
def _arena(like, sizes):
    """Buffers of ``sizes[i]`` elements of ``like``'s dtype, carved from one
    allocation: each starts on an ``ALIGN``-byte boundary, ``GUARD`` bytes from its
    neighbours and from anything outside. Returns (buffer, start of each part), so
    that where a result's scratch lies relative to its other scratch, to its
    alignment and to other arrays never depends on the heap."""
    item = like.itemsize
    step = ALIGN // item
    starts = np.empty(sizes.size, np.int64)
    pos = GUARD // item
    for i in range(sizes.size):
        starts[i] = pos
        pos += (sizes[i] + step - 1) // step * step + GUARD // item
    buf = np.empty(pos + step, like.dtype)
    shift = (-buf.ctypes.data) % ALIGN // item
    return buf[shift:], starts


def _scratch(like, *sizes):
    """One flat buffer per size, laid out by ``_arena``."""
    buf, starts = _arena(like, np.array(sizes, np.int64))
    return [buf[a : a + n] for a, n in zip(starts, sizes, strict=True)]


def _sample_buffers(n_in, n_out, a_off, like, *more):
    """One sample's activations, three buffers as wide as the widest layer (two that
    the layers' gradients alternate between, one for a deferred update), then one
    buffer per size in ``more``."""
    widest = int(max(n_in.max(), n_out.max()))
    return _scratch(like, int(a_off[-1] + n_out[-1]), widest, widest, widest, *more)


@serial(inline="always")  # a compile of its own costs more
def _close_epoch(total, e, n, params, snapshot, epoch_loss):
    """Record epoch e's mean loss. If the loss or any parameter is no longer finite
    (saturating activations can keep the loss finite while weights overflow), restore
    the parameters to the epoch's start and return False."""
    ok = np.isfinite(total)
    for i in range(params.size):
        ok = ok and np.isfinite(params[i])
    if not ok:
        copy_flat(snapshot, ZERO, params, ZERO, params.size)
        return False
    epoch_loss[e] = total / n
    return True


@serial(inline="always")
def _open_epoch_opt(params, snapshot, stateful, state_a, state_b):
    """Keep the weights and, when ``stateful``, both optimizer buffers in ``snapshot``
    (in that order) at an epoch's start, for ``_close_epoch_opt``."""
    size = params.size
    copy_flat(params, ZERO, snapshot, ZERO, size)
    if stateful:
        copy_flat(state_a, ZERO, snapshot, size, size)
        copy_flat(state_b, ZERO, snapshot, 2 * size, size)


@serial(inline="always")
def _close_epoch_opt(total, e, n, params, snapshot, epoch_loss, stateful, state_a, state_b,
                     step, step0):  # fmt: skip
    """``_close_epoch`` for training with an optimizer: on a failed epoch the
    optimizer's buffers (``snapshot``'s second and third thirds, when ``stateful``) and
    its step count go back to the same moment as the weights."""
    if _close_epoch(total, e, n, params, snapshot, epoch_loss):
        return True
    size = params.size
    if stateful:
        copy_flat(snapshot, size, state_a, ZERO, size)
        copy_flat(snapshot, 2 * size, state_b, ZERO, size)
    step[0] = step0
    return False


def fit_sgd(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Y, order, learning_rate,
            loss_kind, epoch_loss, snapshot, stop):  # fmt: skip
    """Per-sample SGD over ``order.shape[0]`` epochs; row e of ``order`` is epoch e's
    sample order.

    The design's loop exactly: forward, loss gradient, then each layer's backward,
    which uses the weights forward used and then updates them. The one liberty is an
    ordering one: the first layer's update for sample t is deferred and fused with
    the first layer's forward for sample t + 1, the very next thing the loop would do
    to that matrix, so both share a single pass over W₀.

    Writes each epoch's mean training loss into ``epoch_loss`` and returns the number
    of epochs completed. If a loss or a weight turns non-finite, the parameters are
    restored to ``snapshot`` (their state at the start of that epoch) and the epoch's
    index is returned, so no NaN ever stays behind. The same happens when another
    thread sets ``stop[0]`` (checked before every sample): the run ends at the last
    completed epoch.
    """
    # Plain Python: allocating here keeps the compiled loop free of reference
    # counting, and leaves one function fewer to compile on a first fit.
    acts, grad_a, grad_b, pending = _sample_buffers(n_in, n_out, a_off, params)
    return _sgd_epochs(kinds, n_in, n_out, p_off, a_off, hyp, params, X.reshape(-1),
                       Y.reshape(-1), X.shape[1], Y.shape[1], order, learning_rate, loss_kind,
                       epoch_loss, snapshot, stop, acts, grad_a, grad_b, pending)  # fmt: skip


@bare_ordered
def _sgd_epochs(kinds, n_in, n_out, p_off, a_off, hyp, params, xf, yf, nf, k, order,
                learning_rate, loss_kind, epoch_loss, snapshot, stop, acts, grad_a, grad_b,
                pending):  # fmt: skip
    """``fit_sgd``'s epochs, on buffers it allocated: no reference counting here."""
    dt = params.dtype
    lr = dt.type(learning_rate)
    last = kinds.size - 1
    fd = _first_dense(kinds)
    w0 = p_off[fd]
    b0 = w0 + n_out[fd] * n_in[fd]
    fuse = fd == 0
    n_epochs, n = order.shape
    for e in range(n_epochs):
        copy_flat(params, ZERO, snapshot, ZERO, params.size)
        total = 0.0
        prev = -1
        for t in range(n):
            if stop[0] != 0:
                total = np.nan  # ends the epoch as a divergence does: restored
                break
            s = order[e, t]
            first = 0
            if prev >= 0:
                dense.update_forward_flat(params, w0, params, b0, n_out[0], n_in[0], xf,
                                          prev * nf, pending, 0, lr, xf, s * nf, acts,
                                          a_off[0])  # fmt: skip
                first = 1
            # One inlined copy of the forward pass: each copy costs seconds of compiling.
            _forward_sample(kinds, n_in, n_out, p_off, a_off, hyp, params, xf, s * nf, acts,
                            first)  # fmt: skip
            loss = losses.loss_value_flat(loss_kind, yf, s * k, acts, a_off[last], k)
            total += loss
            if not np.isfinite(loss):
                break
            in_a = _backward_sample(kinds, n_in, n_out, p_off, a_off, hyp, params, yf, s * k, lr,
                                    loss_kind, acts, grad_a, grad_b, fd)  # fmt: skip
            g = grad_a if in_a else grad_b
            if fuse:
                for j in range(n_out[0]):  # inline: a call would cost more
                    pending[j] = g[j]
                prev = s
            else:
                # An activation comes first: the first Dense layer reads its output.
                dense.update_flat(params, w0, params, b0, n_out[fd], n_in[fd], acts,
                                  a_off[fd - 1], g, 0, lr)  # fmt: skip
        if prev >= 0 and np.isfinite(total):
            dense.update_flat(params, w0, params, b0, n_out[0], n_in[0], xf, prev * nf,
                              pending, 0, lr)  # fmt: skip
        if not _close_epoch(total, e, n, params, snapshot, epoch_loss):
            return e
    return n_epochs


@serial
def _bias_activation(kind, Z, b, alpha):
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
                activations.forward_flat(kind, z, ZERO, z, ZERO, cols, alpha)


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
def _forward_cols(kinds, n_in, n_out, p_off, a_off, hyp, params, Xb, acts, cols, stride):
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
        _bias_activation(kinds[j] if fused else DENSE, dst, b, hyp[j, 0])
        i = j + 1
    else:
        dst = _block(acts, 0, n_out[0], cols)
        _transpose(Xb, dst)
        activation_forward(kinds[0], dst, dst, hyp[0, 0])
        i = 1
    while i < kinds.size:
        src = _block(acts, stride * a_off[i - 1], n_out[i - 1], cols)
        if kinds[i] == DENSE:
            W, b = _weights(params, p_off, n_out, n_in, i)
            fused = i + 1 < kinds.size and kinds[i + 1] != DENSE
            j = i + 1 if fused else i
            dst = _block(acts, stride * a_off[j], n_out[i], cols)
            np.dot(W, src, dst)
            _bias_activation(kinds[j] if fused else DENSE, dst, b, hyp[j, 0])
            i = j + 1
        else:
            dst = _block(acts, stride * a_off[i], n_out[i], cols)
            activation_forward(kinds[i], src, dst, hyp[i, 0])
            i += 1


@bare
def _finite(x, x0, n):
    """Whether x[x0:x0+n] is all finite (a comparison, which the fastmath flags keep:
    they exclude nnan and ninf)."""
    inf = x.dtype.type(np.inf)
    finite = True
    for i in range(n):
        finite &= abs(x[U(x0) + U(i)]) < inf
    return finite


@ordered
def forward_batch(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Z, acts, block):
    """The last layer's outputs for every row of X, written into Z, ``block`` rows at a
    time.

    Every Dense layer runs on ``dense.dense_rows``, which sums each output in input
    order: a row's outputs are the same bits wherever it is in X, whatever rows come
    with it and however X is split across calls (threads). The layers' Wᵀ, padded to
    whole tiles, and two blocks of row-major activations are laid out here by
    ``_arena``; ``acts`` is not used (it is the twin's workspace argument).

    Returns whether X is all finite, checked block by block right after the first
    layer has read it, while it is still in cache: a separate pass over X cost about
    a twentieth of the whole prediction."""
    n, m = X.shape
    xf = X.reshape(-1)
    count = kinds.size
    step = dense.tile_units(params)
    width = np.empty(count, np.int64)
    sizes = np.zeros(count + 2, np.int64)
    for i in range(count):
        width[i] = (n_out[i] + step - 1) // step * step
        if kinds[i] == DENSE:
            sizes[i] = n_in[i] * width[i]
        sizes[count] = max(sizes[count], block * width[i])
    sizes[count + 1] = sizes[count]
    buf, at = _arena(params, sizes)
    for i in range(count):
        if kinds[i] == DENSE:
            wt = buf[at[i] : at[i] + sizes[i]].reshape((n_in[i], width[i]))
            wt[:, n_out[i] :] = 0
            _transpose(_weights(params, p_off, n_out, n_in, i)[0], wt[:, : n_out[i]])
    finite = True
    for start in range(0, n, block):
        rows = min(block, n - start)
        src, s0, ss = xf, start * m, m
        for i in range(count):
            part = count + i % 2
            dst = buf[at[part] : at[part] + sizes[part]]
            w = width[i]
            if kinds[i] == DENSE:
                wt = buf[at[i] : at[i] + sizes[i]]
                dense.dense_rows(src, s0, ss, n_in[i], wt, w, dst, ZERO, rows)
                b = _weights(params, p_off, n_out, n_in, i)[1]
                for r in range(rows):
                    for u in range(n_out[i]):
                        dst[r * w + u] += b[u]
            else:
                for r in range(rows):
                    activations.forward_flat(kinds[i], src, s0 + r * ss, dst, r * w, n_out[i],
                                             hyp[i, 0])  # fmt: skip
            if i == 0:
                finite &= _finite(xf, start * m, rows * m)
            src, s0, ss = dst, 0, w
        for r in range(rows):
            for u in range(n_out[count - 1]):
                Z[start + r, u] = src[r * ss + u]
    return finite
