"""``python -m fastnn.benchmarks``: the command line of the benchmarks."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..files import check_output_path
from . import runner
from .pinning import pin_environment, resolve_threads
from .report import format_table, write_json
from .workloads import FAMILIES


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastnn.benchmarks [--quick] [--threads N] [--json PATH] [--only F,...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fastnn.benchmarks",
        description="Time fastnn against its NumPy twin, a tuned NumPy loop, PyTorch, JAX "
        "and scikit-learn; print a side-by-side table with the pinned thread counts.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument(
        "--only", metavar="FAMILIES", help=f"comma-separated subset of: {', '.join(FAMILIES)}"
    )
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads {args.threads}: use a positive number of threads, e.g. 1")
    families = None
    if args.only:
        families = [f.strip() for f in args.only.split(",") if f.strip()]
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            parser.error(f"--only: unknown {unknown}; choose from {', '.join(FAMILIES)}")
    if args.json:
        try:
            check_output_path(args.json)
        except OSError as err:
            parser.error(f"--json: {err}")
    # Before Numba, torch or JAX load: they read their thread settings once.
    pin_environment(resolve_threads(args.threads))
    rows = runner.run(quick=args.quick, threads=args.threads, families=families)
    print(format_table(rows))
    if args.json:
        write_json(rows, args.json)
        print(f"\nwrote {args.json}")
    return 1 if any(r["status"] == "mismatch" for r in rows) else 0
