"""The oracle's ``.layout`` files (fake NUMA machines booted under QEMU) as machines whose
zones are the ones the real kernel builds.

Format (``/work/shared/oracle/README.md``, "Layouts")::

    node ID mem=SIZE cpus=LIST|- [initiator=N]   # SIZE like 256M, 3G (a bare number is MiB)
    dist D0 D1 D2 ...                # one SLIT row per node, in node order
    append <kernel args>             # ignored (noted): kernel arguments are not emulated
    qemu <extra qemu args>           # ignored (noted), except -numa hmat-lb (below)

*ACPI HMAT* (``qemu -machine hmat=on`` and ``qemu -numa hmat-lb,initiator=I,target=T,
hierarchy=memory,data-type=access-latency|read-latency,latency=NS`` or
``...access-bandwidth|read-bandwidth,bandwidth=SIZE``, SIZE in bytes/s with QEMU's binary
suffixes): the memory-level latencies and bandwidths become the machine's latency and
bandwidth entries (the pairs not given are filled as
:mod:`numasim.topology.loaders.initiators` explains), so the kernel's memory tiers
(:mod:`numasim.mm.memory_tiers`) see what Linux reads from the HMAT.  Write-only figures and
cache levels are ignored (noted).  ``initiator=N`` on a node line (QEMU's local initiator of a
CPU-less node) is accepted; the best CPU initiator is what numasim uses either way.

What the oracle boots is ``qemu-system-x86_64 -machine pc -m <sum> -smp <max cpu + 1>`` with
one ``-numa node`` per layout node, and what Linux makes of it is reproduced here:

*Node ids.*  Linux numbers NUMA nodes in the order it meets their proximity domains in the
SRAT, and QEMU lists every CPU (in CPU order) before the memory ranges (in node order).  So
a CPU-less node with a lower id than a node with CPUs is renumbered (layout 0:cpu, 1:no cpu,
2:cpu boots as Linux nodes 0, 2, 1; checked on 6.12).  Nodes with neither CPUs nor memory do
not appear in the SRAT and are dropped.  Matrices follow the renumbering.

*Physical memory* (QEMU ``pc``, i440fx, and SeaBIOS): the nodes' RAM is laid end to end in
layout-id order.  With less than 3.5 GiB in total all of it sits below 4 GiB; with 3.5 GiB
or more the first 3 GiB stay below 4 GiB and the rest starts at 4 GiB.  The usable RAM the
kernel sees (e820) lacks page frame 0, frames 0x9f-0xff (the 640 KiB-1 MiB hole) and the
top 128 KiB below 4 GiB (firmware tables).  Zones are DMA (below 16 MiB), DMA32 (below
4 GiB) and Normal; a zone's span is clipped to its node's span, its present pages are the
usable frames inside (a node that crosses the 3 GiB hole has DMA32 spanned > present).

*Managed pages* (what the buddy allocator owns after boot) = present minus boot-time
reservations, a model fitted to ``/proc/zoneinfo`` of the real kernels (page counts,
:data:`PROFILES`):

* all present frames below 1 MiB (x86 reserves the first MiB): 158 pages of node 0's DMA;
* the memory map, 512 pages (64 bytes per page of a 128 MiB section) per section whose first
  present frame is the node's, charged to the node's highest zone (top-down, as memblock);
* ``NODE_DATA`` and the per-CPU area of each CPU (43 + 66 pages on 6.12, 44 + 62 on 6.1),
  on the node itself, or on the node holding the top of memory when the node has no memory;
* the kernel image, page tables and early allocations, minus init memory freed later, in
  the zone holding 16 MiB (the load address): 9557 pages on 6.12, 11321 on 6.1;
* when RAM reaches above 4 GiB, the 64 MiB swiotlb bounce buffer (16384 pages) in the DMA32
  zone of the node holding the top of RAM below 4 GiB, and its slot array (196 pages on 6.12,
  195 on 6.1) on the node holding the top of memory;
* 13 pages of top-down early allocations on the node holding the top of memory.

*Free pages at start* (``Machine.boot_used``, :func:`post_boot_used`): what the booted guest
holds when a scenario starts is managed but not free.

Fit (``tests/test_loader_layout.py`` checks it; dumps in ``tests/data/topologies/oracle-info``).
The constants were read off the three dumps the oracle ships (4node-asym, 4node-flat,
4node-normal); the model was then checked, before any further tuning, on layouts booted for
this purpose: 2node-normal, 8node, 8node-2socket, 3node-memonly, and three ad-hoc ones
(renumbered ids, a memoryless node with a CPU, a node crossing the 3 GiB hole with sizes
that are not section multiples).  Result, managed pages per populated zone:

* Linux 6.12, 10 layouts, 53 zones: 46 exact, worst 4 pages off (2node-normal node 0
  Normal: 245651 vs 245647), largest relative error 0.004 % (1 page of 24837);
* Linux 6.1, 7 layouts, 41 zones: 39 exact, worst 3 pages off (2node-normal node 0 DMA32
  and Normal, +3/-3: a few pages land in the other zone of the same node), relative 0.0012 %
  (the 6.1 NODE_DATA / per-CPU split, 44 + 62, was refined with the 8node dumps).

start_pfn, spanned and present match the kernel exactly for all 17 boots.  The pages still
off are early allocations that land in a neighbouring zone or node.  ``min_free_kbytes`` is
not pinned: :mod:`numasim.topology.derive` computes it from these counts (4470 for
4node-asym; the kernel computed 4443 at boot, before init memory was freed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from numasim.bitmap import MAX_NUMNODES, parse_list
from numasim.errors import ConfigError
from numasim.topology.build import make_machine
from numasim.topology.loaders._files import read_text, snippet
from numasim.topology.model import PAGE_SIZE, Machine, Node, ZoneSpec, ZoneType

WHAT = "an oracle .layout file"
MiB = 1 << 20
GiB = 1 << 30
PAGE_SHIFT = 12
QEMU_LOWMEM_THRESHOLD = 0xE0000000
"""From 3.5 GiB of RAM on, QEMU's pc machine keeps only 3 GiB below 4 GiB."""
QEMU_LOWMEM_LARGE = 0xC0000000
FIRMWARE_TOP_RESERVED = 128 << 10
"""The top 128 KiB of RAM below 4 GiB is reserved in the e820 map (firmware tables)."""
LEGACY_HOLE_PFN = (0x9F, 0x100)
"""640 KiB-1 MiB: the EBDA and the legacy ROM/VGA hole (e820 RAM ends at 0x9fbff)."""
FIRST_MIB_PFN = 0x100
DMA_END_PFN = (16 * MiB) >> PAGE_SHIFT
DMA32_END_PFN = (4 * GiB) >> PAGE_SHIFT
KERNEL_LOAD_PFN = (16 * MiB) >> PAGE_SHIFT
PAGES_PER_SECTION = (128 * MiB) >> PAGE_SHIFT
STRUCT_PAGE_BYTES = 64
MEMMAP_PAGES_PER_SECTION = PAGES_PER_SECTION * STRUCT_PAGE_BYTES // PAGE_SIZE


