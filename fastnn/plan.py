"""Lowering a list of layers to the compact plan the compiled engine interprets.

A plan holds, per layer, its kind and widths, where its parameters and its output
start in the network's buffers, and two small matrices for whatever else a layer
kind needs: ``cfg`` (int64, e.g. a convolution's geometry) and ``hyp`` (float64,
e.g. LeakyReLU's slope), which the engine reads by layer index. ``Plan.arrays`` is
that part of every engine call, in the order ``fastnn.backends.Backend`` declares.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .codes import CONV2D, DENSE, DROPOUT, FIRST_SPATIAL
from .layers import Layer, Sigmoid, layer_names

#: Columns of ``Plan.cfg``: the integers a layer kind may pass the engine (a
#: convolution's geometry takes 12).
CFG_WIDTH = 12
#: Columns of ``Plan.hyp``: the floats a layer kind may pass the engine.
HYP_WIDTH = 2


class PlanArrays(NamedTuple):
    """The plan's arguments of every engine call, in order (see ``fastnn.backends``)."""

    kinds: np.ndarray  # int64 (n_layers,): DENSE or an activation code
    n_in: np.ndarray  # int64 (n_layers,): input width
    n_out: np.ndarray  # int64 (n_layers,): output width
    p_off: np.ndarray  # int64 (n_layers,): start of the parameters (-1: none)
    a_off: np.ndarray  # int64 (n_layers,): start of the output in the activations
    cfg: np.ndarray  # int64 (n_layers, CFG_WIDTH): a layer kind's integers
    hyp: np.ndarray  # float64 (n_layers, HYP_WIDTH): a layer kind's floats


@dataclass(frozen=True)
class Plan:
    """The engine's view of a network: ``arrays`` and the buffer sizes."""

    arrays: PlanArrays
    n_params: int
    n_acts: int
    #: Whether a layer only the convolutional engine runs is in the plan.
    spatial: bool = False


def chain_widths(layers: list[Layer]) -> list[tuple[int, int]]:
    """Each layer's (input width, output width); raises if the sizes don't chain."""
    if not layers:
        raise ValueError("a Network needs at least one layer, e.g. [Dense(2, 1)]")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"layers[{i}] is {layer!r}, not a fastnn layer: use {layer_names()}")
    sizes = [layer.input_size for layer in layers if layer.input_size is not None]
    if not sizes:
        raise ValueError("a Network needs at least one Dense layer")
    width = sizes[0]
    widths = []
    for i, layer in enumerate(layers):
        out = layer.output_width(width, i)
        widths.append((width, out))
        width = out
    return widths


def check_input_shape(value) -> tuple[int, int, int]:
    """``input_shape`` as a (C, H, W) tuple of positive ints; ValueError otherwise."""
    items = tuple(value) if isinstance(value, tuple | list) else ()
    ok = len(items) == 3 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in items
    )
    if not ok:
        raise ValueError(
            f"input_shape={value!r} must be (C, H, W), three positive ints, e.g. (1, 8, 8)"
        )
    return int(items[0]), int(items[1]), int(items[2])


def chain_shapes(layers: list[Layer], input_shape) -> list[tuple[tuple[int, ...], ...]]:
    """Each layer's (input shape, output shape) for one sample of ``input_shape``;
    raises, naming the layer and the shape it receives, if a layer cannot take it."""
    shape: tuple[int, ...] = check_input_shape(input_shape)
    shapes = []
    for i, layer in enumerate(layers):
        try:
            out = tuple(int(v) for v in layer.shape_out(shape, i))
        except ValueError as exc:
            steps = "".join(f" -> [{j}] {layers[j]!r} -> {b}" for j, (_, b) in enumerate(shapes))
            raise ValueError(f"{exc} (shapes per sample: {shapes[0][0] if shapes else shape}"
                             f"{steps})") from None  # fmt: skip
        shapes.append((shape, out))
        shape = out
    return shapes


def build_plan(layers: list[Layer], input_shape=None) -> Plan:
    """The plan of ``layers`` for samples of ``input_shape`` ((C, H, W), needed when
    a layer works on images); raises if their sizes or shapes don't chain."""
    if input_shape is None:
        for i, layer in enumerate(layers):
            if isinstance(layer, Layer) and layer.spatial:
                raise ValueError(
                    f"layers[{i}] is {layer!r}, which works on (C, H, W) samples: pass the "
                    "shape of one sample, e.g. Network(layers, input_shape=(1, 8, 8))"
                )
        widths = chain_widths(layers)
        shapes = None
    else:
        if not layers:
            chain_widths(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"layers[{i}] is {layer!r}, not a fastnn layer: use {layer_names()}"
                )
        shapes = chain_shapes(layers, input_shape)
        widths = [(math.prod(a), math.prod(b)) for a, b in shapes]
    n = len(layers)
    arrays = PlanArrays(
        kinds=np.empty(n, np.int64),
        n_in=np.array([w[0] for w in widths], np.int64),
        n_out=np.array([w[1] for w in widths], np.int64),
        p_off=np.full(n, -1, np.int64),
        a_off=np.zeros(n, np.int64),
        cfg=np.zeros((n, CFG_WIDTH), np.int64),
        hyp=np.zeros((n, HYP_WIDTH), np.float64),
    )
    params = acts = 0
    for i, layer in enumerate(layers):
        entry = layer.plan_entry() if shapes is None else layer.plan_entry_at(shapes[i][0])
        if len(entry.cfg) > CFG_WIDTH or len(entry.hyp) > HYP_WIDTH:
            raise ValueError(f"layers[{i}] ({layer!r}) has more settings than a plan holds")
        arrays.kinds[i] = entry.code
        if entry.n_params:
            arrays.p_off[i] = params
            params += entry.n_params
        arrays.cfg[i, : len(entry.cfg)] = entry.cfg
        arrays.hyp[i, : len(entry.hyp)] = entry.hyp
        arrays.a_off[i] = acts
        acts += int(arrays.n_out[i])
    return Plan(arrays, params, acts, bool(arrays.kinds.max() >= FIRST_SPATIAL))


