"""Running a long compiled call so that Ctrl-C stops it within a fraction of a second.

Python handles a signal only between bytecodes, so a compiled training call that
runs for a minute would notice Ctrl-C only when it returns. A long call runs in a
worker thread instead, while the main thread waits; on KeyboardInterrupt the main
thread sets a flag the kernels poll between samples or batches, and they stop at
once, restoring the state of the last completed epoch.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

import numpy as np

#: The flag of every call that runs inline, which nothing sets (Ctrl-C waits for the
#: call to return). Writable: Numba compiles kernels again for read-only arrays.
NEVER = np.zeros(1, dtype=np.int64)

# Workers are kept and reused: a parallel region started from a new thread builds a
# new OpenMP team, and a fit on two threads from a fresh thread each time ran at
# anything from 1.0x to 1.7x its one-thread speed; from a kept thread, 1.7x. One
# worker per concurrent call: an idle one is reused, else one more is started.
_idle: list[queue.SimpleQueue] = []
_idle_lock = threading.Lock()


def _serve(jobs: queue.SimpleQueue) -> None:
    while True:
        job, done = jobs.get()
        job()  # catches everything itself
        with _idle_lock:
            _idle.append(jobs)  # idle again before the caller goes on
        done.set()


def _submit(job: Callable[[], None], done: threading.Event) -> None:
    """Run ``job`` on an idle worker thread, or on a new one; ``done`` is set after."""
    with _idle_lock:
        jobs = _idle.pop() if _idle else None
    if jobs is None:
        jobs = queue.SimpleQueue()
        threading.Thread(target=_serve, args=(jobs,), name="fastnn-fit", daemon=True).start()
    jobs.put((job, done))


# A forked child has none of its parent's threads.
os.register_at_fork(after_in_child=_idle.clear)


def call(run: Callable[[np.ndarray], int], threaded: bool) -> tuple[int, bool]:
    """``run(stop)``, in a worker thread if ``threaded``.

    Parameters
    ----------
    run : callable(stop) -> int
        The compiled call; ``stop`` is a 1-element int64 array it polls.
    threaded : bool
        Run it in a worker thread, so that Ctrl-C reaches the caller at once. A
        hand-over costs about 0.1 ms: short calls run inline.

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

    interrupted = False
    try:
        _submit(target, finished)
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
