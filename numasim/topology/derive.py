"""What Linux derives from the hardware at boot: zones, zonelists, policy_zone, watermarks.

Read beside ``mm/page_alloc.c`` (``build_zonelists``, ``find_next_best_node``,
``build_zonerefs_node``, ``check_highest_zone``, ``calculate_min_free_kbytes``,
``__setup_per_zone_wmarks``, ``setup_per_zone_lowmem_reserve``) and
``mm/mm_init.c``/``arch/x86/mm/init.c`` (``zone_sizes_init``: DMA below 16 MiB, DMA32 below
4 GiB, Normal above).

Two places where numasim states a choice the kernel leaves to its boot sequence:

* the boot-time zonelists are built before CPUs join their nodes, so no node gets
  ``PENALTY_FOR_NODE_WITH_CPUS`` (seen on the real 6.1 and 6.12); :func:`build_zonelists`
  takes ``cpu_penalty=True`` to model a later rebuild (memory hotplug);
* the kernel computes ``min_free_kbytes`` and the watermarks at an initcall, before initrd and
  init memory are freed, so its boot-time numbers come from slightly smaller managed counts
  than ``/proc/zoneinfo`` shows later.  numasim computes them from the managed counts it is
  given -- exactly what the kernel does when ``vm.min_free_kbytes`` or
  ``vm.watermark_scale_factor`` is written after boot.  A machine may pin ``min_free_kbytes``
  to the booted kernel's value.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from numasim.bitmap import MAX_NUMNODES
from numasim.topology.model import MAX_NR_ZONES, Machine, Node, ZoneSpec, ZoneType

PENALTY_FOR_NODE_WITH_CPUS = 1
SWAP_CLUSTER_MAX = 32
DMA_LIMIT = 16 << 20
DMA32_LIMIT = 4 << 30
STRUCT_PAGE_BYTES = 64


@dataclass(frozen=True)
class Zone:
    """A populated zone with everything the allocator needs to decide on it."""

    index: int
    """Position in :attr:`Derived.zones` (the allocator's zone id)."""
    node: int
    type: ZoneType
    start_pfn: int
    spanned: int
    present: int
    managed: int
    wmark_min: int
    wmark_low: int
    wmark_high: int
    lowmem_reserve: tuple[int, ...]
    """``lowmem_reserve[j]``: pages kept free in this zone against allocations whose highest
    usable zone is ``j`` (the "protection" line of /proc/zoneinfo)."""

    @property
    def name(self) -> str:
        return self.type.kname


@dataclass(frozen=True)
class Derived:
    zones: tuple[Zone, ...]
    fallback_order: dict[int, tuple[int, ...]]
    """``Fallback order for Node N`` as the boot log prints it."""
    zonelist: dict[int, tuple[int, ...]]
    """ZONELIST_FALLBACK per node: zone indexes, node-major, highest zone first."""
    policy_zone: ZoneType
    min_free_kbytes: int
    min_free_kbytes_derived: bool

    def zones_of(self, node_id: int) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.node == node_id)

    def boot_log(self) -> list[str]:
        """The kernel log lines about zonelists, as ``dmesg`` shows them."""
        lines = [f"Fallback order for Node {n}: " + " ".join(map(str, order)) + " "
                 for n, order in sorted(self.fallback_order.items())]
        total = sum(z.managed for z in self.zones)
        lines.append(f"Built {len(self.fallback_order)} zonelists, mobility grouping on.  "
                     f"Total pages: {total}")
        lines.append(f"Policy zone: {self.policy_zone.kname}")
        return lines


