"""hwloc XML (``lstopo --of xml``), version 1 and versions 2/3, read into a machine.

What is taken, and from where:

* nodes: every ``NUMANode`` object; id = ``os_index``, memory = ``local_memory`` bytes (absent
  means 0: hwloc omits the attribute for empty nodes);
* memory kind: ``subtype`` (v2) or ``<info name="Type">`` (v1): ``HBM``/``MCDRAM`` -> HBM,
  ``NVM``/``PMem``/``NVDIMM`` (or ``<info name="DAXType" value="NVM">``) -> NVM, anything
  naming ``CXL`` -> CXL, otherwise DRAM;
* CPUs: the ``os_index`` of every ``PU``.  hwloc gives a NUMA node a *locality* cpuset, not
  an owner: on a KNL in flat mode the DRAM and the MCDRAM node of a quadrant have the same
  cpuset, while Linux puts the quadrant's CPUs in the DRAM node only.  So a PU goes to the
  node with the smallest cpuset containing it; on a tie, to a DRAM node before HBM/NVM/CXL,
  then to the lowest id (a note says when this rule decided something);
* SLIT: v2 ``<distances2 type="NUMANode" name="NUMALatency">`` (``indexes`` and
  ``u64values`` read row-major, by OS index or gp index as ``indexing`` says); v1
  ``<distances relative_depth=.. latency_base=..>`` whose objects are the NUMA nodes, values
  relative with 1.0 = local, so SLIT = round(10 * value / local value).  Other matrices (GPU
  XGMI hops, bandwidth between OS devices...) are skipped with a note;
* latency / bandwidth: v2 ``<memattr name="Latency">`` (ns) and ``"Bandwidth"`` (hwloc's
  documentation says MiB/s, but on Linux the number is the kernel's HMAT value, which the
  kernel documents as MB/s; numasim reads it as MB/s = 0.001 GB/s).  Each value names a target
  node and an initiator cpuset; it applies to every node whose CPUs lie inside that cpuset.
  Missing pairs are filled as :mod:`numasim.topology.loaders.initiators` explains.

The XML is parsed with ``defusedxml`` (files come from other people's machines: no entity
expansion, no external references).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from numasim.bitmap import parse_mask
from numasim.errors import ConfigError
from numasim.topology.build import make_machine
from numasim.topology.loaders._files import read_bytes, snippet
from numasim.topology.loaders.initiators import fill_matrix
from numasim.topology.model import LOCAL_DISTANCE, REMOTE_DISTANCE, Machine, MemKind, Node

WHAT = "an hwloc XML topology (lstopo --of xml)"
MEMATTR_BW_MB_TO_GBPS = 1e-3
KIND_LATENCY = 4  # HWLOC_DISTANCES_KIND_MEANS_LATENCY
_SNIFF = re.compile(r"<topology[\s>]")


def sniff(head_text: str) -> bool:
    """True if the text looks like hwloc XML."""
    return bool(_SNIFF.search(head_text)) and "<object" in head_text


@dataclass
class _NumaNode:
    index: int
    """Position among the NUMANode objects of the file (document order = logical order)."""
    os_index: int
    gp_index: int | None
    cpuset: frozenset[int]
    mem: int
    kind: MemKind
    kind_word: str | None
    elem: Element


def load(path: str | os.PathLike) -> Machine:
    """Read an hwloc XML file."""
    path = Path(path)
    file = str(path)
    data = read_bytes(path, what=WHAT)
    try:
        root = SafeET.fromstring(data)
    except ParseError as e:
        line = e.position[0] if getattr(e, "position", None) else None
        raise ConfigError(f"not well-formed XML ({e.msg if hasattr(e, 'msg') else e})",
                          file=file, line=line, field="xml",
                          hint="the file may be cut short; export it again with "
                               "`lstopo --of xml FILE`") from None
    except defusedxml.DefusedXmlException as e:
        raise ConfigError(f"XML uses a forbidden construct ({type(e).__name__})", file=file,
                          field="xml", hint="hwloc never writes entities or external "
                                            "references") from None
    if root.tag != "topology":
        raise ConfigError(f"the root element is <{root.tag}>, not <topology>", file=file,
                          field="topology", hint=WHAT)
    return _build(root, path)


def _fail(file: str, msg: str, fld: str, hint: str | None = None) -> ConfigError:
    return ConfigError(msg, file=file, field=fld, hint=hint)


def _objects(root: Element) -> Iterator[tuple[Element, Element | None, int]]:
    """Every ``<object>`` with its parent object and depth (Machine = 0), in document order."""
    stack: list[tuple[Element, Element | None, int]] = [
        (e, None, 0) for e in reversed(list(root)) if e.tag == "object"]
    while stack:
        elem, parent, depth = stack.pop()
        yield elem, parent, depth
        stack.extend((c, elem, depth + 1) for c in reversed(list(elem)) if c.tag == "object")


def _int_attr(elem: Element, attr: str, file: str, fld: str, *, required: bool) -> int | None:
    raw = elem.get(attr)
    if raw is None:
        if required:
            raise _fail(file, f"missing the '{attr}' attribute", fld,
                        f"hwloc writes {attr}=\"N\" on every such object")
        return None
    try:
        return int(raw, 0)
    except ValueError:
        raise _fail(file, f"'{attr}' is {snippet(raw)}, not a whole number", fld) from None


def _cpuset(elem: Element, attr: str, file: str, fld: str) -> frozenset[int]:
    raw = elem.get(attr)
    if raw is None:
        raise _fail(file, f"missing the '{attr}' attribute", fld,
                    "hwloc writes cpuset=\"0x...\" on every NUMANode")
    if "f...f" in raw:
        raise _fail(file, f"infinite cpuset {snippet(raw)}", fld)
    try:
        return frozenset(parse_mask(raw))
    except ValueError as e:
        raise _fail(file, f"cannot read cpuset {snippet(raw)}: {e}", fld,
                    "hwloc bitmaps look like 0x000000ff,0x0000ff00") from None


def _kind(elem: Element) -> tuple[MemKind, str | None]:
    words = [elem.get("subtype")]
    infos = {i.get("name"): i.get("value") for i in elem if i.tag == "info"}
    words += [infos.get("Type"), infos.get("DAXType")]
    for w in words:
        if not w:
            continue
        u = w.upper()
        if "CXL" in u:
            return MemKind.CXL, w
        if u in ("HBM", "MCDRAM"):
            return MemKind.HBM, w
        if u in ("NVM", "PMEM", "NVDIMM", "SCM"):
            return MemKind.NVM, w
    return MemKind.DRAM, next((w for w in words if w), None)


def _build(root: Element, path: Path) -> Machine:
    file = str(path)
    version = root.get("version")
    v1 = version is None or version.startswith("1")
    fmt = f"hwloc XML v{version or '1'}"
    notes: list[str] = []
    objs = list(_objects(root))
    numa: list[_NumaNode] = []
    pus: list[int] = []
    by_gp: dict[int, Element] = {}
    depth_of: dict[int, int] = {}
    parent_of: dict[int, Element | None] = {}
    for elem, parent, depth in objs:
        parent_of[id(elem)] = parent
        depth_of[id(elem)] = depth
        gp = elem.get("gp_index")
        if gp is not None and gp.isdigit():
            by_gp[int(gp)] = elem
        t = elem.get("type")
        if t == "NUMANode":
            k = len(numa)
            fld = f"NUMANode[{k}]"
            os_index = _int_attr(elem, "os_index", file, fld + ".os_index", required=True)
            mem = _int_attr(elem, "local_memory", file, fld + ".local_memory", required=False)
            if mem is None:
                mem = 0
                notes.append(f"NUMANode os_index {os_index} has no local_memory: 0 bytes")
            kind, word = _kind(elem)
            numa.append(_NumaNode(k, os_index, _int_attr(elem, "gp_index", file, fld +
                                                          ".gp_index", required=False),
                                  _cpuset(elem, "cpuset", file, fld + ".cpuset"), mem, kind,
                                  word, elem))
        elif t == "PU":
            pus.append(_int_attr(elem, "os_index", file, f"PU[{len(pus)}].os_index",
                                 required=True))
    if not numa:
        raise _fail(file, "no NUMANode object", "NUMANode",
                    "hwloc always writes at least one NUMANode; is this a complete export?")
    if len(set(pus)) != len(pus):
        dup = sorted({p for p in pus if pus.count(p) > 1})
        raise _fail(file, f"PU os_index {dup[0]} appears more than once", "PU.os_index")

    owner, tie_notes = _assign_cpus(numa, pus)
    notes += tie_notes
    unowned = sorted(set(pus) - set(owner))
    if unowned:
        notes.append(f"{len(unowned)} PU(s) lie in no NUMANode's cpuset and were left out: "
                     f"{unowned[:8]}{'...' if len(unowned) > 8 else ''}")
    cpus_of: dict[int, list[int]] = {n.os_index: [] for n in numa}
    for cpu, nid in owner.items():
        cpus_of[nid].append(cpu)
    nodes = [Node(id=n.os_index, cpus=tuple(sorted(cpus_of[n.os_index])), mem_bytes=n.mem,
                  kind=n.kind) for n in numa]
    nodes.sort(key=lambda n: n.id)
    kinds = {n.os_index: n.kind_word for n in numa if n.kind is not MemKind.DRAM}
    if kinds:
        notes.append("memory kinds from hwloc: " + ", ".join(f"node {k} {w}"
                                                           for k, w in sorted(kinds.items())))

    pos = {n.id: i for i, n in enumerate(nodes)}
    if len(pos) != len(nodes):
        dup = sorted({n.id for n in nodes if sum(m.id == n.id for m in nodes) > 1})
        raise _fail(file, f"two NUMANode objects have os_index {dup[0]}", "NUMANode.os_index")
    gp_to_node = {n.gp_index: n.os_index for n in numa if n.gp_index is not None}
    if v1:
        distance = _distances_v1(root, numa, parent_of, depth_of, pos, file, notes)
    else:
        distance = _distances_v2(root, gp_to_node, pos, file, notes)
    latency, bandwidth = _memattrs(root, nodes, pos, gp_to_node, by_gp, distance, file, notes)
    return make_machine(path.stem, nodes, distance=distance, latency_ns=latency,
                        bandwidth_GBps=bandwidth, file=file, source=f"{file} ({fmt})",
                        notes=notes)


_KIND_RANK = {MemKind.DRAM: 0, MemKind.CXL: 1, MemKind.HBM: 2, MemKind.NVM: 3}


def _assign_cpus(numa: list[_NumaNode], pus: list[int]) -> tuple[dict[int, int], list[str]]:
    """PU -> owning node id: the smallest containing cpuset, DRAM first, lowest id."""
    owner: dict[int, int] = {}
    decided: set[tuple[int, ...]] = set()
    for cpu in pus:
        cands = [n for n in numa if cpu in n.cpuset]
        if not cands:
            continue
        cands.sort(key=lambda n: (len(n.cpuset), _KIND_RANK[n.kind], n.os_index))
        owner[cpu] = cands[0].os_index
        same = [n for n in cands if len(n.cpuset) == len(cands[0].cpuset)]
        if len(same) > 1:
            decided.add(tuple(n.os_index for n in same))
    notes = [f"nodes {', '.join(map(str, ids))} share one cpuset; its CPUs were given to node "
             f"{ids[0]} (DRAM before HBM/NVM, then lowest id), the others are CPU-less"
             for ids in sorted(decided)]
    return owner, notes


def _numbers(elem: Element, tag: str, conv) -> list:
    text = " ".join((c.text or "") for c in elem if c.tag == tag)
    return [conv(t) for t in text.split()]


def _distances_v2(root: Element, gp_to_node: dict[int, int], pos: dict[int, int], file: str,
                  notes: list[str]) -> list[list[int]] | None:
    found = None
    for d in root.iter("distances2"):
        name = d.get("name")
        kind = int(d.get("kind", "0") or 0)
        is_slit = d.get("type") == "NUMANode" and (
            name == "NUMALatency" or (name is None and kind & KIND_LATENCY))
        if not is_slit or found is not None:
            notes.append(f"ignored distance matrix {name or '(unnamed)'} between "
                         f"{d.get('type')} objects")
            continue
        fld = f"distances2[{name or 'NUMANode'}]"
        try:
            idx = _numbers(d, "indexes", int)
            vals = _numbers(d, "u64values", int)
        except ValueError:
            raise _fail(file, "indexes/u64values hold something that is not a whole number",
                        fld) from None
        n = _int_attr(d, "nbobjs", file, fld + ".nbobjs", required=True)
        if len(idx) != n or len(vals) != n * n:
            raise _fail(file, f"nbobjs={n} needs {n} indexes and {n * n} values, found "
                        f"{len(idx)} and {len(vals)}", fld, "the file may be cut short")
        if d.get("indexing", "os") == "gp":
            try:
                idx = [gp_to_node[g] for g in idx]
            except KeyError as e:
                raise _fail(file, f"gp index {e.args[0]} is not a NUMANode", fld) from None
        unknown = [i for i in idx if i not in pos]
        if unknown:
            raise _fail(file, f"names node {unknown[0]}, which is not a NUMANode of the file",
                        fld)
        found = _place(idx, vals, pos, notes, "NUMALatency")
    return found


def _place(idx: list[int], vals: list, pos: dict[int, int], notes: list[str],
           what: str) -> list[list[int]]:
    """Put a row-major matrix over nodes ``idx`` into node-position order."""
    n = len(pos)
    out = [[LOCAL_DISTANCE if i == j else REMOTE_DISTANCE for j in range(n)] for i in range(n)]
    k = len(idx)
    for a in range(k):
        for b in range(k):
            out[pos[idx[a]]][pos[idx[b]]] = vals[a * k + b]
    if k < n:
        missing = sorted(set(pos) - set(idx))
        notes.append(f"{what} covers {k} of {n} nodes; distances of nodes "
                     f"{', '.join(map(str, missing))} assumed 10 local / 20 remote")
    return out


# hwloc 1.x ``obj_type_order``: where each type sits in the tree; I/O and Misc objects are
# kept out of the levels (hwloc 1.11 ``hwloc_level_filter_objects``)
_V1_TYPE_ORDER = {"System": 0, "Machine": 1, "Group": 2, "NUMANode": 3, "Package": 4,
                  "Socket": 4, "Cache": 5, "Core": 6, "PU": 10}


def _v1_key(e: Element) -> tuple[int, int]:
    """hwloc 1.x ``hwloc_type_cmp`` as a sort key: type order, then a cache's level (L3 above
    L2) or a group's depth."""
    t = e.get("type", "")
    sub = 0
    if t == "Cache":
        sub = -int(e.get("depth", "0")) if (e.get("depth") or "").isdigit() else 0
    elif t == "Group":
        sub = int(e.get("depth", "0")) if (e.get("depth") or "").isdigit() else 0
    return _V1_TYPE_ORDER.get(t, 99), sub


