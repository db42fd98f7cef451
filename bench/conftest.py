"""pytest-benchmark setup for fastnn: thread pins, benchmark sizes, and the shared runner.

With timings off (``--benchmark-disable``, the project default) every benchmark runs
its smoke size once: a cross-check of the system against its reference, which is
the same run the timing would start with. With ``--benchmark-enable`` the
benchmarks run at ``--bench-size`` (full by default) and are timed.

Every runtime is pinned to ``--bench-threads`` (default 1) while the benchmarks in
this folder run; the pytest header prints what that pins, library by library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from fastnn import benchmarks


def pytest_addoption(parser) -> None:
    group = parser.getgroup("fastnn-bench", "fastnn benchmarks")
    group.addoption(
        "--bench-threads",
        type=int,
        default=1,
        metavar="N",
        help="threads for every runtime in bench/ (Numba, BLAS, OpenMP, torch, XLA); default 1",
    )
    group.addoption(
        "--bench-size",
        choices=("full", "quick"),
        default="full",
        help="workload sizes when timings are on (with timings off: the smoke sizes)",
    )


def bench_threads_of(config) -> int:
    threads = config.getoption("bench_threads")
    if threads < 1:
        raise pytest.UsageError(f"--bench-threads {threads}: use a positive number, e.g. 1")
    return threads


def timings_off(config) -> bool:
    """pytest-benchmark's own rule for ``--benchmark-disable`` / ``--benchmark-enable``."""
    return bool(config.getoption("benchmark_disable", False)) and not config.getoption(
        "benchmark_enable", False
    )


def bench_size_of(config) -> str:
    return "smoke" if timings_off(config) else config.getoption("bench_size")


def pytest_configure(config) -> None:
    # XLA reads its flags once, when JAX starts: set them before anything imports it.
    benchmarks.pin_environment(bench_threads_of(config), runtimes=False)


def pytest_report_header(config) -> list[str]:
    threads = bench_threads_of(config)
    with benchmarks.pinned_threads(threads, runtimes=False) as report:
        lines = benchmarks.describe_threads(report).splitlines()
    size = bench_size_of(config)
    head = f"fastnn benchmarks (bench/): size {size}, threads pinned while they run:"
    return [head, *(f"  {line}" for line in lines)]


def pytest_generate_tests(metafunc) -> None:
    # The widths of the scaling benchmark depend on the size, known at collection.
    if "hidden" in metafunc.fixturenames:
        metafunc.parametrize("hidden", benchmarks.scaling_sizes(bench_size_of(metafunc.config)))


@pytest.fixture(scope="module")
def two_threads(request) -> Iterator[int]:
    """For a module whose workloads compare thread counts: every runtime pinned to
    ``--bench-threads`` raised to two, which it yields; skips the module's benchmarks
    on a machine with one core. Such a module overrides ``pinned_runtimes`` with it."""
    if benchmarks.resolve_threads(None) < 2:
        pytest.skip("these benchmarks need two cores")
    threads = max(2, bench_threads_of(request.config))
    with benchmarks.pinned_threads(threads, runtimes=False):
        yield threads


@pytest.fixture(scope="module", autouse=True)
def pinned_runtimes(request):
    """Pins every runtime for this module's benchmarks; restored afterwards."""
    with benchmarks.pinned_threads(bench_threads_of(request.config), runtimes=False) as report:
        yield report


@pytest.fixture
def bench_threads(request) -> int:
    return bench_threads_of(request.config)


@pytest.fixture
def bench_size(request, benchmark) -> str:
    """ "smoke" while timings are off, else ``--bench-size``."""
    return "smoke" if benchmark.disabled else request.config.getoption("bench_size")


@pytest.fixture
def measure(benchmark) -> Callable[[benchmarks.Workload, str], benchmarks.Case]:
    """``measure(workload, system)``: cross-check ``system`` against its reference,
    then time it with ``benchmark.pedantic`` in the workload's group (timings on).

    Skips when the system (or its reference, and the workload's fallback for it) is
    not available here; fails when the system disagrees with its reference.
    """

    def measure(workload: benchmarks.Workload, system: str) -> benchmarks.Case:
        reference = workload.reference_of(system)
        fallback = (workload.fallbacks or {}).get(system)
        cases: dict[str, benchmarks.Case] = {}
        try:
            for name in dict.fromkeys((system, reference)):
                try:
                    cases[name] = workload.builders[name]()
                except benchmarks.Unavailable as err:
                    if name != reference or fallback is None:
                        pytest.skip(f"{workload.name} / {name}: {err}")
                    # As the runner does: without the reference (fastnn lacks the
                    # feature), the system is checked against its fallback peer.
                    try:
                        cases[fallback] = workload.builders[fallback]()
                    except benchmarks.Unavailable as err2:
                        pytest.skip(f"{workload.name} / {name}: {err}; {fallback}: {err2}")
                    reference = fallback
            if benchmark.disabled:
                # The smoke pass: pedantic calls its target once, untimed. That one run
                # is the cross-check, which runs the case from its initial state.
                problems = benchmark.pedantic(benchmarks.cross_check, args=(workload, cases))
            else:
                problems = benchmarks.cross_check(workload, cases)
            assert problems[system] is None, (
                f"{workload.name}: {system} disagrees with {reference}: {problems[system]}"
            )
            case = cases[system]
            benchmark.group = workload.group
            benchmark.extra_info.update(
                workload=workload.name,
                system=system,
                unit=workload.unit,
                units=case.units,
                scale=case.scale,
                notes=case.notes,
            )
            if not benchmark.disabled:
                # The cross-check was the warm-up run (compilation included).
                rounds = case.repeats or workload.repeats
                benchmark.pedantic(case.run, setup=case.reset, rounds=rounds)
            return case
        finally:
            for case in cases.values():
                case.close()

    return measure
