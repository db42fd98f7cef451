"""Which implementation of the kernels a layer or network runs on."""

from __future__ import annotations

import importlib
from types import ModuleType

#: backend name -> module holding the kernels under their common names
BACKENDS: dict[str, str] = {"numba": "fastnn.kernels", "numpy": "fastnn.reference"}


def get_ops(backend: str) -> ModuleType:
    """Return the kernel namespace of ``backend`` ("numba" or "numpy").

    The Numba kernels are imported on first use, so ``import fastnn`` stays light.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}: use one of {sorted(BACKENDS)} "
            '("numba" for the compiled kernels, "numpy" for the pure-NumPy twin)'
        )
    return importlib.import_module(BACKENDS[backend])
