"""Start-up: ``import fastnn`` in a fresh process (next to torch and jax), and the
first XOR fit in a fresh process with a warm and with an empty Numba cache."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import numpy as np

from ..cases import Case, Unavailable, Workload, optional
from ..pinning import child_environment
from ..sizes import sizes_of

_IMPORT_SCRIPT = """\
import json, time
start = time.perf_counter()
import {module}
print(json.dumps({{"seconds": time.perf_counter() - start}}))
"""

_FIRST_FIT_SCRIPT = """\
import json, time
import numpy as np
import fastnn as fn
start = time.perf_counter()
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
net = fn.Network([fn.Dense(2, 3), fn.Tanh(), fn.Dense(3, 1), fn.Tanh()], loss="mse",
                 dtype=np.float64, backend={backend!r}, seed=0)
net.fit(X, Y, epochs=1, learning_rate=0.1)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "params": net.params.tolist()}}))
"""


class ChildProcess(Case):
    """A Python script in a fresh process; the time is the one it measures itself.

    With ``cold_cache``, every run gets an empty Numba cache directory, so it
    compiles everything it calls.
    """

    def __init__(self, system, script, threads, *, cold_cache=False, **kwargs):
        super().__init__(system, units=1, **kwargs)
        self.script, self.cold = script, cold_cache
        self.env = child_environment(threads)
        self._cache: tempfile.TemporaryDirectory | None = None

    def reset(self) -> None:
        if self.cold:
            self.close()
            self._cache = tempfile.TemporaryDirectory(prefix="fastnn-numba-cache-")
            self.env["NUMBA_CACHE_DIR"] = self._cache.name

    def run(self) -> float:
        proc = subprocess.run(
            [sys.executable, "-c", self.script],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{self.system} child process failed:\n{proc.stderr[-2000:]}")
        self.out = json.loads(proc.stdout.strip().splitlines()[-1])
        return float(self.out["seconds"])

    def result(self) -> dict:
        return self.out

    def close(self) -> None:
        if self._cache is not None:
            self._cache.cleanup()
            self._cache = None


def _params_agree(got: dict, want: dict) -> str | None:
    a, e = np.asarray(got["params"]), np.asarray(want["params"])
    if a.shape != e.shape or not np.allclose(a, e, rtol=1e-9, atol=1e-12):
        return f"first-fit weights differ: {a} vs {e}"
    return None


def _ran(got: dict, want: dict) -> str | None:
    return None if got.get("seconds", -1) >= 0 and want.get("seconds", -1) >= 0 else "no time"


def startup_workloads(size: str = "full", threads: int = 1) -> list[Workload]:
    """``import fastnn`` in a fresh process (next to torch and jax), and the first XOR
    fit in a fresh process with a warm and with an empty Numba cache."""
    s = sizes_of(size)

    def importer(system: str, module: str):
        def build():
            if module != "fastnn" and optional(module) is None:
                raise Unavailable(f"{module} is not installed")
            return ChildProcess(system, _IMPORT_SCRIPT.format(module=module), threads)

        return build

    def first_fit(system: str, backend: str, cold: bool):
        script = _FIRST_FIT_SCRIPT.format(backend=backend)
        return lambda: ChildProcess(
            system, script, threads, cold_cache=cold, repeats=s.cold_repeats if cold else None
        )

    imports = Workload(
        name="startup-import",
        group="startup-import",
        unit="run",
        builders={
            "fastnn": importer("fastnn", "fastnn"),
            "torch": importer("torch", "torch"),
            "jax": importer("jax", "jax"),
        },
        compare=_ran,
        oracle="fastnn",
        repeats=s.repeats,
        notes="`import MODULE` in a fresh process, timed inside it",
    )
    warm = Workload(
        name="startup-xor-first-fit-warm-cache",
        group="startup-xor-first-fit-warm-cache",
        unit="run",
        builders={
            "fastnn": first_fit("fastnn", "numba", False),
            "fastnn-numpy": first_fit("fastnn-numpy", "numpy", False),
        },
        compare=_params_agree,
        repeats=s.repeats,
        notes="Network + fit(epochs=1) of XOR in a fresh process, Numba cache warm",
    )
    workloads = [imports, warm]
    if s.cold_start:
        cold = Workload(
            name="startup-xor-first-fit-cold-cache",
            group="startup-xor-first-fit-cold-cache",
            unit="run",
            builders={
                "fastnn": first_fit("fastnn", "numba", True),
                "fastnn-numpy": first_fit("fastnn-numpy", "numpy", True),
            },
            compare=_params_agree,
            repeats=s.cold_repeats,
            notes="as warm, with an empty NUMBA_CACHE_DIR: the cold-compile time",
        )
        workloads.append(cold)
    return workloads


workloads = startup_workloads
