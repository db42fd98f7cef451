"""Minibatch training (784-256-128-10, batch 64, float32) with another process busy on
one of the cores: fastnn at one and two threads and at its default (``threads=None``),
each on no more threads than the idle cores, and at two threads whatever the load
(``fastnn-2t-forced``), against PyTorch at one and two. The ``contention``
family of ``fastnn.benchmarks``; this runs it alone (it needs two cores):

    python bench/contention.py [--quick] [--json PATH]

which is ``fastnn bench --only contention``. Without the busy process, the
``minibatch`` family measures the same training (``--threads 1`` and ``--threads 2``).
"""

from __future__ import annotations

import sys

from fastnn.benchmarks import main

if __name__ == "__main__":
    sys.exit(main(["--only", "contention", *sys.argv[1:]]))
