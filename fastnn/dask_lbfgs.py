"""Full-batch L-BFGS over data on a Dask cluster (``fit(..., method="lbfgs")``).

The objective is the network's mean loss over all samples, the function the
single-machine L-BFGS solver minimises. Each evaluation sends the parameter vector
to the workers, computes every row block's loss sum and gradient sum where the block
lives, and adds them by a tree of pairwise sums on the workers; only the total comes
back. SciPy's L-BFGS-B runs on the client over the parameter vector alone.
"""

from __future__ import annotations

import contextlib

import numpy as np
from scipy.optimize import minimize

from .dask_data import block_sources, forget, thread_replica
from .dask_epochs import end_epoch, resume
from .fullbatch import loss_and_gradient
from .io import to_bytes
from .network import Network, TrainingDivergedError


def _block_terms(params: np.ndarray, spec: bytes, tag: str, x, y) -> tuple[float, np.ndarray]:
    net = thread_replica(tag, spec)
    net.params[:] = params
    loss, grad = loss_and_gradient(net, x, y)
    return float(loss), np.asarray(grad, dtype=np.float64)


def _add(a: tuple, b: tuple) -> tuple[float, np.ndarray]:
    return a[0] + b[0], a[1] + b[1]


def _tree_sum(client, parts: list):
    while len(parts) > 1:
        parts = [
            client.submit(_add, parts[i], parts[i + 1], pure=False) if i + 1 < len(parts)
            else parts[i]
            for i in range(0, len(parts), 2)
        ]  # fmt: skip
    return parts[0]


def fit_lbfgs(client, net: Network, X, Y, max_iter, validation, checkpoint, callback):
    """Minimise the mean loss over (X, Y) by L-BFGS; see ``fastnn.distributed.fit``."""
    import uuid

    done, history = resume(net, checkpoint)
    history.setdefault("loss", [])
    if done >= max_iter:
        return history
    X, Y = client.persist([X, Y])  # computed on the workers, kept there
    sources = block_sources(client, X, Y)
    n = sum(s.rows for s in sources)
    tag = uuid.uuid4().hex
    [spec] = client.scatter([to_bytes(net)], broadcast=True, hash=False)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        [params] = client.scatter([w.astype(net.dtype)], broadcast=True, hash=False)
        parts = [
            client.submit(_block_terms, params, spec, tag, s.x, s.y, pure=False) for s in sources
        ]
        loss, grad = _tree_sum(client, parts).result()
        if not np.isfinite(loss):
            raise TrainingDivergedError(
                "L-BFGS met a non-finite loss; the network keeps its last iterate. "
                "Scale the inputs."
            )
        return loss / n, grad / n

    iteration = done

    def step(intermediate_result) -> None:
        nonlocal iteration
        iteration += 1
        net.params[:] = intermediate_result.x
        end_epoch(
            client, net, iteration, history, float(intermediate_result.fun), validation, checkpoint,
            callback,
        )  # fmt: skip

    try:
        result = minimize(
            objective, net.params.astype(np.float64), jac=True, method="L-BFGS-B",
            callback=step, options={"maxiter": max_iter - done},
        )  # fmt: skip
    finally:
        with contextlib.suppress(Exception):  # as in the averaging fit
            client.run(forget, tag)
    net.params[:] = result.x
    return history
