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

Every case starts from fastnn's initial weights on the same data, with the same
architecture, dtype, loss and learning rate. Before anything is timed, each case
runs once (that run also absorbs compilation: Numba, XLA) and its result is checked
against its reference: weights or outputs within float32 tolerance, or the test
accuracy for digits. A case that disagrees is reported as a mismatch and not timed.
Times are medians over several repeats, each from the same initial state, taken
round-robin (one run of each system per round), so that drift on a shared machine
falls on every system alike.

Thread counts are pinned before the peers are imported and printed with the
results: Numba, every BLAS and OpenMP library that threadpoolctl sees (by name),
torch's intra- and inter-op pools, and XLA (one thread via ``XLA_FLAGS``; XLA has no
flag for other counts, so with more threads it uses every core).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .threads import available_cores
from .validation import check_positive_int

#: Every system, in the order the table shows them.
SYSTEMS = ("fastnn", "fastnn-numpy", "numpy-tuned", "torch", "jax", "sklearn")
#: The system every ratio is relative to.
BASELINE = "fastnn"
#: Benchmark sizes: "full" for real measurements, "quick" for a sanity run of the
#: runner, "smoke" for the test suite's single pass with timings off.
SIZES = ("full", "quick", "smoke")
#: XLA's CPU runtime on one thread (read when JAX starts its backend).
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
#: Thread variables of the OpenMP and BLAS runtimes, set for child processes.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")

#: Joins the lines of ``describe_threads`` into a row's "pinned" string.
PINNED_SEPARATOR = " | "

Weights = list[tuple[np.ndarray, np.ndarray]]


class Unavailable(Exception):
    """A case cannot run here (a peer is not installed, or fastnn lacks a feature)."""


# -- thread pinning ----------------------------------------------------------------------
def _resolve_threads(threads: int | None) -> int:
    return available_cores() if threads is None else check_positive_int("threads", threads)


def pin_environment(threads: int, *, runtimes: bool = True) -> None:
    """Set the thread variables that libraries read when they load.

    ``XLA_FLAGS`` gets the one-thread flags when ``threads`` is 1 and JAX has not
    been imported yet; with ``runtimes``, ``NUMBA_NUM_THREADS`` (only before Numba is
    imported: Numba refuses a change once its threads run) and the OpenMP/BLAS
    variables for libraries loaded later and child processes. Nothing is restored:
    these variables only matter before a library loads.
    """
    if threads == 1 and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {XLA_ONE_THREAD}".strip()
    if runtimes:
        if "numba" not in sys.modules:
            os.environ["NUMBA_NUM_THREADS"] = str(threads)
        for name in THREAD_ENV:
            os.environ[name] = str(threads)


def _optional(module: str):
    """The module, or None when it is not installed (or fails to import)."""
    try:
        return importlib.import_module(module)
    except Exception:  # a broken optional install counts as absent
        return None


def thread_report(threads: int) -> dict[str, Any]:
    """The thread counts in force now, library by library."""
    import numba
    from threadpoolctl import threadpool_info

    info = threadpool_info()

    def pools(api: str) -> list[dict[str, Any]]:
        return [
            {
                # The file, inside its package's folder: NumPy and SciPy each bring
                # their own OpenBLAS, under the same prefix.
                "library": os.path.join(*lib["filepath"].split(os.sep)[-2:])
                if lib.get("filepath")
                else lib.get("prefix"),
                "api": lib.get("internal_api"),
                "version": lib.get("version"),
                "threads": lib.get("num_threads"),
            }
            for lib in info
            if lib.get("user_api") == api
        ]

    torch = sys.modules.get("torch")
    xla = None
    if "jax" in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        one = "xla_cpu_multi_thread_eigen=false" in flags
        xla = {"threads": 1 if one else available_cores(), "flags": flags}
    return {
        "requested": threads,
        "numba": numba.get_num_threads(),
        "numba_max": numba.config.NUMBA_NUM_THREADS,
        "blas": pools("blas"),
        "openmp": pools("openmp"),
        "torch": None
        if torch is None
        else {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        "xla": xla,
    }


def describe_threads(report: dict[str, Any]) -> str:
    """One line per runtime: the pinned thread counts of ``thread_report``."""

    def libs(entries) -> str:
        return ", ".join(
            f"{e['library']} ({e['api']} {e['version'] or ''}".rstrip() + f") = {e['threads']}"
            for e in entries
        )

    lines = [
        f"requested: {report['requested']}",
        f"numba: {report['numba']} (NUMBA_NUM_THREADS={report['numba_max']}; fastnn's "
        "kernels are serial, per-sample SGD runs on one thread)",
        f"BLAS: {libs(report['blas']) or 'none found by threadpoolctl'}",
    ]
    if report["openmp"]:
        lines.append(f"OpenMP: {libs(report['openmp'])}")
    torch = report["torch"]
    lines.append(
        "torch: not installed"
        if torch is None
        else f"torch: {torch['intra_op']} intra-op, {torch['inter_op']} inter-op"
    )
    xla = report["xla"]
    if xla is None:
        lines.append("XLA: jax not installed")
    elif xla["threads"] == 1:
        lines.append(f"XLA: 1 (XLA_FLAGS={xla['flags']})")
    else:
        lines.append(f"XLA: its default pool, all {xla['threads']} cores (no flag for N > 1)")
    return "\n".join(lines)


def _pin_process(cores) -> None:
    """Restrict every thread of this process to ``cores``: ``sched_setaffinity(0)``
    moves only the calling thread, and pools that runtimes started earlier keep
    their own masks. Threads started later inherit their creator's."""
    tasks = f"/proc/{os.getpid()}/task"
    tids = [int(t) for t in os.listdir(tasks)] if os.path.isdir(tasks) else [0]
    for tid in tids:
        with contextlib.suppress(OSError):  # a thread that has just exited
            os.sched_setaffinity(tid, cores)


@contextlib.contextmanager
def pinned_threads(threads: int | None = None, *, runtimes: bool = True) -> Iterator[dict]:
    """Pin every runtime to ``threads`` inside the block; yields ``thread_report``.

    Imports torch and jax (when installed) after setting their variables, so their
    pools start pinned; BLAS and OpenMP are limited through threadpoolctl (including
    SciPy's BLAS, which Numba's ``np.dot`` calls). On exit the Numba, torch and
    threadpoolctl settings are restored; environment variables stay (see
    ``pin_environment``), as does torch's inter-op count, which can be set only once.
    """
    n = _resolve_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as err:
        raise ImportError(
            "the benchmarks pin BLAS threads with threadpoolctl, which is not installed: "
            "pip install 'fastnn-numba[bench]'"
        ) from err
    pin_environment(n, runtimes=runtimes)
    import numba
    import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS so it is limited too)

    numba_before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    torch = _optional("torch")
    torch_before = None
    if torch is not None:
        torch_before = torch.get_num_threads()
        torch.set_num_threads(n)
        with contextlib.suppress(RuntimeError):  # set already, or parallel work started
            torch.set_num_interop_threads(n)
    jax = _optional("jax")
    if jax is not None:
        jax.devices("cpu")  # start XLA's backend now, while XLA_FLAGS holds the pin
    limits = threadpool_limits(limits=n)
    # Thread-count flags alone do not bound every runtime (XLA's CPU client still
    # spreads a matrix product across cores): restrict every thread of the process,
    # the pools started above included, to n cores.
    cores_before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if cores_before is not None and n < len(cores_before):
        _pin_process(sorted(cores_before)[:n])
    try:
        yield thread_report(n)
    finally:
        if cores_before is not None:
            _pin_process(cores_before)
        limits.restore_original_limits()
        numba.set_num_threads(numba_before)
        if torch is not None:
            torch.set_num_threads(torch_before)


def child_environment(threads: int) -> dict[str, str]:
    """The environment of a benchmark's child process: this one's, threads pinned."""
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(threads)
    for name in THREAD_ENV:
        env[name] = str(threads)
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
    return env


