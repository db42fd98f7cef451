"""Scores of a model on labelled data, as ``fastnn evaluate`` prints them, and their plots.

The metrics are scikit-learn's (``sklearn.metrics``); the figures are drawn with
``fastnn.plotting``'s helpers (fixed pixel size, written atomically).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .plotting import _figure, save_png

#: Size in inches of the evaluation figures.
EVALUATION_SIZE = (5.5, 5.0)


def classification_scores(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict:
    """Accuracy, balanced accuracy, macro F1 and the confusion matrix (rows: true class,
    columns: predicted class, in label order) of class indices ``predicted``."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
    )

    labels = np.arange(n_classes)
    return {
        "accuracy": float(accuracy_score(true, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(true, predicted)),
        "macro_f1": float(
            f1_score(true, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "confusion_matrix": confusion_matrix(true, predicted, labels=labels),
    }


def regression_scores(true: np.ndarray, predicted: np.ndarray) -> dict:
    """RMSE, MAE and R² (averaged over the targets when there are several)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": float(np.sqrt(mean_squared_error(true, predicted))),
        "mae": float(mean_absolute_error(true, predicted)),
        "r2": float(r2_score(true, predicted)),
    }


def format_scores(scores: dict, labels: Sequence) -> str:
    """The scores as ``fastnn evaluate`` prints them."""
    lines = [f"{name:<18} {scores[name]:.4f}" for name in scores if name != "confusion_matrix"]
    if "confusion_matrix" in scores:
        names = [str(label) for label in labels]
        width = max(6, *(len(n) for n in names), len(str(scores["confusion_matrix"].max())))
        lines.append("confusion matrix (rows: true, columns: predicted)")
        lines.append(" " * (width + 1) + " ".join(f"{n:>{width}}" for n in names))
        for name, row in zip(names, scores["confusion_matrix"], strict=True):
            lines.append(f"{name:>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence, path) -> None:
    """Draw a confusion matrix (counts in every cell) as a PNG of ``EVALUATION_SIZE``."""
    fig = _figure(EVALUATION_SIZE)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    names = [str(label) for label in labels]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    threshold = matrix.max() / 2
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "black",
        )
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    fig.colorbar(image, ax=ax)
    save_png(fig, path)


def plot_predicted_vs_true(true: np.ndarray, predicted: np.ndarray, path) -> None:
    """Scatter the predicted values against the true ones (first target), with y = x."""
    fig = _figure(EVALUATION_SIZE)
    ax = fig.subplots()
    t, p = true.reshape(len(true), -1)[:, 0], predicted.reshape(len(predicted), -1)[:, 0]
    ax.scatter(t, p, s=12, alpha=0.7)
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1)
    ax.set(xlabel="true", ylabel="predicted", title="predicted vs true")
    ax.grid(True, alpha=0.3)
    save_png(fig, path)
