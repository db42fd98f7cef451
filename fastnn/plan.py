"""Lowering a list of layers to the compact plan the compiled engine interprets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codes import DENSE
from .layers import Activation, Dense, Layer


@dataclass(frozen=True)
class Plan:
    """Per-layer int64 arrays (see ``fastnn.kernels.engine``) and buffer sizes."""

    kinds: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    p_off: np.ndarray
    a_off: np.ndarray
    n_params: int
    n_acts: int


def chain_widths(layers: list[Layer]) -> list[tuple[int, int]]:
    """Each layer's (input width, output width); raises if the sizes don't chain."""
    if not layers:
        raise ValueError("a Network needs at least one layer, e.g. [Dense(2, 1)]")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(
                f"layers[{i}] is {layer!r}, not a fastnn layer: use Dense, Tanh, "
                "Sigmoid, ReLU or Identity"
            )
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    if not dense:
        raise ValueError("a Network needs at least one Dense layer")
    width = dense[0].input_size
    widths = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            if layer.input_size != width:
                raise ValueError(
                    f"layer sizes don't chain: layers[{i}] is {layer!r}, which takes "
                    f"{layer.input_size} inputs, but the layer before it outputs {width}; "
                    f"make it Dense({width}, {layer.output_size})"
                )
            widths.append((width, layer.output_size))
            width = layer.output_size
        else:
            widths.append((width, width))
    return widths


def build_plan(layers: list[Layer]) -> Plan:
    widths = chain_widths(layers)
    n = len(layers)
    kinds = np.empty(n, np.int64)
    n_in = np.array([w[0] for w in widths], np.int64)
    n_out = np.array([w[1] for w in widths], np.int64)
    p_off = np.full(n, -1, np.int64)
    a_off = np.zeros(n, np.int64)
    params = acts = 0
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            kinds[i] = DENSE
            p_off[i] = params
            params += layer.n_params
        elif isinstance(layer, Activation):
            kinds[i] = layer.kind
        else:
            raise TypeError(f"layers[{i}] ({type(layer).__name__}) has no compiled kernel")
        a_off[i] = acts
        acts += int(n_out[i])
    return Plan(kinds, n_in, n_out, p_off, a_off, params, acts)


#: Samples per block of the first layer's blocked update in per-sample SGD.
SGD_BLOCK = 64
#: Below this many first-layer weights, W₀ sits in L1 and the fused single pass wins.
SGD_BLOCK_MIN_WEIGHTS = 16384


def sgd_block(plan: Plan) -> int:
    """The block size per-sample SGD uses for the first layer (1: no blocking)."""
    if plan.kinds[0] != DENSE or plan.n_in[0] * plan.n_out[0] < SGD_BLOCK_MIN_WEIGHTS:
        return 1
    return SGD_BLOCK
