"""The one place a :class:`Machine` is assembled and checked.

Every loader (our YAML, ``numactl --hardware`` text, hwloc XML, sysfs, oracle ``.layout``)
gathers raw facts and calls :func:`make_machine`.  It fills what the source did not give
(latency and bandwidth from the SLIT and the memory kind, a flat SLIT when there is none),
records what it derived, and rejects machines Linux could not boot: it reports every problem
at once, each naming the file and the field.

Derivation rules (stated here because users will read numbers that came from them):

* no SLIT: 10 on the diagonal, 20 elsewhere (what Linux assumes without ACPI SLIT);
* idle latency ``latency[i][j] = LOCAL_LATENCY_NS[kind of j] + 4.5 ns * (distance[i][j] - 10)``
  -- a linear fit of the MLC matrices in the project's data (Cascade Lake: SLIT 21,
  +49 ns; Skylake: SLIT 21, +50 ns);
* bandwidth ``bandwidth[i][j] = LOCAL_BANDWIDTH_GBPS[kind of j] * 10 / distance[i][j]``
  (Cascade Lake measured 0.42 remote/local against 10/21 = 0.48).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from numasim.bitmap import MAX_NUMNODES, NR_CPUS
from numasim.errors import ConfigError, ErrorCollector
from numasim.topology.model import (
    LOCAL_DISTANCE,
    REMOTE_DISTANCE,
    Link,
    Machine,
    MemKind,
    Node,
)

LOCAL_LATENCY_NS = {MemKind.DRAM: 80.0, MemKind.HBM: 110.0, MemKind.CXL: 250.0,
                    MemKind.NVM: 300.0}
LOCAL_BANDWIDTH_GBPS = {MemKind.DRAM: 100.0, MemKind.HBM: 400.0, MemKind.CXL: 30.0,
                        MemKind.NVM: 20.0}
LATENCY_NS_PER_SLIT_UNIT = 4.5
MAX_PHYSMEM_BITS = 52
"""x86-64 and arm64 with 5-level / 52-bit addressing: physical memory ends at 4 PiB."""
MAX_PHYS_BYTES = 1 << MAX_PHYSMEM_BITS


def derive_latency(nodes: Sequence[Node], distance: Sequence[Sequence[int]]
                   ) -> tuple[tuple[float, ...], ...]:
    return tuple(
        tuple(LOCAL_LATENCY_NS[nj.kind] + LATENCY_NS_PER_SLIT_UNIT * (distance[i][j] - 10)
              for j, nj in enumerate(nodes))
        for i in range(len(nodes)))


def derive_bandwidth(nodes: Sequence[Node], distance: Sequence[Sequence[int]]
                     ) -> tuple[tuple[float, ...], ...]:
    return tuple(
        tuple(LOCAL_BANDWIDTH_GBPS[nj.kind] * 10.0 / max(distance[i][j], 1)
              for j, nj in enumerate(nodes))
        for i in range(len(nodes)))


def _square(name: str, m, n: int, errs: ErrorCollector, *, numeric=float) -> tuple | None:
    if m is None:
        return None
    try:
        rows = [list(r) for r in m]
    except TypeError:
        errs.add(f"must be a list of {n} rows", field=name)
        return None
    if len(rows) != n or any(len(r) != n for r in rows):
        shape = f"{len(rows)} rows of " + "/".join(sorted({str(len(r)) for r in rows}) or ["0"])
        errs.add(f"must be a {n}x{n} matrix, one row and one column per node (got {shape})",
                 field=name)
        return None
    out = []
    for i, r in enumerate(rows):
        row = []
        for j, v in enumerate(r):
            if isinstance(v, bool) or not isinstance(v, int | float):
                errs.add(f"entry [{i}][{j}] is {v!r}, not a number", field=name)
                return None
            if numeric is int and float(v) != int(v):
                errs.add(f"entry [{i}][{j}] is {v!r}, not a whole number", field=name)
                return None
            row.append(numeric(v))
        out.append(tuple(row))
    return tuple(out)


def check_nodes(nodes: Sequence[Node], errs: ErrorCollector, page_size: int = 4096) -> None:
    """Node ids, CPUs and memory within what Linux bounds; each CPU in exactly one node.

    Separate from :func:`make_machine` so that a loader whose file has other problems still
    reports these with them (every problem at once)."""
    seen: set[int] = set()
    for nd in nodes:
        if nd.id in seen:
            errs.add(f"node {nd.id} is described twice", field="nodes")
        seen.add(nd.id)
        if nd.id < 0 or nd.id >= MAX_NUMNODES:
            errs.add(f"node id {nd.id} out of range 0..{MAX_NUMNODES - 1} (MAX_NUMNODES = "
                     f"{MAX_NUMNODES}, the most nodes Linux supports)", field="nodes")
    owner: dict[int, int] = {}
    total = 0
    max_pfn = MAX_PHYS_BYTES // page_size
    for nd in nodes:
        if nd.mem_bytes < 0:
            errs.add(f"node {nd.id} has negative memory", field=f"nodes[{nd.id}].memory")
        elif nd.mem_bytes >= MAX_PHYS_BYTES:
            errs.add(f"node {nd.id} has {nd.mem_bytes} bytes of memory; Linux addresses less "
                     f"than 4 PiB of physical memory (MAX_PHYSMEM_BITS = {MAX_PHYSMEM_BITS})",
                     field=f"nodes[{nd.id}].memory")
        total += max(nd.mem_bytes, 0)
        for z in nd.zones or ():
            if z.start_pfn + z.spanned > max_pfn:
                errs.add(f"a {z.type.kname} zone of node {nd.id} ends at pfn "
                         f"{z.start_pfn + z.spanned}, past the 4 PiB of physical memory Linux "
                         f"addresses (pfn {max_pfn})", field=f"nodes[{nd.id}].zones")
        bad = [c for c in nd.cpus if c < 0 or c >= NR_CPUS]
        if bad:
            errs.add(f"CPU {bad[0]} of node {nd.id} is outside 0..{NR_CPUS - 1} (NR_CPUS = "
                     f"{NR_CPUS}, the most CPUs Linux supports)", field=f"nodes[{nd.id}].cpus")
        for c in nd.cpus:
            if c in owner and owner[c] != nd.id:
                errs.add(f"CPU {c} is in node {owner[c]} and in node {nd.id}; a CPU belongs "
                         "to exactly one node", field=f"nodes[{nd.id}].cpus")
            owner[c] = nd.id
    if total >= MAX_PHYS_BYTES and all(0 <= nd.mem_bytes < MAX_PHYS_BYTES for nd in nodes):
        errs.add(f"the nodes hold {total} bytes together; Linux addresses less than 4 PiB of "
                 f"physical memory (MAX_PHYSMEM_BITS = {MAX_PHYSMEM_BITS})", field="nodes")
    if nodes and not any(nd.has_memory for nd in nodes):
        errs.add("no node has memory", field="nodes")
    if nodes and not owner:
        errs.add("no node has CPUs", field="nodes")


def check_distance(dist: Sequence[Sequence[int]], ids: Sequence[int],
                   errs: ErrorCollector) -> None:
    """The SLIT rules Linux enforces (``numa_set_distance``, ``slit_valid``)."""
    n = len(ids)
    for i in range(n):
        if dist[i][i] != LOCAL_DISTANCE:
            errs.add(f"diagonal entry for node {ids[i]} is {dist[i][i]}; a node's distance "
                     f"to itself is always {LOCAL_DISTANCE} (LOCAL_DISTANCE)",
                     field="distance")
        for j in range(n):
            if i != j and dist[i][j] <= LOCAL_DISTANCE:
                errs.add(f"distance from node {ids[i]} to node {ids[j]} is {dist[i][j]}; "
                         f"remote distances must be greater than {LOCAL_DISTANCE}",
                         field="distance")
            if not 0 < dist[i][j] <= 254:
                errs.add(f"distance {dist[i][j]} between nodes {ids[i]} and {ids[j]} is "
                         "outside the SLIT range 10..254", field="distance")


def make_machine(
    name: str,
    nodes: Sequence[Node],
    *,
    distance: Sequence[Sequence[int]] | None = None,
    latency_ns: Sequence[Sequence[float]] | None = None,
    bandwidth_GBps: Sequence[Sequence[float]] | None = None,
    links: Sequence[Link] = (),
    file: str | None = None,
    source: str = "",
    notes: Sequence[str] = (),
    **settings,
) -> Machine:
    """Assemble and check a machine; missing matrices are derived and noted.

    ``settings`` are the remaining :class:`Machine` fields (``cpu_ghz``, ``page_size``,
    ``min_free_kbytes``, ``wi_weights``...).  Raises :class:`ConfigError` listing every problem.
    """
    errs = ErrorCollector(file=file)
    nodes = sorted(nodes, key=lambda n: n.id)
    n = len(nodes)
    if n == 0:
        errs.add("a machine needs at least one node", field="nodes")
        errs.raise_if_any()
    ids = [nd.id for nd in nodes]
    seen = set(ids)
    check_nodes(nodes, errs, settings.get("page_size", 4096))

    derived: set[str] = set()
    notes = list(notes)
    dist = _square("distance", distance, n, errs, numeric=int)
    if distance is None:
        dist = tuple(tuple(LOCAL_DISTANCE if i == j else REMOTE_DISTANCE for j in range(n))
                     for i in range(n))
        derived.add("distance")
        if n > 1:
            notes.append("no distance (SLIT) given: assumed 10 local, 20 remote")
    if dist is not None:
        check_distance(dist, ids, errs)
    lat = _square("latency", latency_ns, n, errs)
    bw = _square("bandwidth", bandwidth_GBps, n, errs)
    for mname, m in (("latency", lat), ("bandwidth", bw)):
        if m is not None and not all(0 < v < math.inf for r in m for v in r):
            errs.add("every entry must be a positive finite number", field=mname)
    errs.raise_if_any()

    if lat is None:
        lat = derive_latency(nodes, dist)
        derived.add("latency")
        notes.append("latency matrix derived from the distance matrix and memory kinds")
    if bw is None:
        bw = derive_bandwidth(nodes, dist)
        derived.add("bandwidth")
        notes.append("bandwidth matrix derived from the distance matrix and memory kinds")

    for ln in links:
        for end in (ln.a, ln.b):
            if end not in seen:
                errs.add(f"link {ln.a}-{ln.b} names node {end}, which does not exist "
                         f"(nodes: {', '.join(map(str, ids))})", field="links")
        if ln.a == ln.b:
            errs.add(f"link {ln.a}-{ln.b} joins a node to itself", field="links")
        if ln.bandwidth_GBps <= 0 or (ln.bandwidth_ba_GBps is not None
                                      and ln.bandwidth_ba_GBps <= 0):
            errs.add(f"link {ln.a}-{ln.b} needs a positive bandwidth", field="links")
    wi = settings.get("wi_weights")
    if wi is not None:
        if len(wi) != n:
            errs.add(f"needs one weight per node ({n}), got {len(wi)}", field="weights")
        elif any(not 0 <= w <= 255 for w in wi):
            errs.add("weights are u8 values 0..255 (0 reads as 1)", field="weights")
    page_size = settings.get("page_size", 4096)
    if page_size not in (4096, 16384, 65536):
        errs.add(f"page size {page_size} unsupported; valid: 4KiB, 16KiB, 64KiB",
                 field="page_size")
    _check_settings(settings, page_size, errs)
    errs.raise_if_any()
    machine = Machine(name=name, nodes=tuple(nodes), distance=dist, latency_ns=lat,
                      bandwidth_GBps=bw, links=tuple(links), derived=frozenset(derived),
                      source=source, notes=tuple(notes), **settings)
    return machine


INT_MAX = (1 << 31) - 1
"""The kernel's vm sysctls (``min_free_kbytes``, ``lowmem_reserve_ratio``) are C ints."""


