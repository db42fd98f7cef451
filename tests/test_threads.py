"""fit and predict from several Python threads at once."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import fastnn as fn
from fastnn.threads import available_cores, default_threads


def _data(seed):
    rng = np.random.default_rng(seed)
    return rng.random((96, 20)).astype(np.float32), rng.integers(0, 3, 96)


def _train(seed: int, batch_size: int) -> np.ndarray:
    X, y = _data(seed)
    layers = [fn.Dense(20, 32), fn.ReLU(), fn.Dense(32, 3)]
    net = fn.Network(layers, loss="cross_entropy", dtype=np.float32, seed=seed)
    net.fit(X, y, epochs=3, batch_size=batch_size, shuffle=True,
            optimizer="adam" if batch_size > 1 else "sgd")  # fmt: skip
    return np.concatenate([net.params, net.predict(X).ravel()])


def test_concurrent_fit_and_predict_from_8_threads():
    jobs = [(seed, 1 if seed % 2 else 16) for seed in range(8)]
    serial = [_train(*job) for job in jobs]
    shared = fn.Network([fn.Dense(20, 32), fn.Tanh(), fn.Dense(32, 3)], dtype=np.float32)
    X, _ = _data(99)
    expected = shared.predict(X)
    with ThreadPoolExecutor(max_workers=8) as pool:
        trained = [pool.submit(_train, *job) for job in jobs]
        predicted = [pool.submit(shared.predict, X) for _ in range(16)]
        # BLAS thread limits are process-wide, so concurrent calls may run their
        # matrix products on another thread count: equal up to float32 rounding.
        for got, want in zip(trained, serial, strict=True):
            np.testing.assert_allclose(got.result(), want, rtol=1e-5, atol=1e-6)
        for got in predicted:
            np.testing.assert_allclose(got.result(), expected, rtol=1e-6, atol=1e-7)


def test_thread_setting():
    net = fn.Network([fn.Dense(2, 1)])
    assert net.threads is None and net.n_threads == default_threads() <= available_cores()
    assert fn.Network([fn.Dense(2, 1)], threads=1).n_threads == 1
    for bad in (0, -2, 1.5):
        try:
            fn.Network([fn.Dense(2, 1)], threads=bad)
        except (ValueError, TypeError) as err:
            assert "threads" in str(err)
        else:
            raise AssertionError(f"threads={bad} was accepted")


def test_per_sample_sgd_does_not_depend_on_threads():
    X, y = _data(3)
    X = np.repeat(X, 4, axis=1)[:, :80]  # 80 x 64 first layer: the blocked path
    results = []
    for threads in (1, 2):
        layers = [fn.Dense(80, 256), fn.Tanh(), fn.Dense(256, 3)]
        net = fn.Network(layers, loss="cross_entropy", seed=0, threads=threads)
        net.fit(X, y, epochs=2, shuffle=True)
        results.append(net.params.copy())
    np.testing.assert_array_equal(results[0], results[1])


def test_default_follows_an_outer_blas_limit():
    threadpoolctl = __import__("pytest").importorskip("threadpoolctl")
    net = fn.Network([fn.Dense(2, 1)])
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert net.n_threads == 1


def test_blocked_per_sample_sgd_on_two_threads_is_the_same_bits(monkeypatch):
    """A wide first layer's products run as tasks on Numba's threads: the weights
    are the same bits at one and two threads, and on a repeat at two."""
    numba = __import__("pytest").importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        __import__("pytest").skip("Numba has one thread here")
    from fastnn import network
    from fastnn.plan import sgd_block

    monkeypatch.setattr(network, "idle_cores", lambda: 2)  # a busy CI core must not matter
    rng = np.random.default_rng(5)
    X = rng.random((300, 200)).astype(np.float32)  # 300: four blocks and a short one
    y = rng.integers(0, 3, 300)
    results = []
    for threads in (1, 2, 2):
        layers = [fn.Dense(200, 384), fn.Tanh(), fn.Dense(384, 3)]  # 3 tasks a product
        net = fn.Network(layers, loss="cross_entropy", dtype=np.float32, seed=0,
                         threads=threads)  # fmt: skip
        assert net._threads_for(sgd_block(net._plan)) == threads
        initial = net.params.copy()
        net.fit(X, y, epochs=2, shuffle=True)
        results.append(net.params.copy())
    # The fit trained the first layer (the tasks' rows), and finitely.
    assert np.all(np.isfinite(results[0]))
    assert not np.array_equal(results[0][: 200 * 384], initial[: 200 * 384])
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[1], results[2])
