"""The ``cnn`` family: LeNet-5 on 1×28×28 images trained by per-sample SGD and on
batches of 64, and its predict on 1,024 rows; fastnn through ``Network.fit`` and
``predict`` against its NumPy twin, PyTorch eager and JAX. Each system's weights (or
probabilities) are checked against fastnn's (fastnn's against the twin's) before it
is timed; where fastnn cannot train a batch size, torch and JAX check each other."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import benchmarks as fb

#: (out, in, kh, kw) or (out, in) and the bias of each weighted layer.
SHAPES = [((6, 1, 5, 5), (6,)), ((16, 6, 5, 5), (16,)), ((120, 256), (120,)),
          ((84, 120), (84,)), ((10, 84), (10,))]  # fmt: skip
SYSTEMS = ("fastnn", "fastnn-numpy", "torch", "jax")


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("batch", [1, 64])
def test_cnn_lenet5_training(measure, bench_size, bench_threads, batch, system):
    """LeNet-5, one epoch of SGD at batch 1 and 64: µs per sample."""
    case = measure(fb.cnn_workload(batch, bench_size, bench_threads), system)
    got = [(W.shape, b.shape) for W, b in case.result()]
    assert got == SHAPES


@pytest.mark.parametrize("system", SYSTEMS)
def test_cnn_lenet5_predict(measure, bench_size, bench_threads, system):
    """LeNet-5's softmax probabilities: µs per row."""
    workload = fb.cnn_predict_workload(bench_size, bench_threads)
    out = measure(workload, system).result()
    assert out.shape[1] == 10
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_weights_that_differ_are_a_mismatch():
    from fastnn.benchmarks.peers import lenet

    compare = fb.cnn_workload(1, "smoke", 1).compare
    init = fb.as_float64(lenet.initial_weights())
    moved = [(W + 0.01, b) for W, b in init]
    assert compare(moved, moved) is None
    assert "differs" in compare([(W * 1.01, b) for W, b in moved], moved)
    # A run that leaves the weights where they started proves nothing.
    assert "vacuous" in compare(init, init)


class _Fixed(fb.Case):
    def __init__(self, system, value):
        super().__init__(system, units=1)
        self.value = value

    def run(self) -> None:
        pass

    def result(self):
        return self.value


def test_peers_check_each_other_without_fastnn():
    """With fastnn unavailable, a workload's ``fallbacks`` pair the peers up."""
    workload = fb.Workload(
        name="w",
        group="w",
        unit="sample",
        builders={},
        compare=fb.outputs_agree(1e-6, 0.0),
        repeats=1,
        fallbacks={"torch": "jax", "jax": "torch"},
    )
    one, two = np.ones(3), np.full(3, 2.0)
    cases = {"torch": _Fixed("torch", one), "jax": _Fixed("jax", one)}
    assert fb.cross_check(workload, cases) == {"torch": None, "jax": None}
    cases["jax"] = _Fixed("jax", two)
    assert all("differ" in p for p in fb.cross_check(workload, cases).values())
    workload.fallbacks = None
    problems = fb.cross_check(workload, cases)
    assert problems == {s: "no fastnn result to check against" for s in cases}
