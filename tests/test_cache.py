"""The kernels' compile cache: read-only installs, damaged cache files, a private directory.

The subprocess tests copy fastnn into a temporary directory whose ``__pycache__``
next to the kernels is a plain file, so nothing can be cached beside the source
even for root (chmod does not stop root). ``HOME`` and ``XDG_CACHE_HOME`` then
decide whether a per-user cache directory can be made.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

FIT = """
import json, types
import numpy as np
import fastnn as fn
import fastnn.kernels as k
from numba.core.dispatcher import Dispatcher

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
net = fn.Network([fn.Dense(2, 3), fn.Tanh(), fn.Dense(3, 1), fn.Tanh()], seed=0)
net.fit(X, Y, epochs=20, learning_rate=0.1, shuffle=True)
hits = misses = 0
for module in vars(k).values():
    if isinstance(module, types.ModuleType) and module.__name__.startswith(k.__name__):
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher):
                hits += sum(obj.stats.cache_hits.values())
                misses += sum(obj.stats.cache_misses.values())
print(json.dumps({"file": k.__file__, "params": net.params.tolist(), "hits": hits,
                  "misses": misses}))
"""


def expected_params() -> np.ndarray:
    import fastnn as fn

    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    net = fn.Network(
        [fn.Dense(2, 3), fn.Tanh(), fn.Dense(3, 1), fn.Tanh()], seed=0, backend="numpy"
    )
    net.fit(X, Y, epochs=20, learning_rate=0.1, shuffle=True)
    return net.params


def read_only_copy(tmp: Path) -> Path:
    """fastnn installed under ``tmp/site`` as pip would lay it out, with no way to
    cache next to the kernels."""
    site = tmp / "site"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "fastnn", site / "fastnn", ignore=ignore)
    shutil.copytree(ROOT / "kernels", site / "fastnn" / "kernels", ignore=ignore)
    (site / "fastnn" / "kernels" / "__pycache__").write_text("not a directory")
    return site


def run_fit(site: Path, home: Path, cache_home: Path, numba_cache: Path | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CACHE", "XDG_"))}
    env.update(PYTHONPATH=str(site), HOME=str(home), XDG_CACHE_HOME=str(cache_home))
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_cache)
    proc = subprocess.run(
        [sys.executable, "-c", FIT], env=env, cwd=site, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["file"].startswith(str(site))  # the copy ran, not the checkout
    return result, proc.stderr


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CacheWarning" in line]


@pytest.fixture(scope="module")
def user_cache(tmp_path_factory):
    """A read-only install that caches in a per-user directory, after one fit."""
    tmp = tmp_path_factory.mktemp("user-cache")
    site = read_only_copy(tmp)
    cache_home = tmp / "xdg"
    result, stderr = run_fit(site, tmp / "home", cache_home)
    return site, cache_home, result, stderr


@pytest.mark.slow
def test_read_only_install_caches_in_a_private_user_directory(user_cache, tmp_path):
    site, cache_home, first, stderr = user_cache
    assert warnings_in(stderr) == []
    np.testing.assert_allclose(first["params"], expected_params(), rtol=1e-9, atol=1e-12)
    for directory in (cache_home / "fastnn", cache_home / "fastnn" / "numba"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert list((cache_home / "fastnn" / "numba").rglob("*.nbc"))
    again, stderr = run_fit(site, tmp_path, cache_home)  # a new process loads them
    assert warnings_in(stderr) == [] and again["misses"] == 0 and again["hits"] > 0
    assert again["params"] == first["params"]


@pytest.mark.slow
def test_read_only_install_without_any_cache_warns_once(tmp_path):
    site = read_only_copy(tmp_path)
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # nothing can be created below a plain file, even by root
    result, stderr = run_fit(site, blocked / "home", blocked / "cache")
    lines = warnings_in(stderr)
    assert len(lines) == 1 and "cannot be cached" in lines[0] and "NUMBA_CACHE_DIR" in lines[0]
    np.testing.assert_allclose(result["params"], expected_params(), rtol=1e-9, atol=1e-12)


def damage(files: list[Path]) -> None:
    """Five kinds of damage, each to another kernel's files."""
    index = next(f for f in files if "engine" in f.name and f.suffix == ".nbi")
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])  # truncated index
    base = index.name[: -len(".nbi")]
    data = [f for f in files if f.suffix == ".nbc" and not f.name.startswith(base)]
    data.sort(key=lambda f: f.stat().st_size, reverse=True)
    raw = bytearray(data[0].read_bytes())
    raw[len(raw) // 2] ^= 0x40  # one flipped bit in the machine code
    data[0].write_bytes(bytes(raw))
    data[1].write_bytes(os.urandom(data[1].stat().st_size))  # garbage
    data[2].write_bytes(data[2].read_bytes()[:100])  # truncated data
    data[3].write_bytes(b"")  # empty


@pytest.mark.slow
def test_damaged_cache_files_are_compiled_again(user_cache, tmp_path):
    site, cache_home, first, _ = user_cache
    shutil.copytree(cache_home, tmp_path / "xdg")
    damage(sorted((tmp_path / "xdg").rglob("*.nb[ic]")))
    result, stderr = run_fit(site, tmp_path, tmp_path / "xdg")
    assert result["params"] == first["params"] and result["misses"] > 0
    assert len(warnings_in(stderr)) == 1 and "damaged" in stderr
    repaired, stderr = run_fit(site, tmp_path, tmp_path / "xdg")  # the files were replaced
    assert warnings_in(stderr) == [] and repaired["misses"] == 0
    assert repaired["params"] == first["params"]


@pytest.mark.slow
def test_a_change_to_an_inlined_helper_compiles_the_engine_again(tmp_path):
    # The engine inlines the activations' gradient loops from activations.py; Numba's
    # own check (engine.py's time and size) would load the old engine, silently.
    site = read_only_copy(tmp_path)
    first, _ = run_fit(site, tmp_path, tmp_path / "xdg")
    source = site / "fastnn" / "kernels" / "activations.py"
    text = source.read_text()
    old = "return g * (type(y)(1) - y * y)"
    assert text.count(old) == 1
    source.write_text(text.replace(old, "return g * (type(y)(1) - y * y) * type(y)(0.5)"))
    changed, _ = run_fit(site, tmp_path, tmp_path / "xdg")
    assert changed["misses"] > 0
    assert changed["params"] != first["params"]  # the halved gradient trained
    source.write_text(text)  # back as it was: compiled again, to the first result
    again, _ = run_fit(site, tmp_path, tmp_path / "xdg")
    assert again["params"] == first["params"]


def test_the_cache_stamp_covers_every_kernel_module_and_the_codes():
    from fastnn import codes
    from fastnn.kernels import cache

    names = {os.path.basename(path) for path in cache._source_files()}
    assert {"engine.py", "activations.py", "dense.py", "losses.py", "config.py"} <= names
    assert os.path.abspath(codes.__file__) in cache._source_files()
    assert cache.sources_digest() == cache.sources_digest()


# -- in-process ------------------------------------------------------------------------
def test_checked_file_round_trip_and_damage(tmp_path):
    from fastnn.kernels import cache

    cache_file = cache._CheckedCacheFile(str(tmp_path), "k", source_stamp=b"stamp")
    cache_file.save("key", ("payload", 1))
    assert cache_file.load("key") == ("payload", 1)
    data = next(tmp_path.glob("*.nbc"))
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 1
    data.write_bytes(bytes(raw))
    cache._warned.discard("damaged")
    with pytest.warns(cache.CacheWarning, match="damaged"):
        assert cache_file.load("key") is None
    cache_file.save("key", ("new", 2))  # replaced in place
    assert cache_file.load("key") == ("new", 2)
    assert data.read_bytes().startswith(cache.MAGIC)


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership")
def test_private_directory_must_be_private(tmp_path, monkeypatch):
    from fastnn.kernels import cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = cache.user_cache_dir()
    assert path == str(tmp_path / "fastnn" / "numba")
    cache._private_dir(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    os.chmod(path, 0o777)  # others may write: their pickles could run here
    with pytest.raises(PermissionError, match="other users"):
        cache._private_dir(path)
    os.chmod(path, 0o700)
    if os.getuid() == 0:  # another user's directory
        os.chown(path, 12345, -1)
        with pytest.raises(PermissionError, match="another user"):
            cache._private_dir(path)