def engine_plan(layers: list[Layer], loss: str, input_shape=None) -> Plan:
    """The plan a Network of ``layers`` under ``loss`` runs."""
    # A final Sigmoid under binary cross-entropy is fused into the loss: the engine
    # stops at the logits and the loss applies the sigmoid, stably.
    fused = loss == "binary_cross_entropy" and bool(layers) and isinstance(layers[-1], Sigmoid)
    return build_plan(layers[:-1] if fused else layers, input_shape)


#: Samples per block of the first layer's blocked update in per-sample SGD: H/4 for a
#: first layer of H units, within these bounds. A block of K costs K·n_in multiply-adds
#: a sample for its Gram matrix, against 2·H·n_in for the two products, and too small a
#: block makes the products poor BLAS calls: on 784-H-10 the fastest K was near H/4
#: (H = 32: 16, 2.5 µs a sample against 4.1 at K = 64; H = 1024: 64).
SGD_BLOCK = 64
SGD_BLOCK_SMALLEST = 16
#: Below this many first-layer weights, W₀ sits in L1 and the fused single pass wins.
SGD_BLOCK_MIN_WEIGHTS = 16384


def is_spatial(plan: Plan) -> bool:
    """Whether the plan holds a layer only the convolutional engine runs."""
    return plan.spatial


def sample_rows(name: str, X: np.ndarray, input_shape) -> np.ndarray:
    """X as rows of flat samples: (n, C, H, W) and one (C, H, W) sample are
    reshaped (free: X is C-contiguous); flat rows are taken as they are."""
    if input_shape is None or X.ndim < 3:
        return X
    if X.shape[-3:] != input_shape or X.ndim > 4:
        raise ValueError(
            f"{name} has shape {X.shape}, but the network takes samples of shape "
            f"{input_shape}: pass (n_samples, {', '.join(map(str, input_shape))}) or one "
            f"sample {input_shape}"
        )
    return X.reshape(-1, math.prod(input_shape))


def dropout_seed(plan: Plan, rng: np.random.Generator) -> int:
    """The seed that keys Dropout's masks in a training call, drawn from the
    network's generator (0, and nothing drawn, without Dropout)."""
    return int(rng.integers(2**63)) if DROPOUT in plan.arrays.kinds else 0


def minibatch_engine(ops, plan: Plan, rng: np.random.Generator):
    """The engine function minibatch training of ``plan`` runs on backend ``ops``,
    taking ``fit_minibatch``'s arguments: ``fit_minibatch`` itself, or, for a plan
    with convolutional or Dropout layers, ``fit_minibatch_conv`` with its dropout
    seed drawn from ``rng`` now."""
    if not plan.spatial:
        return ops.fit_minibatch
    seed = dropout_seed(plan, rng)

    def fit(*args):
        *head, epoch_loss, snapshot, stop = args
        return ops.fit_minibatch_conv(*head, seed, epoch_loss, snapshot, stop)

    return fit


def multiply_adds(plan: Plan) -> int:
    """A sample's multiply-adds in the forward pass: each parameter once, except that a
    convolution uses each weight at every output position."""
    if not is_spatial(plan):
        return plan.n_params
    a = plan.arrays
    total = 0
    for i, kind in enumerate(a.kinds):
        if kind == CONV2D:
            C, _, _, O, KH, KW, *_, HO, WO = (int(v) for v in a.cfg[i])
            total += O * C * KH * KW * HO * WO
        else:
            total += int(a.n_out[i]) * (int(a.n_in[i]) + 1 if kind == DENSE else 1)
    return total


def sgd_block(plan: Plan) -> int:
    """The block size per-sample SGD uses for the first layer (1: no blocking)."""
    a = plan.arrays
    if a.kinds[0] != DENSE or a.n_in[0] * a.n_out[0] < SGD_BLOCK_MIN_WEIGHTS:
        return 1
    return int(min(SGD_BLOCK, max(SGD_BLOCK_SMALLEST, a.n_out[0] // 4)))
