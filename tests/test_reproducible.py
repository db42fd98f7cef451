"""Same seed, data and settings give bit-identical weights and predictions, wherever
the heap puts the buffers, whatever the alignment of X and whichever thread calls."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastnn as fn


def _at_offset(X: np.ndarray, offset: int) -> np.ndarray:
    """A copy of X that starts ``offset`` bytes past a 64-byte boundary of a bigger buffer."""
    buf = np.empty(X.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    view = buf[start : start + X.nbytes].view(X.dtype).reshape(X.shape)
    view[...] = X
    return view


def _in_thread(fn_, *args):
    result = []
    thread = threading.Thread(target=lambda: result.append(fn_(*args)))
    thread.start()
    thread.join()
    return result[0]


# (first layer width, batch size): 64x16 runs the unblocked per-sample loop, 64x256
# the blocked one (its first layer is too large for L1), batch 16 the minibatch path.
PATHS = {"persample": (16, 1), "blocked": (256, 1), "minibatch": (256, 16)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", list(PATHS))
def test_fit_and_predict_are_bit_identical_whatever_the_heap(path, dtype):
    hidden, batch = PATHS[path]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 64)).astype(dtype)
    y = rng.integers(0, 10, 64)

    def run(X):
        layers = [fn.Dense(64, hidden), fn.ReLU(), fn.Dense(hidden, 10)]
        net = fn.Network(layers, loss="cross_entropy", dtype=dtype, seed=0, threads=1)
        net.fit(X, y, epochs=1, learning_rate=0.01, batch_size=batch)
        return net.params.tobytes(), net.predict(X).tobytes()

    expected = run(X)
    junk = []
    for i in range(12):
        # Odd-sized allocations between fits move where the next fit's buffers land.
        junk.append(np.empty(int(rng.integers(1, 20000)), np.uint8))
        offset = (4 * i) % 64 if dtype == np.float32 else (8 * i) % 64
        Xi = _at_offset(X, offset)
        got = _in_thread(run, Xi) if i % 3 == 2 else run(Xi)
        assert got[0] == expected[0], f"weights differ on run {i} (X at +{offset} bytes)"
        assert got[1] == expected[1], f"predictions differ on run {i} (X at +{offset} bytes)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_per_sample_sgd_does_not_depend_on_blas_threads(dtype):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 64)).astype(dtype)
    y = rng.integers(0, 10, 80)
    results = set()
    for limit in (1, 2):
        with threadpoolctl.threadpool_limits(limits=limit, user_api="blas"):
            net = fn.Network([fn.Dense(64, 256), fn.ReLU(), fn.Dense(256, 10)],
                             loss="cross_entropy", dtype=dtype, seed=0)  # fmt: skip
            net.fit(X, y, epochs=1, learning_rate=0.01)
            results.add(net.params.tobytes())
    assert len(results) == 1


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
ACTIVATIONS = (None, "tanh", "sigmoid", "relu", "identity")


@st.composite
def _batches(draw):
    """A random network and X, a permutation of its rows and a split of the permuted
    rows into consecutive calls of random sizes."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    widths = draw(st.lists(st.integers(1, 70), min_size=2, max_size=4))
    acts = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=len(widths) - 1,
                         max_size=len(widths) - 1))  # fmt: skip
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    perm = np.array(draw(st.permutations(range(n))), dtype=np.int64)
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    return dtype, widths, acts, n, seed, perm, cuts


@hypothesis.settings(max_examples=40, deadline=None)  # the kernels compile on first use
@hypothesis.given(_batches())
def test_a_rows_prediction_does_not_depend_on_its_position_or_neighbours(case):
    dtype, widths, acts, n, seed, perm, cuts = case
    layers = []
    for n_in, n_out, act in zip(widths, widths[1:], acts, strict=False):
        layers.append(fn.Dense(n_in, n_out))
        if act is not None:
            layers.append(fn.layers.ACTIVATIONS[act]())
    net = fn.Network(layers, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, widths[0])).astype(dtype)
    expected = net.predict(X)
    # Permuted rows, predicted in consecutive calls of varying size, from an odd offset.
    Xp = _at_offset(X[perm], dtype().itemsize)
    parts = [net.predict(Xp[a:b]) for a, b in zip([0, *cuts], [*cuts, n], strict=True) if b > a]
    got = np.concatenate(parts)
    assert got.tobytes() == expected[perm].tobytes()
    # One row alone, and with copies of another row around it.
    i = int(perm[0])
    alone = net.predict(X[i : i + 1])
    crowd = net.predict(np.concatenate([X[perm[-1:]]] * 9 + [X[i : i + 1]] + [X[perm[-1:]]] * 4))
    assert alone.tobytes() == expected[i : i + 1].tobytes() == crowd[9:10].tobytes()


def _fit_bits(dtype, hidden, X, y, seed=0, batch=1):
    layers = [fn.Dense(64, hidden), fn.ReLU(), fn.Dense(hidden, 10)]
    net = fn.Network(layers, loss="cross_entropy", dtype=dtype, seed=seed, threads=1)
    net.fit(X, y, epochs=2, learning_rate=0.01, batch_size=batch)
    return net.params.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", [16, 256], ids=["unblocked", "blocked"])
def test_per_sample_sgd_is_bit_identical_with_the_heap_moving_and_fits_beside(hidden, dtype):
    # The scratch of a fit may land just past Y (allocated by the same fit) or any
    # other array: a vectorised loop's run-time overlap check then takes its other
    # branch. Odd-sized allocations kept between fits, and fits running at once in
    # other threads, move the heap under each run.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 64)).astype(dtype)
    y = rng.integers(0, 10, 256)
    expected = _fit_bits(dtype, hidden, X, y)
    junk = []
    for i in range(60 if hidden == 16 else 12):
        junk.append(np.empty(int(rng.integers(1, 50000)), np.uint8))
        beside = [threading.Thread(target=_fit_bits, args=(dtype, 256, X, y, 1, batch))
                  for batch in (1, 16)]  # fmt: skip
        for thread in beside:
            thread.start()
        got = _fit_bits(dtype, hidden, X, y)
        for thread in beside:
            thread.join()
        assert got == expected, f"weights differ on run {i}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_dense_rows_sum_does_not_depend_on_where_its_arrays_lie(dtype):
    # Every length around the lane groups (and a 784-input row); W and x at each
    # element offset, x right after W or far from it.
    from fastnn.kernels import dense

    rng = np.random.default_rng(2)
    for n in (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 63, 64, 100, 784):
        W = rng.standard_normal((3, n)).astype(dtype)
        b = rng.standard_normal(3).astype(dtype)
        x = rng.standard_normal(n).astype(dtype)
        expected = np.empty(3, dtype)
        dense.dense_forward(W, b, x, expected)
        buf = np.empty(2 * W.size + 2 * n + 64, dtype)
        for shift in range(16):
            for gap in (0, 1, W.size + 7):
                Wi = buf[shift : shift + W.size].reshape(W.shape)
                xi = buf[shift + W.size + gap : shift + W.size + gap + n]
                Wi[...] = W
                xi[...] = x
                out = np.empty(3, dtype)
                dense.dense_forward(Wi, b, xi, out)
                assert out.tobytes() == expected.tobytes(), (n, shift, gap)
        # The documented order's sum agrees with a float64 one to rounding.
        np.testing.assert_allclose(expected, W.astype(np.float64) @ x + b, rtol=1e-4, atol=1e-4)
