"""NumPy twins of ``fastnn.kernels.optimizers``."""

from __future__ import annotations

import numpy as np

from ..codes import MOMENTUM, SGD


def momentum_step(params, grads, velocity, learning_rate, momentum, nesterov):
    dt = params.dtype.type
    velocity[...] = dt(momentum) * velocity + grads
    step = grads + dt(momentum) * velocity if nesterov else velocity
    params -= dt(learning_rate) * step


def adam_step(params, grads, m, v, learning_rate, beta1, beta2, epsilon, weight_decay, step):
    dt = params.dtype.type
    b1, b2, lr = dt(beta1), dt(beta2), dt(learning_rate)
    m[...] = b1 * m + (1 - b1) * grads
    v[...] = b2 * v + (1 - b2) * grads * grads
    m_hat = m / (1 - b1**step)
    v_hat = v / (1 - b2**step)
    params *= 1 - lr * dt(weight_decay)
    params -= lr * m_hat / (np.sqrt(v_hat) + dt(epsilon))


def optimizer_step(kind, params, grads, state_a, state_b, learning_rate, hyper, step):
    if kind == SGD:
        params -= params.dtype.type(learning_rate) * grads
    elif kind == MOMENTUM:
        momentum_step(params, grads, state_a, learning_rate, hyper[0], hyper[1] != 0)
    else:
        adam_step(params, grads, state_a, state_b, learning_rate, *hyper[2:6], step)
