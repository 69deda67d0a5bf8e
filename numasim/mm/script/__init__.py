"""``numasim script``: the oracle's scenario language run on the simulated kernel.

:func:`run_script` parses a script (:mod:`.lang`), boots a :class:`~numasim.mm.kernel.Kernel`
on the machine and runs the script in a simulated probe process (:mod:`.runner`), returning
the result records (:mod:`.output`) -- the same lines the oracle's probe prints on Linux.
"""

from __future__ import annotations

from pathlib import Path

from numasim.errors import ConfigError
from numasim.mm.script.check import check_lines
from numasim.mm.script.lang import (
    boot_thp_mode,
    parse_script,
    script_append,
    script_layout,
    script_swap,
)
from numasim.mm.script.output import Record, render_json, render_text


def load_machine_for(path_or_name: str, kernel: str = "6.12", near: Path | None = None):
    """A machine from a file (``.layout`` files get the kernel's boot model) or a name of a
    layout: beside the script (``near``, or its ``layouts`` folder), or shipped (see
    :mod:`numasim.shipped`)."""
    from numasim import shipped
    from numasim.errors import ConfigError
    from numasim.topology.loaders import detect_format, load_machine

    p = Path(path_or_name)
    if not p.exists():
        dirs = [near, near / "layouts"] if near is not None else []
        for cand in [d / n for d in dirs for n in (path_or_name, f"{path_or_name}.layout")]:
            if cand.is_file():
                p = cand
                break
        else:
            p = shipped.find("layouts", path_or_name) or p
    if p.exists() and p.is_file() and detect_format(p) == "layout":
        from numasim.topology.loaders import layout

        prof = kernel if kernel in ("6.12", "6.1") else "6.12"
        return layout.load(p, kernel=prof)
    if not p.exists():
        try:
            return load_machine(path_or_name)
        except ConfigError:
            names = list(shipped.names("layouts"))
            raise ConfigError(f"no machine or layout named {path_or_name!r}", field="machine",
                              hint="a machine file, or one of the shipped layouts: "
                                   + ", ".join(names)) from None
    return load_machine(p)


def run_script(text: str, machine, *, kernel: str = "6.12", file: str | None = None,
               thp: str | None = None, swap_pages: int | None = None) -> list[Record]:
    """Run one scenario on a fresh simulated boot of ``machine``; returns its records.

    The THP mode at boot (``transparent_hugepage/enabled``) is ``thp`` if given, else the
    script's ``#@ append transparent_hugepage=MODE`` line (the oracle's ``--append`` it was
    recorded with), else the machine's ``thp`` setting (default ``never``)."""
    from numasim.errors import NumasimError, ScriptError
    from numasim.mm.kernel import Kernel
    from numasim.mm.script.runner import Runner

    lines = parse_script(text, file)
    if thp is None:
        thp = boot_thp_mode(script_append(text))  # '#@ append transparent_hugepage=MODE'
    if thp is not None:
        from numasim.mm.huge_memory import thp_mode_value

        try:
            thp_mode_value(thp)
        except ConfigError:
            raise ConfigError(f"unknown transparent_hugepage mode {thp!r}", file=file,
                              field="#@ append transparent_hugepage",
                              hint="valid: always, madvise, never") from None
    k = Kernel(machine, kernel=kernel, thp=thp)
    ramdisk = False
    if swap_pages is None:
        swap_pages = script_swap(text, file) or None
        ramdisk = swap_pages is not None  # the oracle's swap is a brd ramdisk
    if swap_pages is not None:
        from numasim.mm.vmscan import reclaim

        reclaim(k).swap_pages = swap_pages
        reclaim(k).swap_ram = ramdisk
    runner = Runner(k)
    try:
        runner.run(lines)
    except NumasimError as e:
        if e.file is not None:
            raise
        p = e.problems[0] if e.problems else None
        raise ScriptError(p.message if p else str(e), file=file, line=runner.line or None,
                          field=p.field if p else None, hint=p.hint if p else None) from None
    return runner.records


__all__ = ["parse_script", "run_script", "script_layout", "load_machine_for", "Record",
           "render_text", "render_json", "check_lines"]
