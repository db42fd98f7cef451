"""Optimizer steps over the flat parameter buffer, in place.

``params``, ``grads`` and the state buffers all have the parameter buffer's shape, so
one loop updates every layer at once.
"""

from __future__ import annotations

import numpy as np

from ..codes import MOMENTUM, SGD
from .config import serial


@serial
def momentum_step(params, grads, velocity, learning_rate, momentum, nesterov):
    """v = μ·v + g; p -= lr·(g + μ·v) with Nesterov, else p -= lr·v (PyTorch's form)."""
    dt = params.dtype.type
    lr = dt(learning_rate)
    mu = dt(momentum)
    for i in range(params.size):
        v = mu * velocity[i] + grads[i]
        velocity[i] = v
        if nesterov:
            params[i] -= lr * (grads[i] + mu * v)
        else:
            params[i] -= lr * v


@serial
def adam_step(params, grads, m, v, learning_rate, beta1, beta2, epsilon, weight_decay, step):
    """One Adam step (``step`` counts from 1), with AdamW's decoupled weight decay:
    p -= lr·wd·p, then p -= lr·m̂/(√v̂ + ε)."""
    dt = params.dtype.type
    one = dt(1)
    b1 = dt(beta1)
    b2 = dt(beta2)
    lr = dt(learning_rate)
    decay = one - lr * dt(weight_decay)
    c1 = one / (one - b1**step)
    c2 = one / (one - b2**step)
    eps = dt(epsilon)
    for i in range(params.size):
        g = grads[i]
        mi = b1 * m[i] + (one - b1) * g
        vi = b2 * v[i] + (one - b2) * g * g
        m[i] = mi
        v[i] = vi
        params[i] = params[i] * decay - lr * (mi * c1) / (np.sqrt(vi * c2) + eps)


@serial
def optimizer_step(kind, params, grads, state_a, state_b, learning_rate, hyper, step):
    """Dispatch on ``kind`` (SGD, MOMENTUM, ADAM). ``hyper`` holds
    [momentum, nesterov, beta1, beta2, epsilon, weight_decay]."""
    if kind == SGD:
        lr = params.dtype.type(learning_rate)
        for i in range(params.size):
            params[i] -= lr * grads[i]
    elif kind == MOMENTUM:
        momentum_step(params, grads, state_a, learning_rate, hyper[0], hyper[1] != 0)
    else:
        adam_step(
            params, grads, state_a, state_b, learning_rate, hyper[2], hyper[3], hyper[4],
            hyper[5], step,
        )  # fmt: skip
