"""File helpers: path checks and atomic writes.

A leaf module, by rule: it imports nothing from fastnn, so every other module (the
model format, the ONNX export, the plots, the benchmarks) can use it.

Files are written atomically: to a temporary file in the target's directory,
flushed to disk, then moved over the target with ``os.replace``. A crash while
writing leaves any earlier file at that path intact.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from typing import IO


def check_path(path) -> str:
    """``path`` as a str; a TypeError for anything but a str or os.PathLike."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path={path!r} must be a str or os.PathLike, e.g. 'model.npz'")
    return os.fspath(path)


def check_output_path(path) -> str:
    """``path`` as a str, if a file can be written there: its directory exists and it
    is not itself a directory. Call it before any work whose result goes to ``path``.

    Raises
    ------
    TypeError
        If ``path`` is not a str or os.PathLike.
    FileNotFoundError
        If the directory of ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a directory.
    """
    path = check_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"cannot write {path!r}: the directory {directory!r} does not exist; create it first"
        )
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path!r}: it is a directory; pass a file name")
    return path


def _create_temp(directory: str, name: str) -> tuple[int, str]:
    """Create a new, empty temporary file next to the target. Opening with mode
    0o666 lets the process umask set its permissions, as for any new file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - a 48-bit name collision
            continue


def atomic_write(path, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file atomically: ``write(f)`` fills a temporary file, which then
    replaces ``path``.

    The temporary file lives in the same directory as ``path`` (so ``os.replace``
    is an atomic rename), is flushed and fsynced before the rename, and is removed
    if ``write`` raises. Until the rename, a reader sees the old file, or none.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace.
    write : callable(binary file) -> object
        Writes the whole content to the open file it is given.
    """
    path = check_output_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)  # keep a replaced file's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    # Make the rename itself durable (not possible on every platform).
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
