"""LeNet-5's convolutional part, one training step: fastnn against PyTorch and the
NumPy twin, per sample (SGD, batch 1) and on batches of 64. The ``cnn`` family of
``fastnn.benchmarks`` (its systems in ``fastnn/benchmarks/peers/lenet.py``); this
runs it alone, on one thread unless told otherwise:

    python bench/conv_lenet.py [--quick] [--threads N] [--json PATH]

which is ``fastnn bench --only cnn --threads 1``: the same table, thread pins and
sgemm header, every system's weights checked against fastnn's before it is timed.
"""

from __future__ import annotations

import sys

from fastnn.benchmarks import main

if __name__ == "__main__":
    sys.exit(main(["--only", "cnn", "--threads", "1", *sys.argv[1:]]))
