"""Predict on 16,384 rows of a 784-256-128-10 float32 network: fastnn's ordered
forward pass (every output summed in input order, so a row's result never depends on
its position) against the BLAS forward pass it replaced, and against PyTorch.

The BLAS pass is kept here, for the comparison only: one ``np.dot`` per layer and
block, as ``forward_batch`` ran before. Systems are timed round-robin in one process,
every runtime pinned to ``--threads``; prints medians, GFLOP/s and ratios.

    python bench/predict_row_order.py --threads 1 --repeats 15
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np

from fastnn import benchmarks

SIZES = (784, 256, 128, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=16384)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args()
    with benchmarks.pinned_threads(args.threads) as report:
        print("threads:", report)
        run(args.rows, args.repeats, np.dtype(args.dtype).type, args.threads)


def _blas_forward():
    """The previous forward pass: BLAS products, feature-major blocks."""
    from fastnn.kernels.config import serial
    from fastnn.kernels.engine import _block, _forward_cols, _transpose

    @serial
    def forward(kinds, n_in, n_out, p_off, a_off, cfg, hyp, params, X, Z, acts, block):
        n = X.shape[0]
        last = kinds.size - 1
        for start in range(0, n, block):
            rows = min(block, n - start)
            _forward_cols(kinds, n_in, n_out, p_off, a_off, hyp, params,
                          X[start : start + rows], acts, rows, block)  # fmt: skip
            dst = Z[start : start + rows]
            _transpose(_block(acts, block * a_off[last], n_out[last], rows), dst)

    return forward


def run(rows: int, repeats: int, dtype, threads: int) -> None:
    import fastnn as fn

    rng = np.random.default_rng(0)
    layers = [fn.Dense(SIZES[0], SIZES[1]), fn.ReLU(), fn.Dense(SIZES[1], SIZES[2]), fn.ReLU(),
              fn.Dense(SIZES[2], SIZES[3])]  # fmt: skip
    net = fn.Network(layers, loss="mse", dtype=dtype, seed=0, threads=threads)
    X = rng.standard_normal((rows, SIZES[0])).astype(dtype)
    p = net._plan
    blas = _blas_forward()
    block = 256
    acts = np.empty(block * p.n_acts, dtype)
    Z_blas = np.empty((rows, SIZES[-1]), dtype)

    def run_blas():
        blas(*p.arrays, net.params, X, Z_blas, acts, block)
        return Z_blas

    systems = {"fastnn": lambda: net.predict(X), "blas-forward": run_blas}
    torch = benchmarks.optional("torch")
    if torch is not None:
        model = torch.nn.Sequential(
            torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.ReLU(),
            torch.nn.Linear(SIZES[1], SIZES[2]), torch.nn.ReLU(),
            torch.nn.Linear(SIZES[2], SIZES[3]),
        ).to(getattr(torch, np.dtype(dtype).name))  # fmt: skip
        with torch.no_grad():
            for lin, dense in zip(model[::2], net.dense_layers, strict=True):
                lin.weight.copy_(torch.from_numpy(dense.weights))
                lin.bias.copy_(torch.from_numpy(dense.bias))
        Xt = torch.from_numpy(X)

        def run_torch():
            with torch.inference_mode():
                return model(Xt).numpy()

        systems["torch"] = run_torch
    expected = systems["fastnn"]()
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for name, system in systems.items():
        got = system()
        err = float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))
        if err > tol:
            raise SystemExit(f"{name} disagrees with fastnn: relative difference {err:.2e}")
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(repeats):
        for name, system in systems.items():
            start = time.perf_counter()
            system()
            times[name].append(time.perf_counter() - start)
    flops = 2 * rows * sum(a * b for a, b in itertools.pairwise(SIZES))
    base = statistics.median(times["fastnn"])
    print(f"predict {rows} rows, {'-'.join(map(str, SIZES))}, {np.dtype(dtype).name}, "
          f"{threads} thread(s), median of {repeats}")  # fmt: skip
    for name, t in times.items():
        med = statistics.median(t)
        spread = f"{min(t) / base:.2f}-{max(t) / base:.2f}"
        print(f"  {name:14s} {med * 1e3:8.2f} ms  {flops / med / 1e9:6.1f} GFLOP/s  "
              f"time/fastnn {med / base:5.2f}  (range {spread})")  # fmt: skip


if __name__ == "__main__":
    main()
