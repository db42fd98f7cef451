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

Files are read by ``fastnn.archive.NpzReader``, never with pickle, so loading a
file can never run code; every size a file declares is checked against its
content before anything is inflated or allocated, and the metadata's JSON is
bounded in size and depth before it is parsed. The checksum catches corrupted or
edited files; it is not a signature (anyone can recompute it), so it does not
prove who wrote a file.

Files are written atomically: to a temporary file in the target's directory,
flushed to disk, then moved over the target with ``os.replace``. A crash while
saving leaves any earlier file at that path intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import numbers
import os
import re
import stat
from typing import Any

import numpy as np

from .archive import ArchiveError, NpzReader
from .files import atomic_write
from .files import check_path as _check_path
from .layers import LAYERS, Layer
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


# -- metadata ----------------------------------------------------------------------
def _layer_spec(index: int, layer: Layer) -> dict[str, Any]:
    """The layer's entry in the metadata: ``Layer.to_spec`` of a registered kind (a
    subclass registered under no name of its own cannot be read back, so it is refused)."""
    if LAYERS.get(layer.saved_name) is not type(layer):
        raise TypeError(
            f"layers[{index}] is a {type(layer).__name__}, which a model file cannot hold: "
            f"only {sorted(LAYERS)} can be saved"
        )
    return layer.to_spec()


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


def _rng_state(net: Network) -> dict:
    return net.rng_state


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
    from .version import __version__

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
    if getattr(net, "input_shape", None) is not None:  # dense files stay as they were
        meta["input_shape"] = list(net.input_shape)
    if extra is not None:
        meta[EXTRA_KEY] = extra
    meta["checksum"] = {"algorithm": "sha256", "digest": _checksum(meta, arrays)}
    return meta


# -- save --------------------------------------------------------------------------
def _payload(net: Network, extra=None) -> dict[str, np.ndarray]:
    extra_meta, extra_arrays = (None, {}) if extra is None else extra
    for name, arr in extra_arrays.items():
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            raise TypeError(f"extra array {name!r} must be a numeric ndarray")
    # Copies of one moment: a fit in another thread waits until they are taken, and
    # may then go on while they are written.
    with net.between_updates():
        arrays = _arrays(net)
        for name, arr in extra_arrays.items():
            arrays[EXTRA_PREFIX + name] = np.ascontiguousarray(arr)
        meta = _metadata(net, arrays, extra_meta)
    payload = dict(arrays)
    payload[METADATA_KEY] = np.frombuffer(_canonical(meta), dtype=np.uint8)
    return payload


