"""The digits race: wall-clock time to 97 % test accuracy, each system's best settings."""

from __future__ import annotations

import numpy as np

from .. import peers
from ..cases import Workload
from ..data import Arch, digits_split, initial_weights
from ..sizes import sizes_of

#: Each system's fastest settings to 97 % on digits, from a sweep on this benchmark's
#: split and seeds, one thread: hidden tanh or ReLU; fastnn's per-sample learning rate
#: 0.03, 0.1 or 0.2; Adam's 0.001, 0.003, 0.01 (and 0.03 for torch), at batch 32 for
#: scikit-learn and 32 to 256 for torch, whose per-batch overhead favours large ones.
RACE_SETTINGS = {
    "fastnn": {"hidden": "relu", "learning_rate": 0.1},
    "sklearn": {"hidden": "relu", "learning_rate": 0.01, "batch": 32},
    "torch": {"hidden": "tanh", "learning_rate": 0.03, "batch": 256},
}


def race_workload(size: str = "full", threads: int = 1, settings=None) -> Workload:
    """Digits 64-64-10, float32: wall-clock time until the test accuracy reaches 97 %,
    fastnn (per-sample SGD) against scikit-learn's and PyTorch's Adam, each with its
    own best settings (``RACE_SETTINGS``)."""
    s = sizes_of(size)
    settings = RACE_SETTINGS if settings is None else settings
    Xtr, ytr, Xte, yte = digits_split()
    data = (Xtr.astype(np.float32), ytr, Xte.astype(np.float32), yte)
    target, cap = s.race_target, s.race_max_epochs

    def arch(system: str) -> Arch:
        return Arch((64, 64, 10), settings[system]["hidden"], "identity", "cross_entropy")

    def fastnn():
        a = arch("fastnn")
        lr = settings["fastnn"]["learning_rate"]
        return peers.fastnn.FastnnRace(a, initial_weights(a), data, target, cap, learning_rate=lr,
                          threads=threads)  # fmt: skip

    def sklearn():
        opts = dict(settings["sklearn"])
        return peers.sklearn.SklearnRace(
            data, target, cap, hidden=64, activation=opts.pop("hidden"), **opts
        )

    def torch():
        a = arch("torch")
        opts = {k: v for k, v in settings["torch"].items() if k != "hidden"}
        return peers.torch.TorchRace(a, initial_weights(a), data, target, cap, **opts)

    def compare(got: float, want: float) -> str | None:
        if got < target:
            return f"test accuracy {got:.3f} never reached {target} in {cap} epochs"
        return None

    return Workload(
        name=f"digits-race-to-{target:.0%}",
        group="digits-race",
        unit="run",
        builders={"fastnn": fastnn, "torch": torch, "sklearn": sklearn},
        compare=compare,
        oracle="sklearn",
        repeats=s.repeats,
        notes=f"{len(ytr)} training / {len(yte)} test samples, float32, 64-64-10; the "
        "time includes scoring the test set after every epoch",
    )


#: Samples of the minibatch cross-check: after about a hundred momentum steps, one


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [race_workload(size, threads)]
