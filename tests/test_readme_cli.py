"""The README's walk-through of the ``fastnn`` command runs as printed: its Python block
writes iris as CSV files, its shell block trains, evaluates and predicts, and what that
prints has the shape the README shows (numbers aside), with a good test accuracy."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_support import ENV

pytest.importorskip("sklearn")
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastnn.sklearn import FastMLPClassifier

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "### A first model, step by step"
CSV_FILES = ("iris_train.csv", "iris_test.csv")
NUMBER = re.compile(r"[-+]?\d[\d.]*(e[-+]?\d+)?")


def walk_through() -> dict[str, str]:
    """The section's python, bash and text blocks."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    section = text[start : text.index("\n### ", start + len(SECTION))]
    blocks = dict(re.findall(r"^```(\w+)\n(.*?)^```", section, re.MULTILINE | re.DOTALL))
    assert set(blocks) == {"python", "bash", "text"}
    return blocks


def shape(output: str) -> list[str]:
    """The lines without their numbers, and without the first run's compile notice."""
    return [NUMBER.sub("#", line) for line in output.splitlines() if "compil" not in line]


def test_walk_through_runs_as_printed(tmp_path, monkeypatch):
    blocks = walk_through()
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks["python"], "README walk-through", "exec"), {"__name__": "__main__"})
    # The commands as printed, with the installed `fastnn` on PATH.
    path = os.path.dirname(sys.executable) + os.pathsep + ENV.get("PATH", "")
    result = subprocess.run(
        ["bash", "-e", "-c", blocks["bash"]],
        cwd=tmp_path,
        env={**ENV, "PATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert shape(result.stdout) == shape(blocks["text"])
    accuracy = float(re.search(r"^accuracy\s+([\d.]+)$", result.stdout, re.M)[1])
    assert accuracy >= 0.9
    # As good as FastMLPClassifier at the command's defaults, scaled, on the same split.
    (X_tr, y_tr), (X_te, y_te) = (read_iris(tmp_path / name) for name in CSV_FILES)
    reference = make_pipeline(
        StandardScaler(),
        FastMLPClassifier(hidden_layer_sizes=(64, 32), batch_size=32, max_iter=200, random_state=0),
    ).fit(X_tr, y_tr)
    assert accuracy >= reference.score(X_te, y_te) - 0.02


def read_iris(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The features and species of a CSV file the walk-through wrote."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    return np.array([row[:-1] for row in rows], dtype=float), np.array([row[-1] for row in rows])
