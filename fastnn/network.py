"""The Network: a thin Python orchestrator of layers and compiled kernels."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .backends import get_ops
from .layers import Dense, Layer, ReLU, Sigmoid
from .losses import loss_kind
from .plan import build_plan, sgd_block
from .validation import check_array, check_dtype, check_positive_float, check_positive_int

#: Rows per block when predicting: keeps the activations of a block in cache.
PREDICT_BLOCK = 256
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
    ) -> None:
        layers = list(layers)
        self._loss_kind = loss_kind(loss)
        self.dtype = check_dtype(dtype)
        self._ops = get_ops(backend)
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
        self.initialize(np.random.default_rng(init_seed))

    # -- structure ---------------------------------------------------------------
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
    def _check_X(self, X, name: str = "X") -> np.ndarray:
        X = check_array(name, X, self.dtype)
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
    ) -> dict[str, list[float]]:
        """Train by SGD and return the history.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
        Y : array, shape (n_samples, n_outputs)
            With ``loss="cross_entropy"``, integer class labels of shape (n_samples,)
            are accepted and one-hot encoded.
        epochs : int
        learning_rate : float
        batch_size : int
            1 is the design's per-sample SGD. A larger batch averages the gradient
            over its samples; the last batch may be smaller.
        shuffle : bool
            Visit the samples in a fresh order each epoch, drawn from the network's
            seeded generator.
        validation_data : (X_val, Y_val), optional
            Adds each epoch's "val_loss" to the history.
        callback : callable(epoch, history), optional
            Called after each epoch (numbered from 1) with the history so far.

        Returns
        -------
        dict
            "loss": each epoch's mean training loss (the mean of the per-sample
            losses met during the epoch); "val_loss" with validation_data.

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
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, Y_val)")
            Xv, Yv = self._check_XY(*validation_data, prefix="validation ")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback={callback!r} is not callable")

        history: dict[str, list[float]] = {"loss": []}
        if validation_data is not None:
            history["val_loss"] = []
        n = X.shape[0]
        per_epoch = validation_data is not None or callback is not None
        chunk = 1 if per_epoch else max(1, min(epochs, MAX_ORDER // n))
        done = 0
        while done < epochs:
            count = min(chunk, epochs - done)
            order = np.empty((count, n), dtype=np.int64)
            for e in range(count):
                order[e] = self._rng.permutation(n) if shuffle else np.arange(n)
            losses = self._run_epochs(X, Y, order, learning_rate, batch_size, done)
            for e, loss in enumerate(losses):
                history["loss"].append(loss)
                if validation_data is not None:
                    history["val_loss"].append(self.evaluate(Xv, Yv))
                if callback is not None:
                    callback(done + e + 1, history)
            done += count
        return history

    def _diverged(self, epoch: int, learning_rate: float) -> TrainingDivergedError:
        return TrainingDivergedError(
            f"training diverged at epoch {epoch}: the loss became non-finite. The weights "
            f"were restored to their values at the start of epoch {epoch}. Lower "
            f"learning_rate (it was {learning_rate}) or scale the inputs."
        )

    def _run_epochs(self, X, Y, order, learning_rate, batch_size, done) -> list[float]:
        if self.backend == "numba" and batch_size == 1:
            return self._run_engine(X, Y, order, learning_rate, done)
        return self._run_layers(X, Y, order, learning_rate, batch_size, done)

    def _run_engine(self, X, Y, order, learning_rate, done) -> list[float]:
        p = self._plan
        snapshot = np.empty_like(self.params)
        epoch_loss = np.empty(order.shape[0])
        completed = self._ops.fit_sgd(
            p.kinds, p.n_in, p.n_out, p.p_off, p.a_off, self.params, X, Y, order,
            learning_rate, self._loss_kind, sgd_block(p), epoch_loss, snapshot,
        )  # fmt: skip
        if completed == order.shape[0] and not np.isfinite(self.params).all():
            # The very last update overflowed: undo that epoch too.
            self.params[:] = snapshot
            completed -= 1
        if completed < order.shape[0]:
            raise self._diverged(done + completed + 1, learning_rate)
        return epoch_loss.tolist()

    def _run_layers(self, X, Y, order, learning_rate, batch_size, done) -> list[float]:
        """The design's loop, layer by layer (the NumPy twin's engine)."""
        ops = self._ops
        losses = []
        for e, idx in enumerate(order):
            snapshot = self.params.copy()
            total = 0.0
            for start in range(0, len(idx), batch_size):
                rows = idx[start : start + batch_size]
                x, y = (X[rows[0]], Y[rows[0]]) if batch_size == 1 else (X[rows], Y[rows])
                out = x
                for layer in self.layers:
                    out = layer.forward(out)
                grad = np.empty_like(out)
                if batch_size == 1:
                    loss = ops.loss_value(self._loss_kind, y, out)
                    ops.loss_grad(self._loss_kind, y, out, 1.0, grad)
                else:
                    loss = ops.batch_loss(self._loss_kind, y, out) * len(rows)
                    ops.batch_loss_grad(self._loss_kind, y, out, grad)
                if not np.isfinite(loss):
                    self.params[:] = snapshot
                    raise self._diverged(done + e + 1, learning_rate)
                total += loss
                for layer in reversed(self.layers):
                    grad = layer.backward(grad, learning_rate)
            if not np.isfinite(self.params).all():
                self.params[:] = snapshot
                raise self._diverged(done + e + 1, learning_rate)
            losses.append(total / len(idx))
        return losses

    # -- inference ---------------------------------------------------------------
    def _logits(self, X: np.ndarray) -> np.ndarray:
        Z = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        if self.backend == "numba":
            p = self._plan
            work = PREDICT_BLOCK * p.widest
            self._ops.forward_batch(
                p.kinds, p.n_in, p.n_out, p.p_off, self.params, X, Z,
                np.empty(work, self.dtype), np.empty(work, self.dtype), PREDICT_BLOCK,
            )  # fmt: skip
        else:
            out = X
            for layer in self.layers:
                out = layer.forward(out)
            Z[...] = out
        return Z

    def predict(self, X) -> np.ndarray:
        """The network's predictions, shape (n_samples, n_outputs).

        Probabilities with either cross-entropy loss (sigmoid or softmax of the
        logits), the raw outputs with MSE.
        """
        X = self._check_X(X)
        Z = self._logits(X)
        self._ops.output_transform(self._loss_kind, Z, Z)
        return Z

    def evaluate(self, X, Y) -> float:
        """The mean loss over the samples of (X, Y)."""
        X, Y = self._check_XY(X, Y)
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
