"""Model files from strangers: every malformed file is a ValueError, found cheaply.

Each hostile file here declares more than it holds (a zip bomb, a lying .npy header,
huge layers, deep JSON, a garbled zip directory). ``fastnn.load`` and
``fastnn.io.from_bytes`` must refuse it with a ValueError that names the file and
the problem, without inflating or allocating what it declares: the peak memory
while refusing stays within a few times the file's own size.
"""

from __future__ import annotations

import io as pyio
import json
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnn as fn
from fastnn import archive
from fastnn import io as fio

MiB = 1 << 20


def small_net() -> fn.Network:
    net = fn.Network(
        [fn.Dense(3, 4), fn.Tanh(), fn.Dense(4, 2)], loss="cross_entropy", backend="numpy"
    )
    net.fit(np.eye(3)[[0, 1, 2, 0]], [0, 1, 1, 0], epochs=1, optimizer="adam", batch_size=2)
    return net


VALID = fio.to_bytes(small_net())


# -- building archives by hand --------------------------------------------------------
def npy(arr: np.ndarray) -> bytes:
    buf = pyio.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def npy_header(dtype: str, n: int) -> bytes:
    buf = pyio.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": (n,)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(pyio.BytesIO(data)) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def metadata_of(data: bytes) -> dict:
    raw = members_of(data)["metadata.npy"]
    return json.loads(np.load(pyio.BytesIO(raw)).tobytes())


def rehashed(meta: dict, members: dict[str, bytes]) -> bytes:
    """The .npy member holding ``meta``, its checksum recomputed over ``members``."""
    arrays = {
        name[:-4]: np.load(pyio.BytesIO(raw))
        for name, raw in members.items()
        if name != "metadata.npy"
    }
    meta["checksum"]["digest"] = fio._checksum(meta, arrays)
    return npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def zip_raw(entries, aliases: int = 0) -> bytes:
    """A zip archive of ``(name, stored bytes, method, declared size, crc)`` entries,
    with whatever sizes they declare (zipfile would compute honest ones), and
    ``aliases`` more directory entries pointing at the last entry's bytes."""
    out, directory = bytearray(), bytearray()
    for name, payload, method, size, crc in entries:
        offset = len(out)
        fields = (20, 0, method, 0, 0x21, crc, len(payload), size, len(name))
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields, 0) + name.encode() + payload
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0, offset)
        directory += name.encode()
    for i in range(aliases):
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0, offset)
        directory += f"{i:0{len(name) - 4}d}.npy".encode()
    n = len(entries) + aliases
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(directory), len(out), 0)
    return bytes(out + directory + end)


def stored(name: str, raw: bytes):
    return (name, raw, zipfile.ZIP_STORED, len(raw), zlib.crc32(raw))


