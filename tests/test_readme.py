"""The README's Python examples run as shown.

Every ```python block of README.md runs, in order, in one namespace (later blocks
use what earlier ones defined), in a temporary working directory, with
``__name__ == "__main__"``. When a block imports a module that is not installed,
the test stops there and is skipped, like ``pytest.importorskip``.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(markdown: str) -> list[str]:
    """The code of each ```python fenced block, in order."""
    return [match.group(1) for match in FENCE.finditer(markdown)]


def missing_modules(code: str) -> list[str]:
    """Top-level modules that ``code`` imports and that are not installed."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


def run_blocks(blocks: list[str], label: str = "README.md") -> dict:
    """Run ``blocks`` in one namespace; skip the test at the first block whose
    imports are missing. Returns the namespace."""
    namespace: dict = {"__name__": "__main__"}
    for number, code in enumerate(blocks, start=1):
        missing = missing_modules(code)
        if missing:
            pytest.skip(f"{label} block {number} needs {', '.join(missing)}, not installed")
        exec(compile(code, f"{label} python block {number}", "exec"), namespace)
    return namespace


def test_block_extraction_and_skipping():
    text = (
        "Intro\n```python\nx = 1\n```\n\n```bash\nrm -rf /\n```\n"
        "```python\nimport math\ny = x + math.floor(1.5)\n```\n"
    )
    blocks = python_blocks(text)
    assert blocks == ["x = 1\n", "import math\ny = x + math.floor(1.5)\n"]
    assert run_blocks(blocks)["y"] == 2
    assert missing_modules("import os\nfrom no_such_module_xyz import a\n") == [
        "no_such_module_xyz"
    ]
    with pytest.raises(pytest.skip.Exception, match="no_such_module_xyz"):
        run_blocks(["import no_such_module_xyz\n"])


def test_readme_examples_run(tmp_path, monkeypatch):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```python examples"
    monkeypatch.chdir(tmp_path)
    run_blocks(blocks)
