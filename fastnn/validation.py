"""Input checks at the Python boundary.

Everything a user passes in is checked and converted here, once, before any work
starts or any state changes; the kernels then trust their inputs.
"""

from __future__ import annotations

import numbers

import numpy as np

DTYPES = (np.float32, np.float64)


def check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.type not in DTYPES:
        raise TypeError(f"dtype={dtype!r} is not supported: use np.float32 or np.float64")
    return dt


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be a positive integer")
    if value <= 0:
        raise ValueError(f"{name}={value!r} must be a positive integer (at least 1)")
    return int(value)


def check_positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a positive number")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} must be a positive, finite number, e.g. 0.01")
    return float(value)


def check_array(
    name: str, data, dtype: np.dtype, ndim: tuple[int, ...] = (1, 2), *, finite: bool = True
) -> np.ndarray:
    """``data`` as a C-contiguous array of ``dtype``, with no NaN or inf.

    Rejects complex, object, string and empty input with a message that says how to
    fix it. Returns the input itself when it already fits (no copy), or a view of the
    same memory for a read-only ``np.memmap``; otherwise a converted copy
    (another dtype, not C-contiguous, or read-only and not a file map). With
    ``finite=False`` the scan for NaN and inf is left to the caller, for a kernel that
    reads every value anyway and reports them (then ``check_finite`` raises).
    """
    try:
        arr = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(
            f"{name} is not a rectangular array ({exc}): give every sample the same "
            "number of values"
        ) from None
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(
            f"{name} has complex dtype {arr.dtype}: pass real values (e.g. {name}.real)"
        )
    if kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {arr.dtype}, which is not numeric: convert it to floats "
            f"first, e.g. np.asarray({name}, dtype=np.float64)"
        )
    if arr.ndim not in ndim:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}): pass at least one sample")
    if kind == "f" and np.dtype(dtype).itemsize < arr.dtype.itemsize:
        limit = np.finfo(dtype).max
        if np.isfinite(arr.sum()) and np.abs(arr).max() > limit:
            raise ValueError(
                f"{name} holds values beyond the {np.dtype(dtype).name} range (±{limit:.3g}): "
                "scale the data, or use dtype=np.float64"
            )
    arr = writable(np.ascontiguousarray(arr, dtype=dtype))
    # A finite sum proves every value finite (NaN and inf propagate) without the
    # boolean temporary of np.isfinite; only a non-finite sum needs the full check.
    if finite and not np.isfinite(arr.sum()):
        check_finite(name, arr)
    return arr


def writable(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself when it is writable, else a writable version of it.

    Numba compiles every kernel again for read-only arrays (as memory maps and Dask's
    inputs are). A read-only, C-contiguous memory map is used in place (it may not
    fit in memory); anything else read-only is copied, which costs far less than the
    compile.
    """
    if arr.flags.writeable:
        return arr
    arr = _writable_map(arr)
    return arr if arr.flags.writeable else arr.copy()


def _writable_map(arr: np.ndarray) -> np.ndarray:
    """A writable-flagged view of the very memory of read-only, C-contiguous ``arr``
    when a ``np.memmap`` maps it, else ``arr`` itself.

    The kernels only read X; the flag spares them a compile for read-only arrays.
    The pages stay mapped read-only, so a write would fault at once rather than reach
    the file, and no byte of X is copied. (Mapping the file again would risk reading
    another file of the same name.)
    """
    base = arr
    while base is not None and getattr(base, "_mmap", None) is None:
        base = getattr(base, "base", None)  # views of a np.memmap lead back to it
    if base is None or not arr.flags.c_contiguous:
        return arr
    import ctypes

    memory = (ctypes.c_char * arr.nbytes).from_address(arr.ctypes.data)
    memory.keep_alive = arr  # the view below holds ``memory``, which holds the map
    return np.frombuffer(memory, dtype=arr.dtype).reshape(arr.shape)


def check_finite(name: str, arr: np.ndarray) -> None:
    """Raise a ValueError that names the first NaN or inf in ``arr``, if it has one."""
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)}): "
            "remove or impute those values before training"
        )


def check_seed(seed):
    """``seed`` as NumPy's SeedSequence takes it: None, a non-negative integer, or a
    sequence of them."""

    def ok(v) -> bool:
        return not isinstance(v, bool) and isinstance(v, numbers.Integral) and v >= 0

    if seed is None or ok(seed):
        return seed if seed is None else int(seed)
    if isinstance(seed, list | tuple) and seed and all(ok(v) for v in seed):
        return seed
    raise ValueError(
        f"seed={seed!r} must be None, a non-negative integer (e.g. seed=0) or a sequence of them"
    )


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}={value!r} must be True or False")
    return bool(value)
