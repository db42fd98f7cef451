"""Inference of 784-256-128-10 with softmax outputs, in float32 and float64."""

from __future__ import annotations

import numpy as np

from .. import peers
from ..cases import Workload, outputs_agree
from ..data import Arch, initial_weights, synthetic
from ..sizes import sizes_of

#: Output tolerances (rtol, atol) per dtype: fastnn sums every output in input order,
#: BLAS in its own, so results differ by rounding only.
TOLERANCES = {np.float32: (1e-4, 1e-6), np.float64: (1e-10, 1e-12)}


def predict_workload(size: str = "full", threads: int = 1, dtype=np.float32) -> Workload:
    """Inference of 784-256-128-10 (ReLU, softmax probabilities) in ``dtype``.

    In float64 JAX is left out: it computes in float32 unless ``jax_enable_x64`` is
    set, which would change every other JAX row of the run.
    """
    s = sizes_of(size)
    dtype = np.dtype(dtype).type
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype {np.dtype(dtype).name}: use float32 or float64")
    arch = Arch((784, 256, 128, 10), "relu", "identity", "cross_entropy", dtype)
    init = initial_weights(arch)
    X, Y = synthetic(s.predict, 784, 10, dtype=dtype, seed=1)
    builders = {
        "fastnn": lambda: peers.fastnn.FastnnPredict(
            "fastnn", arch, init, X, backend="numba", threads=threads
        ),
        "fastnn-numpy": lambda: peers.fastnn.FastnnPredict(
            "fastnn-numpy", arch, init, X, backend="numpy", threads=threads
        ),
        "numpy-tuned": lambda: peers.numpy_tuned.TunedCase(arch, init, X, Y, "predict"),
        "torch": lambda: peers.torch.TorchCase(arch, init, X, Y, "predict"),
    }
    suffix = ""
    if dtype == np.float32:
        builders["jax"] = lambda: peers.jax.JaxCase(arch, init, X, Y, "predict")
    else:
        suffix = f"-{np.dtype(dtype).name}"
    return Workload(
        name=f"predict-{len(X)}-784-256-128-10{suffix}",
        group=f"predict-784-256-128-10{suffix}",
        unit="row",
        builders=builders,
        compare=outputs_agree(*TOLERANCES[dtype]),
        repeats=max(s.repeats, 2 * s.repeats - 3),
        notes=f"{len(X)} rows, {np.dtype(dtype).name}, {threads} thread(s)",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [predict_workload(size, threads, dtype) for dtype in TOLERANCES]
