"""The layers of the classic design: Dense and the activations, and the registry of
every layer kind.

Every layer has ``forward(input) -> output`` and
``backward(output_gradient, learning_rate) -> input_gradient``. A layer takes one
sample as a 1-D vector or a batch as a 2-D array with samples in rows. ``backward``
computes the input gradient with the weights ``forward`` used, then updates the
layer's own parameters in place by plain SGD.

Each concrete layer class registers itself in ``LAYERS`` under the name a model file
stores (``saved_name``), and carries everything the rest of fastnn asks of a layer
kind: its kernel code and plan entry (``plan_entry``), its saved settings
(``to_spec`` / ``from_spec``, and ``param_count`` to size a file's parameters before
anything is allocated), and its ONNX lowering (``onnx_nodes``). Model files, the ONNX
export, the plan, the command line, the estimators and the error messages all read
the registry, so a new layer kind is one class here (or in a module of its own), its
kernels and its twin.
"""

from __future__ import annotations

import math
import numbers
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .backends import get_ops
from .codes import DENSE, IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH
from .initializers import INITIALIZERS, initialize
from .validation import check_dtype, check_positive_int

#: saved name (the ``"type"`` of a model file's layer) -> layer class; filled by
#: ``Layer.__init_subclass__``.
LAYERS: dict[str, type[Layer]] = {}


class PlanEntry(NamedTuple):
    """What a layer tells the compiled engine: its kind and parameter count, and a
    few integers (geometry) and floats (settings, e.g. LeakyReLU's slope) that the
    engine reads by layer index from the plan's ``cfg`` and ``hyp`` matrices."""

    code: int
    n_params: int = 0
    cfg: tuple[int, ...] = ()
    hyp: tuple[float, ...] = ()


class Layer:
    """Base class: a layer maps an input to an output and back-propagates gradients.

    A subclass that sets ``saved_name`` is registered in ``LAYERS`` under it (a
    subclass that does not is not: it cannot be saved or exported).
    """

    #: The layer's ``"type"`` in a model file, and its key in ``LAYERS``.
    saved_name: ClassVar[str | None] = None
    #: Its kind in a plan (``fastnn.codes``).
    code: ClassVar[int]
    #: The constructor arguments a model file stores, as attributes of the layer.
    settings: ClassVar[tuple[str, ...]] = ()
    #: The initial weights a Dense layer right before this one gets by default.
    weight_init: ClassVar[str] = "xavier"
    #: The layer's input width when it fixes one (Dense), else None.
    input_size: int | None = None
    #: Whether the layer works on (C, H, W) samples, so that a network holding it
    #: needs its ``input_shape``.
    spatial: ClassVar[bool] = False

    dtype: np.dtype = np.dtype(np.float64)
    backend: str = "numba"
    _owner: weakref.ref | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("saved_name")
        if name is not None:
            if name in LAYERS:
                raise TypeError(f"two layer classes are saved as {name!r}: rename one")
            LAYERS[name] = cls

    # -- what the registry asks of a layer kind ----------------------------------------
    @property
    def n_params(self) -> int:
        """How many values of the network's parameter buffer the layer holds."""
        return 0

    @classmethod
    def param_count(cls, spec: Mapping[str, Any]) -> int:
        """The parameters a model file's layer ``spec`` needs, from its declared
        settings alone (nothing is built or allocated); ValueError if they are invalid."""
        return 0

    def output_width(self, width: int, index: int) -> int:
        """The layer's output width for an input of ``width`` values; ValueError,
        naming ``layers[index]``, if it cannot take that input."""
        return width

    def shape_out(self, shape: tuple[int, ...], index: int) -> tuple[int, ...]:
        """The shape of the layer's output for one sample of ``shape``; ValueError,
        naming ``layers[index]`` and both shapes, if it cannot take that input. By
        default element-wise: the shape is kept."""
        return shape

    def plan_entry(self) -> PlanEntry:
        """The layer's entry in the plan the compiled engine interprets."""
        raise TypeError(f"{type(self).__name__} has no compiled kernel")

    def plan_entry_at(self, shape: tuple[int, ...]) -> PlanEntry:
        """The plan entry for one input sample of ``shape`` (a convolution's geometry
        depends on it); by default ``plan_entry()``."""
        return self.plan_entry()

    def to_spec(self) -> dict[str, Any]:
        """The layer as a model file stores it: ``{"type": saved_name, **settings}``."""
        return {"type": self.saved_name, **{key: getattr(self, key) for key in self.settings}}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], backend: str = "numba") -> Layer:
        """The layer a model file's ``spec`` describes (keys other than ``settings``
        are ignored), on ``backend``; raises TypeError or ValueError for invalid
        settings."""
        return cls(**{key: spec[key] for key in cls.settings if key in spec}, backend=backend)

    def onnx_nodes(self, graph, x: str, index: int) -> str:
        """Append the layer's ONNX nodes to ``graph`` (``fastnn.onnx_export``'s graph
        builder), reading ``x``; return the name of the output."""
        raise TypeError(
            f"layers[{index}] is a {type(self).__name__}, which has no ONNX export: "
            f"use {layer_names(onnx=True)}"
        )

    def bind(self, buffer: np.ndarray) -> None:
        """Take ``buffer`` (``n_params`` values) as the home of the layer's parameters."""

    # -- ownership and configuration -------------------------------------------------
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

    def _setup_params(self, init: str | None, dtype, backend: str, seed: int | None) -> None:
        """The end of a parametrised layer's constructor: check ``init``, set dtype and
        backend, bind a buffer of its own and draw the initial weights from ``seed``
        (a Network rebinds and re-draws them)."""
        if init is not None and init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}: use one of {list(INITIALIZERS)} or None")
        self.init = init
        self.configure(dtype, backend)
        self.bind(np.empty(self.n_params, dtype=self.dtype))
        self.initialize(np.random.default_rng(seed), init or "xavier")
        self.input: np.ndarray | None = None

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


