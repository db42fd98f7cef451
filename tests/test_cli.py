"""The ``fastnn`` command, driven as a subprocess (``python -m fastnn``) in a temp folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from cli_support import ENV, assert_user_error, fastnn_cmd

import fastnn
from fastnn import cli, plotting
from fastnn.datasets import load_digits, read_table

mpimg = pytest.importorskip("matplotlib.image")
pytest.importorskip("tqdm")


def assert_png(path, size: tuple[int, int]) -> None:
    """``path`` is a real PNG image of ``size`` = (width, height) pixels."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(path)
    assert image.shape[:2] == (size[1], size[0])
    assert image.shape[2] in (3, 4)
    assert image[..., :3].std() > 0.01  # something was drawn


def no_temp_files(folder) -> bool:
    return not [name for name in os.listdir(folder) if name.endswith(".tmp")]


def blobs(n_per_class: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated classes in four features."""
    rng = np.random.default_rng(seed)
    centres = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], dtype=np.float64)
    X = np.concatenate([c + 0.3 * rng.standard_normal((n_per_class, 4)) for c in centres])
    y = np.repeat(np.arange(3), n_per_class)
    return X, y


def write_csv(path, X, y, names=("a", "b", "c", "d"), target="label") -> None:
    with open(path, "w") as f:
        f.write(",".join([*names, target]) + "\n")
        for row, label in zip(X, y, strict=True):
            f.write(",".join(repr(float(v)) for v in row) + f",{label}\n")


def model_inputs(model_path, X: np.ndarray, names=("a", "b", "c", "d")) -> np.ndarray:
    """What the saved model's network sees for the raw rows X (its stored scaling)."""
    from fastnn.io import load_extra
    from fastnn.preprocessing import Preprocessing
    from fastnn.tabular import frame_from_arrays

    net, extra, arrays = load_extra(model_path)
    prep = Preprocessing.from_extra(extra["preprocessing"], arrays, net.n_features, net.n_outputs)
    frame = frame_from_arrays("data", X, None)
    frame.names = list(names)
    return prep.transform(frame)


def metrics(stdout: str) -> dict[str, dict[str, float]]:
    """{"train": {"loss": ..., "accuracy": ...}, "validation": {...}} from train's output."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"(train|validation)\s+(.*)\(\d+ samples\)", line)
        if m:
            pairs = re.findall(r"(\w+) ([-+.\deE]+)", m.group(2))
            out[m.group(1)] = {k: float(v) for k, v in pairs}
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A classifier trained by the command on a CSV file, with its data."""
    folder = tmp_path_factory.mktemp("trained")
    X, y = blobs()
    write_csv(folder / "train.csv", X, y)
    result = fastnn_cmd(
        "train",
        "train.csv",
        "--target",
        "label",
        "--layers",
        "8",
        "--epochs",
        "30",
        "--learning-rate",
        "0.01",
        "--validation-fraction",
        "0",
        "-o",
        "model.npz",
        "--plot",
        "loss.png",
        cwd=folder,
    )
    return folder, X, y, result


# -- help ------------------------------------------------------------------------------
def test_help_describes_every_command_with_an_example(tmp_path):
    result = fastnn_cmd("--help", cwd=tmp_path)
    for command in ("demo", "train", "predict", "evaluate", "bench"):
        assert command in result.stdout
    assert "fastnn train" in result.stdout  # the examples


@pytest.mark.parametrize("command", ["demo", "train", "predict", "evaluate", "bench"])
def test_each_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: fastnn {command}" in text
    assert f"example:\n  fastnn {command}" in text


def test_no_command_prints_help_and_fails(tmp_path):
    result = fastnn_cmd(cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "COMMAND" in result.stderr


# -- demo ------------------------------------------------------------------------------
def test_demo_trains_times_and_plots(tmp_path):
    result = fastnn_cmd("demo", "--quick", "--out-dir", "out", cwd=tmp_path)
    assert re.search(r"XOR.*\n.*\n\s+accuracy \d+%", result.stdout)
    assert re.search(r"test accuracy \d+\.\d%", result.stdout)
    assert "NumPy twin" in result.stdout and "fastnn (numba)" in result.stdout
    # The digits CNN: its accuracy, and its time next to the (scaled) twin's.
    assert re.search(r"1x8x8 images, CNN.*\n.*25% of each digit.*\n\s+test accuracy", result.stdout)
    assert re.search(r"CNN\*\s+\d+\.\d+s\s+\d+\.\d+s\s+\d+\.\dx", result.stdout)
    assert "CNN's twin trained 1 epoch on 100 of the 1347 images" in result.stdout
    assert_png(
        tmp_path / "out" / "xor_decision_surface.png", plotting.pixel_size(plotting.SURFACE_SIZE)
    )
    assert_png(
        tmp_path / "out" / "loss_curves.png", plotting.pixel_size(plotting.LOSS_PANEL_SIZE, 3)
    )


def test_bundled_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    raw, _ = load_digits(scale=False)
    np.testing.assert_array_equal(raw / 16.0, X)


# -- train -----------------------------------------------------------------------------
def test_train_csv_saves_model_and_plot_and_prints_metrics(trained):
    folder, X, y, result = trained
    assert result.stderr == ""  # no progress bar when the output is not a terminal
    found = metrics(result.stdout)
    assert set(found) == {"train"}  # --validation-fraction 0
    net = fastnn.load(folder / "model.npz")
    assert (net.n_features, net.n_outputs, net.loss) == (4, 3, "cross_entropy")
    # The printed metrics are those of the saved model, on the standardised features.
    Xs = model_inputs(folder / "model.npz", X)
    np.testing.assert_allclose(Xs.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Xs.std(axis=0), 1, rtol=1e-12)
    assert found["train"]["loss"] == pytest.approx(net.evaluate(Xs, y), rel=1e-3)
    accuracy = np.mean(net.predict(Xs).argmax(axis=1) == y)
    assert found["train"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert accuracy > 0.9  # three well separated blobs
    assert_png(folder / "loss.png", plotting.pixel_size(plotting.LOSS_PANEL_SIZE))


def test_train_npz_regression_with_validation(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (200, 3))
    y = X @ np.array([0.5, -1.0, 2.0]) + 0.1
    np.savez(tmp_path / "reg.npz", X=X, y=y)
    result = fastnn_cmd(
        "train",
        "reg.npz",
        "--loss",
        "mse",
        "--layers",
        "",
        "--epochs",
        "40",
        "--optimizer",
        "sgd",
        "--learning-rate",
        "0.1",
        "--batch-size",
        "8",
        "--validation-fraction",
        "0.1",
        "-o",
        "reg_model.npz",
        cwd=tmp_path,
    )
    found = metrics(result.stdout)
    assert set(found) == {"train", "validation"}
    assert "accuracy" not in found["train"] and found["train"]["r2"] > 0.9
    net = fastnn.load(tmp_path / "reg_model.npz")
    assert net.n_features == 3 and net.n_outputs == 1
    # A linear model fits a linear target: the loss (on the standardised target, of
    # variance 1) ends far below 1.
    assert found["train"]["loss"] < 0.05
    quiet = fastnn_cmd(
        "train", "reg.npz", "--loss", "mse", "--epochs", "2", "-q", "-o", "quiet.npz", cwd=tmp_path
    )
    assert quiet.stdout == "" and quiet.stderr == ""  # --quiet: nothing but errors


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux pty")
def test_progress_bar_on_a_terminal(trained):
    import fcntl
    import pty
    import struct
    import termios

    folder = trained[0]
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal 100 columns wide, then the command
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
            os.chdir(folder)
            command = (
                "train train.csv --layers 4 --epochs 3 --validation-fraction 0.1 -o tty_model.npz"
            )
            command = command.split()
            os.execve(sys.executable, [sys.executable, "-m", "fastnn", *command], ENV)
        finally:
            os._exit(127)  # only if exec failed: never return into pytest
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert re.search(r"training: 100%.*3/3.*loss=.*val_loss=", text)


# -- predict ---------------------------------------------------------------------------
def test_predict_csv_writes_one_row_per_sample(trained):
    folder, X, _, _ = trained
    fastnn_cmd("predict", "model.npz", "train.csv", "--target", "label", "-o", "p.csv", cwd=folder)
    with open(folder / "p.csv") as f:
        header = f.readline().strip().split(",")
    assert header == ["prediction", "probability_0", "probability_1", "probability_2"]
    table = np.loadtxt(folder / "p.csv", delimiter=",", skiprows=1, ndmin=2)
    assert table.shape == (X.shape[0], 4)
    expected = fastnn.load(folder / "model.npz").predict(model_inputs(folder / "model.npz", X))
    # 6 significant digits by default.
    np.testing.assert_allclose(table[:, 1:], expected, rtol=5e-6, atol=1e-300)
    np.testing.assert_array_equal(table[:, 0], expected.argmax(axis=1))
    fastnn_cmd(
        "predict", "model.npz", "train.csv", "--precision", "12", "-o", "p12.csv", cwd=folder
    )
    table = np.loadtxt(folder / "p12.csv", delimiter=",", skiprows=1, ndmin=2)
    np.testing.assert_allclose(table[:, 1:], expected, rtol=5e-12, atol=1e-300)


def test_predict_npz(trained):
    folder, X, _, _ = trained
    # A .npz file's columns are x0, x1, ...: a model trained on one predicts from one.
    np.savez(folder / "new.npz", X=X, y=np.arange(len(X)) % 3)
    fastnn_cmd("train", "new.npz", "--epochs", "2", "-o", "npz_model.npz", cwd=folder)
    np.savez(folder / "new7.npz", X=X[:7])
    fastnn_cmd("predict", "npz_model.npz", "new7.npz", "-o", "p_npz.csv", cwd=folder)
    table = np.loadtxt(folder / "p_npz.csv", delimiter=",", skiprows=1, ndmin=2)
    assert table.shape == (7, 4)


def test_predict_with_a_bare_network_file(trained, tmp_path):
    """A network saved from Python (no preprocessing) takes every column but --target."""
    folder, X, _, _ = trained
    net = fastnn.load(folder / "model.npz")
    net.save(tmp_path / "bare.npz")
    fastnn_cmd(
        "predict",
        tmp_path / "bare.npz",
        "train.csv",
        "--target",
        "label",
        "-o",
        tmp_path / "bare.csv",
        cwd=folder,
    )
    table = np.loadtxt(tmp_path / "bare.csv", delimiter=",", skiprows=1, ndmin=2)
    np.testing.assert_allclose(table[:, 1:], net.predict(X), rtol=5e-6, atol=1e-300)
    result = fastnn_cmd("predict", tmp_path / "bare.npz", "train.csv", cwd=folder, check=False)
    assert_user_error(result, "5 feature columns", "takes 4", "--target")


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("train", "missing.csv"), ["missing.csv", "no such file"]),
        (("predict", "model.npz", "missing.csv"), ["missing.csv", "no such file"]),
        (("predict", "missing_model.npz", "train.csv"), ["missing_model.npz"]),
        (("predict", "train.csv", "train.csv"), ["not a valid fastnn model"]),
        (("train", "letters.csv"), ["line 3", "'b'", "'x'"]),
        (("train", "short_row.csv"), ["line 2", "header has 5"]),
        (("train", "train.csv", "--target", "nope"), ["'nope'", "columns"]),
        (("predict", "model.npz", "no_d.csv"), ["no column 'd'", "trained on"]),
        (("predict", "model.npz", "two.npz"), ["no column 'a'"]),
        (("train", "train.csv", "--epochs", "0"), ["--epochs"]),
        (
            ("train", "regression.csv", "--task", "classification"),
            ["continuous", "--task regression"],
        ),
    ],
)
def test_bad_input_is_one_line_without_traceback(trained, args, fragments):
    folder = trained[0]
    (folder / "letters.csv").write_text("a,b,c,d,label\n1,2,3,4,0\n1,x,3,4,1\n")
    (folder / "short_row.csv").write_text("a,b,c,d,label\n1,2,3,0\n")
    (folder / "regression.csv").write_text("a,b,c,d,y\n1,2,3,4,0.5\n1,2,3,4,1.5\n")
    (folder / "no_d.csv").write_text("a,b,c,label\n1,2,3,0\n")
    np.savez(folder / "two.npz", X=np.ones((3, 2)))
    assert_user_error(fastnn_cmd(*args, cwd=folder, check=False), *fragments)


