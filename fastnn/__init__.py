"""fastnn: fast CPU training of small and medium neural networks.

The classic layer design (``forward`` / ``backward`` per layer, per-sample SGD) on
Numba-compiled kernels, with a pure-NumPy twin of every kernel.
"""

from . import losses, optimizers
from .layers import Activation, Dense, Identity, Layer, ReLU, Sigmoid, Tanh
from .network import Network, TrainingDivergedError

__version__ = "0.1.0"


def load(path) -> Network:
    """Read a network written by ``Network.save`` (no pickle involved)."""
    from .io import load as _load

    return _load(path)


__all__ = [
    "Activation",
    "Dense",
    "Identity",
    "Layer",
    "Network",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "TrainingDivergedError",
    "load",
    "losses",
    "optimizers",
]
