"""The estimators' epochs, one call each.

Dense, unweighted data with the standard losses trains on ``Network``'s compiled
engine (``EngineEpochs``): X and Y are checked once per fit, and each epoch is one
call of the engine over scikit-learn's shuffled row order, with none of
``Network.fit``'s per-call checks and no copy of the shuffled rows. Data the engine
does not take (per-sample weights, a sparse X, the Poisson loss) trains in
``run_epoch`` instead: each batch's loss and gradient come from one call of
``fastnn.kernels.fullbatch`` on the batch's rows, followed by one call of the
optimizer's kernel.
"""

from __future__ import annotations

import numpy as np

from ..codes import SGD
from ..fullbatch import FullBatch
from ..network import Network, TrainingDivergedError
from ..optimizers import Optimizer
from ..threads import blas_threads


class EngineEpochs:
    """Epochs of ``Network.fit``'s compiled training loop over rows in a given order.

    Parameters
    ----------
    net : Network
    X, Y : arrays
        The training data, checked and converted by the network here, once.
    batch : int
        Rows per batch (1 with plain SGD and no L2 is the per-sample loop).
    l2 : float
        Added as l2·W to each weight gradient, as ``Network.fit``'s ``l2``.
    """

    def __init__(self, net: Network, X, Y, batch: int, l2: float):
        self.net = net
        self.X, self.Y = net._check_XY(X, Y)
        self.batch = int(batch)
        self.l2 = float(l2)
        # Chosen once per fit: asking threadpoolctl and /proc every epoch cost about a
        # tenth of a small network's epoch.
        self.engine_threads = net._threads_for(min(self.batch, self.X.shape[0]))

    def threads(self):
        """The BLAS thread limit for the epochs: set it once around all the calls of
        ``run`` (setting a limit costs a fraction of a millisecond, a tenth of a small
        network's epoch)."""
        return blas_threads(self.net._minibatch_blas_threads(min(self.batch, self.X.shape[0])))

    def run(self, order: np.ndarray, learning_rate: float, optimizer: Optimizer) -> float:
        """Train one epoch over the rows ``order`` (int64) and return its mean loss,
        as ``Network.fit(X[order], Y[order], epochs=1, ...)`` would, to the bit. Runs
        under the BLAS thread limit of ``threads``, which the caller sets.

        Raises
        ------
        TrainingDivergedError
            As ``Network.fit``: the weights and the optimizer's state are restored.
        """
        net = self.net
        order = order.reshape(1, -1)
        per_sample = self.batch == 1 and optimizer.kind == SGD and self.l2 == 0
        with net._lock:  # as in fit: a save from another thread waits for the epoch
            net.optimizer = optimizer
            net.stopped_epoch = 0
            if per_sample:
                losses = net._run_sgd(self.X, self.Y, order, learning_rate, 0)
            else:
                rates = np.full(1, learning_rate)
                losses = net._run_minibatch(self.X, self.Y, order, rates, self.batch, self.l2,
                                            optimizer, 0, limit_threads=False,
                                            threads=self.engine_threads)  # fmt: skip
            net.stopped_epoch = 1
        return losses[0]


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