def test_missing_matplotlib_names_the_extra(tmp_path):
    # matplotlib hidden: its import fails as if it were not installed.
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from fastnn.cli import main; sys.exit(main())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "demo", "--quick"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_user_error(result, 'pip install ".[cli]" (from a fastnn checkout)')
    assert not list(tmp_path.iterdir())


def test_failed_commands_leave_existing_files_alone(trained):
    folder = trained[0]
    (folder / "keep.csv").write_text("old predictions\n")
    (folder / "keep_model.npz").write_bytes(b"old model")
    (folder / "letters.csv").write_text("a,b,c,d,label\n1,2,3,4,0\n1,x,3,4,1\n")
    # The data does not fit the model: nothing is written.
    (folder / "no_d.csv").write_text("a,b,c,label\n1,2,3,0\n")
    result = fastnn_cmd(
        "predict", "model.npz", "no_d.csv", "-o", "keep.csv", cwd=folder, check=False
    )
    assert_user_error(result)
    assert (folder / "keep.csv").read_text() == "old predictions\n"
    # Malformed training data: the old model stays.
    result = fastnn_cmd("train", "letters.csv", "-o", "keep_model.npz", cwd=folder, check=False)
    assert_user_error(result)
    assert (folder / "keep_model.npz").read_bytes() == b"old model"
    # An unwritable plot path is caught before training, so the model is not replaced either.
    result = fastnn_cmd(
        "train",
        "train.csv",
        "--epochs",
        "1",
        "-o",
        "keep_model.npz",
        "--plot",
        "no/such/folder/loss.png",
        cwd=folder,
        check=False,
    )
    assert_user_error(result, "no/such/folder")
    assert (folder / "keep_model.npz").read_bytes() == b"old model"
    assert no_temp_files(folder)


