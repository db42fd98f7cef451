"""What ``fastnn train`` learns about a table besides the network, kept in the model file.

A ``Preprocessing`` turns the columns of a CSV file (a ``fastnn.tabular.Frame``) into
the matrix a network takes, and the network's outputs back into the target's terms:

* the feature columns, by name and in the training file's order (a file to predict
  may hold them in any order, with other columns besides);
* text feature columns one-hot encoded over the categories seen in training, in
  sorted order (a category not seen in training is an error that names it);
* missing values refused, or (``impute=True``) filled with the training mean of a
  number column or the most frequent value of a text column;
* every number column standardised to mean 0 and standard deviation 1
  (``scale=False``: used as it is); regression targets are used as they are, as
  scikit-learn's ``MLPRegressor`` uses them;
* the task, and for a classifier its class labels as they appeared (text stays text,
  1/2/3 stay 1/2/3).

``to_extra`` gives it as JSON metadata plus float arrays, which ``fastnn.io.save``
stores inside the model file (under the file's checksum); ``from_extra`` reads it back
and checks it.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .tabular import Frame, is_text, missing_mask, number_text

TASKS = ("classification", "regression")
#: An integer target with more distinct values than this, and fewer than
#: ``MIN_PER_CLASS`` rows a value on average, is taken for a regression target.
MAX_INFERRED_CLASSES = 20
MIN_PER_CLASS = 10
FORMAT_VERSION = 1
ARRAYS = ("unit", "center", "scale")


def _label_value(value):
    """A class label as JSON keeps it: str, int (for integer-valued numbers) or float."""
    if isinstance(value, str):
        return value
    value = float(value)
    return int(value) if value.is_integer() else value


def _stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: a unit (the largest magnitude, so no sum overflows), and the mean
    and standard deviation in that unit. Constant columns keep a scale of 1."""
    unit = np.max(np.abs(X), axis=0)
    unit[unit == 0] = 1.0
    center = np.empty(X.shape[1])
    scale = np.empty(X.shape[1])
    for j in range(X.shape[1]):  # one column at a time: no copy of the whole matrix
        col = X[:, j] / unit[j]
        center[j] = col.mean()
        scale[j] = col.std()
    scale[scale == 0] = 1.0
    return unit, center, scale


