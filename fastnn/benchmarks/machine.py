"""The machine's speed, measured next to the figures: a single-core sgemm rate.

On a shared machine the same code runs at different speeds from one hour to the
next; the rate of a large float32 matrix product through NumPy's BLAS, on one
thread, taken in the same run, says how fast the machine was while the figures
were taken.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

#: Matrix side of the sgemm measurement.
SGEMM_N = 2048


def sgemm_rate(n: int = SGEMM_N, repeats: int = 5) -> dict:
    """GFLOP/s of an n×n by n×n float32 product through ``np.dot`` on one BLAS thread.

    Parameters
    ----------
    n : int
        Matrix side (2n³ floating-point operations per product).
    repeats : int
        Timed products after one untimed; the median is reported.

    Returns
    -------
    dict
        ``{"gflops": median rate, "n": n, "repeats": repeats}``.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    A = rng.random((n, n), dtype=np.float32)
    B = rng.random((n, n), dtype=np.float32)
    C = np.empty((n, n), np.float32)
    times = []
    with threadpool_limits(limits=1, user_api="blas"):
        np.dot(A, B, out=C)  # untimed: pages in the buffers, starts the BLAS
        for _ in range(repeats):
            start = time.perf_counter()
            np.dot(A, B, out=C)
            times.append(time.perf_counter() - start)
    return {"gflops": 2 * n**3 / statistics.median(times) / 1e9, "n": n, "repeats": repeats}


def describe_sgemm(rate: dict) -> str:
    """One line for the report's header."""
    n = rate["n"]
    return (
        f"machine: single-core sgemm ({n}x{n} float32, np.dot on 1 BLAS thread, median of "
        f"{rate['repeats']}): {rate['gflops']:.1f} GFLOP/s"
    )
