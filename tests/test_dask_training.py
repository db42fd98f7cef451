"""Training one network over data on a local Dask cluster: fastnn.distributed.fit."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

pytest.importorskip("distributed")

import cloudpickle
import dask.array as da
from dask.distributed import Client, LocalCluster
from scipy.optimize import minimize

import fastnn as fn
from fastnn import distributed as fd
from fastnn.dask_lbfgs import loss_and_gradient
from fastnn.optimizers import Adam

CHUNKS = ((60, 60, 50, 70), (5,))


def _block(client_pid: int, marker=None, block_info=None):
    """Row block i of a fixed data set, built on a worker. It fails in the client's
    process; with a ``marker`` path, the first worker to build block 2 dies."""
    if os.getpid() == client_pid:
        raise RuntimeError("a block of X was computed in the client's process")
    info = block_info[None]
    start, stop = info["array-location"][0]
    if marker is not None and start == 120 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return _rows(start, stop)


def _rows(start: int, stop: int) -> np.ndarray:
    return np.random.default_rng(7).normal(size=(240, 5))[start:stop]


def _labels(X: np.ndarray) -> np.ndarray:
    return (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64) + (X[:, 3] > 1)


def remote_X(marker=None) -> da.Array:
    return da.map_blocks(
        _block, client_pid=os.getpid(), marker=marker, chunks=CHUNKS, dtype=np.float64
    )


def _label_block(block_info=None):
    start, stop = block_info[None]["array-location"][0]
    return _labels(_rows(start, stop))


def remote_y() -> da.Array:
    return da.map_blocks(_label_block, chunks=CHUNKS[:1], dtype=np.int64)


def local_data() -> tuple[np.ndarray, np.ndarray]:
    X = _rows(0, 240)
    return X, _labels(X)


def make_net(seed: int = 1) -> fn.Network:
    layers = [fn.Dense(5, 12), fn.Tanh(), fn.Dense(12, 3)]
    return fn.Network(layers, loss="cross_entropy", dtype=np.float64, seed=seed, threads=1)


@pytest.fixture(scope="module")
def client():
    # Test functions travel to the workers by value: the workers cannot import tests/.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def one_worker():
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster, set_as_default=False) as c,
    ):
        yield c


def accuracy(net, X, y) -> float:
    return float((net.predict(X).argmax(axis=1) == y).mean())


# -- equivalence ---------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_averaging_on_one_worker_is_net_fit(one_worker, optimizer, batch_size):
    X, y = local_data()
    Xd, yd = da.from_array(X, chunks=CHUNKS), da.from_array(y, chunks=CHUNKS[0])
    epochs = 1 if batch_size == 1 else 3  # a round per minibatch: keep the test short
    ref = make_net()
    expected = ref.fit(
        X, y, epochs=epochs, learning_rate=0.05, batch_size=batch_size, optimizer=optimizer
    )
    net = make_net()
    history = fd.fit(
        one_worker, net, Xd, yd, epochs=epochs, learning_rate=0.05, batch_size=batch_size,
        optimizer=optimizer, sync_every=1, shuffle=False,
    )  # fmt: skip
    # Batches span the chunk boundaries as in one pass over the concatenated rows.
    np.testing.assert_allclose(net.params, ref.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-12)
    assert net.optimizer.step == ref.optimizer.step
    for key, value in ref.optimizer.state.items():
        np.testing.assert_allclose(net.optimizer.state[key], value, rtol=0, atol=1e-12)


def test_averaging_two_workers_learns_and_repeats(client):
    X, y = local_data()
    runs = []
    for _ in range(2):
        net = make_net()
        history = fd.fit(
            client, net, remote_X(), y, epochs=6, learning_rate=0.03, batch_size=16,
            optimizer=Adam(), sync_every=2, shuffle=True, validation_data=(X, y),
        )  # fmt: skip
        runs.append(net.params.copy())
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert len(history["val_loss"]) == 6
    single = make_net()
    single.fit(X, y, epochs=6, learning_rate=0.03, batch_size=16, optimizer=Adam(), shuffle=True)
    assert accuracy(net, X, y) >= accuracy(single, X, y) - 0.05
    # Same seed, data and settings: the same weights, bit for bit.
    np.testing.assert_array_equal(runs[0], runs[1])


def test_lbfgs_matches_single_machine(client):
    X, y = local_data()
    ref = make_net()

    def objective(w):
        ref.params[:] = w
        loss, grad = loss_and_gradient(ref, X, y)
        return loss / len(X), grad / len(X)

    start = ref.params.copy()
    single = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 40})
    net = make_net()
    history = fd.fit(client, net, remote_X(), y, epochs=40, method="lbfgs")
    assert len(history["loss"]) == single.nit
    np.testing.assert_allclose(net.params, single.x, rtol=1e-8, atol=1e-8 * abs(single.x).max())
    assert history["loss"][-1] < 0.5 * ref.evaluate(X, y) or history["loss"][-1] < 0.3


def test_gradient_sum_matches_central_differences():
    X, y = local_data()
    net = make_net()
    _, grad = loss_and_gradient(net, X, y)
    eps = 1e-6
    for i in (0, 17, net.params.size - 1):
        w = net.params[i]
        net.params[i] = w + eps
        up, _ = loss_and_gradient(net, X, y)
        net.params[i] = w - eps
        down, _ = loss_and_gradient(net, X, y)
        net.params[i] = w
        assert (up - down) / (2 * eps) == pytest.approx(grad[i], rel=1e-6, abs=1e-8)


# -- data locality, inference ------------------------------------------------------------------
def test_blocks_are_computed_on_the_workers(client):
    X, y = local_data()
    Xd = remote_X()
    with pytest.raises(RuntimeError, match="client's process"):
        Xd.compute(scheduler="sync")  # the guard works
    net = make_net()
    fd.fit(client, net, Xd, da.from_array(y, chunks=CHUNKS[0]), epochs=2, batch_size=16)
    predicted = fd.predict(net, Xd)
    assert isinstance(predicted, da.Array) and predicted.chunks[0] == CHUNKS[0]
    np.testing.assert_allclose(predicted.compute(), net.predict(X), rtol=0, atol=1e-14)
    loss = fd.evaluate(net, Xd, y)
    assert loss.shape == ()
    assert float(loss.compute()) == pytest.approx(net.evaluate(X, y), rel=1e-12)


def test_replicas_use_the_workers_threads(client):
    from fastnn.dask_data import thread_replica
    from fastnn.io import to_bytes

    data = to_bytes(fn.Network([fn.Dense(2, 2)], threads=None))
    threads = client.run(lambda: thread_replica("threads-test", data).n_threads)
    assert sorted(threads.values()) == [1, 1]


# -- faults and checkpoints --------------------------------------------------------------
def test_killed_worker_does_not_fail_the_fit(client, tmp_path):
    X, y = local_data()
    settings = dict(epochs=6, learning_rate=0.02, batch_size=8, optimizer="adam", sync_every=2)
    undisturbed = make_net()
    fd.fit(client, undisturbed, remote_X(), remote_y(), **settings)
    marker = tmp_path / "killed"
    net = make_net()
    fd.fit(client, net, remote_X(str(marker)), remote_y(), **settings)
    assert marker.exists()  # a worker did die mid-epoch
    assert abs(accuracy(net, X, y) - accuracy(undisturbed, X, y)) <= 0.01
    # Every task is a function of its inputs: the rerun rounds give the same result.
    np.testing.assert_allclose(net.params, undisturbed.params, rtol=0, atol=1e-12)
    client.wait_for_workers(2, timeout=60)


def test_checkpoint_resumes_and_survives_a_lost_client(client, tmp_path):
    _, y = local_data()
    path = tmp_path / "model.npz"
    settings = dict(learning_rate=0.02, batch_size=8, optimizer="adam", sync_every=2)
    full = make_net()
    expected = fd.fit(client, full, remote_X(), y, epochs=3, **settings)

    # The connection drops after epoch 2: the fit fails, the checkpoint stays loadable.
    def drop(epoch, history):
        if epoch == 2:
            second.close()

    second = Client(client.scheduler.address, set_as_default=False)
    net = make_net()
    with pytest.raises(Exception):  # noqa: B017 - whatever the closed client raises
        fd.fit(second, net, remote_X(), y, epochs=3, checkpoint=path, callback=drop, **settings)
    saved = fn.load(path)
    assert saved.optimizer.step > 0

    resumed = make_net()
    history = fd.fit(client, resumed, remote_X(), y, epochs=3, checkpoint=path, **settings)
    assert len(history["loss"]) == 3
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-12)
    np.testing.assert_allclose(resumed.params, full.params, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fn.load(path).params, resumed.params)


# -- bad input ------------------------------------------------------------------------------
def test_bad_input_fails_before_training(client):
    X, y = local_data()
    net = make_net()
    before = net.params.copy()
    Xd = remote_X()
    with pytest.raises(ValueError, match="same row chunks"):
        fd.fit(client, net, Xd, da.from_array(y, chunks=120))
    with pytest.raises(ValueError, match=r"5 features per sample.*takes 4"):
        small = fn.Network([fn.Dense(4, 3)], loss="cross_entropy")
        fd.fit(client, small, Xd, y)
    with pytest.raises(TypeError, match="X is list"):
        fd.fit(client, net, X.tolist(), y)
    with pytest.raises(ValueError, match="method="):
        fd.fit(client, net, Xd, y, method="newton")
    with pytest.raises(ValueError, match="sync_every=0"):
        fd.fit(client, net, Xd, y, sync_every=0)
    np.testing.assert_array_equal(net.params, before)


def test_a_cluster_without_workers_is_refused():
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as empty,
    ):
        X, y = local_data()
        with pytest.raises(ValueError, match="no workers"):
            fd.fit(empty, make_net(), X, y)


def test_numpy_input_is_scattered_once(client):
    X, y = local_data()
    lazy = make_net()
    fd.fit(client, lazy, remote_X(), remote_y(), epochs=2, batch_size=16)
    net = make_net()
    history = fd.fit(client, net, X, y, epochs=2, batch_size=16)
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    # One block per worker here, against four lazy blocks: the same rows, but
    # different replicas (and averages), so close rather than equal.
    assert accuracy(net, X, y) == pytest.approx(accuracy(lazy, X, y), abs=0.1)
    assert not np.array_equal(net.params, make_net().params)


def test_divergence_stops_with_the_last_average_kept(client):
    X, _ = local_data()
    net = fn.Network([fn.Dense(5, 12), fn.ReLU(), fn.Dense(12, 1)], loss="mse", seed=0)
    before = net.params.copy()
    with pytest.raises(fn.TrainingDivergedError, match=r"epoch 1.*learning_rate"):
        fd.fit(client, net, remote_X(), da.from_array(1e3 * X[:, :1], chunks=(CHUNKS[0], 1)),
               epochs=2, learning_rate=1e6, batch_size=8)  # fmt: skip
    np.testing.assert_array_equal(net.params, before)


def test_numpy_X_takes_the_row_chunks_of_a_dask_Y(client):
    X, y = local_data()
    net = make_net()
    fd.fit(client, net, X, da.from_array(y, chunks=CHUNKS[0]), epochs=1, shuffle=False)
    assert not np.array_equal(net.params, make_net().params)


def test_dask_dataframe_input(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = local_data()
    frame = dd.from_pandas(pd.DataFrame(X, columns=list("abcde")), npartitions=3)
    labels = dd.from_pandas(pd.Series(y, name="label"), npartitions=3)
    net, ref = make_net(), make_net()
    fd.fit(client, net, frame, labels, epochs=1, batch_size=16, shuffle=False)
    fd.fit(client, ref, X, da.from_array(y, chunks=(80, 80, 80)), epochs=1, batch_size=16,
           shuffle=False)  # fmt: skip
    # The same three row blocks: the same replicas and averages.
    np.testing.assert_allclose(net.params, ref.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fd.predict(net, frame).compute(), net.predict(X), atol=1e-14)
