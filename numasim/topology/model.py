"""The machine: nodes, CPUs, memory, zones, distances, latency and bandwidth.

A :class:`Machine` is what every loader produces and every other part reads.  It is frozen and
made of tuples, so two machines compare equal exactly when they describe the same hardware
(the YAML round trip relies on this).  Matrices are indexed by a node's *position* in
``nodes`` (sorted by id), not by its id: real machines have node ids with gaps (node 252).

The machine is hardware only.  What Linux derives from it at boot (zone layout, fallback
zonelists, policy_zone, watermarks) depends on the kernel generation too, and is the simulated
kernel's: :func:`numasim.topology.derive.boot_state` (``KernelState.derived`` of a running
kernel).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from functools import cached_property

import numpy as np

from numasim.memctrl.base import ControllerSpec

PAGE_SIZE = 4096
HUGE_PAGE_SIZE = 2 << 20
CACHE_LINE = 64

LOCAL_DISTANCE = 10
REMOTE_DISTANCE = 20


class ZoneType(IntEnum):
    """x86-64 zone indexes, as ``enum zone_type`` numbers them (no HIGHMEM on 64-bit)."""

    DMA = 0
    DMA32 = 1
    NORMAL = 2
    MOVABLE = 3
    DEVICE = 4

    @property
    def kname(self) -> str:
        """The name /proc/zoneinfo and the boot log use."""
        return {0: "DMA", 1: "DMA32", 2: "Normal", 3: "Movable", 4: "Device"}[int(self)]

    @classmethod
    def from_name(cls, name: str) -> ZoneType:
        for z in cls:
            if z.kname.lower() == name.strip().lower() or z.name.lower() == name.strip().lower():
                return z
        raise ValueError(f"unknown zone {name!r}; valid: DMA, DMA32, Normal, Movable")


MAX_NR_ZONES = 5


class MemKind(StrEnum):
    """What a node's memory is made of; decides derived latency/bandwidth defaults."""

    DRAM = "DRAM"
    HBM = "HBM"
    CXL = "CXL"
    NVM = "NVM"


@dataclass(frozen=True)
class ZoneSpec:
    """One populated zone of a node, in pages of ``Machine.page_size``.

    ``managed`` is what the buddy allocator owns after boot-time reservations (memmap, kernel
    image, firmware); watermarks are computed from it, as Linux does.
    """

    type: ZoneType
    start_pfn: int
    spanned: int
    present: int
    managed: int


@dataclass(frozen=True)
class Node:
    """A NUMA node: CPUs (possibly none), memory (possibly none) and what kind it is."""

    id: int
    cpus: tuple[int, ...] = ()
    mem_bytes: int = 0
    kind: MemKind = MemKind.DRAM
    zones: tuple[ZoneSpec, ...] | None = None
    """Explicit zones; ``None`` means derive them from ``mem_bytes`` as x86-64 Linux lays
    physical memory out."""
    mc_bandwidth_GBps: float | None = None
    """Memory-controller bandwidth; ``None`` means the bandwidth-matrix diagonal."""
    movable_bytes: int = 0
    """Memory of this node placed in ZONE_MOVABLE (like ``movable_node``/``movablecore=``)."""
    free_bytes: int | None = None
    """Free memory as the source reported it (``numactl --hardware`` "free"); informative."""
    memory_controller: ControllerSpec | None = None
    """This node's controller model (:mod:`numasim.memctrl`); ``None`` = the machine's."""
    mc_write_bandwidth_GBps: float | None = None
    """Write bandwidth of the node's memory (a CXL or PMem device writes slower than it
    reads); ``None`` = the same as its read bandwidth (:meth:`Machine.mc_bandwidth`).  Reads
    and writes share the device: a written line occupies it ``read / write`` times as long."""
    device_latency_ns: float | None = None
    """The part of the idle latency to this node spent inside the memory device (a CXL
    controller and its media).  The latency matrix holds the whole idle latency, as measured
    ones do, so this is a statement about it (shown by ``topo show``; a YAML whose matrix
    entry to the node is below it is rejected), not a cost added on top."""

    @property
    def has_cpus(self) -> bool:
        return bool(self.cpus)

    @property
    def has_memory(self) -> bool:
        return self.mem_bytes > 0 or bool(self.zones and any(z.present for z in self.zones))


