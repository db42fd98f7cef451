"""The benchmark's data and architectures: every system starts from fastnn's initial
weights on the same data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cases import Weights


@dataclass(frozen=True)
class Arch:
    """A dense network: sizes, hidden and output activations, loss and dtype.

    ``output`` is "identity" for the cross-entropies, whose last Dense layer gives the
    logits.
    """

    sizes: tuple[int, ...]
    hidden: str
    output: str
    loss: str
    dtype: type = np.float32

    @property
    def label(self) -> str:
        """E.g. "64-64-10 tanh"."""
        return "-".join(map(str, self.sizes)) + f" {self.hidden}"

    @property
    def activations(self) -> list[str]:
        return [self.hidden] * (len(self.sizes) - 2) + [self.output]

    def layers(self) -> list:
        from ..builders import mlp

        return mlp(self.sizes, self.hidden, None if self.output == "identity" else self.output)

    def network(
        self,
        backend: str = "numba",
        seed: int = 0,
        threads: int | None = None,
        init: Weights | None = None,
    ):
        """A fresh Network of this architecture; with ``init``, starting from those
        weights (so that every system of a workload starts from the same ones)."""
        from ..network import Network

        net = Network(
            self.layers(),
            loss=self.loss,
            dtype=self.dtype,
            backend=backend,
            seed=seed,
            threads=threads,
        )
        if init is not None:
            for dense, (W, b) in zip(net.dense_layers, init, strict=True):
                dense.weights[...] = W
                dense.bias[...] = b
        return net


def initial_weights(arch: Arch, seed: int = 0) -> Weights:
    """fastnn's initial weights for ``arch`` and ``seed``: [(W, b), ...] in its dtype."""
    net = arch.network(backend="numpy", seed=seed)
    return [(d.weights.copy(), d.bias.copy()) for d in net.dense_layers]


def synthetic(n: int, n_in: int, n_out: int, dtype=np.float32, seed: int = 0):
    """Dense random inputs in [0, 1) and random one-hot targets, from a fixed seed."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in), dtype=np.float64).astype(dtype)
    Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    return X, Y


def digits_split(seed: int = 0):
    """The bundled digits in [0, 1], split 75 % / 25 % by a fixed permutation."""
    from ..datasets import load_digits

    X, y = load_digits(scale=True)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = len(y) // 4
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]
