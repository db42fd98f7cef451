"""Warm start-up of a prediction from the command line: ``fastnn predict`` on a small
CSV file against a Python process that imports scikit-learn, unpickles an
``MLPClassifier`` and predicts the same file.

Both are whole new processes, timed from start to exit. Each system has a folder of
its own with the same iris files (species names, 120 training and 30 test rows) and
its own model, trained when the case is built. The runner's untimed first run warms
the OS file cache and Numba's cache, and checks the system's test accuracy.
"""

from __future__ import annotations

import csv
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..cases import Case, Unavailable, Workload, optional
from ..pinning import child_environment
from ..sizes import sizes_of

#: Test rows predicted by each run.
TEST_ROWS = 30
#: The lowest test accuracy that counts as a working model (both reach 0.93 or more).
MIN_ACCURACY = 0.9

_HEADER = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]

# scikit-learn's own way to keep a model is a pickle: this is the peer's idiom, and the
# file is the one this benchmark has just written.
_SKLEARN_PREDICT = """\
import pickle, sys
import numpy as np
with open("mlp.pkl", "rb") as f:
    model = pickle.load(f)
X = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, usecols=range(4))
with open("labels.txt", "w") as f:
    f.write("\\n".join(model.predict(X)))
"""


def _write_iris(folder: Path) -> list[str]:
    """iris as train.csv and test.csv in ``folder``; returns the test labels."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    iris = load_iris()
    species = iris.target_names[iris.target]
    X_tr, X_te, y_tr, y_te = train_test_split(
        iris.data, species, test_size=TEST_ROWS, random_state=0, stratify=species
    )
    for name, X, y in [("train.csv", X_tr, y_tr), ("test.csv", X_te, y_te)]:
        with open(folder / name, "w", newline="") as f:
            rows = ([*map(repr, x.tolist()), t] for x, t in zip(X, y, strict=True))
            csv.writer(f).writerows([_HEADER, *rows])
    return [str(t) for t in y_te]


def _run(command: list[str], folder: Path, env: dict[str, str], what: str) -> None:
    proc = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def _fastnn(folder: Path, env: dict[str, str]) -> tuple[list[str], Callable[[], list[str]]]:
    """Train with ``fastnn train``; the predict command, and how to read its labels."""
    fastnn = [sys.executable, "-m", "fastnn"]
    _run([*fastnn, "train", "train.csv", "-q", "-o", "model.npz"], folder, env, "fastnn train")

    def labels() -> list[str]:
        with open(folder / "predictions.csv", newline="") as f:
            return [row[0] for row in list(csv.reader(f))[1:]]

    command = [*fastnn, "predict", "model.npz", "test.csv", "-q", "-o", "predictions.csv"]
    return command, labels


def _sklearn(folder: Path, env: dict[str, str]) -> tuple[list[str], Callable[[], list[str]]]:
    """Fit and pickle a scaled ``MLPClassifier``; the predict command, and its labels."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = np.loadtxt(folder / "train.csv", delimiter=",", skiprows=1, usecols=range(4))
    with open(folder / "train.csv", newline="") as f:
        y = [row[-1] for row in list(csv.reader(f))[1:]]
    mlp = make_pipeline(StandardScaler(), MLPClassifier((64, 32), max_iter=500, random_state=0))
    with open(folder / "mlp.pkl", "wb") as f:
        pickle.dump(mlp.fit(data, y), f)
    (folder / "predict.py").write_text(_SKLEARN_PREDICT)
    return [
        sys.executable,
        "predict.py",
        "test.csv",
    ], lambda: (folder / "labels.txt").read_text().split("\n")


class CommandRun(Case):
    """A prediction command in a fresh process, timed from start to exit, in a
    temporary folder of its own that ``prepare`` fills with a trained model.

    ``result`` is the test accuracy of the last run's labels.
    """

    def __init__(self, system: str, prepare, threads: int) -> None:
        super().__init__(system, units=1)
        if optional("sklearn") is None:  # the data, the peer, and fastnn's CSV reading
            raise Unavailable("scikit-learn is not installed")
        self._dir = tempfile.TemporaryDirectory(prefix="fastnn-bench-cli-")
        try:
            self.folder = Path(self._dir.name)
            self.env = child_environment(threads)
            self.truth = _write_iris(self.folder)
            self.command, self.labels = prepare(self.folder, self.env)
        except BaseException:
            self._dir.cleanup()
            raise

    def run(self) -> None:
        _run(self.command, self.folder, self.env, f"{self.system} predict")

    def result(self) -> float:
        got = self.labels()
        accuracy = float(np.mean(np.array(got) == np.array(self.truth))) if got else 0.0
        self.notes = f"test accuracy {accuracy:.3f}; wall time of the whole process"
        return accuracy

    def close(self) -> None:
        self._dir.cleanup()


def _accurate(got: float, want: float) -> str | None:
    if got < MIN_ACCURACY:
        return f"test accuracy {got:.3f}, below {MIN_ACCURACY}: not a working model"
    return None


def cli_workload(size: str = "full", threads: int = 1) -> Workload:
    """A warm ``fastnn predict`` on 30 iris rows against scikit-learn's unpickled
    ``MLPClassifier`` in a fresh Python process, each timed from start to exit."""
    s = sizes_of(size)
    return Workload(
        name=f"startup-predict-iris-{TEST_ROWS}-rows",
        group="startup-predict",
        unit="run",
        builders={
            "fastnn": lambda: CommandRun("fastnn", _fastnn, threads),
            "sklearn": lambda: CommandRun("sklearn", _sklearn, threads),
        },
        compare=_accurate,
        oracle="sklearn",
        repeats=s.repeats,
        notes="`fastnn predict model.npz test.csv` against `python predict.py test.csv` "
        "(import scikit-learn, unpickle a 64-32 MLPClassifier, predict), warm caches, "
        f"children pinned to {threads} thread(s)",
    )


def workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """This family's workloads at ``size`` (see ``SIZE_TABLE``) on ``threads`` threads."""
    return [cli_workload(size, threads)]
