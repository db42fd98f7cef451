"""LeNet-5 on 1×28×28 images (Conv2D(1, 6, 5), ReLU, MaxPool2D(2), Conv2D(6, 16, 5),
ReLU, MaxPool2D(2), Flatten, Dense 256-120-84-10 with ReLU, softmax cross-entropy):
one epoch of plain SGD per sample and on batches of 64, and predict on 1,024 rows;
fastnn's ``Network.fit`` and ``predict`` against its NumPy twin, PyTorch eager and
JAX. The ``cnn`` family of ``fastnn.benchmarks`` (its systems in
``fastnn/benchmarks/peers/lenet.py``); this runs it alone, on one thread unless told
otherwise:

    python bench/conv_lenet.py [--quick] [--threads N] [--json PATH]

which is ``fastnn bench --only cnn --threads 1``: the same table, thread pins and
sgemm header, every system's weights (or probabilities) checked against fastnn's
before it is timed.
"""

from __future__ import annotations

import sys

from fastnn.benchmarks import main

if __name__ == "__main__":
    sys.exit(main(["--only", "cnn", "--threads", "1", *sys.argv[1:]]))
