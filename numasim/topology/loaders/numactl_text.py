"""The text ``numactl --hardware`` prints, read back into a machine.

The format (numactl's ``hardware()``, see the fact sheet section 13)::

    available: 4 nodes (0-3)            # or (0,2-3) when node ids have gaps
    node 0 cpus: 0 1 2 3                # nothing after the colon for a CPU-less node;
    node 0 size: 32765 MB               #   with --cpu-compress: "0-3, 8-11 (8)"
    node 0 free: 8617 MB
    ...
    node distances:                     # or "No distance information available."
    node   0   1   2   3
      0:  10  16  16  16
      ...

``size`` is the node's MemTotal shifted right by 20, so ``mem_bytes = size << 20`` (up to
1 MiB less than the real MemTotal).  ``free`` becomes ``Node.free_bytes``.  The text says
nothing about memory kinds, latency or bandwidth: nodes are DRAM and the matrices are derived
from the SLIT (a note names CPU-less nodes, which are often HBM, CXL or PMem).  Lines before
``available:`` (a shell prompt, a title) are skipped with a note; anything else that does not
belong to the format is an error naming its line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from numasim.bitmap import MAX_NUMNODES, parse_list
from numasim.errors import ConfigError
from numasim.topology.build import make_machine
from numasim.topology.loaders._files import read_text, snippet
from numasim.topology.model import Machine, MemKind, Node

# digits are bounded so that int() never meets a million-digit number (Python refuses those)
_AVAILABLE = re.compile(r"available:\s*(\d{1,5})\s+nodes?\s*\(([^)]*)\)\s*")
_NODE_LINE = re.compile(r"node\s+(\d{1,5})\s+(cpus|size|free):(.*)")
_SIZE = re.compile(r"\s*(\d{1,30})\s*MB\s*")
_ROW = re.compile(r"\s*(\d{1,5}):(.*)")
_SNIFF = re.compile(r"^\s*available:\s*\d+\s+nodes?\b", re.MULTILINE)
NOT_AVAILABLE = "<not available>"
WHAT = "`numactl --hardware` output"


def sniff(head_text: str) -> bool:
    """True if the text looks like ``numactl --hardware`` output."""
    return bool(_SNIFF.search(head_text))


def load(path: str | os.PathLike) -> Machine:
    """Read a file holding ``numactl --hardware`` output."""
    path = Path(path)
    return loads(read_text(path, what=WHAT), file=str(path), name=path.stem)


@dataclass
class _NodeFacts:
    line: int
    cpus: list[int] | None = None
    size_mb: int | None = None
    free_mb: int | None = None
    notes: list[str] = field(default_factory=list)


def loads(text: str, *, file: str | None = None, name: str = "numactl") -> Machine:
    """Parse ``numactl --hardware`` text; ``file`` is only used in messages."""
    lines = text.split("\n")

    def fail(msg: str, line: int | None, fld: str, hint: str | None = None) -> ConfigError:
        return ConfigError(msg, file=file, line=line, field=fld, hint=hint)

    notes: list[str] = []
    start = next((k for k, ln in enumerate(lines) if _AVAILABLE.fullmatch(ln.strip())), None)
    if start is None:
        raise fail("no 'available: N nodes (LIST)' line", None, "available",
                   "the first line numactl --hardware prints, e.g. 'available: 2 nodes (0-1)'")
    skipped = [ln for ln in lines[:start] if ln.strip()]
    if skipped:
        notes.append(f"ignored {len(skipped)} line(s) before 'available:'")
    m = _AVAILABLE.fullmatch(lines[start].strip())
    count = int(m.group(1))
    try:
        ids = parse_list(m.group(2), MAX_NUMNODES, "node")
    except ValueError as e:
        raise fail(f"bad node list {snippet(m.group(2))}: {e}", start + 1, "available",
                   "a list like 0-3 or 0,2-3") from None
    if len(ids) != count:
        raise fail(f"says {count} nodes but lists {len(ids)} ({m.group(2)})", start + 1,
                   "available")
    facts = {nid: _NodeFacts(line=start + 1) for nid in ids}
    distance: list[list[int]] | None = None
    no_distance = False
    k = start + 1
    while k < len(lines):
        raw = lines[k]
        ln = raw.strip()
        lineno = k + 1
        k += 1
        if not ln:
            continue
        nm = _NODE_LINE.fullmatch(ln)
        if nm:
            nid, key, value = int(nm.group(1)), nm.group(2), nm.group(3)
            if nid not in facts:
                raise fail(f"node {nid} is not in the 'available' list ({m.group(2)})", lineno,
                           f"node {nid} {key}")
            _node_line(facts[nid], nid, key, value, lineno, fail)
            continue
        if ln == "No distance information available.":
            no_distance = True
            continue
        if ln == "node distances:":
            distance, k = _distances(lines, k, ids, fail)
            continue
        raise fail(f"unexpected line {snippet(ln)}", lineno, "line",
                   "numactl --hardware prints 'node N cpus/size/free:' lines and a distance "
                   "table")
    nodes = []
    for nid in ids:
        f = facts[nid]
        if f.cpus is None:
            raise fail(f"node {nid} has no 'node {nid} cpus:' line", None, f"node {nid} cpus")
        if f.size_mb is None:
            raise fail(f"node {nid} has no 'node {nid} size:' line", None, f"node {nid} size")
        notes += f.notes
        nodes.append(Node(id=nid, cpus=tuple(f.cpus), mem_bytes=f.size_mb << 20,
                          kind=MemKind.DRAM,
                          free_bytes=None if f.free_mb is None else f.free_mb << 20))
    if distance is None and not no_distance:
        notes.append("no 'node distances:' table")
    cpuless = [n.id for n in nodes if not n.cpus and n.mem_bytes]
    if cpuless:
        notes.append("CPU-less memory node(s) " + ", ".join(map(str, cpuless)) + ": numactl "
                     "does not say what memory they hold (HBM, CXL, PMem?); assumed DRAM")
    return make_machine(name, nodes, distance=distance, file=file,
                        source=f"{file or '<text>'} (numactl --hardware text)", notes=notes)


def _node_line(f: _NodeFacts, nid: int, key: str, value: str, lineno: int, fail) -> None:
    fld = f"node {nid} {key}"
    if getattr(f, {"cpus": "cpus", "size": "size_mb", "free": "free_mb"}[key]) is not None:
        raise fail(f"second 'node {nid} {key}:' line", lineno, fld)
    if key == "cpus":
        f.cpus = _cpus(value, lineno, fld, fail)
        return
    if value.strip() == NOT_AVAILABLE:
        f.notes.append(f"node {nid} {key} was '<not available>'; taken as 0")
        mb = 0
    else:
        sm = _SIZE.fullmatch(value)
        if not sm:
            raise fail(f"cannot read {snippet(value)} as a size", lineno, fld,
                       "numactl prints sizes like '32765 MB'")
        mb = int(sm.group(1))
    if key == "size":
        f.size_mb = mb
    else:
        f.free_mb = mb


def _cpus(value: str, lineno: int, fld: str, fail) -> list[int]:
    """``' 0 1 2 3'`` or, with ``--cpu-compress``, ``' 0-3, 8-11 (8)'``."""
    text = value.strip()
    if not text:
        return []
    count = None
    cm = re.fullmatch(r"(.*?)\s*\((\d{1,5})\)", text)
    if cm:
        text, count = cm.group(1), int(cm.group(2))
    try:
        if "," in text or "-" in text or count is not None:
            cpus = parse_list(text.replace(" ", ""), what="CPU")
        else:
            cpus = [int(t) for t in text.split()]
    except ValueError as e:
        raise fail(f"cannot read CPU list {snippet(value)}: {e}", lineno, fld,
                   "CPU numbers separated by spaces, or ranges like '0-3, 8-11 (8)'") from None
    if len(set(cpus)) != len(cpus):
        raise fail(f"CPU list {snippet(value)} names a CPU twice", lineno, fld)
    if count is not None and count != len(cpus):
        raise fail(f"CPU list {snippet(text)} holds {len(cpus)} CPUs but says ({count})",
                   lineno, fld)
    return sorted(cpus)


def _distances(lines: list[str], k: int, ids: list[int], fail) -> tuple[list[list[int]], int]:
    """The table after 'node distances:'; returns it (rows in ``ids`` order) and the next
    line index."""
    fld = "node distances"
    while k < len(lines) and not lines[k].strip():
        k += 1
    if k >= len(lines):
        raise fail("'node distances:' is not followed by a table", k, fld)
    header = lines[k].split()
    if not header or header[0] != "node":
        raise fail(f"expected the header 'node  0  1 ...', got {snippet(lines[k])}", k + 1, fld)
    try:
        cols = [int(t) for t in header[1:]]
    except ValueError:
        raise fail(f"bad header {snippet(lines[k])}", k + 1, fld) from None
    if sorted(cols) != sorted(ids) or len(cols) != len(ids):
        raise fail(f"the table's columns are nodes {cols}, but the available nodes are {ids}",
                   k + 1, fld)
    k += 1
    rows: dict[int, list[int]] = {}
    first_row = k + 1
    while k < len(lines):
        rm = _ROW.fullmatch(lines[k].rstrip())
        if not rm:
            break
        rid = int(rm.group(1))
        try:
            vals = [int(t) for t in rm.group(2).split()]
        except ValueError:
            raise fail(f"row {rid} holds something that is not a whole number", k + 1,
                       fld) from None
        if len(vals) != len(cols):
            raise fail(f"row {rid} has {len(vals)} entries, the table has {len(cols)} columns; "
                       "the distance table must be square", k + 1, fld)
        if rid in rows:
            raise fail(f"row {rid} appears twice", k + 1, fld)
        if rid not in ids:
            raise fail(f"row {rid} is not an available node ({ids})", k + 1, fld)
        rows[rid] = vals
        k += 1
    if len(rows) != len(cols):
        raise fail(f"the table has {len(rows)} rows and {len(cols)} columns; it must be square "
                   "with one row per node", first_row, fld)
    pos = {c: x for x, c in enumerate(cols)}
    return [[rows[a][pos[b]] for b in ids] for a in ids], k
