"""The benchmark runner of ``fastnn.benchmarks``: rows, cross-checks, table, JSON, CLI.

Times are never asserted; only their bookkeeping (medians of the recorded repeats,
ratios to fastnn, per-unit values) is.
"""

from __future__ import annotations

import json
import os
import statistics

import numpy as np
import pytest

from fastnn import benchmarks as fb


@pytest.fixture(scope="module")
def xor_rows():
    messages: list[str] = []
    rows = fb.run(quick=True, threads=1, families=["xor"], log=messages.append)
    assert any("timing fastnn" in m for m in messages)
    return rows


def test_run_rows_and_their_bookkeeping(xor_rows):
    sizes = fb.SIZE_TABLE["quick"]
    assert [r["system"] for r in xor_rows] == ["fastnn", "fastnn-numpy"]
    fast, twin = xor_rows
    for row in xor_rows:
        assert row["workload"] == f"xor-{sizes.xor_epochs}-epochs"
        assert row["status"] == "ok", row["notes"]
        assert row["threads"] == 1 and row["unit"] == "sample"
        assert row["units"] == 4 * sizes.xor_epochs
        assert len(row["times_s"]) == row["n_repeats"] > 1
        assert row["median_s"] == statistics.median(row["times_s"]) > 0
        assert row["unit_us"] == pytest.approx(row["median_s"] / row["units"] * 1e6)
        assert "BLAS" in row["pinned"] and "numba: 1" in row["pinned"]
        assert row["sgemm"]["n"] == 2048 and row["sgemm"]["gflops"] > 0
    assert fast["n_repeats"] == sizes.repeats and twin["n_repeats"] == sizes.slow_repeats
    assert fast["ratio"] == 1.0
    assert twin["ratio"] == pytest.approx(twin["median_s"] / fast["median_s"])
    assert "scaled x10" in twin["notes"]


def test_format_table_puts_systems_side_by_side(xor_rows):
    extra = [
        {**xor_rows[0], "workload": "w2", "system": "torch", "status": "skipped",
         "notes": "torch is not installed", "median_s": None, "unit_us": None, "ratio": None},
        {**xor_rows[0], "workload": "w2", "system": "jax", "status": "mismatch",
         "notes": "layer 0 W differs", "median_s": None, "unit_us": None, "ratio": None},
    ]  # fmt: skip
    table = fb.format_table([*xor_rows, *extra])
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("workload"))
    assert header.split()[2:] == ["fastnn", "fastnn-numpy", "torch", "jax"]
    xor_line = next(line for line in lines if line.startswith(xor_rows[0]["workload"]))
    assert "(1.00x)" in xor_line and f"({fb.format_ratio(xor_rows[1]['ratio'])})" in xor_line
    w2 = next(line for line in lines if line.startswith("w2 "))
    assert "skipped" in w2 and "MISMATCH" in w2
    assert "torch is not installed" in table and "layer 0 W differs" in table
    assert f"{xor_rows[0]['workload']}: {xor_rows[0]['about']}" in table
    assert "BLAS" in table and "torch" in table.split("workload")[0]
    rate = f"{xor_rows[0]['sgemm']['gflops']:.1f} GFLOP/s"
    assert "single-core sgemm (2048x2048 float32" in table.split("workload")[0]
    assert rate in table.split("workload")[0]
    assert fb.format_table([]) == "no benchmark rows"


