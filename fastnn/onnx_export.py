"""Exporting a network's predict function as an ONNX model.

Each layer lowers itself (``Layer.onnx_nodes``): a ``Dense`` becomes a ``Gemm`` node
(``transB=1``: the weights are stored as fastnn holds them, (n_out, n_in)), an
activation its ONNX operator (``Tanh``, ``Sigmoid``, ``Relu``, ...), ``Conv2D`` a
``Conv`` (weights (O, C, KH, KW), explicit pads), ``MaxPool2D`` and ``AvgPool2D``
a ``MaxPool`` and an ``AveragePool``, ``Flatten`` a ``Flatten`` (axis 1) and
``Dropout`` an ``Identity``. onnxruntime has no float64 ``Conv`` or ``AveragePool``,
so in a float64 network those two lower onto ``Slice``, ``Concat``, ``MatMul`` and
``Sum`` nodes instead (see ``fastnn.conv_layers``). With
``loss="cross_entropy"`` a ``Softmax`` follows and with
``loss="binary_cross_entropy"`` a ``Sigmoid``, so the graph returns what
``Network.predict`` returns. float32 and float64 networks export in their own type.

For a fitted ``FastMLPClassifier`` the graph has two outputs, ``label`` (what
``predict`` returns) and ``probabilities`` (``predict_proba``); for a
``FastMLPRegressor`` it has one, ``predictions`` (``predict``). A bare network's one
output is ``Y``. The input is always ``X``, of shape (n_samples, n_features), or
(n_samples, C, H, W) for a network built with ``input_shape=(C, H, W)``.

An estimator says what its graph returns through its ``onnx_outputs()`` method, a
dict with the fitted network (``"net"``) and either ``"classes"`` and
``"multilabel"`` (a classifier) or ``"flat"`` (a regressor whose predictions are 1-D).

Needs the ``onnx`` package: ``pip install ".[onnx]"`` from a fastnn checkout.
"""

from __future__ import annotations

import numpy as np

from .files import atomic_write
from .network import Network
from .validation import install_hint

#: The ONNX operator set the graphs use (Softmax over the last axis needs >= 13).
OPSET = 17
#: The IR version matching ``OPSET``, so that older runtimes accept the file.
IR_VERSION = 8


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the onnx package: {install_hint('onnx')}") from exc
    return onnx


class _Graph:
    """Collects nodes and initializers, naming intermediate values uniquely."""

    def __init__(self, onnx) -> None:
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        output = output or self.name(op.lower())
        self.nodes.append(
            self.onnx.helper.make_node(op, inputs, [output], name=self.name(op), **attrs)
        )
        return output


def _network_nodes(g: _Graph, net: Network, x: str) -> str:
    """Append the network's layers and output transform; return the output's name."""
    out = x
    # The engine's layers (their weights are views of the network's buffer); a final
    # Sigmoid fused into binary cross-entropy is the output transform's below.
    for i, layer in enumerate(net.engine_layers):
        out = layer.onnx_nodes(g, out, i)
    if net.loss == "cross_entropy":
        out = g.node("Softmax", [out], axis=-1)
    elif net.loss == "binary_cross_entropy":
        out = g.node("Sigmoid", [out])
    return out


def _classifier_outputs(g: _Graph, spec: dict, net: Network, proba: str) -> list[tuple[str, str]]:
    """Turn the network's outputs into (label, probabilities) as the estimator does."""
    dtype = net.dtype
    classes = np.asarray(spec["classes"])
    if spec["multilabel"]:
        g.node("Identity", [proba], "probabilities")
        half = g.const("half", np.array(0.5, dtype=dtype))
        above = g.node("Greater", [proba, half])
        g.node("Cast", [above], "label", to=g.onnx.TensorProto.INT64)
        return [("label", "int64"), ("probabilities", "float")]
    if net.n_outputs == 1:  # two classes, one logistic output: [1 - p, p]
        one = g.const("one", np.array(1.0, dtype=dtype))
        q = g.node("Sub", [one, proba])
        g.node("Concat", [q, proba], "probabilities", axis=1)
    else:
        g.node("Identity", [proba], "probabilities")
    index = g.node("ArgMax", ["probabilities"], axis=1, keepdims=0)
    if classes.dtype.kind in "OUS":
        classes = classes.astype(str).astype(object)
        kind = "string"
    else:
        kind = classes.dtype.name
    table = g.const("classes", classes)
    g.node("Gather", [table, index], "label", axis=0)
    return [("label", kind), ("probabilities", "float")]


