"""What one L-BFGS evaluation costs on digits, and the floor that BLAS sets under it.

The ``sklearn`` family's ``lbfgs`` workload (digits, hidden (64,), float64, 1,347
rows) spends nearly all of its time in evaluations of the loss and its gradient.
This script times, round-robin in one process on one thread:

* ``fastnn``: one call of fastnn's compiled full-batch kernel
  (``fastnn.fullbatch.FullBatch.evaluate``);
* ``sklearn``: scikit-learn's own evaluation (``MLPClassifier._loss_grad_lbfgs``, a
  private method, read here for the comparison only) at the same weights;
* ``blas``: the five matrix products that any evaluation of this network must make
  (X·W₁ᵀ, A₁·W₂ᵀ, G₂ᵀ·A₁, G₂·W₂ and G₁ᵀ·X), alone, on preallocated arrays, in one
  compiled call through the BLAS that fastnn's kernels use;
* ``setulb``: SciPy's L-BFGS-B step itself per evaluation, from a profile of one fit.

and prints medians with the ratio of each to fastnn, and the best end-to-end ratio
against scikit-learn that an evaluation costing only its products would allow.

    python bench/lbfgs_floor.py --repeats 15
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import warnings

import numpy as np

from fastnn import benchmarks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--calls", type=int, default=100, help="evaluations per timing")
    args = parser.parse_args()
    with benchmarks.pinned_threads(1) as report:
        print("threads:", report)
        run(args.repeats, args.calls)


def _products():
    """The five products, compiled, so that they call the BLAS that fastnn's kernels
    call (SciPy's, through Numba's ``np.dot``), with no Python between them."""
    from fastnn.kernels.config import serial

    @serial
    def products(X, W1, W2, A1, Z2, G2, G1, T1, T2):
        np.dot(X, W1.T, A1)
        np.dot(A1, W2.T, Z2)
        np.dot(G2.T, A1, T2)
        np.dot(G2, W2, G1)
        np.dot(G1.T, X, T1)

    return products


def run(repeats: int, calls: int) -> None:
    from sklearn.neural_network import MLPClassifier

    from fastnn.benchmarks.workloads.estimators import digits
    from fastnn.fullbatch import FullBatch
    from fastnn.sklearn import FastMLPClassifier

    warnings.simplefilter("ignore")
    X, _, y, _ = digits()
    kw = dict(hidden_layer_sizes=(64,), random_state=0, solver="lbfgs", max_iter=5)
    fast = FastMLPClassifier(**kw).fit(X, y)
    ref = MLPClassifier(**kw).fit(X, y)
    net = fast.network_
    Y = fast._label_binarizer.transform(y).astype(np.float64)
    data = FullBatch(net, X, Y)
    grad = np.empty_like(net.params)

    # scikit-learn's evaluation, with the buffers its fit would pass.
    n = X.shape[0]
    acts = [X, np.empty((n, 64)), np.empty((n, 10))]
    deltas = [np.empty_like(a) for a in acts[1:]]
    coef_grads = [np.empty_like(c) for c in ref.coefs_]
    intercept_grads = [np.empty_like(c) for c in ref.intercepts_]
    packed = np.hstack([p.ravel() for p in ref.coefs_ + ref.intercepts_])
    ref._coef_indptr, ref._intercept_indptr, start = [], [], 0
    for c in ref.coefs_:
        ref._coef_indptr.append((start, start + c.size, c.shape))
        start += c.size
    for c in ref.intercepts_:
        ref._intercept_indptr.append((start, start + c.size))
        start += c.size

    rng = np.random.default_rng(0)
    W1, W2 = rng.random((64, 64)), rng.random((10, 64))
    A1, Z2, G2, G1 = np.empty((n, 64)), np.empty((n, 10)), rng.random((n, 10)), np.empty((n, 64))
    T1, T2 = np.empty((64, 64)), np.empty((10, 64))

    products = _products()

    def blas() -> None:
        products(X, W1, W2, A1, Z2, G2, G1, T1, T2)

    systems = {
        "fastnn": lambda: data.evaluate(grad),
        "sklearn": lambda: ref._loss_grad_lbfgs(
            packed, X, Y, None, acts, deltas, coef_grads, intercept_grads
        ),
        "blas": blas,
    }
    times: dict[str, list[float]] = {name: [] for name in systems}
    with data.threads():
        for f in systems.values():
            f()
        for _ in range(repeats):
            for name, f in systems.items():
                t = time.perf_counter()
                for _ in range(calls):
                    f()
                times[name].append((time.perf_counter() - t) / calls)
    median = {name: statistics.median(t) for name, t in times.items()}

    # SciPy's own step, per evaluation, from a profile of a whole fastnn fit.
    profile = cProfile.Profile()
    profile.enable()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FastMLPClassifier(**{**kw, "max_iter": 200, "tol": 0.0}).fit(X, y)
    profile.disable()
    stats = pstats.Stats(profile).stats
    setulb = sum(v[3] for k, v in stats.items() if "setulb" in k[2])
    evaluations = sum(v[0] for k, v in stats.items() if k[2] == "objective")
    median["setulb"] = setulb / max(1, evaluations)

    print("one evaluation of digits' loss and gradient, hidden (64,), float64, 1 thread")
    for name, t in median.items():
        print(f"{name:>8}  {t * 1e3:7.3f} ms  ({t / median['fastnn']:.2f}x fastnn)")
    s = median["setulb"]
    now = (median["sklearn"] + s) / (median["fastnn"] + s)
    floor = (median["sklearn"] + s) / (median["blas"] + s)
    print(f"end-to-end ratio against scikit-learn per evaluation: {now:.2f}x now, "
          f"{floor:.2f}x at most if fastnn's evaluation cost only its products")  # fmt: skip


if __name__ == "__main__":
    main()
