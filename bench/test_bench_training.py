"""Training, inference and start-up benchmarks: one group per workload, one case per system.

The workloads and every system's implementation live in ``fastnn.benchmarks``, which
``python -m fastnn.benchmarks`` runs too. Each case is first run once from fastnn's
initial weights and checked against its reference (fastnn against its NumPy twin,
every other system against fastnn); only then is it timed.

Two kinds of case time something other than the full workload, and say so in
``extra_info``: at the quick and smoke sizes the NumPy twin runs a fraction of the
XOR epochs (``scale``), and the start-up cases are child processes, whose wall time
pytest-benchmark records (the runner reports the time measured inside the child).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import benchmarks as fb

TRAINING = ("fastnn", "fastnn-numpy", "numpy-tuned", "torch", "jax")
SCALING = ("fastnn", "numpy-tuned", "torch", "jax")


@pytest.mark.parametrize("system", TRAINING)
def test_persample(measure, bench_size, bench_threads, system):
    """784-128-10 tanh/sigmoid MSE, float32, per-sample SGD: µs per sample."""
    measure(fb.persample_workload(bench_size, bench_threads), system)


@pytest.mark.parametrize("system", ("fastnn", "fastnn-numpy"))
def test_xor(measure, bench_size, bench_threads, system):
    """The design's XOR, 10,000 epochs (the twin on a tenth, scaled)."""
    case = measure(fb.xor_workload(bench_size, bench_threads), system)
    assert case.units * case.scale == 4 * fb.SIZE_TABLE[bench_size].xor_epochs


@pytest.mark.parametrize("system", ("fastnn", "sklearn"))
def test_digits(measure, bench_size, bench_threads, system):
    """Digits 64-64-10, per-sample SGD: fastnn against MLPClassifier, equal accuracy."""
    case = measure(fb.digits_workload(bench_size, bench_threads), system)
    accuracy = case.result()
    assert 0.5 < accuracy <= 1.0, f"{system} reached a test accuracy of only {accuracy:.3f}"


@pytest.mark.parametrize("system", ("fastnn", "torch", "sklearn"))
def test_digits_race(measure, bench_size, bench_threads, system):
    """Digits 64-64-10: wall-clock time to 97 % test accuracy, each system's best settings."""
    case = measure(fb.race_workload(bench_size, bench_threads), system)
    accuracy, epochs = case.reached
    assert accuracy >= fb.SIZE_TABLE[bench_size].race_target
    assert 1 <= epochs <= fb.SIZE_TABLE[bench_size].race_max_epochs


@pytest.mark.parametrize("system", TRAINING)
def test_minibatch(measure, bench_size, bench_threads, system):
    """784-256-128-10 ReLU, cross-entropy, momentum 0.9, batch 64: µs per sample."""
    measure(fb.minibatch_workload(bench_size, bench_threads), system)


@pytest.mark.parametrize("system", TRAINING)
def test_predict(measure, bench_size, bench_threads, system):
    """Inference of 784-256-128-10 with softmax outputs: µs per row."""
    measure(fb.predict_workload(bench_size, bench_threads), system)


@pytest.mark.parametrize("system", ("fastnn", "fastnn-numpy", "numpy-tuned", "torch"))
def test_predict_float64(measure, bench_size, bench_threads, system):
    """The same inference in float64 (JAX, in float32 unless x64 is on, is left out)."""
    case = measure(fb.predict_workload(bench_size, bench_threads, np.float64), system)
    assert case.result().dtype == np.float64


@pytest.mark.parametrize("system", SCALING)
def test_scaling(measure, bench_size, bench_threads, system, hidden):
    """784-H-10 per-sample SGD for each width H (``hidden``, parametrised in conftest):
    where the cost leaves the cache."""
    measure(fb.scaling_workload(hidden, bench_size, bench_threads), system)


def _startup(name: str, size: str, threads: int) -> fb.Workload:
    workloads = {w.name: w for w in fb.startup_workloads(size, threads)}
    if name not in workloads:
        pytest.skip(
            f"{name} compiles every kernel the fit calls (about ten seconds), so the "
            "smoke pass leaves it out; run it with --benchmark-enable"
        )
    return workloads[name]


@pytest.mark.parametrize("system", ("fastnn", "torch", "jax"))
def test_startup_import(measure, bench_size, bench_threads, system):
    """``import MODULE`` in a fresh process."""
    case = measure(_startup("startup-import", bench_size, bench_threads), system)
    assert case.result()["seconds"] > 0


@pytest.mark.parametrize("system", ("fastnn", "fastnn-numpy"))
def test_startup_first_fit_warm_cache(measure, bench_size, bench_threads, system):
    """The first XOR fit in a fresh process, Numba cache warm."""
    measure(_startup("startup-xor-first-fit-warm-cache", bench_size, bench_threads), system)


@pytest.mark.parametrize("system", ("fastnn", "fastnn-numpy"))
def test_startup_first_fit_cold_cache(measure, bench_size, bench_threads, system):
    """The first XOR fit in a fresh process with an empty Numba cache: cold compile."""
    measure(_startup("startup-xor-first-fit-cold-cache", bench_size, bench_threads), system)