@dataclass(frozen=True)
class BootReservations:
    """Pages a kernel keeps at boot, beyond the memory map (see the module docstring)."""

    kernel: str
    node_data: int
    per_cpu: int
    kernel_image: int
    top_of_memory: int
    swiotlb: int
    swiotlb_meta: int
    used_boot_node: int = 0
    used_other_node: int = 0


PROFILES = {
    "6.12": BootReservations("6.12", node_data=43, per_cpu=66, kernel_image=9557,
                             top_of_memory=13, swiotlb=16384, swiotlb_meta=196,
                             used_boot_node=6416, used_other_node=1996),
    "6.1": BootReservations("6.1", node_data=44, per_cpu=62, kernel_image=11321,
                            top_of_memory=13, swiotlb=16384, swiotlb_meta=195,
                            used_boot_node=6780, used_other_node=1650),
}
DEFAULT_KERNEL = "6.12"
_SNIFF = re.compile(r"^\s*node\s+\d+\s+(mem|cpus)=", re.MULTILINE)
_SIZE = re.compile(r"(\d{1,20})([KMGkmg]?)")
MAX_GUEST_BYTES = 1 << 46
"""A layout describes a QEMU guest: at most 64 TiB of RAM (46 physical address bits, x86-64
with 4-level paging).  Its per-section memmap accounting is sized by it."""


