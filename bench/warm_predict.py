"""Warm start-up of a prediction: ``fastnn predict`` on a small CSV file against a Python
process that imports scikit-learn, unpickles an ``MLPClassifier`` and predicts the
same file. The ``cli`` family of ``fastnn.benchmarks``; this runs it alone:

    python bench/warm_predict.py [--quick] [--threads N] [--json PATH]

which is ``fastnn bench --only cli`` (the same table, thread pins and sgemm header).
"""

from __future__ import annotations

import sys

from fastnn.benchmarks import main

if __name__ == "__main__":
    sys.exit(main(["--only", "cli", *sys.argv[1:]]))
