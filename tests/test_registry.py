"""The layer registry, the engine's declared interface and the MLP builder."""

from __future__ import annotations

import inspect
import typing

import numpy as np
import pytest

import fastnn as fn
from fastnn import kernels, reference
from fastnn.backends import Backend
from fastnn.builders import mlp
from fastnn.layers import ACTIVATIONS, LAYERS, Activation, Layer, layer_names
from fastnn.plan import CFG_WIDTH, HYP_WIDTH, PlanArrays, build_plan
from fastnn.validation import writable

#: Constructor arguments of the layer kinds that need some.
_ARGS = {
    fn.Dense: (3, 4),
    fn.Conv2D: (2, 3, (3, 2), 1, "same", "he"),
    fn.MaxPool2D: (2,),
    fn.AvgPool2D: ((2, 3), 1),
    fn.Dropout: (0.25,),
}


def _example(cls: type[Layer]) -> Layer:
    return cls(*_ARGS.get(cls, ()))


def _protocol_methods() -> list[str]:
    return [
        name
        for name, member in vars(Backend).items()
        if callable(member) and not name.startswith("_")
    ]


def test_every_layer_kind_is_registered_under_its_saved_name():
    for cls in (fn.Dense, fn.Tanh, fn.Sigmoid, fn.ReLU, fn.Identity):
        assert LAYERS[cls.saved_name] is cls
    for name, cls in LAYERS.items():
        assert cls.saved_name == name
        assert issubclass(cls, Layer)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_spec_round_trip_and_declared_parameter_count(name):
    layer = _example(LAYERS[name])
    spec = layer.to_spec()
    assert spec["type"] == name
    again = LAYERS[name].from_spec(spec)
    assert type(again) is type(layer) and again.to_spec() == spec
    # A model file's parameters are sized from the spec alone, before any allocation.
    assert LAYERS[name].param_count(spec) == layer.n_params


def test_dense_spec_keeps_the_model_files_keys():
    spec = fn.Dense(2, 3, "lecun").to_spec()
    assert spec == {"type": "Dense", "input_size": 2, "output_size": 3, "init": "lecun"}
    assert fn.Tanh().to_spec() == {"type": "Tanh"}


@pytest.mark.parametrize("sizes", [(0, 3), (2, -1), (2.0, 3), (True, 3), (None, 3)])
def test_dense_param_count_refuses_bad_declared_sizes(sizes):
    spec = {"type": "Dense", "input_size": sizes[0], "output_size": sizes[1]}
    with pytest.raises(ValueError, match="positive integers"):
        fn.Dense.param_count(spec)


def test_activations_by_name_and_alias():
    assert ACTIVATIONS["relu"] is fn.ReLU and ACTIVATIONS["identity"] is fn.Identity
    assert ACTIVATIONS["sigmoid"] is ACTIVATIONS["logistic"] is fn.Sigmoid  # scikit-learn's
    assert isinstance(fn.layers.activation("logistic"), fn.Sigmoid)


def test_a_new_layer_kind_registers_itself_and_a_second_one_of_its_name_is_refused():
    class Softsign(Activation):
        saved_name, code, name, onnx_op = "TestSoftsign", fn.Tanh.code, "test_softsign", "X"

    try:
        assert LAYERS["TestSoftsign"] is Softsign
        assert ACTIVATIONS["test_softsign"] is Softsign  # read live from the registry
        assert "TestSoftsign" in layer_names()
        with pytest.raises(TypeError, match="two layer classes are saved as 'TestSoftsign'"):

            class Again(Activation):
                saved_name = "TestSoftsign"
    finally:
        del LAYERS["TestSoftsign"]
    assert "test_softsign" not in ACTIVATIONS


def test_a_subclass_without_a_name_of_its_own_is_not_registered_nor_saved(tmp_path):
    class MyTanh(fn.Tanh):
        pass

    assert LAYERS["Tanh"] is fn.Tanh and MyTanh not in LAYERS.values()
    net = fn.Network([fn.Dense(2, 2), MyTanh()], backend="numpy")
    with pytest.raises(TypeError, match="MyTanh, which a model file cannot hold"):
        net.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_error_messages_list_the_registered_kinds():
    with pytest.raises(TypeError) as info:
        fn.Network([fn.Dense(2, 2), np.tanh])
    for name in LAYERS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="unknown activation") as info:
        fn.layers.activation("swish")
    for name in ACTIVATIONS:
        assert repr(name) in str(info.value)


