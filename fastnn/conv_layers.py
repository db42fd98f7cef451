"""Convolutional layers: Conv2D, MaxPool2D, AvgPool2D, Flatten and Dropout.

They follow the classic design of ``fastnn.layers``: ``forward(input) -> output`` and
``backward(output_gradient, learning_rate) -> input_gradient``, where ``backward``
uses the weights ``forward`` used and then takes a plain SGD step. A layer takes one
sample as a (C, H, W) array or a batch as (N, C, H, W); a batch's parameter gradient
is the sum over its samples (a mean loss's gradient already carries the 1/N).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from .codes import AVGPOOL2D, CONV2D, DROPOUT, FLATTEN, MAXPOOL2D
from .initializers import initialize
from .layers import Layer, PlanEntry
from .validation import check_positive_float, check_positive_int

Pair = tuple[int, int]


def _pair(name: str, value) -> Pair:
    """An int or a pair of ints, as a pair of positive ints."""
    items = value if isinstance(value, tuple | list) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name}={value!r} must be an int or a pair of ints, e.g. 3 or (3, 5)")
    return check_positive_int(name, items[0]), check_positive_int(name, items[1])


def _padding(value) -> Pair | str:
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise ValueError(f'padding={value!r}: use "same", "valid", an int or a pair of ints')
        return value
    items = value if isinstance(value, tuple | list) else (value, value)
    ok = len(items) == 2 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in items
    )
    if not ok:
        raise ValueError(
            f"padding={value!r} must be a non-negative int, a pair of them, "
            '"same" or "valid", e.g. padding=1'
        )
    return int(items[0]), int(items[1])


# onnxruntime (1.x) has no float64 kernel for Conv or AveragePool: a float64 network
# lowers them onto operators it runs in float64 (Pad, Slice, Concat, MatMul, Sum), so
# the exported file runs in the network's own precision. float32 keeps the native ops.
_INT64_MAX = np.iinfo(np.int64).max


def _onnx_ints(graph, stem: str, values) -> str:
    return graph.const(stem, np.array(values, dtype=np.int64))


def _onnx_windows(graph, x: str, kernel: Pair, stride: Pair, stem: str) -> list[str]:
    """For each kernel offset (i, j), in row order, the (N, C, HO, WO) slice of ``x``
    that offset reads: x[:, :, i::SH, j::SW] cut to HO rows and WO columns."""
    (kh, kw), (sh, sw) = kernel, stride
    axes = _onnx_ints(graph, f"{stem}_axes", [2, 3])
    steps = _onnx_ints(graph, f"{stem}_steps", [sh, sw])
    windows = []
    for i in range(kh):
        for j in range(kw):
            # Ends counted back from the far edge stop the slice after exactly HO rows
            # (WO columns) whatever H and W are: rows i, i + SH, ... < H - (KH - 1 - i).
            starts = _onnx_ints(graph, f"{stem}_starts", [i, j])
            ends = _onnx_ints(
                graph, f"{stem}_ends", [-(kh - 1 - i) or _INT64_MAX, -(kw - 1 - j) or _INT64_MAX]
            )
            windows.append(graph.node("Slice", [x, starts, ends, axes, steps]))
    return windows


class _Spatial(Layer):
    """Shared input handling of the layers on (C, H, W) samples."""

    n_params = 0
    spatial = True

    def shape_out(self, shape: tuple[int, ...], index: int) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ValueError(
                f"layers[{index}] is {self!r}, which takes (C, H, W) samples, but receives "
                f"samples of shape {shape}: it must come before any Flatten or Dense layer"
            )
        try:
            return self.output_shape(shape)
        except ValueError as exc:
            raise ValueError(f"layers[{index}] receives samples of shape {shape}: {exc}") from None

    def bind(self, buffer: np.ndarray) -> None:
        """Parameterless layers take no part of the parameter buffer."""

    def initialize(self, rng: np.random.Generator, init: str) -> None:
        """Nothing to initialise."""

    def _input(self, input, shape: tuple[int, ...] | None = None) -> np.ndarray:
        x = np.ascontiguousarray(input, dtype=self.dtype)
        if x.ndim not in (3, 4):
            raise ValueError(
                f"{type(self).__name__}: input has shape {x.shape}, expected (C, H, W) for "
                "one sample or (N, C, H, W) for a batch"
            )
        self.output_shape(x.shape[-3:])  # raises when the input is too small
        return x

    def _gradient(self, value, expected: tuple[int, ...]) -> np.ndarray:
        g = np.ascontiguousarray(value, dtype=self.dtype)
        if g.shape != expected:
            raise ValueError(
                f"{type(self).__name__}: output_gradient has shape {g.shape}, expected "
                f"{expected} (the shape of this layer's last output)"
            )
        return g

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError


class Conv2D(_Spatial):
    """A 2-D convolution (a cross-correlation, as ``torch.nn.Conv2d`` computes it).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
        (KH, KW).
    stride : int or (int, int), default 1
    padding : int, (int, int), "same" or "valid", default 0
        Zeros added on each side. "same" keeps H and W (stride 1 only; an even kernel
        pads one more at the bottom and right, as PyTorch does); "valid" is 0.
    init : str, optional
        Weight initialisation, as for ``Dense``, with fan-in C·KH·KW and fan-out
        O·KH·KW. "xavier" by default for a stand-alone layer.
    dtype : np.float32 or np.float64
    backend : "numba" or "numpy"
    seed : int, optional
        Seed of a stand-alone layer's initial weights.

    Attributes
    ----------
    weights : ndarray, shape (out_channels, in_channels, KH, KW)
    bias : ndarray, shape (out_channels,)
        Views into one parameter buffer, W first, as in a ``Dense`` layer.
    """

    saved_name, code = "Conv2D", CONV2D
    settings = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "init")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        init: str | None = None,
        *,
        dtype=np.float64,
        backend: str = "numba",
        seed: int | None = None,
    ) -> None:
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = _pair("stride", stride)
        self.padding = _padding(padding)
        if self.padding == "same" and self.stride != (1, 1):
            raise ValueError(
                f'padding="same" needs stride=1, got stride={stride!r}: pass an explicit '
                "padding for a strided convolution"
            )
        self._setup_params(init, dtype, backend, seed)

    @property
    def n_params(self) -> int:  # type: ignore[override]
        kh, kw = self.kernel_size
        return self.out_channels * (self.in_channels * kh * kw + 1)

    @classmethod
    def param_count(cls, spec: Mapping[str, Any]) -> int:
        c = check_positive_int("in_channels", spec.get("in_channels"))
        o = check_positive_int("out_channels", spec.get("out_channels"))
        kh, kw = _pair("kernel_size", spec.get("kernel_size"))
        return o * (c * kh * kw + 1)

    def plan_entry_at(self, shape: tuple[int, ...]) -> PlanEntry:
        # The kernels' ``geo``: (C, H, W, O, KH, KW, SH, SW, PH, PW, HO, WO).
        top, _, left, _ = self.pads(shape)
        o, ho, wo = self.output_shape(shape)
        geo = (*shape, o, *self.kernel_size, *self.stride, top, left, ho, wo)
        return PlanEntry(CONV2D, self.n_params, cfg=geo)

    def bind(self, buffer: np.ndarray) -> None:
        """Make ``weights`` and ``bias`` views of ``buffer`` (W first, then B)."""
        n_w = self.n_params - self.out_channels
        self.weights = buffer[:n_w].reshape(self.out_channels, self.in_channels, *self.kernel_size)
        self.bias = buffer[n_w : self.n_params]

    def initialize(self, rng: np.random.Generator, init: str) -> None:
        kh, kw = self.kernel_size
        flat = self.weights.reshape(self.out_channels, -1)  # a view: writes reach weights
        initialize(init, flat, self.bias, rng, fan_out=self.out_channels * kh * kw)

    def pads(self, input_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) zeros added to an input of ``input_shape``."""
        kh, kw = self.kernel_size
        if self.padding == "same":
            # PyTorch's split: the odd one of an even kernel goes to the bottom/right.
            return (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2
        ph, pw = (0, 0) if self.padding == "valid" else self.padding
        return ph, ph, pw, pw

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(O, HO, WO) of a (C, H, W) input; a ValueError when it does not fit."""
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise ValueError(
                f"{self!r}: input shape {shape} does not fit, expected ({self.in_channels}, H, W)"
            )
        top, bottom, left, right = self.pads(shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        h, w = shape[1] + top + bottom, shape[2] + left + right
        if h < kh or w < kw:
            raise ValueError(
                f"{self!r}: input {shape} padded to ({h}, {w}) is smaller than the "
                f"{kh}x{kw} kernel: use a larger input, more padding or a smaller kernel"
            )
        return self.out_channels, (h - kh) // sh + 1, (w - kw) // sw + 1

    def _geometry(self, x: np.ndarray) -> tuple[Pair, tuple[int, ...]]:
        top, _, left, _ = self.pads(x.shape[-3:])
        return (top, left), (*x.shape[:-3], *self.output_shape(x.shape[-3:]))

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._input(input)
        self.input = x
        padding, shape = self._geometry(x)
        out = np.empty(shape, dtype=self.dtype)
        op = self._ops.conv2d_forward if x.ndim == 3 else self._ops.conv2d_forward_batch
        op(x, self.weights, self.bias, self.stride, padding, out)
        return out

    def backward(self, output_gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        if self.input is None:
            raise RuntimeError("Conv2D.backward called before forward: run forward first")
        lr = check_positive_float("learning_rate", learning_rate)
        x = self.input
        padding, shape = self._geometry(x)
        g = self._gradient(output_gradient, shape)
        grad_in = np.empty(x.shape, dtype=self.dtype)
        ops = self._ops
        if x.ndim == 3:
            ops.conv2d_backward_sgd(x, self.weights, self.bias, g, self.stride, padding, lr,
                                    grad_in)  # fmt: skip
        else:
            dW, db = np.empty_like(self.weights), np.empty_like(self.bias)
            ops.conv2d_input_grad_batch(self.weights, g, self.stride, padding, grad_in)
            ops.conv2d_weight_grad_batch(x, g, self.stride, padding, dW, db)
            ops.sgd_update(self.weights, dW, lr)
            ops.sgd_update(self.bias, db, lr)
        return grad_in

    def onnx_nodes(self, graph, x: str, index: int) -> str:
        top, bottom, left, right = self.pads(())  # the same for any input size
        stem = f"conv{index}"
        if self.dtype == np.float32:
            w = graph.const(f"{stem}_weight", self.weights.copy())
            b = graph.const(f"{stem}_bias", self.bias.copy())
            pads = [top, left, bottom, right]  # ONNX's order: all begins, then all ends
            return graph.node(
                "Conv",
                [x, w, b],
                kernel_shape=list(self.kernel_size),
                strides=list(self.stride),
                pads=pads,
            )
        # float64, as im2col: the windows side by side in channels, (i, j, c) order,
        # times the weights laid out in that order, (KH·KW·C, O).
        if top or bottom or left or right:
            pads = _onnx_ints(graph, f"{stem}_pads", [0, 0, top, left, 0, 0, bottom, right])
            x = graph.node("Pad", [x, pads])
        windows = _onnx_windows(graph, x, self.kernel_size, self.stride, stem)
        cols = graph.node("Concat", windows, axis=1)
        w = self.weights.transpose(2, 3, 1, 0).reshape(-1, self.out_channels)
        rows = graph.node("Transpose", [cols], perm=[0, 2, 3, 1])  # (N, HO, WO, KH·KW·C)
        out = graph.node("MatMul", [rows, graph.const(f"{stem}_weight", w.copy())])
        out = graph.node("Add", [out, graph.const(f"{stem}_bias", self.bias.copy())])
        return graph.node("Transpose", [out], perm=[0, 3, 1, 2])

    def __repr__(self) -> str:
        return (
            f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r})"
        )


class _Pool(_Spatial):
    settings = ("kernel_size", "stride")

    def __init__(self, kernel_size, stride=None, *, dtype=np.float64, backend="numba") -> None:
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else _pair("stride", stride)
        self.configure(dtype, backend)
        self.input_shape: tuple[int, ...] | None = None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(C, HO, WO) of a (C, H, W) input; a ValueError when it does not fit."""
        shape = tuple(int(v) for v in input_shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if len(shape) != 3 or shape[1] < kh or shape[2] < kw:
            raise ValueError(
                f"{self!r}: input shape {shape} does not fit: expected (C, H, W) with "
                f"H >= {kh} and W >= {kw}"
            )
        return shape[0], (shape[1] - kh) // sh + 1, (shape[2] - kw) // sw + 1

    def plan_entry_at(self, shape: tuple[int, ...]) -> PlanEntry:
        # The kernels' ``pgeo``: (C, H, W, KH, KW, SH, SW, HO, WO).
        _, ho, wo = self.output_shape(shape)
        return PlanEntry(self.code, cfg=(*shape, *self.kernel_size, *self.stride, ho, wo))

    def _out_shape(self, x_shape) -> tuple[int, ...]:
        return (*x_shape[:-3], *self.output_shape(x_shape[-3:]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride})"


class MaxPool2D(_Pool):
    """The maximum of each (KH, KW) window, every ``stride`` (default: the kernel size).

    Windows lie inside the input (PyTorch's floor mode, no padding). On ties the
    gradient goes to the first maximum in row order, as in PyTorch; a NaN in a window
    is its maximum.
    """

    saved_name, code = "MaxPool2D", MAXPOOL2D

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._input(input)
        shape = self._out_shape(x.shape)
        out = np.empty(shape, dtype=self.dtype)
        self.argmax = np.empty(shape, dtype=np.int64)
        self._ops.maxpool2d_forward(x, self.kernel_size, self.stride, out, self.argmax)
        self.input_shape = x.shape
        return out

    def backward(self, output_gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        if self.input_shape is None:
            raise RuntimeError("MaxPool2D.backward called before forward: run forward first")
        g = self._gradient(output_gradient, self.argmax.shape)
        grad_in = np.empty(self.input_shape, dtype=self.dtype)
        self._ops.maxpool2d_backward(g, self.argmax, grad_in)
        return grad_in

    def onnx_nodes(self, graph, x: str, index: int) -> str:
        # Floor mode, no padding: the windows the kernels take.
        return graph.node(
            "MaxPool", [x], kernel_shape=list(self.kernel_size), strides=list(self.stride)
        )


class AvgPool2D(_Pool):
    """The mean of each (KH, KW) window, every ``stride`` (default: the kernel size)."""

    saved_name, code = "AvgPool2D", AVGPOOL2D

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._input(input)
        out = np.empty(self._out_shape(x.shape), dtype=self.dtype)
        self._ops.avgpool2d_forward(x, self.kernel_size, self.stride, out)
        self.input_shape = x.shape
        return out

    def backward(self, output_gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        if self.input_shape is None:
            raise RuntimeError("AvgPool2D.backward called before forward: run forward first")
        g = self._gradient(output_gradient, self._out_shape(self.input_shape))
        grad_in = np.empty(self.input_shape, dtype=self.dtype)
        self._ops.avgpool2d_backward(g, self.kernel_size, self.stride, grad_in)
        return grad_in

    def onnx_nodes(self, graph, x: str, index: int) -> str:
        kh, kw = self.kernel_size
        if self.dtype == np.float32:
            # No padding, so every window holds KH·KW values and count_include_pad
            # changes nothing; 0 says so.
            return graph.node(
                "AveragePool",
                [x],
                kernel_shape=[kh, kw],
                strides=list(self.stride),
                count_include_pad=0,
            )
        # float64: the sum of the windows times 1 / (KH·KW), as the kernels compute it.
        windows = _onnx_windows(graph, x, self.kernel_size, self.stride, f"avgpool{index}")
        total = graph.node("Sum", windows)
        scale = graph.const(f"avgpool{index}_scale", np.array(1.0 / (kh * kw), self.dtype))
        return graph.node("Mul", [total, scale])


class Flatten(_Spatial):
    """(C, H, W) to a vector of C·H·W in C order, as ``torch.flatten``; a batch
    (N, C, H, W) to (N, C·H·W)."""

    saved_name, code = "Flatten", FLATTEN

    def __init__(self, *, dtype=np.float64, backend: str = "numba") -> None:
        self.configure(dtype, backend)
        self.input_shape: tuple[int, ...] | None = None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int]:
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3:
            raise ValueError(f"Flatten: input shape {shape} does not fit, expected (C, H, W)")
        return (shape[0] * shape[1] * shape[2],)

    def plan_entry(self) -> PlanEntry:
        return PlanEntry(FLATTEN)

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._input(input)
        self.input_shape = x.shape
        return x.reshape(*x.shape[:-3], -1)

    def backward(self, output_gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        if self.input_shape is None:
            raise RuntimeError("Flatten.backward called before forward: run forward first")
        expected = (*self.input_shape[:-3], int(np.prod(self.input_shape[-3:])))
        return self._gradient(output_gradient, expected).reshape(self.input_shape)

    def onnx_nodes(self, graph, x: str, index: int) -> str:
        return graph.node("Flatten", [x], axis=1)  # (N, C, H, W) -> (N, C·H·W), C order

    def __repr__(self) -> str:
        return "Flatten()"


class Dropout(Layer):
    """Inverted dropout: while training, each value is zeroed with probability
    ``rate`` and the others are scaled by 1 / (1 - rate), so that the expected
    output equals the input and inference needs no rescaling.

    In a ``Network``, dropout acts during ``fit`` only, with masks drawn from the
    network's seeded generator; ``predict``, ``evaluate`` and ONNX export treat it as
    the identity. In the design's manual loop, ``forward`` drops values while
    ``training`` is True (the default, as the manual loop trains), drawing each mask
    from the layer's own generator (seeded by ``seed``), and ``backward`` multiplies
    the gradient by that same mask; set ``training = False`` to run the layer as the
    identity, e.g. to predict by hand.

    Parameters
    ----------
    rate : float
        The probability of dropping a value, in [0, 1).
    seed : int, optional
        Seed of a stand-alone layer's masks.
    """

    saved_name, code = "Dropout", DROPOUT
    settings = ("rate",)
    n_params = 0

    def __init__(
        self, rate: float, *, dtype=np.float64, backend: str = "numba", seed: int | None = None
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"rate={rate!r} must be a number in [0, 1), e.g. rate=0.5")
        self.rate = float(rate)
        self.training = True
        self.rng = np.random.default_rng(seed)
        self.configure(dtype, backend)
        self.mask: np.ndarray | None = None

    def bind(self, buffer: np.ndarray) -> None:
        """Dropout has no parameters."""

    def initialize(self, rng: np.random.Generator, init: str) -> None:
        """Dropout has no parameters."""

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(int(v) for v in input_shape)

    def plan_entry(self) -> PlanEntry:
        return PlanEntry(DROPOUT, hyp=(self.rate,))

    def onnx_nodes(self, graph, x: str, index: int) -> str:
        return graph.node("Identity", [x])  # the identity outside training

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(input, dtype=self.dtype)
        if not self.training or self.rate == 0:
            self.mask = None
            return x.copy()
        keep = self.rng.random(x.shape) >= self.rate
        self.mask = keep * self.dtype.type(1.0 / (1.0 - self.rate))
        return x * self.mask

    def backward(self, output_gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        g = np.ascontiguousarray(output_gradient, dtype=self.dtype)
        if self.mask is None:
            return g.copy()
        if g.shape != self.mask.shape:
            raise ValueError(
                f"Dropout: output_gradient has shape {g.shape}, expected {self.mask.shape} "
                "(the shape of this layer's last output)"
            )
        return g * self.mask

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"
