"""The one place where the compilation flags of every kernel are set.

The fastmath flags allow reassociation (so reductions vectorise), contraction into
FMA, reciprocal approximations of division and ignoring the sign of zero. They never
include ``nnan`` or ``ninf``: the training loop must see NaN and inf to stop a
diverging run, so those checks may not be optimised away.
"""

from __future__ import annotations

import functools

from numba.core.options import DefaultOptions

from .cache import cached_njit

FASTMATH: frozenset[str] = frozenset({"reassoc", "contract", "arcp", "nsz"})
#: The flags of kernels whose sums must run in the order the source writes them: no
#: ``reassoc``, so the compiler cannot split a sum into vector lanes in an order that
#: depends on where its data lies or how many elements it has.
ORDERED: frozenset[str] = FASTMATH - {"reassoc"}

#: Serial kernels: cached on disk (``cache.py`` says where, and how a damaged cache
#: file is replaced), GIL released, compiled lazily on first call.
#: NumPy's error model (x/0 gives inf, not ZeroDivisionError) keeps a branch out of
#: every division, so loops with a division still vectorise.
serial = functools.partial(cached_njit, nogil=True, fastmath=set(FASTMATH), error_model="numpy")

#: Kernels with a Numba parallel region (``prange``), run on ``numba.set_num_threads``
#: threads of the calling thread. Each iteration must compute the same bits whichever
#: thread runs it, so that no result depends on the thread count.
parallel = functools.partial(serial, parallel=True)

#: Serial kernels compiled with the ``ORDERED`` flags.
ordered = functools.partial(serial, fastmath=set(ORDERED))

# Kernels that only read and write arrays their caller owns are compiled without
# Numba's reference counting. Every array a compiled helper binds costs an atomic
# increment and decrement, and in the per-sample loop of a small network those
# dominated the arithmetic (a 2-3-1 network spent half its time on them). Without
# the runtime such a kernel cannot allocate at all: a stray allocation in a hot loop
# is a compile error. ``_nrt`` is Numba's switch for this; on a Numba without it,
# these kernels keep the runtime and are only slower.
_NO_RUNTIME = {"_nrt": False} if hasattr(DefaultOptions, "_nrt") else {}

#: Serial kernels that allocate nothing and are only called from other kernels.
#: One rule keeps the counts balanced: a ``bare`` kernel never returns an array, and
#: never calls a counted kernel that returns one (pass views in from the caller).
bare = functools.partial(serial, **_NO_RUNTIME)