# -- cases and workloads -------------------------------------------------------------------
class Case:
    """One system's implementation of one workload.

    ``reset`` restores the initial state (not timed), ``run`` is the timed work,
    ``result`` returns what the cross-check compares.

    Parameters
    ----------
    system : str
        One of ``SYSTEMS``.
    units : int
        Samples (or rows, or runs) one ``run`` processes.
    scale : float
        The factor from one ``run`` to the workload's full size: a slow system may
        run a fraction of the workload (see ``notes``), its times are multiplied.
    notes : str
        Printed with the row.
    repeats : int, optional
        Overrides the workload's repeat count.
    """

    def __init__(
        self,
        system: str,
        units: int,
        scale: float = 1.0,
        notes: str = "",
        repeats: int | None = None,
    ) -> None:
        self.system = system
        self.units = units
        self.scale = scale
        self.notes = notes
        self.repeats = repeats

    def reset(self) -> None:
        """Restore the initial state; not timed."""

    def run(self) -> float | None:
        """Do the timed work. May return a duration measured inside (a child process)."""
        raise NotImplementedError

    def result(self) -> Any:
        """What the cross-check compares: weights, outputs or an accuracy."""
        raise NotImplementedError

    def close(self) -> None:
        """Release temporary resources."""


Compare = Callable[[Any, Any], "str | None"]


@dataclass
class Workload:
    """A benchmark workload: a case builder per system, and how results are compared.

    Attributes
    ----------
    name : str
        The row label, e.g. "persample-784-128-10".
    group : str
        The pytest-benchmark group (one per workload family, e.g. "scaling-784-H-10").
    unit : str
        What ``Case.units`` counts: "sample", "row" or "run".
    builders : dict
        System -> a function building its timed case; raises ``Unavailable``.
    compare : callable(result, reference_result) -> str or None
        A message when the results disagree, None when they agree.
    repeats : int
        Timed runs per case (the median is reported).
    oracle : str
        fastnn's own reference (other systems are checked against fastnn).
    check_builders : dict, optional
        Cases to cross-check with, when the check runs at another size than the
        timing (a scaled-down system is compared at its own size).
    notes : str
        Printed with the workload.
    """

    name: str
    group: str
    unit: str
    builders: dict[str, Callable[[], Case]]
    compare: Compare
    repeats: int
    oracle: str = "fastnn-numpy"
    check_builders: dict[str, Callable[[], Case]] | None = None
    notes: str = ""

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(s for s in SYSTEMS if s in self.builders)

    def reference_of(self, system: str) -> str:
        """The system whose result ``system`` is checked against."""
        return self.oracle if system == BASELINE else BASELINE


def cross_check(workload: Workload, cases: dict[str, Case]) -> dict[str, str | None]:
    """Warm up every case (one untimed run from its initial state) and check it.

    Each system in ``cases`` is compared with ``workload.reference_of(system)``, which
    must be in ``cases`` too. Returns a message per system that disagrees (or could
    not be checked), None for one that agrees. With ``check_builders``, the check
    runs on separately built cases of the check size, and the warm-up on the timed
    ones.
    """
    results: dict[str, Any] = {}
    for system, case in cases.items():
        case.reset()
        case.run()
        results[system] = case.result()
    if workload.check_builders is not None:
        results = {}
        for system in cases:
            check = workload.check_builders[system]()
            try:
                check.reset()
                check.run()
                results[system] = check.result()
            finally:
                check.close()
    problems: dict[str, str | None] = {}
    for system in cases:
        reference = workload.reference_of(system)
        if reference not in results:
            problems[system] = f"no {reference} result to check against"
            continue
        problems[system] = workload.compare(results[system], results[reference])
    return problems


def time_case(case: Case, repeats: int) -> list[float]:
    """Seconds of ``repeats`` timed runs, each after ``reset`` (garbage collector off)."""
    times = []
    for _ in range(repeats):
        case.reset()
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            inner = case.run()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        times.append(inner if inner is not None else elapsed)
    return times


# -- data and architectures ------------------------------------------------------------------
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
        from .layers import ACTIVATIONS, Dense

        layers = []
        pairs = zip(self.sizes[:-1], self.sizes[1:], strict=True)
        for (n_in, n_out), act in zip(pairs, self.activations, strict=True):
            layers.append(Dense(n_in, n_out))
            if act != "identity":
                layers.append(ACTIVATIONS[act]())
        return layers

    def network(
        self,
        backend: str = "numba",
        seed: int = 0,
        threads: int | None = None,
        init: Weights | None = None,
    ):
        """A fresh Network of this architecture; with ``init``, starting from those
        weights (so that every system of a workload starts from the same ones)."""
        from .network import Network

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
    from .datasets import load_digits

    X, y = load_digits(scale=True)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = len(y) // 4
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


def _as_float64(weights: Weights) -> Weights:
    return [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in weights]


def weights_agree(rtol: float, atol: float, initial: Weights | None = None) -> Compare:
    """A comparison of [(W, b), ...] results within ``rtol`` / ``atol``.

    With ``initial``, it also fails when the reference run left its weights within
    tolerance of them: such a check could not tell two systems apart.
    """

    def compare(got: Weights, want: Weights) -> str | None:
        if len(got) != len(want):
            return f"{len(got)} layers, expected {len(want)}"
        for i, (pair, ref) in enumerate(zip(got, want, strict=True)):
            for name, a, e in zip("Wb", pair, ref, strict=True):
                if a.shape != e.shape:
                    return f"layer {i} {name} has shape {a.shape}, expected {e.shape}"
                if not np.allclose(a, e, rtol=rtol, atol=atol):
                    err = float(np.max(np.abs(a - e)))
                    return f"layer {i} {name} differs by up to {err:.3g} (rtol={rtol}, atol={atol})"
        if initial is not None:
            moved = max(
                float(np.max(np.abs(e - i0)))
                for ref, init in zip(want, initial, strict=True)
                for e, i0 in zip(ref, init, strict=True)
            )
            if moved <= 10 * atol:
                return f"the run moved the weights by only {moved:.3g}: the check is vacuous"
        return None

    return compare


def outputs_agree(rtol: float, atol: float) -> Compare:
    """A comparison of output arrays within ``rtol`` / ``atol``."""

    def compare(got: np.ndarray, want: np.ndarray) -> str | None:
        if got.shape != want.shape:
            return f"output shape {got.shape}, expected {want.shape}"
        if not np.allclose(got, want, rtol=rtol, atol=atol):
            err = float(np.max(np.abs(got - want)))
            return f"outputs differ by up to {err:.3g} (rtol={rtol}, atol={atol})"
        return None

    return compare


# -- fastnn ----------------------------------------------------------------------------------
def _fastnn_supports_optimizer() -> bool:
    from .network import Network

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
        return _as_float64([(d.weights, d.bias) for d in self.net.dense_layers])


class FastnnPredict(Case):
    def __init__(self, system, arch, init, X, *, backend, threads, **kwargs):
        super().__init__(system, units=len(X), **kwargs)
        self.net = arch.network(backend=backend, threads=threads, init=init)
        self.X = X

    def run(self) -> None:
        self.out = self.net.predict(self.X)

    def result(self) -> np.ndarray:
        return self.out


