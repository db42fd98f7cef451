"""The README's walk-through of the ``fastnn`` command runs as printed: its Python block
writes iris as CSV files, its shell block trains, evaluates and predicts, and what that
prints has the shape the README shows (numbers aside), with a good test accuracy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import ENV

pytest.importorskip("sklearn")

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "### A first model, step by step"
NUMBER = re.compile(r"[-+]?\d[\d.]*(e[-+]?\d+)?")


def walk_through() -> dict[str, str]:
    """The section's python, bash and text blocks."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    section = text[start : text.index("\n### ", start + len(SECTION))]
    blocks = dict(re.findall(r"^```(\w+)\n(.*?)^```", section, re.MULTILINE | re.DOTALL))
    assert set(blocks) == {"python", "bash", "text"}
    return blocks


def shape(output: str) -> list[str]:
    """The lines without their numbers, and without the first run's compile notice."""
    return [NUMBER.sub("#", line) for line in output.splitlines() if "compil" not in line]


def test_walk_through_runs_as_printed(tmp_path, monkeypatch):
    blocks = walk_through()
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks["python"], "README walk-through", "exec"), {"__name__": "__main__"})
    # The commands as printed, with the installed `fastnn` on PATH.
    path = os.path.dirname(sys.executable) + os.pathsep + ENV.get("PATH", "")
    result = subprocess.run(
        ["bash", "-e", "-c", blocks["bash"]],
        cwd=tmp_path,
        env={**ENV, "PATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert shape(result.stdout) == shape(blocks["text"])
    accuracy = float(re.search(r"^accuracy\s+([\d.]+)$", result.stdout, re.M)[1])
    assert accuracy >= 0.9
