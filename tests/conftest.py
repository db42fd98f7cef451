"""Shared fixtures of the test suite.

``measured`` records the largest error each tolerance-checked comparison reached, and
the end of the run prints them, so a tolerance can be judged against the error it
actually guards.
"""

from __future__ import annotations

import numpy as np
import pytest


class Measured:
    """The largest value recorded under each name."""

    def __init__(self) -> None:
        self.worst: dict[str, float] = {}

    def __call__(self, name: str, value: float) -> float:
        value = float(value)
        if value > self.worst.get(name, -np.inf) or np.isnan(value):
            self.worst[name] = value
        return value


_MEASURED = Measured()


@pytest.fixture(scope="session")
def measured() -> Measured:
    """``measured(name, value)`` keeps the largest ``value`` per ``name`` and returns
    ``value``, for use inside an assertion."""
    return _MEASURED


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator: every test sees the same data on every run."""
    return np.random.default_rng(20240607)


def pytest_terminal_summary(terminalreporter) -> None:
    if not _MEASURED.worst:
        return
    terminalreporter.section("largest measured differences")
    for name in sorted(_MEASURED.worst):
        terminalreporter.write_line(f"{name:<60} {_MEASURED.worst[name]:.3e}")
