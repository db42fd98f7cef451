"""Conv2D and pooling: kernels against their NumPy twins over many geometries,
bit-identical repeats at any buffer alignment, central differences for every layer,
and the layers' checks of their parameters and inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gradients import LR, check, numerical_gradient

from fastnn import kernels, reference
from fastnn.comparisons import max_relative_difference
from fastnn.conv_layers import AvgPool2D, Conv2D, Dropout, Flatten, MaxPool2D

DTYPES = (np.float32, np.float64)
BACKENDS = ("numba", "numpy")


def tolerance(dtype, terms: int) -> float:
    # Sums of up to ``terms`` products, in a different order from the twin's.
    return 16 * float(np.finfo(dtype).eps) * max(1.0, np.sqrt(terms))


@st.composite
def geometries(draw):
    """A convolution's geometry; its input always fits the (padded) kernel."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    h = draw(st.integers(max(1, kh - 2 * ph), 13))
    w = draw(st.integers(max(1, kw - 2 * pw), 13))
    c, o, n = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return {
        "x": (n, c, h, w),
        "W": (o, c, kh, kw),
        "out": (n, o, ho, wo),
        "stride": (sh, sw),
        "padding": (ph, pw),
    }


def _conv_args(rng, dtype, geo):
    def u(shape):
        return rng.uniform(-2, 2, shape).astype(dtype)

    return u(geo["x"]), u(geo["W"]), u(geo["W"][0]), u(geo["out"])


def _both(name, *args, outputs):
    """Run kernel ``name`` and its twin on copies of ``args``; the written arrays."""
    results = []
    for impl in (kernels, reference):
        call = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        getattr(impl, name)(*call)
        results.append([call[i] for i in outputs])
    return results