def _resolve(obj) -> tuple[Network, dict | None]:
    """The network to export, and the estimator's ``onnx_outputs()`` (None for a
    network): an estimator says what its graph returns through that method, which
    raises a ValueError (scikit-learn's NotFittedError) before it is fitted."""
    if isinstance(obj, Network):
        return obj, None
    hook = getattr(type(obj), "onnx_outputs", None)
    if callable(hook):
        spec = obj.onnx_outputs()
        if not isinstance(spec.get("net"), Network):
            raise TypeError(f"{type(obj).__name__}.onnx_outputs() names no fastnn Network")
        return spec["net"], spec
    raise TypeError(
        f"to_onnx expects a fastnn Network or a fitted FastMLPClassifier/FastMLPRegressor, "
        f"got {type(obj).__name__}"
    )


def _value_info(onnx, name: str, kind: str, elem, shape):
    if kind == "float":
        elem_type = elem
    elif kind == "string":
        elem_type = onnx.TensorProto.STRING
    else:
        elem_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(kind))
    return onnx.helper.make_tensor_value_info(name, elem_type, shape)


def build_model(net_or_estimator):
    """The ONNX ``ModelProto`` of a network or a fitted fastnn estimator.

    Parameters
    ----------
    net_or_estimator : Network, FastMLPClassifier or FastMLPRegressor

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model``.
    """
    onnx = _import_onnx()
    from .version import __version__

    net, spec = _resolve(net_or_estimator)
    elem = onnx.helper.np_dtype_to_tensor_dtype(net.dtype)
    g = _Graph(onnx)
    out = _network_nodes(g, net, "X")
    n = "n_samples"
    if spec is None:
        g.node("Identity", [out], "Y")
        outputs = [_value_info(onnx, "Y", "float", elem, [n, net.n_outputs])]
    elif "classes" in spec:
        specs = _classifier_outputs(g, spec, net, out)
        width = len(spec["classes"])
        label_shape = [n, width] if spec["multilabel"] else [n]
        outputs = [
            _value_info(onnx, specs[0][0], specs[0][1], elem, label_shape),
            _value_info(onnx, specs[1][0], specs[1][1], elem, [n, width]),
        ]
    elif spec["flat"]:
        g.node("Reshape", [out, g.const("flat", np.array([-1], dtype=np.int64))], "predictions")
        outputs = [_value_info(onnx, "predictions", "float", elem, [n])]
    else:
        g.node("Identity", [out], "predictions")
        outputs = [_value_info(onnx, "predictions", "float", elem, [n, net.n_outputs])]

    # A network built with input_shape (a convolutional one) takes images, as predict
    # does; flat rows would need a Reshape the graph's users could not see.
    x_shape = [n, net.n_features] if net.input_shape is None else [n, *net.input_shape]
    inputs = [onnx.helper.make_tensor_value_info("X", elem, x_shape)]
    graph = onnx.helper.make_graph(
        g.nodes, f"fastnn_{type(net_or_estimator).__name__}", inputs, outputs, g.initializers
    )
    model = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="fastnn",
        producer_version=__version__,
        doc_string=repr(net),
    )
    model.ir_version = IR_VERSION
    onnx.helper.set_model_props(model, {"loss": net.loss, "dtype": net.dtype.name})
    onnx.checker.check_model(model, full_check=True)
    return model


def to_onnx(net_or_estimator, path=None):
    """Export a network, or a fitted fastnn estimator, as an ONNX model.

    Parameters
    ----------
    net_or_estimator : Network, FastMLPClassifier or FastMLPRegressor
    path : str or os.PathLike, optional
        Where to write the model, atomically (a temporary file in the same directory
        is moved over ``path``). Without it, nothing is written.

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    ImportError
        If the ``onnx`` package is missing (``pip install ".[onnx]"`` from a fastnn checkout).
    """
    model = build_model(net_or_estimator)
    if path is not None:
        data = model.SerializeToString()
        atomic_write(path, lambda f: f.write(data))
    return model
