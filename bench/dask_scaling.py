"""Scaling of ``fastnn.distributed.fit`` on loopback LocalClusters, 1 worker against 2.

Run from the repository root (needs the ``dask`` extra; dask-ml for the last part)::

    python bench/dask_scaling.py                 # every part, full sizes
    python bench/dask_scaling.py --quick         # smaller data, a few minutes
    python bench/dask_scaling.py --only averaging,lbfgs

Parts (each prints its own table; times are medians over the repeats, and the
systems being compared run alternately, one repeat each per round):

* ``averaging``: samples/s of one epoch, 784-256-128-10 float32 ReLU, batch 64,
  ``sync_every=16``, synthetic rows generated and persisted on the workers; the
  2-worker / 1-worker ratio (target >= 1.7).
* ``lbfgs``: seconds per L-BFGS iteration on a 100-64-1 regression (target: 2
  workers >= 1.6x faster than 1).
* ``digits``: test accuracy on digits after the same epochs, 2-worker averaging
  against single-machine ``Network.fit`` (target: within one point).
* ``memory``: a data set three times the workers' combined ``memory_limit``, in a
  ``.npy`` stack on disk, trained for two epochs; each worker's peak resident memory
  against its limit.
* ``incremental``: time to the same test accuracy as dask-ml's ``Incremental``
  around ``FastMLPClassifier.partial_fit``, on the same 2-worker cluster and blocks.

The averaging part is also the ``dask`` family of the benchmark table
(``fastnn bench --only dask``), next to ``Network.fit`` in one process.

Every worker has one thread: Dask starts worker processes with one BLAS and OpenMP
thread, and each replica runs on its worker's ``nthreads``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import tempfile
import time

import numpy as np

import fastnn as fn
from fastnn import distributed as fd


def cluster(n_workers: int, memory_limit="auto"):
    from dask.distributed import Client, LocalCluster

    c = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, memory_limit=memory_limit,
    )  # fmt: skip
    # Dask starts worker processes with one BLAS/OpenMP thread; each replica uses
    # the worker's one thread.
    return c, Client(c, set_as_default=False)


def _teacher_block(n_features: int, n_classes: int, seed: int, block_info=None):
    """Rows of a synthetic classification, made on the worker from the block's
    position: X standard normal, the label the argmax of a fixed random linear map."""
    start, stop = block_info[None]["array-location"][0]
    rng = np.random.default_rng([seed, start])
    X = rng.standard_normal((stop - start, n_features), dtype=np.float32)
    W = np.random.default_rng(seed).standard_normal((n_features, n_classes)).astype(np.float32)
    return np.concatenate([X, (X @ W).argmax(axis=1)[:, None].astype(np.float32)], axis=1)


def synthetic(client, rows: int, n_features: int, n_classes: int, chunk: int, seed=0):
    import dask.array as da

    chunks = ((chunk,) * (rows // chunk) + ((rows % chunk,) if rows % chunk else ()),)
    both = da.map_blocks(
        _teacher_block, n_features, n_classes, seed,
        chunks=(chunks[0], (n_features + 1,)), dtype=np.float32,
    )  # fmt: skip
    X = both[:, :n_features]
    y = both[:, n_features].astype(np.int64)
    return client.persist([X, y])


def mlp(sizes, dtype, seed=0, loss="cross_entropy") -> fn.Network:
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(fn.Dense(a, b))
        if i < len(sizes) - 2:
            layers.append(fn.ReLU())
    return fn.Network(layers, loss=loss, dtype=dtype, seed=seed)


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(v).rjust(w) for v, w in zip(r, widths, strict=True)))


def alternate(clusters: dict, run, repeats: int) -> dict[int, float]:
    """Median seconds of ``run(k, client)`` per cluster, the clusters taking turns
    one run each per round (so that drift on the machine falls on all alike); then
    the clusters are closed. ``run`` returns (seconds, units) and a unit's median
    time is returned."""
    times: dict[int, list[float]] = {k: [] for k in clusters}
    for _ in range(repeats):
        for k, (_, client) in clusters.items():
            seconds, units = run(k, client)
            times[k].append(seconds / units)
    for c, client in clusters.values():
        client.close()
        c.close()
    return {k: statistics.median(v) for k, v in times.items()}


def timed(fit) -> tuple[float, int]:
    t = time.perf_counter()
    history = fit()
    return time.perf_counter() - t, len(history["loss"])


# -- parts ------------------------------------------------------------------------------------
def averaging(rows: int, repeats: int, sync_every: int) -> None:
    clusters = {k: cluster(k) for k in (1, 2)}
    data = {k: synthetic(c, rows, 784, 10, 20_000) for k, (_, c) in clusters.items()}
    settings = dict(
        epochs=1, learning_rate=0.01, batch_size=64, sync_every=sync_every, optimizer="sgd"
    )

    def run(k, client):
        net = mlp((784, 256, 128, 10), np.float32)
        return timed(lambda: fd.fit(client, net, *data[k], **settings))

    for k, (_, client) in clusters.items():  # warm-up: compiles
        run(k, client)
    med = alternate(clusters, run, repeats)
    table(
        f"averaging: {rows:,} rows, 784-256-128-10 float32, batch 64, sync_every={sync_every}",
        ["workers", "s/epoch", "samples/s", "vs 1 worker"],
        [[k, f"{med[k]:.2f}", f"{rows / med[k]:,.0f}", f"{med[1] / med[k]:.2f}x"] for k in med],
    )


def _regression_block(seed: int, block_info=None):
    start, stop = block_info[None]["array-location"][0]
    rng = np.random.default_rng([seed, start])
    X = rng.standard_normal((stop - start, 100))
    w = np.random.default_rng(seed).standard_normal(100) / 10
    y = np.tanh(X @ w) + 0.1 * rng.standard_normal(stop - start)
    return np.concatenate([X, y[:, None]], axis=1)


def lbfgs(rows: int, iterations: int, repeats: int) -> None:
    import dask.array as da

    clusters = {k: cluster(k) for k in (1, 2)}
    chunk = 50_000
    chunks = (chunk,) * (rows // chunk)
    data = {}
    for k, (_, client) in clusters.items():
        both = da.map_blocks(_regression_block, 0, chunks=(chunks, (101,)), dtype=np.float64)
        data[k] = client.persist([both[:, :100], both[:, 100:]])

    def run(k, client):
        net = mlp((100, 64, 1), np.float64, loss="mse")
        return timed(lambda: fd.fit(client, net, *data[k], epochs=iterations, method="lbfgs"))

    med = alternate(clusters, run, repeats)
    table(
        f"lbfgs: {rows:,} rows, 100-64-1 float64 regression, {iterations} iterations a fit",
        ["workers", "s/iteration", "vs 1 worker"],
        [[k, f"{med[k]:.3f}", f"{med[1] / med[k]:.2f}x"] for k in med],
    )


def digits(epochs: int) -> None:
    import dask.array as da
    from sklearn.model_selection import train_test_split

    from fastnn.datasets import load_digits

    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    settings = dict(learning_rate=0.01, batch_size=32, optimizer="adam")
    single = mlp((64, 64, 10), np.float64)
    single.fit(X_train, y_train, epochs=epochs, shuffle=True, **settings)
    c, client = cluster(2)
    net = mlp((64, 64, 10), np.float64)
    chunks = len(X_train) // 4 + 1
    Xd = da.from_array(X_train, chunks=(chunks, 64))
    yd = da.from_array(y_train, chunks=chunks)
    fd.fit(client, net, *client.persist([Xd, yd]), epochs=epochs, sync_every=4, **settings)
    client.close()
    c.close()
    acc = {
        "net.fit (1 machine)": (single.predict(X_test).argmax(1) == y_test).mean(),
        "distributed, 2 workers": (net.predict(X_test).argmax(1) == y_test).mean(),
    }
    table(
        f"digits: 64-64-10, Adam, batch 32, {epochs} epochs, sync_every=4",
        ["system", "test accuracy"],
        [[k, f"{v:.4f}"] for k, v in acc.items()],
    )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(limit_mb: int) -> None:
    import dask.array as da

    n_workers = 2
    total = 3 * n_workers * limit_mb * 2**20
    features, chunk = 512, 8192
    rows = total // (4 * (features + 1)) // chunk * chunk
    with tempfile.TemporaryDirectory() as tmp:
        c, client = cluster(n_workers, memory_limit=f"{limit_mb}MiB")
        both = da.map_blocks(
            _teacher_block, features, 10, 3,
            chunks=((chunk,) * (rows // chunk), (features + 1,)), dtype=np.float32,
        )  # fmt: skip
        path = os.path.join(tmp, "stack")
        da.to_npy_stack(path, both, axis=0)  # written by the workers, block by block
        on_disk = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
        client.restart()  # start the workers' peak memory afresh
        stack = da.from_npy_stack(path)
        X, y = stack[:, :features], stack[:, features].astype(np.int64)
        net = mlp((features, 64, 10), np.float32)
        t = time.perf_counter()
        history = fd.fit(client, net, X, y, epochs=2, batch_size=64, sync_every=16)
        seconds = time.perf_counter() - t
        peaks = client.run(_peak_rss_mb)
        client.close()
        c.close()
    table(
        f"memory: {on_disk / 2**30:.2f} GiB on disk (.npy stack, {rows:,} rows), "
        f"2 workers of {limit_mb} MiB, 2 epochs in {seconds:.1f} s, loss "
        f"{history['loss'][0]:.3f} -> {history['loss'][-1]:.3f}",
        ["worker", "peak RSS (MiB)", "limit (MiB)"],
        [[w, f"{p:.0f}", limit_mb] for w, p in sorted(peaks.items())],
    )


def incremental(rows: int, epochs: int) -> None:
    from dask_ml.wrappers import Incremental

    from fastnn.sklearn import FastMLPClassifier

    c, client = cluster(2)
    X, y = synthetic(client, rows, 64, 10, 10_000, seed=1)
    X_test, y_test = (f.result() for f in client.compute([X[:20_000], y[:20_000]]))
    X, y = client.persist([X[20_000:], y[20_000:]])

    def acc(model) -> float:
        return float((model.predict(X_test) == y_test).mean()) if hasattr(model, "classes_") \
            else float((model.predict(X_test).argmax(1) == y_test).mean())  # fmt: skip

    curves = {"fastnn.distributed.fit": [], "dask-ml Incremental": []}
    net = mlp((64, 128, 10), np.float32)
    start = time.perf_counter()
    paused = [0.0]

    def record(epoch, history):
        t = time.perf_counter()
        curves["fastnn.distributed.fit"].append((t - start - paused[0], acc(net)))
        paused[0] += time.perf_counter() - t

    fd.fit(client, net, X, y, epochs=epochs, learning_rate=0.003, batch_size=64,
           optimizer="adam", sync_every=16, callback=record)  # fmt: skip
    est = FastMLPClassifier(hidden_layer_sizes=(128,), batch_size=64, learning_rate_init=0.003,
                            dtype=np.float32, random_state=0)  # fmt: skip
    inc = Incremental(est, scoring="accuracy", shuffle_blocks=True, random_state=0)
    spent = 0.0
    for _ in range(epochs):
        t = time.perf_counter()
        with client.as_current():
            inc.partial_fit(X, y, classes=np.arange(10))
        spent += time.perf_counter() - t
        curves["dask-ml Incremental"].append((spent, acc(inc.estimator_)))
    client.close()
    c.close()
    target = min(max(a for _, a in v) for v in curves.values())
    rows_out = []
    for name, curve in curves.items():
        reached = next(t for t, a in curve if a >= target)
        rows_out.append([name, f"{curve[-1][1]:.4f}", f"{reached:.1f}"])
    table(
        f"incremental: {rows - 20_000:,} training rows, 64-128-10 float32 Adam batch 64, "
        f"{epochs} passes; time to test accuracy {target:.4f}",
        ["system", "final accuracy", "s to target"],
        rows_out,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data")
    parser.add_argument("--only", default="averaging,lbfgs,digits,memory,incremental")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sync-every", default="16", help="comma-separated, for averaging")
    args = parser.parse_args()
    parts = args.only.split(",")
    print(f"fastnn {fn.__version__}, {os.cpu_count()} cores; 1 thread per worker")
    if "averaging" in parts:
        for sync_every in map(int, args.sync_every.split(",")):
            averaging(100_000 if args.quick else 400_000, args.repeats, sync_every)
    if "lbfgs" in parts:
        lbfgs(200_000 if args.quick else 1_000_000, 5, args.repeats)
    if "digits" in parts:
        digits(20)
    if "memory" in parts:
        memory(400 if args.quick else 600)
    if "incremental" in parts:
        incremental(120_000 if args.quick else 420_000, 4 if args.quick else 6)


if __name__ == "__main__":
    main()