@settings(max_examples=40, deadline=None)
@given(geo=geometries(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_conv_kernels_match_twin(geo, dtype, seed):
    rng = np.random.default_rng(seed)
    x, W, b, g = _conv_args(rng, dtype, geo)
    s, p = geo["stride"], geo["padding"]
    terms = int(np.prod(geo["W"][1:])) * geo["W"][0] * geo["out"][2] * geo["out"][3]
    nan = np.full
    calls = {
        "conv2d_forward_batch": ((x, W, b, s, p, nan(g.shape, np.nan, dtype)), (5,)),
        "conv2d_forward": ((x[0], W, b, s, p, nan(g.shape[1:], np.nan, dtype)), (5,)),
        "conv2d_input_grad_batch": ((W, g, s, p, nan(x.shape, np.nan, dtype)), (4,)),
        "conv2d_input_grad": ((W, g[0], s, p, nan(x.shape[1:], np.nan, dtype)), (4,)),
        "conv2d_weight_grad_batch": (
            (x, g, s, p, nan(W.shape, np.nan, dtype), nan(b.shape, np.nan, dtype)),
            (4, 5),
        ),
        "conv2d_weight_grad_acc": ((x[0], g[0], s, p, W, b), (4, 5)),
        "conv2d_backward_sgd": (
            (x[0], W, b, g[0], s, p, 0.25, nan(x.shape[1:], np.nan, dtype)),
            (1, 2, 7),
        ),
    }
    for name, (args, outputs) in calls.items():
        got, want = _both(name, *args, outputs=outputs)
        for k, (a, e) in zip(outputs, zip(got, want, strict=True), strict=True):
            assert a.shape == e.shape and np.isfinite(a).all(), f"{name} args[{k}]"
            diff = max_relative_difference(a, e, floor=1.0)
            assert diff <= tolerance(dtype, terms), f"{name} args[{k}]: {diff:.3e} {geo}"


@st.composite
def pool_geometries(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(kh, 12)), draw(st.integers(kw, 12))
    lead = draw(st.sampled_from([(2,), (2, 3), (1, 1)]))
    return (*lead, h, w), (kh, kw), (sh, sw), (*lead, (h - kh) // sh + 1, (w - kw) // sw + 1)


@settings(max_examples=40, deadline=None)
@given(geo=pool_geometries(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16),
       ties=st.booleans())  # fmt: skip
def test_pool_kernels_match_twin(geo, dtype, seed, ties):
    xs, k, s, outs = geo
    rng = np.random.default_rng(seed)
    # Few distinct values make ties within a window common.
    x = (rng.integers(-2, 3, xs) if ties else rng.uniform(-2, 2, xs)).astype(dtype)
    g = rng.uniform(-2, 2, outs).astype(dtype)
    argmax = np.full(outs, -1, np.int64)
    reference.maxpool2d_forward(x, k, s, np.empty(outs, dtype), argmax)
    calls = {
        "maxpool2d_forward": ((x, k, s, np.empty(outs, dtype), np.empty(outs, np.int64)), (3, 4)),
        "maxpool2d_backward": ((g, argmax, np.empty(xs, dtype)), (2,)),
        "avgpool2d_forward": ((x, k, s, np.empty(outs, dtype)), (3,)),
        "avgpool2d_backward": ((g, k, s, np.empty(xs, dtype)), (3,)),
    }
    for name, (args, outputs) in calls.items():
        got, want = _both(name, *args, outputs=outputs)
        for a, e in zip(got, want, strict=True):
            if name.startswith("max"):
                np.testing.assert_array_equal(a, e, err_msg=name)  # selections: exact
            else:
                assert max_relative_difference(a, e, floor=1.0) <= tolerance(dtype, k[0] * k[1])


def test_maxpool_ties_go_to_the_first_maximum_and_nan_wins():
    x = np.array([[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, np.nan, 5.0]]])  # (1, 2, 4)
    out, argmax = np.empty((1, 1, 2)), np.empty((1, 1, 2), np.int64)
    for impl in (kernels, reference):
        impl.maxpool2d_forward(x, (2, 2), (2, 2), out, argmax)
        # Window 0 holds 3 at (0, 1) and (1, 0): the first in row order wins.
        assert argmax.tolist() == [[[1, 6]]]
        assert out[0, 0, 0] == 3.0 and np.isnan(out[0, 0, 1])


# -- determinism -------------------------------------------------------------------


def _at_offset(a: np.ndarray, offset: int) -> np.ndarray:
    """A copy of ``a`` starting ``offset`` bytes past a 64-byte boundary."""
    raw = np.zeros(a.nbytes + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    out = raw[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


LENET = {  # LeNet-5's two convolutions, a padded one, and a strided one
    "conv1": ((2, 1, 28, 28), (6, 1, 5, 5), (1, 1), (0, 0)),
    "conv2": ((2, 6, 12, 12), (16, 6, 5, 5), (1, 1), (0, 0)),
    "same": ((2, 3, 9, 10), (4, 3, 3, 4), (1, 1), (1, 1)),
    "strided": ((2, 3, 11, 9), (5, 3, 3, 2), (2, 2), (1, 0)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", sorted(LENET))
def test_bit_identical_at_every_alignment(case, dtype):
    xs, ws, stride, padding = LENET[case]
    rng = np.random.default_rng(3)
    n, _c, h, w = xs
    o, _, kh, kw = ws
    out_shape = (n, o, (h + 2 * padding[0] - kh) // stride[0] + 1,
                 (w + 2 * padding[1] - kw) // stride[1] + 1)  # fmt: skip
    x, W, b, g = (rng.uniform(-1, 1, s).astype(dtype) for s in (xs, ws, o, out_shape))
    results = []
    for offset in range(0, 64, np.dtype(dtype).itemsize):
        xa, Wa, ba, ga = (_at_offset(a, offset) for a in (x, W, b, g))
        outs = [_at_offset(np.zeros(s, dtype), offset) for s in (out_shape, xs, ws, (o,))]
        kernels.conv2d_forward_batch(xa, Wa, ba, stride, padding, outs[0])
        kernels.conv2d_input_grad_batch(Wa, ga, stride, padding, outs[1])
        kernels.conv2d_weight_grad_batch(xa, ga, stride, padding, outs[2], outs[3])
        one = _at_offset(np.zeros(xs[1:], dtype), offset)
        kernels.conv2d_backward_sgd(xa[0], Wa, ba, ga[0], stride, padding, 0.1, one)
        results.append([*(a.copy() for a in outs), one.copy(), Wa.copy(), ba.copy()])
    for other in results[1:]:
        for a, e in zip(other, results[0], strict=True):
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("case", sorted(LENET))
def test_a_sample_gets_the_same_bits_alone_and_anywhere_in_a_batch(case):
    xs, ws, stride, padding = LENET[case]
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (5, *xs[1:])).astype(np.float32)
    layer = Conv2D(ws[1], ws[0], ws[2:], stride, padding, dtype=np.float32, seed=0)
    w0 = layer.weights.copy()
    reversed_batch = layer.forward(x[::-1])
    batch = layer.forward(x)
    g = rng.uniform(-1, 1, batch.shape).astype(np.float32)
    grad_batch = layer.backward(g, 1e-30)  # a step too small to change a weight
    for s in range(5):
        np.testing.assert_array_equal(layer.forward(x[s]), batch[s])
        np.testing.assert_array_equal(reversed_batch[4 - s], batch[s])
        np.testing.assert_array_equal(layer.backward(g[s], 1e-30), grad_batch[s])
    np.testing.assert_array_equal(layer.weights, w0)


# -- gradients by central differences (float64) -------------------------------------


def _gradient_check(layer, x, measured, label, params=()):
    rng = np.random.default_rng(5)
    g = rng.uniform(-1, 1, layer.forward(x).shape)  # dC/dY of C = sum(g·Y)

    def cost() -> float:
        return float(np.sum(g * layer.forward(x)))

    numeric = [numerical_gradient(cost, x)] + [numerical_gradient(cost, p) for p in params]
    before = [p.copy() for p in params]
    layer.forward(x)
    check(measured, f"{label} dC/dx", layer.backward(g, LR), numeric[0])
    for name, p, old, num in zip(("W", "b"), params, before, numeric[1:], strict=False):
        check(measured, f"{label} dC/d{name}", (old - p) / LR, num)


CONV_CASES = [
    (3, 4, (3, 2), 1, 0),
    (2, 3, 3, 2, 1),
    (2, 2, (2, 4), 1, "same"),
    (1, 3, (3, 3), (2, 1), (0, 2)),
]


@pytest.mark.parametrize("batch", [False, True], ids=["sample", "batch"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_gradients(case, backend, batch, measured):
    c, o, k, s, p = case
    layer = Conv2D(c, o, k, s, p, backend=backend, seed=1)
    layer.bias[...] = np.random.default_rng(2).uniform(-1, 1, o)
    x = np.random.default_rng(3).uniform(-1, 1, (2, c, 7, 8) if batch else (c, 7, 8))
    _gradient_check(layer, x, measured, f"Conv2D{case}", (layer.weights, layer.bias))


@pytest.mark.parametrize("batch", [False, True], ids=["sample", "batch"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layer_type", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(("k", "s"), [(2, None), ((3, 2), (1, 2))], ids=str)
def test_pool_gradients(layer_type, k, s, backend, batch, measured):
    layer = layer_type(k, s, backend=backend)
    # Distinct values, so that no max-pool window is tied within a difference step.
    x = np.random.default_rng(6).permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0
    _gradient_check(layer, x if batch else x[0], measured, repr(layer))


def test_flatten_and_dropout_gradients(measured):
    x = np.random.default_rng(7).uniform(-1, 1, (2, 3, 4, 5))
    _gradient_check(Flatten(), x, measured, "Flatten")
    _gradient_check(Flatten(), x[0], measured, "Flatten sample")

    class SameMask:  # Dropout drawing the same mask on every forward
        def __init__(self) -> None:
            self.layer = Dropout(0.5)

        def forward(self, x):
            self.layer.rng = np.random.default_rng(0)
            return self.layer.forward(x)

        def backward(self, g, lr):
            return self.layer.backward(g, lr)

    _gradient_check(SameMask(), x, measured, "Dropout")


# -- the layers ----------------------------------------------------------------------


def test_conv2d_shapes_and_parameter_views():
    layer = Conv2D(3, 8, (3, 5), stride=2, padding=(1, 2))
    assert layer.weights.shape == (8, 3, 3, 5) and layer.bias.shape == (8,)
    assert layer.output_shape((3, 9, 10)) == (8, 5, 5)
    buffer = np.zeros(layer.n_params)
    layer.bind(buffer)
    layer.weights[1, 2, 0, 4] = 7.0
    layer.bias[3] = 2.0
    assert np.shares_memory(buffer, layer.weights) and buffer[layer.weights.size + 3] == 2.0
    assert buffer[((1 * 3 + 2) * 3 + 0) * 5 + 4] == 7.0
    assert Conv2D(2, 4, 4, padding="same").output_shape((2, 6, 7)) == (4, 6, 7)
    assert Conv2D(2, 4, 3, padding="valid").output_shape((2, 6, 7)) == (4, 4, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel_size": 0}, "kernel_size=0"),
        ({"kernel_size": (3, 2, 1)}, "kernel_size"),
        ({"stride": -1}, "stride=-1"),
        ({"padding": -1}, "padding=-1"),
        ({"padding": "full"}, "'full'"),
        ({"padding": "same", "stride": 2}, "stride=1"),
        ({"init": "uniform"}, "'uniform'"),
    ],
)
def test_conv2d_rejects_bad_parameters(kwargs, match):
    args = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        Conv2D(**args)


def test_layers_name_the_shapes_when_the_input_is_too_small():
    with pytest.raises(ValueError, match=r"\(1, 4, 4\).*5x5 kernel"):
        Conv2D(1, 6, 5).output_shape((1, 4, 4))
    with pytest.raises(ValueError, match=r"\(3, 6, 6\).*\(2, H, W\)"):
        Conv2D(2, 6, 3).forward(np.zeros((3, 6, 6)))
    with pytest.raises(ValueError, match=r"H >= 3"):
        MaxPool2D(3).output_shape((2, 2, 5))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        AvgPool2D(2).forward(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="rate=1"):
        Dropout(1)
    with pytest.raises(ValueError, match="output_gradient has shape"):
        layer = MaxPool2D(2)
        layer.forward(np.zeros((1, 4, 4)))
        layer.backward(np.zeros((1, 3, 2)), 0.1)


def test_dropout_scales_what_it_keeps_and_is_the_identity_outside_training():
    x = np.ones((200, 50))
    drop = Dropout(0.25, seed=0)
    y = drop.forward(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_array_equal(drop.backward(x, 0.1), y)
    drop.training = False
    np.testing.assert_array_equal(drop.forward(x), x)
    np.testing.assert_array_equal(Dropout(0.5, seed=1).forward(x), Dropout(0.5, seed=1).forward(x))
