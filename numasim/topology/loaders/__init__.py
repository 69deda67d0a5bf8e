"""Machine loaders, one module per format; :func:`load_machine` detects the format by content.

| module | reads |
|---|---|
| ``yaml_machine`` | numasim's own machine YAML (strict) |
| ``numactl_text`` | the text ``numactl --hardware`` prints |
| ``hwloc_xml`` | hwloc XML, v1 and v2/v3 (``lstopo --of xml``) |
| ``sysfs`` | a ``/sys/devices/system/node`` tree: a directory, a tarball, or ``local`` |
| ``layout`` | the oracle's ``.layout`` files (QEMU fake NUMA machines) |

Each module exposes ``sniff(text: str) -> bool`` (for files) and ``load(path) -> Machine``.
"""

from __future__ import annotations

import importlib
import os
import tarfile
from pathlib import Path

from numasim.errors import ConfigError
from numasim.topology.model import Machine

FORMATS = ("yaml", "numactl", "hwloc", "sysfs", "layout")


def _read_head(path: Path, n: int = 65536) -> str:
    with open(path, "rb") as f:
        return f.read(n).decode("utf-8", errors="replace")


def detect_format(path: Path) -> str:
    """Which loader reads ``path``, judged by its content (not its name)."""
    if path.is_dir():
        return "sysfs"
    if not path.is_file():  # opening a FIFO would wait forever for a writer
        raise ConfigError("is not a regular file or a directory (a FIFO, socket or device)",
                          file=str(path), field="path")
    if tarfile.is_tarfile(path):
        return "sysfs"
    head = _read_head(path)
    # each loader imported only when its turn comes: YAML's (pydantic) costs 0.1 s
    for name, module in (("hwloc", "hwloc_xml"), ("numactl", "numactl_text"),
                         ("layout", "layout"), ("yaml", "yaml_machine")):
        if importlib.import_module(f"numasim.topology.loaders.{module}").sniff(head):
            return name
    raise ConfigError(
        "cannot tell what kind of machine description this is", file=str(path),
        hint="expected numasim machine YAML, `numactl --hardware` text, hwloc XML, "
             "an oracle .layout file, or a sysfs node tree (directory or tarball)")


def shipped_machine_path(name: str) -> Path | None:
    """The shipped file a machine name means, in one namespace for every command.

    A shipped machine (``clx-2s``, ``oracle-8node``) first; then a shipped oracle layout, by
    its own name (``8node``) or with the ``oracle-`` prefix its YAML twin carries
    (``oracle-8node`` and ``8node`` are the same machine, whichever file exists).
    """
    from numasim import shipped as shipped_files

    found = shipped_files.find("machines", name)
    if found is None:
        found = shipped_files.find("layouts", name.removeprefix("oracle-"))
    if found is None and not name.startswith("oracle-"):
        found = shipped_files.find("machines", "oracle-" + name)
    return found


def load_machine(spec: str | os.PathLike) -> Machine:
    """Load a machine from a file, a directory, a tarball, or ``local`` (this machine's sysfs)."""
    if str(spec) == "local":
        from numasim.topology.loaders import sysfs

        return sysfs.load_local()
    path = Path(spec)
    if not path.exists():
        shipped = shipped_machine_path(str(spec))
        if shipped is None:
            raise ConfigError("no such file", file=str(spec),
                              hint="give a path to a machine file, a shipped machine or "
                                   "layout name (see `numasim topo list`), or 'local'")
        path = shipped
    fmt = detect_format(path)
    if fmt == "yaml":
        from numasim.topology.loaders import yaml_machine as mod
    elif fmt == "numactl":
        from numasim.topology.loaders import numactl_text as mod
    elif fmt == "hwloc":
        from numasim.topology.loaders import hwloc_xml as mod
    elif fmt == "layout":
        from numasim.topology.loaders import layout as mod
    else:
        from numasim.topology.loaders import sysfs as mod
    return mod.load(path)