def _v1_children(e: Element) -> list[Element]:
    return [c for c in e if c.tag == "object" and c.get("type") in _V1_TYPE_ORDER]


def _v1_has_key(e: Element, key: tuple[int, int]) -> bool:
    """hwloc 1.x ``find_same_type``: does ``e``'s subtree hold an object of type ``key``?"""
    stack = [e]
    while stack:
        x = stack.pop()
        if _v1_key(x) == key:
            return True
        stack.extend(_v1_children(x))
    return False


def _v1_levels(top: Element) -> list[list[Element]]:
    """The levels hwloc 1.x builds from a tree (``hwloc_connect_levels``): level 0 is the
    root; each next level takes the topmost type among the objects left, in list order, and
    puts their children in their place.  ``relative_depth`` and logical indexes count these
    levels, not the XML nesting: Lassen's GPU memory nodes hang off the Machine while its
    socket nodes sit under a Group, yet all six are one level."""
    levels = [[top]]
    objs = _v1_children(top)
    while objs:
        first = next((o for o in objs if o.get("type") != "PU"), objs[0])
        key = _v1_key(first)
        for o in objs:
            if _v1_key(o) != key and _v1_has_key(o, key):
                key = _v1_key(o)
        levels.append([o for o in objs if _v1_key(o) == key])
        nxt: list[Element] = []
        for o in objs:
            if _v1_key(o) == key:
                nxt.extend(_v1_children(o))
            else:
                nxt.append(o)
        objs = nxt
    return levels


