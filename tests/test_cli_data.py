"""The ``fastnn`` command on scikit-learn's bundled data sets written out as ordinary CSV
files, as a new user would try it: train, evaluate and predict as subprocesses, with
scores held against fastnn's scikit-learn estimators in a scaled pipeline on the same
split, and labels that come back exactly as they went in."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from cli_support import ENV, assert_user_error, fastnn_cmd

datasets = pytest.importorskip("sklearn.datasets")
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from fastnn.sklearn import FastMLPClassifier, FastMLPRegressor  # noqa: E402

#: The same settings for the command and for the estimators it is compared with.
SETTINGS = ["--layers", "32", "--learning-rate", "0.01", "--epochs", "200", "--batch-size", "32"]
ESTIMATOR = dict(
    hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=200, batch_size=32, random_state=0
)
#: The estimator at the settings of ``fastnn train`` with no options (its seed is 0).
DEFAULT_ESTIMATOR = dict(
    hidden_layer_sizes=(64, 32), learning_rate_init=0.001, max_iter=200, batch_size=32,
    random_state=0,
)  # fmt: skip


def write_csv(path, header, rows, delimiter=",", bom=False) -> None:
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        csv.writer(f, delimiter=delimiter).writerows([header, *rows])


def split(loader, label=None):
    """The data set's train/test split (stratified for classes), rows as lists."""
    data = loader()
    y = data.target
    stratify = y if label is not None else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        data.data, y, test_size=0.25, random_state=0, stratify=stratify
    )
    return data, X_tr, X_te, y_tr, y_te


def rows_of(X, y, label) -> list[list]:
    return [[*map(repr, map(float, x)), label(t)] for x, t in zip(X, y, strict=True)]


def scores(stdout: str) -> dict[str, float]:
    """``fastnn evaluate``'s printed scores."""
    return {m[1]: float(m[2]) for m in re.finditer(r"^(\w+)\s+([-\d.]+)$", stdout, re.M)}


def read_predictions(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def classify(folder, name, loader, label, names=None):
    """Train, evaluate and predict with the command; return its test accuracy, the
    reference pipeline's, the predictions and the true test labels."""
    data, X_tr, X_te, y_tr, y_te = split(loader, label)
    header = [*(names or data.feature_names), "target"]
    write_csv(folder / f"{name}_train.csv", header, rows_of(X_tr, y_tr, label))
    write_csv(folder / f"{name}_test.csv", header, rows_of(X_te, y_te, label))
    fastnn_cmd(
        "train",
        f"{name}_train.csv",
        "--target",
        "target",
        *SETTINGS,
        "-o",
        f"{name}.npz",
        cwd=folder,
    )
    result = fastnn_cmd("evaluate", f"{name}.npz", f"{name}_test.csv", cwd=folder)
    fastnn_cmd("predict", f"{name}.npz", f"{name}_test.csv", "-o", f"{name}_p.csv", cwd=folder)
    reference = make_pipeline(StandardScaler(), FastMLPClassifier(**ESTIMATOR))
    reference.fit(X_tr, y_tr)
    header, rows = read_predictions(folder / f"{name}_p.csv")
    truth = [label(t) for t in y_te]
    return scores(result.stdout)["accuracy"], reference.score(X_te, y_te), header, rows, truth


def at_defaults(folder, name, loader) -> tuple[float, float]:
    """The command's test accuracy with no training options, on the files ``classify``
    wrote, and the reference pipeline's with the same hidden layers."""
    fastnn_cmd(
        "train", f"{name}_train.csv", "--target", "target", "-o", f"{name}_defaults.npz",
        cwd=folder,
    )  # fmt: skip
    result = fastnn_cmd("evaluate", f"{name}_defaults.npz", f"{name}_test.csv", cwd=folder)
    _, X_tr, X_te, y_tr, y_te = split(loader, label=True)
    reference = make_pipeline(StandardScaler(), FastMLPClassifier(**DEFAULT_ESTIMATOR))
    reference.fit(X_tr, y_tr)
    return scores(result.stdout)["accuracy"], reference.score(X_te, y_te)


def assert_within_2_points(acc: float, ref: float) -> None:
    """The command scores as the reference pipeline, within 2 points either way."""
    assert abs(acc - ref) <= 0.02, (acc, ref)


def check_round_trip(header, rows, truth, labels) -> None:
    """Predictions are labels as they were written, with one probability per label."""
    assert header == ["prediction", *(f"probability_{label}" for label in labels)]
    predicted = [row[0] for row in rows]
    assert set(predicted) <= set(labels)
    assert np.mean(np.array(predicted) == np.array(truth)) > 0.8
    P = np.array([[float(v) for v in row[1:]] for row in rows])
    np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-5)  # six significant digits
    assert all(v == f"{float(v):.6g}" for row in rows for v in row[1:])
    assert [labels[k] for k in P.argmax(axis=1)] == predicted


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("datasets")


