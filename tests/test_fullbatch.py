"""The full-batch loss and gradient (``fastnn.fullbatch``) and L-BFGS on it: kernel
against its NumPy twin in float32 and float64, dense against CSR input, the gradient
against central differences and PyTorch, sums that add over partitions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import fastnn as fn
from fastnn.fullbatch import FullBatch, fit_lbfgs, loss_and_gradient

LOSSES = [("mse", 2), ("binary_cross_entropy", 3), ("cross_entropy", 4), ("poisson", 2)]


def make_net(loss, k, dtype=np.float64, backend="numba", acts=(fn.Tanh, fn.Sigmoid)):
    return fn.Network(
        [fn.Dense(5, 7), acts[0](), fn.Dense(7, 6), acts[1](), fn.Dense(6, k)],
        loss="mse" if loss == "poisson" else loss,
        dtype=dtype,
        backend=backend,
        seed=1,
    )


def make_data(rng, loss, k, n=300):
    X = rng.normal(size=(n, 5))
    X[X < 0.3] = 0  # sparse enough for CSR to matter
    if loss == "cross_entropy":
        Y = np.eye(k)[rng.integers(0, k, n)]
    else:
        Y = rng.random((n, k))
    return X, Y, rng.random(n)


def evaluate(net, X, Y, sw, loss):
    grad = np.empty_like(net.params)
    return FullBatch(net, X, Y, sw, loss=loss).evaluate(grad), grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("loss", "k"), LOSSES)
def test_kernel_matches_twin_dense_and_csr(rng, dtype, loss, k, measured):
    X, Y, sw = make_data(rng, loss, k)
    ref_loss, ref_grad = evaluate(make_net(loss, k, dtype, "numpy"), X, Y, sw, loss)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for backend in ("numba", "numpy"):
        for XX in (X, sp.csr_matrix(X), sp.csr_array(X)):
            value, grad = evaluate(make_net(loss, k, dtype, backend), XX, Y, sw, loss)
            assert grad.dtype == dtype
            err = abs(value - ref_loss) / abs(ref_loss)
            assert measured(f"fullbatch loss vs twin {dtype.__name__}", err) < tol
            gerr = np.abs(grad - ref_grad).max() / np.abs(ref_grad).max()
            assert measured(f"fullbatch grad vs twin {dtype.__name__}", gerr) < 10 * tol


@pytest.mark.parametrize(("loss", "k"), LOSSES)
def test_gradient_by_central_differences(rng, loss, k, measured):
    X, Y, sw = make_data(rng, loss, k, n=40)
    net = make_net(loss, k)
    data = FullBatch(net, X, Y, sw, loss=loss)
    grad = np.empty_like(net.params)
    data.evaluate(grad)
    p0 = net.params.copy()
    numeric = np.empty_like(grad)
    scratch = np.empty_like(grad)
    eps = 1e-6
    for i in range(p0.size):
        net.params[:] = p0
        net.params[i] += eps
        up = data.evaluate(scratch)
        net.params[i] -= 2 * eps
        numeric[i] = (up - data.evaluate(scratch)) / (2 * eps)
    err = np.abs(numeric - grad).max() / np.abs(grad).max()
    assert measured("fullbatch grad vs central differences", err) < 1e-7


def test_network_loss_and_partitions_add(rng):
    X, Y, _ = make_data(rng, "cross_entropy", 4)
    net = make_net("cross_entropy", 4, acts=(fn.ReLU, fn.Tanh))
    total, grad = loss_and_gradient(net, X, Y)
    # The sum of the network's own per-sample losses.
    assert total == pytest.approx(net.evaluate(X, Y) * X.shape[0], rel=1e-12)
    a_loss, a_grad = loss_and_gradient(net, X[:100], Y[:100])
    b_loss, b_grad = loss_and_gradient(net, X[100:], Y[100:])
    assert a_loss + b_loss == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(a_grad + b_grad, grad, rtol=1e-10, atol=1e-12)
    # Rows picked by index, in any order, from dense and CSR X alike.
    idx = rng.permutation(X.shape[0])[:70]
    sub_loss, sub_grad = loss_and_gradient(net, X[idx], Y[idx])
    for XX in (X, sp.csr_matrix(X)):
        picked = np.empty_like(grad)
        value = FullBatch(net, XX, Y).evaluate(picked, idx.astype(np.int64))
        assert value == pytest.approx(sub_loss, rel=1e-12)
        np.testing.assert_allclose(picked, sub_grad, rtol=1e-10, atol=1e-12)
    # A weight w counts a sample w times.
    w = rng.integers(0, 3, X.shape[0])
    rep_loss, rep_grad = loss_and_gradient(net, np.repeat(X, w, 0), np.repeat(Y, w, 0))
    w_loss, w_grad = loss_and_gradient(net, X, Y, sample_weight=w)
    assert w_loss == pytest.approx(rep_loss, rel=1e-12)
    np.testing.assert_allclose(w_grad, rep_grad, rtol=1e-10, atol=1e-12)


def test_gradient_matches_torch(rng):
    torch = pytest.importorskip("torch")
    X, Y, sw = make_data(rng, "binary_cross_entropy", 3)
    net = make_net("binary_cross_entropy", 3, acts=(fn.ReLU, fn.Tanh))
    total, grad = loss_and_gradient(net, X, Y, sample_weight=sw)
    d = net.dense_layers
    ws = [torch.tensor(layer.weights, requires_grad=True) for layer in d]
    bs = [torch.tensor(layer.bias, requires_grad=True) for layer in d]
    h = torch.relu(torch.tensor(X) @ ws[0].T + bs[0])
    h = torch.tanh(h @ ws[1].T + bs[1])
    z = h @ ws[2].T + bs[2]
    per = torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.tensor(Y), reduction="none"
    ).mean(1)
    t_loss = (per * torch.tensor(sw)).sum()
    t_loss.backward()
    assert total == pytest.approx(t_loss.item(), rel=1e-12)
    t_grad = np.concatenate([np.concatenate([w.grad.numpy().ravel(), b.grad.numpy()])
                             for w, b in zip(ws, bs, strict=True)])  # fmt: skip
    np.testing.assert_allclose(grad, t_grad, rtol=1e-9, atol=1e-12)


def test_bad_input_raises_before_anything_changes(rng):
    X, Y, _ = make_data(rng, "mse", 2)
    net = make_net("mse", 2)
    before = net.params.copy()
    with pytest.raises(ValueError, match="sample_weight has shape"):
        loss_and_gradient(net, X, Y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="negative"):
        loss_and_gradient(net, X, Y, sample_weight=-np.ones(X.shape[0]))
    with pytest.raises(ValueError, match="features"):
        loss_and_gradient(net, sp.csr_matrix(X[:, :4]), Y)
    with pytest.raises(ValueError, match="max_fun"):
        fit_lbfgs(net, X, Y, max_fun=0)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_lbfgs_lowers_the_loss_and_diverging_restores(rng, dtype):
    X, Y, _ = make_data(rng, "binary_cross_entropy", 3)
    Y = (X[:, :3] + X[:, 1:4] > 0.5).astype(float)  # learnable
    net = make_net("binary_cross_entropy", 3, dtype)
    start = net.evaluate(X, Y)
    result = fit_lbfgs(net, X, Y, max_iter=50, l2=1e-4)
    assert net.params.dtype == dtype
    assert result.nit <= 50
    assert net.evaluate(X, Y) < 0.5 * start

    huge = np.finfo(dtype).max / 10 * rng.uniform(size=X.shape)
    net = make_net("mse", 2, dtype, acts=(fn.Identity, fn.Identity))
    before = net.params.copy()
    with pytest.raises(fn.TrainingDivergedError, match="restored"), np.errstate(over="ignore"):
        fit_lbfgs(net, huge, Y[:, :2], max_iter=5)
    np.testing.assert_array_equal(net.params, before)


def test_activation_first_reads_rows_in_place_and_gathered(rng):
    X, Y, sw = make_data(rng, "mse", 2, n=50)
    nets = [fn.Network([fn.Tanh(), fn.Dense(5, 2)], dtype=np.float64, backend=b, seed=0)
            for b in ("numba", "numpy")]  # fmt: skip
    for rows in (np.arange(50), rng.permutation(50)[:30]):
        results, grads = [], []
        for net in nets:
            g = np.empty_like(net.params)
            results.append(FullBatch(net, X, Y, sw).evaluate(g, rows.astype(np.int64)))
            grads.append(g)
        assert results[0] == pytest.approx(results[1], rel=1e-12)
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10)
