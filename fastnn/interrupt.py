"""Running a long compiled call so that Ctrl-C stops it within a fraction of a second.

Python handles a signal only between bytecodes, so a compiled training call that
runs for a minute would notice Ctrl-C only when it returns. A long call runs in a
worker thread instead, while the main thread waits; on KeyboardInterrupt the main
thread sets a flag the kernels poll between samples or batches, and they stop at
once, restoring the state of the last completed epoch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

#: The flag of every call that runs inline, which nothing sets (Ctrl-C waits for the
#: call to return). Writable: Numba compiles kernels again for read-only arrays.
NEVER = np.zeros(1, dtype=np.int64)


def call(run: Callable[[np.ndarray], int], threaded: bool) -> tuple[int, bool]:
    """``run(stop)``, in a worker thread if ``threaded``.

    Parameters
    ----------
    run : callable(stop) -> int
        The compiled call; ``stop`` is a 1-element int64 array it polls.
    threaded : bool
        Run it in a worker thread, so that Ctrl-C reaches the caller at once. A
        thread costs about 0.1 ms: short calls run inline.

    Returns
    -------
    (int, bool)
        ``run``'s result, and whether a KeyboardInterrupt stopped it (the caller
        raises it once its state is settled).
    """
    if not threaded:
        return run(NEVER), False
    stop = np.zeros(1, dtype=np.int64)
    box: list = []
    # An Event, not Thread.join: a join that Ctrl-C interrupts can mark the thread
    # finished while it still runs (CPython before 3.13).
    finished = threading.Event()

    def target() -> None:
        try:
            box.append(run(stop))
        except BaseException as exc:  # handed to the caller's thread
            box.append(exc)
        finally:
            finished.set()

    worker = threading.Thread(target=target, name="fastnn-fit", daemon=True)
    interrupted = False
    try:
        worker.start()
    except KeyboardInterrupt:
        stop[0] = interrupted = True
    while True:
        # The worker must end before anything reads or changes the network again,
        # however many times Ctrl-C is pressed meanwhile.
        try:
            finished.wait()
            break
        except KeyboardInterrupt:
            stop[0] = interrupted = True
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0], interrupted
