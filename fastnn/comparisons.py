"""The table of Numba kernels and their pure-NumPy twins, with inputs to run them on.

``COMPARISONS`` maps a kernel's name to a :class:`Comparison`: the compiled kernel
from ``fastnn.kernels``, its twin of the same name from ``fastnn.reference``, and a
``make_args(rng, dtype, shape)`` that builds fresh arguments for one call, including
the preallocated ``out`` arrays. Kernels that dispatch on a ``kind`` (an activation
or a loss) have one entry per kind, named ``"kernel[kind]"``.

The tests run every entry on both implementations and compare the results; the
benchmarks in ``bench/`` time them. Nothing here needs pytest.

Examples
--------
>>> import numpy as np
>>> from fastnn.comparisons import COMPARISONS, run
>>> c = COMPARISONS["dense_forward"]
>>> args = c.make_args(np.random.default_rng(0), np.float64, (3, 4))
>>> compiled, twin = run(c, args), run(c, args, reference=True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import codes, kernels, reference

#: (rows, columns) shapes every kernel is compared on: 1×1, a single row, a single
#: column, non-square and a larger block. See each ``make_args`` for how it reads them.
SHAPES: tuple[tuple[int, int], ...] = ((1, 1), (1, 5), (4, 1), (3, 7), (16, 9))

#: The ``kind`` codes the dispatching kernels take, by name.
ACTIVATION_KINDS: dict[str, int] = codes.ACTIVATION_CODES
LOSS_KINDS: dict[str, int] = codes.LOSS_CODES
#: The float setting the activation kernels are compared at (LeakyReLU's slope; the
#: activations without one ignore it): away from 0 and 1, so that it shows.
ALPHA = 0.1

MakeArgs = Callable[[np.random.Generator, Any, tuple[int, int]], tuple]


@dataclass(frozen=True)
class Comparison:
    """One kernel, its NumPy twin, and how to build arguments for them.

    Attributes
    ----------
    kernel, reference : callable
        The compiled kernel and its twin; same signature.
    make_args : callable(rng, dtype, shape) -> tuple
        Fresh positional arguments for one call, every data array of ``dtype`` and
        C-contiguous (an optimizer's ``hyper`` settings stay float64, as the
        kernels take them); ``shape`` is one of :data:`SHAPES`.
    outputs : tuple of int
        Positions of the arguments the kernel writes: its ``out`` arrays and any
        array it updates in place.
    returns : bool
        True when the result is the return value (a loss), False when the kernel
        writes into ``outputs`` and returns None.
    """

    kernel: Callable
    reference: Callable
    make_args: MakeArgs
    outputs: tuple[int, ...] = ()
    returns: bool = False


def run(comparison: Comparison, args: tuple, *, reference: bool = False) -> tuple:
    """Call the kernel (or, with ``reference=True``, its twin) on a copy of ``args``.

    Returns the written arrays, in the order of ``comparison.outputs``, followed by
    the return value when ``comparison.returns``. ``args`` itself is left untouched,
    so the same arguments can be passed to both implementations.
    """
    call = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    func = comparison.reference if reference else comparison.kernel
    value = func(*call)
    written = tuple(call[i] for i in comparison.outputs)
    return (*written, value) if comparison.returns else written


def max_relative_difference(actual, expected, floor: float = 0.0) -> float:
    """max|actual - expected| / max(max|expected|, floor): the error relative to the
    largest value, so entries near zero do not blow it up.

    ``floor`` > 0 bounds the denominator from below, for results that may all be
    near zero (a one-class cross-entropy is exactly 0). Returns 0.0 for two empty
    arrays and inf for NaN or inf differences.
    """
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    diff = np.abs(a - b).max()
    if not np.isfinite(diff):
        return float("inf")
    scale = max(float(np.abs(b).max()), floor)
    return float(diff / scale) if scale > 0 else (0.0 if diff == 0 else float("inf"))


# -- argument builders ---------------------------------------------------------------
# Inputs are drawn in float64 and rounded once, so float32 and float64 calls see the
# same values up to rounding.


def _uniform(rng, dtype, size, low=-2.0, high=2.0) -> np.ndarray:
    return np.ascontiguousarray(rng.uniform(low, high, size=size), dtype=dtype)


def _empty(dtype, size) -> np.ndarray:
    # NaN-filled, so an element the kernel forgets to write cannot pass a comparison.
    return np.full(size, np.nan, dtype=dtype)


def _dense_forward(rng, dtype, shape):
    n_out, n_in = shape
    return (
        _uniform(rng, dtype, shape),
        _uniform(rng, dtype, n_out),
        _uniform(rng, dtype, n_in),
        _empty(dtype, n_out),
    )


def _batch_rows(shape) -> int:
    # Differs from both widths, so a transposed index cannot go unnoticed.
    return 2 * shape[0] + 1


def _dense_forward_batch(rng, dtype, shape):
    n_out, n_in = shape
    n = _batch_rows(shape)
    return (
        _uniform(rng, dtype, shape),
        _uniform(rng, dtype, n_out),
        _uniform(rng, dtype, (n, n_in)),
        _empty(dtype, (n, n_out)),
    )


def _dense_input_grad(rng, dtype, shape):
    n_out, n_in = shape
    return _uniform(rng, dtype, shape), _uniform(rng, dtype, n_out), _empty(dtype, n_in)


def _dense_weight_grad(rng, dtype, shape):
    n_out, n_in = shape
    return _uniform(rng, dtype, n_out), _uniform(rng, dtype, n_in), _empty(dtype, shape)


def _sgd_update(rng, dtype, shape):
    return _uniform(rng, dtype, shape), _uniform(rng, dtype, shape), 0.1


def _dense_backward_sgd(rng, dtype, shape):
    n_out, n_in = shape
    return (
        _uniform(rng, dtype, shape),
        _uniform(rng, dtype, n_out),
        _uniform(rng, dtype, n_in),
        _uniform(rng, dtype, n_out),
        0.1,
        _empty(dtype, n_in),
    )


def _activation_output(kind: int, x: np.ndarray) -> np.ndarray:
    """A plausible layer output y = f(x), which the backward kernels take."""
    out = np.empty_like(x)
    reference.activation_forward(kind, x, out, ALPHA)
    return out


def _activation_forward(kind: int, pass_kind: bool) -> MakeArgs:
    def make(rng, dtype, shape):
        # Wide enough to reach both tails of tanh and the sigmoid.
        args = (_uniform(rng, dtype, shape, -6.0, 6.0), _empty(dtype, shape))
        return (kind, *args, ALPHA) if pass_kind else args

    return make


def _activation_backward(kind: int, pass_kind: bool) -> MakeArgs:
    def make(rng, dtype, shape):
        y = _activation_output(kind, _uniform(rng, dtype, shape, -3.0, 3.0))
        args = (y, _uniform(rng, dtype, shape), _empty(dtype, shape))
        return (kind, *args, ALPHA) if pass_kind else args

    return make


def _targets(rng, dtype, kind: int, size) -> np.ndarray:
    if kind == codes.MSE:
        return _uniform(rng, dtype, size)
    # Values in [0, 1]; for cross-entropy a row need not sum to 1, which exercises the
    # sum(y)·softmax(z) - y form of the gradient.
    return _uniform(rng, dtype, size, 0.0, 1.0)


def _logits(rng, dtype, size) -> np.ndarray:
    return _uniform(rng, dtype, size, -4.0, 4.0)


def _loss(kind: int, pass_kind: bool, grad: bool) -> MakeArgs:
    """Arguments of a one-sample loss: (kind,) y, z (, scale, out); k = shape[1]."""

    def make(rng, dtype, shape):
        k = shape[1]
        args: tuple = (_targets(rng, dtype, kind, k), _logits(rng, dtype, k))
        if grad:
            args = (*args, 0.37, _empty(dtype, k))
        return (kind, *args) if pass_kind else args

    return make


def _batch_loss(kind: int, grad: bool) -> MakeArgs:
    """Arguments of a batch loss: kind, Y, Z (, out), all of shape ``shape``."""

    def make(rng, dtype, shape):
        args: tuple = (kind, _targets(rng, dtype, kind, shape), _logits(rng, dtype, shape))
        return (*args, _empty(dtype, shape)) if grad else args

    return make


def _softmax(rng, dtype, shape):
    k = shape[1]
    return _logits(rng, dtype, k), _empty(dtype, k)


def _output_transform(kind: int) -> MakeArgs:
    def make(rng, dtype, shape):
        return kind, _logits(rng, dtype, shape), _empty(dtype, shape)

    return make


def _state(rng, dtype, size, low=-1.0, high=1.0) -> np.ndarray:
    return _uniform(rng, dtype, size, low, high)


def _momentum_step(nesterov: bool) -> MakeArgs:
    def make(rng, dtype, shape):
        n = shape[0] * shape[1]
        return (_state(rng, dtype, n), _state(rng, dtype, n), _state(rng, dtype, n),
                0.05, 0.9, nesterov)  # fmt: skip

    return make


def _adam_step(rng, dtype, shape):
    n = shape[0] * shape[1]
    # v is a running mean of squares: non-negative.
    return (_state(rng, dtype, n), _state(rng, dtype, n), _state(rng, dtype, n),
            _state(rng, dtype, n, 0.0, 1.0), 0.01, 0.9, 0.999, 1e-8, 0.01, 3)  # fmt: skip


#: optimizer -> (kind, positions optimizer_step writes: params and the state it keeps)
_OPTIMIZER_KINDS = {
    "sgd": (codes.SGD, (1,)),
    "momentum": (codes.MOMENTUM, (1, 3)),
    "adam": (codes.ADAM, (1, 3, 4)),
}


def _optimizer_step(kind: int) -> MakeArgs:
    def make(rng, dtype, shape):
        n = shape[0] * shape[1]
        # [momentum, nesterov, beta1, beta2, epsilon, weight_decay]
        hyper = np.array([0.9, 1.0, 0.9, 0.999, 1e-8, 0.01])
        return (kind, _state(rng, dtype, n), _state(rng, dtype, n), _state(rng, dtype, n),
                _state(rng, dtype, n, 0.0, 1.0), 0.05, hyper, 2)  # fmt: skip

    return make


# Convolution and pooling: ``shape`` (a, b) picks a batch of 2 samples of C = 1 + a % 3
# channels on an S × (S + 1) image, S = isqrt(b) + 3, and O = min(a, 16) + 1 filters of
# 3 × 2 (non-square). Each kernel runs in two settings: stride 1 with padding (1, 0),
# the extended-row form, and stride (2, 1) with padding (0, 1), the direct loops.
CONV_SETTINGS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "stride1": ((1, 1), (1, 0)),
    "strided": ((2, 1), (0, 1)),
}
CONV_KERNEL = (3, 2)
#: pooling setting -> (kernel, stride): disjoint windows, and overlapping ones
POOL_SETTINGS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "disjoint": ((2, 2), (2, 2)),
    "overlapping": ((3, 2), (1, 2)),
}


def conv_shapes(shape, stride, padding):
    """(x, W, out) shapes of a batch for a comparison ``shape`` (see above)."""
    a, b = shape
    c, side, o = 1 + a % 3, int(np.sqrt(b)) + 3, min(a, 16) + 1
    kh, kw = CONV_KERNEL
    ho = (side + 2 * padding[0] - kh) // stride[0] + 1
    wo = (side + 1 + 2 * padding[1] - kw) // stride[1] + 1
    return (2, c, side, side + 1), (o, c, kh, kw), (2, o, ho, wo)


def _conv(kernel: str, setting: str) -> MakeArgs:
    stride, padding = CONV_SETTINGS[setting]

    def make(rng, dtype, shape):
        xs, ws, outs = conv_shapes(shape, stride, padding)
        batch = kernel.endswith("_batch")
        if not batch:
            xs, outs = xs[1:], outs[1:]
        x, W, b = _uniform(rng, dtype, xs), _uniform(rng, dtype, ws), _uniform(rng, dtype, ws[0])
        g = _uniform(rng, dtype, outs)
        if kernel.startswith("conv2d_forward"):
            return x, W, b, stride, padding, _empty(dtype, outs)
        if kernel.startswith("conv2d_input_grad"):
            return W, g, stride, padding, _empty(dtype, xs)
        if kernel == "conv2d_weight_grad_acc":  # adds to dW and db
            return x, g, stride, padding, W, b
        if kernel == "conv2d_weight_grad_batch":
            return x, g, stride, padding, _empty(dtype, ws), _empty(dtype, ws[0])
        return x, W, b, g, stride, padding, 0.1, _empty(dtype, xs)  # conv2d_backward_sgd

    return make


_CONV_OUTPUTS = {
    "conv2d_forward": (5,),
    "conv2d_forward_batch": (5,),
    "conv2d_input_grad": (4,),
    "conv2d_input_grad_batch": (4,),
    "conv2d_weight_grad_acc": (4, 5),
    "conv2d_weight_grad_batch": (4, 5),
    "conv2d_backward_sgd": (1, 2, 7),
}


def _pool(kernel: str, setting: str) -> MakeArgs:
    size, stride = POOL_SETTINGS[setting]

    def make(rng, dtype, shape):
        (n, c, h, w), _, _ = conv_shapes(shape, (1, 1), (0, 0))
        ho, wo = (h - size[0]) // stride[0] + 1, (w - size[1]) // stride[1] + 1
        x, g = _uniform(rng, dtype, (n, c, h, w)), _uniform(rng, dtype, (n, c, ho, wo))
        if kernel == "maxpool2d_forward":
            return x, size, stride, _empty(dtype, g.shape), np.full(g.shape, -1, np.int64)
        if kernel == "maxpool2d_backward":
            argmax = np.full(g.shape, -1, np.int64)
            reference.maxpool2d_forward(x, size, stride, np.empty_like(g), argmax)
            return g, argmax, _empty(dtype, x.shape)
        if kernel == "avgpool2d_forward":
            return x, size, stride, _empty(dtype, g.shape)
        return g, size, stride, _empty(dtype, x.shape)  # avgpool2d_backward

    return make


_POOL_OUTPUTS = {
    "maxpool2d_forward": (3, 4),
    "maxpool2d_backward": (2,),
    "avgpool2d_forward": (3,),
    "avgpool2d_backward": (3,),
}


def kernel_name(key: str) -> str:
    """The kernel an entry of ``COMPARISONS`` runs: ``"loss_grad[mse]"`` -> ``"loss_grad"``."""
    return key.split("[", 1)[0]


def _pair(name: str, make_args: MakeArgs, outputs=(), returns=False) -> Comparison:
    kernel = kernel_name(name)
    return Comparison(
        getattr(kernels, kernel), getattr(reference, kernel), make_args, tuple(outputs), returns
    )


def _build() -> dict[str, Comparison]:
    table: dict[str, Comparison] = {
        "dense_forward": _pair("dense_forward", _dense_forward, (3,)),
        "dense_forward_batch": _pair("dense_forward_batch", _dense_forward_batch, (3,)),
        "dense_input_grad": _pair("dense_input_grad", _dense_input_grad, (2,)),
        "dense_weight_grad": _pair("dense_weight_grad", _dense_weight_grad, (2,)),
        "sgd_update": _pair("sgd_update", _sgd_update, (0,)),
        # Writes grad_in and updates W and b in place.
        "dense_backward_sgd": _pair("dense_backward_sgd", _dense_backward_sgd, (0, 1, 5)),
        "softmax": _pair("softmax", _softmax, (1,)),
        "adam_step": _pair("adam_step", _adam_step, (0, 2, 3)),
    }
    for nesterov in (False, True):
        name = f"momentum_step[{'nesterov' if nesterov else 'momentum'}]"
        table[name] = _pair(name, _momentum_step(nesterov), (0, 2))
    for opt, (kind, outputs) in _OPTIMIZER_KINDS.items():
        name = f"optimizer_step[{opt}]"
        table[name] = _pair(name, _optimizer_step(kind), outputs)
    for act, kind in ACTIVATION_KINDS.items():
        # One kernel per activation for those without a setting; all go through the
        # dispatching pair below.
        if hasattr(kernels, f"{act}_forward"):
            name = f"{act}_forward"
            table[name] = _pair(name, _activation_forward(kind, False), (1,))
            name = f"{act}_backward"
            table[name] = _pair(name, _activation_backward(kind, False), (2,))
        name = f"activation_forward[{act}]"
        table[name] = _pair(name, _activation_forward(kind, True), (2,))
        name = f"activation_backward[{act}]"
        table[name] = _pair(name, _activation_backward(kind, True), (3,))
    for kernel, outputs in _CONV_OUTPUTS.items():
        for setting in CONV_SETTINGS:
            name = f"{kernel}[{setting}]"
            table[name] = _pair(name, _conv(kernel, setting), outputs)
    for kernel, outputs in _POOL_OUTPUTS.items():
        for setting in POOL_SETTINGS:
            name = f"{kernel}[{setting}]"
            table[name] = _pair(name, _pool(kernel, setting), outputs)
    for loss, kind in LOSS_KINDS.items():
        table[f"{loss}_loss"] = _pair(f"{loss}_loss", _loss(kind, False, False), returns=True)
        table[f"{loss}_grad"] = _pair(f"{loss}_grad", _loss(kind, False, True), (3,))
        for kernel, make, outputs, returns in (
            ("loss_value", _loss(kind, True, False), (), True),
            ("loss_grad", _loss(kind, True, True), (4,), False),
            ("batch_loss", _batch_loss(kind, False), (), True),
            ("batch_loss_grad", _batch_loss(kind, True), (3,), False),
            ("output_transform", _output_transform(kind), (2,), False),
        ):
            name = f"{kernel}[{loss}]"
            table[name] = _pair(name, make, outputs, returns)
    return table


#: kernel name (``"kernel[kind]"`` for one kind of a dispatching kernel) -> Comparison
COMPARISONS: dict[str, Comparison] = _build()

#: The kernels of ``fastnn.kernels`` that have no entry: the training and predict
#: engine, which the Network tests compare with the twin end to end, and the
#: full-batch loss and gradient, which tests/test_fullbatch.py compares so.
ENGINE_KERNELS: frozenset[str] = frozenset(
    {
        "fit_sgd",
        "fit_sgd_blocked",
        "fit_minibatch",
        "forward_batch",
        "fullbatch_loss_grad",
        "fit_sgd_conv",
        "fit_minibatch_conv",
        "forward_conv",
    }
)