def test_the_plan_carries_each_layers_integers_and_floats_by_index():
    plan = build_plan([fn.Dense(3, 4), fn.ReLU(), fn.Dense(4, 2)])
    assert isinstance(plan.arrays, PlanArrays)
    assert plan.arrays.cfg.shape == (3, CFG_WIDTH) and plan.arrays.cfg.dtype == np.int64
    assert plan.arrays.hyp.shape == (3, HYP_WIDTH) and plan.arrays.hyp.dtype == np.float64
    np.testing.assert_array_equal(plan.arrays.kinds, [fn.Dense.code, fn.ReLU.code, fn.Dense.code])
    np.testing.assert_array_equal(plan.arrays.p_off, [0, -1, 16])
    assert plan.n_params == 16 + 10


@pytest.mark.parametrize("method", _protocol_methods())
@pytest.mark.parametrize("ops", [kernels, reference], ids=["kernels", "reference"])
def test_both_backends_provide_the_declared_interface(ops, method):
    declared = list(inspect.signature(getattr(Backend, method)).parameters)[1:]  # less self
    impl = getattr(ops, method)
    impl = getattr(impl, "py_func", impl)  # a compiled kernel: its Python source
    assert list(inspect.signature(impl).parameters) == declared


def test_the_plan_arrays_are_the_engines_first_arguments():
    declared = list(inspect.signature(Backend.fit_sgd).parameters)[1:]
    assert declared[: len(PlanArrays._fields)] == list(PlanArrays._fields)
    for method in ("fit_sgd_blocked", "fit_minibatch", "forward_batch"):
        params = list(inspect.signature(getattr(Backend, method)).parameters)[1:]
        assert params[: len(PlanArrays._fields) + 1] == [*PlanArrays._fields, "params"]
    assert typing.get_type_hints(Backend.fit_sgd)["return"] is int


def test_mlp_builds_the_layers_by_hand():
    layers = mlp([4, 8, 6, 2], "relu")
    assert [repr(layer) for layer in layers] == [
        "Dense(4, 8)",
        "ReLU()",
        "Dense(8, 6)",
        "ReLU()",
        "Dense(6, 2)",
    ]
    assert [repr(layer) for layer in mlp([2, 3, 1], "tanh", "tanh")] == [
        "Dense(2, 3)",
        "Tanh()",
        "Dense(3, 1)",
        "Tanh()",
    ]
    assert all(layer.init == "lecun" for layer in mlp([2, 3, 1], init="lecun")[::2])


def test_mlp_trains_as_the_same_network_built_by_hand(rng):
    X = rng.uniform(-1, 1, (20, 4))
    Y = rng.uniform(-1, 1, (20, 2))
    by_hand = [fn.Dense(4, 5), fn.Tanh(), fn.Dense(5, 2)]
    nets = [
        fn.Network(layers, backend="numpy", seed=3) for layers in (by_hand, mlp([4, 5, 2], "tanh"))
    ]
    for net in nets:
        net.fit(X, Y, epochs=2, learning_rate=0.05)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)


@pytest.mark.parametrize(
    "args, error, match",
    [
        (([4],), ValueError, "input and the output width"),
        (([4, 0, 2],), ValueError, r"widths\[1\]=0 must be a positive integer"),
        (([4, 2.5, 2],), TypeError, r"widths\[1\]=2.5 must be a positive integer"),
        (([4, 3, 2], "swish"), ValueError, "unknown activation 'swish'"),
        (([4, 3, 2], "relu", "softplus"), ValueError, "unknown activation 'softplus'"),
    ],
)
def test_mlp_refuses_bad_descriptions(args, error, match):
    with pytest.raises(error, match=match):
        mlp(*args)


def test_writable_keeps_writable_arrays_and_copies_read_only_ones(tmp_path):
    a = np.arange(6.0)
    assert writable(a) is a
    frozen = np.arange(6.0)
    frozen.flags.writeable = False
    copy = writable(frozen)
    assert copy.flags.writeable and not np.shares_memory(copy, frozen)
    np.testing.assert_array_equal(copy, frozen)
    path = tmp_path / "x.npy"
    np.save(path, np.arange(12.0).reshape(3, 4))
    mapped = np.load(path, mmap_mode="r")
    view = writable(mapped)
    assert view.flags.writeable and np.shares_memory(view, mapped)  # no copy of a map