@dataclass
class Preprocessing:
    """The learned steps between a table and a network (see the module docstring).

    Attributes
    ----------
    features : list of str
        The feature columns, in training order.
    categories : dict of str to list of str
        The categories of each text feature, in the order of its one-hot columns.
    fill : dict of str to float or str
        Every feature's fill value for missing cells when trained with
        ``impute=True``, whether or not its training column had gaps; else empty.
    targets : list of str
        The target column(s).
    task : {"classification", "regression"}
    labels : list of str, int or float
        A classifier's class labels, in the order of its outputs.
    unit, center, scale : ndarray
        Per network input: ``(x / unit - center) / scale`` is what the network sees.
    """

    features: list[str]
    categories: dict[str, list[str]]
    fill: dict[str, float | str]
    targets: list[str]
    task: str
    labels: list = field(default_factory=list)
    unit: np.ndarray = field(default_factory=lambda: np.ones(0))
    center: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))

    # -- learning ----------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        frame: Frame,
        targets: list[str],
        *,
        scale: bool = True,
        impute: bool = False,
        task: str | None = None,
        task_option: str | None = None,
    ) -> tuple[Preprocessing, np.ndarray, np.ndarray, list[str]]:
        """Learn the steps from ``frame``; return them, the network's inputs X and
        targets Y, and notes for the user (e.g. how the task was chosen).

        Y holds one-hot rows for a classifier, the targets as they are for a regression.
        ``task_option`` is the option that chose ``task`` (``"--loss mse"``, say), named
        when the target does not fit it; by default ``--task TASK``.
        """
        for name in targets:
            frame.column(name)  # names the columns if there is none
        features = [name for name in frame.names if name not in targets]
        if not features:
            raise ValueError(f"{frame.path}: every column is a target; there are no features")
        notes: list[str] = []
        fill: dict[str, float | str] = {}
        categories: dict[str, list[str]] = {}
        for name in features:
            col = frame.column(name)
            missing = missing_mask(col)
            if missing.any() and not impute:
                line = frame.lines[np.argmax(missing)]
                raise ValueError(
                    f"{frame.path}, line {line}, column {name!r}: a missing value; fill "
                    "it in, or pass --impute to use the training mean (numbers) or the "
                    "most frequent value (text)"
                )
            if impute:
                # Every column gets a fill value, not only those with gaps here: a file
                # to predict may have gaps anywhere.
                present = col[~missing]
                if present.size == 0:
                    raise ValueError(f"{frame.path}: column {name!r} has no values at all")
                if is_text(col):
                    counts = Counter(present.tolist())
                    fill[name] = min(counts, key=lambda k: (-counts[k], k))
                else:
                    unit = float(np.max(np.abs(present))) or 1.0
                    fill[name] = float(unit * np.mean(present / unit))
            if is_text(col):
                _check_not_mixed(frame, name, col)
                values = set(col[~missing].tolist())
                if name in fill:
                    values.add(fill[name])
                categories[name] = sorted(values)
        prep = cls(features, categories, fill, list(targets), "regression")
        X = prep._encode(frame)
        if scale:
            prep.unit, prep.center, prep.scale = _stats(X)
            # One-hot columns stay 0/1.
            for lo, hi in prep._category_spans().values():
                prep.unit[lo:hi], prep.center[lo:hi], prep.scale[lo:hi] = 1.0, 0.0, 1.0
        else:
            width = X.shape[1]
            prep.unit, prep.center, prep.scale = np.ones(width), np.zeros(width), np.ones(width)
        prep._standardise(X)
        Y = prep._fit_targets(frame, task, notes, task_option or f"--task {task}")
        return prep, X, Y, notes

    def _fit_targets(
        self, frame: Frame, task: str | None, notes: list, task_option: str
    ) -> np.ndarray:
        columns = [frame.column(name) for name in self.targets]
        for name, col in zip(self.targets, columns, strict=True):
            missing = missing_mask(col)
            if missing.any():
                raise ValueError(
                    f"{frame.path}, line {frame.lines[np.argmax(missing)]}: the target {name!r} "
                    "is missing; remove the rows without a target"
                )
        inferred, note = self._infer_task(frame, columns)
        if task is None:
            task = inferred
            notes += [note] if note else []
        elif task == "classification" and inferred == "regression" and not note:
            raise ValueError(
                f"{frame.path}: the target {self.targets[0]!r} holds continuous values (e.g. "
                f"{_first_fraction(columns[0])!r}), but {task_option} trains a classifier, "
                f"which needs class labels: use {_other_option(task_option)}"
            )
        self.task = task
        if task == "classification":
            if len(columns) > 1:
                raise ValueError(
                    f"{frame.path}: {len(columns)} targets make a regression only; classify "
                    "one target at a time"
                )
            col = columns[0]
            values, index = np.unique(col, return_inverse=True)
            if len(values) < 2:
                raise ValueError(
                    f"{frame.path}: the target {self.targets[0]!r} has a single class, "
                    f"{_label_value(values[0])!r}; a classifier needs two or more"
                )
            self.labels = [_label_value(v) for v in values]
            return np.eye(len(values))[index.reshape(-1)]
        for name, col in zip(self.targets, columns, strict=True):
            if is_text(col):
                raise ValueError(
                    f"{frame.path}: the target {name!r} holds text labels (e.g. {col[0]!r}), "
                    f"but {task_option} trains a regression, which needs numbers: use "
                    f"{_other_option(task_option)}"
                )
        Y = np.column_stack(columns).astype(np.float64)
        if not np.all(np.isfinite(Y)):
            raise ValueError(
                f"{frame.path}: the target has inf values; every target must be finite"
            )
        return Y

    def _infer_task(self, frame: Frame, columns: list[np.ndarray]) -> tuple[str, str | None]:
        """The task scikit-learn's ``type_of_target`` gives the target, except that an
        integer target with many values and few rows each is taken for a regression
        (with a note saying so)."""
        if any(is_text(col) for col in columns):
            return "classification", None
        if len(columns) > 1:
            return "regression", None
        from sklearn.utils.multiclass import type_of_target

        col = columns[0]
        if not np.all(np.isfinite(col)):
            raise ValueError(f"{frame.path}: the target {self.targets[0]!r} has inf values")
        kind = type_of_target(col)
        if kind not in ("binary", "multiclass"):
            return "regression", None
        n_values = len(np.unique(col))
        if n_values > MAX_INFERRED_CLASSES and len(col) < MIN_PER_CLASS * n_values:
            return "regression", (
                f"the target {self.targets[0]!r} has {n_values} distinct whole numbers, "
                f"fewer than {MIN_PER_CLASS} rows each: training a regression (--task "
                "classification to classify)"
            )
        return "classification", None

    # -- applying ----------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return len(self.features) + sum(len(c) - 1 for c in self.categories.values())

    @property
    def n_outputs(self) -> int:
        return len(self.labels) if self.task == "classification" else len(self.targets)

    def _category_spans(self) -> dict[str, tuple[int, int]]:
        spans, j = {}, 0
        for name in self.features:
            width = len(self.categories[name]) if name in self.categories else 1
            if name in self.categories:
                spans[name] = (j, j + width)
            j += width
        return spans

    def transform(self, frame: Frame) -> np.ndarray:
        """The network's inputs for the rows of ``frame`` (its columns selected by name)."""
        absent = [name for name in self.features if name not in frame.names]
        if absent:
            raise ValueError(
                f"{frame.path} has no column {absent[0]!r}, which the model was trained on "
                f"(it needs {self.features}); its columns are {[n for n in frame.names if n]}"
            )
        X = self._encode(frame)
        self._standardise(X)
        return X

    def _standardise(self, X: np.ndarray) -> None:
        with np.errstate(over="raise", invalid="raise"):
            try:
                X /= self.unit
                X -= self.center
                X /= self.scale
            except FloatingPointError:
                raise ValueError(
                    "a feature value is too large to standardise; check the data's scale"
                ) from None

    def _encode(self, frame: Frame) -> np.ndarray:
        """The feature matrix before standardisation: numbers, one-hot categories."""
        X = np.zeros((frame.n_rows, self.n_inputs))
        j = 0
        for name in self.features:
            col = frame.column(name)
            missing = missing_mask(col)
            if missing.any():
                if name not in self.fill:
                    raise ValueError(
                        f"{frame.path}, line {frame.lines[np.argmax(missing)]}, column "
                        f"{name!r}: a missing value; {self._why_no_fill()}"
                    )
                col = col.copy()
                col[missing] = self.fill[name]
            if name in self.categories:
                j = self._one_hot(frame, name, col, X, j)
                continue
            if is_text(col):
                bad = next(i for i, v in enumerate(col) if not _is_number(v))
                raise ValueError(
                    f"{frame.path}, line {frame.lines[bad]}, column {name!r}: {col[bad]!r} is "
                    "not a number, but the model was trained on numbers in this column"
                )
            if not np.all(np.isfinite(col)):
                bad = int(np.argmax(~np.isfinite(col)))
                raise ValueError(
                    f"{frame.path}, line {frame.lines[bad]}, column {name!r}: {col[bad]!r} is "
                    "not a finite number"
                )
            X[:, j] = col
            j += 1
        return X

    def _why_no_fill(self) -> str:
        if not self.fill:
            return "the model was trained without --impute, so every value must be given"
        # A model file from before --impute stored a value for every column.
        return (
            "the model stores no fill value for this column (--impute filled only the "
            "columns with gaps in training); fill it in, or train again with --impute"
        )

    def _one_hot(self, frame: Frame, name: str, col: np.ndarray, X: np.ndarray, j: int) -> int:
        categories = self.categories[name]
        if not is_text(col):
            col = np.frompyfunc(number_text, 1, 1)(col)
        index = {category: k for k, category in enumerate(categories)}
        codes = np.fromiter((index.get(v, -1) for v in col), dtype=np.int64, count=len(col))
        if (codes < 0).any():
            bad = int(np.argmax(codes < 0))
            raise ValueError(
                f"{frame.path}, line {frame.lines[bad]}, column {name!r}: the category "
                f"{col[bad]!r} was not seen in training (those are {categories}); the model "
                "cannot place it"
            )
        X[np.arange(len(col)), j + codes] = 1.0
        return j + len(categories)

    def probabilities(self, P: np.ndarray) -> np.ndarray:
        """A classifier network's outputs as one probability column per label."""
        if P.shape[1] == 1 and len(self.labels) == 2:  # a logistic output
            return np.column_stack([1.0 - P[:, 0], P[:, 0]])
        return P

    def labels_of(self, index: np.ndarray) -> np.ndarray:
        """Class labels (an object array) for class indices."""
        return np.array(self.labels, dtype=object)[index]

    def class_index(self, frame: Frame) -> np.ndarray:
        """The class index of each row's target, for evaluating a classifier."""
        col = frame.column(self.targets[0])
        lookup = {str(label): k for k, label in enumerate(self.labels)}
        if not is_text(col):
            col = np.frompyfunc(number_text, 1, 1)(col)
        codes = np.fromiter((lookup.get(str(v), -1) for v in col), np.int64, count=len(col))
        if (codes < 0).any():
            bad = int(np.argmax(codes < 0))
            raise ValueError(
                f"{frame.path}, line {frame.lines[bad]}: the target {col[bad]!r} is not one of "
                f"the model's classes {self.labels}"
            )
        return codes

    # -- storing -----------------------------------------------------------------
    def to_extra(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON metadata and float arrays, for ``fastnn.io.save(..., extra=...)``."""
        meta = {
            "version": FORMAT_VERSION,
            "features": self.features,
            "categories": self.categories,
            "fill": self.fill,
            "targets": self.targets,
            "task": self.task,
            "labels": self.labels,
        }
        arrays = {name: np.ascontiguousarray(getattr(self, name), np.float64) for name in ARRAYS}
        return meta, arrays

    @classmethod
    def from_extra(cls, meta, arrays: dict[str, np.ndarray], n_in: int, n_out: int):
        """Rebuild from ``to_extra``'s output, checking every field (and that it fits a
        network of ``n_in`` inputs and ``n_out`` outputs); ValueError if anything is off."""
        try:
            prep = cls._checked(meta, arrays)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"its preprocessing is invalid ({exc})") from None
        outputs_ok = prep.n_outputs == n_out or (len(prep.labels) == 2 and n_out == 1)
        if prep.n_inputs != n_in or not outputs_ok:
            raise ValueError(
                f"its preprocessing ({prep.n_inputs} inputs, {prep.n_outputs} outputs) does "
                f"not fit its network ({n_in} inputs, {n_out} outputs)"
            )
        return prep

    @classmethod
    def _checked(cls, meta, arrays: dict[str, np.ndarray]) -> Preprocessing:
        if not isinstance(meta, dict) or meta.get("version") != FORMAT_VERSION:
            raise ValueError(f"version {meta.get('version') if isinstance(meta, dict) else meta!r}")
        features, targets = meta["features"], meta["targets"]
        categories, fill, labels = meta["categories"], meta["fill"], meta["labels"]
        if not (_strings(features) and _strings(targets) and features and targets):
            raise ValueError("features and targets must be non-empty lists of names")
        if not isinstance(categories, dict) or not all(
            k in features and _strings(v) and v for k, v in categories.items()
        ):
            raise ValueError("categories must map features to lists of names")
        if not isinstance(fill, dict) or not all(
            k in features and (isinstance(v, str) or _finite(v)) for k, v in fill.items()
        ):
            raise ValueError("fill must map features to values")
        if meta["task"] not in TASKS or not isinstance(labels, list):
            raise ValueError(f"task {meta['task']!r}")
        if not all(isinstance(v, str) or _finite(v) for v in labels):
            raise ValueError("labels must be names or numbers")
        prep = cls(features, categories, fill, targets, meta["task"], labels)
        if set(arrays) != set(ARRAYS):
            raise ValueError(f"arrays {sorted(arrays)}, expected {sorted(ARRAYS)}")
        for name in ARRAYS:
            arr = arrays[name]
            if arr.dtype != np.float64 or arr.ndim != 1 or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite float64 values")
            setattr(prep, name, arr)
        widths = {
            "unit": prep.n_inputs,
            "center": prep.n_inputs,
            "scale": prep.n_inputs,
        }
        for name, width in widths.items():
            if getattr(prep, name).shape != (width,):
                raise ValueError(f"{name} has {getattr(prep, name).shape[0]} values, not {width}")
        if np.any(prep.unit == 0) or np.any(prep.scale == 0):
            raise ValueError("a scale is zero")
        return prep


def _other_option(task_option: str) -> str:
    """The option that asks for the other task than ``task_option`` does."""
    if task_option.startswith("--loss"):
        return "--loss mse" if "entropy" in task_option else "--loss cross_entropy"
    return "--task classification" if "regression" in task_option else "--task regression"


def _strings(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) for v in values)


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _first_fraction(col: np.ndarray):
    fractional = col[col != np.round(col)]
    return float(fractional[0]) if fractional.size else float(col[0])


def _looks_numeric(value) -> bool:
    """A number, also one written with a decimal comma (``4,8``)."""
    return _is_number(value) or (
        value.count(",") == 1 and "." not in value and _is_number(value.replace(",", "."))
    )


def _check_not_mixed(frame: Frame, name: str, col: np.ndarray) -> None:
    """A column of numbers with a few text cells is more likely a typo than categories:
    refuse it rather than one-hot encode every number."""
    numbers = [v is not None and _looks_numeric(v) for v in col]
    if any(numbers):
        bad = next((i for i, v in enumerate(col) if v is not None and not numbers[i]), None)
        if bad is not None:
            raise ValueError(
                f"{frame.path}, line {frame.lines[bad]}, column {name!r}: {col[bad]!r} is not "
                "a number, but other values of the column are; fix the cell (a column of "
                "categories must hold no plain numbers)"
            )
