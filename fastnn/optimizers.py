"""Optimizers and learning-rate schedules for ``Network.fit``.

An optimizer carries its settings and its state (buffers shaped like the network's
parameter buffer), so passing the same object to several ``fit`` calls continues
where the last one stopped. The learning rate itself is ``fit``'s ``learning_rate``,
shaped over epochs by a schedule.
"""

from __future__ import annotations

import numpy as np

from .codes import ADAM as ADAM_KIND
from .codes import MOMENTUM as MOMENTUM_KIND
from .codes import SGD as SGD_KIND
from .validation import check_positive_float


class Optimizer:
    """Base class. ``state`` maps buffer names to arrays shaped like the parameters;
    ``step`` counts the updates made so far."""

    name: str = ""

    def __init__(self) -> None:
        self.state: dict[str, np.ndarray] = {}
        # The count lives in an array the kernels update in place, with the state
        # buffers: no copy of it can fall behind them.
        self._step = np.zeros(1, dtype=np.int64)

    @property
    def step(self) -> int:
        """The number of updates made so far (Adam's bias correction counts them)."""
        return int(self._step[0])

    @step.setter
    def step(self, value: int) -> None:
        self._step[0] = value

    @property
    def kind(self) -> int:
        raise NotImplementedError

    def hyper(self) -> np.ndarray:
        """[momentum, nesterov, beta1, beta2, epsilon, weight_decay] for the kernels."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """The settings, as JSON-able values; ``from_config`` rebuilds the optimizer."""
        raise NotImplementedError

    def buffers(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The two state buffers and the step counter, (re)created to match ``params``."""
        for key in ("a", "b"):
            buf = self.state.get(key)
            if buf is None or buf.shape != params.shape or buf.dtype != params.dtype:
                self.state = {"a": np.zeros_like(params), "b": np.zeros_like(params)}
                self.step = 0
                break
        return self.state["a"], self.state["b"], self._step

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Parameters
    ----------
    momentum : float
        0 for plain SGD; otherwise v = momentum·v + g and p -= lr·v (PyTorch's form).
    nesterov : bool
        Use p -= lr·(g + momentum·v) instead.
    """

    name = "sgd"

    def __init__(self, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__()
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum={momentum!r} must be in [0, 1), e.g. 0.9")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0, e.g. momentum=0.9")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    @property
    def kind(self) -> int:
        return MOMENTUM_KIND if self.momentum > 0 else SGD_KIND

    def hyper(self) -> np.ndarray:
        return np.array([self.momentum, float(self.nesterov), 0, 0, 0, 0], dtype=np.float64)

    def get_config(self) -> dict:
        return {"name": self.name, "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam, with AdamW's decoupled weight decay when ``weight_decay`` > 0.

    Parameters
    ----------
    beta1, beta2 : float
        Decay rates of the first and second moment estimates.
    epsilon : float
        Added to √v̂ for stability.
    weight_decay : float
        Decoupled decay: each step first scales the parameters by (1 − lr·weight_decay).
    """

    name = "adam"

    def __init__(
        self,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        for label, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{label}={value!r} must be in [0, 1)")
        if float(weight_decay) < 0:
            raise ValueError(f"weight_decay={weight_decay!r} must be >= 0")
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.epsilon = check_positive_float("epsilon", epsilon)
        self.weight_decay = float(weight_decay)

    @property
    def kind(self) -> int:
        return ADAM_KIND

    def hyper(self) -> np.ndarray:
        return np.array(
            [0, 0, self.beta1, self.beta2, self.epsilon, self.weight_decay], dtype=np.float64
        )

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "epsilon": self.epsilon,
            "weight_decay": self.weight_decay,
        }


#: optimizer names accepted by ``fit(optimizer=...)``
OPTIMIZERS = {
    "sgd": lambda: SGD(),
    "momentum": lambda: SGD(momentum=0.9),
    "nesterov": lambda: SGD(momentum=0.9, nesterov=True),
    "adam": lambda: Adam(),
    "adamw": lambda: Adam(weight_decay=0.01),
}


def get_optimizer(spec: str | Optimizer) -> Optimizer:
    """An optimizer from a name in ``OPTIMIZERS`` or an Optimizer object (returned as is)."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec in OPTIMIZERS:
        return OPTIMIZERS[spec]()
    raise ValueError(
        f"unknown optimizer {spec!r}: use one of {sorted(OPTIMIZERS)} or an object such "
        "as fastnn.optimizers.Adam(beta1=0.9)"
    )


def resolve_optimizer(spec: str | Optimizer | None, current: Optimizer | None) -> Optimizer:
    """The optimizer a ``fit(optimizer=spec)`` runs, given the network's ``current``
    one: None continues ``current`` (plain SGD if there is none); a name continues
    ``current`` if it has that name and its settings, and starts a fresh one
    otherwise; an object is used as it is."""
    if spec is None:
        return current if current is not None else SGD()
    if isinstance(spec, str) and current is not None and current.name == spec:
        fresh = get_optimizer(spec)
        if fresh.get_config() == current.get_config():
            return current
    return get_optimizer(spec)


def from_config(config: dict) -> Optimizer:
    """Rebuild an optimizer from ``Optimizer.get_config()`` (its state is not included)."""
    settings = dict(config)
    name = settings.pop("name", None)
    classes = {"sgd": SGD, "adam": Adam}
    if name not in classes:
        raise ValueError(f"unknown optimizer name {name!r} in config: use 'sgd' or 'adam'")
    return classes[name](**settings)


class Schedule:
    """The learning rate of each epoch (counted from 0) from the base rate."""

    def __call__(self, base: float, epoch: int) -> float:
        raise NotImplementedError


class Constant(Schedule):
    """The base rate throughout."""

    def __call__(self, base: float, epoch: int) -> float:
        return base


class StepDecay(Schedule):
    """base·gamma^⌊epoch / step_size⌋: multiply by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int = 10, gamma: float = 0.5) -> None:
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size={step_size!r} must be a positive integer")
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"gamma={gamma!r} must be in (0, 1]")
        self.step_size = step_size
        self.gamma = float(gamma)

    def __call__(self, base: float, epoch: int) -> float:
        return base * self.gamma ** (epoch // self.step_size)


class InverseScaling(Schedule):
    """base / (epoch + 1)^power_t, scikit-learn's "invscaling" counted in epochs."""

    def __init__(self, power_t: float = 0.5) -> None:
        self.power_t = check_positive_float("power_t", power_t)

    def __call__(self, base: float, epoch: int) -> float:
        return base / (epoch + 1) ** self.power_t


SCHEDULES = {"constant": Constant, "step": StepDecay, "invscaling": InverseScaling}


def get_schedule(spec: str | Schedule) -> Schedule:
    """A schedule from a name in ``SCHEDULES`` or a Schedule object."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str) and spec in SCHEDULES:
        return SCHEDULES[spec]()
    raise ValueError(
        f"unknown lr_schedule {spec!r}: use one of {sorted(SCHEDULES)} or an object such "
        "as fastnn.optimizers.StepDecay(step_size=10, gamma=0.5)"
    )
