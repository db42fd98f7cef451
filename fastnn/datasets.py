"""Data sets: the ones that come with fastnn, and readers for a user's CSV and .npz files.

Bundled data
------------
``load_digits`` reads ``fastnn/data/digits.npz``, a copy of the handwritten-digits
data set as shipped with scikit-learn (``sklearn.datasets.load_digits``): 1797 8×8
images with pixel values 0..16 and their labels 0..9. scikit-learn is distributed
under the BSD 3-Clause license; the data are a copy of the test set of the UCI ML
"Optical Recognition of Handwritten Digits" data set (E. Alpaydin, C. Kaynak, 1998).
Nothing is downloaded at run time.

User files
----------
``read_table`` reads a CSV file with a header row, or a ``.npz`` archive with the
arrays ``X`` (and ``y``). Every problem (a missing file, a cell that is not a number,
a row of the wrong length, an unknown column) raises ``ValueError`` or
``FileNotFoundError`` with a message that names the file, the line and the column.
Files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from importlib import resources

import numpy as np

from .validation import check_seed

#: Suffixes ``read_table`` understands.
FORMATS = (".csv", ".npz")


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The four XOR samples, X of shape (4, 2) and Y of shape (4, 1), as float64."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    return X, Y


def load_digits(scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The bundled handwritten digits.

    Parameters
    ----------
    scale : bool
        Divide the pixel values (0..16) by 16, so the features lie in [0, 1].

    Returns
    -------
    X : ndarray, shape (1797, 64), float64
        One flattened 8×8 image per row.
    y : ndarray, shape (1797,), int64
        The digit, 0..9.
    """
    with resources.files("fastnn.data").joinpath("digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as data:
            X = data["X"].astype(np.float64)
            y = data["y"].astype(np.int64)
    if scale:
        X /= 16.0
    return X, y


def stratified_split(
    y, test_size: float = 0.25, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train/test split that keeps each class's share in both parts.

    Each class sends round(``test_size`` · its count) of its samples, drawn at
    random, to the test part (the split ``train_test_split(..., stratify=y)`` of
    scikit-learn makes, up to the rounding and the draw).

    Parameters
    ----------
    y : array-like, shape (n_samples,)
        The class labels.
    test_size : float, default 0.25
        The fraction of each class that goes to the test part, in (0, 1).
    seed : int or None, default 0
        Seeds the draw; the same seed gives the same split.

    Returns
    -------
    train, test : ndarray of int64
        Indices into ``y``, each in random order.

    Examples
    --------
    >>> X, y = load_digits()
    >>> train, test = stratified_split(y, test_size=0.25, seed=0)
    >>> len(train), len(test)
    (1347, 450)
    """
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array of labels, got shape {labels.shape}")
    if isinstance(test_size, bool) or not isinstance(test_size, int | float | np.floating):
        raise TypeError(f"test_size={test_size!r} must be a number in (0, 1), e.g. 0.25")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size={test_size!r} must be in (0, 1), e.g. 0.25")
    rng = np.random.default_rng(check_seed(seed))
    test = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test.append(members[: round(test_size * members.size)])
    in_test = np.zeros(labels.size, dtype=bool)
    in_test[np.concatenate(test)] = True
    order = rng.permutation(labels.size)  # no part sorted by class
    return order[~in_test[order]].astype(np.int64), order[in_test[order]].astype(np.int64)


@dataclass
class Table:
    """Features and (optionally) targets read from a file.

    Attributes
    ----------
    X : ndarray, shape (n_samples, n_features), float64
    y : ndarray or None
        The target column, shape (n_samples,), or for a .npz the array ``y`` as
        stored; None when there is no target.
    feature_names : list of str
    target_name : str or None
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_name: str | None


def _check_file(path: str) -> str:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory, not a data file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"{path}: unsupported file type {suffix or '(none)'!r}: pass a .csv file with a "
            "header row, or a .npz file with arrays X and y"
        )
    return suffix


def _read_csv(path: str) -> tuple[list[str], np.ndarray]:
    """The header and the numbers of a CSV file in which every cell is a number."""
    from .tabular import is_text, read_csv

    frame = read_csv(path)
    for position, name in enumerate(frame.names, start=1):
        if not name:
            raise ValueError(f"{path}, line 1: column {position} has an empty name")
    # The first bad cell in file order: the earliest line over all columns.
    bad = None
    for name, col in zip(frame.names, frame.columns, strict=True):
        if is_text(col):
            flags = np.array([v is None or not _is_number(v) for v in col])
        else:
            flags = np.isnan(col)
        if flags.any():
            row = int(np.argmax(flags))
            if bad is None or frame.lines[row] < frame.lines[bad[0]]:
                bad = (row, name, col[row])
    if bad is not None:
        row, name, cell = bad
        missing = cell is None or not isinstance(cell, str)
        what = "is empty (a missing value)" if missing else "is not a number"
        cell = "" if missing else cell
        raise ValueError(
            f"{path}, line {frame.lines[row]}, column {name!r}: {cell!r} {what}; every cell "
            "must be a number (encode categories as integers first)"
        )
    return frame.names, np.column_stack(frame.columns)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _read_npz(path: str, need_y: bool) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError(f"{path}: not a .npz archive")
            names = list(data.files)
            wanted = ["X", "y"] if need_y else ["X"]
            missing = [name for name in wanted if name not in names]
            if missing:
                raise ValueError(
                    f"{path}: no array {missing[0]!r} (it holds {names}); save the features "
                    "as X and the targets as y, e.g. np.savez(path, X=X, y=y)"
                )
            X = data["X"]
            y = data["y"] if "y" in names else None
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    except ValueError as exc:
        if str(exc).startswith(path):
            raise
        # e.g. an object array, which allow_pickle=False refuses.
        raise ValueError(f"{path}: cannot read it as plain numeric arrays ({exc})") from None
    for name, arr in (("X", X), ("y", y)):
        if arr is not None and arr.dtype.kind not in "biuf":
            raise ValueError(f"{path}: array {name} has dtype {arr.dtype}; it must be numeric")
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{path}: X has shape {X.shape}; it must be (n_samples, n_features)")
    if y is not None and (y.ndim not in (1, 2) or y.shape[0] != X.shape[0]):
        raise ValueError(
            f"{path}: X has {X.shape[0]} samples but y has shape {y.shape}; pass one target "
            "(row) per sample"
        )
    return X.astype(np.float64, copy=False), y


def read_table(path, target: str | None = None, need_target: bool = True) -> Table:
    """Read features (and a target) from a CSV or .npz file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` file whose first row names the columns, every other cell a number;
        or a ``.npz`` file with the arrays ``X`` (n_samples, n_features) and ``y``.
    target : str, optional
        The CSV column holding the target. With ``need_target`` the default is the
        last column; without it, the named column is left out of the features (and
        returned as ``y``) and by default every column is a feature.
    need_target : bool
        Whether a target is required (training) or optional (prediction).

    Returns
    -------
    Table

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is malformed, or ``target`` names no column.
    """
    path = os.fspath(path)
    suffix = _check_file(path)
    if suffix == ".npz":
        if target is not None:
            raise ValueError(
                f"--target {target!r} applies to CSV files; a .npz file holds its targets "
                "in the array y"
            )
        X, y = _read_npz(path, need_target)
        names = [f"x{i}" for i in range(X.shape[1])]
        return Table(X, y, names, "y" if y is not None else None)

    header, data = _read_csv(path)
    if target is None and need_target:
        target = header[-1]
    if target is None:
        return Table(data, None, header, None)
    if target not in header:
        raise ValueError(f"{path}: no column named {target!r}; the columns are {header}")
    col = header.index(target)
    features = [name for name in header if name != target]
    if not features:
        raise ValueError(f"{path}: the only column is the target {target!r}; there are no features")
    X = np.delete(data, col, axis=1)
    return Table(np.ascontiguousarray(X), data[:, col].copy(), features, target)
