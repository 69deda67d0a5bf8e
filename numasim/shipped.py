"""What numasim ships, found by name: machines (``clx-2s``), layouts (``4node-asym``),
workloads (``stream-triad``), experiments (``policy-comparison``) and the coursework
scenarios (``01_default_local``).

The files live inside the package, in ``numasim/data/`` (``configs/`` and ``experiments/``
below it, mirroring a checkout), and are read through :mod:`importlib.resources`, so an
installed wheel finds them as a checkout does.  A checkout's top-level ``configs/`` and
``experiments/`` are symlinks to those folders: one copy of each file.  Every lookup of a
shipped name goes through this module.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

# kind -> (folder under numasim/data, file suffix)
KINDS: dict[str, tuple[str, str]] = {
    "machines": ("configs/machines", ".yaml"),
    "layouts": ("configs/layouts", ".layout"),
    "workloads": ("configs/workloads", ".yaml"),
    "experiments": ("experiments", ".yaml"),
    "scenarios": ("experiments/scenarios", ".txt"),
}

_extracted = contextlib.ExitStack()  # files copied out of a zipped install, removed at exit
atexit.register(_extracted.close)


def data_root() -> Traversable:
    """``numasim/data`` of the imported package (a plain folder for any pip install)."""
    return resources.files("numasim") / "data"


def _folder(kind: str) -> Traversable:
    if kind not in KINDS:
        raise ValueError(f"unknown kind of shipped file {kind!r}; one of {', '.join(KINDS)}")
    node = data_root()
    for part in KINDS[kind][0].split("/"):
        node = node / part
    return node


def _as_path(t: Traversable) -> Path:
    """A real file for the loaders, which open paths (only a zipped install needs a copy)."""
    if isinstance(t, Path):
        return t
    return _extracted.enter_context(resources.as_file(t))


def names(kind: str) -> dict[str, Path]:
    """Every shipped file of ``kind``, by name (file name without its suffix), sorted."""
    folder = _folder(kind)
    suffix = KINDS[kind][1]
    if not folder.is_dir():
        return {}
    found = sorted((t.name.removesuffix(suffix), t) for t in folder.iterdir()
                   if t.is_file() and t.name.endswith(suffix))
    return {n: _as_path(t) for n, t in found}


def find(kind: str, name: str) -> Path | None:
    """The shipped file of ``kind`` called ``name`` (with or without its suffix), or None."""
    suffix = KINDS[kind][1]
    stem = str(name).removesuffix(suffix)
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        return None
    t = _folder(kind) / (stem + suffix)
    return _as_path(t) if t.is_file() else None
