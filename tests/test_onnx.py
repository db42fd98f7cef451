"""ONNX export: valid graphs whose onnxruntime outputs equal fastnn's predictions."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import fastnn as fn
from fastnn.onnx_export import to_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4))
LABELS = RNG.integers(0, 3, size=64)
TOL = {np.float32: 1e-5, np.float64: 1e-12}
# The estimators here train only a few epochs: their ConvergenceWarning is expected.
pytestmark = pytest.mark.filterwarnings("ignore:Stochastic optimizer")


def make_net(loss: str, dtype) -> fn.Network:
    n_out = {"cross_entropy": 3, "binary_cross_entropy": 2, "mse": 1}[loss]
    layers = [
        fn.Dense(4, 8), fn.Tanh(), fn.Dense(8, 6), fn.ReLU(), fn.Dense(6, 5), fn.Sigmoid(),
        fn.Dense(5, 5), fn.Identity(), fn.Dense(5, n_out),
    ]  # fmt: skip
    return fn.Network(layers, loss=loss, dtype=dtype, seed=1)


def run(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_network_export_matches_predict(tmp_path, loss, dtype):
    net = make_net(loss, dtype)
    Y = LABELS if loss == "cross_entropy" else RNG.random((64, net.n_outputs))
    net.fit(X, Y, epochs=2, learning_rate=0.05)
    path = tmp_path / "net.onnx"
    net.to_onnx(path)

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = [node.op_type for node in model.graph.node]
    assert ops[:9] == [
        "Gemm",
        "Tanh",
        "Gemm",
        "Relu",
        "Gemm",
        "Sigmoid",
        "Gemm",
        "Identity",
        "Gemm",
    ]
    final = {"cross_entropy": "Softmax", "binary_cross_entropy": "Sigmoid", "mse": "Identity"}
    assert ops[9] == final[loss]
    for node in model.graph.node:
        if node.op_type == "Gemm":
            assert {a.name: a.i for a in node.attribute} == {"transB": 1}
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    first = next(v for k, v in weights.items() if k.startswith("dense0_weight"))
    assert first.shape == (8, 4) and np.array_equal(first, net.layers[0].weights)
    assert model.graph.input[0].type.tensor_type.elem_type == (
        onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    )

    (out,) = run(path, X.astype(dtype))
    expected = net.predict(X)
    assert out.dtype == dtype and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=TOL[dtype])


def test_batch_dimension_is_free(tmp_path):
    net = make_net("mse", np.float64)
    net.to_onnx(tmp_path / "n.onnx")
    for rows in (1, 7):
        (out,) = run(tmp_path / "n.onnx", X[:rows])
        assert out.shape == (rows, 1)


def test_to_onnx_without_path_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = to_onnx(make_net("mse", np.float32))
    assert isinstance(model, onnx.ModelProto) and os.listdir(tmp_path) == []
    assert model.producer_name == "fastnn"


def test_export_replaces_a_file_atomically(tmp_path):
    path = tmp_path / "n.onnx"
    path.write_bytes(b"old")
    make_net("mse", np.float64).to_onnx(path)
    assert os.listdir(tmp_path) == ["n.onnx"]
    onnx.checker.check_model(onnx.load(str(path)))


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="fastnn Network"):
        to_onnx("a network", tmp_path / "x.onnx")
    sklearn = pytest.importorskip("fastnn.sklearn")
    with pytest.raises(ValueError, match="not fitted"):
        to_onnx(sklearn.FastMLPRegressor(), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    with pytest.raises(ImportError, match=r'pip install "\.\[onnx\]" \(from a fastnn checkout\)'):
        to_onnx(make_net("mse", np.float64))


# -- estimators -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sk():
    return pytest.importorskip("fastnn.sklearn")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multiclass_classifier(tmp_path, sk, dtype):
    y = np.array(["a", "b", "c"])[LABELS]
    clf = sk.FastMLPClassifier((8,), max_iter=20, dtype=dtype, random_state=0).fit(X, y)
    to_onnx(clf, tmp_path / "c.onnx")
    label, proba = run(tmp_path / "c.onnx", X.astype(dtype))
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=TOL[dtype])
    assert np.array_equal(label, clf.predict(X))


def test_binary_classifier_with_integer_labels(tmp_path, sk):
    y = np.where(LABELS == 0, 5, 9)
    clf = sk.FastMLPClassifier((8,), max_iter=20, random_state=0).fit(X, y)
    to_onnx(clf, tmp_path / "b.onnx")
    label, proba = run(tmp_path / "b.onnx", X)
    assert proba.shape == (64, 2)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=1e-12)
    assert label.dtype == np.int64 and np.array_equal(label, clf.predict(X))


def test_multilabel_classifier(tmp_path, sk):
    Y = np.column_stack([LABELS == 0, LABELS == 1]).astype(int)
    clf = sk.FastMLPClassifier((8,), max_iter=20, random_state=0).fit(X, Y)
    to_onnx(clf, tmp_path / "m.onnx")
    label, proba = run(tmp_path / "m.onnx", X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=1e-12)
    assert np.array_equal(label, clf.predict(X))


@pytest.mark.parametrize("n_targets", [1, 2])
def test_regressor(tmp_path, sk, n_targets):
    y = X[:, 0] if n_targets == 1 else X[:, :2]
    reg = sk.FastMLPRegressor((8,), max_iter=20, random_state=0).fit(X, y)
    to_onnx(reg, tmp_path / "r.onnx")
    (pred,) = run(tmp_path / "r.onnx", X)
    assert pred.shape == reg.predict(X).shape
    np.testing.assert_allclose(pred, reg.predict(X), rtol=0, atol=1e-12)
