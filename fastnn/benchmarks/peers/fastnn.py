"""fastnn itself, through its public API: ``Network.fit`` and ``predict`` on the Numba
kernels (``fastnn``) or the NumPy twin (``fastnn-numpy``)."""

from __future__ import annotations

import inspect

import numpy as np

from ..cases import Case, RaceCase, as_float64


def supports_optimizer() -> bool:
    """Whether ``Network.fit`` takes an ``optimizer``."""
    from ...network import Network

    return "optimizer" in inspect.signature(Network.fit).parameters


class FastnnFit(Case):
    """``Network.fit`` on the Numba kernels or the NumPy twin (``backend``)."""

    def __init__(
        self,
        system,
        arch,
        init,
        X,
        Y,
        fit_kwargs,
        *,
        backend,
        threads,
        epochs,
        score=None,
        **kwargs,
    ):
        super().__init__(system, units=len(X) * epochs, **kwargs)
        self.arch, self.init, self.X, self.Y = arch, init, X, Y
        self.fit_kwargs = dict(fit_kwargs, epochs=epochs)
        self.backend, self.threads, self.score = backend, threads, score

    def reset(self) -> None:
        # A fresh network: same weights, same shuffling generator, no optimizer state.
        self.net = self.arch.network(backend=self.backend, threads=self.threads, init=self.init)

    def run(self) -> None:
        self.net.fit(self.X, self.Y, **self.fit_kwargs)

    def result(self):
        if self.score is not None:
            return self.score(self.net)
        return as_float64([(d.weights, d.bias) for d in self.net.dense_layers])


class FastnnPredict(Case):
    def __init__(self, system, arch, init, X, *, backend, threads, **kwargs):
        super().__init__(system, units=len(X), **kwargs)
        self.net = arch.network(backend=backend, threads=threads, init=init)
        self.X = X

    def run(self) -> None:
        self.out = self.net.predict(self.X)

    def result(self) -> np.ndarray:
        return self.out


class FastnnRace(RaceCase):
    def __init__(self, arch, init, data, target, max_epochs, *, learning_rate, threads, **kw):
        super().__init__("fastnn", data, target, max_epochs, **kw)
        self.arch, self.init, self.lr, self.threads = arch, init, learning_rate, threads
        self.describe = f"per-sample SGD, lr {learning_rate}, {arch.label}"

    def reset(self) -> None:
        self.net = self.arch.network(threads=self.threads, init=self.init)

    def epoch(self) -> None:
        Xtr, ytr = self.data[:2]
        self.net.fit(Xtr, ytr, epochs=1, learning_rate=self.lr, batch_size=1)

    def predict_classes(self, X):
        return self.net.predict(X).argmax(axis=1)
