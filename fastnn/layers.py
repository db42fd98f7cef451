"""The layers of the classic design: Dense and the activations.

Every layer has ``forward(input) -> output`` and
``backward(output_gradient, learning_rate) -> input_gradient``. A layer takes one
sample as a 1-D vector or a batch as a 2-D array with samples in rows. ``backward``
computes the input gradient with the weights ``forward`` used, then updates the
layer's own parameters in place by plain SGD.
"""

from __future__ import annotations

import weakref

import numpy as np

from .backends import get_ops
from .codes import IDENTITY, RELU, SIGMOID, TANH
from .initializers import INITIALIZERS, initialize
from .validation import check_dtype, check_positive_int


class Layer:
    """Base class: a layer maps an input to an output and back-propagates gradients."""

    dtype: np.dtype = np.dtype(np.float64)
    backend: str = "numba"
    _owner: weakref.ref | None = None

    @property
    def owner(self):
        """The live Network this layer belongs to, or None."""
        return None if self._owner is None else self._owner()

    def _claim(self, network) -> None:
        # A weak reference: a layer never keeps a network alive, and once the network
        # is gone its layers may build another.
        self._owner = weakref.ref(network)

    def __getstate__(self) -> dict:
        # A copy (pickle, copy.deepcopy) belongs to no network until one claims it.
        state = dict(self.__dict__)
        state.pop("_owner", None)
        return state

    def configure(self, dtype=None, backend: str | None = None) -> None:
        """Set the float dtype and the kernel backend ("numba" or "numpy")."""
        if dtype is not None:
            self.dtype = check_dtype(dtype)
        if backend is not None:
            get_ops(backend)  # validates the name
            self.backend = backend

    @property
    def _ops(self):
        # Looked up, not stored, so layers pickle (modules don't).
        return get_ops(self.backend)

    def forward(self, input: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, output_gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        raise NotImplementedError

    def _as_array(self, name: str, value, width: int) -> np.ndarray:
        arr = np.ascontiguousarray(value, dtype=self.dtype)
        if arr.ndim not in (1, 2) or arr.shape[-1] != width:
            raise ValueError(
                f"{type(self).__name__}: {name} has shape {arr.shape}, expected "
                f"({width},) for one sample or (n_samples, {width}) for a batch"
            )
        return arr


class Dense(Layer):
    """A fully connected layer, Y = W·X + B.

    Parameters
    ----------
    input_size, output_size : int
        Widths of the input and the output.
    init : str, optional
        Weight initialisation: "xavier" (Glorot uniform), "xavier_normal", "he" (He
        normal), "he_uniform", "lecun" or "zeros". By default a Network picks "he"
        when a ReLU follows and "xavier" otherwise.
    dtype : np.float32 or np.float64
    backend : "numba" or "numpy"
    seed : int, optional
        Seed of the initial weights of a stand-alone layer. A Network re-initialises
        its layers from its own seed.

    Attributes
    ----------
    weights : ndarray, shape (output_size, input_size)
    bias : ndarray, shape (output_size,)
        Views into one parameter buffer; a Network rebinds them into its own. Assigning
        to them writes the values into that buffer (``layer.weights = W`` copies W).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        init: str | None = None,
        *,
        dtype=np.float64,
        backend: str = "numba",
        seed: int | None = None,
    ) -> None:
        self.input_size = check_positive_int("input_size", input_size)
        self.output_size = check_positive_int("output_size", output_size)
        if init is not None and init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}: use one of {list(INITIALIZERS)} or None")
        self.init = init
        self.configure(dtype, backend)
        self.bind(np.empty(self.n_params, dtype=self.dtype))
        self.initialize(np.random.default_rng(seed), init or "xavier")
        self.input: np.ndarray | None = None

    @property
    def n_params(self) -> int:
        return self.output_size * (self.input_size + 1)

    def bind(self, buffer: np.ndarray) -> None:
        """Make ``weights`` and ``bias`` views of ``buffer`` (W first, then B)."""
        n_w = self.output_size * self.input_size
        self._w = buffer[:n_w].reshape(self.output_size, self.input_size)
        self._b = buffer[n_w : self.n_params]

    # Properties, so that an assignment writes into the buffer rather than replacing
    # the view with an array the network never sees.
    @property
    def weights(self) -> np.ndarray:
        return self._w

    @weights.setter
    def weights(self, value) -> None:
        if value is not self._w:  # ``layer.weights -= x`` has already updated it
            self._w[...] = value

    @property
    def bias(self) -> np.ndarray:
        return self._b

    @bias.setter
    def bias(self, value) -> None:
        if value is not self._b:
            self._b[...] = value

    def initialize(self, rng: np.random.Generator, init: str) -> None:
        initialize(init, self.weights, self.bias, rng)

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = self._as_array("input", input, self.input_size)
        self.input = x
        out = np.empty((*x.shape[:-1], self.output_size), dtype=self.dtype)
        if x.ndim == 1:
            self._ops.dense_forward(self.weights, self.bias, x, out)
        else:
            self._ops.dense_forward_batch(self.weights, self.bias, x, out)
        return out

    def backward(self, output_gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        if self.input is None:
            raise RuntimeError("Dense.backward called before forward: run forward first")
        g = self._as_array("output_gradient", output_gradient, self.output_size)
        if g.shape[:-1] != self.input.shape[:-1]:
            raise ValueError(
                f"output_gradient has shape {g.shape}, but forward saw input "
                f"{self.input.shape}: pass the gradient of this layer's last output"
            )
        grad_in = np.empty(self.input.shape, dtype=self.dtype)
        if g.ndim == 1:
            self._ops.dense_backward_sgd(
                self.weights, self.bias, self.input, g, learning_rate, grad_in
            )
        else:
            # A batch: dC/dW sums the samples' outer products (the loss gradient
            # already carries the 1/n of a mean).
            grad_in[...] = g @ self.weights
            self.weights -= self.dtype.type(learning_rate) * (g.T @ self.input)
            self.bias -= self.dtype.type(learning_rate) * g.sum(axis=0)
        return grad_in

    def __repr__(self) -> str:
        return f"Dense({self.input_size}, {self.output_size})"


class Activation(Layer):
    """An element-wise activation; backward multiplies the gradient by f′(X)."""

    kind: int = 0
    name: str = ""

    def __init__(self, *, dtype=np.float64, backend: str = "numba") -> None:
        self.configure(dtype, backend)
        self.output: np.ndarray | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(input, dtype=self.dtype)
        out = np.empty_like(x)
        getattr(self._ops, f"{self.name}_forward")(x, out)
        self.output = out
        return out

    def backward(self, output_gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        if self.output is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        g = np.ascontiguousarray(output_gradient, dtype=self.dtype)
        if g.shape != self.output.shape:
            raise ValueError(
                f"output_gradient has shape {g.shape}, expected {self.output.shape} "
                "(the shape of this layer's last output)"
            )
        out = np.empty_like(g)
        getattr(self._ops, f"{self.name}_backward")(self.output, g, out)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Tanh(Activation):
    """tanh, with f′ = 1 − tanh²."""

    kind, name = TANH, "tanh"


class Sigmoid(Activation):
    """The logistic sigmoid, evaluated by sign for stability, with f′ = σ(1 − σ)."""

    kind, name = SIGMOID, "sigmoid"


class ReLU(Activation):
    """max(x, 0), with f′ = 1 where x > 0, else 0."""

    kind, name = RELU, "relu"


class Identity(Activation):
    """f(x) = x, with f′ = 1."""

    kind, name = IDENTITY, "identity"


ACTIVATIONS: dict[str, type[Activation]] = {
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "relu": ReLU,
    "identity": Identity,
}


def activation(name: str) -> Activation:
    """An activation layer by name: "tanh", "sigmoid", "relu" or "identity"."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: use one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()
