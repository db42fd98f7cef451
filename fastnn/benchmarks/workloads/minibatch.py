"""Minibatch training with momentum on 784-256-128-10."""

from __future__ import annotations

from collections.abc import Callable

from .. import peers
from ..cases import F32_ATOL, F32_RTOL, Case, Unavailable, Workload, as_float64, weights_agree
from ..data import Arch, initial_weights, synthetic
from ..sizes import sizes_of

#: Samples of the minibatch cross-check: after about a hundred momentum steps, one
#: ReLU input that rounding puts on the other side of zero moves a weight by ~1e-4,
#: so the systems are compared on a short run, where agreement is to ~1e-7.
MINIBATCH_CHECK = 1024


def minibatch_workload(size: str = "full", threads: int = 1) -> Workload:
    """784-256-128-10 ReLU, softmax cross-entropy, SGD momentum 0.9, batch 64, float32.

    fastnn calls ``fit(..., batch_size=64, optimizer="momentum")``; the workload is
    skipped for fastnn while ``fit`` takes no ``optimizer``.
    """
    s = sizes_of(size)
    arch = Arch((784, 256, 128, 10), "relu", "identity", "cross_entropy")
    init = initial_weights(arch)
    X, Y = synthetic(s.minibatch, 784, 10)
    lr, batch = 0.01, 64
    fit = {"learning_rate": lr, "batch_size": batch, "optimizer": "momentum"}
    kw = {"learning_rate": lr, "batch_size": batch, "momentum": 0.9}

    def builders(X, Y) -> dict[str, Callable[[], Case]]:
        def fastnn(system, backend):
            def build():
                if not peers.fastnn.supports_optimizer():
                    raise Unavailable("Network.fit takes no optimizer argument yet")
                return peers.fastnn.FastnnFit(
                    system, arch, init, X, Y, fit, backend=backend, threads=threads, epochs=1
                )

            return build

        return {
            "fastnn": fastnn("fastnn", "numba"),
            "fastnn-numpy": fastnn("fastnn-numpy", "numpy"),
            "numpy-tuned": lambda: peers.numpy_tuned.TunedCase(arch, init, X, Y, "minibatch", **kw),
            "torch": lambda: peers.torch.TorchCase(arch, init, X, Y, "minibatch", **kw),
            "jax": lambda: peers.jax.JaxCase(arch, init, X, Y, "minibatch", **kw),
        }

    n_check = min(len(X), MINIBATCH_CHECK)
    return Workload(
        name="minibatch-784-256-128-10",
        group="minibatch-784-256-128-10",
        unit="sample",
        builders=builders(X, Y),
        check_builders=None if n_check == len(X) else builders(X[:n_check], Y[:n_check]),
        compare=weights_agree(F32_RTOL, F32_ATOL, as_float64(init)),
        repeats=s.repeats,
        notes=f"{len(X)} samples, one epoch, {threads} thread(s); checked on {n_check}",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [minibatch_workload(size, threads)]
