"""Reading an ``.npz`` archive from an untrusted source, within bounds.

``np.load`` trusts what an archive declares: a member that says it inflates to
4 GiB is inflated, and a ``.npy`` header that declares a huge shape is allocated.
``NpzReader`` checks every declared size against the bytes that are there before
it inflates or allocates anything:

* the zip directory is at most ``MAX_DIRECTORY`` bytes and ``MAX_MEMBERS`` entries;
* a stored member's size is its size in the file; a deflated member may inflate to
  at most ``MAX_RATIO`` times its compressed size (plus ``RATIO_SLACK`` bytes), and
  it is inflated in bounded steps that stop at its declared size;
* every member's ``.npy`` header is parsed (at most ``MAX_HEADER`` bytes) and the
  shape it declares must account for the member's size exactly;
* a member holding Python objects (a pickle) is refused, never read.

Memory while reading or refusing an archive thus stays within a small multiple of
its size. Every problem raises ``ArchiveError`` (a ``ValueError``) that says what is
wrong; the caller adds which file it was.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np

#: Most members an archive may have.
MAX_MEMBERS = 64
#: Largest zip directory, in bytes (fastnn's own hold a few hundred).
MAX_DIRECTORY = 1 << 16
#: A deflated member may inflate to MAX_RATIO x its compressed size + RATIO_SLACK.
MAX_RATIO = 4
RATIO_SLACK = 1 << 16
#: Largest ``.npy`` header, in bytes (a 1-D array's takes 128).
MAX_HEADER = 4096
#: Bytes read from a member at a time.
CHUNK = 1 << 20
#: The bytes every zip file's local headers start with.
ZIP_MAGIC = b"PK\x03\x04"
#: A local file header's fixed part, in bytes.
LOCAL_HEADER = 30

# Everything the zip and .npy parsers raise on malformed input (zipfile raises
# NotImplementedError for an unknown compression method, RuntimeError for an
# encrypted member, struct.error and others for garbled fields).
_PARSE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    ValueError,
    OverflowError,
    KeyError,
    IndexError,
    TypeError,
    UnicodeError,
    SyntaxError,
)


class ArchiveError(ValueError):
    """A malformed, truncated or oversized archive."""


class NpzReader:
    """The members of an ``.npz`` archive: their ``.npy`` headers first, their data
    on request.

    Parameters
    ----------
    source : binary file
        Seekable, opened for reading; the reader does not close it.

    Attributes
    ----------
    headers : dict of str to (np.dtype, tuple of int)
        Each member's dtype and shape, by name without ``.npy``, as its header
        declares them (already checked against the member's size).
    """

    def __init__(self, source) -> None:
        self._source = source
        self._size = source.seek(0, io.SEEK_END)
        source.seek(0)
        if source.read(6) == b"\x93NUMPY":
            raise ArchiveError("it holds a single .npy array, not a model archive")
        self._check_directory()
        try:
            self._zip = zipfile.ZipFile(source)
        except _PARSE_ERRORS as exc:
            raise ArchiveError(_describe("its zip directory is unreadable", exc)) from exc
        self._members: dict[str, zipfile.ZipInfo] = {}
        self.headers: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self._offsets: dict[str, int] = {}
        try:
            self._check_members()
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    # -- the directory -----------------------------------------------------------
    def _check_directory(self) -> None:
        """Refuse an oversized directory before zipfile parses it into objects."""
        if self._size < 22:
            raise ArchiveError(
                f"it is not a readable .npz archive ({self._size} bytes, too short for a zip file)"
            )
        self._source.seek(0)
        if self._source.read(4) != ZIP_MAGIC:
            raise ArchiveError("it is not a readable .npz archive (not a zip file)")
        end_record = getattr(zipfile, "_EndRecData", None)
        if end_record is None:  # pragma: no cover - zipfile's parse is still bounded
            return
        try:
            record = end_record(self._source)
        except _PARSE_ERRORS as exc:
            raise ArchiveError(_describe("its zip directory is unreadable", exc)) from exc
        if not record:
            raise ArchiveError("it has no zip directory (the file is truncated or not a zip)")
        entries, size = record[zipfile._ECD_ENTRIES_TOTAL], record[zipfile._ECD_SIZE]
        if entries > MAX_MEMBERS or size > MAX_DIRECTORY:
            raise ArchiveError(
                f"its zip directory declares {entries} entries in {size} bytes, more than "
                f"a model file holds (at most {MAX_MEMBERS} entries, {MAX_DIRECTORY} bytes)"
            )

    def _check_members(self) -> None:
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(f"it has {len(infos)} members, more than {MAX_MEMBERS}")
        stored = 0
        for info in infos:
            name = info.filename
            if not name.endswith(".npy") or name[:-4] in self._members:
                raise ArchiveError(f"member {name!r} is not a uniquely named .npy array")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"member {name!r} is encrypted")
            if info.compress_type == zipfile.ZIP_STORED:
                if info.file_size != info.compress_size:
                    raise ArchiveError(
                        f"member {name!r} is stored uncompressed in {info.compress_size} "
                        f"bytes but declares {info.file_size}"
                    )
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                limit = MAX_RATIO * info.compress_size + RATIO_SLACK
                if info.file_size > limit:
                    raise ArchiveError(
                        f"member {name!r} declares {info.file_size} bytes inflated from "
                        f"{info.compress_size}, more than {MAX_RATIO}x its compressed size "
                        "(a zip bomb?)"
                    )
            else:
                raise ArchiveError(
                    f"member {name!r} uses compression method {info.compress_type}; "
                    "a model file is stored or deflated"
                )
            stored += LOCAL_HEADER + len(name) + info.compress_size
            if info.header_offset + LOCAL_HEADER + info.compress_size > self._size:
                raise ArchiveError(f"member {name!r} extends past the end of the file")
            self._members[name[:-4]] = info
        if stored > self._size:
            raise ArchiveError(
                f"its members declare {stored} bytes, more than the file's {self._size}"
            )
        for key in self._members:
            self._read_header(key)

    def _read_header(self, key: str) -> None:
        info = self._members[key]
        with self._open(key) as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    header = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_HEADER)
                elif version == (2, 0):
                    header = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_HEADER)
                else:
                    raise ArchiveError(f"member {key!r} has .npy format version {version}")
                offset = f.tell()
            except ArchiveError:
                raise
            except _PARSE_ERRORS as exc:
                raise ArchiveError(
                    _describe(f"member {key!r} is corrupt or has no valid .npy header", exc)
                ) from exc
        shape, fortran_order, dtype = header
        if dtype.hasobject:
            raise ArchiveError(
                f"member {key!r} holds Python objects (a pickle), which a model file never "
                "does; it is not read"
            )
        if fortran_order or len(shape) != 1:
            raise ArchiveError(f"member {key!r} is not a 1-D array (shape {shape})")
        nbytes = shape[0] * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise ArchiveError(
                f"member {key!r} declares {shape[0]} values of {dtype.str} ({nbytes} bytes), "
                f"but holds {info.file_size - offset} bytes of data"
            )
        self.headers[key] = (dtype, tuple(shape))
        self._offsets[key] = offset

    def _open(self, key: str):
        try:
            return self._zip.open(self._members[key])
        except _PARSE_ERRORS as exc:
            raise ArchiveError(_describe(f"member {key!r} cannot be opened", exc)) from exc

    # -- the data -----------------------------------------------------------------
    def read(self, key: str) -> np.ndarray:
        """The array in member ``key``, read in bounded steps; the zip's CRC checked."""
        dtype, shape = self.headers[key]
        out = np.empty(shape, dtype=dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))
        with self._open(key) as f:
            try:
                f.read(self._offsets[key])
                pos = 0
                while pos < len(view):
                    chunk = f.read(min(CHUNK, len(view) - pos))
                    if not chunk:
                        break
                    view[pos : pos + len(chunk)] = chunk
                    pos += len(chunk)
                extra = f.read(1)
            except _PARSE_ERRORS as exc:
                raise ArchiveError(
                    _describe(f"member {key!r} is corrupt or truncated", exc)
                ) from exc
        if pos != len(view) or extra:
            raise ArchiveError(
                f"member {key!r} is corrupt or truncated: it holds {pos} bytes of data, "
                f"not the {len(view)} its header declares"
            )
        return out


def _describe(what: str, exc: BaseException) -> str:
    return f"{what} ({type(exc).__name__}: {exc})"
