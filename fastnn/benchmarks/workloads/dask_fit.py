"""Data-parallel training on Dask (``fastnn.distributed.fit``, parameter averaging):
one epoch of 784-256-128-10 minibatch SGD on a loopback ``LocalCluster`` of one and of
two single-thread workers, against ``Network.fit`` on one thread in this process.

The rows are a learnable synthetic classification (each class's centre plus standard
normal noise), made block by block: on the workers for the
clusters, the same blocks here for ``Network.fit``. Each system's test accuracy must
come within ``ACCURACY_GAP`` of ``Network.fit``'s, which must beat chance by far.
"""

from __future__ import annotations

import logging

import numpy as np

from ..cases import Case, Unavailable, Workload, optional
from ..data import Arch, initial_weights
from ..sizes import sizes_of

#: Rows per training run at each benchmark size, and rows per block.
ROWS = {"full": 60_000, "quick": 20_000, "smoke": 8_192}
CHUNK = {"full": 10_000, "quick": 5_000, "smoke": 2_048}
TEST_ROWS = 2_000
#: The largest test-accuracy shortfall against ``Network.fit`` (averaging replicas
#: every ``SYNC_EVERY`` batches is not the same walk as one replica).
ACCURACY_GAP = 0.05
SYNC_EVERY = 16
#: How far apart the classes' centres are (as a multiple of a standard normal draw):
#: far enough that one epoch learns them, near enough that it takes that epoch.
CENTRE_SCALE = 0.5
SETTINGS = {"epochs": 1, "learning_rate": 0.01, "batch_size": 64, "optimizer": "sgd"}
_ARCH = Arch((784, 256, 128, 10), "relu", "identity", "cross_entropy")


def teacher_rows(start: int, stop: int, seed: int = 0) -> np.ndarray:
    """Rows ``start:stop`` of the synthetic classification: 784 float32 features, then
    the label (as a float), the same wherever they are made. Each row is its class's
    centre plus standard normal noise; ``seed`` picks the rows, the centres are
    always the same."""
    rng = np.random.default_rng([seed, start])
    labels = rng.integers(0, 10, stop - start)
    centres = np.random.default_rng(0).standard_normal((10, 784)).astype(np.float32)
    X = rng.standard_normal((stop - start, 784), dtype=np.float32)
    X += CENTRE_SCALE * centres[labels]
    return np.concatenate([X, labels[:, None].astype(np.float32)], axis=1)


def _teacher_block(seed: int, block_info=None) -> np.ndarray:
    start, stop = block_info[None]["array-location"][0]
    return teacher_rows(start, stop, seed)


def _local(rows: int, chunk: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    both = np.concatenate(
        [teacher_rows(a, min(a + chunk, rows), seed) for a in range(0, rows, chunk)]
    )
    return both[:, :784], both[:, 784].astype(np.int64)


def _test_set() -> tuple[np.ndarray, np.ndarray]:
    return _local(TEST_ROWS, TEST_ROWS, seed=1)


class _Fit(Case):
    """One epoch from fastnn's initial weights; ``result`` is the test accuracy."""

    def __init__(self, system: str, rows: int) -> None:
        super().__init__(system, units=rows)
        self.init = initial_weights(_ARCH)
        self.test = _test_set()

    def reset(self) -> None:
        self.net = _ARCH.network(threads=1, init=self.init)

    def result(self) -> float:
        X, y = self.test
        accuracy = float(np.mean(self.net.predict(X).argmax(axis=1) == y))
        self.notes = f"test accuracy {accuracy:.3f}"
        return accuracy


class LocalFit(_Fit):
    """``Network.fit`` in this process, on one thread."""

    def __init__(self, rows: int, chunk: int) -> None:
        super().__init__("fastnn", rows)
        self.X, self.y = _local(rows, chunk)

    def run(self) -> None:
        self.net.fit(self.X, self.y, **SETTINGS)


class ClusterFit(_Fit):
    """``fastnn.distributed.fit`` on a new loopback ``LocalCluster`` of ``workers``
    single-thread worker processes, its rows made and persisted on the workers."""

    def __init__(self, workers: int, rows: int, chunk: int, threads: int) -> None:
        super().__init__(f"dask-{workers}w", rows)
        if optional("dask.distributed") is None or optional("dask.array") is None:
            raise Unavailable("dask[distributed] is not installed")
        if workers > threads:
            raise Unavailable(f"{workers} workers need {workers} threads (threads={threads})")
        import dask.array as da
        from dask.distributed import Client, LocalCluster

        self.cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=":0", silence_logs=logging.ERROR,
        )  # fmt: skip
        try:
            self.client = Client(self.cluster, set_as_default=False)
            sizes = (chunk,) * (rows // chunk) + ((rows % chunk,) if rows % chunk else ())
            both = da.map_blocks(_teacher_block, 0, chunks=(sizes, (785,)), dtype=np.float32)
            self.X, self.y = self.client.persist([both[:, :784], both[:, 784].astype(np.int64)])
        except BaseException:
            self.close()
            raise

    def run(self) -> None:
        from ... import distributed

        distributed.fit(self.client, self.net, self.X, self.y, sync_every=SYNC_EVERY, **SETTINGS)

    def close(self) -> None:
        for part in ("client", "cluster"):
            if getattr(self, part, None) is not None:
                getattr(self, part).close()
                setattr(self, part, None)


def _accurate(got: float, want: float) -> str | None:
    if want < 0.5:
        return f"Network.fit reached a test accuracy of only {want:.3f}: the check is vacuous"
    if got < want - ACCURACY_GAP:
        return f"test accuracy {got:.3f}, more than {ACCURACY_GAP} below Network.fit's {want:.3f}"
    return None


def dask_workload(size: str = "full", threads: int = 2) -> Workload:
    """One epoch of 784-256-128-10 SGD (batch 64) on Dask with one and two workers,
    against ``Network.fit`` in this process; samples per second."""
    s = sizes_of(size)
    rows, chunk = ROWS[size], CHUNK[size]
    return Workload(
        name=f"dask-averaging-{rows}-784-256-128-10",
        group="dask-averaging-784-256-128-10",
        unit="sample",
        builders={
            "fastnn": lambda: LocalFit(rows, chunk),
            "dask-1w": lambda: ClusterFit(1, rows, chunk, threads),
            "dask-2w": lambda: ClusterFit(2, rows, chunk, threads),
        },
        compare=_accurate,
        oracle="fastnn",
        repeats=s.repeats,
        notes=f"{rows} rows in blocks of {chunk}, one epoch, batch 64, SGD lr 0.01, float32; "
        f"dask-Nw: distributed.fit on N single-thread workers, sync_every={SYNC_EVERY}; "
        "fastnn: Network.fit on one thread",
    )


def workloads(size: str = "full", threads: int = 2) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [dask_workload(size, threads)]