def test_iris_with_species_names(folder):
    names = list(datasets.load_iris().target_names)
    acc, ref, header, rows, truth = classify(folder, "iris", datasets.load_iris, lambda t: names[t])
    assert_within_2_points(acc, ref)
    check_round_trip(header, rows, truth, sorted(names))
    # With He's initial weights the defaults scored 0.947 here, against 1.0.
    assert_within_2_points(*at_defaults(folder, "iris", datasets.load_iris))


def test_unscaled_wine(folder):
    acc, ref, *_ = classify(folder, "wine", datasets.load_wine, lambda t: int(t))
    assert_within_2_points(acc, ref)
    assert acc > 0.9
    acc, ref = at_defaults(folder, "wine", datasets.load_wine)
    assert_within_2_points(acc, ref)
    assert acc > 0.9


def test_breast_cancer_with_text_labels(folder):
    names = list(datasets.load_breast_cancer().target_names)  # malignant, benign
    acc, ref, header, rows, truth = classify(
        folder,
        "cancer",
        datasets.load_breast_cancer,
        lambda t: names[t],
        names=[n.replace(" ", "_") for n in datasets.load_breast_cancer().feature_names],
    )
    assert_within_2_points(acc, ref)
    check_round_trip(header, rows, truth, sorted(names))
    assert_within_2_points(*at_defaults(folder, "cancer", datasets.load_breast_cancer))


def test_labels_1_2_3_stay_1_2_3(folder):
    _, _, header, rows, truth = classify(
        folder, "wine123", datasets.load_wine, lambda t: int(t) + 1
    )
    check_round_trip(header, rows, [str(t) for t in truth], ["1", "2", "3"])


def test_diabetes_is_a_regression(folder):
    data, X_tr, X_te, y_tr, y_te = split(datasets.load_diabetes)
    header = [*data.feature_names, "progression"]
    write_csv(folder / "diabetes_train.csv", header, rows_of(X_tr, y_tr, float))
    write_csv(folder / "diabetes_test.csv", header, rows_of(X_te, y_te, float))
    train = fastnn_cmd("train", "diabetes_train.csv", *SETTINGS, "-o", "diabetes.npz", cwd=folder)
    assert "training a regression" in train.stdout  # whole numbers, but hundreds of them
    result = scores(fastnn_cmd("evaluate", "diabetes.npz", "diabetes_test.csv", cwd=folder).stdout)
    reference = make_pipeline(StandardScaler(), FastMLPRegressor(**ESTIMATOR))
    reference.fit(X_tr, y_tr)
    assert result["r2"] >= reference.score(X_te, y_te) - 0.05, result
    assert result["r2"] > 0.25 and set(result) == {"rmse", "mae", "r2"}
    fastnn_cmd("predict", "diabetes.npz", "diabetes_test.csv", "-o", "d.csv", cwd=folder)
    head, rows = read_predictions(folder / "d.csv")
    assert head == ["prediction"] and len(rows) == len(y_te)
    predicted = np.array([float(r[0]) for r in rows])
    rmse = np.sqrt(np.mean((predicted - y_te) ** 2))
    assert rmse == pytest.approx(result["rmse"], rel=1e-3)


def test_columns_in_another_order_and_other_separators(folder):
    if not (folder / "iris.npz").exists():
        test_iris_with_species_names(folder)
    with open(folder / "iris_test.csv", newline="") as f:
        rows = list(csv.reader(f))
    order = [4, 2, 0, 3, 1]  # target first, features shuffled
    write_csv(
        folder / "shuffled.csv",
        [rows[0][i] for i in order],
        [[r[i] for i in order] for r in rows[1:]],
    )
    write_csv(folder / "semicolon.csv", rows[0], rows[1:], delimiter=";", bom=True)
    write_csv(folder / "tabs.csv", rows[0], rows[1:], delimiter="\t")
    expected = (folder / "iris_p.csv").read_text()
    for name in ("shuffled.csv", "semicolon.csv", "tabs.csv"):
        fastnn_cmd("predict", "iris.npz", name, "-o", "again.csv", cwd=folder)
        assert (folder / "again.csv").read_text() == expected, name
    # Trained on the semicolon file, the model is the same as from the comma file.
    write_csv(folder / "train_semicolon.csv", *_rows(folder / "iris_train.csv"), delimiter=";")
    fastnn_cmd(
        "train",
        "train_semicolon.csv",
        "--target",
        "target",
        *SETTINGS,
        "-o",
        "iris_semicolon.npz",
        cwd=folder,
    )
    fastnn_cmd("predict", "iris_semicolon.npz", "iris_test.csv", "-o", "semi_p.csv", cwd=folder)
    assert (folder / "semi_p.csv").read_text() == expected


