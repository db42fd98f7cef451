"""The systems fastnn is compared with, one module each: ``fastnn`` (fastnn itself
and its NumPy twin), ``numpy_tuned``, ``torch``, ``jax`` and ``sklearn``; and
``lenet``, every system of the convolutional workloads.

A peer's module, and the library it times, are imported only when a workload builds
one of its cases: ``peers.torch.TorchCase(...)`` imports ``peers/torch.py`` on that
first access.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The modules of this package, one per peer.
MODULES = ("fastnn", "numpy_tuned", "torch", "jax", "sklearn", "lenet")


def __getattr__(name: str) -> ModuleType:
    if name in MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