def check_unowned(layers: list[Layer]) -> None:
    """Raise if a layer already belongs to a live network, or appears twice: a layer's
    weights are views into one network's buffer, so two owners would disagree."""
    seen: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if id(layer) in seen:
            raise ValueError(
                f"layers[{seen[id(layer)]}] and layers[{i}] are the same {layer!r} object: "
                "give every position a layer of its own, e.g. Dense(3, 3) twice"
            )
        seen[id(layer)] = i
        if layer.owner is not None:
            raise ValueError(
                f"layers[{i}] ({layer!r}) already belongs to another Network, whose "
                "weights it holds: build fresh layers for each network (e.g. "
                "[Dense(2, 3), Tanh(), Dense(3, 1)] again), or copy them with "
                "copy.deepcopy(layers)"
            )


def layer_names(*, onnx: bool = False) -> str:
    """The registered layer kinds, for error messages: "Dense, Tanh, ... or Identity".

    Parameters
    ----------
    onnx : bool, default False
        List only the kinds that have an ONNX lowering (their own ``onnx_nodes``).
    """
    names = [
        name for name, cls in LAYERS.items() if not onnx or cls.onnx_nodes is not Layer.onnx_nodes
    ]
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


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

    saved_name = "Dense"
    code = DENSE
    settings = ("input_size", "output_size", "init")

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
        self._setup_params(init, dtype, backend, seed)

    @property
    def n_params(self) -> int:
        return self.output_size * (self.input_size + 1)

    @classmethod
    def param_count(cls, spec: Mapping[str, Any]) -> int:
        sizes = spec.get("input_size"), spec.get("output_size")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
            raise ValueError(f"sizes {sizes} are not positive integers")
        return sizes[1] * (sizes[0] + 1)

    def output_width(self, width: int, index: int) -> int:
        if self.input_size != width:
            raise ValueError(
                f"layer sizes don't chain: layers[{index}] is {self!r}, which takes "
                f"{self.input_size} inputs, but the layer before it outputs {width}; "
                f"make it Dense({width}, {self.output_size})"
            )
        return self.output_size

    def shape_out(self, shape: tuple[int, ...], index: int) -> tuple[int, ...]:
        if len(shape) != 1:
            raise ValueError(
                f"layers[{index}] is {self!r}, which takes vectors of {self.input_size} "
                f"values, but receives samples of shape {shape}: put Flatten() before it"
            )
        return (self.output_width(shape[0], index),)

    def plan_entry(self) -> PlanEntry:
        return PlanEntry(DENSE, self.n_params)

    def onnx_nodes(self, graph, x: str, index: int) -> str:
        # Gemm with transB=1: the weights as fastnn holds them, (n_out, n_in).
        w = graph.const(f"dense{index}_weight", self.weights.copy())
        b = graph.const(f"dense{index}_bias", self.bias.copy())
        return graph.node("Gemm", [x, w, b], transB=1)

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
    """An element-wise activation; backward multiplies the gradient by f′(X).

    A subclass sets ``code`` (its kernels' code in ``fastnn.codes``), ``name`` (its
    name on the command line and in the estimators, e.g. "relu") and ``onnx_op``.
    """

    #: The activation's name for ``activation(name)``, e.g. "tanh".
    name: ClassVar[str] = ""
    #: Other names it goes by there (scikit-learn's "logistic" for the sigmoid).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The ONNX operator it lowers to.
    onnx_op: ClassVar[str] = ""

    def __init__(self, *, dtype=np.float64, backend: str = "numba") -> None:
        self.configure(dtype, backend)
        self.output: np.ndarray | None = None

    @property
    def alpha(self) -> float:
        """The one float setting the kernels take (LeakyReLU's slope); 0 if none."""
        return 0.0

    def plan_entry(self) -> PlanEntry:
        return PlanEntry(self.code, hyp=(self.alpha,))

    def onnx_nodes(self, graph, x: str, index: int) -> str:
        return graph.node(self.onnx_op, [x])

    def forward(self, input: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(input, dtype=self.dtype)
        out = np.empty_like(x)
        self._ops.activation_forward(self.code, x, out, self.alpha)
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
        self._ops.activation_backward(self.code, self.output, g, out, self.alpha)
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.settings)
        return f"{type(self).__name__}({args})"


