"""The design's XOR network: fastnn against its NumPy twin."""

from __future__ import annotations

import numpy as np

from .. import peers
from ..cases import Workload, weights_agree
from ..data import Arch, initial_weights
from ..sizes import sizes_of


def xor_workload(size: str = "full", threads: int = 1) -> Workload:
    """The design's XOR (2-3-1 tanh, MSE, lr 0.1, per-sample), 10,000 epochs, float64.

    At the full size both run every epoch. At the quick and smoke sizes the twin runs
    a fraction of them, its time is scaled linearly (the row's notes say so), and it
    is checked against fastnn at its own epoch count.
    """
    s = sizes_of(size)
    arch = Arch((2, 3, 1), "tanh", "tanh", "mse", np.float64)
    init = initial_weights(arch)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    fit = {"learning_rate": 0.1, "batch_size": 1}
    full, part = s.xor_epochs, s.xor_twin_epochs
    scale = full / part

    def fastnn(epochs):
        return lambda: peers.fastnn.FastnnFit(
            "fastnn", arch, init, X, Y, fit, backend="numba", threads=threads, epochs=epochs
        )

    def twin():
        return peers.fastnn.FastnnFit(
            "fastnn-numpy",
            arch,
            init,
            X,
            Y,
            fit,
            backend="numpy",
            threads=threads,
            epochs=part,
            scale=scale,
            repeats=s.slow_repeats,
            notes=""
            if part == full
            else f"timed on {part:,} epochs, scaled x{scale:g} to {full:,}",
        )

    check = None if part == full else {"fastnn": fastnn(part), "fastnn-numpy": twin}

    return Workload(
        name=f"xor-{full}-epochs",
        group="xor-10000-epochs",
        unit="sample",
        builders={"fastnn": fastnn(full), "fastnn-numpy": twin},
        check_builders=check,
        compare=weights_agree(1e-7, 1e-10, initial=init),
        repeats=s.repeats,
        notes=f"float64, {full:,} epochs of 4 samples; target: fastnn >= 500x faster than the twin",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [xor_workload(size, threads)]
