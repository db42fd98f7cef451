"""The estimators and the command line read the layer registry and the one MLP builder:
an activation registered once is accepted, listed and built everywhere."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fn
from fastnn import cli
from fastnn.builders import mlp
from fastnn.commands import build_network
from fastnn.layers import LAYERS, Activation
from fastnn.validation import check_positive_int

pytest.importorskip("sklearn")
from fastnn.sklearn import FastMLPClassifier, FastMLPRegressor


@pytest.fixture
def softsign():
    """An activation registered for one test (the kernels treat it as Tanh)."""

    class Softsign(Activation):
        saved_name, code, name, onnx_op = "TestSoftsign", fn.Tanh.code, "test_softsign", "X"

    try:
        yield Softsign
    finally:
        del LAYERS["TestSoftsign"]


def test_a_registered_activation_reaches_the_estimators(softsign):
    est = FastMLPRegressor(hidden_layer_sizes=(3,), activation="test_softsign", backend="numpy")
    est._check_params()
    est._random_state = np.random.RandomState(0)
    est._reset(4, 2, np.float64)
    kinds = [type(layer) for layer in est.network_.layers]
    assert kinds == [fn.Dense, softsign, fn.Dense]
    # The refusal of an unknown name lists what the registry holds now.
    with pytest.raises(ValueError, match="test_softsign") as info:
        FastMLPRegressor(activation="softplus")._check_params()
    assert "activation='softplus'" in str(info.value) and "leaky_relu" in str(info.value)


def test_a_registered_activation_reaches_the_command_line(softsign):
    args = cli.build_parser().parse_args(["train", "d.csv", "--activation", "test_softsign"])
    assert args.activation == "test_softsign"
    net = build_network(4, [3], 2, args.activation, "mse", dtype=np.float64, seed=0,
                        backend="numpy")  # fmt: skip
    assert [type(layer) for layer in net.layers] == [fn.Dense, softsign, fn.Dense]


def test_the_command_lines_network_is_the_builders():
    net = build_network(5, [4, 3], 2, "leaky_relu", "cross_entropy", dtype=np.float32, seed=3,
                        backend="numpy")  # fmt: skip
    same = fn.Network(mlp([5, 4, 3, 2], "leaky_relu"), loss="cross_entropy", dtype=np.float32,
                      backend="numpy", seed=3)  # fmt: skip
    assert [repr(layer) for layer in net.layers] == [repr(layer) for layer in same.layers]
    assert np.array_equal(net.params, same.params)


def test_sigmoid_is_logistic_in_the_estimators():
    """scikit-learn's "logistic" and the registry's "sigmoid" are one activation: the
    same layers, scikit-learn's initial weights for it, the same fit to the bit."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    fits = [
        FastMLPClassifier((5,), activation=name, max_iter=5, random_state=0, backend="numpy").fit(
            X, y
        )
        for name in ("logistic", "sigmoid")
    ]
    assert isinstance(fits[1].network_.layers[1], fn.Sigmoid)
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_,
                    strict=True):  # fmt: skip
        assert np.array_equal(a, b)


def test_check_positive_int_takes_inf_where_allowed():
    assert check_positive_int("n", np.inf, allow_inf=True) == np.inf
    assert check_positive_int("n", np.int64(3), allow_inf=True) == 3
    with pytest.raises(TypeError, match=r"n=inf must be a positive integer$"):
        check_positive_int("n", np.inf)
    with pytest.raises(TypeError, match=r"must be a positive integer or np\.inf"):
        check_positive_int("n", 2.5, allow_inf=True)
    with pytest.raises(ValueError, match=r"n=0 must be a positive integer \(at least 1\)"):
        check_positive_int("n", 0, allow_inf=True)
