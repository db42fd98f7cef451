"""LeNet-5 on 1×28×28 images, every system of the ``cnn`` family: fastnn through its
public API (``Network.fit`` and ``predict``, on the Numba kernels or the NumPy twin),
PyTorch eager and JAX (a jitted ``lax.scan`` of SGD steps, or a jitted forward pass).

The network is Conv2D(1, 6, 5), ReLU, MaxPool2D(2), Conv2D(6, 16, 5), ReLU,
MaxPool2D(2), Flatten, Dense(256, 120), ReLU, Dense(120, 84), ReLU, Dense(84, 10),
with softmax cross-entropy on the logits and plain SGD, in float32. Every system
starts from fastnn's initial weights (``initial_weights``): torch's ``Conv2d`` and
``Linear`` weights have the layout of fastnn's ``Conv2D`` and ``Dense`` weights, and
the JAX forward pass takes them as they are.

Imported when a ``cnn`` case is built; torch and JAX are imported when one of their
cases is.
"""

from __future__ import annotations

import functools

import numpy as np

from ..cases import Case, Unavailable, Weights, as_float64, optional

DTYPE = np.float32
IMAGE = (1, 28, 28)
N_CLASSES = 10
LR = 0.01


def network(backend: str = "numba", threads: int | None = 1, init: Weights | None = None):
    """A fresh LeNet-5 ``Network`` (seed 0), from ``init`` when given."""
    import fastnn as fn

    net = fn.Network(
        [
            fn.Conv2D(1, 6, 5),
            fn.ReLU(),
            fn.MaxPool2D(2),
            fn.Conv2D(6, 16, 5),
            fn.ReLU(),
            fn.MaxPool2D(2),
            fn.Flatten(),
            fn.Dense(256, 120),
            fn.ReLU(),
            fn.Dense(120, 84),
            fn.ReLU(),
            fn.Dense(84, N_CLASSES),
        ],
        loss="cross_entropy",
        dtype=DTYPE,
        backend=backend,
        seed=0,
        threads=threads,
        input_shape=IMAGE,
    )
    if init is not None:
        for layer, (W, b) in zip(weighted_layers(net), init, strict=True):
            layer.weights[...] = W
            layer.bias[...] = b
    return net


def weighted_layers(net) -> list:
    """The layers with weights (both Conv2D, then the three Dense), in order."""
    return [layer for layer in net.layers if layer.n_params]


@functools.cache
def initial_weights() -> Weights:
    """fastnn's initial weights for seed 0: [(W, b), ...] per weighted layer."""
    net = network(backend="numpy")
    return [(layer.weights.copy(), layer.bias.copy()) for layer in weighted_layers(net)]


def data(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of uniform noise in [0, 1) and random class labels, from ``seed``."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, *IMAGE), dtype=np.float64).astype(DTYPE)
    return X, rng.integers(0, N_CLASSES, n)


@functools.cache
def minibatch_refusal(backend: str, batch_size: int) -> str | None:
    """Why ``Network.fit`` refuses LeNet-5 at ``batch_size``, or None if it trains it.

    fastnn trained convolutional networks by per-sample SGD only before minibatch
    support; asking ``fit`` itself (on one batch) keeps the benchmark right on
    either side of that change.
    """
    X, y = data(batch_size)
    try:
        network(backend).fit(X, y, epochs=1, batch_size=batch_size, learning_rate=LR)
    except ValueError as err:
        return str(err)
    return None


# -- fastnn ------------------------------------------------------------------------


class FastnnFit(Case):
    """``Network.fit(X, y, epochs=1, batch_size=..., shuffle=False)`` on ``backend``."""

    def __init__(self, system, X, y, batch_size, *, backend, threads, **kwargs):
        if batch_size > 1:
            refusal = minibatch_refusal(backend, batch_size)
            if refusal is not None:
                raise Unavailable(f"Network.fit refuses batch_size={batch_size}: {refusal}")
        super().__init__(system, units=len(X), **kwargs)
        self.X, self.y, self.batch = X, y, batch_size
        self.backend, self.threads = backend, threads

    def reset(self) -> None:
        self.net = network(self.backend, self.threads, initial_weights())

    def run(self) -> None:
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, learning_rate=LR,
                     shuffle=False)  # fmt: skip

    def result(self) -> Weights:
        return as_float64([(layer.weights, layer.bias) for layer in weighted_layers(self.net)])


class FastnnPredict(Case):
    """``Network.predict(X)``: softmax probabilities, (n, 10)."""

    def __init__(self, system, X, *, backend, threads, **kwargs):
        super().__init__(system, units=len(X), **kwargs)
        self.net = network(backend, threads, initial_weights())
        self.X = X

    def run(self) -> None:
        self.out = self.net.predict(self.X)

    def result(self) -> np.ndarray:
        return self.out