def sniff(head_text: str) -> bool:
    """True if the text looks like an oracle layout."""
    return bool(_SNIFF.search(head_text))


@dataclass(frozen=True)
class LayoutNode:
    id: int
    mem: int
    cpus: tuple[int, ...]
    line: int


def load(path: str | os.PathLike, *, kernel: str = DEFAULT_KERNEL) -> Machine:
    """Read a ``.layout`` file; ``kernel`` picks the managed-pages profile (6.12 or 6.1)."""
    path = Path(path)
    return loads(read_text(path, what=WHAT), file=str(path), name=path.stem, kernel=kernel)


def loads(text: str, *, file: str | None = None, name: str = "layout",
          kernel: str = DEFAULT_KERNEL) -> Machine:
    """Parse layout text; ``file`` is only used in messages."""
    if kernel not in PROFILES:
        raise ConfigError(f"no boot model for kernel {kernel!r}", file=file, field="kernel",
                          hint="valid: " + ", ".join(PROFILES))
    nodes, dist, notes = parse_layout(text, file)
    hmat = parse_hmat_lb(text, file, notes)
    return build(nodes, dist, notes, file=file, name=name, profile=PROFILES[kernel], hmat=hmat)


_HMAT_LB = re.compile(r"-numa\s+hmat-lb,(\S+)")
_QEMU_SIZE = re.compile(r"(\d{1,15}(?:\.\d{1,9})?)([KMGTkmgt]?)[Bb]?")


def parse_hmat_lb(text: str, file: str | None, notes: list[str]
                  ) -> dict[tuple[str, int, int], float]:
    """``qemu -numa hmat-lb,...`` memory-level entries of a layout:
    ``{("latency" | "bandwidth", initiator, target): ns | GB/s}`` in layout node ids."""
    out: dict[tuple[str, int, int], float] = {}
    skipped = 0
    for k, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("qemu"):
            continue
        for m in _HMAT_LB.finditer(line):
            kv = dict(w.partition("=")[::2] for w in m.group(1).split(","))
            dtype = kv.get("data-type", "")
            if kv.get("hierarchy") != "memory" or dtype.startswith("write-"):
                skipped += 1
                continue
            try:
                ini, tgt = int(kv["initiator"]), int(kv["target"])
                if dtype in ("access-latency", "read-latency"):
                    out[("latency", ini, tgt)] = float(int(kv["latency"]))
                elif dtype in ("access-bandwidth", "read-bandwidth"):
                    sm = _QEMU_SIZE.fullmatch(kv["bandwidth"])
                    if not sm:
                        raise ValueError(kv["bandwidth"])
                    mult = 1 << (10 * " kmgt".index(sm.group(2).lower() or " "))
                    out[("bandwidth", ini, tgt)] = float(sm.group(1)) * mult / 1e9
                else:
                    raise ValueError(dtype)
            except (KeyError, ValueError):
                raise ConfigError(f"cannot read hmat-lb {snippet(m.group(1))}", file=file,
                                  line=k, field="qemu -numa hmat-lb",
                                  hint="initiator=I,target=T,hierarchy=memory,data-type="
                                       "access-latency,latency=NS (or access-bandwidth,"
                                       "bandwidth=100G)") from None
    if skipped:
        notes.append(f"{skipped} hmat-lb entries ignored (write-only figures or cache levels)")
    return out


def _size(text: str) -> int | None:
    m = _SIZE.fullmatch(text)
    if not m:
        return None
    return int(m.group(1)) * {"": MiB, "k": 1 << 10, "m": MiB, "g": GiB}[m.group(2).lower()]


