"""Full-batch training: the loss and gradient over a whole data set, and L-BFGS on it.

``loss_and_gradient`` evaluates a network on every sample of (X, Y) in one compiled
call (``fastnn.kernels.fullbatch``): the summed, optionally weighted, loss and its
gradient with respect to ``net.params``. Being sums, the results of disjoint parts of
a data set add up to the result of the whole, so partitions held on different machines
can be evaluated apart and added. ``fit_lbfgs`` minimises the mean loss plus an L2
penalty with SciPy's L-BFGS-B, one such call per evaluation.

X may be dense or a SciPy CSR matrix or array (other sparse formats are converted to
CSR); a sparse X is multiplied as it is, never densified.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
import scipy.optimize
import scipy.sparse as sp

from .codes import DENSE
from .losses import LOSSES
from .network import Network, TrainingDivergedError
from .threads import blas_threads
from .validation import check_finite

#: Rows per block: one block's activations stay in cache, and each matrix product is
#: still large enough for BLAS to run at full speed.
BLOCK = 512
#: The Poisson deviance of exp(output): a loss of the full-batch kernel only.
POISSON = 3
LOSS_KINDS = {**LOSSES, "poisson": POISSON}


class FullBatch:
    """(X, Y, sample weights), checked and converted once, with the workspace for
    evaluating ``net`` on them any number of times.

    Parameters
    ----------
    net : Network
    X : array or sparse matrix, shape (n_samples, n_features)
    Y : array, shape (n_samples, n_outputs)
        With ``loss="cross_entropy"``, integer class labels are accepted.
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights of the samples' losses; ones by default.
    loss : str, optional
        The loss to evaluate: the network's own by default, or ``"poisson"``.
    """

    def __init__(self, net: Network, X, Y, sample_weight=None, loss: str | None = None):
        if not isinstance(net, Network):
            raise TypeError(f"net={net!r} is not a fastnn Network")
        loss = net.loss if loss is None else loss
        if loss not in LOSS_KINDS:
            raise ValueError(f"unknown loss {loss!r}: use one of {sorted(LOSS_KINDS)}")
        self.net = net
        self.kind = LOSS_KINDS[loss]
        dt = net.dtype
        p = net._plan
        a = p.arrays
        empty_i = np.empty(0, np.int64)
        if sp.issparse(X):
            if a.kinds[0] != DENSE:
                raise ValueError("a sparse X needs a network whose first layer is Dense")
            X = sp.csr_matrix(X, dtype=dt)
            if X.ndim != 2 or X.shape[1] != net.n_features:
                raise ValueError(
                    f"X has shape {X.shape}, but the network takes {net.n_features} "
                    f"features: pass shape (n_samples, {net.n_features})"
                )
            X.sum_duplicates()
            check_finite("X", X.data)
            self.n = X.shape[0]
            self.csr = (
                np.ascontiguousarray(X.data),
                X.indices.astype(np.int64),
                X.indptr.astype(np.int64),
            )
            self.X = np.empty((0, net.n_features), dt)
            wt, nx = int(a.n_in[0] * a.n_out[0]), 0
        else:
            self.X = net._check_X(X)
            self.n = self.X.shape[0]
            self.csr = (np.empty(0, dt), empty_i, empty_i)
            wt, nx = 0, net.n_features
        self.Y = net._check_Y(Y, self.n)
        self.sample_weight = check_sample_weight(sample_weight, self.n, dt)
        self.block = max(1, min(BLOCK, self.n))
        widest = int(max(a.n_in.max(), a.n_out.max()))
        largest = int(max(o * i for o, i, k in zip(a.n_out, a.n_in, a.kinds, strict=True)
                          if k == DENSE))  # fmt: skip
        b = self.block
        self._buffers = (
            np.empty(b * (p.n_acts), dt),
            np.empty(b * widest, dt),
            np.empty(b * widest, dt),
            np.empty(largest, dt),
            np.empty(wt, dt),
            np.empty(wt, dt),
            np.empty(b * nx, dt),
            np.empty(b * net.n_outputs, dt),
            np.empty(b, dt),
        )
        self.all_samples = np.arange(self.n, dtype=np.int64)

    def evaluate(self, grad: np.ndarray, samples: np.ndarray | None = None) -> float:
        """The summed weighted loss at ``net.params`` over ``samples`` (int64 row
        indices; every row by default); its gradient goes into ``grad``. It runs
        under the caller's BLAS thread limit (see ``threads``)."""
        net = self.net
        p = net._plan
        samples = self.all_samples if samples is None else samples
        data = (self.X, *self.csr, self.Y, self.sample_weight, samples)
        args = (*p.arrays, net.params, *data, self.kind, self.block, grad, *self._buffers)
        return float(net._ops.fullbatch_loss_grad(*args))

    def threads(self):
        """The BLAS thread limit for evaluating: set it once around many calls of
        ``evaluate`` (setting a limit costs milliseconds)."""
        return blas_threads(self.net._threads_for(self.block))


