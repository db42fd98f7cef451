"""Which implementation of the kernels a layer or network runs on, and what every
implementation provides.

``Backend`` declares, once, the kernels the Python side calls through
``get_ops(backend)`` (``Network._ops``, ``Layer._ops``): the compiled kernels in
``fastnn.kernels`` (``fastnn.kernels.minibatch.fit_minibatch``, say) and their NumPy
twins of the same name in ``fastnn.reference`` (``fastnn.reference.engine``) both
provide them, with these signatures (``tests/test_registry.py`` checks that).

The engine's first seven arguments are a network's plan, ``Plan.arrays`` (see
``fastnn.plan``): ``kinds, n_in, n_out, p_off, a_off, cfg, hyp``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Protocol, cast

import numpy as np

#: backend name -> module holding the kernels under their common names
BACKENDS: dict[str, str] = {"numba": "fastnn.kernels", "numpy": "fastnn.reference"}

Array = np.ndarray


class Backend(Protocol):
    """The kernels a backend provides; every ``out`` is preallocated by the caller."""

    # -- the engine: whole training runs and predictions over a plan -----------------
    def fit_sgd(self, kinds: Array, n_in: Array, n_out: Array, p_off: Array, a_off: Array,
                cfg: Array, hyp: Array, params: Array, X: Array, Y: Array, order: Array,
                learning_rate: float, loss_kind: int, epoch_loss: Array, snapshot: Array,
                stop: Array) -> int:  # fmt: skip
        """Per-sample SGD over the epochs of ``order`` (row e: epoch e's sample order).
        Writes each epoch's mean loss into ``epoch_loss``; returns the epochs completed.
        On a non-finite loss or weight, or once ``stop[0]`` is set, ``params`` is
        restored from ``snapshot`` (its state at the epoch's start) and the epoch's
        index returned."""
        ...

    def fit_sgd_blocked(self, kinds: Array, n_in: Array, n_out: Array, p_off: Array,
                        a_off: Array, cfg: Array, hyp: Array, params: Array, X: Array,
                        Y: Array, order: Array, learning_rate: float, loss_kind: int,
                        block: int, epoch_loss: Array, snapshot: Array,
                        stop: Array) -> int:  # fmt: skip
        """``fit_sgd``, with the first layer's updates applied ``block`` samples at a
        time (the same arithmetic)."""
        ...

    def fit_minibatch(self, kinds: Array, n_in: Array, n_out: Array, p_off: Array,
                      a_off: Array, cfg: Array, hyp: Array, params: Array, X: Array,
                      Y: Array, order: Array, batch: int, learning_rates: Array,
                      loss_kind: int, l2: float, opt_kind: int, hyper: Array,
                      state_a: Array, state_b: Array, step: Array, epoch_loss: Array,
                      snapshot: Array, stop: Array) -> int:  # fmt: skip
        """Minibatch training with optimizer ``opt_kind`` (state in ``state_a``,
        ``state_b``, its step count in ``step[0]``); ``snapshot`` holds 3 × params.size
        values, to restore the weights and both state buffers as ``fit_sgd`` does."""
        ...

    def forward_batch(self, kinds: Array, n_in: Array, n_out: Array, p_off: Array,
                      a_off: Array, cfg: Array, hyp: Array, params: Array, X: Array,
                      Z: Array, acts: Array, block: int) -> bool:  # fmt: skip
        """The last layer's outputs for every row of X, into Z, ``block`` rows at a
        time (``acts``: one block's activations). Returns whether X is all finite."""
        ...

    def fit_sgd_conv(self, kinds: Array, n_in: Array, n_out: Array, p_off: Array,
                     a_off: Array, cfg: Array, hyp: Array, params: Array, X: Array, Y: Array,
                     order: Array, learning_rate: float, loss_kind: int, seed: int,
                     epoch_loss: Array, snapshot: Array, stop: Array) -> int:  # fmt: skip
        """``fit_sgd`` for a plan with convolutional layers (X: flat samples);
        ``seed`` keys dropout's masks."""
        ...

    def fit_minibatch_conv(self, kinds: Array, n_in: Array, n_out: Array, p_off: Array,
                           a_off: Array, cfg: Array, hyp: Array, params: Array, X: Array,
                           Y: Array, order: Array, batch: int, learning_rates: Array,
                           loss_kind: int, l2: float, opt_kind: int, hyper: Array,
                           state_a: Array, state_b: Array, step: Array, seed: int,
                           epoch_loss: Array, snapshot: Array, stop: Array) -> int:  # fmt: skip
        """``fit_minibatch`` for a plan with convolutional layers (X: flat samples);
        ``seed`` keys dropout's masks, as in ``fit_sgd_conv``."""
        ...

    def forward_conv(self, kinds: Array, n_in: Array, n_out: Array, p_off: Array,
                     a_off: Array, cfg: Array, hyp: Array, params: Array, X: Array,
                     Z: Array) -> bool:  # fmt: skip
        """``forward_batch`` for a plan with convolutional layers, one row at a time."""
        ...

    # -- single layers and losses ------------------------------------------------------
    def dense_forward(self, W: Array, b: Array, x: Array, out: Array) -> None: ...

    def dense_forward_batch(self, W: Array, b: Array, X: Array, out: Array) -> None: ...

    def dense_backward_sgd(self, W: Array, b: Array, x: Array, grad_out: Array,
                           learning_rate: float, grad_in: Array) -> None: ...  # fmt: skip

    def activation_forward(self, kind: int, x: Array, out: Array, alpha: float) -> None:
        """out = f(x) for activation ``kind``; ``alpha`` is its float setting (the plan's
        ``hyp[i, 0]``: LeakyReLU's slope), ignored by the others."""
        ...

    def activation_backward(self, kind: int, y: Array, grad: Array, out: Array,
                            alpha: float) -> None:  # fmt: skip
        """out = grad·f′(x), with f′ written through the output y = f(x)."""
        ...

    def loss_value(self, kind: int, y: Array, z: Array) -> float: ...

    def loss_grad(self, kind: int, y: Array, z: Array, scale: float, out: Array) -> None: ...

    def batch_loss(self, kind: int, Y: Array, Z: Array) -> float: ...

    def batch_loss_grad(self, kind: int, Y: Array, Z: Array, out: Array) -> None: ...

    def output_transform(self, kind: int, Z: Array, out: Array) -> None: ...


def get_ops(backend: str) -> Backend:
    """Return the kernel namespace of ``backend`` ("numba" or "numpy").

    The Numba kernels are imported on first use, so ``import fastnn`` stays light.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}: use one of {sorted(BACKENDS)} "
            '("numba" for the compiled kernels, "numpy" for the pure-NumPy twin)'
        )
    # A network asks for its kernels on every call: a loaded module is looked up, not
    # imported again (import_module's locking cost tens of µs a call).
    name = BACKENDS[backend]
    return cast(Backend, sys.modules.get(name) or importlib.import_module(name))
