"""Every Numba kernel against its pure-NumPy twin, through ``fastnn.comparisons``."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import kernels, reference
from fastnn.comparisons import (
    ACTIVATION_KINDS,
    ALPHA,
    COMPARISONS,
    ENGINE_KERNELS,
    LOSS_KINDS,
    SHAPES,
    kernel_name,
    max_relative_difference,
    run,
)

DTYPES = (np.float32, np.float64)
NAMES = sorted(COMPARISONS)


def tolerance(dtype) -> float:
    # Fastmath reassociation reorders sums and the vectorised tanh and sigmoid are a
    # few ulps off libm: a few tens of machine epsilons, relative to the largest value.
    return 64 * float(np.finfo(dtype).eps)


def test_table_covers_every_kernel_but_the_engine():
    covered = {kernel_name(name) for name in COMPARISONS}
    assert covered == set(kernels.__all__) - ENGINE_KERNELS
    assert set(reference.__all__) == set(kernels.__all__)


def test_dispatch_codes_match_the_twin():
    for name, kind in ACTIVATION_KINDS.items():
        assert getattr(reference.activations, name.upper()) == kind
    assert reference.losses.MSE == LOSS_KINDS["mse"]
    assert reference.losses.BINARY_CROSS_ENTROPY == LOSS_KINDS["binary_cross_entropy"]
    assert reference.losses.CROSS_ENTROPY == LOSS_KINDS["cross_entropy"]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", NAMES)
def test_kernel_matches_twin(name, dtype, shape, measured):
    comparison = COMPARISONS[name]
    args = comparison.make_args(np.random.default_rng(SHAPES.index(shape)), dtype, shape)
    got = run(comparison, args)
    want = run(comparison, args, reference=True)
    assert len(got) == len(want) > 0
    for g, w in zip(got, want, strict=True):
        assert np.shape(g) == np.shape(w)
        assert np.isfinite(g).all(), f"{name} left non-finite values: {g}"
        # floor=1: the values are of order one, and a one-class cross-entropy is 0.
        diff = max_relative_difference(g, w, floor=1.0)
        measured(f"kernel vs twin, {np.dtype(dtype).name}", diff)
        assert diff <= tolerance(dtype), f"{name}: relative difference {diff:.3e}"


@pytest.mark.parametrize("name", NAMES)
def test_kernel_writes_in_place_and_returns_none(name):
    comparison = COMPARISONS[name]
    args = comparison.make_args(np.random.default_rng(1), np.float64, (3, 7))
    before = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    value = comparison.kernel(*args)
    if comparison.returns:
        assert isinstance(value, float) and np.isfinite(value)
    else:
        assert value is None
    for i, (arg, old) in enumerate(zip(args, before, strict=True)):
        if not isinstance(arg, np.ndarray):
            continue
        if i in comparison.outputs:
            # The out arrays start NaN-filled: every element must have been written.
            assert not np.array_equal(arg, old, equal_nan=True), f"{name} left args[{i}]"
            assert np.isfinite(arg).all()
        else:
            np.testing.assert_array_equal(arg, old, err_msg=f"{name} changed input args[{i}]")


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    comparison = COMPARISONS[name]
    args = comparison.make_args(np.random.default_rng(2), np.float32, (4, 3))
    ids = [id(a) for a in args]
    comparison.kernel(*args)
    for i in comparison.outputs:
        assert id(args[i]) == ids[i]
        # Index outputs (max pooling's argmax) keep their integer type.
        assert args[i].dtype == np.float32 or args[i].dtype.kind == "i"
    if comparison.returns and kernel_name(name) != "batch_loss":
        # The specialisation Numba compiled for this call computes a per-sample loss
        # in float32 (batch_loss averages many samples in float64 on purpose).
        sig = next(s for s in comparison.kernel.nopython_signatures if _matches(s.args, args))
        assert str(sig.return_type) == "float32"


def _matches(types, args) -> bool:
    """Whether a compiled signature's array arguments have the dtypes of ``args``."""
    for t, a in zip(types, args, strict=True):
        if isinstance(a, np.ndarray) and str(getattr(t, "dtype", "")) != a.dtype.name:
            return False
    return True


# (1, 3): short enough for the inline gradient loop; (5, 4): the compiled loops.
@pytest.mark.parametrize("shape", [(1, 3), (5, 4)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("act", sorted(ACTIVATION_KINDS))
def test_activation_out_may_alias_input(act, dtype, shape, rng):
    kind = ACTIVATION_KINDS[act]
    x = rng.uniform(-3, 3, shape).astype(dtype)
    separate = np.empty_like(x)
    kernels.activation_forward(kind, x, separate, ALPHA)
    inplace = x.copy()
    kernels.activation_forward(kind, inplace, inplace, ALPHA)
    np.testing.assert_array_equal(inplace, separate)
    grad = rng.uniform(-1, 1, x.shape).astype(dtype)
    separate_g = np.empty_like(grad)
    kernels.activation_backward(kind, separate, grad, separate_g, ALPHA)
    kernels.activation_backward(kind, separate, grad, grad, ALPHA)
    np.testing.assert_array_equal(grad, separate_g)


@pytest.mark.parametrize("loss", sorted(LOSS_KINDS))
def test_output_transform_in_place(loss, rng):
    # Network.predict transforms its logits in place.
    kind = LOSS_KINDS[loss]
    Z = rng.uniform(-4, 4, (6, 3))
    separate = np.empty_like(Z)
    kernels.output_transform(kind, Z, separate)
    kernels.output_transform(kind, Z, Z)
    np.testing.assert_array_equal(Z, separate)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("loss", ["binary_cross_entropy", "cross_entropy"])
def test_cross_entropies_are_stable_for_extreme_logits(loss, dtype, measured):
    # Logits far beyond exp's range: the fused forms stay finite and agree with the twin.
    kind = LOSS_KINDS[loss]
    z = np.array([-2000.0, 0.0, 1500.0, -80.0], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 0.0], dtype=dtype)
    got, want = kernels.loss_value(kind, y, z), reference.loss_value(kind, y, z)
    if loss == "binary_cross_entropy":
        # Terms max(z, 0) - z·y + log(1 + e^-|z|): 2000, log 2, 1500, e^-80; their mean.
        exact = (2000 + np.log(2) + 1500 + np.exp(-80)) / 4
    else:
        # logsumexp(z) - z_true: 1500 (the other exponentials vanish) + 2000.
        exact = 1500 + 2000
    assert max_relative_difference(got, exact) <= tolerance(dtype)
    assert max_relative_difference(got, want) <= tolerance(dtype)
    g_k, g_r = np.empty_like(z), np.empty_like(z)
    kernels.loss_grad(kind, y, z, 1.0, g_k)
    reference.loss_grad(kind, y, z, 1.0, g_r)
    assert np.isfinite(g_k).all()
    diff = measured(f"extreme logits, {np.dtype(dtype).name}", max_relative_difference(g_k, g_r))
    assert diff <= tolerance(dtype)
