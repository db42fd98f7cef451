"""jax: the whole epoch as one jitted ``lax.scan``, or a jitted forward pass.

jax is imported when a case is built, not with this module.
"""

from __future__ import annotations

import numpy as np

from ..cases import Case, Unavailable, as_float64, optional


def _jax():
    jax = optional("jax")
    if jax is None:
        raise Unavailable("jax is not installed")
    return jax


class JaxCase(Case):
    """jax: the whole epoch as one jitted ``lax.scan`` (per sample or per batch), or a
    jitted forward pass."""

    def __init__(
        self, arch, init, X, Y, mode, *, learning_rate=0.01, batch_size=64, momentum=0.9, **kwargs
    ):
        super().__init__("jax", units=len(X), **kwargs)
        jax = _jax()
        jnp = jax.numpy
        self.jax, self.mode = jax, mode
        self.params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in init]
        funcs = {
            "tanh": jnp.tanh,
            "sigmoid": jax.nn.sigmoid,
            "relu": jax.nn.relu,
            "identity": lambda x: x,
        }
        acts = [funcs[a] for a in arch.activations]
        lr = learning_rate

        def forward(params, x):
            for (W, b), act in zip(params, acts, strict=True):
                # One sample as W·x (a matrix-vector product), a batch as X·Wᵀ: the
                # fast form for XLA in each case.
                x = act((W @ x if x.ndim == 1 else x @ W.T) + b)
            return x

        def loss(params, x, y):
            out = forward(params, x)
            if arch.loss == "mse":
                return jnp.mean((out - y) ** 2)
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(out, axis=-1), axis=-1))

        grad = jax.grad(loss)
        tree_map = jax.tree_util.tree_map

        if mode == "persample":

            def epoch(params, X, Y):
                def step(p, xy):
                    g = grad(p, *xy)
                    return tree_map(lambda a, d: a - lr * d, p, g), None

                return jax.lax.scan(step, params, (X, Y))[0]

            self.args = (jnp.asarray(X), jnp.asarray(Y))
        elif mode == "minibatch":
            if len(X) % batch_size:
                raise ValueError(f"{len(X)} samples are not whole batches of {batch_size}")

            def epoch(params, X, Y):
                def step(carry, xy):
                    p, v = carry
                    g = grad(p, *xy)
                    v = tree_map(lambda v, d: momentum * v + d, v, g)
                    return (tree_map(lambda a, u: a - lr * u, p, v), v), None

                zero = tree_map(jnp.zeros_like, params)
                return jax.lax.scan(step, (params, zero), (X, Y))[0][0]

            shape = (len(X) // batch_size, batch_size)
            self.args = (
                jnp.asarray(X.reshape(*shape, X.shape[1])),
                jnp.asarray(Y.reshape(*shape, Y.shape[1])),
            )
        else:

            def epoch(params, X):
                out = forward(params, X)
                return jax.nn.softmax(out, axis=-1) if arch.loss != "mse" else out

            self.args = (jnp.asarray(X),)
        self.fn = jax.jit(epoch)

    def run(self) -> None:
        self.out = self.jax.block_until_ready(self.fn(self.params, *self.args))

    def result(self):
        if self.mode == "predict":
            return np.asarray(self.out)
        return as_float64([(np.asarray(W), np.asarray(b)) for W, b in self.out])
