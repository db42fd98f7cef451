"""What every ``fastnn`` subcommand shares: its error type, output paths, messages."""

from __future__ import annotations

import os
import stat

from .files import check_output_path
from .validation import install_hint

PROG = "fastnn"
INSTALL_HINT = install_hint("cli")
EXIT_USAGE = 2


class CLIError(Exception):
    """A user's mistake: printed as one line, exit status 2."""


def require(module: str, what: str, hint: str = INSTALL_HINT):
    """Import an optional dependency, or fail with the install command."""
    try:
        return __import__(module)
    except ImportError:
        raise CLIError(f"{what} needs {module}, which is not installed: {hint}") from None


def output_path(path: str | None, option: str) -> str | None:
    """The file to write for ``option PATH``, checked before any work.

    ``-`` (standard output) is refused. Only a regular file (or a new one) is
    written: a FIFO, a device, a socket or a folder at ``path`` is refused. A
    symbolic link is followed: the file it points to is replaced (atomically), and
    the link stays.
    """
    if path is None:
        return None
    if path == "-":
        # Only predict's CSV goes to standard output (it checks for "-" itself).
        raise CLIError(f"{option} -: this file cannot go to standard output; give a file name")
    real = os.path.realpath(path)
    if os.path.exists(real) and not os.path.isdir(real):
        if not stat.S_ISREG(os.stat(real).st_mode):
            what = "a symbolic link to " if os.path.islink(path) else ""
            raise CLIError(
                f"{option} {path}: is {what}a special file (a pipe, device or socket), not a "
                "regular file; give the name of a file to write"
            )
    try:
        return check_output_path(real)  # its folder exists, and it is not a folder
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise CLIError(f"{option} {path}: {exc}") from None


def write_text(path: str, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path``, atomically."""
    from .io import atomic_write

    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def say(args, *lines: str) -> None:
    """Print ``lines`` unless the command runs with ``--quiet``."""
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line, flush=True)
