"""The ``fastnn`` command on CSV files as spreadsheets and scripts export them (decimal
commas, a delimiter at the end of every line, an index column), on gaps that only the
file to predict has, and on where its output goes: every run a subprocess."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from cli_support import ENV, assert_user_error, fastnn_cmd

#: A small network and few epochs: these tests are about reading, not learning.
QUICK = ["--layers", "4", "--epochs", "3"]
HEADER = ["a", "b", "c", "label"]


def table(rows: int = 60, seed: int = 0) -> list[list]:
    """Rows of three number features and a text label."""
    rng = np.random.default_rng(seed)
    X = np.round(rng.standard_normal((rows, 3)), 3)
    return [[*x.tolist(), "yes" if x[0] + x[1] > 0 else "no"] for x in X]


def write(path, header, rows, delimiter=",", decimal=".", end="") -> None:
    """A CSV file; ``decimal=","`` writes numbers with a decimal comma, ``end`` is
    appended to every line (a trailing delimiter)."""
    cells = [
        [str(v).replace(".", decimal) if isinstance(v, float) else str(v) for v in row]
        for row in [header, *rows]
    ]
    with open(path, "w", newline="") as f:
        for row in cells:
            f.write(delimiter.join(row) + end + "\n")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    write(folder / "plain.csv", HEADER, table())
    fastnn_cmd("train", "plain.csv", *QUICK, "-o", "plain.npz", cwd=folder)
    fastnn_cmd("predict", "plain.npz", "plain.csv", "-o", "plain_p.csv", cwd=folder)
    return folder


def test_decimal_commas_with_semicolons_or_tabs_are_numbers(folder):
    write(folder / "comma.csv", HEADER, table(), delimiter=";", decimal=",")
    # The same model as from the plain file: four number columns, not categories.
    fastnn_cmd("train", "comma.csv", *QUICK, "-o", "comma.npz", cwd=folder)
    expected = (folder / "plain_p.csv").read_text()
    fastnn_cmd("predict", "comma.npz", "plain.csv", "-o", "p1.csv", cwd=folder)
    assert (folder / "p1.csv").read_text() == expected
    write(folder / "tabs.csv", HEADER, table(), delimiter="\t", decimal=",")
    for data in ("comma.csv", "tabs.csv"):
        fastnn_cmd("predict", "plain.npz", data, "-o", "p2.csv", cwd=folder)
        assert (folder / "p2.csv").read_text() == expected, data
    result = fastnn_cmd("evaluate", "plain.npz", "comma.csv", cwd=folder)
    assert result.stdout.startswith("accuracy")


def test_a_decimal_comma_column_with_a_text_cell_is_refused(folder):
    rows = table()
    rows[4][1] = "n.a."
    write(folder / "mixed.csv", HEADER, rows, delimiter=";", decimal=",")
    result = fastnn_cmd("train", "mixed.csv", *QUICK, "-o", "mixed.npz", cwd=folder, check=False)
    assert_user_error(result, "line 6", "'b'", "'n.a.' is not a number")


def test_impute_covers_gaps_in_columns_that_had_none_in_training(folder):
    rows = table()
    rows[3][1] = ""  # a gap in b only
    write(folder / "gap_b.csv", HEADER, rows)
    test_rows = table(seed=1)
    test_rows[2][0] = "NA"  # a gap in a, which training never lacked
    write(folder / "gap_a.csv", HEADER, test_rows)
    fastnn_cmd("train", "gap_b.csv", "--impute", *QUICK, "-o", "imputed.npz", cwd=folder)
    fastnn_cmd("predict", "imputed.npz", "gap_a.csv", "-o", "p3.csv", cwd=folder)
    with open(folder / "p3.csv", newline="") as f:
        assert len(list(csv.reader(f))) == len(test_rows) + 1
    result = fastnn_cmd("predict", "plain.npz", "gap_a.csv", cwd=folder, check=False)
    assert_user_error(result, "line 4", "'a'", "trained without --impute")


def test_index_col_refuses_a_named_first_column(folder):
    result = fastnn_cmd(
        "train", "plain.csv", "--index-col", *QUICK, "-o", "x.npz", cwd=folder, check=False
    )
    assert_user_error(result, "--index-col", "named 'a'")
    assert not (folder / "x.npz").exists()
    result = fastnn_cmd("predict", "plain.npz", "plain.csv", "--index-col", cwd=folder, check=False)
    assert_user_error(result, "--index-col", "named 'a'")


def test_a_delimiter_at_the_end_of_every_line_is_ignored(folder):
    write(folder / "trailing.csv", HEADER, table(), delimiter=";", end=";")
    fastnn_cmd("train", "trailing.csv", *QUICK, "-o", "trailing.npz", cwd=folder)
    fastnn_cmd("predict", "trailing.npz", "trailing.csv", "-o", "p4.csv", cwd=folder)
    assert (folder / "p4.csv").read_text() == (folder / "plain_p.csv").read_text()
    # An unnamed last column with values is no trailing delimiter: name it.
    rows = [[*row, 7] for row in table()]
    write(folder / "unnamed_last.csv", [*HEADER, ""], rows)
    result = fastnn_cmd("train", "unnamed_last.csv", "-o", "x.npz", cwd=folder, check=False)
    assert_user_error(result, "column 5 has no name", "name it")
    assert "--index-col" not in result.stderr


def test_a_closed_pipe_ends_the_command_quietly(folder):
    write(folder / "big.csv", HEADER, table(rows=5000))
    for command in (
        ["predict", "plain.npz", "big.csv", "-o", "-"],
        ["evaluate", "plain.npz", "big.csv"],
    ):
        child = subprocess.Popen(
            [sys.executable, "-m", "fastnn", *command],
            cwd=folder,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        child.stdout.close()  # as `| head` does once it has its lines
        _, stderr = child.communicate(timeout=300)
        assert stderr == b"", stderr
        assert child.returncode == 141, command


def test_predict_to_standard_output(folder):
    result = fastnn_cmd("predict", "plain.npz", "plain.csv", "-o", "-", cwd=folder)
    assert result.stdout == (folder / "plain_p.csv").read_text()
    assert not (folder / "-").exists()
    result = fastnn_cmd("train", "plain.csv", *QUICK, "-o", "-", cwd=folder, check=False)
    assert_user_error(result, "-o -", "standard output", "file name")
    assert not (folder / "-").exists()


@pytest.mark.parametrize(
    ("loss", "data", "fragments"),
    [
        ("mse", "plain.csv", ["--loss mse trains a regression", "'label'", "text labels"]),
        ("cross_entropy", "real.csv", ["--loss cross_entropy trains a classifier", "--loss mse"]),
    ],
)
def test_a_loss_that_does_not_fit_the_target_is_named(folder, loss, data, fragments):
    rows = [[*row[:3], row[0] * 1.5 + 0.25] for row in table()]
    write(folder / "real.csv", HEADER, rows)
    result = fastnn_cmd(
        "train", data, "--loss", loss, *QUICK, "-o", "x.npz", cwd=folder, check=False
    )
    assert_user_error(result, *fragments)
