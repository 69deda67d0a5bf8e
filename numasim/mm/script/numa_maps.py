"""``/proc/self/numa_maps`` as the probe sees it.

The lines come from :func:`numasim.mm.procviews.numa_maps_line` (``show_numa_map``); the
probe adds what only it knows -- the names of its memfds and of files unlinked while mapped
-- and joins the lines of neighbouring mappings that Linux would hold as ONE VMA (numasim
keeps each mmap in its own region, see :meth:`Runner.vma_groups`): counts add up, mapmax is
the largest.
"""

from __future__ import annotations

import re

from numasim.mm import state as S
from numasim.mm.procviews import numa_maps_line


def _join(lines: list[str]) -> str:
    """One numa_maps line for several numasim VMAs that form one Linux VMA."""
    head = lines[0].split()
    fixed = head[:2] + [w for w in head[2:] if w.startswith("file=")]
    counts: dict[str, int] = {}
    order: list[str] = []
    for ln in lines:
        for w in ln.split()[2:]:
            m = re.fullmatch(r"(anon|dirty|mapped|mapmax|active|N\d+)=(\d+)", w)
            if not m:
                continue
            k, v = m.group(1), int(m.group(2))
            if k not in counts:
                order.append(k)
                counts[k] = v
            else:
                counts[k] = max(counts[k], v) if k == "mapmax" else counts[k] + v
    if not counts:
        return " ".join(fixed)
    nodes = sorted((k for k in order if k.startswith("N")), key=lambda k: int(k[1:]))
    rest = [k for k in ("anon", "dirty", "mapped", "mapmax", "active") if k in counts]
    words = fixed + [f"{k}={counts[k]}" for k in rest + nodes] + ["kernelpagesize_kB=4"]
    return " ".join(words)


def numa_maps_lines(runner, proc) -> list[tuple[int, str]]:
    """(start page, line) for every VMA of the probe process, in address order."""
    k = runner.k
    ks = k.ks
    names: dict[int, str] = {}
    for r in proc.regions:
        if r.vfile is not None:
            deleted = not r.vfile.linked and r.vfile.mount is not None
            names[r.vfile.file.obj] = r.vfile.path + (" (deleted)" if deleted else "")
    out = []
    for group in runner.vma_groups(proc):
        lines = [numa_maps_line(k, proc.t, v, names=names) for v in group]
        text = lines[0] if len(lines) == 1 else _join(lines)
        out.append((int(ks.vmas[group[0], S.V_START]), text))
    return out
