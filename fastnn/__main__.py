"""``python -m fastnn``: the ``fastnn`` command."""

import sys

from .cli import main

sys.exit(main())