PROTOCOL_FIELDS = {
    "data_header_bytes": "bytes of header each 64-byte data line carries on the link "
                         "(a header flit or slot), counted against the link's bandwidth",
    "request_bytes": "bytes of the request message a read or read-for-ownership sends "
                     "towards the memory's node (the opposite direction of its data)",
    "completion_bytes": "bytes of the completion the memory's node sends back for every "
                        "line written to it (the opposite direction of the write's data)",
    "snoop_bytes": "bytes of a snoop and of its response (coherence: broadcast only)",
}


@dataclass(frozen=True)
class LinkProtocol:
    """What a cache line costs on a link beyond its 64 bytes of data: the header of every
    data message, the request message of every read (on the opposite direction), the
    completion of every write (likewise), and the coherence model: ``directory`` (the
    home's directory knows that streamed lines are cached nowhere else: no snoops, as on
    Intel UPI, which supports only directory-based home snoop) or ``broadcast`` (home snoop
    without a directory, QPI's other modes: every read or read-for-ownership to a node's
    memory snoops every other CPU node, a snoop message out and a response back, on the
    links between them).  Presets: :data:`LINK_PROTOCOLS`.  Bytes are counted in the link's
    stated bandwidth, which (as vendors state it) counts data payload only."""

    name: str = field(default="custom", compare=False)
    data_header_bytes: float = 0.0
    request_bytes: float = 0.0
    completion_bytes: float = 0.0
    coherence: str = "directory"
    snoop_bytes: float = 0.0


COHERENCE_MODELS = ("directory", "broadcast")

# QPI (Wikipedia "Intel QuickPath Interconnect", Implementation): an 80-bit flit carries 64
# bits of data, 8 of CRC and 8 of link-layer header; advertised bandwidth counts the 64 data
# bits.  A 64-byte data message is a header flit + 8 data flits (9 flits: 72 B of advertised
# bandwidth), a request, snoop, response or completion is one header flit (8 B).  UPI
# (Skylake-SP and later) keeps QPI's message classes and directory-based home snoop with "a
# new packetization format" that Intel says is more efficient; no public source here gives
# its slot packing, so `upi` uses QPI's sizes (an upper bound on the overhead).  CXL.mem in
# 68-byte flit mode (CXL 2.0; 4 slots of 16 B + 2 B CRC + 2 B protocol id, the UCIe "Format
# 2" of the same spec): a 64 B line fills the 4 slots of one all-data flit and needs a header
# slot in another (80 B of slots), a request (M2S Req) or a completion (S2M NDR) one slot;
# the 68/64 framing is counted in each, and CXL is a memory protocol, not a coherent one.
LINK_PROTOCOLS: dict[str, LinkProtocol] = {
    "none": LinkProtocol("none"),
    "qpi": LinkProtocol("qpi", 8.0, 8.0, 8.0, "broadcast", 8.0),
    "upi": LinkProtocol("upi", 8.0, 8.0, 8.0, "directory", 8.0),
    "cxl": LinkProtocol("cxl", 80.0 * 68.0 / 64.0 - 64.0, 16.0 * 68.0 / 64.0,
                        16.0 * 68.0 / 64.0, "directory", 0.0),
}


