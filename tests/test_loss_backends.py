"""``fastnn.losses`` runs on the backend it is given: the kernels or their NumPy twin."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastnn as fn

NAMES = ("mse", "binary_cross_entropy", "cross_entropy")
DTYPES = (np.float32, np.float64)


def _data(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    return rng.uniform(0, 1, shape).astype(dtype), rng.uniform(-3, 3, shape).astype(dtype)


@pytest.mark.parametrize("shape", [(5,), (4, 3)], ids=["sample", "batch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", NAMES)
def test_both_backends_give_the_same_loss_and_gradient(name, dtype, shape):
    y, z = _data(dtype, shape)
    value, prime = getattr(fn.losses, name), getattr(fn.losses, f"{name}_prime")
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    twin = value(y, z, backend="numpy")
    assert value(y, z, backend="numba") == pytest.approx(twin, rel=rtol)
    assert value(y, z) == value(y, z, backend="numba")  # numba stays the default
    got, want = prime(y, z, backend="numba"), prime(y, z, backend="numpy")
    assert got.dtype == want.dtype == dtype and got.shape == want.shape == shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


def test_the_numpy_backend_loads_no_numba():
    script = (
        "import sys, numpy as np, fastnn as fn\n"
        "y, z = np.zeros((2, 3)), np.ones((2, 3))\n"
        "for name in ('mse', 'binary_cross_entropy', 'cross_entropy'):\n"
        "    getattr(fn.losses, name)(y, z, backend='numpy')\n"
        "    getattr(fn.losses, name + '_prime')(y[0], z[0], backend='numpy')\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "False"


def test_an_unknown_backend_is_named_before_the_data_is_read():
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        fn.losses.mse_prime([1.0], [1.0, 2.0], backend="cuda")  # mismatched shapes too
