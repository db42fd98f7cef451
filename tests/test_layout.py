"""The source layout's rules: no import cycles, no file over 700 lines, one home for
the integer codes, and light imports (``import fastnn`` loads no Numba, the benchmarks
load no peer)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from fastnn import codes

ROOT = Path(__file__).resolve().parents[1]
#: Source folders, by the package name each installs as.
SOURCES = {"fastnn": ROOT / "fastnn", "fastnn.kernels": ROOT / "kernels"}
MAX_LINES = 700


def source_files() -> dict[str, Path]:
    """Every module of fastnn, by its dotted name (a package by its own name)."""
    modules = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _under_type_checking(tree: ast.AST) -> set[int]:
    """The ids of the nodes inside ``if TYPE_CHECKING:`` blocks (not run)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skip.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skip


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The fastnn modules that ``name`` imports, at module level or inside functions
    (including ``importlib.import_module`` of a literal name)."""

    def resolve(target: str) -> str | None:
        # The longest known module that ``target`` names (a.b.func -> a.b).
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    tree = ast.parse(path.read_text(), str(path))
    skip = _under_type_checking(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                full = f"{base}.{node.module}" if node.module else base
            else:
                full = node.module or ""
            for alias in node.names:
                # `from . import codes` imports the module fastnn.codes.
                submodule = f"{full}.{alias.name}"
                found.add(submodule if submodule in modules else resolve(full))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(resolve(node.args[0].value))
    found.discard(None)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = source_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "fastnn.network" in graph["fastnn.io"]  # module level
    assert "fastnn.codes" in graph["fastnn.kernels.engine"]  # relative, two levels up
    assert "fastnn.io" in graph["fastnn"]  # inside fastnn.load
    assert "fastnn.kernels" in graph["fastnn.comparisons"]  # `from . import kernels`
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "modules that import each other in a circle: " + "; ".join(
        " <-> ".join(component) for component in found
    )


def test_the_leaf_modules_import_nothing_from_fastnn():
    graph = import_graph()
    for leaf in ("fastnn.codes", "fastnn.files"):
        assert graph[leaf] == set(), f"{leaf} imports {sorted(graph[leaf])}"


@pytest.mark.parametrize("name", sorted(source_files()))
def test_no_file_is_over_700_lines(name):
    path = source_files()[name]
    n_lines = len(path.read_text().splitlines())
    assert n_lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {n_lines} lines"


def _code_names() -> set[str]:
    return {name for name, value in vars(codes).items() if name.isupper() and type(value) is int}


def test_codes_are_defined_only_in_fastnn_codes():
    # Every other module imports them: a second definition could drift from the first.
    names = _code_names()
    assert {"DENSE", "TANH", "MSE", "CROSS_ENTROPY", "SGD", "ADAM"} <= names
    redefined = []
    for name, path in source_files().items():
        if name == "fastnn.codes":
            continue
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name) and leaf.id in names:
                        redefined.append(f"{name}.{leaf.id} (line {node.lineno})")
    assert not redefined, f"codes defined outside fastnn.codes: {redefined}"


def test_codes_are_distinct_within_each_family():
    layer_kinds = [codes.DENSE, *codes.ACTIVATION_CODES.values()]
    for family in (
        layer_kinds,
        list(codes.LOSS_CODES.values()),
        list(codes.OPTIMIZER_CODES.values()),
    ):
        assert len(set(family)) == len(family), family


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after ``statement``."""
    script = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    return set(out.stdout.split())


def test_import_fastnn_loads_neither_numba_nor_the_kernels():
    loaded = _modules_after("import fastnn")
    assert "fastnn.codes" in loaded
    assert not {"numba", "fastnn.kernels"} & loaded


def test_the_benchmarks_load_a_peer_only_when_it_is_used():
    loaded = _modules_after("import fastnn.benchmarks as fb\nfb.persample_workload('smoke')")
    assert "fastnn.benchmarks.workloads.persample" in loaded
    peers = {m for m in loaded if m.startswith("fastnn.benchmarks.peers.")}
    assert not peers, peers
    assert not {"torch", "jax", "sklearn"} & loaded
