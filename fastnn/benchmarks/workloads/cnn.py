"""LeNet-5 on 1×28×28 images, float32: per-sample SGD, SGD on batches of 64, and
predict, with fastnn through its public API against its NumPy twin, PyTorch eager
and JAX (the systems live in ``..peers.lenet``)."""

from __future__ import annotations

from collections.abc import Callable

from .. import peers
from ..cases import F32_ATOL, F32_RTOL, Case, Workload, as_float64, outputs_agree, weights_agree
from ..sizes import sizes_of

#: Samples (training) or rows (predict) per timed run, at each benchmark size.
SAMPLES = {
    1: {"full": 1024, "quick": 256, "smoke": 16},
    64: {"full": 2048, "quick": 512, "smoke": 128},
}
PREDICT_ROWS = {"full": 1024, "quick": 1024, "smoke": 256}
#: The twin, about 60 times slower than fastnn, runs this fraction of the samples or
#: rows (at least a batch), and its time is scaled to the whole run.
TWIN_SHARE = 8
#: Samples the training cross-check runs: over a longer run a ReLU input or a pool's
#: maximum that rounding moves to the other side flips a path, and float32 runs in
#: different summation orders then part by more than rounding.
CHECK = {1: 32, 64: 256}
PREDICT_CHECK = 128
#: Predict's tolerances (rtol, atol) on the probabilities: float32 sums in different
#: orders, as in the dense ``predict`` family.
PREDICT_RTOL, PREDICT_ATOL = 1e-4, 1e-6
ARCH = (
    "LeNet-5 (conv 6@5x5, ReLU, max-pool 2, conv 16@5x5, ReLU, max-pool 2, flatten, "
    "dense 120-84-10 with ReLU, softmax CE) on 1x28x28, float32"
)


def _twin_share(n: int, batch: int) -> int:
    """The samples (or rows) the twin runs of ``n``: whole batches, at least one."""
    return max(batch, n // TWIN_SHARE // batch * batch)


def cnn_workload(batch_size: int, size: str = "full", threads: int = 1) -> Workload:
    """LeNet-5 trained by plain SGD with lr 0.01 for one epoch, at ``batch_size`` (1:
    per-sample SGD, 64: batches of 64), float32.

    fastnn calls ``Network.fit(X, y, epochs=1, batch_size=..., shuffle=False)``; where
    ``fit`` refuses the batch size for a convolutional network, its rows (and the
    twin's) are skipped with ``fit``'s reason, and torch and JAX are checked against
    each other instead of against fastnn.
    """
    if batch_size not in SAMPLES:
        raise ValueError(f"batch_size={batch_size}: use one of {list(SAMPLES)}")
    s = sizes_of(size)
    n = SAMPLES[batch_size][size]
    lenet = peers.lenet

    def builders(n_samples: int, timed: bool) -> dict[str, Callable[[], Case]]:
        X, y = lenet.data(n_samples)

        def fastnn(system: str, backend: str) -> Callable[[], Case]:
            def build() -> Case:
                m, kw = n_samples, {}
                if timed and backend == "numpy":
                    m = _twin_share(n_samples, batch_size)
                    kw = {"scale": n_samples / m, "repeats": s.slow_repeats}
                    kw["notes"] = f"{m} of the {n_samples} samples, scaled x{n_samples / m:g}"
                return lenet.FastnnFit(system, X[:m], y[:m], batch_size, backend=backend,
                                       threads=threads, **kw)  # fmt: skip

            return build

        return {
            "fastnn": fastnn("fastnn", "numba"),
            "fastnn-numpy": fastnn("fastnn-numpy", "numpy"),
            "torch": lambda: lenet.Torch(X, y, batch_size),
            "jax": lambda: lenet.Jax(X, y, batch_size),
        }

    n_check = min(n, CHECK[batch_size])
    peers_note = "" if batch_size == 1 else ", torch and jax each other where fit refuses it"
    label = "persample" if batch_size == 1 else f"batch{batch_size}"
    return Workload(
        name=f"cnn-lenet5-{label}",
        group=f"cnn-lenet5-{label}",
        unit="sample",
        builders=builders(n, True),
        check_builders=builders(n_check, False),
        compare=weights_agree(F32_RTOL, F32_ATOL, as_float64(lenet.initial_weights())),
        repeats=s.repeats,
        fallbacks={"torch": "jax", "jax": "torch"},
        notes=f"{ARCH}, SGD lr {lenet.LR}, batch {batch_size}, {n} samples, one epoch, "
        f"{threads} thread(s); checked on {n_check}{peers_note}",
    )


def cnn_predict_workload(size: str = "full", threads: int = 1) -> Workload:
    """LeNet-5's softmax probabilities for 1,024 rows (256 at the smoke size), float32:
    ``Network.predict`` against torch under ``no_grad`` and a jitted JAX forward pass."""
    s = sizes_of(size)
    n = PREDICT_ROWS[size]
    lenet = peers.lenet

    def builders(n_rows: int, timed: bool) -> dict[str, Callable[[], Case]]:
        X, _ = lenet.data(n_rows, seed=2)

        def fastnn(system: str, backend: str) -> Callable[[], Case]:
            def build() -> Case:
                m, kw = n_rows, {}
                if timed and backend == "numpy":
                    m = _twin_share(n_rows, 1)
                    kw = {"scale": n_rows / m, "repeats": s.slow_repeats}
                    kw["notes"] = f"{m} of the {n_rows} rows, scaled x{n_rows / m:g}"
                return lenet.FastnnPredict(system, X[:m], backend=backend, threads=threads,
                                           **kw)  # fmt: skip

            return build

        return {
            "fastnn": fastnn("fastnn", "numba"),
            "fastnn-numpy": fastnn("fastnn-numpy", "numpy"),
            "torch": lambda: lenet.Torch(X, None, None),
            "jax": lambda: lenet.Jax(X, None, None),
        }

    n_check = min(n, PREDICT_CHECK)
    return Workload(
        name=f"cnn-lenet5-predict-{n}",
        group="cnn-lenet5-predict",
        unit="row",
        builders=builders(n, True),
        check_builders=builders(n_check, False),
        compare=outputs_agree(PREDICT_RTOL, PREDICT_ATOL),
        repeats=max(s.repeats, 2 * s.repeats - 3),
        notes=f"{ARCH}, {n} rows, softmax probabilities, {threads} thread(s)",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [
        cnn_workload(1, size, threads),
        cnn_workload(64, size, threads),
        cnn_predict_workload(size, threads),
    ]
