"""Checkpoints of a distributed fit: the network in the model format, plus its progress.

The model file at ``path`` is a plain fastnn model (``fastnn.load`` reads it). Next
to it, ``path + ".progress.json"`` records how many epochs each recent model file
had completed, and the history so far, keyed by the SHA-256 of the model file's
bytes. The progress file is written first, naming both the previous and the new
model, and then the model: whichever model file a crash leaves in place, the
progress file knows its epoch count. Both are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os

from .io import atomic_write, from_bytes, to_bytes
from .network import Network

SUFFIX = ".progress.json"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save(net: Network, path, epochs_done: int, history: dict) -> None:
    """Write ``net`` to ``path`` (atomically) after ``epochs_done`` epochs."""
    path = os.fspath(path)
    data = to_bytes(net)
    progress = _read_progress(path)
    known = progress.get("models", {})
    previous = _file_digest(path)
    models = {d: n for d, n in known.items() if d == previous}
    models[_digest(data)] = epochs_done
    text = json.dumps({"models": models, "history": history}, allow_nan=False)
    atomic_write(path + SUFFIX, lambda f: f.write(text.encode()))
    atomic_write(path, lambda f: f.write(data))


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return _digest(f.read())
    except FileNotFoundError:
        return None


def _read_progress(path: str) -> dict:
    try:
        with open(path + SUFFIX, encoding="utf-8") as f:
            progress = json.load(f)
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path + SUFFIX!r} is not a valid progress file ({exc}): remove it and the "
            f"checkpoint {path!r} to start over"
        ) from exc
    if not isinstance(progress, dict):
        raise ValueError(f"{path + SUFFIX!r} is not a valid progress file: remove it")
    return progress


def load(path) -> tuple[Network, int, dict] | None:
    """(network, epochs done, history) from the checkpoint at ``path``, or None if
    there is none. A model file without a matching progress record counts as 0
    epochs done."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    net = from_bytes(data)
    progress = _read_progress(path)
    done = progress.get("models", {}).get(_digest(data))
    if not isinstance(done, int) or isinstance(done, bool) or done < 0:
        return net, 0, {}
    history = progress.get("history", {})
    if not isinstance(history, dict):
        history = {}
    return net, done, {k: list(v)[:done] for k, v in history.items()}