# ---------------------------------------------------------------------- zones
def default_zones(machine: Machine) -> dict[int, tuple[ZoneSpec, ...]]:
    """Zones of every node, laid out as x86-64 Linux does.

    Memory nodes take physical memory one after another from address 0 in node-id order.
    Page frame 0 is reserved by the firmware, so ZONE_DMA spans pfn 1..4095.  ``managed`` is
    ``present`` less the node's ``struct page`` array (64 bytes per page), charged to the node's
    highest zone; explicit zones in a machine file override all of this.
    """
    page = machine.page_size
    out: dict[int, tuple[ZoneSpec, ...]] = {}
    addr = page  # pfn 0 is never usable RAM
    for node in machine.nodes:
        if node.zones is not None:
            out[node.id] = node.zones
            if node.zones:
                last = max(z.start_pfn + z.spanned for z in node.zones)
                addr = max(addr, last * page)
            continue
        if node.mem_bytes <= 0:
            out[node.id] = ()
            continue
        size = node.mem_bytes - (page if addr == page else 0)
        size -= size % page
        start, end = addr, addr + size
        movable_from = end - (node.movable_bytes - node.movable_bytes % page)
        spans = []
        for ztype, lo, hi in ((ZoneType.DMA, 0, DMA_LIMIT), (ZoneType.DMA32, DMA_LIMIT,
                                                             DMA32_LIMIT),
                              (ZoneType.NORMAL, DMA32_LIMIT, 1 << 62)):
            a, b = max(start, lo), min(end, hi, movable_from)
            if b > a:
                spans.append((ztype, a, b))
        if movable_from < end:
            spans.append((ZoneType.MOVABLE, max(start, movable_from), end))
        memmap = math.ceil((size // page) * STRUCT_PAGE_BYTES / page)
        zones = []
        for k, (ztype, a, b) in enumerate(spans):
            pages = (b - a) // page
            highest = k == len(spans) - 1 or (spans[-1][0] == ZoneType.MOVABLE
                                              and k == len(spans) - 2)
            managed = pages - memmap if highest else pages
            zones.append(ZoneSpec(ztype, a // page, pages, pages, max(managed, 0)))
        out[node.id] = tuple(zones)
        addr = end
    return out


# ---------------------------------------------------------------- zonelists
def find_next_best_node(machine: Machine, node: int, used: set[int], node_load: dict[int, int],
                        cpu_penalty: bool, skip_memoryless_local: bool = True) -> int:
    """``find_next_best_node``: the local node first, then the nearest unused memory node;
    ``node_load`` spreads equidistant nodes across the nodes' zonelists.  Since Linux 6.7 a
    memoryless local node is skipped (its boot log line starts with the nearest memory node;
    seen on the real 6.12); 6.1 still lists it first.

    The kernel's function, one call per step (O(nodes) each); :func:`build_zonelists` gets
    the same answers for all steps of a node at once.  Kept as the reference it is tested
    against."""
    if node not in used and (not skip_memoryless_local or node in machine.memory_nodes):
        used.add(node)
        return node
    min_val, best = None, -1
    for n in machine.memory_nodes:  # ascending ids, as for_each_node_state(N_MEMORY)
        if n in used:
            continue
        val = machine.dist(node, n)
        val += n < node
        if cpu_penalty and machine.node(n).has_cpus:
            val += PENALTY_FOR_NODE_WITH_CPUS
        val *= MAX_NUMNODES
        val += node_load[n]
        if min_val is None or val < min_val:
            min_val, best = val, n
    if best >= 0:
        used.add(best)
    return best


@dataclass(frozen=True)
class _MemoryNodes:
    """``N_MEMORY`` as arrays: ids ascending, their positions in ``machine.nodes``, and
    whether each has CPUs."""

    ids: np.ndarray
    pos: np.ndarray
    has_cpus: np.ndarray

    @classmethod
    def of(cls, machine: Machine) -> _MemoryNodes:
        ids = list(machine.memory_nodes)
        return cls(np.asarray(ids, dtype=np.int64),
                   np.asarray([machine.index_of(n) for n in ids], dtype=np.int64),
                   np.asarray([machine.node(n).has_cpus for n in ids], dtype=np.int64))


def fallback_order(mem: _MemoryNodes, local: int, local_pos: int, dist_row: np.ndarray,
                   node_load: np.ndarray, cpu_penalty: bool, skip_memoryless_local: bool
                   ) -> np.ndarray:
    """Positions (in ``machine.nodes``) of every node :func:`find_next_best_node` returns
    for ``local``, in order, from one sort.

    Within one node's build ``node_load`` changes only for nodes already taken, so the
    nodes after the local one come in ascending order of the kernel's value (distance, +1
    below the local id, +1 with CPUs under ``cpu_penalty``, times MAX_NUMNODES, plus
    node_load); equal values keep ascending id order, as the kernel's strict ``<`` does.
    ``dist_row`` and ``node_load`` are indexed by position."""
    keep = mem.ids != local
    first = [] if skip_memoryless_local and keep.all() else [local_pos]
    ids, pos = mem.ids[keep], mem.pos[keep]
    val = dist_row[pos] + (ids < local)
    if cpu_penalty:
        val = val + mem.has_cpus[keep] * PENALTY_FOR_NODE_WITH_CPUS
    val = val * MAX_NUMNODES + node_load[pos]
    return np.concatenate((np.asarray(first, dtype=np.int64),
                           pos[np.argsort(val, kind="stable")]))


def build_zonelists(machine: Machine, zones_by_node: dict[int, tuple[Zone, ...]],
                    cpu_penalty: bool = False, kernel: str = "6.12"
                    ) -> tuple[dict, dict, ZoneType]:
    """``__build_all_zonelists``: every node's fallback order and zonelist, and policy_zone.

    ``node_load`` is zeroed once and shared by all nodes' builds (node-id order), which is
    what rotates equidistant nodes ("prefer the next node").  One sort per node, O(n^2 log n)
    in all: a 1024-node machine (MAX_NUMNODES) builds in a fraction of a second.
    """
    n = len(machine.nodes)
    node_load = np.zeros(n, dtype=np.int64)
    dist = machine.distance_array()
    ids = np.asarray(machine.node_ids, dtype=np.int64)
    skip = kernel not in ("6.1", "2.6.7")
    # build_zonerefs_node: each node's populated zones, highest first, padded with -1
    own = np.full((n, MAX_NR_ZONES), -1, dtype=np.int64)
    for p, nid in enumerate(machine.node_ids):
        zs = [z.index for z in sorted(zones_by_node.get(nid, ()), key=lambda z: -z.type)
              if z.present > 0]
        own[p, :len(zs)] = zs
    reached = np.zeros(n, dtype=bool)
    orders, zonelists = {}, {}
    mem = _MemoryNodes.of(machine)
    for li, local in enumerate(machine.node_ids):
        row = dist[li]
        p = fallback_order(mem, local, li, row, node_load, cpu_penalty, skip)
        if len(p):  # node_load[nxt] += 1 where the distance changes from the previous node
            d = row[p]
            changed = d != np.concatenate(([row[li]], d[:-1]))
            node_load[p[changed]] += 1
        reached[p] = True
        zl = own[p].ravel()
        orders[local] = tuple(ids[p].tolist())
        zonelists[local] = tuple(zl[zl >= 0].tolist())
    policy_zone = ZoneType.DMA
    for p in np.flatnonzero(reached):  # check_highest_zone over every zone a zonelist holds
        for z in zones_by_node.get(machine.node_ids[p], ()):
            if z.present > 0 and z.type > policy_zone and z.type != ZoneType.MOVABLE:
                policy_zone = z.type
    return orders, zonelists, policy_zone


# --------------------------------------------------------------- watermarks
def calculate_min_free_kbytes(managed_lowmem_pages: int, page_size: int) -> int:
    """``calculate_min_free_kbytes``: sqrt(16 * lowmem kB), clamped to [128, 262144]."""
    lowmem_kbytes = managed_lowmem_pages * (page_size >> 10)
    return min(max(math.isqrt(lowmem_kbytes * 16), 128), 262144)


def setup_per_zone_wmarks(specs: list[tuple[int, ZoneSpec]], min_free_kbytes: int,
                          watermark_scale_factor: int, page_size: int
                          ) -> list[tuple[int, int, int]]:
    """``__setup_per_zone_wmarks``: (min, low, high) for each zone, in the order given."""
    pages_min = min_free_kbytes >> (page_size.bit_length() - 1 - 10)
    lowmem = sum(z.managed for _, z in specs if z.type != ZoneType.MOVABLE)
    out = []
    for _, z in specs:
        tmp = pages_min * z.managed // lowmem if lowmem else 0
        if z.type == ZoneType.MOVABLE:
            wmin = min(max(z.managed // 1024, SWAP_CLUSTER_MAX), 128)
        else:
            wmin = tmp
        step = max(tmp >> 2, z.managed * watermark_scale_factor // 10000)
        out.append((wmin, wmin + step, wmin + 2 * step))
    return out


def setup_per_zone_lowmem_reserve(node_zones: dict[ZoneType, ZoneSpec],
                                  ratios: tuple[int, ...]) -> dict[ZoneType, tuple[int, ...]]:
    """``setup_per_zone_lowmem_reserve`` for one node (zones absent from the dict are empty)."""
    out = {}
    for i in range(MAX_NR_ZONES):
        zi = node_zones.get(ZoneType(i))
        managed_i = zi.managed if zi else 0
        ratio = ratios[i] if i < len(ratios) else 0
        clear = not ratio or not managed_i
        reserve = [0] * MAX_NR_ZONES
        acc = 0
        for j in range(i + 1, MAX_NR_ZONES):
            zj = node_zones.get(ZoneType(j))
            acc += zj.managed if zj else 0
            reserve[j] = 0 if clear else acc // ratio
        out[ZoneType(i)] = tuple(reserve)
    return out


def derive(machine: Machine, cpu_penalty: bool = False, kernel: str = "6.12") -> Derived:
    specs_by_node = default_zones(machine)
    flat = [(nid, z) for nid in machine.node_ids for z in sorted(specs_by_node[nid],
                                                                  key=lambda z: z.type)]
    lowmem = sum(z.managed for _, z in flat if z.type != ZoneType.MOVABLE)
    mfk_derived = machine.min_free_kbytes is None
    mfk = (calculate_min_free_kbytes(lowmem, machine.page_size) if mfk_derived
           else machine.min_free_kbytes)
    marks = setup_per_zone_wmarks(flat, mfk, machine.watermark_scale_factor, machine.page_size)
    reserves = {nid: setup_per_zone_lowmem_reserve({z.type: z for z in specs_by_node[nid]},
                                                    machine.lowmem_reserve_ratio)
                for nid in machine.node_ids}
    zones = []
    for k, ((nid, z), (wmin, wlow, whigh)) in enumerate(zip(flat, marks, strict=True)):
        zones.append(Zone(k, nid, z.type, z.start_pfn, z.spanned, z.present, z.managed,
                          wmin, wlow, whigh, reserves[nid][z.type]))
    by_node: dict[int, tuple[Zone, ...]] = {nid: () for nid in machine.node_ids}
    for z in zones:
        by_node[z.node] += (z,)
    orders, zonelists, policy_zone = build_zonelists(machine, by_node, cpu_penalty, kernel)
    return Derived(tuple(zones), orders, zonelists, policy_zone, mfk, mfk_derived)


_BOOTS: dict[int, tuple[weakref.ref, dict[str, Derived]]] = {}


def boot_state(machine: Machine, linux: str = "6.12") -> Derived:
    """What kernel generation ``linux`` derives when it boots on ``machine`` (boot-time
    zonelists, no CPU penalty).  The machine stays a hardware description: this is the
    simulated kernel's view, remembered here per machine object and generation (a machine
    is frozen, so its boot cannot change) because loading, ``topo show`` and every run of a
    sweep ask for it again."""
    key = id(machine)
    entry = _BOOTS.get(key)
    if entry is None or entry[0]() is not machine:
        entry = (weakref.ref(machine), {})
        _BOOTS[key] = entry
        weakref.finalize(machine, _BOOTS.pop, key, None)
    by_gen = entry[1]
    if linux not in by_gen:
        by_gen[linux] = derive(machine, kernel=linux)
    return by_gen[linux]


def node_zone_specs(node: Node) -> tuple[ZoneSpec, ...]:
    return node.zones or ()