def _check_settings(settings: dict, page_size: int, errs: ErrorCollector) -> None:
    """The machine-wide numbers: a positive clock, a cache line no bigger than a page, a huge
    page inside physical memory, vm sysctls that fit the kernel's ints."""
    ghz = settings.get("cpu_ghz", 2.0)
    if not 0 < ghz < math.inf:
        errs.add(f"CPU clock {ghz} GHz is not a positive finite number", field="cpu_clock")
    line = settings.get("cache_line", 64)
    if not 0 < line <= page_size:
        errs.add(f"cache line {line} B is not between 1 B and the page size ({page_size} B)",
                 field="cache_line")
    huge = settings.get("huge_page_size", 2 << 20)
    if not 0 < huge < MAX_PHYS_BYTES:
        errs.add(f"huge page size {huge} B is not between 1 B and 4 PiB (x86-64: 2MiB or "
                 "1GiB)", field="huge_page_size")
    mfk = settings.get("min_free_kbytes")
    if mfk is not None and not 0 <= mfk <= INT_MAX:
        errs.add(f"min_free_kbytes {mfk} does not fit the kernel's int (0..{INT_MAX})",
                 field="kernel.min_free_kbytes")
    ratios = settings.get("lowmem_reserve_ratio", ())
    if any(not 0 <= r <= INT_MAX for r in ratios):
        errs.add(f"lowmem_reserve_ratio entries are ints 0..{INT_MAX}",
                 field="kernel.lowmem_reserve_ratio")


def check_node_ids(machine: Machine, ids, *, field: str, file: str | None = None) -> None:
    """Raise a ConfigError if any id in ``ids`` is not a node of ``machine``."""
    bad = [i for i in ids if i not in machine.node_ids]
    if bad:
        raise ConfigError(f"node {bad[0]} does not exist on {machine.name}", file=file,
                          field=field, hint="nodes: " + ", ".join(map(str, machine.node_ids)))


__all__ = ["make_machine", "check_nodes", "check_distance", "derive_latency",
           "derive_bandwidth", "check_node_ids", "ConfigError", "MAX_NUMNODES",
           "MAX_PHYS_BYTES"]
