"""Where the kernels' compiled code is cached on disk, and how a damaged cache is survived.

Each kernel is compiled on its first call and its machine code cached, so that a
later process loads it instead of compiling again. The cache directory is the first
of these that works:

1. ``NUMBA_CACHE_DIR``, when it is set;
2. the ``__pycache__`` directory next to the kernels, when it is writable;
3. a private per-user directory, ``$XDG_CACHE_HOME/fastnn/numba`` (by default
   ``~/.cache/fastnn/numba``), created with mode 0700 and used only while it
   belongs to the user and no one else may write to it;
4. none: the kernels compile in every process, after one warning.

Every cache file fastnn writes starts with a format tag and the SHA-256 of its
content. A file that is truncated, garbled or in another format is never loaded:
its kernel compiles again and the file is replaced.

A cached kernel is used only while the sources it was compiled from are unchanged:
every module of the kernels and ``fastnn/codes.py``, by content (``sources_digest``).
Numba alone would compare the modification time of the kernel's own file, and miss a
change to a helper it inlines from another file (an activation in the engine's loop,
say), or to a code it compiles in: it would run the old machine code, silently.

Numba's cache files are pickles, and loading one runs whatever it says: anyone who
can write to the cache directory can run code in every process that loads from
it. A cache directory shared between users must therefore belong to, and be
writable only by, a user every one of them trusts (e.g. root, or the one account
that runs the jobs).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import stat
import warnings

import numba
from numba.core import caching
from numba.misc.appdirs import AppDirs

#: The first bytes of every cache file fastnn writes (then a SHA-256 digest).
MAGIC = b"fastnn-numba-cache-1\n"
_HEAD = len(MAGIC) + hashlib.sha256().digest_size


class CacheWarning(UserWarning):
    """Compiled kernels cannot be cached, or a damaged cache file was replaced."""


_warned: set[str] = set()


def _warn_once(kind: str, message: str) -> None:
    """One warning of each kind per process, whatever the warning filters say."""
    if kind not in _warned:
        _warned.add(kind)
        warnings.warn(message, CacheWarning, stacklevel=3)


def _numba_class(*names: str):
    # Numba 0.60 dropped the underscore from its locator classes' names.
    for name in names:
        cls = getattr(caching, name, None)
        if cls is not None:
            return cls
    raise ImportError(f"numba.core.caching has none of {names}")  # pragma: no cover


_UserProvidedLocator = _numba_class("UserProvidedCacheLocator", "_UserProvidedCacheLocator")
_InTreeLocator = _numba_class("InTreeCacheLocator", "_InTreeCacheLocator")
_UserWideLocator = _numba_class("UserWideCacheLocator", "_UserWideCacheLocator")


def user_cache_dir() -> str:
    """fastnn's private per-user cache directory (``~/.cache/fastnn/numba`` on Linux)."""
    return os.path.join(AppDirs("fastnn", appauthor=False).user_cache_dir, "numba")


def _private_dir(path: str) -> None:
    """Create ``path`` and its parent with mode 0700 where missing; raise OSError
    unless both are directories of this user that no one else may write to."""
    parent = os.path.dirname(path)
    os.makedirs(os.path.dirname(parent), exist_ok=True)
    for directory in (parent, path):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(f"{directory} is not a directory")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise PermissionError(f"{directory} belongs to another user")
        if st.st_mode & 0o022:
            raise PermissionError(f"{directory} may be written by other users")


def _source_files() -> list[str]:
    """The files every kernel's machine code may depend on: each module of the
    kernels, and the codes they compile in as constants."""
    from .. import codes

    here = os.path.dirname(os.path.abspath(__file__))
    names = sorted(name for name in os.listdir(here) if name.endswith(".py"))
    return [os.path.join(here, name) for name in names] + [os.path.abspath(codes.__file__)]


@functools.cache
def sources_digest() -> str:
    """The SHA-256 of every file of ``_source_files``: the stamp of every cache
    entry, so that a change to any of them compiles every kernel again."""
    h = hashlib.sha256()
    for path in _source_files():
        with open(path, "rb") as f:
            content = f.read()
        h.update(f"{os.path.basename(path)}\0{len(content)}\0".encode())
        h.update(content)
    return h.hexdigest()


class _UserLocator(_UserWideLocator):
    """Caches in fastnn's private per-user directory (see ``user_cache_dir``)."""

    def __init__(self, py_func, py_file) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(user_cache_dir(), self.get_suitable_cache_subpath(py_file))

    def ensure_cache_path(self) -> None:
        _private_dir(user_cache_dir())
        super().ensure_cache_path()


class _CacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = (_UserProvidedLocator, _InTreeLocator, _UserLocator)


class _CheckedCacheFile(caching.IndexDataCacheFile):
    """Numba's index and data files, each tagged and checksummed: a file that fails
    its check reads as absent, so its kernel compiles again and replaces it."""

    def _load_index(self) -> dict:
        payload = self._read_checked(self._index_path)
        if payload is None:
            return {}
        try:
            version, stamp, overloads = pickle.loads(payload)
        except Exception:  # a checked file of an older layout: compile again
            return {}
        if version != self._version or stamp != self._source_stamp:
            return {}  # another Numba, or the kernel's source changed
        return overloads

    def _save_index(self, overloads: dict) -> None:
        self._write_checked(self._index_path, (self._version, self._source_stamp, overloads))

    def _load_data(self, name: str):
        payload = self._read_checked(self._data_path(name))
        if payload is None:
            return None
        try:
            return pickle.loads(payload)
        except Exception:  # a checked file of an older layout: compile again
            return None

    def _save_data(self, name: str, data) -> None:
        self._write_checked(self._data_path(name), data)

    def _write_checked(self, path: str, obj) -> None:
        payload = self._dump(obj)
        with self._open_for_write(path) as f:
            f.write(MAGIC + hashlib.sha256(payload).digest() + payload)

    @staticmethod
    def _read_checked(path: str) -> bytes | None:
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except FileNotFoundError:
            return None
        tag, digest, payload = blob[: len(MAGIC)], blob[len(MAGIC) : _HEAD], blob[_HEAD:]
        if tag != MAGIC or hashlib.sha256(payload).digest() != digest:
            _warn_once(
                "damaged",
                f"fastnn: ignored a damaged or foreign compile cache file {path!r}; its "
                "kernel is compiled again and the file replaced",
            )
            return None
        return payload


class _FunctionCache(caching.FunctionCache):
    _impl_class = _CacheImpl

    def __init__(self, py_func) -> None:
        super().__init__(py_func)
        # Not Numba's (mtime, size) of the kernel's own file: see ``sources_digest``.
        self._cache_file = _CheckedCacheFile(
            cache_path=self._cache_path,
            filename_base=self._impl.filename_base,
            source_stamp=sources_digest(),
        )


def enable(dispatcher) -> None:
    """Give ``dispatcher`` fastnn's on-disk cache, or none (with one warning) where no
    cache directory can be written."""
    try:
        dispatcher._cache = _FunctionCache(dispatcher.py_func)
    except RuntimeError as exc:  # Numba's "no locator available"
        _warn_once(
            "no-locator",
            f"fastnn: compiled kernels cannot be cached ({exc}); each process compiles "
            "them again: set NUMBA_CACHE_DIR to a directory you own to cache them",
        )


def cached_njit(func=None, **options):
    """``numba.njit(**options)`` with fastnn's on-disk cache (see this module)."""
    if func is None:
        return functools.partial(cached_njit, **options)
    dispatcher = numba.njit(**options)(func)
    enable(dispatcher)
    return dispatcher
