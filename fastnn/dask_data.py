"""Data on a Dask cluster for fastnn: checked inputs, row blocks that load where a
task runs, and lazy ``predict`` / ``evaluate``.

A training input is split into row blocks, each a ``BlockSource``: either a Future
(a NumPy input scattered once, or a persisted dask array, whose block already lives
in some worker's memory) that Dask hands to the task as a dependency, or the lazy
graph of one block, which the task computes itself on its worker. Either way a block
is computed on the workers and never passes through the client, and a lazy block is
held only while its rows are in use (``block_rows`` keeps one block per worker).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from .validation import install_hint

try:
    import dask
    import dask.array as da
    from distributed import Future
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"fastnn.distributed needs dask.distributed: {install_hint('dask')}") from exc

from .io import from_bytes, to_bytes
from .network import Network


# -- inputs ------------------------------------------------------------------------
def _is_dataframe(obj) -> bool:
    return hasattr(obj, "to_dask_array") and hasattr(obj, "npartitions")


def as_dask_array(name: str, data, client=None, *, rows: tuple | None = None):
    """``data`` as a dask array with known row chunks and one column chunk.

    A dask DataFrame or Series is converted (its partition lengths are computed on
    the workers). A NumPy array is split into ``rows`` chunks and, with a client,
    scattered to the workers once. Anything else raises a TypeError.
    """
    if _is_dataframe(data):
        lengths = None
        if client is not None:  # counted on the workers, not in the client's process
            lengths = client.compute(data.map_partitions(len)).result().tolist()
        data = data.to_dask_array(lengths=lengths if lengths is not None else True)
    elif isinstance(data, np.ndarray):
        chunks = rows if rows is not None else (data.shape[0],)
        data = _scattered(client, data, chunks) if client is not None else da.from_array(data)
    elif not isinstance(data, da.Array):
        raise TypeError(
            f"{name} is {type(data).__name__}: pass a dask array, a dask DataFrame or "
            "Series, or a NumPy array"
        )
    if data.ndim not in (1, 2):
        raise ValueError(f"{name} must have 1 or 2 dimensions, got shape {data.shape}")
    if any(math.isnan(c) for c in data.chunks[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes: call {name}.compute_chunk_sizes() first "
            "(or DataFrame.to_dask_array(lengths=True))"
        )
    if data.ndim == 2 and len(data.chunks[1]) > 1:
        data = data.rechunk({1: -1})  # a block holds whole samples
    return data


def _scattered(client, data: np.ndarray, chunks: tuple) -> da.Array:
    """``data`` scattered to the workers, one Future per row chunk (each on two
    workers where there are two, so that losing one loses no data), as a dask array
    whose blocks are those Futures."""
    bounds = np.cumsum((0, *chunks))
    parts = [np.ascontiguousarray(data[a:b]) for a, b in itertools.pairwise(bounds)]
    futures = client.scatter(parts, hash=False)
    client.replicate(futures, n=min(2, len(client.nthreads())))
    name = f"fastnn-scattered-{uuid.uuid4().hex}"
    tail = (0,) * (data.ndim - 1)
    graph = {(name, i, *tail): f for i, f in enumerate(futures)}
    return da.Array(graph, name, (tuple(chunks), *((n,) for n in data.shape[1:])), data.dtype)


def even_chunks(n: int, parts: int) -> tuple[int, ...]:
    """``n`` rows in ``parts`` chunks whose sizes differ by one at most."""
    parts = max(1, min(parts, n))
    return tuple(len(c) for c in np.array_split(np.arange(n), parts))


def check_training_data(client, net: Network, X, Y):
    """X and Y as dask arrays with the same row chunks, X's width the network's input.

    Raises before anything runs on the workers.
    """
    if isinstance(X, np.ndarray) and isinstance(Y, np.ndarray) and X.shape[:1] != Y.shape[:1]:
        raise ValueError(
            f"X has {X.shape[0]} samples but Y has {Y.shape[0]}: pass one target row per sample"
        )
    if isinstance(X, np.ndarray) and not isinstance(Y, np.ndarray):
        # A NumPy X follows the row chunks of a dask Y.
        Y = as_dask_array("Y", Y, client)
        X = as_dask_array("X", X, client, rows=Y.chunks[0])
    else:
        rows = None
        if isinstance(X, np.ndarray):
            rows = even_chunks(X.shape[0], len(client.nthreads()))
        X = as_dask_array("X", X, client, rows=rows)
        rows = X.chunks[0] if isinstance(Y, np.ndarray) else None
        Y = as_dask_array("Y", Y, client, rows=rows)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[1] != net.n_features:
        raise ValueError(
            f"X has {X.shape[1]} features per sample, but the network's first Dense layer "
            f"takes {net.n_features}: pass shape (n_samples, {net.n_features})"
        )
    if X.dtype.kind not in "biuf" or Y.dtype.kind not in "biuf":
        raise TypeError(
            f"X has dtype {X.dtype} and Y {Y.dtype}: both must be numeric, e.g. "
            "X.astype(np.float64)"
        )
    if X.chunks[0] != Y.chunks[0]:
        raise ValueError(
            f"X and Y must have the same row chunks, got {X.chunks[0]} and {Y.chunks[0]}: "
            "rechunk one to the other, e.g. Y = Y.rechunk({0: X.chunks[0]})"
        )
    return X, Y


# -- blocks ------------------------------------------------------------------------
@dataclass(frozen=True)
class BlockSource:
    """One row block of X and Y. Each of ``x`` and ``y`` is a Future (the block is
    in some worker's memory; Dask hands its data to the task) or the lazy one-block
    dask array that the task computes on its worker; a descriptor sent with a task
    has None in place of each Future."""

    index: int
    rows: int
    x: Any
    y: Any

    @property
    def futures(self) -> list:
        return [v for v in (self.x, self.y) if isinstance(v, Future)]

    def descriptor(self) -> BlockSource:
        """The block without its Futures, which go to the task as dependencies."""

        def lazy(v):
            return None if isinstance(v, Future) else v

        return BlockSource(self.index, self.rows, lazy(self.x), lazy(self.y))


def _futures(array: da.Array) -> list:
    """The Future of each row block of ``array`` where that block is persisted (in
    the workers' memory), else None."""
    keys = list(dask.core.flatten(array.__dask_keys__()))
    graph = array.__dask_graph__()
    found = [graph.get(key) for key in keys]
    return [f if isinstance(f, Future) else None for f in found]


def _holds_futures(array: da.Array) -> bool:
    return any(isinstance(v, Future) for v in array.__dask_graph__().values())


def _one_block(array: da.Array, i: int) -> da.Array:
    return array.blocks[i] if array.ndim == 1 else array.blocks[i, 0]


def block_sources(client, X: da.Array, Y: da.Array) -> list[BlockSource]:
    """One ``BlockSource`` per row block of X and Y (which have the same row chunks).

    An array computed from persisted data (a slice, a rechunk) is persisted first,
    on the workers: a task cannot compute such a graph by itself."""
    arrays = []
    for array in (X, Y):
        futures = _futures(array)
        if any(f is None for f in futures) and _holds_futures(array):
            array = client.persist(array)
            futures = _futures(array)
        arrays.append([f if f is not None else _one_block(array, i) for i, f in enumerate(futures)])
    return [
        BlockSource(i, rows, x, y)
        for i, (rows, x, y) in enumerate(zip(X.chunks[0], *arrays, strict=True))
    ]


def holders(client, sources: list[BlockSource]) -> dict[int, str]:
    """The worker that holds each in-memory block, by block index."""
    keys = {s.x.key: s.index for s in sources if isinstance(s.x, Future)}
    if not keys:
        return {}
    return {keys[k]: sorted(w)[0] for k, w in client.who_has(list(keys)).items() if w}


_BLOCKS: dict[tuple, tuple] = {}
_BLOCKS_LOCK = threading.Lock()


def block_rows(tag: str, source: BlockSource, *data) -> tuple[np.ndarray, np.ndarray]:
    """A block's (X, Y) on the worker running the task.

    ``data`` holds what Dask passed for the block's Futures (None in the
    descriptor ``source``), in order. The lazy parts are computed here and kept
    under ``tag`` until another block of the same ``tag`` replaces them: a worker
    holds one lazy block per fit at a time.
    """
    given = iter(data)
    if source.x is None and source.y is None:
        return next(given), next(given)
    key = (tag, source.index)
    with _BLOCKS_LOCK:
        hit = _BLOCKS.get(key)
    if hit is None:
        with _BLOCKS_LOCK:  # drop the previous block before loading the next
            for old in [k for k in _BLOCKS if k[0] == tag]:
                del _BLOCKS[old]
        lazy = [v for v in (source.x, source.y) if v is not None]
        hit = dask.compute(*lazy, scheduler="sync")
        with _BLOCKS_LOCK:
            _BLOCKS[key] = hit
    computed = iter(hit)
    x = next(given) if source.x is None else next(computed)
    y = next(given) if source.y is None else next(computed)
    return x, y


def forget(tag: str) -> None:
    """Drop the blocks and replicas kept for the fit ``tag`` (run on every worker at
    the end of a fit)."""
    with _BLOCKS_LOCK:
        for old in [k for k in _BLOCKS if k[0] == tag]:
            del _BLOCKS[old]
    with _REPLICAS_LOCK:
        for old in [k for k in _REPLICAS if k[0] == tag]:
            del _REPLICAS[old]


# -- networks on the workers -----------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _network(digest: str, data: bytes) -> Network:
    return from_bytes(data)


def network_on_worker(data: bytes) -> Network:
    """The network in ``data`` (``fastnn.io.to_bytes``), built once per process."""
    return _network(hashlib.sha256(data).hexdigest(), data)


_REPLICAS: dict[tuple, Network] = {}
_REPLICAS_LOCK = threading.Lock()


def thread_replica(tag: str, data: bytes) -> Network:
    """This thread's own copy of the network in ``data`` for the fit named ``tag``,
    built once (replicas of earlier fits are dropped), with the worker's threads."""
    key = (tag, threading.get_ident())
    with _REPLICAS_LOCK:
        net = _REPLICAS.get(key)
    if net is None:
        net = from_bytes(data)
        with _REPLICAS_LOCK:
            for old in [k for k in _REPLICAS if k[0] != tag]:
                del _REPLICAS[old]
            _REPLICAS[key] = net
    net.threads = worker_threads()
    return net


def worker_threads() -> int:
    """The running Dask worker's thread count (1 outside a worker)."""
    from distributed import get_worker

    try:
        return max(1, int(get_worker().state.nthreads))
    except ValueError:
        return 1


# -- lazy inference --------------------------------------------------------------------
def _predict_block(x: np.ndarray, data: bytes) -> np.ndarray:
    net = network_on_worker(data)
    net.threads = worker_threads()
    return net.predict(x)


def _loss_block(x: np.ndarray, y: np.ndarray, data: bytes) -> np.ndarray:
    net = network_on_worker(data)
    net.threads = worker_threads()
    return np.array([net.evaluate(x, y) * x.shape[0]])


def _as_lazy(name: str, data):
    if isinstance(data, np.ndarray):
        return da.from_array(data, chunks=(even_chunks(data.shape[0], 1), *data.shape[1:]))
    return as_dask_array(name, data)


def predict(net: Network, X) -> da.Array:
    """The network's predictions for a dask array X, lazily: one block per row chunk.

    Parameters
    ----------
    net : Network
    X : dask array, dask DataFrame or NumPy array, shape (n_samples, n_features)

    Returns
    -------
    dask array, shape (n_samples, n_outputs)
        Computed block by block on the workers by ``net.predict``; nothing runs
        until it is computed.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastnn Network, got {type(net).__name__}")
    X = _as_lazy("X", X)
    if X.ndim != 2 or X.shape[1] != net.n_features:
        raise ValueError(
            f"X has shape {X.shape}, but the network's first Dense layer takes "
            f"{net.n_features} features: pass shape (n_samples, {net.n_features})"
        )
    data = dask.delayed(to_bytes(net), pure=True)
    return X.map_blocks(
        _predict_block, data, dtype=net.dtype, chunks=(X.chunks[0], (net.n_outputs,))
    )


def evaluate(net: Network, X, Y) -> da.Array:
    """The network's mean loss over (X, Y), as a lazy dask scalar.

    Each row block's loss sum is computed on the workers by ``net.evaluate``; the
    sums are added and divided by the number of samples.

    Returns
    -------
    dask array, shape ()
        ``float(evaluate(net, X, Y))`` or ``.compute()`` runs it.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastnn Network, got {type(net).__name__}")
    X = _as_lazy("X", X)
    Y = _as_lazy("Y", Y)
    if X.ndim != 2 or X.shape[1] != net.n_features:
        raise ValueError(
            f"X has shape {X.shape}, but the network's first Dense layer takes "
            f"{net.n_features} features: pass shape (n_samples, {net.n_features})"
        )
    if X.chunks[0] != Y.chunks[0]:
        Y = Y.rechunk({0: X.chunks[0]})
    data = dask.delayed(to_bytes(net), pure=True)
    y_index = "ik" if Y.ndim == 2 else "i"
    sums = da.blockwise(
        _loss_block, "i", X, "ij", Y, y_index, data, None,
        dtype=np.float64, adjust_chunks={"i": 1}, concatenate=True,
    )  # fmt: skip
    return sums.sum() / X.shape[0]
