"""The cold-compile notice: numba's cache index files decide, read without importing numba;
said once before a cold compile, never on a warm cache."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

from numasim import jitcache

ROOT = Path(jitcache.__file__).resolve().parent


def _fake_index(cache_dir: Path, module: str, *, stamp: bytes | None = None,
                version: str | None = None) -> Path:
    """An index as numba writes it: its version pickled, then (source stamp, overloads)."""
    py = ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py")
    sub = f"{py.parent.name}_{hashlib.sha1(str(py.parent).encode()).hexdigest()}"
    d = cache_dir / sub
    d.mkdir(parents=True, exist_ok=True)
    stem = module.rsplit(".", 1)[1]
    ix = d / f"{stem}.f-10.py311.nbi"
    with open(ix, "wb") as f:
        pickle.dump(version or jitcache._numba_version(), f)
        f.write(pickle.dumps((stamp or hashlib.sha256(py.read_bytes()).digest(),
                              {("sig",): f"{stem}.f-10.py311.1.nbc"})))
    return ix


def test_empty_cache_is_cold_and_fresh_indexes_are_warm(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert jitcache.cold_modules() == list(jitcache.JIT_MODULES)
    for m in jitcache.JIT_MODULES:
        _fake_index(tmp_path, m)
    assert jitcache.cold_modules() == []


def test_stale_or_foreign_indexes_are_cold(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    m = "numasim.machine.fast"
    _fake_index(tmp_path, m, stamp=b"\0" * 32)  # the source changed since
    assert m in jitcache.cold_modules((m,))
    ix = _fake_index(tmp_path, m, version="0.0.1")  # another numba wrote it
    assert m in jitcache.cold_modules((m,))
    ix.write_bytes(b"garbage")
    assert m in jitcache.cold_modules((m,))


def test_said_once_on_stderr(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(jitcache.ENV_SAID, raising=False)
    assert jitcache.announce_cold_compile()
    assert not jitcache.announce_cold_compile()  # a second time (or in a worker): silent
    err = capsys.readouterr().err
    assert err.count("compiling numasim's kernels (once per machine") == 1


def test_nothing_on_a_warm_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(jitcache.ENV_SAID, raising=False)
    for m in jitcache.JIT_MODULES:
        _fake_index(tmp_path, m)
    assert not jitcache.announce_cold_compile()
    assert capsys.readouterr().err == ""


def test_said_once_when_numba_compiles_and_never_on_a_cache_load(tmp_path):
    """The note comes from numba's compile event: the first run in an empty cache says it
    (once, however many functions compile), the next run loads them and says nothing, and
    importing compiles nothing (kernel_jit is lazy), so it says nothing either."""
    env = {k: v for k, v in os.environ.items() if k != jitcache.ENV_SAID}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    call = "import numasim.mm.alloc_core as c; c.gfp_zone(3); c.gfp_transhuge(3)"
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=300).stderr
            for code in ("import numasim.jit", call, call)]
    said = [err.count("compiling numasim's kernels") for err in runs]
    assert said == [0, 1, 0], runs


def test_the_check_does_not_import_numba():
    code = ("import sys; from numasim.jitcache import cold_modules; cold_modules(); "
            "sys.exit('numba' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


def _sources(tmp_path: Path, cache_root: Path, monkeypatch) -> tuple[Path, Path]:
    """A source tree shaped as numasim's jitted trees, numba's cache under ``cache_root``;
    (the tree, the cache folder numba would use for its machine/ sources)."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache_root))
    src = tmp_path / "src"
    for tree in jitcache.JIT_TREES:
        (src / tree).mkdir(parents=True)
        (src / tree / "a.py").write_text("X = 1\n")
    (src / "jit.py").write_text("")
    return src, jitcache._cache_dirs(src / "machine" / "a.py")[0]


def test_a_changed_source_empties_the_cache_numba_would_load(tmp_path, monkeypatch):
    """numba stamps a cached function with its own file only: a change in a module it calls
    (gen.py under the engine loop) would load stale machine code.  numasim stamps each cache
    folder with the hash of all its jitted sources and empties a folder whose stamp differs."""
    src, cache = _sources(tmp_path, tmp_path, monkeypatch)
    cache.mkdir(parents=True)
    (cache / "a.f-1.py311.nbi").write_bytes(b"old")
    assert jitcache.drop_stale_caches(src) == 1  # no stamp yet: not known to be fresh
    (cache / "a.f-1.py311.nbi").write_bytes(b"fresh")
    assert jitcache.drop_stale_caches(src) == 0  # same sources: the cache stays
    (src / "workloads" / "a.py").write_text("X = 2\n")  # another module changed
    assert jitcache.drop_stale_caches(src) == 1
    assert not (cache / "a.f-1.py311.nbi").exists()


def test_the_sources_stamp_covers_the_jitted_modules():
    """Every module with numba code is inside the stamped trees (or is jit.py)."""
    for name in jitcache.JIT_MODULES:
        parts = name.split(".")
        assert parts[1] in jitcache.JIT_TREES or parts[1] == "jit"
    for py in ROOT.rglob("*.py"):
        text = py.read_text()
        if "njit" in text or "kernel_jit" in text:
            rel = py.relative_to(ROOT).parts
            assert rel[0] in jitcache.JIT_TREES or rel[0] in ("jit.py", "jitcache.py"), rel


def test_a_fresh_cache_folder_is_stamped_before_numba_writes_into_it(tmp_path, monkeypatch):
    """numba's user-wide cache folder does not exist before the first compile: numasim makes
    and stamps it, so what numba then writes there is kept by the next run (left unstamped,
    the second run emptied it and compiled everything again)."""
    src, cache = _sources(tmp_path, tmp_path / "cache", monkeypatch)
    assert not cache.exists()
    jitcache.drop_stale_caches(src)  # the first run, before numba compiles
    assert (cache / jitcache.STAMP_FILE).read_text() == jitcache.sources_stamp(src)
    (cache / "a.f-1.py311.nbi").write_bytes(b"compiled by the first run")
    assert jitcache.drop_stale_caches(src) == 0  # the second run keeps it
    assert (cache / "a.f-1.py311.nbi").exists()