def _distances_v1(root: Element, numa: list[_NumaNode], parent_of, depth_of,
                  pos: dict[int, int], file: str, notes: list[str]) -> list[list[int]] | None:
    numa_ids = {id(n.elem): n for n in numa}
    tops = [e for e in root if e.tag == "object"]
    levels = _v1_levels(tops[0]) if tops else []
    level_of = {id(e): k for k, lv in enumerate(levels) for e in lv}
    found = None
    holders = {id(c): e for e in root.iter("object") for c in e if c.tag == "distances"}
    for d in root.iter("distances"):
        fld = "distances"
        holder = holders.get(id(d))  # None: the matrix hangs off <topology> itself
        rel = _int_attr(d, "relative_depth", file, fld + ".relative_depth", required=True)
        n = _int_attr(d, "nbobjs", file, fld + ".nbobjs", required=True)
        base = level_of.get(id(holder), 0) if holder is not None else 0
        depth = base + rel
        targets = levels[depth] if rel >= 0 and depth < len(levels) else []
        if holder is not None and depth != base:
            targets = [e for e in targets if _inside(e, holder, parent_of)]
        if len(targets) != n or not targets or any(id(e) not in numa_ids for e in targets):
            notes.append(f"ignored a v1 distance matrix of {n} objects that are not the NUMA "
                         "nodes")
            continue
        try:
            vals = [float(x.get("value", "")) for x in d if x.tag == "latency"]
        except ValueError:
            raise _fail(file, "a <latency value=...> is not a number", fld) from None
        if len(vals) != n * n:
            raise _fail(file, f"nbobjs={n} needs {n * n} <latency> values, found {len(vals)}",
                        fld, "the file may be cut short")
        if found is None:
            found = _place([numa_ids[id(e)].os_index for e in targets],
                           _v1_slit(vals, n, d, file, fld, notes,
                                    numa_ids[id(targets[0])].os_index),
                           pos, notes, "the v1 distance matrix")
    if found is None:
        notes.append("no NUMA distance matrix in the file")
    return found


