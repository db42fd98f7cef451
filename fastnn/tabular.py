"""CSV files as people write them, read column by column into NumPy arrays.

``read_csv`` sniffs the delimiter (comma, semicolon or tab) from the first lines,
skips a UTF-8 byte-order mark, understands quoted fields, treats empty cells and
``NA``-style markers (``MISSING``) as missing values, and gives each column either
as float64 numbers (NaN where a value is missing) or, when any of its cells is text,
as an object array of stripped strings (None where a value is missing). In a file
separated by semicolons or tabs, a column whose every value is a number written with
a decimal comma (``4,8``), as European spreadsheets export them, is read as numbers.

The file is read in chunks of ``CHUNK_ROWS`` rows, each converted to arrays at
once, so memory holds the parsed numbers (8 bytes a cell) and one chunk of text,
never the whole file as Python strings. No pandas: only the standard ``csv``
module and NumPy.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

import numpy as np

#: Delimiters ``read_csv`` recognises, in order of preference on a tie.
DELIMITERS = (",", ";", "\t")
#: Cell values read as a missing value (compared after stripping, case-insensitively).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a", "?"})
#: Rows converted to arrays at a time.
CHUNK_ROWS = 8192
#: Characters read to sniff the delimiter.
SNIFF_CHARS = 1 << 16
#: Delimiters of files whose numbers may have a decimal comma (with commas between
#: the fields, "4,8" is a quoted text, not a number).
DECIMAL_COMMA_DELIMITERS = (";", "\t")


@dataclass
class Frame:
    """The columns of a CSV file.

    Attributes
    ----------
    path : str
    names : list of str
        The header's column names, stripped; an unnamed column has the name "".
    columns : list of ndarray
        float64 (NaN: missing) for a column of numbers, object (str, None: missing)
        for a column with any text.
    lines : ndarray of int64
        The line of the file each row ends on, for messages.
    delimiter : str
    """

    path: str
    names: list[str]
    columns: list[np.ndarray]
    lines: np.ndarray
    delimiter: str

    @property
    def n_rows(self) -> int:
        return int(self.lines.shape[0])

    def column(self, name: str) -> np.ndarray:
        """The column called ``name``; a ValueError lists the columns if there is none."""
        if name not in self.names:
            raise ValueError(
                f"{self.path}: no column named {name!r}; the columns are "
                f"{[n for n in self.names if n]}"
            )
        return self.columns[self.names.index(name)]

    def drop(self, name: str) -> None:
        """Forget the column ``name`` (its memory with it)."""
        i = self.names.index(name)
        del self.names[i], self.columns[i]


def is_text(column: np.ndarray) -> bool:
    """Whether ``column`` (from a Frame) holds text rather than numbers."""
    return column.dtype == object


def missing_mask(column: np.ndarray) -> np.ndarray:
    """True where ``column`` (from a Frame) has a missing value."""
    if is_text(column):
        return np.frompyfunc(lambda v: v is None, 1, 1)(column).astype(bool)
    return np.isnan(column)


def sniff_delimiter(sample: str) -> str:
    """The delimiter of ``sample`` (the start of a CSV file): the one of ``DELIMITERS``
    that splits the first lines into the most columns, the same number on every line.
    A file of one column, or one no delimiter splits consistently, reads as commas."""
    lines = sample.splitlines()
    if len(sample) >= SNIFF_CHARS and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    lines = [line for line in lines if line.strip()][:50]
    best, best_width = ",", 1
    for delimiter in DELIMITERS:
        try:
            widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        except csv.Error:
            continue
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = delimiter, width
    return best


def number_text(value: float) -> str | None:
    """A number read from a cell, as text again (for a column that turns out to be text)."""
    if np.isnan(value):
        return None
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class _ColumnBuilder:
    """Collects one column chunk by chunk: float arrays while every cell is a number."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def add(self, cells: tuple[str, ...]) -> None:
        try:
            # NumPy converts all the strings at once; only a failure needs the slow scan.
            self.chunks.append(np.array(cells, dtype=np.float64))
            return
        except ValueError:
            pass
        numbers = np.empty(len(cells))
        for i, cell in enumerate(cells):
            text = cell.strip()
            if text.lower() in MISSING:
                numbers[i] = np.nan
                continue
            try:
                numbers[i] = float(text)
            except ValueError:
                text_cells = [c.strip() for c in cells]
                self.chunks.append(
                    np.array([None if c.lower() in MISSING else c for c in text_cells], object)
                )
                return
        self.chunks.append(numbers)

    def finish(self) -> np.ndarray:
        chunks, self.chunks = self.chunks, []
        if not any(chunk.dtype == object for chunk in chunks):
            return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        as_text = np.frompyfunc(number_text, 1, 1)
        return np.concatenate(
            [chunk if chunk.dtype == object else as_text(chunk).astype(object) for chunk in chunks]
        )


