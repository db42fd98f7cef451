"""Every Numba kernel against its NumPy twin: one group per kernel, float32.

The kernels and their arguments come from ``fastnn.comparisons.COMPARISONS``. Both
implementations are checked against each other on the benchmark's own arguments
before either is timed.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.comparisons import COMPARISONS, SHAPES, max_relative_difference, run

#: (rows, columns) per benchmark size: a 784-input, 128-unit layer when timed; the
#: largest shape of the kernel tests in the smoke pass.
SHAPE = {"full": (128, 784), "quick": (64, 128), "smoke": SHAPES[-1]}
DTYPE = np.float32


def tolerance(dtype, shape) -> float:
    # Fastmath reassociation reorders sums: the error grows with the summed length.
    return 64 * float(np.finfo(dtype).eps) * max(1.0, np.sqrt(max(shape) / 16))


@pytest.mark.parametrize("implementation", ("kernel", "twin"))
@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_kernel(benchmark, bench_size, name, implementation):
    comparison = COMPARISONS[name]
    shape = SHAPE[bench_size]
    args = comparison.make_args(np.random.default_rng(0), DTYPE, shape)
    got = run(comparison, args)
    want = run(comparison, args, reference=True)
    assert len(got) == len(want) > 0
    for g, w in zip(got, want, strict=True):
        diff = max_relative_difference(g, w, floor=1.0)
        assert diff <= tolerance(DTYPE, shape), f"{name}: kernel and twin differ by {diff:.3e}"
    benchmark.group = name
    benchmark.extra_info.update(shape=list(shape), dtype=np.dtype(DTYPE).name)
    func = comparison.kernel if implementation == "kernel" else comparison.reference
    # In-place kernels keep updating the same arrays: the values drift, the work does not.
    benchmark(func, *args)