# -- tuned NumPy -----------------------------------------------------------------------------
class TunedMLP:
    """The fastest plain-NumPy MLP we know how to write.

    Parameters live in one flat buffer (so an optimizer step is three whole-buffer
    ufunc calls); every intermediate has a preallocated buffer; activations and
    their derivatives are computed in place with ``out=``.

    Parameters
    ----------
    init : [(W, b), ...]
        Initial weights, W of shape (n_out, n_in) as in fastnn.
    activations : list of str
        One per Dense layer: "tanh", "sigmoid", "relu" or "identity".
    loss : {"mse", "cross_entropy"}
    dtype : np.float32 or np.float64
    """

    def __init__(self, init: Weights, activations: Sequence[str], loss: str, dtype) -> None:
        if loss not in ("mse", "cross_entropy"):
            raise ValueError(f"TunedMLP supports loss 'mse' or 'cross_entropy', not {loss!r}")
        self.dtype = np.dtype(dtype)
        self.acts = list(activations)
        self.loss = loss
        self.shapes = [W.shape for W, _ in init]
        total = sum(W.size + b.size for W, b in init)
        self.params = np.empty(total, self.dtype)
        self.grads = np.zeros(total, self.dtype)
        self.W, self.b = self._views(self.params)
        self.dW, self.db = self._views(self.grads)
        for W, b, (W0, b0) in zip(self.W, self.b, init, strict=True):
            W[...] = W0
            b[...] = b0

    def _views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Each layer's W (n_out, n_in) and b (n_out,) as views into ``flat``."""
        Ws, bs, start = [], [], 0
        for n_out, n_in in self.shapes:
            Ws.append(flat[start : start + n_out * n_in].reshape(n_out, n_in))
            start += n_out * n_in
            bs.append(flat[start : start + n_out])
            start += n_out
        return Ws, bs

    def weights(self) -> Weights:
        return _as_float64([(W.copy(), b.copy()) for W, b in zip(self.W, self.b, strict=True)])

    # In-place activations (h holds the pre-activation, then the activation) and
    # their derivatives (g *= f'(h), t a scratch buffer like h).
    @staticmethod
    def _activate(act: str, h: np.ndarray) -> None:
        if act == "tanh":
            np.tanh(h, out=h)
        elif act == "sigmoid":  # σ(x) = (1 + tanh(x/2))/2: no overflow, no temporaries
            np.multiply(h, 0.5, out=h)
            np.tanh(h, out=h)
            np.multiply(h, 0.5, out=h)
            np.add(h, 0.5, out=h)
        elif act == "relu":
            np.maximum(h, 0, out=h)

    @staticmethod
    def _derive(act: str, h: np.ndarray, g: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        if act == "tanh":  # 1 − h²
            np.multiply(h, h, out=t)
            np.subtract(1, t, out=t)
            np.multiply(g, t, out=g)
        elif act == "sigmoid":  # h(1 − h)
            np.subtract(1, h, out=t)
            np.multiply(t, h, out=t)
            np.multiply(g, t, out=g)
        elif act == "relu":
            np.greater(h, 0, out=mask)
            np.multiply(g, mask, out=g)

    def fit_persample(self, X: np.ndarray, Y: np.ndarray, learning_rate: float) -> None:
        """One epoch of per-sample SGD over the rows of X, in order."""
        dt = self.dtype.type
        L = len(self.W)
        W, b, acts = self.W, self.b, self.acts
        h = [np.empty(Wl.shape[0], self.dtype) for Wl in W]  # activations
        g = [np.empty(Wl.shape[0], self.dtype) for Wl in W]  # dC/d(pre-activation)
        gs = [np.empty(Wl.shape[0], self.dtype) for Wl in W]  # −lr·g
        t = [np.empty(Wl.shape[0], self.dtype) for Wl in W]
        mask = [np.empty(Wl.shape[0], bool) for Wl in W]
        outer = [np.empty_like(Wl) for Wl in W]
        WT = [Wl.T for Wl in W]
        neg_lr = dt(-learning_rate)
        mse_scale = dt(2.0 / W[-1].shape[0])
        last = L - 1
        for s in range(X.shape[0]):
            a = X[s]
            for i in range(L):
                np.dot(W[i], a, out=h[i])
                np.add(h[i], b[i], out=h[i])
                self._activate(acts[i], h[i])
                a = h[i]
            if self.loss == "mse":
                np.subtract(h[last], Y[s], out=g[last])
                np.multiply(g[last], mse_scale, out=g[last])
            else:  # softmax(z) − y on the logits
                z = h[last]
                np.subtract(z, z.max(), out=g[last])
                np.exp(g[last], out=g[last])
                np.divide(g[last], g[last].sum(), out=g[last])
                np.subtract(g[last], Y[s], out=g[last])
            for i in range(last, -1, -1):
                self._derive(acts[i], h[i], g[i], t[i], mask[i])
                if i > 0:  # the input gradient, with the weights forward used
                    np.dot(WT[i], g[i], out=g[i - 1])
                np.multiply(g[i], neg_lr, out=gs[i])
                np.outer(gs[i], X[s] if i == 0 else h[i - 1], out=outer[i])
                np.add(W[i], outer[i], out=W[i])
                np.add(b[i], gs[i], out=b[i])

    def fit_minibatch(self, X, Y, learning_rate: float, batch_size: int, momentum: float) -> None:
        """One epoch of minibatch SGD with momentum (v = m·v + g; p −= lr·v), in order."""
        dt = self.dtype.type
        L = len(self.W)
        W, b, dW, db, acts = self.W, self.b, self.dW, self.db, self.acts
        B = min(batch_size, X.shape[0])
        H = [np.empty((B, Wl.shape[0]), self.dtype) for Wl in W]
        G = [np.empty((B, Wl.shape[0]), self.dtype) for Wl in W]
        T = [np.empty((B, Wl.shape[0]), self.dtype) for Wl in W]
        M = [np.empty((B, Wl.shape[0]), bool) for Wl in W]
        col = np.empty((B, 1), self.dtype)
        velocity = np.zeros_like(self.params)
        step = np.empty_like(self.params)
        WT = [Wl.T for Wl in W]
        lr, mom = dt(learning_rate), dt(momentum)
        last = L - 1
        for start in range(0, X.shape[0], B):
            Xb, Yb = X[start : start + B], Y[start : start + B]
            m = Xb.shape[0]
            a = Xb
            for i in range(L):
                Hi = H[i][:m]
                np.dot(a, WT[i], out=Hi)
                np.add(Hi, b[i], out=Hi)
                self._activate(acts[i], Hi)
                a = Hi
            Gl, c = G[last][:m], col[:m]
            if self.loss == "mse":
                np.subtract(H[last][:m], Yb, out=Gl)
                np.multiply(Gl, dt(2.0 / (m * Gl.shape[1])), out=Gl)
            else:
                np.max(H[last][:m], axis=1, keepdims=True, out=c)
                np.subtract(H[last][:m], c, out=Gl)
                np.exp(Gl, out=Gl)
                np.sum(Gl, axis=1, keepdims=True, out=c)
                np.divide(Gl, c, out=Gl)
                np.subtract(Gl, Yb, out=Gl)
                np.multiply(Gl, dt(1.0 / m), out=Gl)
            for i in range(last, -1, -1):
                Gi = G[i][:m]
                self._derive(acts[i], H[i][:m], Gi, T[i][:m], M[i][:m])
                np.dot(Gi.T, Xb if i == 0 else H[i - 1][:m], out=dW[i])
                np.sum(Gi, axis=0, out=db[i])
                if i > 0:
                    np.dot(Gi, W[i], out=G[i - 1][:m])
            np.multiply(velocity, mom, out=velocity)
            np.add(velocity, self.grads, out=velocity)
            np.multiply(velocity, lr, out=step)
            np.subtract(self.params, step, out=self.params)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Outputs for the rows of X: probabilities (softmax) with cross-entropy."""
        a = X
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            h = np.empty((X.shape[0], W.shape[0]), self.dtype)
            np.dot(a, W.T, out=h)
            np.add(h, b, out=h)
            self._activate(self.acts[i], h)
            a = h
        if self.loss == "cross_entropy":
            np.subtract(a, a.max(axis=1, keepdims=True), out=a)
            np.exp(a, out=a)
            np.divide(a, a.sum(axis=1, keepdims=True), out=a)
        return a


class TunedCase(Case):
    """numpy-tuned: ``mode`` is "persample", "minibatch" or "predict"."""

    def __init__(
        self, arch, init, X, Y, mode, *, learning_rate=0.01, batch_size=64, momentum=0.9, **kwargs
    ):
        super().__init__("numpy-tuned", units=len(X), **kwargs)
        self.arch, self.init, self.X, self.Y, self.mode = arch, init, X, Y, mode
        self.lr, self.batch, self.momentum = learning_rate, batch_size, momentum

    def reset(self) -> None:
        self.mlp = TunedMLP(self.init, self.arch.activations, self.arch.loss, self.arch.dtype)

    def run(self) -> None:
        if self.mode == "persample":
            self.mlp.fit_persample(self.X, self.Y, self.lr)
        elif self.mode == "minibatch":
            self.mlp.fit_minibatch(self.X, self.Y, self.lr, self.batch, self.momentum)
        else:
            self.out = self.mlp.predict(self.X)

    def result(self):
        return self.out if self.mode == "predict" else self.mlp.weights()


# -- PyTorch ---------------------------------------------------------------------------------
def _torch():
    torch = _optional("torch")
    if torch is None:
        raise Unavailable("torch is not installed")
    return torch


def _torch_model(torch, arch: Arch, init: Weights):
    acts = {"tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}
    dtype = getattr(torch, np.dtype(arch.dtype).name)
    modules = []
    for (W, b), act in zip(init, arch.activations, strict=True):
        linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
        modules.append(linear)
        if act != "identity":
            modules.append(acts[act]())
    return torch.nn.Sequential(*modules)


class TorchCase(Case):
    """torch: ``torch.optim.SGD`` over samples or batches, or inference."""

    def __init__(
        self, arch, init, X, Y, mode, *, learning_rate=0.01, batch_size=64, momentum=0.9, **kwargs
    ):
        super().__init__("torch", units=len(X), **kwargs)
        self.torch = _torch()
        self.arch, self.init, self.mode = arch, init, mode
        self.X = self.torch.from_numpy(X)
        # Class indices for cross-entropy: torch's fast path, the same loss as one-hot.
        self.Y = self.torch.from_numpy(
            Y.argmax(axis=1) if arch.loss == "cross_entropy" and mode == "minibatch" else Y
        )
        self.lr, self.batch, self.momentum = learning_rate, batch_size, momentum

    def reset(self) -> None:
        torch = self.torch
        self.model = _torch_model(torch, self.arch, self.init)
        momentum = self.momentum if self.mode == "minibatch" else 0.0
        self.opt = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=momentum)
        if self.arch.loss == "mse":
            self.loss_fn = torch.nn.MSELoss()
        else:
            self.loss_fn = torch.nn.CrossEntropyLoss()

    def run(self) -> None:
        torch, model, opt, loss_fn, X, Y = (
            self.torch,
            self.model,
            self.opt,
            self.loss_fn,
            self.X,
            self.Y,
        )
        if self.mode == "predict":
            with torch.inference_mode():
                out = model(X)
                self.out = torch.softmax(out, dim=1) if self.arch.loss != "mse" else out
            return
        step = 1 if self.mode == "persample" else self.batch
        for start in range(0, X.shape[0], step):
            x = X[start] if step == 1 else X[start : start + step]
            y = Y[start] if step == 1 else Y[start : start + step]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()

    def result(self):
        if self.mode == "predict":
            return self.out.numpy()
        linears = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        return _as_float64([(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears])


# -- JAX -------------------------------------------------------------------------------------
def _jax():
    jax = _optional("jax")
    if jax is None:
        raise Unavailable("jax is not installed")
    return jax


class JaxCase(Case):
    """jax: the whole epoch as one jitted ``lax.scan`` (per sample or per batch), or a
    jitted forward pass."""

    def __init__(
        self, arch, init, X, Y, mode, *, learning_rate=0.01, batch_size=64, momentum=0.9, **kwargs
    ):
        super().__init__("jax", units=len(X), **kwargs)
        jax = _jax()
        jnp = jax.numpy
        self.jax, self.mode = jax, mode
        self.params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in init]
        funcs = {
            "tanh": jnp.tanh,
            "sigmoid": jax.nn.sigmoid,
            "relu": jax.nn.relu,
            "identity": lambda x: x,
        }
        acts = [funcs[a] for a in arch.activations]
        lr = learning_rate

        def forward(params, x):
            for (W, b), act in zip(params, acts, strict=True):
                # One sample as W·x (a matrix-vector product), a batch as X·Wᵀ: the
                # fast form for XLA in each case.
                x = act((W @ x if x.ndim == 1 else x @ W.T) + b)
            return x

        def loss(params, x, y):
            out = forward(params, x)
            if arch.loss == "mse":
                return jnp.mean((out - y) ** 2)
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(out, axis=-1), axis=-1))

        grad = jax.grad(loss)
        tree_map = jax.tree_util.tree_map

        if mode == "persample":

            def epoch(params, X, Y):
                def step(p, xy):
                    g = grad(p, *xy)
                    return tree_map(lambda a, d: a - lr * d, p, g), None

                return jax.lax.scan(step, params, (X, Y))[0]

            self.args = (jnp.asarray(X), jnp.asarray(Y))
        elif mode == "minibatch":
            if len(X) % batch_size:
                raise ValueError(f"{len(X)} samples are not whole batches of {batch_size}")

            def epoch(params, X, Y):
                def step(carry, xy):
                    p, v = carry
                    g = grad(p, *xy)
                    v = tree_map(lambda v, d: momentum * v + d, v, g)
                    return (tree_map(lambda a, u: a - lr * u, p, v), v), None

                zero = tree_map(jnp.zeros_like, params)
                return jax.lax.scan(step, (params, zero), (X, Y))[0][0]

            shape = (len(X) // batch_size, batch_size)
            self.args = (
                jnp.asarray(X.reshape(*shape, X.shape[1])),
                jnp.asarray(Y.reshape(*shape, Y.shape[1])),
            )
        else:

            def epoch(params, X):
                out = forward(params, X)
                return jax.nn.softmax(out, axis=-1) if arch.loss != "mse" else out

            self.args = (jnp.asarray(X),)
        self.fn = jax.jit(epoch)

    def run(self) -> None:
        self.out = self.jax.block_until_ready(self.fn(self.params, *self.args))

    def result(self):
        if self.mode == "predict":
            return np.asarray(self.out)
        return _as_float64([(np.asarray(W), np.asarray(b)) for W, b in self.out])


# -- scikit-learn ----------------------------------------------------------------------------
class SklearnDigits(Case):
    """``MLPClassifier`` with per-sample SGD, started from fastnn's initial weights.

    A warm-started classifier is set up on one sample of each class (untimed), its
    ``coefs_`` / ``intercepts_`` are overwritten with fastnn's initial weights, and
    the timed ``fit`` continues from them for ``epochs`` epochs.
    """

    def __init__(self, init, data, epochs, learning_rate, **kwargs):
        super().__init__("sklearn", units=len(data[0]) * epochs, **kwargs)
        try:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.neural_network import MLPClassifier
        except ImportError as err:
            raise Unavailable("scikit-learn is not installed") from err
        self.MLPClassifier, self.ConvergenceWarning = MLPClassifier, ConvergenceWarning
        self.init, self.data, self.epochs, self.lr = init, data, epochs, learning_rate

    def reset(self) -> None:
        Xtr, ytr = self.data[:2]
        clf = self.MLPClassifier(
            hidden_layer_sizes=(self.init[0][0].shape[0],),
            activation="tanh",
            solver="sgd",
            alpha=0.0,
            batch_size=1,
            learning_rate="constant",
            learning_rate_init=self.lr,
            momentum=0.0,
            nesterovs_momentum=False,
            max_iter=1,
            shuffle=True,
            random_state=0,
            tol=0.0,
            n_iter_no_change=self.epochs + 1,
            early_stopping=False,
            warm_start=True,
        )
        first = np.unique(ytr, return_index=True)[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.ConvergenceWarning)
            clf.fit(Xtr[first], ytr[first])
        for coef, intercept, (W, b) in zip(clf.coefs_, clf.intercepts_, self.init, strict=True):
            coef[...] = W.T
            intercept[...] = b
        clf.set_params(max_iter=self.epochs)
        self.clf = clf

    def run(self) -> None:
        Xtr, ytr, _, _ = self.data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.ConvergenceWarning)
            self.clf.fit(Xtr, ytr)

    def result(self) -> float:
        _, _, Xte, yte = self.data
        return float(np.mean(self.clf.predict(Xte) == yte))


# -- the digits race -------------------------------------------------------------------------
class RaceCase(Case):
    """A race to a test accuracy: train epoch by epoch, scoring the test set after each,
    until the accuracy reaches ``target`` (or ``max_epochs`` pass). One ``run`` is the
    whole race, scoring included, so every system pays for its own predict."""

    def __init__(self, system, data, target, max_epochs, **kwargs):
        super().__init__(system, units=1, **kwargs)
        self.data, self.target, self.max_epochs = data, target, max_epochs
        self.reached = (0.0, 0)

    def epoch(self) -> None:
        raise NotImplementedError

    def predict_classes(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run(self) -> None:
        _, _, Xte, yte = self.data
        accuracy, epoch = 0.0, 0
        while epoch < self.max_epochs and accuracy < self.target:
            self.epoch()
            epoch += 1
            accuracy = float(np.mean(self.predict_classes(Xte) == yte))
        self.reached = (accuracy, epoch)
        self.notes = f"{self.describe}; test accuracy {accuracy:.3f} after {epoch} epochs"

    def result(self) -> float:
        return self.reached[0]


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


class SklearnRace(RaceCase):
    def __init__(self, data, target, max_epochs, *, hidden, activation, learning_rate, batch,
                 **kw):  # fmt: skip
        super().__init__("sklearn", data, target, max_epochs, **kw)
        try:
            from sklearn.neural_network import MLPClassifier
        except ImportError as err:
            raise Unavailable("scikit-learn is not installed") from err
        self.make = lambda: MLPClassifier(
            hidden_layer_sizes=(hidden,),
            activation=activation,
            solver="adam",
            learning_rate_init=learning_rate,
            batch_size=batch,
            random_state=0,
        )
        self.classes = np.unique(data[1])
        self.describe = f"adam, batch {batch}, lr {learning_rate}, {hidden} {activation}"

    def reset(self) -> None:
        self.clf = self.make()

    def epoch(self) -> None:
        # partial_fit is one pass over the data that keeps Adam's state between calls.
        Xtr, ytr = self.data[:2]
        self.clf.partial_fit(Xtr, ytr, classes=self.classes)

    def predict_classes(self, X):
        return self.clf.predict(X)


class TorchRace(RaceCase):
    def __init__(self, arch, init, data, target, max_epochs, *, learning_rate, batch, **kw):
        super().__init__("torch", data, target, max_epochs, **kw)
        self.torch = _torch()
        self.arch, self.init, self.lr, self.batch = arch, init, learning_rate, batch
        Xtr, ytr = data[:2]
        self.X = self.torch.from_numpy(Xtr)
        self.y = self.torch.from_numpy(ytr.astype(np.int64))
        self.describe = f"adam, batch {batch}, lr {learning_rate}, {arch.label}"

    def reset(self) -> None:
        torch = self.torch
        self.model = _torch_model(torch, self.arch, self.init)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.gen = torch.Generator().manual_seed(0)

    def epoch(self) -> None:
        torch, model, opt = self.torch, self.model, self.opt
        order = torch.randperm(self.X.shape[0], generator=self.gen)
        for start in range(0, len(order), self.batch):
            idx = order[start : start + self.batch]
            opt.zero_grad(set_to_none=True)
            self.loss_fn(model(self.X[idx]), self.y[idx]).backward()
            opt.step()

    def predict_classes(self, X):
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(X)).argmax(dim=1).numpy()


# -- child processes -------------------------------------------------------------------------
_IMPORT_SCRIPT = """\
import json, time
start = time.perf_counter()
import {module}
print(json.dumps({{"seconds": time.perf_counter() - start}}))
"""

_FIRST_FIT_SCRIPT = """\
import json, time
import numpy as np
import fastnn as fn
start = time.perf_counter()
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
net = fn.Network([fn.Dense(2, 3), fn.Tanh(), fn.Dense(3, 1), fn.Tanh()], loss="mse",
                 dtype=np.float64, backend={backend!r}, seed=0)
net.fit(X, Y, epochs=1, learning_rate=0.1)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "params": net.params.tolist()}}))
"""


class ChildProcess(Case):
    """A Python script in a fresh process; the time is the one it measures itself.

    With ``cold_cache``, every run gets an empty Numba cache directory, so it
    compiles everything it calls.
    """

    def __init__(self, system, script, threads, *, cold_cache=False, **kwargs):
        super().__init__(system, units=1, **kwargs)
        self.script, self.cold = script, cold_cache
        self.env = child_environment(threads)
        self._cache: tempfile.TemporaryDirectory | None = None

    def reset(self) -> None:
        if self.cold:
            self.close()
            self._cache = tempfile.TemporaryDirectory(prefix="fastnn-numba-cache-")
            self.env["NUMBA_CACHE_DIR"] = self._cache.name

    def run(self) -> float:
        proc = subprocess.run(
            [sys.executable, "-c", self.script],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{self.system} child process failed:\n{proc.stderr[-2000:]}")
        self.out = json.loads(proc.stdout.strip().splitlines()[-1])
        return float(self.out["seconds"])

    def result(self) -> dict:
        return self.out

    def close(self) -> None:
        if self._cache is not None:
            self._cache.cleanup()
            self._cache = None


def _child_params_agree(got: dict, want: dict) -> str | None:
    a, e = np.asarray(got["params"]), np.asarray(want["params"])
    if a.shape != e.shape or not np.allclose(a, e, rtol=1e-9, atol=1e-12):
        return f"first-fit weights differ: {a} vs {e}"
    return None


def _child_ran(got: dict, want: dict) -> str | None:
    return None if got.get("seconds", -1) >= 0 and want.get("seconds", -1) >= 0 else "no time"


# -- workload definitions --------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    """The size of every workload at one benchmark size ("full", "quick", "smoke")."""

    persample: int
    xor_epochs: int
    xor_twin_epochs: int
    digits_epochs: int
    minibatch: int
    predict: int
    scaling_hidden: tuple[int, ...]
    scaling_budget: int  # samples × hidden units per scaling run
    scaling_max: int
    repeats: int
    slow_repeats: int  # repeats of the slow peers (the twin on XOR, sklearn)
    cold_repeats: int
    cold_start: bool = True
    scaling_min: int = 1
    race_target: float = 0.97  # the digits race: test accuracy to reach
    race_max_epochs: int = 200


SIZE_TABLE: dict[str, Sizes] = {
    "full": Sizes(
        persample=2000,
        xor_epochs=10_000,
        xor_twin_epochs=10_000,
        digits_epochs=30,
        minibatch=8192,
        predict=16_384,
        scaling_hidden=(32, 64, 128, 256, 512, 1024, 2048),
        scaling_budget=512_000,
        scaling_max=2000,
        scaling_min=200,
        repeats=7,
        slow_repeats=3,
        cold_repeats=3,
    ),
    "quick": Sizes(
        persample=200,
        xor_epochs=1000,
        xor_twin_epochs=100,
        digits_epochs=3,
        minibatch=512,
        predict=2048,
        scaling_hidden=(32, 128),
        scaling_budget=25_600,
        scaling_max=200,
        repeats=3,
        slow_repeats=3,
        cold_repeats=2,
    ),
    # One pass with timings off: the smallest sizes that still take every code path
    # (784×128 uses the blocked first-layer update; 512 rows are two predict blocks).
    "smoke": Sizes(
        persample=16,
        xor_epochs=20,
        xor_twin_epochs=10,
        digits_epochs=1,
        minibatch=128,
        predict=512,
        scaling_hidden=(32, 128),
        scaling_budget=2048,
        scaling_max=16,
        repeats=1,
        slow_repeats=1,
        cold_repeats=1,
        cold_start=False,
        race_target=0.5,
        race_max_epochs=5,
    ),
}


def _sizes(size: str) -> Sizes:
    if size not in SIZE_TABLE:
        raise ValueError(f"unknown benchmark size {size!r}: use one of {list(SIZE_TABLE)}")
    return SIZE_TABLE[size]


# float32 per-sample SGD through a different summation order drifts by a few ulps per
# step; after thousands of steps 1e-3 relative is comfortably above it and far below
# what a wrong gradient (or a missed update) produces.
F32_RTOL, F32_ATOL = 1e-3, 2e-5


def persample_workload(
    size: str = "full",
    threads: int = 1,
    hidden: int = 128,
    name: str | None = None,
    group: str | None = None,
    systems: Sequence[str] = ("fastnn", "fastnn-numpy", "numpy-tuned", "torch", "jax"),
    n: int | None = None,
) -> Workload:
    """784-H-10 (tanh, sigmoid, MSE), float32, per-sample SGD with lr 0.01, one epoch."""
    s = _sizes(size)
    n = s.persample if n is None else n
    arch = Arch((784, hidden, 10), "tanh", "sigmoid", "mse")
    init = initial_weights(arch)
    X, Y = synthetic(n, 784, 10)
    lr = 0.01
    fit = {"learning_rate": lr, "batch_size": 1}
    builders = {
        "fastnn": lambda: FastnnFit(
            "fastnn", arch, init, X, Y, fit, backend="numba", threads=threads, epochs=1
        ),
        "fastnn-numpy": lambda: FastnnFit(
            "fastnn-numpy", arch, init, X, Y, fit, backend="numpy", threads=threads, epochs=1
        ),
        "numpy-tuned": lambda: TunedCase(arch, init, X, Y, "persample", learning_rate=lr),
        "torch": lambda: TorchCase(arch, init, X, Y, "persample", learning_rate=lr),
        "jax": lambda: JaxCase(arch, init, X, Y, "persample", learning_rate=lr),
    }
    return Workload(
        name=name or f"persample-784-{hidden}-10",
        group=group or f"persample-784-{hidden}-10",
        unit="sample",
        builders={k: v for k, v in builders.items() if k in systems},
        compare=weights_agree(F32_RTOL, F32_ATOL, _as_float64(init)),
        repeats=s.repeats,
        oracle="fastnn-numpy" if "fastnn-numpy" in systems else "numpy-tuned",
        notes=f"{n} samples, one epoch, float32",
    )


def xor_workload(size: str = "full", threads: int = 1) -> Workload:
    """The design's XOR (2-3-1 tanh, MSE, lr 0.1, per-sample), 10,000 epochs, float64.

    At the full size both run every epoch. At the quick and smoke sizes the twin runs
    a fraction of them, its time is scaled linearly (the row's notes say so), and it
    is checked against fastnn at its own epoch count.
    """
    s = _sizes(size)
    arch = Arch((2, 3, 1), "tanh", "tanh", "mse", np.float64)
    init = initial_weights(arch)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    fit = {"learning_rate": 0.1, "batch_size": 1}
    full, part = s.xor_epochs, s.xor_twin_epochs
    scale = full / part

    def fastnn(epochs):
        return lambda: FastnnFit(
            "fastnn", arch, init, X, Y, fit, backend="numba", threads=threads, epochs=epochs
        )

    def twin():
        return FastnnFit(
            "fastnn-numpy",
            arch,
            init,
            X,
            Y,
            fit,
            backend="numpy",
            threads=threads,
            epochs=part,
            scale=scale,
            repeats=s.slow_repeats,
            notes=""
            if part == full
            else f"timed on {part:,} epochs, scaled x{scale:g} to {full:,}",
        )

    check = None if part == full else {"fastnn": fastnn(part), "fastnn-numpy": twin}

    return Workload(
        name=f"xor-{full}-epochs",
        group="xor-10000-epochs",
        unit="sample",
        builders={"fastnn": fastnn(full), "fastnn-numpy": twin},
        check_builders=check,
        compare=weights_agree(1e-7, 1e-10, initial=init),
        repeats=s.repeats,
        notes=f"float64, {full:,} epochs of 4 samples; target: fastnn >= 300x faster than the twin",
    )


def digits_workload(size: str = "full", threads: int = 1) -> Workload:
    """Digits, 64-64-10 tanh, cross-entropy, per-sample SGD (lr 0.1, shuffled), float64:
    fastnn against scikit-learn's MLPClassifier, compared by test accuracy."""
    s = _sizes(size)
    arch = Arch((64, 64, 10), "tanh", "identity", "cross_entropy", np.float64)
    init = initial_weights(arch)
    data = digits_split()
    Xtr, ytr, Xte, yte = data
    epochs, lr = s.digits_epochs, 0.1
    fit = {"learning_rate": lr, "batch_size": 1, "shuffle": True}

    def accuracy(net) -> float:
        return float(np.mean(net.predict(Xte).argmax(axis=1) == yte))

    # The same model and algorithm, differing only in the shuffles: after a few epochs
    # that difference still moves accuracy by several points (the smoke pass runs one),
    # while a broken implementation stays near chance, 0.1.
    tolerance = 0.05 if epochs >= 10 else 0.10

    def compare(got: float, want: float) -> str | None:
        if abs(got - want) > tolerance:
            return f"test accuracy {got:.3f} against {want:.3f}"
        return None

    return Workload(
        name="digits-64-64-10",
        group="digits-64-64-10",
        unit="sample",
        builders={
            "fastnn": lambda: FastnnFit(
                "fastnn",
                arch,
                init,
                Xtr,
                ytr,
                fit,
                backend="numba",
                threads=threads,
                epochs=epochs,
                score=accuracy,
            ),
            "sklearn": lambda: SklearnDigits(init, data, epochs, lr, repeats=s.slow_repeats),
        },
        compare=compare,
        oracle="sklearn",
        repeats=s.repeats,
        notes=f"{len(ytr)} training / {len(yte)} test samples, {epochs} epochs, float64",
    )


#: Each system's fastest settings to 97 % on digits, from a sweep on this benchmark's
#: split and seeds, one thread: hidden tanh or ReLU; fastnn's per-sample learning rate
#: 0.03, 0.1 or 0.2; Adam's 0.001, 0.003, 0.01 (and 0.03 for torch), at batch 32 for
#: scikit-learn and 32 to 256 for torch, whose per-batch overhead favours large ones.
RACE_SETTINGS = {
    "fastnn": {"hidden": "relu", "learning_rate": 0.1},
    "sklearn": {"hidden": "relu", "learning_rate": 0.01, "batch": 32},
    "torch": {"hidden": "tanh", "learning_rate": 0.03, "batch": 256},
}


def race_workload(size: str = "full", threads: int = 1, settings=None) -> Workload:
    """Digits 64-64-10, float32: wall-clock time until the test accuracy reaches 97 %,
    fastnn (per-sample SGD) against scikit-learn's and PyTorch's Adam, each with its
    own best settings (``RACE_SETTINGS``)."""
    s = _sizes(size)
    settings = RACE_SETTINGS if settings is None else settings
    Xtr, ytr, Xte, yte = digits_split()
    data = (Xtr.astype(np.float32), ytr, Xte.astype(np.float32), yte)
    target, cap = s.race_target, s.race_max_epochs

    def arch(system: str) -> Arch:
        return Arch((64, 64, 10), settings[system]["hidden"], "identity", "cross_entropy")

    def fastnn():
        a = arch("fastnn")
        lr = settings["fastnn"]["learning_rate"]
        return FastnnRace(a, initial_weights(a), data, target, cap, learning_rate=lr,
                          threads=threads)  # fmt: skip

    def sklearn():
        opts = dict(settings["sklearn"])
        return SklearnRace(data, target, cap, hidden=64, activation=opts.pop("hidden"), **opts)

    def torch():
        a = arch("torch")
        opts = {k: v for k, v in settings["torch"].items() if k != "hidden"}
        return TorchRace(a, initial_weights(a), data, target, cap, **opts)

    def compare(got: float, want: float) -> str | None:
        if got < target:
            return f"test accuracy {got:.3f} never reached {target} in {cap} epochs"
        return None

    return Workload(
        name=f"digits-race-to-{target:.0%}",
        group="digits-race",
        unit="run",
        builders={"fastnn": fastnn, "torch": torch, "sklearn": sklearn},
        compare=compare,
        oracle="sklearn",
        repeats=s.repeats,
        notes=f"{len(ytr)} training / {len(yte)} test samples, float32, 64-64-10; the "
        "time includes scoring the test set after every epoch",
    )


#: Samples of the minibatch cross-check: after about a hundred momentum steps, one
#: ReLU input that rounding puts on the other side of zero moves a weight by ~1e-4,
#: so the systems are compared on a short run, where agreement is to ~1e-7.
MINIBATCH_CHECK = 1024


def minibatch_workload(size: str = "full", threads: int = 1) -> Workload:
    """784-256-128-10 ReLU, softmax cross-entropy, SGD momentum 0.9, batch 64, float32.

    fastnn calls ``fit(..., batch_size=64, optimizer="momentum")``; the workload is
    skipped for fastnn while ``fit`` takes no ``optimizer``.
    """
    s = _sizes(size)
    arch = Arch((784, 256, 128, 10), "relu", "identity", "cross_entropy")
    init = initial_weights(arch)
    X, Y = synthetic(s.minibatch, 784, 10)
    lr, batch = 0.01, 64
    fit = {"learning_rate": lr, "batch_size": batch, "optimizer": "momentum"}
    kw = {"learning_rate": lr, "batch_size": batch, "momentum": 0.9}

    def builders(X, Y) -> dict[str, Callable[[], Case]]:
        def fastnn(system, backend):
            def build():
                if not _fastnn_supports_optimizer():
                    raise Unavailable("Network.fit takes no optimizer argument yet")
                return FastnnFit(
                    system, arch, init, X, Y, fit, backend=backend, threads=threads, epochs=1
                )

            return build

        return {
            "fastnn": fastnn("fastnn", "numba"),
            "fastnn-numpy": fastnn("fastnn-numpy", "numpy"),
            "numpy-tuned": lambda: TunedCase(arch, init, X, Y, "minibatch", **kw),
            "torch": lambda: TorchCase(arch, init, X, Y, "minibatch", **kw),
            "jax": lambda: JaxCase(arch, init, X, Y, "minibatch", **kw),
        }

    n_check = min(len(X), MINIBATCH_CHECK)
    return Workload(
        name="minibatch-784-256-128-10",
        group="minibatch-784-256-128-10",
        unit="sample",
        builders=builders(X, Y),
        check_builders=None if n_check == len(X) else builders(X[:n_check], Y[:n_check]),
        compare=weights_agree(F32_RTOL, F32_ATOL, _as_float64(init)),
        repeats=s.repeats,
        notes=f"{len(X)} samples, one epoch, {threads} thread(s); checked on {n_check}",
    )


def predict_workload(size: str = "full", threads: int = 1) -> Workload:
    """Inference of 784-256-128-10 (ReLU, softmax probabilities), float32."""
    s = _sizes(size)
    arch = Arch((784, 256, 128, 10), "relu", "identity", "cross_entropy")
    init = initial_weights(arch)
    X, Y = synthetic(s.predict, 784, 10, seed=1)
    return Workload(
        name=f"predict-{len(X)}-784-256-128-10",
        group="predict-784-256-128-10",
        unit="row",
        builders={
            "fastnn": lambda: FastnnPredict(
                "fastnn", arch, init, X, backend="numba", threads=threads
            ),
            "fastnn-numpy": lambda: FastnnPredict(
                "fastnn-numpy", arch, init, X, backend="numpy", threads=threads
            ),
            "numpy-tuned": lambda: TunedCase(arch, init, X, Y, "predict"),
            "torch": lambda: TorchCase(arch, init, X, Y, "predict"),
            "jax": lambda: JaxCase(arch, init, X, Y, "predict"),
        },
        compare=outputs_agree(1e-4, 1e-6),
        repeats=max(s.repeats, 2 * s.repeats - 3),
        notes=f"{len(X)} rows, {threads} thread(s)",
    )


def scaling_sizes(size: str = "full") -> tuple[int, ...]:
    """The hidden widths H of the scaling workloads."""
    return _sizes(size).scaling_hidden


def scaling_workload(hidden: int, size: str = "full", threads: int = 1) -> Workload:
    """784-H-10 per-sample SGD, as ``persample_workload``: where the cost leaves the cache.

    Wider layers get fewer samples, so every run does about the same work.
    """
    s = _sizes(size)
    n = int(min(s.scaling_max, max(s.scaling_min, s.scaling_budget // hidden)))
    return persample_workload(
        size,
        threads,
        hidden=hidden,
        name=f"scaling-784-{hidden}-10",
        group=f"scaling-784-{hidden}-10",
        systems=("fastnn", "numpy-tuned", "torch", "jax"),
        n=n,
    )


def startup_workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """``import fastnn`` in a fresh process (next to torch and jax), and the first XOR
    fit in a fresh process with a warm and with an empty Numba cache."""
    s = _sizes(size)

    def importer(system: str, module: str):
        def build():
            if module != "fastnn" and _optional(module) is None:
                raise Unavailable(f"{module} is not installed")
            return ChildProcess(system, _IMPORT_SCRIPT.format(module=module), threads)

        return build

    def first_fit(system: str, backend: str, cold: bool):
        script = _FIRST_FIT_SCRIPT.format(backend=backend)
        return lambda: ChildProcess(
            system, script, threads, cold_cache=cold, repeats=s.cold_repeats if cold else None
        )

    imports = Workload(
        name="startup-import",
        group="startup-import",
        unit="run",
        builders={
            "fastnn": importer("fastnn", "fastnn"),
            "torch": importer("torch", "torch"),
            "jax": importer("jax", "jax"),
        },
        compare=_child_ran,
        oracle="fastnn",
        repeats=s.repeats,
        notes="`import MODULE` in a fresh process, timed inside it",
    )
    warm = Workload(
        name="startup-xor-first-fit-warm-cache",
        group="startup-xor-first-fit-warm-cache",
        unit="run",
        builders={
            "fastnn": first_fit("fastnn", "numba", False),
            "fastnn-numpy": first_fit("fastnn-numpy", "numpy", False),
        },
        compare=_child_params_agree,
        repeats=s.repeats,
        notes="Network + fit(epochs=1) of XOR in a fresh process, Numba cache warm",
    )
    workloads = [imports, warm]
    if s.cold_start:
        cold = Workload(
            name="startup-xor-first-fit-cold-cache",
            group="startup-xor-first-fit-cold-cache",
            unit="run",
            builders={
                "fastnn": first_fit("fastnn", "numba", True),
                "fastnn-numpy": first_fit("fastnn-numpy", "numpy", True),
            },
            compare=_child_params_agree,
            repeats=s.cold_repeats,
            notes="as warm, with an empty NUMBA_CACHE_DIR: the cold-compile time",
        )
        workloads.append(cold)
    return workloads


#: Workload families: name -> function(size, threads) -> list of workloads.
FAMILIES: dict[str, Callable[[str, int], list[Workload]]] = {
    "persample": lambda size, threads: [persample_workload(size, threads)],
    "xor": lambda size, threads: [xor_workload(size, threads)],
    "digits": lambda size, threads: [digits_workload(size, threads)],
    "race": lambda size, threads: [race_workload(size, threads)],
    "minibatch": lambda size, threads: [minibatch_workload(size, threads)],
    "predict": lambda size, threads: [predict_workload(size, threads)],
    "scaling": lambda size, threads: [
        scaling_workload(h, size, threads) for h in scaling_sizes(size)
    ],
    "startup": startup_workloads,
}


# -- the runner ------------------------------------------------------------------------------
def _row(workload: Workload, system: str, threads: int, pinned: str, **values) -> dict:
    row = {
        "workload": workload.name,
        "system": system,
        "unit": workload.unit,
        "units": None,
        "median_s": None,
        "unit_us": None,
        "ratio": None,
        "threads": threads,
        "n_repeats": 0,
        "times_s": [],
        "status": "ok",
        "notes": "",
        "about": workload.notes,
        "pinned": pinned,
    }
    row.update(values)
    return row


def run_workload(
    workload: Workload, threads: int, pinned: str = "", log: Callable[[str], object] = print
) -> list[dict]:
    """Build, cross-check and time every system of one workload; one row per system."""
    rows: dict[str, dict] = {}
    cases: dict[str, Case] = {}
    try:
        for system in workload.systems:
            try:
                cases[system] = workload.builders[system]()
            except Unavailable as err:
                rows[system] = _row(
                    workload, system, threads, pinned, status="skipped", notes=str(err)
                )
        log(f"{workload.name}: checking {', '.join(cases)}")
        try:
            problems = cross_check(workload, cases)
        except Exception as err:  # one broken peer must not lose every other result
            problems = {system: f"{type(err).__name__}: {err}" for system in cases}
        accuracies = {}
        if workload.name.startswith("digits"):
            accuracies = {system: case.result() for system, case in cases.items()}
        repeats: dict[str, int] = {}
        for system, case in cases.items():
            if problems.get(system):
                rows[system] = _row(
                    workload, system, threads, pinned, status="mismatch", notes=problems[system]
                )
            else:
                repeats[system] = case.repeats or workload.repeats
                log(f"{workload.name}: timing {system} ({repeats[system]} runs)")
        # Round-robin, one run of each system per round: on a shared machine whose
        # speed drifts, the systems' medians then come from the same stretches of
        # time, and a slow spell cannot fall on one system alone.
        times: dict[str, list[float]] = {system: [] for system in repeats}
        for i in range(max(repeats.values(), default=0)):
            for system in repeats:
                if i < repeats[system]:
                    times[system] += time_case(cases[system], 1)
        for system, runs in times.items():
            case = cases[system]
            runs = [t * case.scale for t in runs]
            median = statistics.median(runs)
            units = round(case.units * case.scale)
            rows[system] = _row(
                workload,
                system,
                threads,
                pinned,
                units=units,
                median_s=median,
                unit_us=median / units * 1e6,
                n_repeats=repeats[system],
                times_s=runs,
                notes=case.notes,
            )
            if system in accuracies:
                rows[system]["accuracy"] = accuracies[system]
    finally:
        for case in cases.values():
            case.close()
    base = rows.get(BASELINE)
    for row in rows.values():
        if base is not None and base["median_s"] and row["median_s"] is not None:
            row["ratio"] = row["median_s"] / base["median_s"]
    return [rows[s] for s in workload.systems]


def run(
    quick: bool = False,
    threads: int | None = None,
    *,
    families: Sequence[str] | None = None,
    log: Callable[[str], object] | None = None,
) -> list[dict]:
    """Run the benchmarks and return one row per workload and system.

    Parameters
    ----------
    quick : bool
        Small sizes and 3 repeats: a sanity run, not a measurement.
    threads : int, optional
        Threads for every runtime (default: every core). fastnn's per-sample SGD always
        runs on one; its minibatch training and predict, and every peer, use them.
    families : sequence of str, optional
        Run only these families of ``FAMILIES`` (default: all).
    log : callable(str), optional
        Progress messages (default: printed to stderr).

    Returns
    -------
    list of dict
        Keys: workload, system, unit, units, median_s (seconds per run, scaled to the
        full workload), unit_us (µs per unit), ratio (median / fastnn's median),
        threads, n_repeats, times_s, status ("ok", "skipped", "mismatch"), notes
        (on this row), about (the workload's sizes), pinned (the thread counts in
        force), and accuracy on digits.
    """
    n = _resolve_threads(threads)
    chosen = list(FAMILIES) if families is None else list(families)
    for name in chosen:
        if name not in FAMILIES:
            raise ValueError(f"unknown benchmark family {name!r}: use any of {list(FAMILIES)}")
    if log is None:

        def log(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

    size = "quick" if quick else "full"
    rows: list[dict] = []
    with pinned_threads(n) as report:
        pinned = describe_threads(report).replace("\n", PINNED_SEPARATOR)
        xla = report["xla"]
        for name in chosen:
            for workload in FAMILIES[name](size, n):
                rows.extend(run_workload(workload, n, pinned, log))
    if xla is not None and xla["threads"] != n:
        for row in rows:
            if row["system"] == "jax" and row["status"] == "ok":
                note = f"XLA used all {xla['threads']} cores: no flag pins it to {n}"
                row["notes"] = f"{row['notes']}; {note}" if row["notes"] else note
    return rows


def _fmt_time(us: float) -> str:
    for limit, scale, unit in (
        (1e-3, 1e3, "ns"),
        (1.0, 1.0, "µs"),
        (1e3, 1.0, "µs"),
        (1e6, 1e-3, "ms"),
    ):
        if us < limit:
            return f"{us * scale:.3g} {unit}"
    return f"{us * 1e-6:.3g} s"


def format_ratio(ratio: float) -> str:
    """A ratio to fastnn as the table prints it: "1.00x", "21.37x", "412x"."""
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:.0f}x"


def format_table(rows: Sequence[dict]) -> str:
    """The rows side by side: per workload, each system's median time per unit (a
    sample, a row, or a whole run) and its ratio to fastnn, with the pinned threads."""
    if not rows:
        return "no benchmark rows"
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rows)]
    systems += [s for s in dict.fromkeys(r["system"] for r in rows) if s not in systems]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    cell: dict[tuple[str, str], str] = {}
    notes: list[str] = []
    for r in rows:
        status = r.get("status", "ok")
        if status != "ok":
            text = "skipped" if status == "skipped" else status.upper()
            notes.append(f"{r['workload']} / {r['system']}: {status}: {r.get('notes', '')}")
        elif r.get("unit_us") is None:
            text = f"{r['median_s']:.3g} s"
        else:
            ratio = r.get("ratio")
            text = _fmt_time(r["unit_us"])
            if ratio is not None:
                text += f" ({format_ratio(ratio)})"
            if r.get("notes"):
                notes.append(f"{r['workload']} / {r['system']}: {r['notes']}")
        if r.get("accuracy") is not None:
            notes.append(f"{r['workload']} / {r['system']}: test accuracy {r['accuracy']:.4f}")
        cell[(r["workload"], r["system"])] = text
    unit = {r["workload"]: r.get("unit", "") for r in rows}
    width = max(len(w) for w in workloads) + 2
    widths = [max(len(s), *(len(cell.get((w, s), "")) for w in workloads)) + 2 for s in systems]
    lines = []
    pinned = list(dict.fromkeys(r.get("pinned", "") for r in rows if r.get("pinned")))
    threads = sorted({r.get("threads") for r in rows if r.get("threads") is not None})
    lines.append(f"fastnn benchmarks, threads={', '.join(map(str, threads))}; pinned:")
    for p in pinned:
        lines.extend(f"  {part}" for part in p.split(PINNED_SEPARATOR))
    lines.append(
        "cells: median time per unit (sample, row or whole run) over the repeats, and "
        "(time / fastnn's time)x"
    )
    lines.append("")
    header = "workload".ljust(width) + "unit".ljust(8)
    header += "".join(s.rjust(w) for s, w in zip(systems, widths, strict=True))
    lines.append(header)
    lines.append("-" * len(header))
    for w in workloads:
        line = w.ljust(width) + unit[w].ljust(8)
        line += "".join(cell.get((w, s), "").rjust(n) for s, n in zip(systems, widths, strict=True))
        lines.append(line)
    about = {r["workload"]: r["about"] for r in rows if r.get("about")}
    notes = [f"{w}: {text}" for w, text in about.items()] + notes
    if notes:
        lines.append("")
        lines.append("notes:")
        lines.extend(f"  {note}" for note in notes)
    return "\n".join(lines)


def write_json(rows: Sequence[dict], path) -> None:
    """Write the rows to ``path`` as JSON, atomically (a temporary file, then a rename)."""
    from .io import atomic_write

    data = json.dumps(list(rows), indent=2, allow_nan=False).encode()
    atomic_write(path, lambda f: f.write(data))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastnn.benchmarks [--quick] [--threads N] [--json PATH] [--only F,...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fastnn.benchmarks",
        description="Time fastnn against its NumPy twin, a tuned NumPy loop, PyTorch, JAX "
        "and scikit-learn; print a side-by-side table with the pinned thread counts.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument(
        "--only", metavar="FAMILIES", help=f"comma-separated subset of: {', '.join(FAMILIES)}"
    )
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads {args.threads}: use a positive number of threads, e.g. 1")
    families = None
    if args.only:
        families = [f.strip() for f in args.only.split(",") if f.strip()]
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            parser.error(f"--only: unknown {unknown}; choose from {', '.join(FAMILIES)}")
    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(directory):
            parser.error(f"--json {args.json}: the directory {directory} does not exist")
        if os.path.isdir(args.json):
            parser.error(f"--json {args.json} is a directory: name a file")
    # Before Numba, torch or JAX load: they read their thread settings once.
    pin_environment(_resolve_threads(args.threads))
    rows = run(quick=args.quick, threads=args.threads, families=families)
    print(format_table(rows))
    if args.json:
        write_json(rows, args.json)
        print(f"\nwrote {args.json}")
    return 1 if any(r["status"] == "mismatch" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
