"""One epoch of minibatch training on the full-batch kernel.

The estimators train dense, unweighted data with the standard losses through
``Network.fit``, whose epochs run whole in compiled code. Data the engine does not
take (per-sample weights, a sparse X, the Poisson loss) trains here instead: each
batch's loss and gradient come from one call of ``fastnn.kernels.fullbatch`` on the
batch's rows, followed by one call of the optimizer's kernel.
"""

from __future__ import annotations

import numpy as np

from ..fullbatch import FullBatch
from ..network import TrainingDivergedError
from ..optimizers import Optimizer


def run_epoch(
    data: FullBatch,
    order: np.ndarray,
    batch: int,
    learning_rate: float,
    optimizer: Optimizer,
    alpha: float,
    loss_scale: float,
    mask: np.ndarray,
) -> float:
    """Train ``data.net`` for one epoch over the rows ``order`` in batches of ``batch``.

    Each batch's gradient is scikit-learn's: (loss_scale·Σ wᵢ∇ℓᵢ + alpha·W) / Σ wᵢ.
    Returns the epoch's loss as scikit-learn reports it: each batch's
    (loss_scale·Σ wᵢℓᵢ + alpha/2·‖W‖²) / Σ wᵢ, averaged over the batches' row counts.

    Runs under the caller's BLAS thread limit (setting one costs milliseconds: the
    caller sets it once for all its epochs).

    Raises
    ------
    TrainingDivergedError
        If a loss or a parameter turned non-finite; the parameters and the optimizer's
        state are restored to their values at the start of the epoch.
    """
    net = data.net
    params = net.params
    ops = net._ops
    grad = np.empty_like(params)
    state_a, state_b, step = optimizer.buffers(params)
    saved = (params.copy(), state_a.copy(), state_b.copy(), int(step[0]))
    hyper = optimizer.hyper()
    total = 0.0
    n = order.size
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, batch):
            rows = order[start : start + batch]
            weight = float(data.sample_weight[rows].sum(dtype=np.float64))
            loss = loss_scale * data.evaluate(grad, rows)
            grad *= params.dtype.type(loss_scale)
            if alpha > 0:
                w = params[mask]
                loss += 0.5 * alpha * float(np.dot(w, w))
                grad[mask] += params.dtype.type(alpha) * w
            if weight > 0:
                grad /= params.dtype.type(weight)
                loss /= weight
            total += loss * rows.size
            if not np.isfinite(loss):
                break
            step[0] += 1
            ops.optimizer_step(optimizer.kind, params, grad, state_a, state_b,
                               learning_rate, hyper, step[0])  # fmt: skip
    if not (np.isfinite(total) and np.isfinite(params).all()):
        params[:], state_a[:], state_b[:], step[0] = saved
        raise TrainingDivergedError(
            "training diverged: the loss became non-finite. The weights were restored to "
            "their values at the start of the epoch."
        )
    optimizer.step = int(step[0])
    return total / n