# -- PyTorch eager -----------------------------------------------------------------


class Torch(Case):
    """``torch.optim.SGD`` over batches of ``batch_size`` (1: per sample) with
    ``CrossEntropyLoss``, or, with ``batch_size=None``, the softmax of the forward
    pass under ``no_grad``."""

    def __init__(self, X, y, batch_size, **kwargs):
        super().__init__("torch", units=len(X), **kwargs)
        torch = optional("torch")
        if torch is None:
            raise Unavailable("torch is not installed")
        self.torch, self.batch = torch, batch_size
        self.X = torch.from_numpy(X)
        self.y = None if y is None else torch.from_numpy(y.astype(np.int64))

    def reset(self) -> None:
        nn = self.torch.nn
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )  # fmt: skip
        self.weighted = [m for m in self.model if isinstance(m, (nn.Conv2d, nn.Linear))]
        with self.torch.no_grad():
            for module, (W, b) in zip(self.weighted, initial_weights(), strict=True):
                module.weight.copy_(self.torch.from_numpy(W))
                module.bias.copy_(self.torch.from_numpy(b))
        self.opt = self.torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()

    def run(self) -> None:
        torch, model, opt, loss_fn, X, y = (
            self.torch, self.model, self.opt, self.loss_fn, self.X, self.y
        )  # fmt: skip
        if self.batch is None:
            with torch.no_grad():
                self.out = torch.softmax(model(X), dim=1)
            return
        step = self.batch
        for start in range(0, X.shape[0], step):
            # A slice keeps the batch axis: one sample is a batch of one, as in
            # fastnn's per-sample SGD (the mean loss of one sample is its loss).
            opt.zero_grad(set_to_none=True)
            loss_fn(model(X[start : start + step]), y[start : start + step]).backward()
            opt.step()

    def result(self):
        if self.batch is None:
            return self.out.numpy()
        return as_float64([(m.weight.detach().numpy(), m.bias.detach().numpy())
                           for m in self.weighted])  # fmt: skip


# -- JAX ---------------------------------------------------------------------------


def _jax_forward(jax):
    """The forward pass to the logits, on a batch (N, 1, 28, 28) and fastnn's
    [(W, b), ...]: convolutions in NCHW/OIHW like torch's, pools as ``reduce_window``."""
    lax, jnp = jax.lax, jax.numpy

    def conv(x, W, b):
        y = lax.conv_general_dilated(x, W, (1, 1), "VALID",
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))  # fmt: skip
        return jax.nn.relu(y + b[None, :, None, None])

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def forward(params, x):
        (W1, b1), (W2, b2), (W3, b3), (W4, b4), (W5, b5) = params
        x = pool(conv(pool(conv(x, W1, b1)), W2, b2)).reshape(x.shape[0], -1)
        x = jax.nn.relu(x @ W3.T + b3)
        x = jax.nn.relu(x @ W4.T + b4)
        return x @ W5.T + b5

    return forward


class Jax(Case):
    """One jitted ``lax.scan`` of SGD steps over batches of ``batch_size`` (1: per
    sample, each a batch of one), or, with ``batch_size=None``, the jitted softmax of
    the forward pass."""

    def __init__(self, X, y, batch_size, **kwargs):
        super().__init__("jax", units=len(X), **kwargs)
        jax = optional("jax")
        if jax is None:
            raise Unavailable("jax is not installed")
        jnp = jax.numpy
        self.jax, self.batch = jax, batch_size
        self.params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in initial_weights()]
        forward = _jax_forward(jax)
        if batch_size is None:
            self.fn = jax.jit(lambda p, X: jax.nn.softmax(forward(p, X), axis=-1))
            self.args = (jnp.asarray(X),)
            return
        if len(X) % batch_size:
            raise ValueError(f"{len(X)} samples are not whole batches of {batch_size}")

        def loss(params, x, t):
            return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(forward(params, x)), axis=-1))

        grad = jax.grad(loss)

        def epoch(params, X, T):
            def step(p, xt):
                g = grad(p, *xt)
                return jax.tree_util.tree_map(lambda a, d: a - LR * d, p, g), None

            return jax.lax.scan(step, params, (X, T))[0]

        self.fn = jax.jit(epoch)
        shape = (len(X) // batch_size, batch_size)
        T = np.eye(N_CLASSES, dtype=DTYPE)[y]
        self.args = (jnp.asarray(X.reshape(*shape, *IMAGE)),
                     jnp.asarray(T.reshape(*shape, N_CLASSES)))  # fmt: skip

    def run(self) -> None:
        self.out = self.jax.block_until_ready(self.fn(self.params, *self.args))

    def result(self):
        if self.batch is None:
            return np.asarray(self.out)
        return as_float64([(np.asarray(W), np.asarray(b)) for W, b in self.out])