def _rows(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_text_column_and_missing_values(folder):
    rng = np.random.default_rng(0)
    X, y = datasets.load_iris(return_X_y=True)
    colours = np.array(["red", "green", "blue"])[(y + (rng.random(len(y)) < 0.2)) % 3]
    rows = [[*map(repr, x), c, int(t)] for x, c, t in zip(X.tolist(), colours, y, strict=True)]
    rows[5][1] = ""  # a missing number
    rows[9][4] = "NA"  # a missing category
    header = ["sl", "sw", "pl", "pw", "colour", "species"]
    write_csv(folder / "mixed.csv", header, rows)
    result = fastnn_cmd("train", "mixed.csv", "-o", "mixed.npz", cwd=folder, check=False)
    assert_user_error(result, "line 7", "'sw'", "missing value", "--impute")
    fastnn_cmd("train", "mixed.csv", "--impute", "--epochs", "50", "-o", "mixed.npz", cwd=folder)
    fastnn_cmd("predict", "mixed.npz", "mixed.csv", "-o", "mixed_p.csv", cwd=folder)
    head, predicted = read_predictions(folder / "mixed_p.csv")
    assert head == ["prediction", "probability_0", "probability_1", "probability_2"]
    assert np.mean([int(r[0]) for r in predicted] == y) > 0.9
    rows[3][4] = "purple"
    write_csv(folder / "unseen.csv", header, rows)
    result = fastnn_cmd("predict", "mixed.npz", "unseen.csv", cwd=folder, check=False)
    assert_user_error(result, "line 5", "'colour'", "'purple'", "not seen in training")


def test_pandas_index_column(folder):
    X, y = datasets.load_iris(return_X_y=True)
    rows = [[i, *map(repr, x), int(t)] for i, (x, t) in enumerate(zip(X.tolist(), y, strict=True))]
    write_csv(folder / "indexed.csv", ["", "a", "b", "c", "d", "label"], rows)
    result = fastnn_cmd("train", "indexed.csv", "-o", "indexed.npz", cwd=folder, check=False)
    assert_user_error(result, "column 1 has no name", "--index-col")
    fastnn_cmd(
        "train", "indexed.csv", "--index-col", "--epochs", "5", "-o", "indexed.npz", cwd=folder
    )
    fastnn_cmd("predict", "indexed.npz", "indexed.csv", "--index-col", "-o", "i.csv", cwd=folder)
    assert read_predictions(folder / "i.csv")[0][0] == "prediction"


def test_predict_imports_no_numba_or_scipy(folder):
    if not (folder / "iris.npz").exists():
        test_iris_with_species_names(folder)
    code = (
        "import sys; from fastnn.cli import main; "
        "status = main(['predict', 'iris.npz', 'iris_test.csv', '-q', '-o', 'n.csv']); "
        "print(status, 'numba' in sys.modules, 'sklearn' in sys.modules, "
        "'scipy.signal' in sys.modules, 'scipy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # SciPy (its signal module alone took most of a second) is for conv and sparse
    # inputs and for Numba's BLAS: a dense model's predict needs none of it.
    assert out.stdout.split() == ["0", "False", "False", "False", "False"], out.stderr


@pytest.mark.slow
def test_cold_start_says_it_is_compiling(folder, tmp_path):
    """With an empty Numba cache, or one without this dtype's kernels, train says it
    compiles, then how long it took."""
    X, y = datasets.load_iris(return_X_y=True)
    write_csv(
        tmp_path / "iris.csv",
        ["a", "b", "c", "d", "y"],
        [[*x, int(t)] for x, t in zip(X.tolist(), y, strict=True)],
    )
    env = {**ENV, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    run = [sys.executable, "-m", "fastnn", "train", "iris.csv", "--epochs", "2", "-o", "m.npz"]
    cold = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert cold.returncode == 0, cold.stderr
    lines = cold.stdout.splitlines()
    assert "compiling kernels, first run only…" in lines
    assert re.search(r"^compiled in \d+\.\d s$", cold.stdout, re.M)
    warm = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert "compiling" not in warm.stdout and "compiled" not in warm.stdout
    assert os.listdir(tmp_path / "cache")
    # float64 kernels on disk do not make a float32 run warm: it compiles its own.
    run32 = [*run, "--dtype", "float32"]
    cold = subprocess.run(run32, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert cold.returncode == 0, cold.stderr
    assert "compiling kernels, first run only…" in cold.stdout.splitlines()
    warm = subprocess.run(run32, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert "compiling" not in warm.stdout
