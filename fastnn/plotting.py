"""PNG figures: a decision surface, loss curves and benchmark ratios (matplotlib).

matplotlib is an optional dependency (the ``plot`` and ``cli`` extras); it is
imported when a figure is drawn. Figures are built with matplotlib's
object-oriented API and rendered by the Agg canvas, so nothing here needs a display
or changes pyplot's global backend. Every figure has a fixed size in pixels (the
``*_SIZE`` constants, at ``DPI``) and is written atomically: a failed write leaves
any earlier file at that path as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .files import atomic_write
from .validation import install_hint

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .network import Network

#: Dots per inch of every figure.
DPI = 100
#: Figure sizes in inches (width, height); in pixels they are these times DPI.
SURFACE_SIZE = (5.0, 5.0)
LOSS_PANEL_SIZE = (5.0, 4.0)
BENCH_SIZE = (8.0, 4.5)

INSTALL_HINT = install_hint("plot")


def pixel_size(size: tuple[float, float], panels: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of a figure of ``size`` inches with ``panels`` side by side."""
    return round(size[0] * panels * DPI), round(size[1] * DPI)


def _figure(size: tuple[float, float]) -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"plotting needs matplotlib: {INSTALL_HINT}") from exc
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path) -> None:
    """Render ``fig`` as a PNG of exactly its size in pixels and write it atomically."""
    # No bbox_inches="tight": it would change the pixel size.
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))


def plot_decision_surface(
    net: Network,
    X,
    y,
    path,
    *,
    resolution: int = 200,
    margin: float = 0.5,
    title: str = "Decision surface",
) -> None:
    """Draw a two-feature network's output over the plane, with the samples on top.

    Parameters
    ----------
    net : Network
        Takes 2 features and has one output (e.g. the XOR network).
    X : array, shape (n_samples, 2)
    y : array, shape (n_samples,) or (n_samples, 1)
        The samples' targets, used to colour them.
    path : str or os.PathLike
        The PNG file to write, ``SURFACE_SIZE`` at ``DPI``.
    resolution : int
        Grid points per axis.
    margin : float
        How far the grid reaches beyond the samples.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2 or net.n_features != 2 or net.n_outputs != 1:
        raise ValueError(
            "a decision surface needs a network with 2 inputs and 1 output and X of shape "
            f"(n_samples, 2); got a {net.n_features}-input, {net.n_outputs}-output network "
            f"and X of shape {X.shape}"
        )
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    gx, gy = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    z = net.predict(grid).reshape(gx.shape)

    fig = _figure(SURFACE_SIZE)
    ax = fig.add_subplot()
    filled = ax.contourf(gx, gy, z, levels=20, cmap="coolwarm")
    ax.contour(gx, gy, z, levels=[0.5], colors="black", linewidths=1.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", edgecolors="black", s=120, vmin=0, vmax=1)
    fig.colorbar(filled, ax=ax, label="network output")
    ax.set(xlabel="x₁", ylabel="x₂", title=title)
    save_png(fig, path)


def plot_loss_curves(panels: Mapping[str, Mapping[str, Sequence[float]]], path) -> None:
    """Draw loss curves, one panel per run, one line per history key.

    Parameters
    ----------
    panels : mapping of title to history
        A history is what ``Network.fit`` returns, e.g.
        ``{"loss": [...], "val_loss": [...]}``.
    path : str or os.PathLike
        The PNG file to write: ``len(panels)`` panels of ``LOSS_PANEL_SIZE`` side by
        side, at ``DPI`` (see ``pixel_size``).
    """
    if not panels:
        raise ValueError("plot_loss_curves needs at least one history to draw")
    width, height = LOSS_PANEL_SIZE
    fig = _figure((width * len(panels), height))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, history) in zip(axes, panels.items(), strict=True):
        positive = True
        for key, values in history.items():
            values = np.asarray(values, dtype=np.float64)
            epochs = np.arange(1, values.size + 1)
            ax.plot(
                epochs,
                values,
                label=key.replace("_", " "),
                marker="." if values.size < 30 else None,
            )
            positive = positive and bool(np.all(values > 0))
        if positive:
            ax.set_yscale("log")  # losses span orders of magnitude
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(xlabel="epoch", ylabel="loss", title=title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    save_png(fig, path)


def plot_benchmark_ratios(rows: Sequence[Mapping], path) -> None:
    """Draw a bar chart of each benchmark row's ``ratio``, grouped by workload.

    Parameters
    ----------
    rows : sequence of mapping
        Rows as ``fastnn.benchmarks.run`` returns them, with the keys "workload",
        "system" and "ratio" (its median time / fastnn's). Rows without a ratio, or
        whose "status" is not "ok" (skipped, mismatch), are left out.
    path : str or os.PathLike
        The PNG file to write, ``BENCH_SIZE`` at ``DPI``.
    """
    rows = [r for r in rows if r.get("ratio") is not None and r.get("status", "ok") == "ok"]
    if not rows:
        raise ValueError("no benchmark rows with a ratio to plot")
    workloads = list(dict.fromkeys(str(row["workload"]) for row in rows))
    systems = list(dict.fromkeys(str(row["system"]) for row in rows))
    ratio = {(str(r["workload"]), str(r["system"])): float(r["ratio"]) for r in rows}

    fig = _figure(BENCH_SIZE)
    ax = fig.add_subplot()
    width = 0.8 / len(systems)
    x = np.arange(len(workloads))
    for i, system in enumerate(systems):
        heights = [ratio.get((w, system), np.nan) for w in workloads]
        ax.bar(x + (i - (len(systems) - 1) / 2) * width, heights, width, label=system)
    values = np.array(list(ratio.values()))
    if np.all(values > 0) and values.max() / values.min() > 20:
        ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(x, workloads, rotation=20, ha="right")
    ax.set(ylabel="time / fastnn's time (lower is faster)", title="Benchmarks")
    ax.legend(fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    save_png(fig, os.fspath(path))