def check_sample_weight(sample_weight, n: int, dtype) -> np.ndarray:
    """``sample_weight`` as a contiguous (n,) array of ``dtype``: ones if None."""
    if sample_weight is None:
        return np.ones(n, dtype)
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        return np.full(n, sample_weight, dtype)
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight has dtype {sw.dtype}: pass numbers, one per sample")
    sw = np.ascontiguousarray(sw, dtype=dtype)
    if sw.shape != (n,):
        raise ValueError(
            f"sample_weight has shape {sw.shape}: pass one weight per sample, shape ({n},)"
        )
    check_finite("sample_weight", sw)
    if (sw < 0).any():
        raise ValueError("sample_weight holds negative values: weights must be >= 0")
    return sw


def loss_and_gradient(net: Network, X, Y, sample_weight=None) -> tuple[float, np.ndarray]:
    """The network's loss summed over the samples of (X, Y), and its gradient.

    Parameters
    ----------
    net : Network
    X : array or sparse matrix, shape (n_samples, n_features)
    Y : array, shape (n_samples, n_outputs)
    sample_weight : array of shape (n_samples,), optional
        Each sample's loss is multiplied by its weight.

    Returns
    -------
    loss_sum : float
        Σᵢ wᵢ·loss(Yᵢ, net(Xᵢ)), with the network's per-sample loss (as in
        ``Network.evaluate``, which is this sum over n when the weights are ones).
    grad : ndarray, shaped and laid out like ``net.params``
        The gradient of ``loss_sum`` with respect to ``net.params``.
    """
    data = FullBatch(net, X, Y, sample_weight)
    grad = np.empty_like(net.params)
    with data.threads():
        return data.evaluate(grad), grad


def weight_mask(net: Network) -> np.ndarray:
    """True at the entries of ``net.params`` that are weights (not biases)."""
    p = net._plan
    a = p.arrays
    mask = np.zeros(p.n_params, bool)
    for i in np.flatnonzero(a.kinds == DENSE):
        mask[a.p_off[i] : a.p_off[i] + a.n_out[i] * a.n_in[i]] = True
    return mask


def fit_lbfgs(
    net: Network,
    X,
    Y,
    *,
    l2: float = 0.0,
    max_iter: int = 200,
    max_fun: int = 15000,
    tol: float = 1e-5,
    sample_weight=None,
    callback: Callable[[np.ndarray, float], object] | None = None,
    loss: str | None = None,
    loss_scale: float = 1.0,
) -> scipy.optimize.OptimizeResult:
    """Train ``net`` by L-BFGS on the whole of (X, Y).

    Minimises (loss_scale·Σᵢ wᵢ·ℓᵢ + l2/2·Σ‖W‖²) / Σᵢ wᵢ, the weighted mean loss plus
    scikit-learn's L2 penalty (biases are not penalised), with
    ``scipy.optimize.minimize(method="L-BFGS-B")``; each evaluation of the loss and
    gradient is one call of the compiled full-batch kernel.

    Parameters
    ----------
    net : Network
        Trained in place, starting from its current parameters.
    X, Y, sample_weight
        As for ``loss_and_gradient``.
    l2 : float
        The L2 penalty's strength (scikit-learn's ``alpha``).
    max_iter, max_fun : int
        The most iterations and loss evaluations.
    tol : float
        Stops when every component of the projected gradient is at most ``tol``.
    callback : callable(params, objective), optional
        Called after each iteration with the current parameters (float64) and the
        objective's value there.
    loss : str, optional
        The network's loss by default; ``"poisson"`` for the Poisson deviance of
        exp(output).
    loss_scale : float
        Multiplies the data term (to match another library's scaling of a loss).

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``nit`` iterations, ``nfev`` evaluations, ``fun`` the final objective,
        ``status`` 1 when a limit ended the run.

    Raises
    ------
    TrainingDivergedError
        If the objective or the parameters turned non-finite; the parameters are
        restored to their values at the start.
    """
    data = FullBatch(net, X, Y, sample_weight, loss)
    for name, value in (("max_iter", max_iter), ("max_fun", max_fun)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")
    for name, value in (("l2", l2), ("tol", tol), ("loss_scale", loss_scale)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"{name}={value!r} must be a number >= 0")
    total_weight = float(data.sample_weight.sum(dtype=np.float64))
    if not total_weight > 0:
        raise ValueError("sample_weight sums to 0: give some sample a positive weight")
    mask = weight_mask(net)
    grad = np.empty_like(net.params)
    start = net.params.copy()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        net.params[:] = theta
        value = loss_scale * data.evaluate(grad)
        g = grad.astype(np.float64)
        g *= loss_scale
        if l2 > 0:
            w = theta[mask]
            value += 0.5 * l2 * float(np.dot(w, w))
            g[mask] += l2 * w
        g /= total_weight
        return value / total_weight, g

    def report(intermediate_result) -> None:  # SciPy passes the result by this name
        callback(intermediate_result.x, float(intermediate_result.fun))

    with np.errstate(over="ignore", invalid="ignore"), data.threads():
        result = scipy.optimize.minimize(
            objective,
            start.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            callback=None if callback is None else report,
            options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol},
        )
    net.params[:] = result.x
    if not (np.isfinite(result.fun) and np.isfinite(net.params).all()):
        net.params[:] = start
        raise TrainingDivergedError(
            "L-BFGS diverged: the loss or the weights became non-finite. The weights were "
            "restored to their values at the start; scale the inputs."
        )
    return result
