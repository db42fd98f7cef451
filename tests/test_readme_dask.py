"""The README's Dask search example, run as the script it is: a fresh Python whose
``__main__`` it is, with worker processes that import it again when they start."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_readme import README, missing_modules, python_blocks

pytest.importorskip("sklearn")
pytest.importorskip("distributed")

# Each import of the script appends its module name here: the script itself runs as
# "__main__", each worker process imports it as "__mp_main__".
MARKER = 'open("imports.log", "a").write(__name__ + "\\n")\n'


def dask_example() -> str:
    blocks = [b for b in python_blocks(README.read_text(encoding="utf-8")) if "LocalCluster" in b]
    search = [b for b in blocks if "configure_cluster" in b]
    assert len(search) == 1, "README.md should hold one Dask search example"
    return search[0]


def test_dask_example_runs_once_as_a_script(tmp_path):
    code = dask_example()
    missing = missing_modules(code)
    if missing:
        pytest.skip(f"the README's Dask example needs {', '.join(missing)}")
    (tmp_path / "example.py").write_text(MARKER + code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    threads_line, best_line = result.stdout.splitlines()
    # One worker thread each: Numba's pool in every worker has one thread.
    threads = ast.literal_eval(threads_line)
    assert len(threads) == 2 and set(threads.values()) == {1}, threads_line
    best = ast.literal_eval(best_line)
    assert best["fastmlpclassifier__hidden_layer_sizes"] in [(8,), (32,)]
    imports = Path(tmp_path / "imports.log").read_text().split()
    # The script body ran once; the workers (started, then restarted) only imported it.
    assert imports.count("__main__") == 1, imports
    assert imports.count("__mp_main__") >= 2 and set(imports) == {"__main__", "__mp_main__"}
