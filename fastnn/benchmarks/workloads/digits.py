"""Digits, per-sample SGD: fastnn against scikit-learn's MLPClassifier."""

from __future__ import annotations

import numpy as np

from .. import peers
from ..cases import Workload
from ..data import Arch, digits_split, initial_weights
from ..sizes import sizes_of


def digits_workload(size: str = "full", threads: int = 1) -> Workload:
    """Digits, 64-64-10 tanh, cross-entropy, per-sample SGD (lr 0.1, shuffled), float64:
    fastnn against scikit-learn's MLPClassifier, compared by test accuracy."""
    s = sizes_of(size)
    arch = Arch((64, 64, 10), "tanh", "identity", "cross_entropy", np.float64)
    init = initial_weights(arch)
    data = digits_split()
    Xtr, ytr, Xte, yte = data
    epochs, lr = s.digits_epochs, 0.1
    fit = {"learning_rate": lr, "batch_size": 1, "shuffle": True}

    def accuracy(net) -> float:
        return float(np.mean(net.predict(Xte).argmax(axis=1) == yte))

    # The same model and algorithm, differing only in the shuffles: after a few epochs
    # that difference still moves accuracy by several points (the smoke pass runs one),
    # while a broken implementation stays near chance, 0.1.
    tolerance = 0.05 if epochs >= 10 else 0.10

    def compare(got: float, want: float) -> str | None:
        if abs(got - want) > tolerance:
            return f"test accuracy {got:.3f} against {want:.3f}"
        return None

    return Workload(
        name="digits-64-64-10",
        group="digits-64-64-10",
        unit="sample",
        builders={
            "fastnn": lambda: peers.fastnn.FastnnFit(
                "fastnn",
                arch,
                init,
                Xtr,
                ytr,
                fit,
                backend="numba",
                threads=threads,
                epochs=epochs,
                score=accuracy,
            ),
            "sklearn": lambda: peers.sklearn.SklearnDigits(
                init, data, epochs, lr, repeats=s.slow_repeats
            ),
        },
        compare=compare,
        oracle="sklearn",
        repeats=s.repeats,
        notes=f"{len(ytr)} training / {len(yte)} test samples, {epochs} epochs, float64",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [digits_workload(size, threads)]
