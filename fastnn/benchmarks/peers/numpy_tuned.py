"""numpy-tuned: the fastest plain-NumPy MLP we know how to write.

float32, preallocated buffers, in-place ufuncs, ``np.dot`` / ``np.outer`` with ``out=``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..cases import Case, Weights, as_float64


class TunedMLP:
    """The fastest plain-NumPy MLP we know how to write.

    Parameters live in one flat buffer (so an optimizer step is three whole-buffer
    ufunc calls); every intermediate has a preallocated buffer; activations and
    their derivatives are computed in place with ``out=``.

    Parameters
    ----------
    init : [(W, b), ...]
        Initial weights, W of shape (n_out, n_in) as in fastnn.
    activations : list of str
        One per Dense layer: "tanh", "sigmoid", "relu" or "identity".
    loss : {"mse", "cross_entropy"}
    dtype : np.float32 or np.float64
    """

    def __init__(self, init: Weights, activations: Sequence[str], loss: str, dtype) -> None:
        if loss not in ("mse", "cross_entropy"):
            raise ValueError(f"TunedMLP supports loss 'mse' or 'cross_entropy', not {loss!r}")
        self.dtype = np.dtype(dtype)
        self.acts = list(activations)
        self.loss = loss
        self.shapes = [W.shape for W, _ in init]
        total = sum(W.size + b.size for W, b in init)
        self.params = np.empty(total, self.dtype)
        self.grads = np.zeros(total, self.dtype)
        self.W, self.b = self._views(self.params)
        self.dW, self.db = self._views(self.grads)
        for W, b, (W0, b0) in zip(self.W, self.b, init, strict=True):
            W[...] = W0
            b[...] = b0

    def _views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Each layer's W (n_out, n_in) and b (n_out,) as views into ``flat``."""
        Ws, bs, start = [], [], 0
        for n_out, n_in in self.shapes:
            Ws.append(flat[start : start + n_out * n_in].reshape(n_out, n_in))
            start += n_out * n_in
            bs.append(flat[start : start + n_out])
            start += n_out
        return Ws, bs

    def weights(self) -> Weights:
        return as_float64([(W.copy(), b.copy()) for W, b in zip(self.W, self.b, strict=True)])

    # In-place activations (h holds the pre-activation, then the activation) and
    # their derivatives (g *= f'(h), t a scratch buffer like h).
    @staticmethod
    def _activate(act: str, h: np.ndarray) -> None:
        if act == "tanh":
            np.tanh(h, out=h)
        elif act == "sigmoid":  # σ(x) = (1 + tanh(x/2))/2: no overflow, no temporaries
            np.multiply(h, 0.5, out=h)
            np.tanh(h, out=h)
            np.multiply(h, 0.5, out=h)
            np.add(h, 0.5, out=h)
        elif act == "relu":
            np.maximum(h, 0, out=h)

    @staticmethod
    def _derive(act: str, h: np.ndarray, g: np.ndarray, t: np.ndarray, mask: np.ndarray) -> None:
        if act == "tanh":  # 1 − h²
            np.multiply(h, h, out=t)
            np.subtract(1, t, out=t)
            np.multiply(g, t, out=g)
        elif act == "sigmoid":  # h(1 − h)
            np.subtract(1, h, out=t)
            np.multiply(t, h, out=t)
            np.multiply(g, t, out=g)
        elif act == "relu":
            np.greater(h, 0, out=mask)
            np.multiply(g, mask, out=g)

    def fit_persample(self, X: np.ndarray, Y: np.ndarray, learning_rate: float) -> None:
        """One epoch of per-sample SGD over the rows of X, in order."""
        dt = self.dtype.type
        L = len(self.W)
        W, b, acts = self.W, self.b, self.acts
        h = [np.empty(Wl.shape[0], self.dtype) for Wl in W]  # activations
        g = [np.empty(Wl.shape[0], self.dtype) for Wl in W]  # dC/d(pre-activation)
        gs = [np.empty(Wl.shape[0], self.dtype) for Wl in W]  # −lr·g
        t = [np.empty(Wl.shape[0], self.dtype) for Wl in W]
        mask = [np.empty(Wl.shape[0], bool) for Wl in W]
        outer = [np.empty_like(Wl) for Wl in W]
        WT = [Wl.T for Wl in W]
        neg_lr = dt(-learning_rate)
        mse_scale = dt(2.0 / W[-1].shape[0])
        last = L - 1
        for s in range(X.shape[0]):
            a = X[s]
            for i in range(L):
                np.dot(W[i], a, out=h[i])
                np.add(h[i], b[i], out=h[i])
                self._activate(acts[i], h[i])
                a = h[i]
            if self.loss == "mse":
                np.subtract(h[last], Y[s], out=g[last])
                np.multiply(g[last], mse_scale, out=g[last])
            else:  # softmax(z) − y on the logits
                z = h[last]
                np.subtract(z, z.max(), out=g[last])
                np.exp(g[last], out=g[last])
                np.divide(g[last], g[last].sum(), out=g[last])
                np.subtract(g[last], Y[s], out=g[last])
            for i in range(last, -1, -1):
                self._derive(acts[i], h[i], g[i], t[i], mask[i])
                if i > 0:  # the input gradient, with the weights forward used
                    np.dot(WT[i], g[i], out=g[i - 1])
                np.multiply(g[i], neg_lr, out=gs[i])
                np.outer(gs[i], X[s] if i == 0 else h[i - 1], out=outer[i])
                np.add(W[i], outer[i], out=W[i])
                np.add(b[i], gs[i], out=b[i])

    def fit_minibatch(self, X, Y, learning_rate: float, batch_size: int, momentum: float) -> None:
        """One epoch of minibatch SGD with momentum (v = m·v + g; p −= lr·v), in order."""
        dt = self.dtype.type
        L = len(self.W)
        W, b, dW, db, acts = self.W, self.b, self.dW, self.db, self.acts
        B = min(batch_size, X.shape[0])
        H = [np.empty((B, Wl.shape[0]), self.dtype) for Wl in W]
        G = [np.empty((B, Wl.shape[0]), self.dtype) for Wl in W]
        T = [np.empty((B, Wl.shape[0]), self.dtype) for Wl in W]
        M = [np.empty((B, Wl.shape[0]), bool) for Wl in W]
        col = np.empty((B, 1), self.dtype)
        velocity = np.zeros_like(self.params)
        step = np.empty_like(self.params)
        WT = [Wl.T for Wl in W]
        lr, mom = dt(learning_rate), dt(momentum)
        last = L - 1
        for start in range(0, X.shape[0], B):
            Xb, Yb = X[start : start + B], Y[start : start + B]
            m = Xb.shape[0]
            a = Xb
            for i in range(L):
                Hi = H[i][:m]
                np.dot(a, WT[i], out=Hi)
                np.add(Hi, b[i], out=Hi)
                self._activate(acts[i], Hi)
                a = Hi
            Gl, c = G[last][:m], col[:m]
            if self.loss == "mse":
                np.subtract(H[last][:m], Yb, out=Gl)
                np.multiply(Gl, dt(2.0 / (m * Gl.shape[1])), out=Gl)
            else:
                np.max(H[last][:m], axis=1, keepdims=True, out=c)
                np.subtract(H[last][:m], c, out=Gl)
                np.exp(Gl, out=Gl)
                np.sum(Gl, axis=1, keepdims=True, out=c)
                np.divide(Gl, c, out=Gl)
                np.subtract(Gl, Yb, out=Gl)
                np.multiply(Gl, dt(1.0 / m), out=Gl)
            for i in range(last, -1, -1):
                Gi = G[i][:m]
                self._derive(acts[i], H[i][:m], Gi, T[i][:m], M[i][:m])
                np.dot(Gi.T, Xb if i == 0 else H[i - 1][:m], out=dW[i])
                np.sum(Gi, axis=0, out=db[i])
                if i > 0:
                    np.dot(Gi, W[i], out=G[i - 1][:m])
            np.multiply(velocity, mom, out=velocity)
            np.add(velocity, self.grads, out=velocity)
            np.multiply(velocity, lr, out=step)
            np.subtract(self.params, step, out=self.params)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Outputs for the rows of X: probabilities (softmax) with cross-entropy."""
        a = X
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            h = np.empty((X.shape[0], W.shape[0]), self.dtype)
            np.dot(a, W.T, out=h)
            np.add(h, b, out=h)
            self._activate(self.acts[i], h)
            a = h
        if self.loss == "cross_entropy":
            np.subtract(a, a.max(axis=1, keepdims=True), out=a)
            np.exp(a, out=a)
            np.divide(a, a.sum(axis=1, keepdims=True), out=a)
        return a


class TunedCase(Case):
    """numpy-tuned: ``mode`` is "persample", "minibatch" or "predict"."""

    def __init__(
        self, arch, init, X, Y, mode, *, learning_rate=0.01, batch_size=64, momentum=0.9, **kwargs
    ):
        super().__init__("numpy-tuned", units=len(X), **kwargs)
        self.arch, self.init, self.X, self.Y, self.mode = arch, init, X, Y, mode
        self.lr, self.batch, self.momentum = learning_rate, batch_size, momentum

    def reset(self) -> None:
        self.mlp = TunedMLP(self.init, self.arch.activations, self.arch.loss, self.arch.dtype)

    def run(self) -> None:
        if self.mode == "persample":
            self.mlp.fit_persample(self.X, self.Y, self.lr)
        elif self.mode == "minibatch":
            self.mlp.fit_minibatch(self.X, self.Y, self.lr, self.batch, self.momentum)
        else:
            self.out = self.mlp.predict(self.X)

    def result(self):
        return self.out if self.mode == "predict" else self.mlp.weights()