def test_png_write_that_fails_keeps_the_old_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    target = tmp_path / "curves.png"
    target.write_bytes(b"old image")

    def broken_savefig(self, f, **kwargs):
        f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plotting.plot_loss_curves({"run": {"loss": [1.0, 0.5]}}, target)
    assert target.read_bytes() == b"old image"
    assert no_temp_files(tmp_path)


# -- CSV reading -----------------------------------------------------------------------
def test_read_table_csv_details(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("\ufeffa, b ,t\n1,2,0\n\n3,4,1\n", encoding="utf-8")  # BOM, spaces, blank line
    table = read_table(path)
    assert table.feature_names == ["a", "b"] and table.target_name == "t"
    np.testing.assert_array_equal(table.X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(table.y, [0, 1])
    features_only = read_table(path, need_target=False)
    assert features_only.y is None and features_only.X.shape == (2, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a,b\n", "no data rows"),
        ("a,a\n1,2\n", "twice"),
        ("a,b\n1,\n", "missing value"),
    ],
)
def test_read_table_rejects_malformed_csv(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_table(path)


# -- bench -----------------------------------------------------------------------------
def _benchmarks_with_rows(monkeypatch, rows):
    """fastnn.benchmarks with ``run`` replaced (no benchmark runs); returns its calls."""
    from fastnn import benchmarks

    # bench pins thread variables in os.environ: restore them after the test.
    for name in (*benchmarks.THREAD_ENV, "NUMBA_NUM_THREADS", "XLA_FLAGS"):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    calls = []

    def run(quick=False, threads=None, families=None):
        calls.append((quick, threads) if families is None else (quick, threads, families))
        return rows

    monkeypatch.setattr(benchmarks, "run", run)
    return calls


def bench_row(workload, system, median_s, ratio, status="ok"):
    return {
        "workload": workload,
        "system": system,
        "unit": "run",
        "units": 1,
        "median_s": median_s,
        "unit_us": median_s * 1e6,
        "ratio": ratio,
        "status": status,
        "notes": "",
    }


def test_bench_prints_table_and_writes_json_and_plot(tmp_path, monkeypatch, capsys):
    rows = [
        bench_row("mnist-mlp", "fastnn", 0.5, 1.0),
        bench_row("mnist-mlp", "torch", 1.5, 3.0),
        bench_row("xor", "fastnn", 0.01, 1.0),
        bench_row("xor", "torch", 0.2, 20.0),
    ]
    calls = _benchmarks_with_rows(monkeypatch, rows)
    json_path, png_path = tmp_path / "bench.json", tmp_path / "bench.png"
    status = cli.main(
        ["bench", "--quick", "--threads", "1", "--json", str(json_path), "--plot", str(png_path)]
    )
    assert status == 0
    assert calls == [(True, 1)]
    out = capsys.readouterr().out
    assert "mnist-mlp" in out and "torch" in out and "20.00x" in out
    assert json.loads(json_path.read_text()) == rows
    assert_png(png_path, plotting.pixel_size(plotting.BENCH_SIZE))
    assert no_temp_files(tmp_path)


def test_bench_reports_mismatches(tmp_path, monkeypatch, capsys):
    rows = [bench_row("xor", "fastnn", 0.01, 1.0), bench_row("xor", "jax", 0.02, None, "mismatch")]
    _benchmarks_with_rows(monkeypatch, rows)
    assert cli.main(["bench", "--plot", str(tmp_path / "b.png")]) == 1
    assert "xor/jax" in capsys.readouterr().err
    assert_png(tmp_path / "b.png", plotting.pixel_size(plotting.BENCH_SIZE))


def test_bench_only_runs_the_named_families(monkeypatch, capsys):
    calls = _benchmarks_with_rows(monkeypatch, [bench_row("xor", "fastnn", 0.01, 1.0)])
    assert cli.main(["bench", "--only", "cli, contention", "--threads", "2"]) == 0
    assert calls == [(False, 2, ["cli", "contention"])]


@pytest.mark.parametrize("only", ["cli,nothing", ",", ""])
def test_bench_rejects_unknown_families_before_running(only, monkeypatch, capsys):
    calls = _benchmarks_with_rows(monkeypatch, [])
    assert cli.main(["bench", "--only", only]) == 2
    assert calls == []
    err = capsys.readouterr().err
    assert err.startswith("fastnn: error: --only") and "contention" in err
    assert len(err.strip().splitlines()) == 1


def test_bench_checks_output_paths_before_running(tmp_path, monkeypatch, capsys):
    calls = _benchmarks_with_rows(monkeypatch, [])
    status = cli.main(["bench", "--json", str(tmp_path / "missing" / "b.json")])
    assert status == 2
    assert calls == []
    assert "does not exist" in capsys.readouterr().err
