"""LeNet-5's convolutional part, one training step: fastnn's compiled step, its layer
kernels called from Python, the NumPy twin and PyTorch eager (the ``cnn`` family).

The part is Conv2D(1, 6, 5), ReLU, MaxPool2D(2), Conv2D(6, 16, 5), ReLU, MaxPool2D(2)
on 1×28×28 inputs, float32. A step is its forward pass, the backward pass of a fixed
gradient at its 16×4×4 output (what the dense layers above would send back) and the
SGD update of both convolutions. fastnn's steps are compiled loops over the samples
that call the kernels' flat helpers, as the training engine does (a batch sums its
samples' gradients, then takes the step); "fastnn-layers" and the twin call the
batch kernels layer by layer from Python.

Imported when a ``cnn`` case is built (it loads Numba and the kernels).
"""

from __future__ import annotations

import numpy as np

from ... import kernels, reference
from ...codes import RELU
from ...kernels import activations, conv
from ...kernels.config import serial
from ..cases import Case, Unavailable, optional

DTYPE = np.float32
LR = 0.01
IMAGE = (1, 28, 28)
C1, C2 = (6, 1, 5, 5), (16, 6, 5, 5)  # conv weights
A1, P1, A2, P2 = (6, 24, 24), (6, 12, 12), (16, 8, 8), (16, 4, 4)  # activations
GEO1 = (1, 28, 28, 6, 5, 5, 1, 1, 0, 0, 24, 24)
GEO2 = (6, 12, 12, 16, 5, 5, 1, 1, 0, 0, 8, 8)
POOL1 = (6, 24, 24, 2, 2, 2, 2, 12, 12)
POOL2 = (16, 8, 8, 2, 2, 2, 2, 4, 4)
N1, N2 = int(np.prod(C1)), int(np.prod(C2))
SIZES = tuple(int(np.prod(s)) for s in (A1, P1, A2, P2))
OFFS = tuple(int(v) for v in np.cumsum([0, *SIZES]))  # activations in one buffer
NO_ALPHA = DTYPE(0.0)  # the activations' float setting, which ReLU does not read


def initial_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(0, np.sqrt(2 / 25), C1).astype(DTYPE),
        "b1": rng.uniform(-0.1, 0.1, 6).astype(DTYPE),
        "w2": rng.normal(0, np.sqrt(2 / 150), C2).astype(DTYPE),
        "b2": rng.uniform(-0.1, 0.1, 16).astype(DTYPE),
    }


def data(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, *IMAGE), dtype=DTYPE), rng.uniform(-1, 1, (n, *P2)).astype(DTYPE)


# -- fastnn: compiled loops over the samples ---------------------------------------


@serial(inline="always")
def _forward_and_top(X, x0, G, t, params, acts, grads, am1, am2, work):
    """Sample t's forward pass, then its gradient back through the top pool and ReLU."""
    w2 = N1 + 6
    a1, p1, a2, p2 = OFFS[0], OFFS[1], OFFS[2], OFFS[3]
    conv.forward_flat(params, 0, params, N1, GEO1, X, x0, acts, a1, work)
    activations.forward_flat(RELU, acts, a1, acts, a1, SIZES[0], NO_ALPHA)
    conv.maxpool_forward_flat(POOL1, acts, a1, acts, p1, am1, 0)
    conv.forward_flat(params, w2, params, w2 + N2, GEO2, acts, p1, acts, a2, work)
    activations.forward_flat(RELU, acts, a2, acts, a2, SIZES[2], NO_ALPHA)
    conv.maxpool_forward_flat(POOL2, acts, a2, acts, p2, am2, 0)
    conv.maxpool_backward_flat(POOL2, G, t * 256, am2, 0, grads, a2)
    activations.backward_flat(RELU, acts, a2, grads, a2, grads, a2, SIZES[2], NO_ALPHA)


