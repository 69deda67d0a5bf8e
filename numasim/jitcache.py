"""Whether numba's on-disk cache holds numasim's compiled kernels, and saying so when numba
compiles them.

The first run on a computer compiles the allocator core, the fast engine and the workload
generators: tens of seconds with nothing on the screen.  :func:`listen_for_compiles` (called
when :mod:`numasim.jit` is imported) says so on stderr when numba starts compiling one of
numasim's functions, once per process tree, and says nothing when every function a run calls
comes from the cache.  It listens to numba's ``numba:compile`` event, which numba broadcasts
only when it compiles (a cache load is silent), so the note is never wrong: a check of the
cache's files before the run could not tell which functions the run would call (after a
``git pull`` emptied the caches, ``numasim script`` -- which never calls the engine -- said
"compiling" on every run until an engine run refilled them).

:func:`announce_cold_compile` checks the files instead, without importing numba: the sweep
says it once before its workers (on other computers with Dask) start.

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


_listening = False


def listen_for_compiles() -> None:
    """From now on, say :data:`MESSAGE` on stderr when numba starts compiling a function of
    numasim's (numba's ``numba:compile`` event: a compile, never a cache load); once per
    process tree (child processes inherit the note that it was said)."""
    global _listening
    if _listening:
        return
    from numba.core import event

    class _SayCompiling(event.Listener):
        def on_start(self, ev) -> None:
            disp = (ev.data or {}).get("dispatcher")
            module = getattr(getattr(disp, "py_func", None), "__module__", "") or ""
            if module.startswith("numasim.") and not os.environ.get(ENV_SAID):
                os.environ[ENV_SAID] = "1"
                print(MESSAGE, file=sys.stderr, flush=True)

        def on_end(self, ev) -> None:
            pass

    event.register("numba:compile", _SayCompiling())
    _listening = True


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
                # made and stamped now, not when numba first writes into it: a folder
                # without a stamp is emptied (whose sources it holds is unknown), so leaving
                # it to numba made the second run after a fresh cache compile everything again
                d.mkdir(parents=True, exist_ok=True)
                for f in [*d.glob("*.nbi"), *d.glob("*.nbc")]:
                    f.unlink(missing_ok=True)
                    removed += 1
                mark.write_text(stamp)
            except OSError:
                continue
    return removed