class Tanh(Activation):
    """tanh, with f′ = 1 − tanh²."""

    saved_name, code, name, onnx_op = "Tanh", TANH, "tanh", "Tanh"


class Sigmoid(Activation):
    """The logistic sigmoid, evaluated by sign for stability, with f′ = σ(1 − σ)."""

    saved_name, code, name, onnx_op = "Sigmoid", SIGMOID, "sigmoid", "Sigmoid"
    aliases = ("logistic",)


class ReLU(Activation):
    """max(x, 0), with f′ = 1 where x > 0, else 0."""

    saved_name, code, name, onnx_op = "ReLU", RELU, "relu", "Relu"
    weight_init = "he"


class Identity(Activation):
    """f(x) = x, with f′ = 1."""

    saved_name, code, name, onnx_op = "Identity", IDENTITY, "identity", "Identity"


class LeakyReLU(Activation):
    """x where x > 0, else negative_slope·x; f′ = 1 where x > 0, else negative_slope.

    As ``torch.nn.LeakyReLU``. The slope is saved in the model file, and reaches the
    kernels through the plan's ``hyp`` (it is the activation's ``alpha``).

    Parameters
    ----------
    negative_slope : float
        The slope for x <= 0, finite and >= 0 (0 is ReLU). Not negative: the
        gradient is computed from the layer's output, whose sign must tell x > 0.
    """

    saved_name, code, name, onnx_op = "LeakyReLU", LEAKY_RELU, "leaky_relu", "PRelu"
    settings = ("negative_slope",)
    weight_init = "he"

    def __init__(self, negative_slope: float = 0.01, **kwargs) -> None:
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise TypeError(f"negative_slope={negative_slope!r} must be a number, e.g. 0.01")
        try:
            slope = float(negative_slope)
        except OverflowError:  # an int beyond any float
            slope = math.inf
        if not (math.isfinite(slope) and slope >= 0):
            raise ValueError(
                f"negative_slope={negative_slope!r} must be finite and >= 0, e.g. 0.01: the "
                "gradient is read from the layer's output, which a negative slope leaves "
                "ambiguous"
            )
        self.negative_slope = slope
        super().__init__(**kwargs)

    @property
    def alpha(self) -> float:
        return self.negative_slope

    def onnx_nodes(self, graph, x: str, index: int) -> str:
        # PRelu with the slope as a constant of the network's dtype: LeakyRelu's alpha
        # attribute is a float32, which would round a float64 network's slope.
        slope = graph.const(f"leaky_relu{index}_slope", np.array(self.alpha, self.dtype))
        return graph.node(self.onnx_op, [x, slope])


class _Activations(Mapping[str, type[Activation]]):
    """The registered activations by name, read live from ``LAYERS`` (so that an
    activation defined in another module is listed once that module is imported)."""

    def _table(self) -> dict[str, type[Activation]]:
        kinds = [cls for cls in LAYERS.values() if issubclass(cls, Activation) and cls.name]
        return {name: cls for cls in kinds for name in (cls.name, *cls.aliases)}

    def __getitem__(self, name: str) -> type[Activation]:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return repr(self._table())


#: activation name ("tanh", "relu", ... and aliases such as "logistic") -> layer class
ACTIVATIONS: Mapping[str, type[Activation]] = _Activations()


def activation(name: str, **settings) -> Activation:
    """An activation layer by name ("tanh", "sigmoid", "relu", "identity", ...), with
    its settings as keywords (e.g. ``activation("leaky_relu", negative_slope=0.1)``)."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: use one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name](**settings)