def parse_layout(text: str, file: str | None) -> tuple[list[LayoutNode], list[list[int]],
                                                      list[str]]:
    """The layout's nodes (sorted by id), SLIT rows and notes, checked as QEMU would."""
    nodes: list[LayoutNode] = []
    dist: list[list[int]] = []
    dist_line = None
    notes: list[str] = []
    for k, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        head = words[0]
        if head == "node":
            nodes.append(_node(words, k, file))
        elif head == "dist":
            try:
                dist.append([int(w) for w in words[1:]])
            except ValueError:
                raise ConfigError(f"dist row {snippet(' '.join(words[1:]))} holds something "
                                  "that is not a whole number", file=file, line=k,
                                  field="dist") from None
            dist_line = dist_line or k
        elif head == "qemu" and ("hmat-lb" in line or "hmat=on" in line):
            continue  # the ACPI HMAT: read by parse_hmat_lb
        elif head in ("append", "qemu"):
            what = "kernel" if head == "append" else "QEMU"
            notes.append(f"line {k}: '{line}' ignored (extra {what} arguments are not "
                         "emulated)")
        else:
            raise ConfigError(f"unknown line {snippet(line)}", file=file, line=k, field=head,
                              hint="valid: node ID mem=SIZE cpus=LIST|-, dist D0 D1 ..., "
                                   "append ARGS, qemu ARGS")
    if not nodes:
        raise ConfigError("no 'node' lines", file=file, field="node",
                          hint="node ID mem=SIZE cpus=LIST|-")
    nodes.sort(key=lambda n: n.id)
    ids = [n.id for n in nodes]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"node {dup} is described twice", file=file, field="node",
                          line=max(n.line for n in nodes if n.id == dup))
    if ids != list(range(len(ids))):
        missing = next(i for i in range(len(ids) + 1) if i not in ids)
        raise ConfigError(f"node ids must be 0..{len(ids) - 1} without gaps (node {missing} is "
                          "missing)", file=file, field="node",
                          hint="QEMU refuses a layout with a missing node id")
    seen: dict[int, int] = {}
    for n in nodes:
        for c in n.cpus:
            if c in seen:
                raise ConfigError(f"CPU {c} is in node {seen[c]} and in node {n.id}", file=file,
                                  line=n.line, field="cpus", hint="a CPU belongs to one node")
            seen[c] = n.id
    if not seen:
        raise ConfigError("no node has CPUs", file=file, field="cpus")
    if not any(n.mem for n in nodes):
        raise ConfigError("no node has memory", file=file, field="mem",
                          hint="give at least one node mem=SIZE")
    if sum(n.mem for n in nodes) > MAX_GUEST_BYTES:
        big = max(nodes, key=lambda n: n.mem)
        raise ConfigError(f"the nodes hold {sum(n.mem for n in nodes)} bytes together; a QEMU "
                          "guest has at most 64 TiB (46 physical address bits)", file=file,
                          line=big.line, field="mem")
    gaps = sorted(set(range(max(seen) + 1)) - set(seen))
    if gaps:
        raise ConfigError(f"CPU {gaps[0]} is in no node, but QEMU starts CPUs 0..{max(seen)} "
                          "(-smp = highest CPU + 1)", file=file, field="cpus",
                          hint="list every CPU in some node: QEMU's default placement of "
                               "unlisted CPUs is not emulated")
    if dist and (len(dist) != len(nodes) or any(len(r) != len(nodes) for r in dist)):
        raise ConfigError(f"dist must be a {len(nodes)}x{len(nodes)} matrix, one row per node "
                          f"(got {len(dist)} rows of " + "/".join(sorted({str(len(r))
                                                                      for r in dist})) + ")",
                          file=file, line=dist_line, field="dist")
    return nodes, dist, notes


