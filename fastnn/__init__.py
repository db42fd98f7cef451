"""fastnn: fast CPU training of small and medium neural networks.

The classic layer design (``forward`` / ``backward`` per layer, per-sample SGD) on
Numba-compiled kernels, with a pure-NumPy twin of every kernel.
"""

from . import losses, optimizers
from .conv_layers import AvgPool2D, Conv2D, Dropout, Flatten, MaxPool2D
from .layers import Activation, Dense, Identity, Layer, LeakyReLU, ReLU, Sigmoid, Tanh
from .network import Network, TrainingDivergedError
from .version import __version__ as __version__


def load(path) -> Network:
    """Read a network written by ``Network.save`` (no pickle involved)."""
    from .io import load as _load

    return _load(path)


def _save(net: Network, path) -> None:
    from .io import save

    save(net, path)


def _to_onnx(net: Network, path) -> None:
    from .onnx_export import to_onnx

    to_onnx(net, path)


# Network.save and Network.to_onnx write through these: the model format and the ONNX
# export import the network, so the network cannot import them (an import cycle), and
# loading them only when a network is saved keeps `import fastnn` light.
Network._writers.update(fastnn=_save, onnx=_to_onnx)


__all__ = [
    "Activation",
    "AvgPool2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "Network",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "TrainingDivergedError",
    "load",
    "losses",
    "optimizers",
]
