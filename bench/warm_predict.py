"""Warm start-up of a prediction: ``fastnn predict`` on a small CSV file against a Python
process that imports scikit-learn, unpickles an ``MLPClassifier`` and predicts the
same file.

Both are whole new processes, timed from start to exit, after one untimed run each
(so the OS file cache and Numba's cache are warm). The systems are timed round-robin,
one run of each per round, so that the drift of a shared machine falls on both
alike; every process is pinned to one thread. Each side's predictions are checked
against the true labels before anything is timed.

Run ``python bench/warm_predict.py [--repeats N] [--json PATH]``; the rows have the
fields of ``fastnn.benchmarks``' rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORKLOAD = "warm-predict-iris-30-rows"
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
SKLEARN_PREDICT = """
import pickle, sys
import numpy as np
with open("mlp.pkl", "rb") as f:
    model = pickle.load(f)
X = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, usecols=range(4))
np.savetxt("sklearn_predictions.csv", model.predict_proba(X), delimiter=",", fmt="%.6g")
with open("sklearn_labels.txt", "w") as f:
    f.write("\\n".join(model.predict(X)))
"""


def prepare(folder: Path) -> dict[str, list[str]]:
    """Write iris (species names) as train and test CSV files, train both models, and
    return each system's prediction command."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    iris = load_iris()
    species = iris.target_names[iris.target]
    X_tr, X_te, y_tr, y_te = train_test_split(
        iris.data, species, test_size=30, random_state=0, stratify=species
    )
    header = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    for name, X, y in [("train.csv", X_tr, y_tr), ("test.csv", X_te, y_te)]:
        with open(folder / name, "w", newline="") as f:
            csv.writer(f).writerows(
                [header, *([*map(repr, x.tolist()), t] for x, t in zip(X, y, strict=True))]
            )
    fastnn = [sys.executable, "-m", "fastnn"]
    subprocess.run(
        [*fastnn, "train", "train.csv", "-q", "-o", "model.npz"], cwd=folder, check=True, env=_env()
    )
    mlp = make_pipeline(StandardScaler(), MLPClassifier((64, 32), max_iter=500, random_state=0))
    with open(folder / "mlp.pkl", "wb") as f:
        pickle.dump(mlp.fit(X_tr, y_tr), f)
    (folder / "sklearn_predict.py").write_text(SKLEARN_PREDICT)
    return {
        "fastnn": [*fastnn, "predict", "model.npz", "test.csv", "-q", "-o", "predictions.csv"],
        "sklearn": [sys.executable, "sklearn_predict.py", "test.csv"],
    }


def _env() -> dict[str, str]:
    return {**os.environ, **THREAD_ENV}


def check(folder: Path) -> dict[str, float]:
    """Each system's accuracy on the test file (both must be good models)."""
    with open(folder / "test.csv", newline="") as f:
        truth = [row[-1] for row in list(csv.reader(f))[1:]]
    with open(folder / "predictions.csv", newline="") as f:
        fast = [row[0] for row in list(csv.reader(f))[1:]]
    slow = (folder / "sklearn_labels.txt").read_text().split("\n")
    return {
        name: float(np.mean(np.array(p) == np.array(truth)))
        for name, p in (("fastnn", fast), ("sklearn", slow))
    }


def run(repeats: int = 7, log=print) -> list[dict]:
    """Time both systems round-robin; return rows as ``fastnn.benchmarks`` writes them."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        commands = prepare(folder)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(repeats + 1):  # round 0 warms up, untimed
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, cwd=folder, check=True, env=_env())
                if round_:
                    times[name].append(time.perf_counter() - start)
        accuracy = check(folder)
    log(f"threads pinned: {' '.join(f'{k}={v}' for k, v in THREAD_ENV.items())}")
    base = statistics.median(times["fastnn"])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        ok = accuracy[name] >= 0.9
        rows.append(
            {
                "workload": WORKLOAD,
                "system": name,
                "unit": "run",
                "units": 1,
                "median_s": median,
                "unit_us": median * 1e6,
                "ratio": median / base,
                "status": "ok" if ok else "mismatch",
                "notes": f"test accuracy {accuracy[name]:.3f}; {len(values)} runs",
            }
        )
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'workload':<28}{'system':<10}{'median':>10}{'ratio':>9}  notes"]
    for r in rows:
        lines.append(
            f"{r['workload']:<28}{r['system']:<10}{r['median_s']:>9.3f}s"
            f"{r['ratio']:>8.2f}x  {r['notes']}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rows = run(args.repeats)
    print(format_rows(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
