"""Memory tiers and demotion targets, as ``mm/memory-tiers.c`` derives them at boot.

Read beside ``mm/memory-tiers.c`` (``memory_tier_init``, ``memory_tier_late_init``,
``set_node_memory_tier``, ``mt_set_default_dram_perf``, ``mt_perf_to_adistance``,
``establish_demotion_targets``, ``next_demotion_node``, ``node_get_allowed_targets``,
``node_is_toptier``), ``drivers/acpi/numa/hmat.c`` (``hmat_calculate_adistance``) and
``drivers/dax/kmem.c``.  The facts are in the project's
``linux-numa-balancing-facts.md`` section 2.1.

Every memory node gets an *abstract distance* (adistance; smaller = faster).  Nodes whose
adistance falls in the same ``MEMTIER_CHUNK_SIZE`` (128) chunk form one tier, named
``memory_tier<adistance >> 7>`` in ``/sys/devices/virtual/memory_tiering/``.

Where the adistance comes from, per kernel generation:

* **6.1**: every node online at boot gets the default DRAM type, 576 (``memory_tier4``),
  whatever the firmware says.  Only nodes onlined later by ``dax/kmem`` get 2880
  (``MEMTIER_DEFAULT_DAX_ADISTANCE``, ``memory_tier22``).
* **6.12**: nodes with CPUs get 576 at ``memory_tier_init``.  CPU-less nodes wait for
  ``memory_tier_late_init``, where the HMAT algorithm computes
  ``576 * (rlat + wlat) / (rlat_d + wlat_d) * (rbw_d + wbw_d) / (rbw + wbw)`` (integers, left
  to right; ``_d`` = the CPU+memory nodes' figures, which must agree within 10 %, or the
  algorithm is disabled).  Without performance data a node keeps 576 (2880 for dax/kmem).
* **2.6.7**: no memory tiers (the code is from 2022).

What numasim takes as the machine's data:

* *dax/kmem*: memory of kind ``CXL`` or ``NVM`` is taken as onlined by ``dax/kmem``
  (``daxctl reconfigure-device --mode=system-ram``), the way Linux onlines CXL expanders and
  PMem as NUMA nodes; DRAM and HBM are boot memory.
* *performance attributes* (HMAT's access class 1, the best CPU initiators): a node's
  coordinates are the best latency (lowest) and bandwidth (highest) any node with CPUs has to
  it in the machine's latency and bandwidth matrices -- only when both matrices were given
  (a machine YAML, a sysfs tree or hwloc file with HMAT data, a layout with ``hmat-lb``), not
  derived from the SLIT.  The matrices hold one latency and one (read) bandwidth per pair, so
  write figures equal read figures; Linux's formula adds read and write, which gives the same
  ratio.  Latency is rounded up to whole ns, bandwidth to whole MB/s, as HMAT stores them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from numasim.topology.model import MemKind

MEMTIER_CHUNK_BITS = 7
MEMTIER_CHUNK_SIZE = 1 << MEMTIER_CHUNK_BITS
MEMTIER_ADISTANCE_DRAM = 4 * MEMTIER_CHUNK_SIZE + (MEMTIER_CHUNK_SIZE >> 1)
MEMTIER_DEFAULT_DAX_ADISTANCE = MEMTIER_ADISTANCE_DRAM * 5
PENALTY_FOR_NODE_WITH_CPUS = 1
MAX_NUMNODES = 1024
MEMORY_TIERING_DIR = "/sys/devices/virtual/memory_tiering"
DEMOTION_ENABLED = "/sys/kernel/mm/numa/demotion_enabled"
KMEM_KINDS = (MemKind.CXL, MemKind.NVM)


@dataclass(frozen=True)
class AccessCoordinate:
    """``struct access_coordinate``: latency in ns, bandwidth in MB/s (HMAT's units)."""

    read_latency: int
    write_latency: int
    read_bandwidth: int
    write_bandwidth: int


@dataclass(frozen=True)
class MemoryTier:
    """``struct memory_tier``: one chunk of abstract distance and the nodes in it."""

    adistance_start: int
    nodes: tuple[int, ...]
    lower_tier_mask: tuple[int, ...]
    """Every node of every slower tier (the fallback of demotion allocations)."""

    @property
    def dev_id(self) -> int:
        return self.adistance_start >> MEMTIER_CHUNK_BITS

    @property
    def name(self) -> str:
        """The sysfs directory name, ``memory_tier<dev_id>``."""
        return f"memory_tier{self.dev_id}"


@dataclass(frozen=True)
class MemoryTiers:
    """Everything ``mm/memory-tiers.c`` holds after boot for one kernel generation."""

    kernel: str
    adistance: dict[int, int]
    """Abstract distance of every memory node."""
    tiers: tuple[MemoryTier, ...]
    """The ``memory_tiers`` list, fastest first."""
    node_demotion: dict[int, tuple[int, ...]]
    """``node_demotion[nid].preferred`` for every memory node (empty: no target)."""
    top_tier_adistance: int
    """End of the slowest tier holding a node with CPUs (``node_is_toptier``); 0 when no
    tier holds one (the kernel's static initial value)."""
    dram_perf: AccessCoordinate | None = None
    """The reference DRAM performance (``default_dram_perf``), if the HMAT algorithm ran."""
    log: tuple[str, ...] = field(default=())
    """Kernel log lines of the derivation (what ``dmesg`` shows)."""

    def memory_tier_of(self, nid: int) -> MemoryTier | None:
        """``__node_get_memory_tier``."""
        return next((t for t in self.tiers if nid in t.nodes), None)

    def node_is_toptier(self, nid: int) -> bool:
        """``node_is_toptier``: a node without a tier, or in a tier no slower than the
        slowest tier with CPUs."""
        t = self.memory_tier_of(nid)
        return t is None or t.adistance_start <= self.top_tier_adistance

    def node_get_allowed_targets(self, nid: int) -> tuple[int, ...]:
        """``node_get_allowed_targets``: the lower-tier mask of the node's tier."""
        t = self.memory_tier_of(nid)
        return t.lower_tier_mask if t is not None else ()

    def next_demotion_node(self, nid: int, rng: random.Random) -> int:
        """``next_demotion_node``: a random preferred target, or -1 (NUMA_NO_NODE)."""
        pref = self.node_demotion.get(nid, ())
        if not pref:
            return -1
        return pref[rng.randrange(len(pref))] if len(pref) > 1 else pref[0]

    def sysfs_files(self) -> dict[str, str]:
        """``/sys/devices/virtual/memory_tiering/memory_tierN/nodelist`` for every tier."""
        from numasim.bitmap import format_list

        return {f"{MEMORY_TIERING_DIR}/{t.name}/nodelist": format_list(t.nodes) + "\n"
                for t in self.tiers}

    def describe(self) -> list[str]:
        """Tiers and demotion targets, for ``numasim topo show``."""
        from numasim.bitmap import format_list

        if not self.tiers:
            return [f"Memory tiers ({self.kernel}): none (mm/memory-tiers.c is Linux 6.1+)"]
        out = [f"Memory tiers ({self.kernel}; {MEMORY_TIERING_DIR}/memory_tierN/nodelist):"]
        for t in self.tiers:
            ad = ", ".join(f"node {n} adistance {self.adistance[n]}" for n in t.nodes)
            top = "  (top tier)" if t.adistance_start <= self.top_tier_adistance else ""
            out.append(f"  {t.name:<15} {format_list(t.nodes):<8} {ad}{top}")
        out.append("Demotion targets (no sysfs file; 6.12 logs them at boot, 6.1 does not):")
        for nid in sorted(self.adistance):
            pref = self.node_demotion.get(nid, ())
            allowed = self.node_get_allowed_targets(nid)
            out.append(f"  Node {nid}: " + (f"preferred: {format_list(pref)}, fallback: "
                                             f"{format_list(allowed)}" if pref else "null"))
        return out


def node_perf(machine) -> dict[int, AccessCoordinate] | None:
    """Each memory node's HMAT-like coordinates (best CPU initiator), or None when the
    machine's latency or bandwidth matrix was derived rather than given (no HMAT)."""
    if "latency" in machine.derived or "bandwidth" in machine.derived:
        return None
    cpu_pos = [machine.index_of(n) for n in machine.cpu_nodes]
    if not cpu_pos:
        return None
    out = {}
    for nid in machine.memory_nodes:
        j = machine.index_of(nid)
        lat = math.ceil(min(machine.latency_ns[i][j] for i in cpu_pos) - 1e-9)
        bw = round(max(machine.bandwidth_GBps[i][j] for i in cpu_pos) * 1000)
        out[nid] = AccessCoordinate(lat, lat, bw, bw)
    return out


def _within_10pct(a: int, ref: int) -> bool:
    return abs(a - ref) * 10 <= ref


def default_dram_perf(machine, perf: dict[int, AccessCoordinate] | None
                      ) -> tuple[AccessCoordinate | None, list[str]]:
    """``hmat_set_default_dram_perf`` / ``mt_set_default_dram_perf``: the reference from the
    nodes with CPUs and memory; None (algorithm disabled) when one is missing or off by more
    than 10 % in any attribute from the first."""
    if perf is None:
        return None, []
    ref_nid, ref = -1, None
    for nid in machine.memory_nodes:
        if not machine.node(nid).has_cpus:
            continue
        p = perf[nid]
        if p.read_latency + p.write_latency == 0 or p.read_bandwidth + p.write_bandwidth == 0:
            return None, []
        if ref is None:
            ref_nid, ref = nid, p
            continue
        if not all(_within_10pct(getattr(p, a), getattr(ref, a)) for a in (
                "read_latency", "write_latency", "read_bandwidth", "write_bandwidth")):
            return None, [
                f"memory-tiers: the performance of DRAM node {nid} mismatches that of the "
                f"reference DRAM node {ref_nid}.",
                "  disable default DRAM node performance based abstract distance algorithm."]
    return ref, []


def mt_perf_to_adistance(perf: AccessCoordinate, ref: AccessCoordinate) -> int | None:
    """``mt_perf_to_adistance``, in the kernel's integer order of operations."""
    if perf.read_latency + perf.write_latency == 0 or \
            perf.read_bandwidth + perf.write_bandwidth == 0:
        return None
    adist = MEMTIER_ADISTANCE_DRAM * (perf.read_latency + perf.write_latency)
    adist //= ref.read_latency + ref.write_latency
    adist *= ref.read_bandwidth + ref.write_bandwidth
    return adist // (perf.read_bandwidth + perf.write_bandwidth)


def node_adistance(machine, kernel: str) -> tuple[dict[int, int], AccessCoordinate | None,
                                                   list[str]]:
    """Abstract distance of every memory node for a kernel generation (module docstring)."""
    out: dict[int, int] = {}
    ref, log = None, []
    if kernel == "6.12":
        perf = node_perf(machine)
        ref, log = default_dram_perf(machine, perf)
    for nid in machine.memory_nodes:
        node = machine.node(nid)
        adist = MEMTIER_DEFAULT_DAX_ADISTANCE if node.kind in KMEM_KINDS else \
            MEMTIER_ADISTANCE_DRAM
        if kernel == "6.12" and ref is not None and (not node.has_cpus
                                                     or node.kind in KMEM_KINDS):
            calc = mt_perf_to_adistance(perf[nid], ref)
            if calc is not None:
                adist = calc
        out[nid] = adist
    return out, ref, log


def boot_node_load(machine, fallback_order: dict[int, tuple[int, ...]]) -> dict[int, int]:
    """``node_load[]`` as ``build_zonelists`` leaves it after boot, replayed from the
    fallback orders (one increment where the distance changes), for
    :func:`find_next_best_node`'s tie-break."""
    dist = machine.distance_array()
    load = np.zeros(len(machine.nodes), dtype=np.int64)
    for li, local in enumerate(machine.node_ids):
        order = np.asarray([machine.index_of(n) for n in fallback_order.get(local, ())],
                           dtype=np.int64)
        if len(order):
            d = dist[li, order]
            changed = d != np.concatenate(([dist[li, li]], d[:-1]))
            np.add.at(load, order[changed], 1)
    return {nid: int(load[i]) for i, nid in enumerate(machine.node_ids)}


def find_next_best_node(machine, node: int, used: set[int], node_load: dict[int, int]) -> int:
    """``find_next_best_node`` after boot: CPUs are online, so nodes with CPUs pay
    ``PENALTY_FOR_NODE_WITH_CPUS``.  One call, as the kernel makes it (the reference
    :func:`establish_demotion_targets` is tested against)."""
    if node not in used:
        used.add(node)
        return node
    best, min_val = -1, None
    for n in machine.memory_nodes:
        if n in used:
            continue
        val = machine.dist(node, n) + (n < node)
        if machine.node(n).has_cpus:
            val += PENALTY_FOR_NODE_WITH_CPUS
        val = val * MAX_NUMNODES + node_load[n]
        if min_val is None or val < min_val:
            min_val, best = val, n
    if best >= 0:
        used.add(best)
    return best


def establish_demotion_targets(machine, tiers: list[tuple[int, list[int]]],
                               node_load: dict[int, int]) -> dict[int, tuple[int, ...]]:
    """``establish_demotion_targets``: each node's preferred targets = the nodes of the next
    slower tier that repeated :func:`find_next_best_node` calls return first, up to the first
    one whose distance differs from the first one's (ties kept).

    The calls only ever remove the node they return, so their sequence is the candidates
    sorted by the kernel's value (ascending ids on equal values, as its strict ``<``): one
    sort per node instead of one scan per call."""
    where = {n: k for k, (_, nodes) in enumerate(tiers) for n in nodes}
    out: dict[int, tuple[int, ...]] = {}
    cand_arrays = []
    for _, nodes in tiers:
        ids = np.asarray(sorted(nodes), dtype=np.int64)
        cpus = np.asarray([machine.node(n).has_cpus for n in ids], dtype=np.int64)
        load = np.asarray([node_load[n] for n in ids], dtype=np.int64)
        pos = np.asarray([machine.index_of(n) for n in ids], dtype=np.int64)
        cand_arrays.append((ids, cpus, load, pos))
    dist = machine.distance_array()
    for nid in machine.memory_nodes:
        k = where[nid]
        if k == len(tiers) - 1:
            out[nid] = ()
            continue
        ids, cpus, load, pos = cand_arrays[k + 1]
        d = dist[machine.index_of(nid), pos]
        val = (d + (ids < nid) + cpus * PENALTY_FOR_NODE_WITH_CPUS) * MAX_NUMNODES + load
        order = np.argsort(val, kind="stable")
        ds = d[order]
        differs = ds != ds[0]
        n = int(np.argmax(differs)) if differs.any() else len(ds)
        out[nid] = tuple(sorted(ids[order[:n]].tolist()))
    return out


def memory_tiers(machine, kernel: str, fallback_order: dict[int, tuple[int, ...]]
                 ) -> MemoryTiers:
    """Tiers, top tier and demotion targets of ``machine`` booted by ``kernel``.

    ``fallback_order`` is the boot's ``Fallback order for Node N`` (the kernel's own
    zonelists for that generation), whose ``node_load`` breaks ties between equidistant
    targets as in the kernel."""
    if kernel not in ("6.12", "6.1"):
        return MemoryTiers(kernel, {}, (), {}, 0)
    adist, ref, log = node_adistance(machine, kernel)
    chunks: dict[int, list[int]] = {}
    for nid, a in sorted(adist.items()):
        chunks.setdefault(a >> MEMTIER_CHUNK_BITS << MEMTIER_CHUNK_BITS, []).append(nid)
    order = sorted(chunks.items())
    top = 0  # the static top_tier_adistance starts at 0 when no tier holds a CPU node
    for start, nodes in reversed(order):
        if any(machine.node(n).has_cpus for n in nodes):
            top = start + MEMTIER_CHUNK_SIZE - 1
            break
    if len(order) > 1:  # node_load costs O(nodes^2): only when there is a slower tier
        preferred = establish_demotion_targets(machine, order,
                                               boot_node_load(machine, fallback_order))
    else:
        preferred = {nid: () for nid in adist}
    tiers = []
    for k, (start, nodes) in enumerate(order):
        lower = sorted(n for _, ns in order[k + 1:] for n in ns)
        tiers.append(MemoryTier(start, tuple(nodes), tuple(lower)))
    mt = MemoryTiers(kernel, adist, tuple(tiers), preferred, top, ref)
    if kernel == "6.12":
        log = log + demotion_log(mt)
    return MemoryTiers(kernel, adist, tuple(tiers), preferred, top, ref, tuple(log))


def demotion_log(mt: MemoryTiers) -> list[str]:
    """6.12's ``dump_demotion_targets`` lines ("Demotion targets for Node N: ...")."""
    from numasim.bitmap import format_list

    out = []
    for nid in sorted(mt.adistance):
        pref = mt.node_demotion.get(nid, ())
        if not pref:
            out.append(f"Demotion targets for Node {nid}: null")
        else:
            out.append(f"Demotion targets for Node {nid}: preferred: {format_list(pref)}, "
                       f"fallback: {format_list(mt.node_get_allowed_targets(nid))}")
    return out


# ------------------------------------------------------------------ sysfs files
def kstrtobool(value: str) -> bool | None:
    """``kstrtobool``: y/Y/t/T/1 and on are true, n/N/f/F/0 and off false; else None."""
    s = value.strip("\n")
    if not s:
        return None
    c = s[0]
    if c in "yYtT1":
        return True
    if c in "nNfF0":
        return False
    if c in "oO" and len(s) > 1:
        return {"n": True, "N": True, "f": False, "F": False}.get(s[1])
    return None


def sysfs_read(kernel, path: str) -> list[str] | None:
    """``cat`` of a memory-tiering file (``nodelist_show``, ``demotion_enabled_show``) of a
    booted :class:`~numasim.mm.kernel.Kernel`; None when ``path`` is not one of them.
    Raises ``OSError(ENOENT)`` for a tier that does not exist."""
    import errno

    mt = kernel.memory_tiers
    if path == DEMOTION_ENABLED or path.startswith(MEMORY_TIERING_DIR + "/") \
            or path == MEMORY_TIERING_DIR:
        if not mt.tiers:  # 2.6.7: no memory-tiers.c
            raise OSError(errno.ENOENT, "ENOENT")
        if path == DEMOTION_ENABLED:
            return ["true" if kernel.demotion_enabled else "false"]
        files = mt.sysfs_files()
        if path in files:
            return [files[path].rstrip("\n")]
        if path == MEMORY_TIERING_DIR or path.rsplit("/", 1)[0] + "/nodelist" in files:
            raise OSError(errno.EISDIR, "EISDIR")
        raise OSError(errno.ENOENT, "ENOENT")
    return None


def sysfs_write(kernel, path: str, value: str) -> bool:
    """``write`` of ``demotion_enabled`` (``demotion_enabled_store``, kstrtobool: EINVAL
    otherwise).  The nodelist files are read-only: kernfs refuses to open them for writing
    (EACCES), even for root.  False when ``path`` is not a memory-tiering file."""
    import errno

    if sysfs_read(kernel, path) is None:
        return False
    if path != DEMOTION_ENABLED:
        raise OSError(errno.EACCES, "EACCES")
    v = kstrtobool(value)
    if v is None:
        raise OSError(errno.EINVAL, "EINVAL")
    kernel.demotion_enabled = v
    return True
