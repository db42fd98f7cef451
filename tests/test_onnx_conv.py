"""ONNX export of convolutional networks: onnxruntime's outputs equal ``predict``."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fn
from fastnn.layers import LAYERS, Layer, layer_names
from fastnn.onnx_export import build_model
from fastnn.plan import chain_shapes

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]


def run(model, X: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})


def make_net(spatial: list[Layer], input_shape, dtype, loss: str = "mse", n_out: int = 3):
    """``spatial`` layers, then Flatten and a Dense head of ``n_out`` outputs."""
    (width,) = chain_shapes([*spatial, fn.Flatten()], input_shape)[-1][1]
    layers = [*spatial, fn.Flatten(), fn.Dense(width, n_out)]
    return fn.Network(layers, loss=loss, dtype=dtype, seed=3, input_shape=input_shape)


def check(net: fn.Network, n: int = 6, seed: int = 0) -> onnx.ModelProto:
    """Export ``net`` and compare onnxruntime with ``predict`` on ``n`` random images."""
    model = build_model(net)
    X = np.random.default_rng(seed).normal(size=(n, *net.input_shape)).astype(net.dtype)
    outputs = run(model, X)
    expected = net.predict(X)
    assert outputs[0].dtype == net.dtype and outputs[0].shape == expected.shape
    np.testing.assert_allclose(outputs[0], expected, rtol=0, atol=TOL[net.dtype.type])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [
        (3, 1, 0),
        (3, 1, 1),
        (3, 1, "same"),
        ((2, 4), 1, "same"),  # even kernel: the extra zero row and column at the end
        ((3, 2), 2, 0),
        ((2, 3), 2, 1),
        (3, (2, 1), (0, 2)),
        (1, 1, "valid"),
    ],
)
def test_conv2d_matches_predict(dtype, kernel, stride, padding):
    conv = fn.Conv2D(3, 4, kernel, stride=stride, padding=padding)
    net = make_net([conv, fn.Tanh()], (3, 9, 8), dtype)
    # Non-zero biases, at the initial weights' scale (outputs of order 1, as float32's
    # absolute tolerance assumes).
    net.params = 0.2 * np.random.default_rng(1).normal(size=net.params.size)
    model = check(net)
    ops = [node.op_type for node in model.graph.node]
    if dtype == np.float32:  # the native operator, with the layer's geometry and weights
        assert ops[0] == "Conv"
        attrs = {a.name: list(a.ints) for a in model.graph.node[0].attribute}
        top, bottom, left, right = conv.pads(())
        assert attrs == {
            "kernel_shape": list(conv.kernel_size),
            "strides": list(conv.stride),
            "pads": [top, left, bottom, right],
        }
        weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
        w = next(v for k, v in weights.items() if k.startswith("conv0_weight"))
        assert w.shape == conv.weights.shape and np.array_equal(w, conv.weights)
    else:  # onnxruntime runs no float64 Conv: the lowered form
        assert "Conv" not in ops and "MatMul" in ops


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("kernel", "stride"), [(2, None), (3, 1), ((2, 3), (1, 2)), ((3, 2), 2), (1, None)]
)
@pytest.mark.parametrize("pool", [fn.MaxPool2D, fn.AvgPool2D])
def test_pooling_matches_predict(dtype, pool, kernel, stride):
    layers = [fn.Conv2D(2, 3, 2, padding=1), fn.Sigmoid(), pool(kernel, stride=stride)]
    model = check(make_net(layers, (2, 7, 9), dtype))
    ops = [node.op_type for node in model.graph.node]
    native = "MaxPool" if pool is fn.MaxPool2D else "AveragePool"
    assert (native in ops) == (pool is fn.MaxPool2D or dtype == np.float32)
    if native == "AveragePool" and dtype == np.float32:
        node = next(n for n in model.graph.node if n.op_type == "AveragePool")
        assert {a.name: a.i for a in node.attribute if a.name == "count_include_pad"} == {
            "count_include_pad": 0
        }


@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_straight_on_the_input_with_flatten_and_dropout(dtype):
    layers = [fn.MaxPool2D(2), fn.Dropout(0.5), fn.AvgPool2D(2, stride=1), fn.LeakyReLU(0.1)]
    net = make_net(layers, (3, 8, 6), dtype)
    model = check(net)
    ops = [node.op_type for node in model.graph.node]
    assert ops[0] == "MaxPool" and ops[1] == "Identity" and "Flatten" in ops
    flatten = next(n for n in model.graph.node if n.op_type == "Flatten")
    assert {a.name: a.i for a in flatten.attribute} == {"axis": 1}


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_input_is_images_with_a_free_batch_dimension(dtype):
    net = make_net([fn.Conv2D(2, 2, 3), fn.ReLU()], (2, 5, 6), dtype)
    model = build_model(net)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "n_samples" and [d.dim_value for d in dims[1:]] == [2, 5, 6]
    rng = np.random.default_rng(2)
    for n in (1, 11):
        X = rng.normal(size=(n, 2, 5, 6)).astype(dtype)
        np.testing.assert_allclose(run(model, X)[0], net.predict(X), rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_a_trained_lenet_like_network_matches_predict(tmp_path, dtype, loss):
    n_out = 4 if loss == "cross_entropy" else 1
    layers = [
        fn.Conv2D(1, 6, 5, padding=2), fn.ReLU(), fn.MaxPool2D(2),
        fn.Conv2D(6, 16, 5), fn.ReLU(), fn.AvgPool2D(2),
        fn.Flatten(), fn.Dense(16 * 2 * 2, 32), fn.ReLU(), fn.Dropout(0.2), fn.Dense(32, n_out),
    ]  # fmt: skip
    if loss == "binary_cross_entropy":
        layers.append(fn.Sigmoid())
    net = fn.Network(layers, loss=loss, dtype=dtype, seed=0, input_shape=(1, 16, 16))
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 1, 16, 16))
    y = rng.integers(0, n_out, size=40) if n_out > 1 else rng.integers(0, 2, size=(40, 1))
    net.fit(X, y, epochs=2, learning_rate=0.01)
    path = tmp_path / "lenet.onnx"
    net.to_onnx(path)  # through Network.to_onnx and the file
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    X = X[:13].astype(dtype)
    (out,) = run(model, X)
    np.testing.assert_allclose(out, net.predict(X), rtol=0, atol=TOL[dtype])


def test_the_error_lists_the_kinds_that_export():
    class NoExport(Layer):
        saved_name = "TestNoExport"

    try:
        names = layer_names(onnx=True)
        assert "TestNoExport" not in names and "TestNoExport" in layer_names()
        for kind in ("Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dropout"):
            assert kind in names
        with pytest.raises(TypeError, match=r"layers\[2\] is a NoExport, which has no ONNX"):
            NoExport().onnx_nodes(None, "X", 2)
        with pytest.raises(TypeError) as info:
            NoExport().onnx_nodes(None, "X", 2)
        assert "TestNoExport" not in str(info.value) and "Conv2D" in str(info.value)
    finally:
        del LAYERS["TestNoExport"]
    # Every kind fastnn itself registers exports.
    assert layer_names(onnx=True) == layer_names()