def _node(words: list[str], k: int, file: str | None) -> LayoutNode:
    if len(words) < 2 or not words[1].isdigit() or not words[1].isascii():
        raise ConfigError("expected 'node ID mem=SIZE cpus=LIST|-'", file=file, line=k,
                          field="node")
    if len(words[1]) > 4 or int(words[1]) >= MAX_NUMNODES:
        raise ConfigError(f"node id {snippet(words[1])} is not below MAX_NUMNODES "
                          f"({MAX_NUMNODES}), the most nodes Linux supports", file=file,
                          line=k, field="node")
    kv = {}
    for w in words[2:]:
        key, sep, value = w.partition("=")
        if not sep or key not in ("mem", "cpus", "initiator"):
            raise ConfigError(f"unknown node setting {snippet(w)}", file=file, line=k, field="node",
                              hint="valid: mem=SIZE, cpus=LIST or cpus=-, initiator=N")
        kv[key] = value
    ini = kv.get("initiator")
    if ini is not None and not (ini.isascii() and ini.isdigit() and len(ini) <= 4):
        raise ConfigError(f"initiator={snippet(ini)} is not a node id", file=file, line=k,
                          field="initiator", hint="the id of a node with CPUs, like initiator=0")
    mem = _size(kv.get("mem", "0"))
    if mem is None:
        raise ConfigError(f"cannot read mem={snippet(kv['mem'])}", file=file, line=k, field="mem",
                          hint="like 256M or 3G; a bare number is MiB")
    if mem % MiB:
        raise ConfigError(f"mem={snippet(kv['mem'])} is not a whole number of MiB", file=file,
                          line=k,
                          field="mem", hint="QEMU memory backends are sized in MiB here")
    cpus_text = kv.get("cpus", "-")
    try:
        cpus = () if cpus_text in ("-", "none", "") else tuple(parse_list(cpus_text,
                                                                          what="CPU"))
    except ValueError as e:
        raise ConfigError(f"cannot read cpus={snippet(cpus_text)}: {e}", file=file, line=k,
                          field="cpus",
                          hint="like 0-3,8 or - for a CPU-less node") from None
    return LayoutNode(int(words[1]), mem, cpus, k)


# ---------------------------------------------------------------------- the boot
Range = tuple[int, int]
"""[start_pfn, end_pfn)"""


def linux_node_ids(nodes: list[LayoutNode]) -> dict[int, int]:
    """Layout id -> Linux node id: SRAT order, every CPU first, then memory (checked on 6.12)."""
    order: list[int] = []
    owner = {c: n.id for n in nodes for c in n.cpus}
    for cpu in sorted(owner):
        if owner[cpu] not in order:
            order.append(owner[cpu])
    for n in nodes:
        if n.mem and n.id not in order:
            order.append(n.id)
    return {lid: k for k, lid in enumerate(order)}


def e820_ram(total: int) -> list[Range]:
    """Usable RAM frames of a QEMU pc machine with ``total`` bytes (SeaBIOS e820)."""
    below = total if total < QEMU_LOWMEM_THRESHOLD else QEMU_LOWMEM_LARGE
    above = total - below
    low_end = (below - FIRMWARE_TOP_RESERVED) >> PAGE_SHIFT
    out = [(1, min(LEGACY_HOLE_PFN[0], low_end)), (LEGACY_HOLE_PFN[1], low_end)]
    if above:
        out.append((DMA32_END_PFN, DMA32_END_PFN + (above >> PAGE_SHIFT)))
    return [(a, b) for a, b in out if b > a]


def node_ram(nodes: list[LayoutNode]) -> dict[int, list[Range]]:
    """Present frames of each layout node: RAM laid end to end in id order, holes removed."""
    total = sum(n.mem for n in nodes)
    below = total if total < QEMU_LOWMEM_THRESHOLD else QEMU_LOWMEM_LARGE
    usable = e820_ram(total)
    out: dict[int, list[Range]] = {}
    offset = 0
    for n in nodes:
        a, b = offset, offset + n.mem
        offset = b
        phys = []
        if a < below:
            phys.append((a, min(b, below)))
        if b > below:
            phys.append((max(a, below) - below + 4 * GiB, b - below + 4 * GiB))
        out[n.id] = [r for p in phys for r in _intersect((p[0] >> PAGE_SHIFT, p[1] >> PAGE_SHIFT),
                                                           usable)]
    return out


def _intersect(r: Range, ranges: Iterable[Range]) -> list[Range]:
    out = []
    for a, b in ranges:
        lo, hi = max(a, r[0]), min(b, r[1])
        if hi > lo:
            out.append((lo, hi))
    return out


def _count(ranges: Iterable[Range], lo: int, hi: int) -> int:
    return sum(b - a for a, b in _intersect((lo, hi), ranges))


ZONE_BOUNDS = ((ZoneType.DMA, 0, DMA_END_PFN), (ZoneType.DMA32, DMA_END_PFN, DMA32_END_PFN),
               (ZoneType.NORMAL, DMA32_END_PFN, 1 << 52))