def _arrays(net: Network) -> dict[str, np.ndarray]:
    """Copies of the network's arrays (np.array copies)."""
    arrays = {PARAMS_KEY: np.array(net.params, order="C")}
    optimizer = getattr(net, "optimizer", None)
    state = getattr(optimizer, "state", None) or {}
    for key, value in state.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise TypeError(
                f"optimizer state {key!r} is {type(value).__name__}, not a numeric array: "
                "a model file holds numeric arrays only"
            )
        arrays[OPTIMIZER_PREFIX + key] = np.array(value, order="C")
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
#: Largest metadata a model file may hold, in bytes (a 100-layer network's is ~8 KB).
MAX_METADATA_BYTES = 1 << 20
#: Deepest nesting of lists and objects in the metadata (fastnn's own reach 4).
MAX_JSON_DEPTH = 32
#: Most values (lists, objects, elements, members) in the metadata.
MAX_JSON_ITEMS = 1 << 16
# A JSON string literal, so that brackets inside strings are not counted.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def _fail(path: str, what: str) -> ValueError:
    return ValueError(f"{path!r} is not a valid fastnn model file: {what}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_metadata(path: str, raw: bytes) -> dict[str, Any]:
    """The metadata's JSON, its size and nesting bounded before it is parsed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"its metadata is not UTF-8 text ({exc})") from exc
    structure = _JSON_STRING.sub("", text)
    items = sum(structure.count(c) for c in "[{,:")
    if items > MAX_JSON_ITEMS:
        raise _fail(path, f"its metadata holds {items} values, more than {MAX_JSON_ITEMS}")
    depth = 0
    for c in re.sub(r"[^\[\]{}]", "", structure):
        depth += 1 if c in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise _fail(path, f"its metadata is nested more than {MAX_JSON_DEPTH} levels deep")
        if depth < 0:
            break  # unbalanced: the parser says where
    try:
        meta = json.loads(text, parse_float=_finite_float, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _fail(path, f"its metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _fail(path, f"its metadata does not name the format {FORMAT_NAME!r}")
    return meta


def _read_metadata(path: str, reader: NpzReader) -> dict[str, Any]:
    header = reader.headers.get(METADATA_KEY)
    if header is None:
        raise _fail(path, f"it has no {METADATA_KEY!r} entry (was it written by fastnn?)")
    dtype, shape = header
    if dtype != np.uint8:
        raise _fail(path, f"its {METADATA_KEY!r} entry is not a uint8 byte string")
    if shape[0] > MAX_METADATA_BYTES:
        raise _fail(path, f"its metadata is {shape[0]} bytes long, more than {MAX_METADATA_BYTES}")
    meta = _parse_metadata(path, reader.read(METADATA_KEY).tobytes())
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(path, f"format_version={version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} has fastnn format version {version}, newer than the version "
            f"{FORMAT_VERSION} this fastnn reads: upgrade fastnn to load it"
        )
    return meta


def _parameter_count(path: str, specs) -> int:
    """The parameters the layers in ``specs`` need, from their declared sizes alone."""
    if not isinstance(specs, list) or not specs:
        raise _fail(path, "its metadata has no list of layers")
    total = 0
    for i, spec in enumerate(specs):
        # An unknown type needs none here; building the layers names it.
        kind = spec.get("type") if isinstance(spec, dict) else None
        cls = LAYERS.get(kind) if isinstance(kind, str) else None
        if cls is not None:
            try:
                total += cls.param_count(spec)
            except ValueError as exc:
                raise _fail(path, f"layers[{i}] is not a valid {kind} layer ({exc})") from exc
    return total


def _check_declared(path: str, meta: dict, headers: dict) -> None:
    """The arrays the metadata lists against the archive's .npy headers, and the
    parameters its layers need against the ``params`` array, before any is read."""
    contents = {name: header for name, header in headers.items() if name != METADATA_KEY}
    declared = meta.get("arrays")
    if not isinstance(declared, dict) or set(declared) != set(contents):
        raise _fail(
            path,
            f"its arrays {sorted(contents)} do not match those its metadata lists "
            f"({sorted(declared) if isinstance(declared, dict) else declared!r})",
        )
    for name, spec in declared.items():
        dtype, shape = contents[name]
        if not isinstance(spec, dict) or [dtype.str, list(shape)] != [
            spec.get("dtype"),
            spec.get("shape"),
        ]:
            raise _fail(
                path,
                f"array {name!r} has dtype {dtype.str} and shape {list(shape)}, "
                f"but the metadata says {spec!r}",
            )
    needed = _parameter_count(path, meta.get("layers"))
    params = contents.get(PARAMS_KEY)
    if params is None or params[1] != (needed,) or params[0].kind != "f":
        raise _fail(
            path,
            f"its parameters ({'none' if params is None else params[1]}) do not fit the "
            f"layers, which need {needed} floating-point values",
        )
    for name, (dtype, shape) in contents.items():
        if name.startswith(OPTIMIZER_PREFIX) and (dtype, shape) != params:
            raise _fail(path, f"optimizer state {name!r} does not match the parameters")


def _read(source, path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a model file, checked against each other.

    Every size the file declares is checked against the file's content, and the
    metadata against the arrays' headers, before any array is read."""
    try:
        with NpzReader(source) as reader:
            meta = _read_metadata(path, reader)
            _check_declared(path, meta, reader.headers)
            contents = {name: reader.read(name) for name in meta["arrays"]}
    except ArchiveError as exc:
        raise _fail(path, str(exc)) from exc

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
        if not isinstance(kind, str) or kind not in LAYERS:
            raise _fail(path, f"layers[{i}] has unknown type {kind!r}")
        try:
            layers.append(LAYERS[kind].from_spec(spec, backend=backend))
        except (TypeError, ValueError) as exc:
            raise _fail(path, f"layers[{i}] is not a valid {kind} layer ({exc})") from exc
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
        if not isinstance(opt_meta, dict) or not isinstance(opt_meta.get("config"), dict):
            raise TypeError(f"{opt_meta!r} is not an object with a 'config' object")
        optimizer = from_config(opt_meta["config"])
        step = opt_meta.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step={step!r} is not a count")
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"its optimizer settings are invalid ({exc})") from exc
    for key, arr in state.items():
        if arr.shape != params.shape or arr.dtype != params.dtype:
            raise _fail(path, f"optimizer state {key!r} does not match the parameters")
    optimizer.state = state
    optimizer.step = step
    return optimizer


def load(path) -> Network:
    """Read a network written by ``save`` (or ``Network.save``).

    The loaded network predicts bit for bit as the saved one did, and training it
    further continues from the saved parameters, optimizer state and shuffling
    state. The file is never unpickled: no code in it can run.

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
        If the path is not a regular file (a directory, FIFO or device is refused
        without reading it), or the file is not a fastnn model, is corrupt or
        truncated, was modified after it was written (checksum mismatch), declares
        sizes its content cannot hold, or has a newer format version. The message
        names the file and the problem; nothing is allocated beyond what the file's
        own size allows.
    """
    path = _check_path(path)
    with _open(path) as f:
        return _build(f, path)


def _open(path: str):
    """``path`` opened for reading. An unreadable path, or one that is not a regular
    file (a directory, FIFO or device, refused without reading it), is a ValueError
    naming it."""
    # Non-blocking, so that a FIFO is refused at once instead of waiting for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _fail(path, f"it cannot be read ({type(exc).__name__}: {exc})") from exc
    f = open(fd, "rb")
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        f.close()
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO, device or socket"
        raise _fail(path, f"it is not a regular file but {kind}: pass a model file")
    return f


def _build(source, path: str, backend: str | None = None) -> Network:
    """The network in ``source`` (a seekable binary file); ``path`` names it in errors."""
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
    with _open(path) as f:
        return _build_with_extra(f, path, backend)


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
            input_shape=meta.get("input_shape"),
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
            net.rng_state = rng_state
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise _fail(path, f"its shuffling state is invalid ({exc})") from exc
    extra = {k[len(EXTRA_PREFIX) :]: v for k, v in contents.items() if k.startswith(EXTRA_PREFIX)}
    return net, meta.get(EXTRA_KEY), extra
