"""The ``fastnn`` command under hostile or oversized input: one line, no traceback,
nothing replaced that should not be, and memory in proportion to the data."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from cli_support import ENV, assert_user_error, fastnn_cmd

from fastnn import io as fio

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def small_csv(path, rows: int = 40, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 3))
    with open(path, "w") as f:
        f.write("a,b,c,label\n")
        for x in X:
            f.write(",".join(repr(float(v)) for v in x) + f",{int(x[0] > 0)}\n")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("robust")
    small_csv(folder / "small.csv")
    fastnn_cmd(
        "train", "small.csv", "--layers", "4", "--epochs", "2", "-o", "model.npz", cwd=folder
    )
    return folder


# -- sizes that do not fit ------------------------------------------------------------------
def test_layers_too_large_for_memory_are_one_line(folder):
    result = fastnn_cmd(
        "train", "small.csv", "--layers", "100000,100000", "-o", "big.npz", cwd=folder, check=False
    )
    assert_user_error(result, "--layers 100000,100000", "GiB", "smaller layers")
    assert not (folder / "big.npz").exists()


# -- overflowing values ---------------------------------------------------------------------
def test_huge_values_give_no_warnings(folder):
    lines = ["a,b,label"] + [
        f"{a}1e308,{b}1e308,{int(a == b)}" for a, b in [("", "-"), ("-", ""), ("", "")] * 7
    ]
    (folder / "huge.csv").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in ENV.items() if k != "PYTHONWARNINGS"}  # warnings shown
    run = [sys.executable, "-m", "fastnn", "train", "huge.csv", "--layers", "3", "--epochs", "3"]
    # Standardised, the values train like any others.
    ok = subprocess.run(
        [*run, "-o", "huge.npz"], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0, ok.stderr
    assert "Warning" not in ok.stderr
    # Unscaled, training diverges: the error is the only line.
    bad = subprocess.run(
        [*run, "--no-scale", "--learning-rate", "1", "-o", "huge2.npz"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_user_error(bad, "diverged")


# -- output files that are not regular files -----------------------------------------------
def test_fifo_output_is_refused(folder):
    fifo = folder / "pipe.csv"
    os.mkfifo(fifo)
    result = fastnn_cmd(
        "predict", "model.npz", "small.csv", "-o", "pipe.csv", cwd=folder, check=False
    )
    assert_user_error(result, "pipe.csv", "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_symlink_to_a_device_is_refused(folder):
    link = folder / "null.npz"
    link.symlink_to("/dev/null")
    result = fastnn_cmd(
        "train", "small.csv", "--epochs", "1", "-o", "null.npz", cwd=folder, check=False
    )
    assert_user_error(result, "null.npz", "symbolic link", "not a regular file")
    assert os.readlink(link) == "/dev/null"


def test_symlink_to_a_regular_file_is_followed(folder):
    (folder / "real.csv").write_text("old\n")
    (folder / "link.csv").symlink_to("real.csv")
    fastnn_cmd("predict", "model.npz", "small.csv", "-o", "link.csv", cwd=folder)
    assert os.readlink(folder / "link.csv") == "real.csv"  # still the link
    assert (folder / "real.csv").read_text().startswith("prediction,")


# -- hostile model files --------------------------------------------------------------------
def _with_checksum(meta: dict, arrays: dict) -> np.ndarray:
    meta = dict(
        meta, arrays={k: {"dtype": a.dtype.str, "shape": list(a.shape)} for k, a in arrays.items()}
    )
    meta["checksum"] = {"algorithm": "sha256", "digest": fio._checksum(meta, arrays)}
    return np.frombuffer(fio._canonical(meta), dtype=np.uint8)


def hostile_models(folder) -> dict[str, str]:
    """name -> a model file crafted to break a careless loader."""
    files = {}

    def write(name, metadata, **arrays):
        np.savez(folder / name, metadata=metadata, **arrays)
        files[name] = name

    write("deep.npz", np.frombuffer(b"[" * 100_000 + b"]" * 100_000, dtype=np.uint8))
    write("list.npz", np.frombuffer(b"[1, 2]", dtype=np.uint8))
    write("bytes.npz", np.frombuffer(b"\xff\xfe", dtype=np.uint8))
    write("nometa.npz", np.zeros(3))
    base = {
        "format": "fastnn",
        "format_version": 1,
        "loss": "mse",
        "dtype": "float64",
        "backend": "numba",
        "layers": [{"type": "Dense", "input_size": 3, "output_size": 1}],
    }
    params = {"params": np.zeros(4)}
    write(
        "huge_layer.npz",
        _with_checksum(
            {**base, "layers": [{"type": "Dense", "input_size": 2**62, "output_size": 2}]}, params
        ),
        **params,
    )
    # A valid network whose preprocessing is nonsense, under a valid checksum.
    for name, extra in {
        "prep_types.npz": {"preprocessing": {"version": 1, "features": 3}},
        "prep_nested.npz": {"preprocessing": [[[[]]]]},
        "prep_width.npz": {
            "preprocessing": {
                "version": 1,
                "features": ["a"],
                "targets": ["y"],
                "categories": {},
                "fill": {},
                "task": "regression",
                "labels": [],
            }
        },
    }.items():
        arrays = {**params, "extra.unit": np.ones(1)}
        write(name, _with_checksum({**base, "extra": extra}, arrays), **arrays)
    (folder / "text.npz").write_text("not a zip\n")
    files["text.npz"] = "text.npz"
    return files


def test_hostile_model_files_are_one_line(folder):
    for name in hostile_models(folder):
        result = fastnn_cmd("predict", name, "small.csv", "-o", "p.csv", cwd=folder, check=False)
        assert_user_error(result, name)
        assert not (folder / "p.csv").exists()


# -- memory in proportion to the file -------------------------------------------------------
def peak_rss_bytes(args, cwd) -> int:
    """Run ``fastnn ARGS`` and return the peak resident memory of that process alone."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastnn", *args],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.stderr.read().decode()
    proc.stderr.close()
    return usage.ru_maxrss * 1024  # kilobytes on Linux


def test_training_memory_is_under_three_times_the_file(tmp_path):
    rng = np.random.default_rng(0)
    n_rows, n_features = 300_000, 10  # ~60 MB: the data, not start-up, sets the peak
    X = rng.standard_normal((n_rows, n_features))
    y = (X[:, 0] > 0).astype(int)
    with open(tmp_path / "big.csv", "w") as f:
        f.write(",".join(f"f{i}" for i in range(n_features)) + ",label\n")
        for row, label in zip(X.tolist(), y.tolist(), strict=True):
            f.write(",".join(map(repr, row)) + f",{label}\n")
    small_csv(tmp_path / "tiny.csv", rows=200)
    size = os.path.getsize(tmp_path / "big.csv")
    args = ["--layers", "8", "--epochs", "1", "-o", "m.npz"]
    baseline = peak_rss_bytes(["train", "tiny.csv", *args], tmp_path)
    peak = peak_rss_bytes(["train", "big.csv", *args], tmp_path)
    # What the data adds to a process that has loaded everything else.
    assert peak - baseline < 3 * size, (peak - baseline) / size
