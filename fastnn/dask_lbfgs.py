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

from . import losses
from .dask_data import block_sources, forget, thread_replica
from .dask_epochs import end_epoch, resume
from .io import to_bytes
from .layers import Dense, ReLU, Sigmoid, Tanh
from .network import Network, TrainingDivergedError

try:
    from .fullbatch import loss_and_gradient
except ImportError:  # the single-machine solver's module is not in this build
    loss_and_gradient = None

#: Rows per step of the stand-in below: bounds the activations held at once.
GRADIENT_CHUNK = 8192


def _activate(layer, z: np.ndarray) -> np.ndarray:
    if isinstance(layer, Tanh):
        return np.tanh(z)
    if isinstance(layer, Sigmoid):
        e = np.exp(-np.abs(z))  # by sign: no overflow
        return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    if isinstance(layer, ReLU):
        return np.maximum(z, 0)
    return z


def _activation_grad(layer, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    if isinstance(layer, Tanh):
        return g * (1 - y * y)
    if isinstance(layer, Sigmoid):
        return g * y * (1 - y)
    if isinstance(layer, ReLU):
        return g * (y > 0)
    return g


def _offset(net: Network, view: np.ndarray) -> int:
    """Where a layer's parameter view starts in ``net.params``."""
    start = view.__array_interface__["data"][0] - net.params.__array_interface__["data"][0]
    return start // net.params.itemsize


def _loss_and_gradient_local(net: Network, X, Y, sample_weight=None) -> tuple[float, np.ndarray]:
    """(loss summed over the samples, gradient of that sum), like ``net.params``.

    Local NumPy stand-in for ``fastnn.fullbatch.loss_and_gradient`` (the compiled
    full-batch kernel), used when that module is absent: backpropagation over the
    network's layers, with the losses of ``fastnn.losses``.
    """
    if sample_weight is not None:
        raise ValueError("sample_weight is not supported here: pass None")
    X, Y = net._check_XY(X, Y)
    loss_of = getattr(losses, net.loss)
    prime_of = getattr(losses, net.loss + "_prime")
    total, grad = 0.0, np.zeros(net.params.size)
    for start in range(0, X.shape[0], GRADIENT_CHUNK):
        xs, ys = X[start : start + GRADIENT_CHUNK], Y[start : start + GRADIENT_CHUNK]
        outs = [xs]
        for layer in net.layers:
            z = outs[-1]
            if isinstance(layer, Dense):
                outs.append(z @ layer.weights.T + layer.bias)
            else:
                outs.append(_activate(layer, z))
        rows = xs.shape[0]
        total += loss_of(ys, outs[-1]) * rows
        g = prime_of(ys, outs[-1]) * rows  # of the sum, not the mean
        for i in range(len(net.layers) - 1, -1, -1):
            layer = net.layers[i]
            if not isinstance(layer, Dense):
                g = _activation_grad(layer, outs[i + 1], g)
                continue
            w, b = _offset(net, layer.weights), _offset(net, layer.bias)
            grad[w : w + layer.weights.size] += (g.T @ outs[i]).ravel()
            grad[b : b + layer.bias.size] += g.sum(axis=0)
            if i > 0:
                g = g @ layer.weights
    return total, grad.astype(net.dtype)


if loss_and_gradient is None:
    loss_and_gradient = _loss_and_gradient_local


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