def zones_of(ranges: list[Range]) -> list[ZoneSpec]:
    """``zone_spanned_pages_in_node`` / ``zone_absent_pages_in_node`` for one node
    (``managed`` is left equal to ``present``; :func:`managed_pages` lowers it)."""
    if not ranges:
        return []
    start, end = ranges[0][0], ranges[-1][1]
    out = []
    for ztype, lo, hi in ZONE_BOUNDS:
        zs, ze = max(lo, start), min(hi, end)
        if ze <= zs:
            continue
        present = _count(ranges, zs, ze)
        if present:
            out.append(ZoneSpec(ztype, zs, ze - zs, present, present))
    return out


def managed_pages(zones: dict[int, list[ZoneSpec]], ram: dict[int, list[Range]],
                  cpus: dict[int, tuple[int, ...]], profile: BootReservations
                  ) -> dict[int, list[ZoneSpec]]:
    """Lower each zone's ``managed`` by the boot reservations of the module docstring.
    ``zones``, ``ram`` and ``cpus`` are keyed by Linux node id."""
    left = {nid: {z.type: z.present for z in zs} for nid, zs in zones.items()}
    mem_nodes = [nid for nid in sorted(ram) if ram[nid]]

    def holder(pfn: int) -> int | None:
        return next((nid for nid in mem_nodes if _count(ram[nid], pfn, pfn + 1)), None)

    def zone_at(pfn: int) -> ZoneType:
        return next(z for z, lo, hi in ZONE_BOUNDS if lo <= pfn < hi)

    top = max(mem_nodes, key=lambda nid: ram[nid][-1][1])

    def charge(nid: int, pages: int, zone: ZoneType | None = None) -> None:
        order = sorted(left[nid], reverse=True)
        if zone is not None and zone in left[nid]:
            order = [zone] + [z for z in order if z != zone]
        for z in order:
            take = min(pages, left[nid][z])
            left[nid][z] -= take
            pages -= take
            if not pages:
                return

    first = holder(1)
    if first is not None:
        charge(first, _count(ram[first], 0, FIRST_MIB_PFN), ZoneType.DMA)
    kern = holder(KERNEL_LOAD_PFN)
    charge(kern if kern is not None else mem_nodes[0], profile.kernel_image,
           zone_at(KERNEL_LOAD_PFN) if kern is not None else None)
    owner: dict[int, int] = {}
    for nid in mem_nodes:  # a section's memmap goes to the node of its first present frame
        for a, b in ram[nid]:
            for sec in range(a // PAGES_PER_SECTION, (b - 1) // PAGES_PER_SECTION + 1):
                owner.setdefault(sec, nid)
    for nid in owner.values():
        charge(nid, MEMMAP_PAGES_PER_SECTION)
    for nid in sorted(set(zones) | set(cpus)):
        home = nid if nid in mem_nodes else top
        charge(home, profile.node_data + profile.per_cpu * len(cpus.get(nid, ())))
    max_pfn = max(ram[nid][-1][1] for nid in mem_nodes)
    extra = profile.top_of_memory
    if max_pfn > DMA32_END_PFN:
        low_top = max((b for nid in mem_nodes for a, b in ram[nid] if b <= DMA32_END_PFN),
                      default=None)
        if low_top is not None:
            charge(holder(low_top - 1), profile.swiotlb, ZoneType.DMA32)
        extra += profile.swiotlb_meta
    charge(top, extra)
    return {nid: [ZoneSpec(z.type, z.start_pfn, z.spanned, z.present, left[nid][z.type])
                  for z in zs] for nid, zs in zones.items()}


def build(nodes: list[LayoutNode], dist: list[list[int]], notes: list[str], *,
          file: str | None, name: str, profile: BootReservations,
          hmat: dict[tuple[str, int, int], float] | None = None) -> Machine:
    """The machine Linux boots from this layout under QEMU."""
    notes = list(notes)
    linux = linux_node_ids(nodes)
    dropped = [n.id for n in nodes if n.id not in linux]
    if dropped:
        notes.append(f"layout node(s) {dropped} have neither CPUs nor memory: QEMU's SRAT does "
                     "not list them, so Linux never sees them (dropped)")
    moved = {lid: k for lid, k in linux.items() if lid != k}
    if moved:
        notes.append("Linux renumbers nodes in SRAT order (CPUs first): " + ", ".join(
            f"layout node {lid} is Linux node {k}" for lid, k in sorted(moved.items())))
    ram_by_layout = node_ram(nodes)
    ram = {linux[n.id]: ram_by_layout[n.id] for n in nodes if n.id in linux}
    cpus = {linux[n.id]: n.cpus for n in nodes if n.id in linux}
    zones = managed_pages({nid: zones_of(r) for nid, r in ram.items()}, ram, cpus, profile)
    by_linux = {linux[n.id]: n for n in nodes if n.id in linux}
    out_nodes = [Node(id=k, cpus=by_linux[k].cpus, mem_bytes=by_linux[k].mem,
                      zones=tuple(zones[k])) for k in sorted(by_linux)]
    distance = None
    if dist:
        back = {k: lid for lid, k in linux.items()}
        pos = {n.id: i for i, n in enumerate(nodes)}
        distance = [[dist[pos[back[a]]][pos[back[b]]] for b in sorted(back)]
                    for a in sorted(back)]
    total = sum(n.mem for n in nodes)
    split = ("3 GiB below 4 GiB, the rest above" if total >= QEMU_LOWMEM_THRESHOLD
             else "all below 4 GiB")
    notes.append(f"zones: QEMU pc memory map ({total >> 20} MiB, {split}); managed pages "
                 f"from the Linux {profile.kernel} boot-reservation model")
    lat, bw = _hmat_matrices(hmat or {}, linux, out_nodes, distance, notes, file)
    used = post_boot_used(out_nodes, profile)
    notes.append("free pages at start: managed minus what the booted guest holds "
                 + ", ".join(f"node {n} {u}" for n, u in used))
    return make_machine(name, out_nodes, distance=distance, latency_ns=lat, bandwidth_GBps=bw,
                        boot_used=used, file=file,
                        source=f"{file or '<text>'} (oracle .layout, QEMU pc + Linux "
                               f"{profile.kernel})", notes=notes)


def post_boot_used(nodes: list[Node], profile: BootReservations) -> tuple[tuple[int, int], ...]:
    """Pages the booted guest (init, busybox shell, the probe, its rootfs, slab, per-CPU
    lists) holds on each memory node when a scenario starts: managed but not free.  Most of
    it is on the node of CPU 0, where init runs.  Measured on ``2node-tier`` with the
    ``zones`` line at the start of ``99_swap_bind_pressure`` (managed - free, two boots per
    kernel): node 0 6358 / 6473 pages on 6.12, 6939 / 6621 on 6.1; node 1 2039 / 1952 and
    1600 / 1699 (:data:`PROFILES` keeps the means).  Without it numasim's node 0 took 5449 to
    8199 pages more than the kernel's before spilling (``97_no_demotion_on_spill``)."""
    boot = next((n.id for n in nodes if 0 in n.cpus), None)
    out = []
    for n in nodes:
        if not any(z.managed for z in n.zones):
            continue
        out.append((n.id, profile.used_boot_node if n.id == boot else profile.used_other_node))
    return tuple(out)


def _hmat_matrices(hmat: dict[tuple[str, int, int], float], linux: dict[int, int],
                   nodes: list[Node], distance, notes: list[str], file: str | None):
    """Latency and bandwidth matrices from the hmat-lb entries (None when there are none)."""
    from numasim.topology.loaders.initiators import fill_matrix

    pos = {n.id: i for i, n in enumerate(nodes)}
    known: dict[str, dict[tuple[int, int], float]] = {"latency": {}, "bandwidth": {}}
    for (what, ini, tgt), v in hmat.items():
        if ini not in linux or tgt not in linux:
            raise ConfigError(f"hmat-lb names node {ini if ini not in linux else tgt}, which "
                              "Linux does not see", file=file, field="qemu -numa hmat-lb")
        known[what][(pos[linux[ini]], pos[linux[tgt]])] = v
    out = []
    for what in ("latency", "bandwidth"):
        m, note = fill_matrix(known[what], nodes, distance, quantity=what,
                              source="the layout's ACPI HMAT (hmat-lb)")
        if note:
            notes.append(note)
        out.append(m)
    return out[0], out[1]