def _v1_slit(vals: list[float], n: int, d: Element, file: str, fld: str, notes: list[str],
             first: int) -> list[int]:
    """hwloc 1.x keeps SLIT / latency_base (1.0 local); multiply back when that gives the
    kernel's 10 on the diagonal, else scale so the first node's own distance is 10."""
    if not all(math.isfinite(v) for v in vals):
        raise _fail(file, "a <latency value=...> is not a finite number", fld)
    diag = [vals[i * n + i] for i in range(n)]
    if any(v <= 0 for v in diag):
        raise _fail(file, "a node's distance to itself is not positive", fld)
    try:
        base = float(d.get("latency_base", "nan"))
    except ValueError:
        base = math.nan
    if all(abs(v * base - LOCAL_DISTANCE) < 1e-6 for v in diag):
        return [round(v * base) for v in vals]
    local = diag[0]
    if any(abs(v - local) > 1e-9 for v in diag):
        notes.append(f"v1 distances have unequal diagonal values; normalised by node {first}'s")
    return [round(LOCAL_DISTANCE * v / local) for v in vals]


def _inside(e: Element, holder: Element, parent_of) -> bool:
    p = parent_of.get(id(e))
    while p is not None:
        if p is holder:
            return True
        p = parent_of.get(id(p))
    return False