@dataclass(frozen=True)
class Link:
    """An interconnect link between two nodes, for contention modelling: ``bandwidth_GBps``
    carries data from ``a`` to ``b``, and from ``b`` to ``a`` too unless
    ``bandwidth_ba_GBps`` gives that direction its own bandwidth (real interconnects can be
    asymmetric)."""

    a: int
    b: int
    bandwidth_GBps: float
    latency_ns: float = 0.0
    bandwidth_ba_GBps: float | None = None
    protocol: LinkProtocol | None = None
    """Per-message costs (:class:`LinkProtocol`); ``None``: the link carries data only."""

    def bandwidth_towards(self, src: int, dst: int) -> float:
        """GB/s for data flowing from node ``src`` to node ``dst`` (the link's two ends)."""
        if (src, dst) == (self.b, self.a) and self.bandwidth_ba_GBps is not None:
            return self.bandwidth_ba_GBps
        return self.bandwidth_GBps

    @property
    def symmetric(self) -> bool:
        return self.bandwidth_ba_GBps is None or self.bandwidth_ba_GBps == self.bandwidth_GBps


@dataclass(frozen=True)
class Machine:
    """A NUMA machine as the simulator sees it."""

    name: str
    nodes: tuple[Node, ...]
    distance: tuple[tuple[int, ...], ...]
    """SLIT, ``distance[i][j]`` between ``nodes[i]`` and ``nodes[j]``."""
    latency_ns: tuple[tuple[float, ...], ...]
    """Idle load latency from the CPUs of ``nodes[i]`` to the memory of ``nodes[j]``."""
    bandwidth_GBps: tuple[tuple[float, ...], ...]
    """Read bandwidth from all CPUs of ``nodes[i]`` to the memory of ``nodes[j]``."""
    links: tuple[Link, ...] = ()
    cpu_ghz: float = 2.0
    page_size: int = PAGE_SIZE
    huge_page_size: int = HUGE_PAGE_SIZE
    cache_line: int = CACHE_LINE
    min_free_kbytes: int | None = None
    """``vm.min_free_kbytes``; ``None`` derives it as Linux does at boot."""
    watermark_scale_factor: int = 10
    lowmem_reserve_ratio: tuple[int, ...] = (256, 256, 32, 0, 0)
    wi_weights: tuple[int, ...] | None = None
    """Weighted-interleave weights per node position (sysfs ``weighted_interleave/nodeN``);
    ``None`` = 1 for every node."""
    numa_balancing: tuple[tuple[str, int], ...] = ()
    """``kernel.numa_balancing`` and its scan knobs as the machine YAML sets them, as
    (name, value) pairs (``numa_balancing``, ``scan_delay_ms``...); () = off, Linux's
    defaults (see :mod:`numasim.mm.numa_balancing`)."""
    thp: str = "never"
    """``/sys/kernel/mm/transparent_hugepage/enabled`` at boot: ``always``, ``madvise`` or
    ``never`` (numasim's default, as the oracle boots; Debian's is ``always``; see
    :mod:`numasim.mm.huge_memory`)."""
    thp_defrag: str = "madvise"
    """``/sys/kernel/mm/transparent_hugepage/defrag`` at boot (Linux's default ``madvise``):
    which reclaim a THP fault may do (:func:`numasim.mm.huge_memory.vma_thp_gfp_mask`)."""
    khugepaged: tuple[tuple[str, int], ...] = ()
    """khugepaged's knobs at boot as (name, value) pairs, named as the files under
    ``/sys/kernel/mm/transparent_hugepage/khugepaged/`` (YAML ``kernel: khugepaged:``);
    () = Linux's defaults (:mod:`numasim.mm.khugepaged`)."""
    memory_controller: ControllerSpec | None = None
    """The controller model of every node that names none (:mod:`numasim.memctrl`);
    ``None`` = ``fifo``."""
    swap_pages: int = 0
    """Size of the swap device in pages (YAML ``kernel: swap``); 0 = no swap, as the
    oracle boots.  Reclaim (:mod:`numasim.mm.vmscan`) writes anonymous pages there when it
    cannot demote them."""
    demotion_enabled: bool = False
    """``/sys/kernel/mm/numa/demotion_enabled`` at boot (YAML ``kernel:
    demotion_enabled``; Linux's default is false): reclaim demotes to the next memory tier
    instead of swapping (:mod:`numasim.mm.vmscan`)."""
    boot_used: tuple[tuple[int, int], ...] = ()
    """(node, pages) the booted system itself holds when a workload starts (init, shell,
    rootfs, slab: managed but not free); oracle layouts set it from the recorded ``zones``
    lines (:mod:`numasim.topology.loaders.layout`), () = every managed page is free."""
    derived: frozenset[str] = frozenset()
    """Which of ``distance``, ``latency``, ``bandwidth`` were not given and were derived."""
    source: str = field(default="", compare=False)
    """Where the description came from (file and format); informative, not compared."""
    description: str = field(default="", compare=False)
    """What the machine is, for people (the YAML ``description``); not compared."""
    notes: tuple[str, ...] = field(default=(), compare=False)

    # ------------------------------------------------------------------ lookups
    @cached_property
    def node_ids(self) -> tuple[int, ...]:
        return tuple(n.id for n in self.nodes)

    @cached_property
    def _index(self) -> dict[int, int]:
        return {n.id: i for i, n in enumerate(self.nodes)}

    def index_of(self, node_id: int) -> int:
        """Position of a node id in ``nodes`` (and in the matrices)."""
        return self._index[node_id]

    def node(self, node_id: int) -> Node:
        return self.nodes[self._index[node_id]]

    @property
    def nr_node_ids(self) -> int:
        """One more than the highest node id, as the kernel's ``nr_node_ids``."""
        return max(self.node_ids) + 1

    @cached_property
    def cpus(self) -> tuple[int, ...]:
        return tuple(sorted(c for n in self.nodes for c in n.cpus))

    @cached_property
    def cpu_to_node(self) -> dict[int, int]:
        return {c: n.id for n in self.nodes for c in n.cpus}

    @cached_property
    def memory_nodes(self) -> tuple[int, ...]:
        """``N_MEMORY``: node ids that have memory."""
        return tuple(n.id for n in self.nodes if n.has_memory)

    @cached_property
    def cpu_nodes(self) -> tuple[int, ...]:
        return tuple(n.id for n in self.nodes if n.has_cpus)

    def dist(self, a: int, b: int) -> int:
        """SLIT distance between node ids ``a`` and ``b`` (``node_distance``)."""
        return self.distance[self._index[a]][self._index[b]]

    def distance_array(self) -> np.ndarray:
        return np.array(self.distance, dtype=np.int64)

    def latency_array(self) -> np.ndarray:
        return np.array(self.latency_ns, dtype=np.float64)

    def bandwidth_array(self) -> np.ndarray:
        return np.array(self.bandwidth_GBps, dtype=np.float64)

    def mc_bandwidth(self, node_id: int) -> float:
        n = self.node(node_id)
        if n.mc_bandwidth_GBps is not None:
            return n.mc_bandwidth_GBps
        i = self._index[node_id]
        return self.bandwidth_GBps[i][i]

    def controller_spec(self, node_id: int) -> ControllerSpec | None:
        """The memory-controller model of a node: its own, else the machine's (None: fifo)."""
        own = self.node(node_id).memory_controller
        return own if own is not None else self.memory_controller

    def mc_write_bandwidth(self, node_id: int) -> float:
        """Bandwidth of writes to the node's memory (its read bandwidth unless it says)."""
        n = self.node(node_id)
        if n.mc_write_bandwidth_GBps is not None:
            return n.mc_write_bandwidth_GBps
        return self.mc_bandwidth(node_id)

    def weight(self, node_id: int) -> int:
        """Weighted-interleave weight of a node (0/unset reads as 1, as Linux does)."""
        if self.wi_weights is None:
            return 1
        return self.wi_weights[self._index[node_id]] or 1

    @property
    def total_mem_bytes(self) -> int:
        return sum(n.mem_bytes for n in self.nodes)

    def with_changes(self, **changes) -> Machine:
        return replace(self, **changes)
