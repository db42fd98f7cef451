"""Benchmarks: fastnn against its NumPy twin, a tuned NumPy loop, PyTorch, JAX and scikit-learn.

Run them with ``python -m fastnn.benchmarks [--quick] [--threads N] [--json PATH]``
(or ``fastnn bench``). Each workload is a group of *cases*, one per system:

``fastnn``
    the Numba backend, through the public ``Network.fit`` / ``predict`` API;
``fastnn-numpy``
    the same network on the pure-NumPy twin (``backend="numpy"``);
``numpy-tuned``
    the fastest plain-NumPy loop we know how to write: float32, preallocated
    buffers, in-place ufuncs, ``np.dot`` / ``np.outer`` with ``out=``;
``torch`` and ``jax``
    the idiomatic fast path of each (``torch.optim`` with a sample or batch loop;
    one jitted ``jax.lax.scan`` over samples or batches), when installed;
``sklearn``
    ``MLPClassifier`` on the digits workload.

The package's modules: ``pinning`` (thread counts of every runtime), ``cases``
(cases, workloads, cross-checks, timing), ``data`` and ``sizes``, ``peers`` (one
module per system, imported when one of its cases is built), ``workloads`` (the
table of workload families, one module each), ``runner``, ``report`` and
``command`` (the command line), ``machine`` (the sgemm rate in the report's
header). Everything is importable from here.
"""

from __future__ import annotations

import importlib

from .cases import (
    BASELINE,
    F32_ATOL,
    F32_RTOL,
    SYSTEMS,
    Case,
    Compare,
    RaceCase,
    Unavailable,
    Weights,
    Workload,
    as_float64,
    cross_check,
    optional,
    outputs_agree,
    time_case,
    weights_agree,
)
from .command import main
from .data import Arch, digits_split, initial_weights, synthetic
from .pinning import (
    PINNED_SEPARATOR,
    THREAD_ENV,
    XLA_ONE_THREAD,
    child_environment,
    describe_threads,
    pin_environment,
    pinned_threads,
    resolve_threads,
    thread_report,
)
from .report import format_ratio, format_table, write_json
from .runner import run, run_workload
from .sizes import SIZE_TABLE, SIZES, Sizes, sizes_of
from .workloads import (
    FAMILIES,
    MINIBATCH_CHECK,
    RACE_SETTINGS,
    cli_workload,
    cnn_predict_workload,
    cnn_workload,
    contention_workload,
    dask_workload,
    digits_workload,
    estimator_workload,
    minibatch_workload,
    persample_workload,
    predict_workload,
    race_workload,
    scaling_sizes,
    scaling_workload,
    startup_workloads,
    xor_workload,
)
from .workloads.startup import ChildProcess

#: The peers' cases, by name -> the module of ``peers`` that holds it (imported on
#: first access, with the module).
_PEER_NAMES = {
    "FastnnFit": "fastnn",
    "FastnnPredict": "fastnn",
    "FastnnRace": "fastnn",
    "TunedMLP": "numpy_tuned",
    "TunedCase": "numpy_tuned",
    "TorchCase": "torch",
    "TorchRace": "torch",
    "JaxCase": "jax",
    "SklearnDigits": "sklearn",
    "SklearnRace": "sklearn",
}


def __getattr__(name: str):
    if name in _PEER_NAMES:
        module = importlib.import_module(f"{__name__}.peers.{_PEER_NAMES[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BASELINE",
    "F32_ATOL",
    "F32_RTOL",
    "FAMILIES",
    "MINIBATCH_CHECK",
    "PINNED_SEPARATOR",
    "RACE_SETTINGS",
    "SIZES",
    "SIZE_TABLE",
    "SYSTEMS",
    "THREAD_ENV",
    "XLA_ONE_THREAD",
    "Arch",
    "Case",
    "ChildProcess",
    "Compare",
    "RaceCase",
    "Sizes",
    "Unavailable",
    "Weights",
    "Workload",
    "as_float64",
    "child_environment",
    "cli_workload",
    "cnn_predict_workload",
    "cnn_workload",
    "contention_workload",
    "dask_workload",
    "estimator_workload",
    "cross_check",
    "describe_threads",
    "digits_split",
    "digits_workload",
    "format_ratio",
    "format_table",
    "initial_weights",
    "main",
    "minibatch_workload",
    "optional",
    "outputs_agree",
    "persample_workload",
    "pin_environment",
    "pinned_threads",
    "predict_workload",
    "race_workload",
    "resolve_threads",
    "run",
    "run_workload",
    "scaling_sizes",
    "scaling_workload",
    "sizes_of",
    "startup_workloads",
    "synthetic",
    "thread_report",
    "time_case",
    "weights_agree",
    "write_json",
    "xor_workload",
    *_PEER_NAMES,
]
