"""Saving and loading networks: exact round trips, atomic writes, clear errors."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

import fastnn as fn
from fastnn import io

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 4))
LABELS = RNG.integers(0, 3, size=40)


def make_net(dtype=np.float64, backend="numba", loss="cross_entropy", seed=1) -> fn.Network:
    n_out = 3 if loss == "cross_entropy" else 1
    layers = [fn.Dense(4, 6), fn.Tanh(), fn.Dense(6, 5, init="lecun"), fn.ReLU()]
    layers += [fn.Dense(5, n_out), fn.Sigmoid()] if loss == "mse" else [fn.Dense(5, n_out)]
    return fn.Network(layers, loss=loss, dtype=dtype, backend=backend, seed=seed)


def targets(loss: str) -> np.ndarray:
    return LABELS if loss == "cross_entropy" else (LABELS == 1).astype(float).reshape(-1, 1)


def read_raw(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def write_raw(path, arrays: dict[str, np.ndarray], meta: dict | None = None, rehash=True):
    """Rewrite a model file with edited arrays and metadata, optionally with a
    valid checksum for the edit (to test the checks behind the checksum)."""
    arrays = dict(arrays)
    if meta is not None:
        content = {k: v for k, v in arrays.items() if k != io.METADATA_KEY}
        if rehash:
            meta["checksum"]["digest"] = io._checksum(meta, content)
        arrays[io.METADATA_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def metadata_of(arrays) -> dict:
    return json.loads(arrays[io.METADATA_KEY].tobytes().decode())


@pytest.fixture
def saved(tmp_path):
    net = make_net()
    net.fit(X, LABELS, epochs=2, learning_rate=0.05, batch_size=8, optimizer="adam")
    path = tmp_path / "model.npz"
    net.save(path)
    return net, path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_round_trip_predicts_bitwise(tmp_path, dtype, backend, loss):
    net = make_net(dtype, backend, loss)
    net.fit(X, targets(loss), epochs=2, learning_rate=0.05)
    path = tmp_path / "m.npz"
    net.save(path)
    loaded = fn.load(path)
    assert loaded.dtype == net.dtype and loaded.backend == backend and loaded.loss == loss
    assert [repr(a) for a in loaded.layers] == [repr(b) for b in net.layers]
    assert [getattr(a, "init", None) for a in loaded.layers] == [
        getattr(b, "init", None) for b in net.layers
    ]
    expected = net.predict(X)
    got = loaded.predict(X)
    assert got.dtype == expected.dtype
    assert np.array_equal(got.view(np.uint8), expected.view(np.uint8))


def test_training_continues_exactly_after_load(tmp_path):
    # Per-sample SGD with shuffling: the generator's state must be restored too.
    a = make_net()
    a.fit(X, LABELS, epochs=2, learning_rate=0.05, shuffle=True)
    a.save(tmp_path / "m.npz")
    b = fn.load(tmp_path / "m.npz")
    a.fit(X, LABELS, epochs=3, learning_rate=0.05, shuffle=True)
    b.fit(X, LABELS, epochs=3, learning_rate=0.05, shuffle=True)
    assert np.array_equal(a.params, b.params)


def test_adam_state_is_saved_and_resumed(saved, tmp_path):
    net, path = saved
    loaded = fn.load(path)
    assert loaded.optimizer is not None and loaded.optimizer is not net.optimizer
    assert loaded.optimizer.get_config() == net.optimizer.get_config()
    assert loaded.optimizer.step == net.optimizer.step > 0
    for key, value in net.optimizer.state.items():
        assert np.array_equal(loaded.optimizer.state[key], value)
    # Resuming with the saved moments gives the same weights as never stopping;
    # restarting Adam from zero moments would not.
    net.fit(X, LABELS, epochs=2, learning_rate=0.05, batch_size=8, optimizer="adam")
    loaded.fit(X, LABELS, epochs=2, learning_rate=0.05, batch_size=8, optimizer="adam")
    assert np.array_equal(net.params, loaded.params)


def test_untrained_network_has_no_optimizer(tmp_path):
    net = make_net(seed=None)
    net.save(tmp_path / "m.npz")
    loaded = fn.load(tmp_path / "m.npz")
    assert loaded.optimizer is None and loaded.seed is None
    assert np.array_equal(loaded.params, net.params)
    loaded.fit(X, LABELS, epochs=1)  # trains after loading
    assert not np.array_equal(loaded.params, net.params)


def test_file_layout_is_plain_arrays_and_json(saved):
    net, path = saved
    arrays = read_raw(path)
    assert set(arrays) == {"metadata", "params", "optimizer.a", "optimizer.b"}
    assert arrays["metadata"].dtype == np.uint8
    meta = metadata_of(arrays)
    assert meta["format"] == "fastnn" and meta["format_version"] == io.FORMAT_VERSION
    assert meta["layers"][:2] == [
        {"type": "Dense", "input_size": 4, "output_size": 6, "init": None},
        {"type": "Tanh"},
    ]
    assert meta["layers"][2]["init"] == "lecun"
    assert (meta["loss"], meta["dtype"], meta["backend"]) == ("cross_entropy", "float64", "numba")
    assert meta["optimizer"]["config"] == net.optimizer.get_config()
    assert meta["checksum"]["algorithm"] == "sha256"
    assert np.array_equal(arrays["params"], net.params)


def test_path_is_used_as_given(tmp_path):
    make_net().save(str(tmp_path / "model.fastnn"))
    assert os.listdir(tmp_path) == ["model.fastnn"]
    assert isinstance(fn.load(str(tmp_path / "model.fastnn")), fn.Network)


def test_crash_while_saving_keeps_the_old_file(saved, monkeypatch):
    net, path = saved
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a model")
        raise OSError("disk full")

    monkeypatch.setattr(io.np, "savez", crash)
    net.params[:] = 0
    with pytest.raises(OSError, match="disk full"):
        net.save(path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]  # the temporary file is gone


def test_overwrite_replaces_the_file(saved):
    net, path = saved
    net.params[:] = 0.5
    net.save(path)
    assert np.all(fn.load(path).params == 0.5)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fn.load(tmp_path / "nope.npz")


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"corrupt or truncated|not a readable"),
        (b"hello, this is text", r"not a readable \.npz"),
    ],
)
def test_non_model_files(tmp_path, content, match):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        fn.load(path)


def test_npy_file(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(3.0))
    with pytest.raises(ValueError, match=r"single \.npy array"):
        fn.load(tmp_path / "a.npy")


def test_npz_of_someone_else(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(ValueError, match="no 'metadata' entry"):
        fn.load(tmp_path / "other.npz")


def test_truncated_file(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid fastnn model file"):
        fn.load(path)


def test_tampered_parameters_fail_the_checksum(saved):
    _, path = saved
    arrays = read_raw(path)
    arrays["params"][0] += 1.0
    write_raw(path, arrays)
    with pytest.raises(ValueError, match="checksum does not match"):
        fn.load(path)


def test_tampered_metadata_fails_the_checksum(saved):
    _, path = saved
    arrays = read_raw(path)
    meta = metadata_of(arrays)
    meta["layers"][1] = {"type": "ReLU"}
    write_raw(path, arrays, meta, rehash=False)
    with pytest.raises(ValueError, match="checksum does not match"):
        fn.load(path)


def test_newer_format_version(saved):
    _, path = saved
    arrays = read_raw(path)
    meta = metadata_of(arrays)
    meta["format_version"] = io.FORMAT_VERSION + 1
    write_raw(path, arrays, meta)
    with pytest.raises(ValueError, match=r"newer than the version .* upgrade fastnn"):
        fn.load(path)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.update(format="other"), "does not name the format"),
        (lambda m: m.update(format_version="1"), "not a positive integer"),
        (lambda m: m["layers"].append({"type": "Softplus"}), "unknown type 'Softplus'"),
        (lambda m: m["layers"][0].update(output_size=7), "do not fit the layers"),
        (
            lambda m: m["layers"].insert(1, {"type": "Dense", "input_size": 6, "output_size": 6}),
            "do not fit the layers",
        ),
        (lambda m: m.update(loss="hinge"), "network description is invalid"),
        (lambda m: m["optimizer"]["config"].update(name="lbfgs"), "optimizer settings"),
    ],
)
def test_invalid_metadata(saved, edit, match):
    _, path = saved
    arrays = read_raw(path)
    meta = metadata_of(arrays)
    edit(meta)
    write_raw(path, arrays, meta)
    with pytest.raises(ValueError, match=match):
        fn.load(path)


def test_wrong_parameter_count(saved):
    _, path = saved
    arrays = read_raw(path)
    meta = metadata_of(arrays)
    arrays["params"] = arrays["params"][:-1]
    meta["arrays"]["params"]["shape"] = [arrays["params"].size]
    write_raw(path, arrays, meta)
    with pytest.raises(ValueError, match="do not fit the layers"):
        fn.load(path)


def test_undeclared_array(saved):
    _, path = saved
    arrays = read_raw(path)
    arrays["extra"] = np.zeros(2)
    write_raw(path, arrays)
    with pytest.raises(ValueError, match="do not match those its metadata lists"):
        fn.load(path)


class _Payload:
    ran = False

    def __reduce__(self):
        return (_set_ran, ())


def _set_ran():
    _Payload.ran = True
    return "ran"


def test_pickled_content_is_never_unpickled(saved):
    _, path = saved
    arrays = read_raw(path)
    arrays["params"] = np.array([_Payload()], dtype=object)
    np.savez(path, allow_pickle=True, **arrays)
    assert b"_set_ran" in path.read_bytes()  # the pickle really is in the file
    with pytest.raises(ValueError, match=r"holds Python objects \(a pickle\)"):
        fn.load(path)
    assert not _Payload.ran
    assert pickle.loads(pickle.dumps(_Payload())) == "ran"  # the payload works


def test_save_rejects_bad_arguments(tmp_path):
    net = make_net()
    with pytest.raises(TypeError, match="fastnn Network"):
        io.save("not a network", tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"str or os\.PathLike"):
        net.save(42)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.save(tmp_path / "missing" / "m.npz")
    with pytest.raises(IsADirectoryError):
        net.save(tmp_path)
    with pytest.raises(TypeError, match=r"str or os\.PathLike"):
        fn.load(None)


def test_bytes_round_trip(saved):
    net, path = saved
    data = io.to_bytes(net)
    assert data[:2] == b"PK"  # the same .npz content save writes
    again = io.from_bytes(data)
    assert np.array_equal(again.predict(X), net.predict(X))
    assert np.array_equal(io.from_bytes(path.read_bytes()).params, net.params)
    # Flipped bytes inside the archive: the zip's own CRC catches them first.
    with pytest.raises(ValueError, match="corrupt"):
        io.from_bytes(data.replace(net.params[:4].tobytes(), b"\0" * 32))
    with pytest.raises(TypeError, match="expects bytes"):
        io.from_bytes("text")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_file_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        make_net().save(tmp_path / "new.npz")
    finally:
        os.umask(umask)
    assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o644  # as any new file
    path = tmp_path / "kept.npz"
    make_net().save(path)
    path.chmod(0o600)
    make_net().save(path)
    assert path.stat().st_mode & 0o777 == 0o600  # a replaced file keeps its mode


@pytest.mark.parametrize("seed", [np.int64(7), [1, 2, 3]])
def test_seed_kinds_round_trip(tmp_path, seed):
    net = make_net(seed=seed)
    net.save(tmp_path / "m.npz")
    loaded = fn.load(tmp_path / "m.npz")
    assert loaded.seed == (int(seed) if np.isscalar(seed) else list(seed))
    assert np.array_equal(loaded.params, net.params)


def test_unsavable_seed(tmp_path):
    net = make_net()
    net.seed = np.random.SeedSequence(1)
    with pytest.raises(TypeError, match="seed"):
        net.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
