"""fastnn: fast CPU training of small and medium neural networks.

The classic layer design (``forward`` / ``backward`` per layer, per-sample SGD) on
Numba-compiled kernels, with a pure-NumPy twin of every kernel.
"""

from . import losses
from .layers import Activation, Dense, Identity, Layer, ReLU, Sigmoid, Tanh
from .network import Network, TrainingDivergedError

__version__ = "0.1.0"

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
    "losses",
]
