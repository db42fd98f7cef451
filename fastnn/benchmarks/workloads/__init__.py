"""The table of workload families: one module per family.

Each family module defines ``workloads(size, threads) -> list[Workload]``; ``FAMILIES``
lists them in the order they run (and ``--only`` names them). To add a family, write
its module (its cases come from ``..peers``, its sizes from ``..sizes`` or its own
table keyed by ``SIZES``) and add one line here: ``python -m fastnn.benchmarks``,
``fastnn bench`` and ``bench/`` then run it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..cases import Workload
from . import (
    cli,
    cnn,
    contention,
    cores,
    dask_fit,
    digits,
    estimators,
    minibatch,
    persample,
    predict,
    race,
    scaling,
    startup,
    xor,
)
from .cli import cli_workload
from .cnn import cnn_predict_workload, cnn_workload
from .contention import contention_workload
from .dask_fit import dask_workload
from .digits import digits_workload
from .estimators import estimator_workload
from .minibatch import MINIBATCH_CHECK, minibatch_workload
from .persample import persample_workload
from .predict import predict_workload
from .race import RACE_SETTINGS, race_workload
from .scaling import scaling_sizes, scaling_workload
from .startup import startup_workloads
from .xor import xor_workload

#: Workload families: name -> function(size, threads) -> list of workloads.
FAMILIES: dict[str, Callable[[str, int], list[Workload]]] = {
    "persample": persample.workloads,
    "xor": xor.workloads,
    "digits": digits.workloads,
    "race": race.workloads,
    "minibatch": minibatch.workloads,
    "predict": predict.workloads,
    "scaling": scaling.workloads,
    "cores": cores.workloads,
    "startup": startup.workloads,
    "cli": cli.workloads,
    "contention": contention.workloads,
    "dask": dask_fit.workloads,
    "cnn": cnn.workloads,
    "sklearn": estimators.workloads,
}

__all__ = [
    "FAMILIES",
    "MINIBATCH_CHECK",
    "RACE_SETTINGS",
    "cli_workload",
    "cnn_predict_workload",
    "cnn_workload",
    "contention_workload",
    "dask_workload",
    "digits_workload",
    "estimator_workload",
    "minibatch_workload",
    "persample_workload",
    "predict_workload",
    "race_workload",
    "scaling_sizes",
    "scaling_workload",
    "startup_workloads",
    "xor_workload",
]
