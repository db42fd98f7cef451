"""Conv2D, MaxPool2D and AvgPool2D against PyTorch: outputs, input gradients and the
SGD step each layer takes, one sample and a batch, float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.comparisons import max_relative_difference
from fastnn.conv_layers import AvgPool2D, Conv2D, MaxPool2D

torch = pytest.importorskip("torch")

DTYPES = (np.float32, np.float64)
LR = 0.125

# (in, out, kernel_size, stride, padding): stride 1 and 2, padding 0, 1 and "same",
# square and non-square kernels, one and several channels.
CONV_CASES = [
    (1, 6, 5, 1, 0),
    (6, 16, 5, 1, 0),
    (3, 4, (3, 2), 1, 1),
    (2, 5, (2, 4), 1, "same"),
    (3, 2, 3, 1, "same"),
    (4, 3, (3, 3), 2, 0),
    (2, 4, (3, 2), 2, 1),
    (3, 3, (1, 4), (2, 1), (0, 2)),
]


def tolerance(dtype) -> float:
    return 64 * float(np.finfo(dtype).eps)


def _close(measured, label, dtype, got, want) -> None:
    diff = measured(f"vs torch, {np.dtype(dtype).name}", max_relative_difference(got, want, 1.0))
    assert diff <= tolerance(dtype), f"{label}: relative difference {diff:.3e}"


@pytest.mark.parametrize("backend", ("numba", "numpy"))
@pytest.mark.parametrize("batch", [False, True], ids=["sample", "batch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_matches_torch(case, dtype, batch, backend, measured):
    c, o, k, s, p = case
    layer = Conv2D(c, o, k, s, p, dtype=dtype, backend=backend, seed=0)
    rng = np.random.default_rng(1)
    layer.bias[...] = rng.uniform(-1, 1, o)
    x = rng.uniform(-1, 1, (3, c, 11, 10)).astype(dtype)
    x = x if batch else x[0]
    ref = torch.nn.Conv2d(c, o, k, s, p, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.weights.astype(np.float64)))
        ref.bias.copy_(torch.from_numpy(layer.bias.astype(np.float64)))
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    yt = ref(xt if batch else xt[None])
    yt = yt if batch else yt[0]
    y = layer.forward(x)
    _close(measured, "forward", dtype, y, yt.detach().numpy())
    g = rng.uniform(-1, 1, y.shape).astype(dtype)
    yt.backward(torch.from_numpy(g.astype(np.float64)))
    w0, b0 = layer.weights.astype(np.float64), layer.bias.astype(np.float64)
    grad_in = layer.backward(g, LR)
    _close(measured, "input gradient", dtype, grad_in, xt.grad.numpy())
    _close(measured, "weights", dtype, layer.weights, w0 - LR * ref.weight.grad.numpy())
    _close(measured, "bias", dtype, layer.bias, b0 - LR * ref.bias.grad.numpy())


POOL_CASES = [(2, None), (3, 2), ((3, 2), (1, 2)), ((2, 3), 1)]


@pytest.mark.parametrize("backend", ("numba", "numpy"))
@pytest.mark.parametrize("batch", [False, True], ids=["sample", "batch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_matches_torch(kind, case, dtype, batch, backend, measured):
    k, s = case
    layer = (MaxPool2D if kind == "max" else AvgPool2D)(k, s, dtype=dtype, backend=backend)
    rng = np.random.default_rng(2)
    # Values on a coarse grid: ties within max-pool windows, which PyTorch breaks
    # towards the first maximum.
    x = (rng.integers(-3, 4, (2, 3, 9, 8)) / 2).astype(dtype)
    x = x if batch else x[0]
    xt = torch.from_numpy(x).requires_grad_(True)
    pool = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    yt = pool(xt, k, s)
    y = layer.forward(x)
    _close(measured, "forward", dtype, y, yt.detach().numpy())
    g = rng.uniform(-1, 1, y.shape).astype(dtype)
    yt.backward(torch.from_numpy(g))
    _close(measured, "input gradient", dtype, layer.backward(g, LR), xt.grad.numpy())
