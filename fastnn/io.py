"""Saving and loading networks: plain NumPy arrays plus JSON metadata, never pickle.

A model file is an uncompressed ``.npz`` archive holding

* ``params``: the network's parameter buffer (``Network.params``);
* ``optimizer.<name>``: the optimizer's state buffers, when the network has one;
* ``metadata``: UTF-8 JSON stored as a uint8 array: the format name and version, the
  layers (e.g. ``[{"type": "Dense", "input_size": 2, "output_size": 3, "init":
  null}, {"type": "Tanh"}]``), the loss, dtype, backend and seed, the shuffling
  generator's state, the optimizer's config and step count, the name, dtype and
  shape of every array, and a SHA-256 checksum over all of it.

A file may also carry what a caller adds (``save(..., extra=(metadata, arrays))``,
read back by ``load_extra``): JSON metadata under the key ``extra`` and numeric
arrays stored as ``extra.<name>``, covered by the same checks and checksum.

``to_bytes`` and ``from_bytes`` give the same content as bytes in memory (the
scikit-learn estimators pickle their network that way).

Files are read with ``np.load(..., allow_pickle=False)``, so loading a file can
never run code. The checksum catches corrupted or edited files; it is not a
signature (anyone can recompute it), so it does not prove who wrote a file.

Files are written atomically: to a temporary file in the target's directory,
flushed to disk, then moved over the target with ``os.replace``. A crash while
saving leaves any earlier file at that path intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import numbers
import os
import secrets
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from .layers import Dense, Identity, Layer, ReLU, Sigmoid, Tanh
from .network import Network

#: The ``format`` field of every fastnn model file.
FORMAT_NAME = "fastnn"
#: The newest format version this module writes and reads.
FORMAT_VERSION = 1

METADATA_KEY = "metadata"
PARAMS_KEY = "params"
OPTIMIZER_PREFIX = "optimizer."
EXTRA_KEY = "extra"
EXTRA_PREFIX = "extra."

#: Layer types a model file may name, by the name it stores.
LAYER_TYPES: dict[str, type[Layer]] = {
    "Dense": Dense,
    "Tanh": Tanh,
    "Sigmoid": Sigmoid,
    "ReLU": ReLU,
    "Identity": Identity,
}


# -- atomic writes ---------------------------------------------------------------
def _check_path(path) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path={path!r} must be a str or os.PathLike, e.g. 'model.npz'")
    return os.fspath(path)


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
    path = _check_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"cannot write {path!r}: the directory {directory!r} does not exist; create it first"
        )
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path!r}: it is a directory; pass a file name")
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


# -- metadata ----------------------------------------------------------------------
def _layer_spec(index: int, layer: Layer) -> dict[str, Any]:
    name = type(layer).__name__
    if LAYER_TYPES.get(name) is not type(layer):
        raise TypeError(
            f"layers[{index}] is a {name}, which a model file cannot hold: only "
            f"{sorted(LAYER_TYPES)} can be saved"
        )
    if isinstance(layer, Dense):
        return {
            "type": name,
            "input_size": layer.input_size,
            "output_size": layer.output_size,
            "init": layer.init,
        }
    return {"type": name}


def _json_seed(seed):
    """The network's seed as JSON: None, an int, or a list of ints."""
    if seed is None:
        return None
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return int(seed)
    if isinstance(seed, list | tuple | np.ndarray) and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in seed
    ):
        return [int(v) for v in seed]
    raise TypeError(
        f"the network's seed {seed!r} cannot be saved: use None, an int or a list of ints"
    )


