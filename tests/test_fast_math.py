"""The vectorised float32 tanh and sigmoid against float64 references."""

import numpy as np
import pytest

from fastnn.kernels import activations

GRID = np.concatenate(
    [np.linspace(-120, 120, 400_001), [0.0, -0.0, 1e-30, -1e-8, 0.3, -0.3, 9.0, 87.0, -87.5]]
).astype(np.float32)

REFERENCES = {
    "tanh": (activations.tanh_forward, np.tanh),
    "sigmoid": (activations.sigmoid_forward, lambda z: 1 / (1 + np.exp(-z))),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_float32_accuracy(name):
    kernel, reference = REFERENCES[name]
    out = np.empty_like(GRID)
    kernel(GRID, out)
    exact = reference(GRID.astype(np.float64))
    err = np.abs(out.astype(np.float64) - exact)
    # A few float32 ulps, or relative epsilons near the subnormal range.
    ulp = np.maximum(
        np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64),
        np.finfo(np.float32).eps * np.abs(exact),
    )
    flush = np.exp(-87.0)  # the kernels flush exp(-a) to zero for a > 87
    normal = np.abs(exact) > flush
    assert out.dtype == np.float32
    assert (err[normal] <= 4 * ulp[normal]).all(), (err / ulp)[normal].max()
    assert (err[~normal] <= flush).all()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_special_values(name):
    kernel, reference = REFERENCES[name]
    x = np.array([np.nan, np.inf, -np.inf, 0.0], dtype=np.float32)
    out = np.empty_like(x)
    kernel(x, out)
    assert np.isnan(out[0])
    np.testing.assert_array_equal(out[1:], reference(x[1:].astype(np.float64)))


def test_float64_tanh_within_a_few_ulps():
    x = np.concatenate([np.linspace(-25, 25, 200_001), np.geomspace(1e-12, 1, 20_000)])
    out = np.empty_like(x)
    activations.tanh_forward(x, out)
    exact = np.tanh(x.astype(np.longdouble))  # extended precision where the platform has it
    ulp = np.spacing(np.abs(exact).astype(np.float64))
    assert ((np.abs(out - exact) / ulp).astype(np.float64) <= 3).all()


def test_float64_sigmoid_uses_libm():
    x = np.linspace(-40, 40, 1001)
    out = np.empty_like(x)
    activations.sigmoid_forward(x, out)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x)), rtol=1e-15)
