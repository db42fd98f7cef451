"""torch: ``torch.optim`` over samples or batches, inference, and the digits race.

torch is imported when a case is built, not with this module.
"""

from __future__ import annotations

import numpy as np

from ..cases import Case, RaceCase, Unavailable, Weights, as_float64, optional
from ..data import Arch


def _torch():
    """The torch module; Unavailable when it is not installed."""
    torch = optional("torch")
    if torch is None:
        raise Unavailable("torch is not installed")
    return torch


def _torch_model(torch, arch: Arch, init: Weights):
    acts = {"tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}
    dtype = getattr(torch, np.dtype(arch.dtype).name)
    modules = []
    for (W, b), act in zip(init, arch.activations, strict=True):
        linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
        modules.append(linear)
        if act != "identity":
            modules.append(acts[act]())
    return torch.nn.Sequential(*modules)


class TorchCase(Case):
    """torch: ``torch.optim.SGD`` over samples or batches, or inference."""

    def __init__(
        self, arch, init, X, Y, mode, *, learning_rate=0.01, batch_size=64, momentum=0.9, **kwargs
    ):
        super().__init__("torch", units=len(X), **kwargs)
        self.torch = _torch()
        self.arch, self.init, self.mode = arch, init, mode
        self.X = self.torch.from_numpy(X)
        # Class indices for cross-entropy: torch's fast path, the same loss as one-hot.
        self.Y = self.torch.from_numpy(
            Y.argmax(axis=1) if arch.loss == "cross_entropy" and mode == "minibatch" else Y
        )
        self.lr, self.batch, self.momentum = learning_rate, batch_size, momentum

    def reset(self) -> None:
        torch = self.torch
        self.model = _torch_model(torch, self.arch, self.init)
        momentum = self.momentum if self.mode == "minibatch" else 0.0
        self.opt = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=momentum)
        if self.arch.loss == "mse":
            self.loss_fn = torch.nn.MSELoss()
        else:
            self.loss_fn = torch.nn.CrossEntropyLoss()

    def run(self) -> None:
        torch, model, opt, loss_fn, X, Y = (
            self.torch,
            self.model,
            self.opt,
            self.loss_fn,
            self.X,
            self.Y,
        )
        if self.mode == "predict":
            with torch.inference_mode():
                out = model(X)
                self.out = torch.softmax(out, dim=1) if self.arch.loss != "mse" else out
            return
        step = 1 if self.mode == "persample" else self.batch
        for start in range(0, X.shape[0], step):
            x = X[start] if step == 1 else X[start : start + step]
            y = Y[start] if step == 1 else Y[start : start + step]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()

    def result(self):
        if self.mode == "predict":
            return self.out.numpy()
        linears = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        return as_float64([(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears])


class TorchRace(RaceCase):
    def __init__(self, arch, init, data, target, max_epochs, *, learning_rate, batch, **kw):
        super().__init__("torch", data, target, max_epochs, **kw)
        self.torch = _torch()
        self.arch, self.init, self.lr, self.batch = arch, init, learning_rate, batch
        Xtr, ytr = data[:2]
        self.X = self.torch.from_numpy(Xtr)
        self.y = self.torch.from_numpy(ytr.astype(np.int64))
        self.describe = f"adam, batch {batch}, lr {learning_rate}, {arch.label}"

    def reset(self) -> None:
        torch = self.torch
        self.model = _torch_model(torch, self.arch, self.init)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.gen = torch.Generator().manual_seed(0)

    def epoch(self) -> None:
        torch, model, opt = self.torch, self.model, self.opt
        order = torch.randperm(self.X.shape[0], generator=self.gen)
        for start in range(0, len(order), self.batch):
            idx = order[start : start + self.batch]
            opt.zero_grad(set_to_none=True)
            self.loss_fn(model(self.X[idx]), self.y[idx]).backward()
            opt.step()

    def predict_classes(self, X):
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(X)).argmax(dim=1).numpy()