def _rng_state(net: Network) -> dict | None:
    rng = getattr(net, "_rng", None)
    if not isinstance(rng, np.random.Generator):
        return None
    return rng.bit_generator.state


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _checksum(metadata: dict, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the metadata (less the checksum) and every array's name, dtype,
    shape and bytes, in name order."""
    h = hashlib.sha256()
    h.update(_canonical({k: v for k, v in metadata.items() if k != "checksum"}))
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(_canonical([name, arr.dtype.str, list(arr.shape)]))
        h.update(arr.tobytes())
    return h.hexdigest()


def _metadata(net: Network, arrays: dict[str, np.ndarray], extra=None) -> dict[str, Any]:
    from . import __version__

    optimizer = getattr(net, "optimizer", None)
    opt_meta = None
    if optimizer is not None:
        opt_meta = {
            "config": optimizer.get_config(),
            "step": int(getattr(optimizer, "step", 0)),
        }
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastnn_version": __version__,
        "layers": [_layer_spec(i, layer) for i, layer in enumerate(net.layers)],
        "loss": net.loss,
        "dtype": net.dtype.name,
        "backend": net.backend,
        "seed": _json_seed(net.seed),
        "rng_state": _rng_state(net),
        "optimizer": opt_meta,
        "arrays": {
            name: {"dtype": arr.dtype.str, "shape": list(arr.shape)}
            for name, arr in sorted(arrays.items())
        },
    }
    if extra is not None:
        meta[EXTRA_KEY] = extra
    meta["checksum"] = {"algorithm": "sha256", "digest": _checksum(meta, arrays)}
    return meta


# -- save --------------------------------------------------------------------------
def _payload(net: Network, extra=None) -> dict[str, np.ndarray]:
    arrays = _arrays(net)
    extra_meta = None
    if extra is not None:
        extra_meta, extra_arrays = extra
        for name, arr in extra_arrays.items():
            if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
                raise TypeError(f"extra array {name!r} must be a numeric ndarray")
            arrays[EXTRA_PREFIX + name] = np.ascontiguousarray(arr)
    payload = dict(arrays)
    meta = _metadata(net, arrays, extra_meta)
    payload[METADATA_KEY] = np.frombuffer(_canonical(meta), dtype=np.uint8)
    return payload


def _arrays(net: Network) -> dict[str, np.ndarray]:
    arrays = {PARAMS_KEY: np.ascontiguousarray(net.params)}
    optimizer = getattr(net, "optimizer", None)
    state = getattr(optimizer, "state", None) or {}
    for key, value in state.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise TypeError(
                f"optimizer state {key!r} is {type(value).__name__}, not a numeric array: "
                "a model file holds numeric arrays only"
            )
        arrays[OPTIMIZER_PREFIX + key] = np.ascontiguousarray(value)
    return arrays


def save(net: Network, path, extra: tuple[dict, dict[str, np.ndarray]] | None = None) -> None:
    """Write ``net`` to ``path`` atomically, as .npz arrays plus JSON metadata.

    The file name is used as given (no ``.npz`` is appended). Everything needed to
    predict and to go on training is stored: the layers, loss, dtype, backend,
    seed, parameters, the shuffling generator's state, and the optimizer's
    settings and state.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike
    extra : (dict, dict of str to ndarray), optional
        JSON-serialisable metadata and numeric arrays to store with the network
        (``load_extra`` returns them).

    Raises
    ------
    TypeError
        If ``net`` is not a Network or holds a layer type a file cannot describe.
    FileNotFoundError
        If the directory of ``path`` does not exist.
    """
    if not isinstance(net, Network):
        raise TypeError(f"save expects a fastnn Network, got {type(net).__name__}")
    payload = _payload(net, extra)
    atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **payload))


def to_bytes(net: Network) -> bytes:
    """The bytes ``save`` would write for ``net``, e.g. to send or embed a network.

    ``from_bytes`` reads them back, with the same checks as ``load``.
    """
    if not isinstance(net, Network):
        raise TypeError(f"to_bytes expects a fastnn Network, got {type(net).__name__}")
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **_payload(net))
    return buffer.getvalue()


def from_bytes(data: bytes) -> Network:
    """Rebuild a network from ``to_bytes`` output (or a model file's content).

    Raises
    ------
    ValueError
        As ``load`` does, for anything that is not an intact fastnn model.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"from_bytes expects bytes, got {type(data).__name__}")
    return _build(io.BytesIO(bytes(data)), "<bytes>")


# -- load --------------------------------------------------------------------------
def _fail(path: str, what: str) -> ValueError:
    return ValueError(f"{path!r} is not a valid fastnn model file: {what}")


def _read(source, path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a model file, checked against each other."""
    try:
        data = np.load(source, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise _fail(path, "it holds a single .npy array, not a model archive")
        with data:
            contents = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if "is not a valid fastnn model file" in str(exc):
            raise
        # NumPy's own message here suggests loading with pickle: never pass that on.
        raise _fail(path, "it is not a readable .npz archive (not a zip file)") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
        raise _fail(
            path, f"the archive is corrupt or truncated ({type(exc).__name__}: {exc})"
        ) from exc

    raw = contents.pop(METADATA_KEY, None)
    if raw is None:
        raise _fail(path, f"it has no {METADATA_KEY!r} entry (was it written by fastnn?)")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _fail(path, f"its {METADATA_KEY!r} entry is not a uint8 byte string")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"its metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _fail(path, f"its metadata does not name the format {FORMAT_NAME!r}")

    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(path, f"format_version={version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} has fastnn format version {version}, newer than the version "
            f"{FORMAT_VERSION} this fastnn reads: upgrade fastnn to load it"
        )

    declared = meta.get("arrays")
    if not isinstance(declared, dict) or set(declared) != set(contents):
        raise _fail(
            path,
            f"its arrays {sorted(contents)} do not match those its metadata lists "
            f"({sorted(declared) if isinstance(declared, dict) else declared!r})",
        )
    for name, spec in declared.items():
        arr = contents[name]
        if not isinstance(spec, dict) or [arr.dtype.str, list(arr.shape)] != [
            spec.get("dtype"),
            spec.get("shape"),
        ]:
            raise _fail(
                path,
                f"array {name!r} has dtype {arr.dtype.str} and shape {list(arr.shape)}, "
                f"but the metadata says {spec!r}",
            )

    checksum = meta.get("checksum")
    if not isinstance(checksum, dict) or checksum.get("algorithm") != "sha256":
        raise _fail(path, "its metadata has no sha256 checksum")
    if checksum.get("digest") != _checksum(meta, contents):
        raise _fail(
            path,
            "the checksum does not match its content: the file was modified or "
            "corrupted after it was written",
        )
    return meta, contents


def _build_layers(path: str, specs, backend: str = "numba") -> list[Layer]:
    if not isinstance(specs, list) or not specs:
        raise _fail(path, "its metadata has no list of layers")
    layers: list[Layer] = []
    for i, spec in enumerate(specs):
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in LAYER_TYPES:
            raise _fail(path, f"layers[{i}] has unknown type {kind!r}")
        if kind == "Dense":
            try:
                layers.append(
                    Dense(
                        spec["input_size"], spec["output_size"], spec.get("init"), backend=backend
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise _fail(path, f"layers[{i}] is not a valid Dense layer ({exc})") from exc
        else:
            layers.append(LAYER_TYPES[kind](backend=backend))
    return layers


def _restore_optimizer(path: str, meta: dict, contents: dict[str, np.ndarray], params):
    opt_meta = meta.get("optimizer")
    state = {
        name[len(OPTIMIZER_PREFIX) :]: arr
        for name, arr in contents.items()
        if name.startswith(OPTIMIZER_PREFIX)
    }
    if opt_meta is None:
        if state:
            raise _fail(path, "it holds optimizer state but no optimizer settings")
        return None
    from .optimizers import from_config

    try:
        optimizer = from_config(opt_meta["config"])
        step = opt_meta.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step={step!r} is not a count")
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"its optimizer settings are invalid ({exc})") from exc
    for key, arr in state.items():
        if arr.shape != params.shape or arr.dtype != params.dtype:
            raise _fail(path, f"optimizer state {key!r} does not match the parameters")
        state[key] = arr.copy()
    optimizer.state = state
    optimizer.step = step
    return optimizer


def load(path) -> Network:
    """Read a network written by ``save`` (or ``Network.save``).

    The loaded network predicts bit for bit as the saved one did, and training it
    further continues from the saved parameters, optimizer state and shuffling
    state. The file is read with ``allow_pickle=False``: no code in it can run.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a fastnn model, is corrupt or truncated, was modified
        after it was written (checksum mismatch), or has a newer format version.
    """
    path = _check_path(path)
    return _build(path, path)


def _build(source, path: str, backend: str | None = None) -> Network:
    """The network in ``source`` (a path or a binary file); ``path`` names it in errors."""
    return _build_with_extra(source, path, backend)[0]


def load_extra(path, backend: str | None = None) -> tuple[Network, Any, dict[str, np.ndarray]]:
    """Read a network written by ``save(..., extra=...)``, with its extra content.

    Parameters
    ----------
    path : str or os.PathLike
    backend : {"numba", "numpy"}, optional
        Run the network on this backend rather than the one it was saved with
        ("numpy" never imports Numba).

    Returns
    -------
    net : Network
    extra : JSON value or None
        The extra metadata (None if the file has none).
    arrays : dict of str to ndarray
        The extra arrays, by the names they were saved under.

    Raises
    ------
    FileNotFoundError, ValueError
        As ``load``.
    """
    path = _check_path(path)
    return _build_with_extra(path, path, backend)


def _build_with_extra(source, path: str, backend: str | None):
    meta, contents = _read(source, path)
    backend = meta.get("backend") if backend is None else backend
    layers = _build_layers(path, meta.get("layers"), backend)
    try:
        net = Network(
            layers,
            loss=meta.get("loss"),
            dtype=meta.get("dtype"),
            backend=backend,
            seed=meta.get("seed"),
        )
    except (TypeError, ValueError) as exc:
        raise _fail(path, f"its network description is invalid ({exc})") from exc

    params = contents[PARAMS_KEY] if PARAMS_KEY in contents else None
    if params is None or params.shape != net.params.shape or params.dtype != net.dtype:
        raise _fail(
            path,
            f"its parameters (shape {None if params is None else params.shape}) do not "
            f"fit the layers, which need {net.params.shape[0]} values of {net.dtype.name}",
        )
    net.params[:] = params
    net.optimizer = _restore_optimizer(path, meta, contents, net.params)

    rng_state = meta.get("rng_state")
    if rng_state is not None:
        try:
            net._rng.bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError) as exc:
            raise _fail(path, f"its shuffling state is invalid ({exc})") from exc
    extra = {k[len(EXTRA_PREFIX) :]: v for k, v in contents.items() if k.startswith(EXTRA_PREFIX)}
    return net, meta.get(EXTRA_KEY), extra
