"""Data-parallel training of one network on a Dask cluster (``fastnn.distributed.fit``).

``method="averaging"`` (local SGD): every worker trains a replica of the network on
the row blocks assigned to it, with the network's own ``Network.fit`` (same
optimizer, batch size and kernels), and after every ``sync_every`` minibatches the
replicas' parameters and optimizer states are averaged by a tree of pairwise-sum
tasks on the workers. The average is the input of the next round's tasks, so the
client only submits tasks; parameters come back to it once per epoch.

Every task is a pure function of its inputs (the last average, the rows it trains
on, the network's settings). When a worker dies, Dask runs its lost tasks again on
the remaining workers from the same inputs, so the fit goes on to the same result.

``method="lbfgs"`` lives in ``fastnn.dask_lbfgs``.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable

import numpy as np

from .dask_data import (
    BlockSource,
    block_rows,
    block_sources,
    check_training_data,
    forget,
    holders,
    thread_replica,
)
from .dask_epochs import check_validation, end_epoch, resume
from .io import to_bytes
from .network import Network, TrainingDivergedError
from .optimizers import ADAM_KIND, MOMENTUM_KIND, SGD_KIND, from_config, resolve_optimizer
from .validation import check_bool, check_positive_float, check_positive_int

METHODS = ("averaging", "lbfgs")
#: Rounds submitted ahead of the one the client waits for: keeps the scheduler's
#: queue short without leaving the workers idle between rounds.
WINDOW = 32


def fit(
    client,
    net: Network,
    X,
    Y,
    *,
    epochs: int = 1,
    learning_rate: float = 0.01,
    batch_size: int = 32,
    optimizer=None,
    method: str = "averaging",
    sync_every: int = 1,
    shuffle: bool = True,
    validation_data: tuple | None = None,
    checkpoint=None,
    callback: Callable[[int, dict], object] | None = None,
) -> dict[str, list[float]]:
    """Train ``net`` in place on data spread over a Dask cluster.

    Parameters
    ----------
    client : dask.distributed.Client
        Connected to the cluster that holds (or can read) the data.
    net : Network
        Trained in place, as ``net.fit`` does.
    X : dask array or dask DataFrame, shape (n_samples, n_features)
        Its row blocks are computed on the workers and never pass through the
        client. A NumPy array is also accepted: it is scattered to the workers once,
        in one block per worker.
    Y : dask array, Series or DataFrame, shape (n_samples,) or (n_samples, n_outputs)
        With the same row chunks as X.
    epochs : int
        Passes over the data (``method="averaging"``), or the most L-BFGS iterations
        (``method="lbfgs"``).
    learning_rate, batch_size, optimizer
        As in ``Network.fit`` (averaging only). ``optimizer`` is a name or an
        ``fastnn.optimizers`` object; its state (Adam's moments and step) is averaged
        along with the parameters and kept in ``net.optimizer``.
    method : {"averaging", "lbfgs"}
        "averaging": each worker trains a replica on its blocks and the replicas are
        averaged every ``sync_every`` minibatches. "lbfgs": full-batch L-BFGS on the
        client over the parameter vector, each loss and gradient summed over the
        blocks on their workers.
    sync_every : int
        Minibatches each replica trains between two averages.
    shuffle : bool
        Visit each worker's blocks, and the rows within each block, in a fresh order
        every epoch, drawn from ``net``'s seeded generator.
    validation_data : (X_val, Y_val), optional
        NumPy or dask arrays; adds each epoch's "val_loss" to the history.
    checkpoint : str or os.PathLike, optional
        Save the averaged network there (atomically, in the model format) after
        every epoch. If the file exists, training resumes from it: its weights,
        optimizer state and completed epochs.
    callback : callable(epoch, history), optional
        Called on the client after each epoch.

    Returns
    -------
    dict
        "loss": each epoch's mean training loss; "val_loss" with validation data.

    Raises
    ------
    ValueError, TypeError
        For bad input (a client with no workers, X and Y with different row chunks,
        a feature count that does not match the network, ...), before any worker
        starts training.
    TrainingDivergedError
        If a replica's loss turns non-finite; ``net`` keeps the last epoch's average.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastnn Network, got {type(net).__name__}")
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    epochs = check_positive_int("epochs", epochs)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    batch_size = check_positive_int("batch_size", batch_size)
    sync_every = check_positive_int("sync_every", sync_every)
    shuffle = check_bool("shuffle", shuffle)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback={callback!r} is not callable")
    workers = sorted(client.nthreads())
    if not workers:
        raise ValueError(
            "the client's cluster has no workers: start some (e.g. cluster.scale(2)) "
            "or wait for them with client.wait_for_workers(n)"
        )
    validation = check_validation(net, validation_data)
    opt = resolve_optimizer(optimizer, net.optimizer) if method == "averaging" else None
    X, Y = check_training_data(client, net, X, Y)

    if method == "lbfgs":
        from .dask_lbfgs import fit_lbfgs

        return fit_lbfgs(client, net, X, Y, epochs, validation, checkpoint, callback)
    return _fit_averaging(
        client, net, X, Y, workers, opt, epochs, learning_rate, batch_size, sync_every,
        shuffle, validation, checkpoint, callback,
    )  # fmt: skip


# -- averaging ---------------------------------------------------------------------------
def _assign(client, sources: list[BlockSource], workers: list[str]) -> list[list[BlockSource]]:
    """Each worker's blocks: the ones it holds in memory, and lazy blocks spread so
    that every worker gets about as many rows."""
    held = holders(client, sources)
    shares: dict[str, list[BlockSource]] = {w: [] for w in workers}
    rows = dict.fromkeys(workers, 0)
    for s in sources:
        w = held.get(s.index)
        if w not in shares:
            w = min(workers, key=lambda name: (rows[name], workers.index(name)))
        shares[w].append(s)
        rows[w] += s.rows
    return [shares[w] for w in workers]


def _rounds(shares, rows_per_round: int, rng: np.random.Generator | None) -> list[list[list]]:
    """rounds[r][w]: the pieces (block, start, stop) worker w trains on in round r."""
    streams = []
    for blocks in shares:
        if rng is not None:
            blocks = [blocks[i] for i in rng.permutation(len(blocks))]
        pieces, current, filled = [], [], 0
        for s in blocks:
            start = 0
            while start < s.rows:
                stop = min(s.rows, start + rows_per_round - filled)
                current.append((s, start, stop))
                filled += stop - start
                start = stop
                if filled == rows_per_round:
                    pieces.append(current)
                    current, filled = [], 0
        if current:
            pieces.append(current)
        streams.append(pieces)
    n_rounds = max(len(p) for p in streams)
    return [[p[r] if r < len(p) else [] for p in streams] for r in range(n_rounds)]


def _fit_averaging(client, net, X, Y, workers, opt, epochs, learning_rate, batch_size,
                   sync_every, shuffle, validation, checkpoint, callback):  # fmt: skip
    done, history = resume(net, checkpoint)
    history.setdefault("loss", [])
    if done >= epochs:
        return history
    saved = net.optimizer
    if done and saved is not None and saved.get_config() == opt.get_config():
        opt.state, opt.step = saved.state, saved.step  # go on from the checkpoint's state
    net.optimizer = opt
    opt.buffers(net.params)  # state shaped like the parameters
    sources = block_sources(client, X, Y)
    shares = _assign(client, sources, workers)
    n = sum(s.rows for s in sources)
    tag = uuid.uuid4().hex
    settings = {
        "tag": tag,
        "optimizer": opt.get_config(),
        "learning_rate": learning_rate,
        "batch_size": batch_size,
    }
    spec = client.scatter(to_bytes(net), broadcast=True, hash=False)
    try:
        for epoch in range(done + 1, epochs + 1):
            rng = None
            if shuffle:
                rng = np.random.default_rng(net._rng.integers(2**63))
            rounds = _rounds(shares, sync_every * batch_size, rng)
            # In a list: scatter would send a dict's values as separate keys.
            [state] = client.scatter([_state(net, opt)], broadcast=True, hash=False)
            entropy = None if rng is None else int(rng.integers(2**63))
            halves = _run_epoch(client, state, spec, rounds, workers, settings, entropy)
            try:
                result = _average(client.gather(halves))
            except TrainingDivergedError:
                raise TrainingDivergedError(
                    f"training diverged in epoch {epoch}: a replica's loss became non-finite. "
                    f"The network keeps the average of epoch {epoch - 1}. Lower "
                    f"learning_rate (it was {learning_rate}) or scale the inputs."
                ) from None
            _apply(net, opt, result)
            end_epoch(
                client, net, epoch, history, result["loss"] / n, validation, checkpoint, callback
            )
    finally:
        # A lost connection must not hide the error that ended the fit.
        with contextlib.suppress(Exception):
            client.run(forget, tag)
    return history


def _state(net: Network, opt, loss: float = 0.0) -> dict:
    """What moves between the workers: the parameters, the optimizer buffers its
    kind uses (none for SGD, the velocity for momentum, both moments for Adam), the
    step count, a loss sum and the number of replicas summed."""
    a, b, _ = opt.buffers(net.params)
    state = {"params": net.params.copy(), "step": opt.step, "loss": loss, "count": 1}
    buffers = {SGD_KIND: (), MOMENTUM_KIND: ("a",), ADAM_KIND: ("a", "b")}[opt.kind]
    for key in buffers:
        state[key] = (a if key == "a" else b).copy()
    return state


def _apply(net: Network, opt, state: dict) -> None:
    net.params[:] = state["params"]
    a, b, _ = opt.buffers(net.params)
    for key, buf in (("a", a), ("b", b)):
        if key in state:
            buf[:] = state[key]
    opt.step = int(state["step"])


def _run_epoch(client, state, spec, rounds, workers, settings, entropy) -> list:
    """Submit the epoch's rounds, ``WINDOW`` ahead of the one waited for; return the
    Futures of the two halves of the epoch's last average."""
    halves, waiting = [state], []
    for r, plan in enumerate(rounds):
        parts, first = [], True
        for worker, pieces in zip(workers, plan, strict=True):
            if not pieces:
                continue
            data = [f for s, _, _ in pieces for f in s.futures]
            light = [(s.descriptor(), start, stop) for s, start, stop in pieces]
            task = client.submit(
                _train_round, spec, settings, light, entropy, r > 0 and first, len(halves),
                *halves, *data, workers=[worker], allow_other_workers=True, pure=False,
            )  # fmt: skip
            parts.append(task)
            first = False
        halves = _reduce(client, parts)
        waiting.append(halves[0])
        if len(waiting) > WINDOW:
            waiting.pop(0).exception()  # waits for the round; its error comes at the end
    return halves


def _reduce(client, parts: list) -> list:
    """The replicas' states summed by a tree of pairwise sums on the workers, down to
    two halves: the last sum and the division are done by each task that uses the
    average, which saves the round a scheduling step."""
    while len(parts) > 2:
        parts = [
            client.submit(_sum_states, parts[i], parts[i + 1], False, pure=False)
            if i + 1 < len(parts)
            else parts[i]
            for i in range(0, len(parts), 2)
        ]
    return parts


def _average(halves: list | tuple) -> dict:
    return halves[0] if len(halves) == 1 else _sum_states(halves[0], halves[1], True)


def _sum_states(a: dict, b: dict, final: bool) -> dict:
    out = {key: a[key] + b[key] for key in a}
    if final:
        k = out["count"]
        for key in ("params", "a", "b"):
            if key in out:
                out[key] /= out["params"].dtype.type(k)
        out["step"] = round(out["step"] / k)
        out["count"] = 1
    return out


# -- on the workers ----------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _order(entropy, index: int, rows: int) -> np.ndarray | None:
    """A block's row order in an epoch (None: as stored)."""
    if entropy is None:
        return None
    return np.random.default_rng([entropy, index]).permutation(rows)


def _gather(settings: dict, pieces: list, entropy, data: tuple):
    """The rows of a round, in training order, from the blocks they come from."""
    xs, ys, i = [], [], 0
    for s, start, stop in pieces:
        held = (s.x is None) + (s.y is None)
        x, y = block_rows(settings["tag"], s, *data[i : i + held])
        i += held
        order = _order(entropy, s.index, s.rows)
        rows = slice(start, stop) if order is None else order[start:stop]
        xs.append(np.asarray(x)[rows])
        ys.append(np.asarray(y)[rows])
    if len(xs) == 1:
        return xs[0], ys[0]
    return np.concatenate(xs), np.concatenate(ys)


def _train_round(spec: bytes, settings: dict, pieces: list, entropy, carry: bool,
                 n_halves: int, *args) -> dict:  # fmt: skip
    """One replica's minibatches of a round, from the last average: ``args`` holds
    the ``n_halves`` halves of that average, then the data of the round's in-memory
    blocks.

    Returns the replica's state; its "loss" is the round's loss sum (plus the
    epoch's total so far when ``carry``: one replica per round carries it)."""
    state = _average(args[:n_halves])
    data = args[n_halves:]
    net = thread_replica(settings["tag"], spec)
    if net.optimizer is None:
        net.optimizer = from_config(settings["optimizer"])
    opt = net.optimizer
    x, y = _gather(settings, pieces, entropy, data)
    _apply(net, opt, state)
    history = net.fit(
        x, y, epochs=1, learning_rate=settings["learning_rate"],
        batch_size=settings["batch_size"], shuffle=False, optimizer=opt,
    )  # fmt: skip
    loss = history["loss"][0] * x.shape[0] + (state["loss"] if carry else 0.0)
    return _state(net, opt, loss)
