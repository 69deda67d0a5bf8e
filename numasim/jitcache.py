"""Whether numba's on-disk cache holds numasim's compiled kernels, checked without numba.

The first run on a computer compiles the allocator core, the fast engine and the workload
generators: tens of seconds with nothing on the screen.  :func:`announce_cold_compile` says so
on stderr before it happens, once per process tree, and says nothing when the cache is warm.

The check reads numba's cache index files (``<module>.<function>-<line>.py311.nbi``) where
numba looks for them (``NUMBA_CACHE_DIR``, the ``__pycache__`` beside the source, the user's
cache folder): an index is fresh when it was written by the installed numba for the source as
it is now (numba stamps it with the file's hash, or with its mtime and size before 0.60).
It costs a few small file reads and no numba import.

:func:`drop_stale_caches` guards against what numba's cache does not see: it stamps a cached
function with its own file only, so after an upgrade or a ``git pull`` that changed a module
it calls or whose constants it froze (``gen.py`` under ``bound.py``'s engine loop), numba would
load the old machine code and the run would silently use the old generator.  numasim stamps
each cache folder with the hash of every source numba may compile from and empties the folder
when that hash changes.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import sys
from pathlib import Path

# the modules with @njit(cache=True) / @kernel_jit functions
JIT_MODULES = ("numasim.mm.alloc_core", "numasim.machine.bound", "numasim.machine.weave",
               "numasim.machine.cpu", "numasim.workloads.gen")
MESSAGE = "numasim: compiling numasim's kernels (once per machine, about a minute)..."
ENV_SAID = "NUMASIM_COMPILE_ANNOUNCED"  # set once said, so workers do not say it again


def _numba_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("numba")
    except metadata.PackageNotFoundError:
        return None


def _cache_dirs(py_file: Path) -> list[Path]:
    """Where numba may keep the cache of functions defined in ``py_file``."""
    src_dir = py_file.resolve().parent
    sub = f"{src_dir.name}_{hashlib.sha1(str(src_dir).encode()).hexdigest()}"
    if os.environ.get("NUMBA_CACHE_DIR"):  # then numba looks nowhere else
        return [Path(os.environ["NUMBA_CACHE_DIR"]) / sub]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return [src_dir / "__pycache__", Path(base) / "numba" / sub]


def _stamps(py_file: Path) -> list[bytes]:
    """The source stamp as it appears inside an index: the file's SHA-256 (numba >= 0.60)
    or its mtime as a pickled double (before)."""
    return [hashlib.sha256(py_file.read_bytes()).digest(),
            struct.pack(">d", py_file.stat().st_mtime)]


def _fresh_index(index: Path, version: str, stamps: list[bytes]) -> bool:
    """The index's numba version is read as pickle (a plain string); the rest is searched for
    the stamp's bytes rather than unpickled, since unpickling it would import numba."""
    try:
        with open(index, "rb") as f:
            if pickle.load(f) != version:  # noqa: S301 - numba's own file, a str
                return False
            rest = f.read(1 << 16)
    except Exception:  # a half-written or foreign file is simply not a fresh cache
        return False
    return any(s in rest for s in stamps)


def cold_modules(modules: tuple[str, ...] = JIT_MODULES) -> list[str]:
    """The jitted modules that numba would compile rather than load from its cache."""
    version = _numba_version()
    if version is None:
        return []
    root = Path(__file__).resolve().parent  # no find_spec: it would import the packages
    cold = []
    for name in modules:
        py_file = root.joinpath(*name.split(".")[1:]).with_suffix(".py")
        if not py_file.exists():
            continue
        stamps = _stamps(py_file)
        stem = name.rsplit(".", 1)[-1]
        fresh = any(_fresh_index(ix, version, stamps)
                    for d in _cache_dirs(py_file) if d.is_dir()
                    for ix in d.glob(f"{stem}.*.nbi"))
        if not fresh:
            cold.append(name)
    return cold


def announce_cold_compile() -> bool:
    """Print :data:`MESSAGE` on stderr if numba is about to compile numasim's kernels; once
    per process tree (child processes inherit the note that it was said).  Returns whether
    it printed."""
    if os.environ.get(ENV_SAID) or not cold_modules():
        return False
    os.environ[ENV_SAID] = "1"
    print(MESSAGE, file=sys.stderr, flush=True)
    return True


# the source folders numba compiles from or freezes constants of (with numasim/jit.py)
JIT_TREES = ("mm", "machine", "workloads", "memctrl")
STAMP_FILE = "numasim-sources.stamp"


def sources_stamp(root: Path | None = None) -> str:
    """SHA-256 of every source numba may compile numasim code from (names and contents)."""
    root = root or Path(__file__).resolve().parent
    files = [root / "jit.py"] + sorted(p for t in JIT_TREES for p in (root / t).rglob("*.py"))
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def drop_stale_caches(root: Path | None = None) -> int:
    """Empty every numba cache folder of numasim's sources whose stamp is not the sources'
    hash as they are now, and stamp it; returns how many cache files went.  Called when
    numasim is imported, before numba loads anything; a folder it cannot write is left as
    it is (numba then uses it or another one as it always does)."""
    root = root or Path(__file__).resolve().parent
    try:
        stamp = sources_stamp(root)
    except OSError:
        return 0
    src_dirs = {root} | {p.parent for t in JIT_TREES for p in (root / t).rglob("*.py")}
    removed = 0
    for src in sorted(src_dirs):
        for d in _cache_dirs(src / "x.py"):
            mark = d / STAMP_FILE
            try:
                if mark.read_text() == stamp:
                    continue
            except OSError:
                pass
            try:
                if not d.is_dir():
                    if d.name != "__pycache__":
                        continue  # numba's user cache folder: stamped once numba made it
                    d.mkdir()
                for f in [*d.glob("*.nbi"), *d.glob("*.nbc")]:
                    f.unlink(missing_ok=True)
                    removed += 1
                mark.write_text(stamp)
            except OSError:
                continue
    return removed