# Not cached: Numba's cache would keep this loop's copy of the kernels it inlines
# after they change (it checks only this file's time stamp).
@serial(cache=False)
def _persample_steps(X, G, params, lr, acts, grads, am1, am2, work):
    w2 = N1 + 6
    a1, p1, a2 = OFFS[0], OFFS[1], OFFS[2]
    for t in range(X.shape[0] // 784):  # X holds the images flat
        x0 = t * 784
        _forward_and_top(X, x0, G, t, params, acts, grads, am1, am2, work)
        conv.backward_sgd_flat(params, w2, params, w2 + N2, GEO2, acts, p1, grads, a2, lr,
                               grads, p1, work)  # fmt: skip
        conv.maxpool_backward_flat(POOL1, grads, p1, am1, 0, grads, a1)
        activations.backward_flat(RELU, acts, a1, grads, a1, grads, a1, SIZES[0], NO_ALPHA)
        conv.update_flat(params, 0, params, N1, GEO1, X, x0, grads, a1, lr, work)


@serial(cache=False)
def _batch_steps(X, G, params, lr, acts, grads, am1, am2, work, dparams, batch):
    """Minibatch SGD, sample by sample: the gradients of a batch are summed in
    ``dparams``, then applied (what the engine's batch loop would run)."""
    w2 = N1 + 6
    a1, p1, a2 = OFFS[0], OFFS[1], OFFS[2]
    n = X.shape[0] // 784
    for start in range(0, n, batch):
        dparams[:] = 0
        for t in range(start, min(start + batch, n)):
            x0 = t * 784
            _forward_and_top(X, x0, G, t, params, acts, grads, am1, am2, work)
            conv.input_grad_flat(params, w2, GEO2, grads, a2, grads, p1, work)
            conv.weight_grad_acc_flat(GEO2, acts, p1, grads, a2, dparams, w2, dparams, w2 + N2,
                                      work)  # fmt: skip
            conv.maxpool_backward_flat(POOL1, grads, p1, am1, 0, grads, a1)
            activations.backward_flat(RELU, acts, a1, grads, a1, grads, a1, SIZES[0], NO_ALPHA)
            conv.weight_grad_acc_flat(GEO1, X, x0, grads, a1, dparams, 0, dparams, N1, work)
        for k in range(params.size):
            params[k] -= lr * dparams[k]


class FastnnCompiled:
    def __init__(self, w):
        self.params = np.concatenate([w["w1"].ravel(), w["b1"], w["w2"].ravel(), w["b2"]])
        self.acts = np.zeros(OFFS[-1], DTYPE)
        self.grads = np.zeros(OFFS[-1], DTYPE)
        self.am1, self.am2 = np.zeros(864, np.int64), np.zeros(256, np.int64)
        self.work = np.zeros(max(conv.workspace_size(GEO1), conv.workspace_size(GEO2)), DTYPE)

    def steps(self, X, G, batch_size: int = 1):
        if batch_size == 1:
            _persample_steps(X.reshape(-1), G.reshape(-1), self.params, DTYPE(LR), self.acts,
                             self.grads, self.am1, self.am2, self.work)  # fmt: skip
        else:
            _batch_steps(X.reshape(-1), G.reshape(-1), self.params, DTYPE(LR), self.acts,
                         self.grads, self.am1, self.am2, self.work, np.empty_like(self.params),
                         batch_size)  # fmt: skip

    def weights(self):
        return self.params[:N1], self.params[N1 + 6 : N1 + 6 + N2]


# -- fastnn and the twin, from Python ------------------------------------------------


class Layered:
    """The step as a sequence of kernel calls on ``ops`` (fastnn.kernels or the twin)."""

    def __init__(self, w, ops):
        self.w = {k: v.copy() for k, v in w.items()}
        self.ops = ops

    def _step(self, x, g, batch: bool):
        ops, w, lr = self.ops, self.w, LR
        lead = (x.shape[0],) if batch else ()
        sfx = "_batch" if batch else ""
        z1 = np.empty((*lead, *A1), DTYPE)
        getattr(ops, "conv2d_forward" + sfx)(x, w["w1"], w["b1"], (1, 1), (0, 0), z1)
        ops.relu_forward(z1.reshape(-1), z1.reshape(-1))
        p1, am1 = np.empty((*lead, *P1), DTYPE), np.empty((*lead, *P1), np.int64)
        ops.maxpool2d_forward(z1, (2, 2), (2, 2), p1, am1)
        z2 = np.empty((*lead, *A2), DTYPE)
        getattr(ops, "conv2d_forward" + sfx)(p1, w["w2"], w["b2"], (1, 1), (0, 0), z2)
        ops.relu_forward(z2.reshape(-1), z2.reshape(-1))
        p2, am2 = np.empty((*lead, *P2), DTYPE), np.empty((*lead, *P2), np.int64)
        ops.maxpool2d_forward(z2, (2, 2), (2, 2), p2, am2)
        g2 = np.empty_like(z2)
        ops.maxpool2d_backward(g, am2, g2)
        ops.relu_backward(z2.reshape(-1), g2.reshape(-1), g2.reshape(-1))
        gp1 = np.empty_like(p1)
        if batch:
            ops.conv2d_input_grad_batch(w["w2"], g2, (1, 1), (0, 0), gp1)
            for name, x_in, g_out in (("2", p1, g2), ("1", x, None)):
                if g_out is None:
                    g1 = np.empty_like(z1)
                    ops.maxpool2d_backward(gp1, am1, g1)
                    ops.relu_backward(z1.reshape(-1), g1.reshape(-1), g1.reshape(-1))
                    g_out = g1
                dW, db = np.empty_like(w["w" + name]), np.empty_like(w["b" + name])
                ops.conv2d_weight_grad_batch(x_in, g_out, (1, 1), (0, 0), dW, db)
                ops.sgd_update(w["w" + name], dW, lr)
                ops.sgd_update(w["b" + name], db, lr)
        else:
            ops.conv2d_backward_sgd(p1, w["w2"], w["b2"], g2, (1, 1), (0, 0), lr, gp1)
            g1 = np.empty_like(z1)
            ops.maxpool2d_backward(gp1, am1, g1)
            ops.relu_backward(z1.reshape(-1), g1.reshape(-1), g1.reshape(-1))
            dW, db = np.zeros_like(w["w1"]), np.zeros_like(w["b1"])
            ops.conv2d_weight_grad_acc(x, g1, (1, 1), (0, 0), dW, db)
            ops.sgd_update(w["w1"], dW, lr)
            ops.sgd_update(w["b1"], db, lr)

    def steps(self, X, G, batch_size: int = 1):
        for s in range(0, X.shape[0], batch_size):
            if batch_size == 1:
                self._step(X[s], G[s], False)
            else:
                self._step(X[s : s + batch_size], G[s : s + batch_size], True)

    def weights(self):
        return self.w["w1"], self.w["w2"]


# -- PyTorch eager -------------------------------------------------------------------


class Torch:
    def __init__(self, w):
        torch = optional("torch")
        if torch is None:
            raise Unavailable("torch is not installed")
        self.torch = torch
        self.conv1 = torch.nn.Conv2d(1, 6, 5)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        with torch.no_grad():
            for conv_, k in ((self.conv1, "1"), (self.conv2, "2")):
                conv_.weight.copy_(torch.from_numpy(w["w" + k]))
                conv_.bias.copy_(torch.from_numpy(w["b" + k]))
        self.params = [*self.conv1.parameters(), *self.conv2.parameters()]

    def steps(self, X, G, batch_size: int = 1):
        torch = self.torch
        F = torch.nn.functional
        Xt, Gt = torch.from_numpy(X), torch.from_numpy(G)
        for s in range(0, X.shape[0], batch_size):
            x, g = Xt[s : s + batch_size], Gt[s : s + batch_size]
            y = F.max_pool2d(F.relu(self.conv1(x)), 2)
            y = F.max_pool2d(F.relu(self.conv2(y)), 2)
            y.backward(g)
            with torch.no_grad():
                for p in self.params:
                    p -= LR * p.grad
                    p.grad = None

    def weights(self):
        return (self.conv1.weight.detach().numpy().ravel(),
                self.conv2.weight.detach().numpy().ravel())  # fmt: skip


class LenetCase(Case):
    """``steps`` of one system (``make(weights)``) over ``X`` and ``G`` from the
    initial weights; ``result`` is both convolutions' weights, flat."""

    def __init__(self, system, make, X, G, batch_size, **kwargs):
        super().__init__(system, units=len(X), **kwargs)
        self.make, self.X, self.G, self.batch = make, X, G, batch_size
        self.state = make(initial_weights())

    def reset(self) -> None:
        self.state = self.make(initial_weights())

    def run(self) -> None:
        self.state.steps(self.X, self.G, self.batch)

    def result(self) -> np.ndarray:
        return np.concatenate([np.ravel(a) for a in self.state.weights()]).astype(np.float64)


#: System -> how to make its state from the initial weights.
SYSTEMS = {
    "fastnn": FastnnCompiled,
    "fastnn-layers": lambda w: Layered(w, kernels),
    "fastnn-numpy": lambda w: Layered(w, reference),
    "torch": Torch,
}