def _memattrs(root: Element, nodes: list[Node], pos: dict[int, int],
              gp_to_node: dict[int, int], by_gp: dict[int, Element],
              distance, file: str, notes: list[str]):
    attrs = {m.get("name"): m for m in root.iter("memattr")}
    out = []
    for quantity, names, scale in (("latency", ("Latency", "ReadLatency"), 1.0),
                                   ("bandwidth", ("Bandwidth", "ReadBandwidth"),
                                    MEMATTR_BW_MB_TO_GBPS)):
        name = next((n for n in names if n in attrs), None)
        if name is None:
            out.append(None)
            continue
        known: dict[tuple[int, int], tuple[int, float]] = {}
        for k, v in enumerate(x for x in attrs[name] if x.tag == "memattr_value"):
            fld = f"memattr[{name}].value[{k}]"
            if v.get("target_obj_type", "NUMANode") != "NUMANode":
                continue
            gp = _int_attr(v, "target_obj_gp_index", file, fld + ".target_obj_gp_index",
                           required=True)
            if gp not in gp_to_node:
                raise _fail(file, f"target gp_index {gp} is not a NUMANode", fld)
            try:
                value = float(v.get("value", ""))
            except ValueError:
                raise _fail(file, f"value {snippet(v.get('value') or '')} is not a number",
                            fld) from None
            if value <= 0:
                continue
            if v.get("initiator_cpuset") is not None:
                init = _cpuset(v, "initiator_cpuset", file, fld + ".initiator_cpuset")
            elif v.get("initiator_obj_gp_index") is not None:
                igp = _int_attr(v, "initiator_obj_gp_index", file, fld, required=True)
                if igp not in by_gp:
                    raise _fail(file, f"initiator gp_index {igp} names no object", fld)
                init = _cpuset(by_gp[igp], "cpuset", file, fld + ".initiator")
            else:
                continue
            rows = [i for i, n in enumerate(nodes) if n.cpus and set(n.cpus) <= init]
            if not rows:
                rows = [i for i, n in enumerate(nodes) if set(n.cpus) & init]
            j = pos[gp_to_node[gp]]
            for i in rows:
                prev = known.get((i, j))
                if prev is None or len(init) < prev[0]:
                    known[(i, j)] = (len(init), value * scale)
        matrix, note = fill_matrix({key: val for key, (_, val) in known.items()}, nodes,
                                   distance, quantity=quantity,
                                   source=f"hwloc memattr {name}")
        if note:
            notes.append(note)
        out.append(matrix)
    return out[0], out[1]
