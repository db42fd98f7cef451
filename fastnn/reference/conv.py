"""NumPy twins of ``fastnn.kernels.conv``: Conv2D and pooling in plain NumPy.

The convolution is SciPy's ``correlate`` over each sample's zero-padded input; its
gradients are the same sums written with NumPy's sliding windows. Shapes and
arguments are those of the kernels (see ``fastnn.kernels.conv``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _padded(x, kh, kw, stride, padding, ho, wo):
    """x (..., C, H, W) with zeros added: padding[0] rows on top, padding[1] columns
    on the left, and as many at the bottom and right as the output size needs."""
    sh, sw = stride
    ph, pw = padding
    h, w = x.shape[-2:]
    bottom = max(0, (ho - 1) * sh + kh - h - ph)
    right = max(0, (wo - 1) * sw + kw - w - pw)
    pads = [(0, 0)] * (x.ndim - 2) + [(ph, bottom), (pw, right)]
    return np.pad(x, pads)


def _windows(xp, kh, kw, stride, ho, wo):
    """(..., C, HO, WO, KH, KW): the input window of every output position."""
    sh, sw = stride
    win = sliding_window_view(xp, (kh, kw), axis=(-2, -1))
    return win[..., : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, :, :]


def conv2d_forward(x, W, b, stride, padding, out):
    # Imported here: scipy.signal takes most of a second to load, and a dense
    # network's predict (this package is its backend) never convolves.
    from scipy.signal import correlate

    o, _c, kh, kw = W.shape
    ho, wo = out.shape[-2:]
    xp = _padded(x, kh, kw, stride, padding, ho, wo)
    sh, sw = stride
    for k in range(o):
        full = correlate(xp, W[k], mode="valid", method="direct")[0]
        out[k] = full[: (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw] + b[k]


def conv2d_forward_batch(x, W, b, stride, padding, out):
    for s in range(x.shape[0]):
        conv2d_forward(x[s], W, b, stride, padding, out[s])


def _input_grad(W, grad_out, stride, padding, out):
    # Each tap (ki, kj) sends W[:, :, ki, kj]ᵀ·g to the input positions it read.
    _o, _c, kh, kw = W.shape
    ho, wo = grad_out.shape[-2:]
    sh, sw = stride
    ph, pw = padding
    h, w = out.shape[-2:]
    grad_padded = _padded(np.zeros_like(out), kh, kw, stride, padding, ho, wo)
    for ki in range(kh):
        for kj in range(kw):
            part = np.einsum("oc,...oij->...cij", W[:, :, ki, kj], grad_out)
            grad_padded[
                ..., ki : ki + (ho - 1) * sh + 1 : sh, kj : kj + (wo - 1) * sw + 1 : sw
            ] += part
    out[...] = grad_padded[..., ph : ph + h, pw : pw + w]


def conv2d_input_grad(W, grad_out, stride, padding, out):
    _input_grad(W, grad_out, stride, padding, out)


def conv2d_input_grad_batch(W, grad_out, stride, padding, out):
    _input_grad(W, grad_out, stride, padding, out)


def _weight_grad(x, grad_out, kh, kw, stride, padding):
    """(dC/dW, dC/db) summed over every leading dimension of x (..., C, H, W)."""
    ho, wo = grad_out.shape[-2:]
    win = _windows(_padded(x, kh, kw, stride, padding, ho, wo), kh, kw, stride, ho, wo)
    g = grad_out.reshape(-1, *grad_out.shape[-3:])  # one sample is a batch of one
    win = win.reshape(-1, *win.shape[-5:])
    return np.einsum("noij,ncijkl->ockl", g, win), g.sum(axis=(0, 2, 3))


def conv2d_weight_grad_acc(x, grad_out, stride, padding, dW, db):
    gW, gb = _weight_grad(x, grad_out, dW.shape[2], dW.shape[3], stride, padding)
    dW += gW
    db += gb


def conv2d_weight_grad_batch(x, grad_out, stride, padding, dW, db):
    dW[...], db[...] = _weight_grad(x, grad_out, dW.shape[2], dW.shape[3], stride, padding)


def conv2d_backward_sgd(x, W, b, grad_out, stride, padding, learning_rate, grad_in):
    # dC/dx with the weights forward used, then the SGD step on W and b.
    _input_grad(W, grad_out, stride, padding, grad_in)
    gW, gb = _weight_grad(x, grad_out, W.shape[2], W.shape[3], stride, padding)
    lr = W.dtype.type(learning_rate)
    W -= lr * gW
    b -= lr * gb


def _pool_windows(x, kernel, stride, out):
    ho, wo = out.shape[-2:]
    win = _windows(x, kernel[0], kernel[1], stride, ho, wo)
    return win.reshape(*win.shape[:-2], -1)  # (..., HO, WO, KH·KW)


def maxpool2d_forward(x, kernel, stride, out, argmax):
    win = _pool_windows(x, kernel, stride, out)
    # argmax takes the first maximum; a NaN, where there is one, is the maximum.
    nan = np.isnan(win)
    k = np.where(nan.any(axis=-1), nan.argmax(axis=-1), win.argmax(axis=-1))
    out[...] = np.take_along_axis(win, k[..., None], axis=-1)[..., 0]
    ki, kj = np.divmod(k, kernel[1])
    ho, wo = out.shape[-2:]
    rows = np.arange(ho)[:, None] * stride[0] + ki
    cols = np.arange(wo)[None, :] * stride[1] + kj
    argmax[...] = rows * x.shape[-1] + cols


def maxpool2d_backward(grad_out, argmax, grad_in):
    h, w = grad_in.shape[-2:]
    flat_g = grad_out.reshape(-1, grad_out.shape[-2] * grad_out.shape[-1])
    flat_a = argmax.reshape(flat_g.shape)
    planes = np.zeros((flat_g.shape[0], h * w), dtype=grad_in.dtype)
    for q in range(flat_g.shape[0]):
        np.add.at(planes[q], flat_a[q], flat_g[q])
    grad_in[...] = planes.reshape(grad_in.shape)


def avgpool2d_forward(x, kernel, stride, out):
    win = _pool_windows(x, kernel, stride, out)
    out[...] = win.sum(axis=-1) * out.dtype.type(1.0 / (kernel[0] * kernel[1]))


def avgpool2d_backward(grad_out, kernel, stride, grad_in):
    kh, kw = kernel
    ho, wo = grad_out.shape[-2:]
    share = grad_out * grad_in.dtype.type(1.0 / (kh * kw))
    grad_in[...] = 0
    for ki in range(kh):
        for kj in range(kw):
            grad_in[..., ki : ki + (ho - 1) * stride[0] + 1 : stride[0],
                    kj : kj + (wo - 1) * stride[1] + 1 : stride[1]] += share  # fmt: skip
