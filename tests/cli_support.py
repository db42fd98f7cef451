"""Running the ``fastnn`` command as a subprocess in tests, and checking its errors."""

from __future__ import annotations

import os
import subprocess
import sys

ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def fastnn_cmd(*args, cwd, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "fastnn", *map(str, args)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fastnn: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
