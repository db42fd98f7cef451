"""Inference of 784-256-128-10 with softmax outputs."""

from __future__ import annotations

from .. import peers
from ..cases import Workload, outputs_agree
from ..data import Arch, initial_weights, synthetic
from ..sizes import sizes_of


def predict_workload(size: str = "full", threads: int = 1) -> Workload:
    """Inference of 784-256-128-10 (ReLU, softmax probabilities), float32."""
    s = sizes_of(size)
    arch = Arch((784, 256, 128, 10), "relu", "identity", "cross_entropy")
    init = initial_weights(arch)
    X, Y = synthetic(s.predict, 784, 10, seed=1)
    return Workload(
        name=f"predict-{len(X)}-784-256-128-10",
        group="predict-784-256-128-10",
        unit="row",
        builders={
            "fastnn": lambda: peers.fastnn.FastnnPredict(
                "fastnn", arch, init, X, backend="numba", threads=threads
            ),
            "fastnn-numpy": lambda: peers.fastnn.FastnnPredict(
                "fastnn-numpy", arch, init, X, backend="numpy", threads=threads
            ),
            "numpy-tuned": lambda: peers.numpy_tuned.TunedCase(arch, init, X, Y, "predict"),
            "torch": lambda: peers.torch.TorchCase(arch, init, X, Y, "predict"),
            "jax": lambda: peers.jax.JaxCase(arch, init, X, Y, "predict"),
        },
        compare=outputs_agree(1e-4, 1e-6),
        repeats=max(s.repeats, 2 * s.repeats - 3),
        notes=f"{len(X)} rows, {threads} thread(s)",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [predict_workload(size, threads)]
