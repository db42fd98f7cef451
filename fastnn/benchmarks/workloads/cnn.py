"""LeNet-5's convolutional part, one SGD step per sample and per batch of 64: fastnn's
compiled step against its layer kernels called from Python, the NumPy twin and
PyTorch eager (the systems live in ``..peers.lenet``)."""

from __future__ import annotations

import numpy as np

from .. import peers
from ..cases import Workload
from ..sizes import sizes_of

#: Samples per timed run at each benchmark size; the twin runs an eighth (at least a
#: batch), scaled.
SAMPLES = {"full": 256, "quick": 128, "smoke": 128}
TWIN_SHARE = 8
#: Largest difference of the weights, relative to their largest value, after the
#: checked steps (float32, summed in different orders).
RTOL = 1e-4


def _agree(got: np.ndarray, want: np.ndarray) -> str | None:
    scale = float(np.abs(want).max())
    diff = float(np.abs(got - want).max()) / scale
    if not diff < RTOL:
        return f"weights differ by {diff:.2e} of their largest value (limit {RTOL})"
    return None


def cnn_workload(batch_size: int, size: str = "full", threads: int = 1) -> Workload:
    """LeNet-5's convolutional part at ``batch_size`` (1: per-sample SGD), float32.

    Each system is checked against fastnn on ``2 * batch_size`` samples (the compiled
    step against the twin), from the same initial weights.
    """
    s = sizes_of(size)
    n = SAMPLES[size] if batch_size > 1 or size != "smoke" else 16
    systems = ("fastnn", "fastnn-numpy", "torch")
    if batch_size > 1:
        systems = ("fastnn", "fastnn-numpy", "torch", "fastnn-layers")

    def builders(n_samples: int, timed: bool) -> dict:
        def build(system: str):
            def make():
                lenet = peers.lenet
                X, G = lenet.data(n_samples)
                m, scale = n_samples, 1.0
                if timed and system == "fastnn-numpy":
                    m = max(batch_size, n_samples // TWIN_SHARE)
                    scale = n_samples / m
                notes = f"scaled x{scale:g}" if scale != 1 else ""
                make_state = lenet.SYSTEMS[system]
                return lenet.LenetCase(system, make_state, X[:m], G[:m], batch_size,
                                       scale=scale, notes=notes)  # fmt: skip

            return make

        return {system: build(system) for system in systems}

    label = "per-sample" if batch_size == 1 else f"batch{batch_size}"
    return Workload(
        name=f"cnn-lenet-{label}",
        group=f"cnn-lenet-{label}",
        unit="sample",
        builders=builders(n, True),
        check_builders=builders(2 * batch_size, False),
        compare=_agree,
        oracle="fastnn-numpy",
        repeats=s.repeats,
        notes=f"LeNet-5 conv part (1x28x28 -> 16x4x4), float32, SGD lr 0.01, {n} samples, "
        f"batch {batch_size}, {threads} thread(s); fastnn-layers: the batch kernels "
        "called layer by layer from Python",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [cnn_workload(1, size, threads), cnn_workload(64, size, threads)]
