"""Smoke run of the warm-predict comparison (``bench/warm_predict.py``): one timed round,
rows in the benchmarks' format, both systems' predictions checked. Times are never
asserted."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

import warm_predict


def test_warm_predict_rows():
    messages = []
    rows = warm_predict.run(repeats=1, log=messages.append)
    assert [r["system"] for r in rows] == ["fastnn", "sklearn"]
    assert all(r["status"] == "ok" and r["median_s"] > 0 for r in rows), rows
    assert rows[0]["ratio"] == 1.0
    assert rows[1]["ratio"] == pytest.approx(rows[1]["median_s"] / rows[0]["median_s"])
    assert "OPENBLAS_NUM_THREADS=1" in messages[0]
    table = warm_predict.format_rows(rows)
    assert warm_predict.WORKLOAD in table and "sklearn" in table