def deflate(raw: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush()


def zeros_stream(n_mib: int, head: bytes = b"") -> bytes:
    """A raw deflate stream of ``head`` and then ``n_mib`` MiB of zeros, built from one
    compressed MiB repeated (full flushes make the pieces independent)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    return first + piece * n_mib + b"\x03\x00"  # an empty final block


def with_member(data: bytes, name: str, entry) -> bytes:
    """``data`` with member ``name`` replaced by the raw ``entry``."""
    members = members_of(data)
    return zip_raw([entry if n == name else stored(n, raw) for n, raw in members.items()])


# -- the contract ---------------------------------------------------------------------
def refuse(data: bytes, match: str, tmp_path, *, slack: int = MiB) -> None:
    """Both entry points refuse ``data`` with a ValueError matching ``match`` that
    names the file, at a peak memory under 3x its size + ``slack``."""
    path = tmp_path / "hostile.npz"
    path.write_bytes(data)
    bound = 3 * len(data) + slack
    for name, call in (
        ("hostile.npz", lambda: fn.load(path)),
        ("<bytes>", lambda: fio.from_bytes(data)),
    ):
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match=match) as info:
                call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert name in str(info.value) and "not a valid fastnn model file" in str(info.value)
        assert peak < bound, f"peak {peak / MiB:.1f} MiB refusing a {len(data)}-byte file"


def test_valid_file_still_loads(tmp_path):
    net = small_net()
    rebuilt = zip_raw([stored(n, raw) for n, raw in members_of(VALID).items()])
    assert np.array_equal(fio.from_bytes(rebuilt).params, net.params)
    deflated = [
        (n, deflate(raw), zipfile.ZIP_DEFLATED, len(raw), zlib.crc32(raw))
        for n, raw in members_of(VALID).items()
    ]  # a model file zipped again with compression still loads
    assert np.array_equal(fio.from_bytes(zip_raw(deflated)).params, net.params)


def test_zip_bomb_is_refused_before_inflating(tmp_path):
    # params.npy: a 4 MB member that inflates to 4 GiB.
    bomb = zeros_stream(4095, npy_header("<f8", (4095 * MiB) // 8))
    entry = ("params.npy", bomb, zipfile.ZIP_DEFLATED, 0xFFFFFFFF, 0)
    data = with_member(VALID, "params.npy", entry)
    assert len(data) > 3 * MiB
    refuse(data, r"member 'params.npy' declares 4294967295 bytes .* zip bomb", tmp_path)


def test_member_inflating_past_its_declared_size_is_stopped(tmp_path):
    # The member declares a size within bounds, but its stream inflates to 1 GiB:
    # inflation stops at the declared size, and the CRC refuses it.
    params = members_of(VALID)["params.npy"]
    entry = ("params.npy", zeros_stream(1024, params), zipfile.ZIP_DEFLATED, len(params), 0)
    refuse(with_member(VALID, "params.npy", entry), r"corrupt .*Bad CRC-32", tmp_path)


@pytest.mark.parametrize("size", [10**9, 2**62])
def test_lying_npy_header(tmp_path, size):
    members = members_of(VALID)
    raw = npy_header("<f8", size) + members["params.npy"][128:]
    data = with_member(VALID, "params.npy", stored("params.npy", raw))
    refuse(data, rf"member 'params' declares {size} values of <f8 .* but holds", tmp_path)


def test_lying_member_size(tmp_path):
    raw = members_of(VALID)["params.npy"]
    entry = ("params.npy", raw, zipfile.ZIP_STORED, 3 * 10**9, zlib.crc32(raw))
    refuse(with_member(VALID, "params.npy", entry), r"stored uncompressed in \d+ bytes", tmp_path)


@pytest.mark.parametrize("n", [8000, 10**6])
def test_huge_declared_layers(tmp_path, n):
    # A 2 KB file whose valid checksum covers Dense(n, n): refused from the sizes.
    members = members_of(VALID)
    meta = metadata_of(VALID)
    meta["layers"] = [{"type": "Dense", "input_size": n, "output_size": n, "init": None}]
    members["metadata.npy"] = rehashed(meta, members)
    data = zip_raw([stored(name, raw) for name, raw in members.items()])
    assert len(data) < 4096
    refuse(data, rf"layers, which need {n * (n + 1)} floating-point values", tmp_path)


def test_deep_json(tmp_path):
    members = members_of(VALID)
    deep = b'{"format": "fastnn", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    members["metadata.npy"] = npy(np.frombuffer(deep, dtype=np.uint8))
    data = zip_raw([stored(name, raw) for name, raw in members.items()])
    refuse(data, r"nested more than 32 levels", tmp_path)


def test_brackets_inside_strings_do_not_count(tmp_path):
    meta = metadata_of(VALID)
    meta["fastnn_version"] = "[" * 100
    members = members_of(VALID)
    members["metadata.npy"] = rehashed(meta, members)
    data = zip_raw([stored(name, raw) for name, raw in members.items()])
    assert np.array_equal(fio.from_bytes(data).params, fio.from_bytes(VALID).params)


@pytest.mark.parametrize(
    "json_text, match",
    [
        (b'{"format": "fastnn", "a": [' + b"[]," * 70000 + b"[]]}", "more than 65536"),
        # At the limit: 32,766 objects parsed (about 2 MiB), then refused.
        (b'{"format": "fastnm", "a": [' + b"{}," * 32765 + b"{}]}", "does not name the format"),
        (b'{"format": "fastnn", "seed": NaN}', "not valid JSON"),
        (b'{"format": "fastnn", "seed": 1e999}', "not valid JSON"),
        (b'{"format": "fastnn", "seed": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"format": "fastnn"', "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_hostile_json(tmp_path, json_text, match):
    members = members_of(VALID)
    members["metadata.npy"] = npy(np.frombuffer(json_text, dtype=np.uint8))
    data = zip_raw([stored(name, raw) for name, raw in members.items()])
    refuse(data, match, tmp_path, slack=4 * MiB)


def test_oversized_metadata(tmp_path):
    members = members_of(VALID)
    members["metadata.npy"] = npy(np.zeros(fio.MAX_METADATA_BYTES + 1, dtype=np.uint8))
    data = zip_raw([stored(name, raw) for name, raw in members.items()])
    refuse(data, "more than 1048576", tmp_path)


def test_garbled_zip_directory(tmp_path):
    data = bytearray(VALID)
    central = data.index(b"PK\x01\x02")
    data[central + 10] = 99  # the first entry's compression method
    refuse(bytes(data), "compression method 99", tmp_path)
    data[central + 10] = 0
    data[central + 8] |= 1  # its "encrypted" flag
    refuse(bytes(data), "encrypted", tmp_path)


def test_oversized_zip_directory(tmp_path):
    entries = [stored(f"a{i}.npy", npy(np.zeros(1))) for i in range(archive.MAX_MEMBERS + 1)]
    refuse(zip_raw(entries), r"declares 65 entries", tmp_path)


def test_overlapping_members(tmp_path):
    # Directory entries all pointing at the same bytes (a classic zip bomb).
    members = members_of(VALID)
    data = zip_raw([stored(name, raw) for name, raw in members.items()], aliases=40)
    refuse(data, "more than the file's", tmp_path)


def test_pickle_member_is_not_read(tmp_path):
    members = members_of(VALID)
    buf = pyio.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    members["params.npy"] = buf.getvalue()
    data = zip_raw([stored(name, raw) for name, raw in members.items()])
    refuse(data, r"holds Python objects \(a pickle\)", tmp_path)


# -- fuzzing ---------------------------------------------------------------------------
def load_or_refuse(data: bytes, same_as: fn.Network | None = None) -> None:
    """Only a Network (equal to ``same_as`` when given) or a ValueError may come out."""
    try:
        net = fio.from_bytes(data)
    except ValueError as exc:
        assert "not a valid fastnn model file" in str(exc) or "newer than" in str(exc)
    else:
        assert isinstance(net, fn.Network)
        if same_as is not None:  # a flip the checks let through changed nothing
            assert np.array_equal(net.params.view(np.uint8), same_as.params.view(np.uint8))
            assert net.optimizer.get_config() == same_as.optimizer.get_config()
            assert [repr(a) for a in net.layers] == [repr(b) for b in same_as.layers]


_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
_TAIL = VALID.index(b"PK\x01\x02")  # the zip directory: the most fragile bytes
ORIGINAL = fio.from_bytes(VALID)


@_FUZZ
@given(
    flips=st.lists(
        st.tuples(
            st.one_of(st.integers(0, len(VALID) - 1), st.integers(_TAIL, len(VALID) - 1)),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=6,
    ),
    cut=st.one_of(st.none(), st.integers(0, len(VALID))),
)
def test_fuzz_flipped_and_truncated_bytes(flips, cut):
    data = bytearray(VALID)
    for pos, value in flips:
        data[pos] = value
    load_or_refuse(bytes(data[:cut]), same_as=ORIGINAL)


def _meta_paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _meta_paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _meta_paths(value, (*prefix, i))


_PATHS = [p for p in _meta_paths(metadata_of(VALID)) if p and p[0] != "checksum"]
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["Dense", "Tanh", "adam", "sgd", "float32", "<f8", "numpy", "mse"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


@_FUZZ
@given(path=st.sampled_from(_PATHS), value=_JSON)
def test_fuzz_metadata_values_behind_a_valid_checksum(path, value):
    # Any value anywhere in the metadata, with the checksum recomputed to match.
    meta = metadata_of(VALID)
    node = meta
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    members = members_of(VALID)
    members["metadata.npy"] = rehashed(meta, members)
    load_or_refuse(zip_raw([stored(name, raw) for name, raw in members.items()]))
