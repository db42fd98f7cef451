"""The ``cnn`` family: LeNet-5's convolutional part, one SGD step per sample and per
batch of 64; fastnn's compiled step against its layer kernels from Python, the NumPy
twin and PyTorch eager. Each system's weights after ``2 * batch`` samples are checked
against fastnn's (fastnn's against the twin's) before it is timed."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import benchmarks as fb


@pytest.mark.parametrize(
    ("batch", "system"),
    [
        (1, "fastnn"),
        (1, "torch"),
        (64, "fastnn"),
        (64, "fastnn-layers"),
        (64, "torch"),
    ],
)
def test_cnn_lenet(measure, bench_size, bench_threads, batch, system):
    """LeNet-5's conv part: µs per sample."""
    case = measure(fb.cnn_workload(batch, bench_size, bench_threads), system)
    assert case.result().shape == (6 * 25 + 16 * 150,)


def test_weights_that_differ_are_a_mismatch():
    compare = fb.cnn_workload(64, "smoke", 1).compare
    want = np.linspace(-1, 1, 100)
    assert compare(want + 1e-6, want) is None
    assert "differ" in compare(want * 1.01, want)
