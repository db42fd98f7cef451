"""The Network: a thin Python orchestrator of layers and compiled kernels."""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import numbers
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np

from . import interrupt
from . import plan as planning
from .backends import get_ops
from .layers import Dense, Layer, check_unowned
from .losses import loss_kind
from .optimizers import SGD_KIND, Constant, Optimizer, Schedule, get_schedule, resolve_optimizer
from .plan import engine_plan, sgd_block
from .threads import blas_threads, default_threads, idle_cores, numba_threads
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
#: Multiply-adds per extra thread: below this, waking threads costs more than the
#: work they would share.
WORK_PER_THREAD = 1 << 21
#: Most shuffle indices the engine gets at once; bounds the order array's memory.
MAX_ORDER = 1 << 22
#: A training call's estimated work, in units of about a nanosecond: per sample,
#: three multiply-adds per parameter plus a fixed cost. Above THREAD_WORK (about
#: 0.05 s) the call runs in a worker thread so that Ctrl-C stops it at once; below,
#: a thread's start would cost more than the wait it saves.
SAMPLE_WORK = 100
THREAD_WORK = 50_000_000
#: Rows of X a validation split gathers at a time to compute the validation loss.
VALIDATION_BLOCK = 1024


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss; the weights were restored."""


class Network:
    """A feed-forward network of fastnn layers, trained by per-sample SGD.

    Parameters
    ----------
    layers : sequence of Layer
        For example ``[Dense(2, 3), Tanh(), Dense(3, 1), Tanh()]``. Sizes must chain.
    loss : {"mse", "binary_cross_entropy", "cross_entropy"}
        The two cross-entropies take the last layer's outputs as logits; binary
        cross-entropy also takes a network ending in ``Sigmoid`` (fused, see below).
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
    input_shape : (C, H, W), optional
        One sample's shape, needed with ``Conv2D`` and the pooling layers; X is then
        (n_samples, C, H, W), one (C, H, W) sample, or flat rows. Such networks, and
        those with ``Dropout``, train on one thread (see ``kernels/conv_engine.py``).

    A layer belongs to one network: the network's parameter buffer holds its
    weights. Building a second network from layers of a live one raises a
    ValueError; build fresh layers, or pass ``copy.deepcopy(layers)``.

    With ``loss="binary_cross_entropy"`` a final ``Sigmoid`` layer is fused into the
    loss: training works on the logits before it, in the stable form (gradient
    p − y, finite even for saturated outputs), and ``predict`` returns the
    probabilities.

    Attributes
    ----------
    params : ndarray
        Every parameter in one contiguous buffer; each Dense's ``weights`` and
        ``bias`` are views into it.
    """

    input_shape: tuple[int, int, int] | None = None  # (C, H, W), or flat samples

    def __init__(
        self,
        layers: Sequence[Layer],
        loss: str = "mse",
        dtype=np.float64,
        backend: str = "numba",
        seed: int | None = 0,
        threads: int | None = None,
        input_shape: tuple[int, int, int] | None = None,
    ) -> None:
        layers = list(layers)
        input_shape = None if input_shape is None else planning.check_input_shape(input_shape)
        seed = check_seed(seed)
        self.threads = None if threads is None else check_positive_int("threads", threads)
        self._loss_kind = loss_kind(loss)
        self.dtype = check_dtype(dtype)
        get_ops(backend)  # validates the name
        self._plan = engine_plan(layers, loss, input_shape)
        check_unowned(layers)
        self.input_shape = input_shape
        self.layers = layers
        self.loss = loss
        self.backend = backend
        self.seed = seed
        init_seed, shuffle_seed = np.random.SeedSequence(seed).spawn(2)
        self._rng = np.random.default_rng(shuffle_seed)
        self._params = np.empty(self._plan.n_params, dtype=self.dtype)
        self.optimizer: Optimizer | None = None
        self._lock = threading.RLock()  # held while training changes the state
        for layer in layers:
            layer._claim(self)
        self.initialize(np.random.default_rng(init_seed))

    # -- structure ---------------------------------------------------------------
    @property
    def _ops(self):
        # Looked up, not stored, so networks pickle (modules don't).
        return get_ops(self.backend)

    def __getstate__(self) -> dict:
        # Copies of one moment between updates, as save takes them: pickle and
        # deepcopy read the state after this returns, while a fit in another
        # thread may go on changing it. The layers' views are rebound to these.
        with self._lock:
            state = dict(self.__dict__)
            state["_params"] = self._params.copy()
            state["optimizer"] = copy.deepcopy(self.optimizer)
            state["_rng"] = copy.deepcopy(self._rng)
        state.pop("_lock", None)  # locks don't pickle; each copy gets its own
        return state

    def __setstate__(self, state: dict) -> None:
        # Pickle stores each layer's weights as a copy: make them views again, and
        # the layers (copies too) this network's own.
        if "params" in state:  # pickled before params became a property
            state = {**state, "_params": state["params"]}
            del state["params"]
        self.__dict__.update(state)
        if not hasattr(self._plan, "arrays"):  # pickled before the plan had cfg and hyp
            self._plan = engine_plan(self.layers, self.loss, self.input_shape)
        self._lock = threading.RLock()
        for i, layer in enumerate(self.layers):
            layer._claim(self)
            if layer.n_params:
                start = self._plan.arrays.p_off[i]
                layer.bind(self._params[start : start + layer.n_params])

    @property
    def params(self) -> np.ndarray:
        """Every parameter in one contiguous buffer, the one home of the weights:
        each Dense layer's ``weights`` and ``bias`` are views into it. Assigning
        ``net.params = values`` copies the values into this buffer."""
        return self._params

    @params.setter
    def params(self, values) -> None:
        values = np.asarray(values)
        if values.shape != self._params.shape:
            raise ValueError(
                f"params takes {self._params.size} values (shape {self._params.shape}), "
                f"got shape {values.shape}"
            )
        if values is not self._params:
            self._params[...] = values

    @contextlib.contextmanager
    def between_updates(self):
        """A context in which no ``fit`` changes the network: entered between two
        compiled training calls (a ``fit`` in another thread waits for it), so the
        parameters, the optimizer's state and the shuffling state read inside it
        are those of one moment. ``save`` copies them this way.

        A single compiled call covers the epochs of a ``fit`` that does nothing
        between them (no validation, callback, early stopping or schedule), up to
        ``MAX_ORDER`` shuffle indices' worth: entering waits for the one running.
        """
        with self._lock:
            yield self

    @property
    def engine_layers(self) -> list[Layer]:
        """The layers the engine runs: all of ``layers``, less a final Sigmoid that
        binary cross-entropy takes into the loss (the engine works on its logits)."""
        return self.layers[: self._plan.arrays.kinds.size]

    def layer_params(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Views (weights, bias) of Dense layer ``layers[index]`` in ``params``."""
        layer = self.layers[index]
        if not isinstance(layer, Dense):
            raise ValueError(f"layers[{index}] is {layer!r}, not a Dense layer")
        start = int(self._plan.arrays.p_off[index])
        n_w = layer.output_size * layer.input_size
        weights = self._params[start : start + n_w].reshape(layer.output_size, layer.input_size)
        return weights, self._params[start + n_w : start + layer.n_params]

    def dense_params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Views (weights, bias) in ``params`` of every Dense layer, in order."""
        return [
            self.layer_params(i) for i, layer in enumerate(self.layers) if isinstance(layer, Dense)
        ]

    @property
    def n_threads(self) -> int:
        """The cores minibatch training and predict may use now: ``threads`` if set,
        else the process's current BLAS limit (see ``fastnn.threads.default_threads``)."""
        return default_threads() if self.threads is None else self.threads

    def _threads_for(self, rows: int) -> int:
        """Threads worth waking for ``rows`` samples' matrix products: at most
        ``n_threads``, and no more than the cores that other processes leave idle, a
        set ``threads`` included (a thread waiting for a busy core holds up the
        others). No result of fit or predict depends on the count.
        """
        threads = max(1, min(self.n_threads, rows * self._plan.n_params // WORK_PER_THREAD))
        return min(threads, idle_cores()) if threads > 1 else threads

    @property
    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    @property
    def n_features(self) -> int:
        return int(self._plan.arrays.n_in[0])

    @property
    def n_outputs(self) -> int:
        return self.dense_layers[-1].output_size

    @property
    def rng_state(self) -> dict:
        """The state of the generator that shuffles the samples and draws validation
        splits (``bit_generator.state``); assigning a saved state restores it."""
        return self._rng.bit_generator.state

    @rng_state.setter
    def rng_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state

    def initialize(self, rng: np.random.Generator) -> None:
        """Bind every layer into ``params`` and draw fresh initial weights."""
        for i, layer in enumerate(self.layers):
            layer.configure(self.dtype, self.backend)
            if layer.n_params:
                start = self._plan.arrays.p_off[i]
                layer.bind(self._params[start : start + layer.n_params])
                # He before a ReLU, Xavier otherwise: the next layer's ``weight_init``.
                nxt = self.layers[i + 1] if i + 1 < len(self.layers) else Layer
                layer.initialize(rng, layer.init or nxt.weight_init)

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.layers))
        shape = "" if self.input_shape is None else f", input_shape={self.input_shape}"
        return (
            f"Network([{inner}], loss={self.loss!r}, dtype={self.dtype.name}, "
            f"backend={self.backend!r}{shape})"
        )

    # -- input checks ------------------------------------------------------------
    def _check_X(self, X, name: str = "X", *, finite: bool = True) -> np.ndarray:
        dims = (1, 2) if self.input_shape is None else (1, 2, 3, 4)
        X = planning.sample_rows(
            name, check_array(name, X, self.dtype, dims, finite=finite), self.input_shape
        )
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
            If a loss turns non-finite; weights, optimizer state, step count and
            shuffling state are restored to those at the start of that epoch.
        KeyboardInterrupt
            On Ctrl-C, within milliseconds. The network is left as it was at the end
            of the last completed epoch (weights, optimizer state, step count and
            shuffling state alike; ``stopped_epoch`` counts the epochs this call
            completed), and predicts and trains on from there.

        Notes
        -----
        The copies ``fit`` makes of its inputs:

        * X is used in place when it is a C-contiguous array of the network's
          dtype, a ``np.memmap`` included (read-only or not): training reads the
          samples it needs from it, a batch (or a block of 64) at a time.
        * X of another dtype (float32 data for a float64 network), a
          non-contiguous X, or a read-only X that is not a memory map is converted
          or copied once, whole: pass X in the network's dtype to avoid it.
        * Y is converted to the network's dtype (integer labels one-hot encoded).
        * ``validation_fraction`` splits by index: the training samples are read
          in place, and the validation loss gathers 1024 rows of X at a time.
        * A saved copy of the parameters (and of the optimizer's two buffers) at
          each epoch's start, to restore after a divergence or Ctrl-C.
        """
        X, Y = self._check_XY(X, Y)
        epochs = check_positive_int("epochs", epochs)
        learning_rate = check_positive_float("learning_rate", learning_rate)
        batch_size = check_positive_int("batch_size", batch_size)
        shuffle = check_bool("shuffle", shuffle)
        early_stopping = check_bool("early_stopping", early_stopping)
        patience = check_positive_int("patience", patience)
        schedule = get_schedule(lr_schedule)
        opt = resolve_optimizer(optimizer, self.optimizer)
        if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not l2 >= 0:
            raise ValueError(f"l2={l2!r} must be a number >= 0 (0 turns it off)")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback={callback!r} is not callable")
        per_sample = batch_size == 1 and opt.kind == SGD_KIND and l2 == 0
        validation, rows = self._validation_split(X, Y, validation_data, validation_fraction)

        history: dict[str, list[float]] = {"loss": []}
        if validation is not None:
            history["val_loss"] = []
        # The training samples by index: a validation split never copies X.
        rows = np.arange(X.shape[0], dtype=np.int64) if rows is None else rows
        n = rows.size
        per_epoch = validation is not None or callback is not None or early_stopping
        per_epoch = per_epoch or not isinstance(schedule, Constant)
        chunk = 1 if per_epoch else max(1, min(epochs, MAX_ORDER // n))
        best, best_params, waited = np.inf, None, 0
        done = self.stopped_epoch = 0
        while done < epochs:
            count = min(chunk, epochs - done)
            if isinstance(schedule, Constant):
                rates = np.full(count, learning_rate)
            else:
                rates = np.array([schedule(learning_rate, done + e) for e in range(count)])
            # A save from another thread waits here, between compiled calls.
            with self._lock:
                self.optimizer = opt
                # Whole arrays at once: a Python loop here would cost more than a
                # small network's epoch.
                order = np.tile(rows, (count, 1))
                if shuffle:
                    drawn_from = self.rng_state
                    order = self._rng.permuted(order, axis=1)
                try:
                    if per_sample:
                        losses = self._run_sgd(X, Y, order, rates[0], done)
                    else:
                        losses = self._run_minibatch(X, Y, order, rates, batch_size, l2, opt, done)
                except (KeyboardInterrupt, TrainingDivergedError):
                    if shuffle:  # as if only the completed epochs had been shuffled
                        self._rewind_shuffle(drawn_from, rows, self.stopped_epoch - done)
                    raise
            # Kept current, so that Ctrl-C in validation or a callback finds the count.
            self.stopped_epoch = done + len(losses)
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
            with self._lock:
                self.params[:] = best_params
        self.stopped_epoch = done
        return history

    def _rewind_shuffle(self, state: dict, rows: np.ndarray, epochs: int) -> None:
        """Set the shuffling generator to ``state`` advanced by ``epochs`` shuffles."""
        self.rng_state = state
        if epochs > 0:  # each epoch's shuffle draws from the generator in turn
            self._rng.permuted(np.tile(rows, (epochs, 1)), axis=1)

    def _validation_split(self, X, Y, validation_data, fraction):
        """(validation or None, training rows or None for all): validation is
        (X_val, Y_val, rows or None), ``validation_data``
        checked, or the ``fraction`` of (X, Y) the seeded generator holds out."""
        if validation_data is not None and fraction is not None:
            raise ValueError("pass validation_data or validation_fraction, not both")
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, Y_val)")
            return (*self._check_XY(*validation_data, prefix="validation "), None), None
        if fraction is None:
            return None, None
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
        return (X, Y, val), train

    def _diverged(self, epoch: int, learning_rate: float) -> TrainingDivergedError:
        return TrainingDivergedError(
            f"training diverged at epoch {epoch}: the loss became non-finite. The weights "
            f"were restored to their values at the start of epoch {epoch}. Lower "
            f"learning_rate (it was {learning_rate}) or scale the inputs."
        )

    def _call(self, run, order, done: int) -> int:
        """``run(stop)`` for the epochs of ``order``; a long call runs where Ctrl-C
        stops it at once (see ``fastnn.interrupt``)."""
        work = order.size * (3 * planning.multiply_adds(self._plan) + SAMPLE_WORK)
        if work <= THREAD_WORK and self.backend == "numba":
            return run(interrupt.NEVER)  # a short call: no thread (fixed cost per fit)
        completed, interrupted = interrupt.call(run, threaded=True)
        if interrupted:
            # The kernels restored the state at the end of the last completed epoch.
            self.stopped_epoch = done + completed
            raise KeyboardInterrupt(
                f"fit stopped after {done + completed} completed epochs: the weights and "
                "the optimizer's state are those at the end of the last completed epoch"
            )
        return completed

    def _finish(self, completed: int, order, learning_rate, done, epoch_loss) -> list[float]:
        # The kernels restore the epoch's starting weights before they return early.
        if completed < order.shape[0]:
            self.stopped_epoch = done + completed
            raise self._diverged(done + completed + 1, learning_rate)
        return epoch_loss.tolist()

    def _run_sgd(self, X, Y, order, learning_rate, done) -> list[float]:
        p = self._plan
        snapshot = np.empty_like(self.params)
        epoch_loss = np.empty(order.shape[0])
        args = (*p.arrays, self.params, X, Y, order, learning_rate, self._loss_kind)
        block = sgd_block(p)
        if planning.is_spatial(p):
            # Dropout's masks: keyed by a seed from the network's generator.
            seed = planning.dropout_seed(p, self._rng)
            run = functools.partial(self._ops.fit_sgd_conv, *args, seed, epoch_loss, snapshot)
            block = 1
        elif block > 1:
            run = functools.partial(self._ops.fit_sgd_blocked, *args, block, epoch_loss, snapshot)
            if self.backend == "numba":
                # First-layer products as tasks on Numba's threads: same bits at any count.
                run = numba_threads(self._threads_for(block), run)
        else:
            run = functools.partial(self._ops.fit_sgd, *args, epoch_loss, snapshot)
        # Only the twin calls BLAS (the kernels' products are their own tiles).
        calls_blas = self.backend != "numba"
        with blas_threads(1) if calls_blas else contextlib.nullcontext():
            completed = self._call(run, order, done)
        return self._finish(completed, order, learning_rate, done, epoch_loss)

    def _minibatch_blas_threads(self, rows: int) -> int:
        """BLAS threads for minibatch training: one under the compiled engine, whose
        tasks share Numba's threads; the twin's products use the cores."""
        return 1 if self.backend == "numba" else self._threads_for(rows)

    def _run_minibatch(
        self, X, Y, order, rates, batch_size, l2, opt, done, *, limit_threads=True, threads=None
    ) -> list[float]:
        """``limit_threads=False``: the caller has set the BLAS thread limit; ``threads``:
        the caller has chosen the thread count (once for many calls)."""
        p = self._plan
        # The weights and both optimizer buffers at the start of the epoch.
        snapshot = np.empty(3 * self.params.size, dtype=self.dtype)
        epoch_loss = np.empty(order.shape[0])
        state_a, state_b, step = opt.buffers(self.params)
        fit = planning.minibatch_engine(self._ops, p, self._rng)  # convolutional or dense
        run = functools.partial(
            fit, *p.arrays, self.params, X, Y, order, batch_size, rates,
            self._loss_kind, float(l2), opt.kind, opt.hyper(), state_a, state_b, step,
            epoch_loss, snapshot,
        )  # fmt: skip
        if threads is None:
            threads = self._threads_for(min(batch_size, order.shape[1]))
        if self.backend == "numba":
            # The engine runs its tasks on Numba's threads, each product on one BLAS
            # thread: the same bits at any thread count.
            run, threads = numba_threads(threads, run), 1
        with blas_threads(threads) if limit_threads else contextlib.nullcontext():
            completed = self._call(run, order, done)
        return self._finish(completed, order, rates[0], done, epoch_loss)

    # -- inference ---------------------------------------------------------------
    def _logits(self, X: np.ndarray) -> np.ndarray:
        # The kernels report non-finite values in X as they pass over it; only then
        # is X scanned again, for the message.
        Z = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        threads = self._threads_for(X.shape[0])
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
        if planning.is_spatial(p):
            return self._ops.forward_conv(*p.arrays, self.params, X, Z)
        block = min(PREDICT_BLOCK, X.shape[0])
        # The compiled kernel lays out its own workspace; only the twin's signature
        # has this argument.
        acts = np.empty(0, dtype=self.dtype)
        return self._ops.forward_batch(*p.arrays, self.params, X, Z, acts, block)

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

    def _mean_loss(self, X: np.ndarray, Y: np.ndarray, rows=None) -> float:
        """The mean loss over ``rows`` of (X, Y) (all by default), for arrays already
        checked, as fit's validation data is. Rows are gathered a block at a time,
        so a validation split copies one block of X, not the split."""
        if rows is None:
            return float(self._ops.batch_loss(self._loss_kind, Y, self._logits(X)))
        if rows.size <= VALIDATION_BLOCK:
            return self._mean_loss(X[rows], Y[rows])
        total = 0.0
        for start in range(0, rows.size, VALIDATION_BLOCK):
            block = rows[start : start + VALIDATION_BLOCK]
            total += self._mean_loss(X[block], Y[block]) * block.size
        return total / rows.size

    # -- persistence -------------------------------------------------------------
    #: ``writer(network, path)`` by format, for ``save`` ("fastnn") and ``to_onnx``
    #: ("onnx"). The model format and the ONNX export depend on this module, not the
    #: other way round: ``fastnn/__init__.py`` fills this in.
    _writers: ClassVar[dict[str, Callable[[Network, Any], None]]] = {}

    def save(self, path) -> None:
        """Write the network to ``path`` atomically, as .npz arrays plus JSON metadata.

        See ``fastnn.io``; ``fastnn.load(path)`` reads it back.
        """
        self._writers["fastnn"](self, path)

    def to_onnx(self, path) -> None:
        """Export the network's predict function as an ONNX model (``fastnn[onnx]``)."""
        self._writers["onnx"](self, path)