def decimal_comma_numbers(column: np.ndarray) -> np.ndarray | None:
    """A text ``column`` (from a Frame) as float64 numbers when each of its values is a
    number with at most one comma for the decimal point and no point (``4,8``, ``-1,5e3``,
    ``7``) and at least one has a comma; else None. A point rules a value out: in
    ``1.234`` it may group thousands, and a column of both notations is ambiguous."""
    numbers = np.empty(len(column))
    has_comma = False
    for i, value in enumerate(column):
        if value is None:
            numbers[i] = np.nan
            continue
        if "." in value or value.count(",") > 1:
            return None
        has_comma = has_comma or "," in value
        try:
            numbers[i] = float(value.replace(",", "."))
        except ValueError:
            return None
    return numbers if has_comma else None


def _check_header(path: str, header: list[str] | None) -> list[str]:
    if header is None:
        raise ValueError(f"{path}: the file is empty; a CSV needs a header row")
    names = [name.strip() for name in header]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise ValueError(f"{path}, line 1: the header names {name!r} twice; rename one")
        seen.add(name)
    return names


def check_file(path) -> str:
    """``path`` as a str, after checking that it is a file that can be read."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory, not a data file")
    return path


def read_csv(path) -> Frame:
    """Read a CSV file with a header row, column by column.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Frame
        Without the last column when it has no name and no values (a delimiter at
        the end of every line).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not UTF-8 text, is empty, has no data rows, names a column
        twice, or has a row with more or fewer values than the header; the message
        names the file and the line.
    """
    path = check_file(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            delimiter = sniff_delimiter(f.read(SNIFF_CHARS))
            f.seek(0)
            reader = csv.reader(f, delimiter=delimiter)
            names = _check_header(path, next(reader, None))
            builders = [_ColumnBuilder() for _ in names]
            line_chunks: list[np.ndarray] = []
            rows: list[list[str]] = []
            lines: list[int] = []

            def flush() -> None:
                for builder, cells in zip(builders, zip(*rows, strict=True), strict=True):
                    builder.add(cells)
                line_chunks.append(np.array(lines, dtype=np.int64))
                rows.clear()
                lines.clear()

            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue  # blank lines
                if len(row) != len(names):
                    trailing = len(row) == len(names) + 1 and not row[-1].strip()
                    raise ValueError(
                        f"{path}, line {reader.line_num}: {len(row)} values, but the header "
                        f"has {len(names)} columns (delimiter {delimiter!r}"
                        + ("; one at the end of the line?)" if trailing else ")")
                    )
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) == CHUNK_ROWS:
                    flush()
            if rows:
                flush()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason}); is it a CSV?") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV ({exc})") from None
    if not line_chunks:
        raise ValueError(f"{path}: the CSV has a header but no data rows")
    columns = [builder.finish() for builder in builders]
    if len(names) > 1 and names[-1] == "" and missing_mask(columns[-1]).all():
        # A delimiter at the end of every line, as some exports write: no column.
        del names[-1], columns[-1]
    if delimiter in DECIMAL_COMMA_DELIMITERS:
        for j, column in enumerate(columns):
            if is_text(column) and (numbers := decimal_comma_numbers(column)) is not None:
                columns[j] = numbers
    return Frame(path, names, columns, np.concatenate(line_chunks), delimiter)


def frame_from_arrays(path: str, X: np.ndarray, y: np.ndarray | None) -> Frame:
    """A Frame of the arrays of a .npz file: features x0, x1, ... and the target y
    (y0, y1, ... when it has several columns)."""
    names = [f"x{i}" for i in range(X.shape[1])]
    columns = [np.ascontiguousarray(X[:, i], dtype=np.float64) for i in range(X.shape[1])]
    if y is not None:
        y2 = y.reshape(len(y), -1)
        target_names = ["y"] if y2.shape[1] == 1 else [f"y{i}" for i in range(y2.shape[1])]
        names += target_names
        columns += [np.ascontiguousarray(y2[:, i], dtype=np.float64) for i in range(y2.shape[1])]
    return Frame(path, names, columns, np.arange(1, X.shape[0] + 1), "")


def write_csv(header: list[str], columns: list[list[str]]) -> str:
    """CSV text (comma-separated, quoted where needed) of the given string columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True))
    return buf.getvalue()
