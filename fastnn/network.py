"""The Network: a thin Python orchestrator of layers and compiled kernels."""

from __future__ import annotations

import contextlib
import functools
import itertools
import numbers
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .backends import get_ops
from .layers import Dense, Layer, ReLU, Sigmoid
from .losses import loss_kind
from .optimizers import SGD, SGD_KIND, Constant, Optimizer, Schedule, get_optimizer, get_schedule
from .plan import build_plan, sgd_block
from .threads import blas_threads, default_threads, idle_cores
from .validation import (
    check_array,
    check_bool,
    check_dtype,
    check_finite,
    check_positive_float,
    check_positive_int,
    check_seed,
)

#: Rows per block when predicting: keeps the activations of a block in cache.
PREDICT_BLOCK = 256
#: Multiply-adds per extra thread: below this, waking BLAS threads costs more than
#: the work they would share.
WORK_PER_THREAD = 1 << 21
#: Most shuffle indices the engine gets at once; bounds the order array's memory.
MAX_ORDER = 1 << 22


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss; the weights were restored."""


class Network:
    """A feed-forward network of fastnn layers, trained by per-sample SGD.

    Parameters
    ----------
    layers : sequence of Layer
        For example ``[Dense(2, 3), Tanh(), Dense(3, 1), Tanh()]``. Sizes must chain.
    loss : {"mse", "binary_cross_entropy", "cross_entropy"}
        The two cross-entropies take the last layer's outputs as logits.
    dtype : np.float32 or np.float64
        The float type of every parameter and computation.
    backend : {"numba", "numpy"}
        The compiled kernels, or their pure-NumPy twin.
    seed : int or None
        Seeds the initial weights and the shuffling; the same seed gives the same run.
    threads : int, optional
        Cores for minibatch training and predict. By default, as many as the
        process's BLAS may use at the time of the call (every core, or fewer under an
        outer limit: joblib's or Dask's workers, ``threadpoolctl.threadpool_limits``),
        less the cores other processes are running on then. Minibatch results depend
        on the thread count: set ``threads`` to get the same bits on every run.
        Per-sample SGD always uses one thread; predict gives the same bits on any
        number, and also leaves out busy cores when ``threads`` is set.

    Attributes
    ----------
    params : ndarray
        Every parameter in one contiguous buffer; each Dense's ``weights`` and
        ``bias`` are views into it.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        loss: str = "mse",
        dtype=np.float64,
        backend: str = "numba",
        seed: int | None = 0,
        threads: int | None = None,
    ) -> None:
        layers = list(layers)
        seed = check_seed(seed)
        self.threads = None if threads is None else check_positive_int("threads", threads)
        self._loss_kind = loss_kind(loss)
        self.dtype = check_dtype(dtype)
        get_ops(backend)  # validates the name
        self._plan = build_plan(layers)
        if loss == "binary_cross_entropy" and isinstance(layers[-1], Sigmoid):
            raise ValueError(
                'loss="binary_cross_entropy" applies the sigmoid itself (it works on '
                "logits, for stability): remove the final Sigmoid layer"
            )
        self.layers = layers
        self.loss = loss
        self.backend = backend
        self.seed = seed
        init_seed, shuffle_seed = np.random.SeedSequence(seed).spawn(2)
        self._rng = np.random.default_rng(shuffle_seed)
        self.params = np.empty(self._plan.n_params, dtype=self.dtype)
        self.optimizer: Optimizer | None = None
        self.initialize(np.random.default_rng(init_seed))

    # -- structure ---------------------------------------------------------------
    @property
    def _ops(self):
        # Looked up, not stored, so networks pickle (modules don't).
        return get_ops(self.backend)

    def __setstate__(self, state: dict) -> None:
        # Pickle stores each layer's weights as a copy: make them views again.
        self.__dict__.update(state)
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                start = self._plan.p_off[i]
                layer.bind(self.params[start : start + layer.n_params])

    @property
    def n_threads(self) -> int:
        """The cores minibatch training and predict may use now: ``threads`` if set,
        else the process's current BLAS limit (see ``fastnn.threads.default_threads``)."""
        return default_threads() if self.threads is None else self.threads

    def _threads_for(self, rows: int, *, any_count: bool = False) -> int:
        """Threads worth waking for ``rows`` samples' matrix products.

        Without a set ``threads``, no more than the cores that other processes leave
        idle: a BLAS thread waiting for a busy core holds up the others at every
        product. A set ``threads`` is kept, since minibatch results depend on the
        BLAS thread count, unless ``any_count`` says the caller's do not (predict).
        """
        threads = max(1, min(self.n_threads, rows * self._plan.n_params // WORK_PER_THREAD))
        if threads > 1 and (self.threads is None or any_count):
            threads = min(threads, idle_cores())
        return threads

    @property
    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    @property
    def n_features(self) -> int:
        return self.dense_layers[0].input_size

    @property
    def n_outputs(self) -> int:
        return self.dense_layers[-1].output_size

    def initialize(self, rng: np.random.Generator) -> None:
        """Bind every layer into ``params`` and draw fresh initial weights."""
        for i, layer in enumerate(self.layers):
            layer.configure(self.dtype, self.backend)
            if isinstance(layer, Dense):
                start = self._plan.p_off[i]
                layer.bind(self.params[start : start + layer.n_params])
                nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
                layer.initialize(rng, layer.init or ("he" if isinstance(nxt, ReLU) else "xavier"))

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.layers))
        return (
            f"Network([{inner}], loss={self.loss!r}, dtype={self.dtype.name}, "
            f"backend={self.backend!r})"
        )

    # -- input checks ------------------------------------------------------------
    def _check_X(self, X, name: str = "X", *, finite: bool = True) -> np.ndarray:
        X = check_array(name, X, self.dtype, finite=finite)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"{name} has {X.shape[1]} features per sample, but the network's first "
                f"Dense layer takes {self.n_features}: pass shape (n_samples, {self.n_features})"
            )
        return X

    def _check_Y(self, Y, n: int, name: str = "Y") -> np.ndarray:
        arr = np.asarray(Y)
        if self.loss == "cross_entropy" and arr.ndim == 1 and arr.dtype.kind in "iu":
            # Integer class labels: one-hot encode them.
            if arr.size and (arr.min() < 0 or arr.max() >= self.n_outputs):
                raise ValueError(
                    f"{name} holds class labels from {arr.min()} to {arr.max()}, but the "
                    f"network has {self.n_outputs} outputs: labels must be 0..{self.n_outputs - 1}"
                )
            arr = np.eye(self.n_outputs, dtype=self.dtype)[arr]
        Y = check_array(name, arr, self.dtype)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1) if self.n_outputs == 1 else Y.reshape(1, -1)
        if Y.shape[1] != self.n_outputs:
            raise ValueError(
                f"{name} has {Y.shape[1]} targets per sample, but the network has "
                f"{self.n_outputs} outputs: pass shape (n_samples, {self.n_outputs})"
            )
        if Y.shape[0] != n:
            raise ValueError(
                f"X has {n} samples but {name} has {Y.shape[0]}: pass one target row per sample"
            )
        return Y

    def _check_XY(self, X, Y, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(X, f"{prefix}X")
        return X, self._check_Y(Y, X.shape[0], f"{prefix}Y")

    # -- training ----------------------------------------------------------------
    def fit(
        self,
        X,
        Y,
        epochs: int = 1,
        learning_rate: float = 0.01,
        batch_size: int = 1,
        shuffle: bool = False,
        validation_data: tuple | None = None,
        callback: Callable[[int, dict], object] | None = None,
        *,
        optimizer: str | Optimizer | None = None,
        lr_schedule: str | Schedule = "constant",
        l2: float = 0.0,
        validation_fraction: float | None = None,
        early_stopping: bool = False,
        patience: int = 10,
        min_delta: float = 0.0,
    ) -> dict[str, list[float]]:
        """Train and return the history.

        With the defaults this is the design's per-sample SGD: for each sample,
        forward, loss gradient, then every layer's backward, which updates it.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
        Y : array, shape (n_samples, n_outputs)
            With ``loss="cross_entropy"``, integer class labels of shape (n_samples,)
            are accepted and one-hot encoded.
        epochs : int
        learning_rate : float
            The base learning rate, shaped over epochs by ``lr_schedule``.
        batch_size : int
            1 is per-sample SGD. A larger batch averages the gradient over its
            samples (the last batch of an epoch may be smaller).
        shuffle : bool
            Visit the samples in a fresh order each epoch, drawn from the network's
            seeded generator.
        validation_data : (X_val, Y_val), optional
            Adds each epoch's "val_loss" to the history.
        callback : callable(epoch, history), optional
            Called after each epoch (numbered from 1) with the history so far.
        optimizer : str or Optimizer, optional
            "sgd" (default), "momentum", "nesterov", "adam", "adamw", or an object
            from ``fastnn.optimizers`` carrying its settings. An object keeps its
            state across calls; a name continues the network's current optimizer if
            it has that name, and starts a fresh one otherwise.
        lr_schedule : str or Schedule
            "constant", "step" or "invscaling", or a ``fastnn.optimizers`` Schedule.
        l2 : float
            L2 regularisation: adds ``l2·W`` to each weight gradient (biases are not
            regularised).
        validation_fraction : float, optional
            Hold out this fraction of (X, Y), chosen by the seeded generator, as
            validation data. Not with ``validation_data``.
        early_stopping : bool
            Stop when the monitored loss (val_loss if there is validation data,
            else the training loss) has not improved by ``min_delta`` for
            ``patience`` epochs, and restore the weights of the best epoch.
        patience, min_delta
            See ``early_stopping``.

        Returns
        -------
        dict
            "loss": each epoch's mean training loss (the mean of the per-sample
            losses met during the epoch); "val_loss" with validation data.

        Raises
        ------
        TrainingDivergedError
            If a loss turns non-finite; the weights are restored to their state at
            the start of that epoch.
        """
        X, Y = self._check_XY(X, Y)
        epochs = check_positive_int("epochs", epochs)
        learning_rate = check_positive_float("learning_rate", learning_rate)
        batch_size = check_positive_int("batch_size", batch_size)
        shuffle = check_bool("shuffle", shuffle)
        early_stopping = check_bool("early_stopping", early_stopping)
        patience = check_positive_int("patience", patience)
        schedule = get_schedule(lr_schedule)
        opt = self._resolve_optimizer(optimizer)
        if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not l2 >= 0:
            raise ValueError(f"l2={l2!r} must be a number >= 0 (0 turns it off)")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback={callback!r} is not callable")
        validation, X, Y = self._validation_split(X, Y, validation_data, validation_fraction)

        history: dict[str, list[float]] = {"loss": []}
        if validation is not None:
            history["val_loss"] = []
        self.optimizer = opt
        n = X.shape[0]
        per_sample = batch_size == 1 and opt.kind == SGD_KIND and l2 == 0
        per_epoch = validation is not None or callback is not None or early_stopping
        per_epoch = per_epoch or not isinstance(schedule, Constant)
        chunk = 1 if per_epoch else max(1, min(epochs, MAX_ORDER // n))
        best, best_params, waited = np.inf, None, 0
        done = 0
        while done < epochs:
            count = min(chunk, epochs - done)
            # Whole arrays at once: a Python loop here would cost more than a small
            # network's epoch.
            order = np.tile(np.arange(n, dtype=np.int64), (count, 1))
            if shuffle:
                order = self._rng.permuted(order, axis=1)
            if isinstance(schedule, Constant):
                rates = np.full(count, learning_rate)
            else:
                rates = np.array([schedule(learning_rate, done + e) for e in range(count)])
            if per_sample:
                losses = self._run_sgd(X, Y, order, rates[0], done)
            else:
                losses = self._run_minibatch(X, Y, order, rates, batch_size, l2, opt, done)
            if not per_epoch:
                # Nothing runs between epochs: one list operation, not a Python loop
                # per epoch, which would cost a tenth of a 10,000-epoch XOR fit.
                history["loss"] += losses
                done += count
                continue
            stop = False
            for e, loss in enumerate(losses):
                history["loss"].append(loss)
                if validation is not None:
                    history["val_loss"].append(self._mean_loss(*validation))
                if callback is not None:
                    callback(done + e + 1, history)
                if early_stopping:
                    monitored = history["val_loss" if validation is not None else "loss"][-1]
                    if monitored < best - min_delta:
                        best, best_params, waited = monitored, self.params.copy(), 0
                    else:
                        waited += 1
                        stop = waited >= patience
            done += count
            if stop:
                break
        if early_stopping and best_params is not None:
            self.params[:] = best_params
        self.stopped_epoch = done
        return history

    def _resolve_optimizer(self, spec) -> Optimizer:
        current = self.optimizer
        if spec is None:
            return current if current is not None else SGD()
        if isinstance(spec, str) and current is not None and current.name == spec:
            fresh = get_optimizer(spec)
            if fresh.get_config() == current.get_config():
                return current
        return get_optimizer(spec)

    def _validation_split(self, X, Y, validation_data, fraction):
        """(validation pair or None, X_train, Y_train): the pair is ``validation_data``
        checked, or the ``fraction`` of (X, Y) the seeded generator holds out."""
        if validation_data is not None and fraction is not None:
            raise ValueError("pass validation_data or validation_fraction, not both")
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, Y_val)")
            return self._check_XY(*validation_data, prefix="validation "), X, Y
        if fraction is None:
            return None, X, Y
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
            raise TypeError(f"validation_fraction={fraction!r} must be a number in (0, 1)")
        n_val = round(fraction * X.shape[0]) if 0 < fraction < 1 else 0
        if n_val < 1 or n_val >= X.shape[0]:
            raise ValueError(
                f"validation_fraction={fraction!r} leaves no validation or no training "
                f"samples out of {X.shape[0]}: use a fraction in (0, 1), e.g. 0.1"
            )
        idx = self._rng.permutation(X.shape[0])
        val, train = np.sort(idx[:n_val]), np.sort(idx[n_val:])
        return (X[val], Y[val]), X[train], Y[train]

    def _diverged(self, epoch: int, learning_rate: float) -> TrainingDivergedError:
        return TrainingDivergedError(
            f"training diverged at epoch {epoch}: the loss became non-finite. The weights "
            f"were restored to their values at the start of epoch {epoch}. Lower "
            f"learning_rate (it was {learning_rate}) or scale the inputs."
        )

    def _finish(self, completed: int, order, learning_rate, done, epoch_loss) -> list[float]:
        # The kernels restore the epoch's starting weights before they return early.
        if completed < order.shape[0]:
            raise self._diverged(done + completed + 1, learning_rate)
        return epoch_loss.tolist()

    def _run_sgd(self, X, Y, order, learning_rate, done) -> list[float]:
        p = self._plan
        snapshot = np.empty_like(self.params)
        epoch_loss = np.empty(order.shape[0])
        # Per-sample SGD runs on one thread, so its result never depends on the count.
        args = (p.kinds, p.n_in, p.n_out, p.p_off, p.a_off, self.params, X, Y, order,
                learning_rate, self._loss_kind)  # fmt: skip
        block = sgd_block(p)
        if block > 1:
            run = functools.partial(self._ops.fit_sgd_blocked, *args, block)
        else:
            run = functools.partial(self._ops.fit_sgd, *args)
        # Only the blocked loop and the twin call BLAS. Setting a limit costs tens of
        # µs, more than a small network's whole fit, so the others go without.
        calls_blas = block > 1 or self.backend != "numba"
        with blas_threads(1) if calls_blas else contextlib.nullcontext():
            completed = run(epoch_loss, snapshot)
        return self._finish(completed, order, learning_rate, done, epoch_loss)

    def _run_minibatch(self, X, Y, order, rates, batch_size, l2, opt, done) -> list[float]:
        p = self._plan
        snapshot = np.empty_like(self.params)
        epoch_loss = np.empty(order.shape[0])
        state_a, state_b, step = opt.buffers(self.params)
        with blas_threads(self._threads_for(min(batch_size, X.shape[0]))):
            completed = self._ops.fit_minibatch(
                p.kinds, p.n_in, p.n_out, p.p_off, p.a_off, self.params, X, Y, order,
                batch_size, rates, self._loss_kind, float(l2), opt.kind, opt.hyper(),
                state_a, state_b, step, epoch_loss, snapshot,
            )  # fmt: skip
        opt.step = int(step[0])
        return self._finish(completed, order, rates[0], done, epoch_loss)

    # -- inference ---------------------------------------------------------------
    def _logits(self, X: np.ndarray) -> np.ndarray:
        # The kernels report non-finite values in X as they pass over it; only then
        # is X scanned again, for the message.
        Z = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        threads = self._threads_for(X.shape[0], any_count=True)
        chunks = min(threads, X.shape[0] // PREDICT_BLOCK)
        # The compiled forward pass calls no BLAS; the NumPy twin's products do.
        calls_blas = self.backend != "numba"
        if chunks <= 1:
            with blas_threads(threads) if calls_blas else contextlib.nullcontext():
                finite = self._forward_rows(X, Z)
        else:
            # Whole row ranges per thread: the kernels release the GIL, and a row's
            # result does not depend on the range it falls in.
            bounds = np.linspace(0, X.shape[0], chunks + 1).astype(int)
            with (
                blas_threads(1) if calls_blas else contextlib.nullcontext(),
                ThreadPoolExecutor(max_workers=chunks) as pool,
            ):
                jobs = [
                    pool.submit(self._forward_rows, X[a:b], Z[a:b])
                    for a, b in itertools.pairwise(bounds)
                ]
                finite = all([job.result() for job in jobs])
        if not finite:
            check_finite("X", X)
        return Z

    def _forward_rows(self, X: np.ndarray, Z: np.ndarray) -> bool:
        p = self._plan
        block = min(PREDICT_BLOCK, X.shape[0])
        # The compiled kernel lays out its own workspace; only the twin's signature
        # has this argument.
        acts = np.empty(0, dtype=self.dtype)
        return self._ops.forward_batch(
            p.kinds, p.n_in, p.n_out, p.p_off, p.a_off, self.params, X, Z, acts, block
        )

    def predict(self, X) -> np.ndarray:
        """The network's predictions, shape (n_samples, n_outputs).

        Probabilities with either cross-entropy loss (sigmoid or softmax of the
        logits), the raw outputs with MSE.
        """
        X = self._check_X(X, finite=False)  # _logits checks while it reads X
        Z = self._logits(X)
        self._ops.output_transform(self._loss_kind, Z, Z)
        return Z

    def evaluate(self, X, Y) -> float:
        """The mean loss over the samples of (X, Y)."""
        return self._mean_loss(*self._check_XY(X, Y))

    def _mean_loss(self, X: np.ndarray, Y: np.ndarray) -> float:
        # For arrays already checked, as fit's validation data is.
        return float(self._ops.batch_loss(self._loss_kind, Y, self._logits(X)))

    # -- persistence -------------------------------------------------------------
    def save(self, path) -> None:
        """Write the network to ``path`` atomically, as .npz arrays plus JSON metadata.

        See ``fastnn.io``; ``fastnn.load(path)`` reads it back.
        """
        from .io import save

        save(self, path)

    def to_onnx(self, path) -> None:
        """Export the network's predict function as an ONNX model (``fastnn[onnx]``)."""
        from .onnx_export import to_onnx

        to_onnx(self, path)