def test_write_json_round_trip_and_atomicity(xor_rows, tmp_path):
    path = tmp_path / "bench.json"
    fb.write_json(xor_rows, path)
    assert json.loads(path.read_text()) == xor_rows
    before = path.read_bytes()
    with pytest.raises(ValueError):
        fb.write_json([{**xor_rows[0], "median_s": float("nan")}], path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["bench.json"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fb.write_json(xor_rows, tmp_path / "missing" / "bench.json")


def _small_persample(**builders) -> fb.Workload:
    workload = fb.persample_workload("smoke", 1, systems=("fastnn", "fastnn-numpy", "numpy-tuned"))
    workload.builders.update(builders)
    return workload


def test_a_system_that_disagrees_is_reported_and_not_timed():
    arch = fb.Arch((784, 128, 10), "tanh", "sigmoid", "mse")
    init = fb.initial_weights(arch)
    X, Y = fb.synthetic(fb.SIZE_TABLE["smoke"].persample, 784, 10)
    # Twice the learning rate: a wrong implementation the check must catch.
    wrong = _small_persample(
        **{"numpy-tuned": lambda: fb.TunedCase(arch, init, X, Y, "persample", learning_rate=0.02)}
    )
    rows = {r["system"]: r for r in fb.run_workload(wrong, 1, log=lambda m: None)}
    assert rows["fastnn"]["status"] == rows["fastnn-numpy"]["status"] == "ok"
    bad = rows["numpy-tuned"]
    assert bad["status"] == "mismatch" and "differs" in bad["notes"]
    assert bad["median_s"] is None and bad["ratio"] is None and bad["n_repeats"] == 0


def test_an_unavailable_system_is_skipped_with_its_reason():
    def missing():
        raise fb.Unavailable("not installed here")

    rows = {
        r["system"]: r
        for r in fb.run_workload(_small_persample(torch=missing), 1, log=lambda m: None)
    }
    assert rows["torch"]["status"] == "skipped"
    assert rows["torch"]["notes"] == "not installed here"
    assert rows["numpy-tuned"]["status"] == "ok"


def test_weights_check_is_not_vacuous():
    init = [(np.zeros((2, 3)), np.zeros(2))]
    compare = fb.weights_agree(1e-3, 1e-5, initial=init)
    assert compare(init, init) is not None  # the run did not move the weights
    moved = [(np.full((2, 3), 0.1), np.zeros(2))]
    assert compare(moved, moved) is None
    assert "differs" in compare([(np.full((2, 3), 0.2), np.zeros(2))], moved)


def test_systems_are_timed_round_robin():
    # One run of each system per round, so drift on a shared machine falls on all.
    order: list[str] = []

    class Recorder(fb.Case):
        def run(self):
            order.append(self.system)
            return 1.0 if self.system == "fastnn" else 2.0

        def result(self):
            return 0

    workload = fb.Workload(
        name="round-robin",
        group="round-robin",
        unit="run",
        builders={
            "fastnn": lambda: Recorder("fastnn", units=1),
            "fastnn-numpy": lambda: Recorder("fastnn-numpy", units=1),
            "torch": lambda: Recorder("torch", units=1, repeats=2),
        },
        compare=lambda got, want: None,
        repeats=3,
    )
    rows = fb.run_workload(workload, threads=1, log=lambda message: None)
    warmup = ["fastnn", "fastnn-numpy", "torch"]
    assert order == [*warmup, *warmup, *warmup, "fastnn", "fastnn-numpy"]
    assert [r["n_repeats"] for r in rows] == [3, 3, 2]
    assert [r["ratio"] for r in rows] == [1.0, 2.0, 2.0]


def test_pinned_threads_pins_and_restores():
    import numba

    before = numba.get_num_threads()
    with fb.pinned_threads(1, runtimes=False) as report:
        assert numba.get_num_threads() == report["numba"] == 1
        assert report["blas"] and all(lib["threads"] == 1 for lib in report["blas"])
        if report["torch"] is not None:
            assert report["torch"]["intra_op"] == 1
        if report["xla"] is not None:
            assert report["xla"]["threads"] == 1
    assert numba.get_num_threads() == before


def test_main_prints_the_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "rows.json"
    status = fb.main(["--quick", "--threads", "1", "--only", "xor", "--json", str(path)])
    out = capsys.readouterr().out
    assert status == 0
    assert "xor-1000-epochs" in out and "BLAS" in out and "fastnn-numpy" in out
    rows = json.loads(path.read_text())
    assert [r["system"] for r in rows] == ["fastnn", "fastnn-numpy"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--threads", "0"], "positive number of threads"),
        (["--only", "nothing"], "unknown ['nothing']"),
        (["--json", "/nonexistent-dir/rows.json"], "does not exist"),
    ],
)
def test_main_rejects_bad_arguments_before_running(argv, message, capsys, monkeypatch):
    def run(*args, **kwargs):
        raise AssertionError("ran the benchmarks despite bad arguments")

    monkeypatch.setattr(fb.runner, "run", run)  # what main calls
    with pytest.raises(SystemExit) as exit_info:
        fb.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_run_rejects_an_unknown_family():
    with pytest.raises(ValueError, match="unknown benchmark family 'bogus'"):
        fb.run(quick=True, threads=1, families=["bogus"])
    with pytest.raises(ValueError, match="threads"):
        fb.run(quick=True, threads=0, families=["xor"])
