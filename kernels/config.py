"""The one place where the compilation flags of every kernel are set.

The fastmath flags allow reassociation (so reductions vectorise), contraction into
FMA, reciprocal approximations of division and ignoring the sign of zero. They never
include ``nnan`` or ``ninf``: the training loop must see NaN and inf to stop a
diverging run, so those checks may not be optimised away.
"""

from __future__ import annotations

import functools

import numba

FASTMATH: frozenset[str] = frozenset({"reassoc", "contract", "arcp", "nsz"})

#: Serial kernels: cached on disk, GIL released, compiled lazily on first call.
#: NumPy's error model (x/0 gives inf, not ZeroDivisionError) keeps a branch out of
#: every division, so loops with a division still vectorise.
serial = functools.partial(
    numba.njit, cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy"
)
