"""``python -m fastnn.benchmarks [--quick] [--threads N] [--json PATH] [--only F,...]``."""

import sys

from .command import main

sys.exit(main())
