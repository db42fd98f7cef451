"""Per-sample SGD on 784-128-10: every system's per-sample loop."""

from __future__ import annotations

from collections.abc import Sequence

from .. import peers
from ..cases import F32_ATOL, F32_RTOL, Workload, as_float64, weights_agree
from ..data import Arch, initial_weights, synthetic
from ..sizes import sizes_of


def persample_workload(
    size: str = "full",
    threads: int = 1,
    hidden: int = 128,
    name: str | None = None,
    group: str | None = None,
    systems: Sequence[str] = ("fastnn", "fastnn-numpy", "numpy-tuned", "torch", "jax"),
    n: int | None = None,
) -> Workload:
    """784-H-10 (tanh, sigmoid, MSE), float32, per-sample SGD with lr 0.01, one epoch."""
    s = sizes_of(size)
    n = s.persample if n is None else n
    arch = Arch((784, hidden, 10), "tanh", "sigmoid", "mse")
    init = initial_weights(arch)
    X, Y = synthetic(n, 784, 10)
    lr = 0.01
    fit = {"learning_rate": lr, "batch_size": 1}
    builders = {
        "fastnn": lambda: peers.fastnn.FastnnFit(
            "fastnn", arch, init, X, Y, fit, backend="numba", threads=threads, epochs=1
        ),
        # fastnn on one thread whatever ``threads`` is: what its threads gain.
        "fastnn-1t": lambda: peers.fastnn.FastnnFit(
            "fastnn-1t", arch, init, X, Y, fit, backend="numba", threads=1, epochs=1
        ),
        "fastnn-numpy": lambda: peers.fastnn.FastnnFit(
            "fastnn-numpy", arch, init, X, Y, fit, backend="numpy", threads=threads, epochs=1
        ),
        "numpy-tuned": lambda: peers.numpy_tuned.TunedCase(
            arch, init, X, Y, "persample", learning_rate=lr
        ),
        "torch": lambda: peers.torch.TorchCase(arch, init, X, Y, "persample", learning_rate=lr),
        "jax": lambda: peers.jax.JaxCase(arch, init, X, Y, "persample", learning_rate=lr),
    }
    return Workload(
        name=name or f"persample-784-{hidden}-10",
        group=group or f"persample-784-{hidden}-10",
        unit="sample",
        builders={k: v for k, v in builders.items() if k in systems},
        compare=weights_agree(F32_RTOL, F32_ATOL, as_float64(init)),
        repeats=s.repeats,
        oracle=next(s for s in ("fastnn-numpy", "numpy-tuned", "fastnn-1t") if s in systems),
        notes=f"{n} samples, one epoch, float32",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [persample_workload(size, threads)]
