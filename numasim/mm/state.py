"""The simulated kernel's memory-management state, as numpy arrays.

This is the source of truth.  The numba allocator core (:mod:`numasim.mm.alloc_core`) and its
plain-Python twin (:mod:`numasim.mm.alloc_ref`) read and update these arrays directly, the
system calls (:mod:`numasim.mm.syscalls`) edit them between faults, and the timing engine
faults pages from inside its own jitted loops with the same arrays.  Python objects elsewhere
(``Vma``, ``MemPolicy``...) are views for people.

Tables are 2-D ``int64`` arrays, one row per object and one column per field; the column
numbers are the module constants below (numba folds them into the compiled code).  A row whose
``*_ALIVE`` column is 0 is free.  Node-indexed arrays have ``nr_node_ids`` entries, indexed by
node id (ids may have gaps).

Virtual memory: each ``mmap`` makes a *region* (a fixed virtual range of one mm) with a slice
of the page-table arrays ``pt_page``/``pt_vma`` (one entry per virtual page: the physical page
mapped there, and the VMA covering it).  VMAs split and merge inside regions without moving
the slice.  Physical pages live in ``pages``; shmem and file pages are also indexed by
(object, page index) through ``obj_pages``.  Page-table pages (PTE/PMD/PUD tables) are tracked
per mm in ``pgtables``, a numba typed dict, because they are shared by neighbouring regions.
"""

from __future__ import annotations

import numpy as np

from numasim.mm.constants import KGEN_6_12, MAX_NUMNODES
from numasim.topology.model import MAX_NR_ZONES, Machine

# ------------------------------------------------------------------ zones[z, :]
Z_NODE = 0
Z_TYPE = 1
Z_FREE = 2
Z_MANAGED = 3
Z_MIN = 4
Z_LOW = 5
Z_HIGH = 6
Z_RES = 7  # Z_RES + j = lowmem_reserve[j], j < MAX_NR_ZONES
Z_NCOLS = Z_RES + MAX_NR_ZONES

# ------------------------------------------------------------ nodeinfo[nid, :]
N_ONLINE = 0
N_MEMORY = 1  # has memory (node_states[N_MEMORY])
N_NORMAL = 2  # has memory in zones <= NORMAL (N_HIGH_MEMORY on 64-bit)
N_CPU = 3  # has CPUs
N_WEIGHT = 4  # weighted-interleave weight (sysfs), >= 1
N_NCOLS = 5

# ---------------------------------------------------------------- sysvars[:]
SV_POLICY_ZONE = 0
SV_KGEN = 1
SV_NR_NODE_IDS = 2
SV_NEXT_PAGE = 3  # next free row of pages[]
SV_CPUSETS_ENABLED = 4
SV_STATS_ENABLED = 5
SV_ZERO_PAGE_NODE = 6
SV_FIRST_MEMORY_NODE = 7
SV_INTERLEAVE_HIT_WEIGHTED = 8  # 1 if weighted-interleave faults count interleave_hit
SV_THP = 9  # transparent_hugepage/enabled: 0 never, 1 always, 2 madvise (numasim.mm.huge_memory)
SV_NEXT_ANON_VMA = 10  # next anon_vma identity handed out by anon_vma_prepare
SV_KSWAPD_WAKE = 11  # reclaim hook: bit n = node n's kswapd to wake (numasim.mm.vmscan)
SV_NCOLS = 12

# ---------------------------------------------------------------- vmstat[:]
VM_PGFAULT = 0
VM_PGALLOC = 1  # pages allocated (PGALLOC counts pages, numastat counts calls)
VM_PGFREE = 2
VM_PGMIGRATE_SUCCESS = 3
VM_PGMIGRATE_FAIL = 4
VM_PGTABLE = 5  # page-table pages allocated
VM_THP_FAULT_ALLOC = 6
VM_THP_FAULT_FALLBACK = 7
VM_ALLOCSTALL = 8  # allocations that went to the slow path
VM_OOM = 9
VM_SWPIN = 10
VM_SWPOUT = 11
VM_NCOLS = 12
VMSTAT_NAMES = ("pgfault", "pgalloc", "pgfree", "pgmigrate_success", "pgmigrate_fail",
                "pgtable_alloc", "thp_fault_alloc", "thp_fault_fallback", "allocstall",
                "oom_kill", "pswpin", "pswpout")

# ------------------------------------------------------------- policies[p, :]
P_ALIVE = 0
P_MODE = 1
P_FLAGS = 2  # user mode flags (STATIC/RELATIVE/NUMA_BALANCING) | internal (SHARED, MOF...)
P_HOME = 3  # home node or -1
P_WEIGHT = 4  # number of nodes in pol_nodes (nodes_weight)
P_FIRST = 5  # first node in pol_nodes, or -1
P_NCOLS = 6
# pol_nodes[p, nid] = 1 if nid is in the policy's (effective) nodemask

# ---------------------------------------------------------------- tasks[t, :]
T_ALIVE = 0
T_CPU = 1
T_POLICY = 2  # task policy id, -1 = none (MPOL_DEFAULT)
T_IL_PREV = 3  # il_prev: last node used by counter interleave
T_IL_WEIGHT = 4  # il_weight: remaining weight of il_prev (weighted interleave)
T_MM = 5
T_CAP_SYS_NICE = 6
T_OOM_SCORE_ADJ = 7
T_KILLED = 8  # signal number the task died of, 0 = alive/exited normally
T_PARENT = 9
T_NODE = 10  # node of T_CPU (numa_node_id()), kept in step with T_CPU by set_task_cpu
T_NCOLS = 11
# task_mems[t, nid] = 1 if nid is in the task's cpuset mems_allowed

# ---------------------------------------------------------------- regions[r, :]
R_ALIVE = 0
R_MM = 1
R_START = 2  # first virtual page number
R_END = 3  # one past the last
R_PT = 4  # offset of this region's slice in pt_page / pt_vma
R_OBJ = 5  # backing object
R_PGOFF = 6  # page offset into the object of R_START (file offset / vpn for anon)
R_NCOLS = 7

# ------------------------------------------------------------------- vmas[v, :]
V_ALIVE = 0
V_MM = 1
V_START = 2  # virtual page numbers [start, end)
V_END = 3
V_PGOFF = 4  # vm_pgoff: for private anon the vpn of the mapping start, for files the offset
V_POLICY = 5  # vma->vm_policy, -1 = none
V_KIND = 6  # KIND_* of the backing object
V_OBJ = 7
V_REGION = 8
V_ANON_VMA = 9  # anon_vma identity, decides mergeability (0 = none yet)
V_PROT = 10  # PROT_* bits
V_SHARED = 11  # MAP_SHARED
V_HUGEPAGE = 12  # madvise: 0 none, 1 VM_HUGEPAGE, 2 VM_NOHUGEPAGE
V_NCOLS = 13

PROT_READ = 1
PROT_WRITE = 2

# ------------------------------------------------------------------- objs[o, :]
O_ALIVE = 0
O_KIND = 1
O_BASE = 2  # offset of the object's page index in obj_pages (shmem/file)
O_NPAGES = 3  # capacity of that slice
O_INO = 4  # inode number: shmem interleave bias
O_SIZE = 5  # file size in pages (i_size)
O_NCOLS = 6

KIND_ANON = 0  # private anonymous
KIND_SHMEM = 1  # MAP_SHARED|MAP_ANONYMOUS, memfd, tmpfs, SysV shm: shared policy, ilx biased
KIND_FILE = 2  # regular file page cache (ramfs...): task policy, counter interleave
KIND_NAMES = {KIND_ANON: "anon", KIND_SHMEM: "shmem", KIND_FILE: "file"}

# ------------------------------------------------------------------- pages[pg, :]
PG_NODE = 0
PG_ZONE = 1  # -1 = free row
PG_MAPCOUNT = 2
PG_KIND = 3  # PGK_*
PG_OBJ = 4  # object for shmem/file pages, -1 for anon
PG_INDEX = 5  # page index in the object (shmem/file)
PG_ORDER = 6  # 0, or 9 for the head of a THP (tails are not separate rows)
PG_DIRTY = 7  # written since allocated (numa_maps "dirty")
PG_NCOLS = 8

PGK_ANON = 0
PGK_SHMEM = 1
PGK_FILE = 2
PGK_PGTABLE = 3
PGK_KERNEL = 4

# ------------------------------------------------------------- shared policy sp[s, :]
S_ALIVE = 0
S_OBJ = 1
S_START = 2  # page index range [start, end) in the object
S_END = 3
S_POLICY = 4
S_NCOLS = 5

# ---- special values in pt_page / obj_pages
PT_NONE = -1  # not present
PT_SWAP = -2  # swapped out
PT_ZERO = -3  # the shared zero page (read fault on private anon)

# ---- page-table levels (pgtables hash keys)
PGT_PTE = 1  # one table per 2 MiB of virtual space (vpn >> 9)
PGT_PMD = 2  # per 1 GiB (vpn >> 18)
PGT_PUD = 3  # per 512 GiB (vpn >> 27)

# ---- results of the core's fault/alloc entry points
FAULT_OK = 0
FAULT_OOM = 1  # no zone passed MIN: the caller runs the OOM killer
FAULT_SEGV = 2  # no VMA / protection
FAULT_NEED_ROOM = 3  # pages[] is full: grow and call again
FAULT_SIGBUS = 4


PGT_EMPTY = -1
PGT_TOMB = -2
PGT_NO_PAGE = -1  # value for a table that exists but was not allocated by the simulation


def pgtable_key(mm: int, level: int, index: int) -> int:
    """Key of a page-table page in ``pgtables``: (mm, level, index) packed in 64 bits."""
    return (mm << 40) | (level << 36) | index


def pgt_hash(key: int, cap: int) -> int:
    """Slot of a key in the open-addressing table (cap a power of two); the core uses the
    same arithmetic (see ``alloc_core.pgt_find``)."""
    idx = key & ((1 << 36) - 1)
    level = (key >> 36) & 0xF
    mm = key >> 40
    return (idx * 40503 + mm * 1000003 + level * 97) & (cap - 1)


MAX_MAP_FACTOR = 4  # a mapping (or shmem/file object) may be this many times the RAM ...
MIN_MAP_LIMIT = 1 << 20  # ... or 4 GiB of pages, whichever is more


def _grow(a: np.ndarray, rows: int, fill: int = 0) -> np.ndarray:
    if a.shape[0] >= rows:
        return a
    new_rows = max(rows, 2 * a.shape[0], 16)
    shape = (new_rows,) + a.shape[1:]
    out = np.empty(shape, dtype=a.dtype)  # each byte written once: the copy, then the fill
    out[: a.shape[0]] = a
    out[a.shape[0]:] = fill
    return out


# The kernel state the allocator core takes as ONE argument, ``kern`` (KernelState.core_args()):
# a tuple of these arrays in this order, unpacked inside the jitted functions at compile time
# (numasim.jit types it from the same names).  One bundle instead of twenty parameters keeps
# the entry points short and the core and its twin (alloc_ref) in step.
CORE_ARRAYS = ("zones", "zonelist", "nodeinfo", "cpu_node", "sysvars", "numastat", "vmstat",
               "policies", "pol_nodes", "tasks", "task_mems", "regions", "vmas", "objs", "sp",
               "pages", "pt_page", "pt_vma", "obj_pages", "pgtables")
# their positions, for a function that takes ``kern`` and needs only a few (``kern[K_PAGES]``)
(K_ZONES, K_ZONELIST, K_NODEINFO, K_CPU_NODE, K_SYSVARS, K_NUMASTAT, K_VMSTAT, K_POLICIES,
 K_POL_NODES, K_TASKS, K_TASK_MEMS, K_REGIONS, K_VMAS, K_OBJS, K_SP, K_PAGES, K_PT_PAGE,
 K_PT_VMA, K_OBJ_PAGES, K_PGTABLES) = range(len(CORE_ARRAYS))


class KernelState:
    """All mm state of one simulated machine, plus row allocators for its tables."""

    def __init__(self, machine: Machine, kernel_gen: int = KGEN_6_12) -> None:
        from numasim.mm.constants import KERNELS
        from numasim.topology.derive import boot_state

        self.machine = machine
        kname = {v: k for k, v in KERNELS.items()}[kernel_gen]
        d = boot_state(machine, kname)  # this generation's boot, not the machine's
        self.derived = d
        nn = machine.nr_node_ids
        self.nr_node_ids = nn
        nz = len(d.zones)
        self.zones = np.zeros((nz, Z_NCOLS), dtype=np.int64)
        for z in d.zones:
            row = self.zones[z.index]
            row[Z_NODE], row[Z_TYPE] = z.node, int(z.type)
            row[Z_FREE] = row[Z_MANAGED] = z.managed
            row[Z_MIN], row[Z_LOW], row[Z_HIGH] = z.wmark_min, z.wmark_low, z.wmark_high
            row[Z_RES:Z_RES + MAX_NR_ZONES] = z.lowmem_reserve
        # reclaim slice: what the booted system holds (machine.boot_used) is not free; it
        # comes out of the node's highest populated zone
        # comes out of the node's zones, highest first (boot_held: pages held per zone)
        self.boot_held = np.zeros(nz, dtype=np.int64)
        for nid, used in getattr(machine, "boot_used", ()):
            for z in sorted((z for z in d.zones if z.node == nid and z.managed > 0),
                            key=lambda z: -int(z.type)):
                take = min(used, int(self.zones[z.index, Z_FREE]))
                self.zones[z.index, Z_FREE] -= take
                self.boot_held[z.index] += take
                used -= take
        zl_len = max((len(v) for v in d.zonelist.values()), default=0)
        self.zonelist = np.full((nn, max(zl_len, 1) + 1), -1, dtype=np.int64)
        for nid, zl in d.zonelist.items():
            self.zonelist[nid, : len(zl)] = zl
        self.nodeinfo = np.zeros((nn, N_NCOLS), dtype=np.int64)
        for node in machine.nodes:
            r = self.nodeinfo[node.id]
            r[N_ONLINE] = 1
            zs = d.zones_of(node.id)
            r[N_MEMORY] = int(any(z.present > 0 for z in zs))
            r[N_NORMAL] = int(any(z.present > 0 and int(z.type) <= 2 for z in zs))
            r[N_CPU] = int(node.has_cpus)
            r[N_WEIGHT] = machine.weight(node.id)
        ncpu = max(machine.cpus) + 1
        self.cpu_node = np.full(ncpu, -1, dtype=np.int64)
        for c, nid in machine.cpu_to_node.items():
            self.cpu_node[c] = nid
        self.sysvars = np.zeros(SV_NCOLS, dtype=np.int64)
        self.sysvars[SV_POLICY_ZONE] = int(d.policy_zone)
        self.sysvars[SV_KGEN] = kernel_gen
        self.sysvars[SV_NR_NODE_IDS] = nn
        self.sysvars[SV_STATS_ENABLED] = 1
        first_mem = machine.memory_nodes[0]
        self.sysvars[SV_ZERO_PAGE_NODE] = first_mem
        self.sysvars[SV_FIRST_MEMORY_NODE] = first_mem
        self.numastat = np.zeros((nn, 6), dtype=np.int64)
        self.vmstat = np.zeros(VM_NCOLS, dtype=np.int64)

        self.policies = np.zeros((16, P_NCOLS), dtype=np.int64)
        self.pol_nodes = np.zeros((16, nn), dtype=np.uint8)
        self.tasks = np.zeros((8, T_NCOLS), dtype=np.int64)
        self.task_mems = np.zeros((8, nn), dtype=np.uint8)
        self.regions = np.zeros((16, R_NCOLS), dtype=np.int64)
        self.vmas = np.zeros((16, V_NCOLS), dtype=np.int64)
        self.objs = np.zeros((16, O_NCOLS), dtype=np.int64)
        self.sp = np.zeros((8, S_NCOLS), dtype=np.int64)
        self.pages = np.full((1024, PG_NCOLS), -1, dtype=np.int64)
        self.pt_page = np.full(1024, PT_NONE, dtype=np.int64)
        self.pt_vma = np.full(1024, -1, dtype=np.int64)
        self.obj_pages = np.full(1024, PT_NONE, dtype=np.int64)
        self.pt_used = 0
        self.obj_pages_used = 0
        self.pgtables = np.full((1024, 2), PGT_EMPTY, dtype=np.int64)
        self.pgt_used = 0  # occupied + tombstone slots
        self.next_ino = 1000
        self.sysvars[SV_NEXT_ANON_VMA] = 1

    # ---------------------------------------------------------------- rows
    @staticmethod
    def _free_row(table: np.ndarray, alive_col: int = 0) -> int:
        free = np.flatnonzero(table[:, alive_col] == 0)
        return int(free[0]) if free.size else table.shape[0]

    def new_policy(self, mode: int, flags: int, nodes, home: int = -1) -> int:
        p = self._free_row(self.policies)
        self.policies = _grow(self.policies, p + 1)
        self.pol_nodes = _grow(self.pol_nodes, p + 1)
        self.set_policy_row(p, mode, flags, nodes, home)
        return p

    def set_policy_row(self, p: int, mode: int, flags: int, nodes, home: int = -1) -> None:
        nodes = sorted(set(nodes))
        row = self.policies[p]
        row[P_ALIVE], row[P_MODE], row[P_FLAGS], row[P_HOME] = 1, mode, flags, home
        row[P_WEIGHT] = len(nodes)
        row[P_FIRST] = nodes[0] if nodes else -1
        self.pol_nodes[p, :] = 0
        for n in nodes:
            self.pol_nodes[p, n] = 1

    def policy_nodes(self, p: int) -> list[int]:
        return [int(n) for n in np.flatnonzero(self.pol_nodes[p])]

    def new_task(self, cpu: int, mm: int, parent: int = -1) -> int:
        t = self._free_row(self.tasks)
        self.tasks = _grow(self.tasks, t + 1)
        self.task_mems = _grow(self.task_mems, t + 1)
        row = self.tasks[t]
        row[:] = 0
        row[T_ALIVE], row[T_CPU], row[T_POLICY], row[T_MM] = 1, cpu, -1, mm
        row[T_NODE] = self.cpu_node[cpu]
        row[T_IL_PREV] = MAX_NUMNODES - 1
        row[T_CAP_SYS_NICE] = 1
        row[T_PARENT] = parent
        self.task_mems[t, :] = self.nodeinfo[:, N_MEMORY]  # top cpuset: N_MEMORY
        return t

    def set_task_cpu(self, t: int, cpu: int) -> None:
        self.tasks[t, T_CPU] = cpu
        self.tasks[t, T_NODE] = self.cpu_node[cpu]

    def new_obj(self, kind: int, npages: int, ino: int | None = None) -> int:
        o = self._free_row(self.objs)
        self.objs = _grow(self.objs, o + 1)
        row = self.objs[o]
        row[:] = 0
        row[O_ALIVE], row[O_KIND] = 1, kind
        if ino is None:
            ino = self.next_ino
            self.next_ino += 1
        row[O_INO] = ino
        row[O_SIZE] = npages
        if kind != KIND_ANON:
            self.check_mappable(npages)
            row[O_BASE] = self.obj_pages_used
            row[O_NPAGES] = npages
            self.obj_pages_used += npages
            self.obj_pages = _grow(self.obj_pages, self.obj_pages_used, PT_NONE)
        return o

    def grow_obj(self, o: int, npages: int) -> None:
        """Make room for page indexes < npages in a shmem/file object (ftruncate, keep)."""
        row = self.objs[o]
        if npages <= row[O_NPAGES]:
            row[O_SIZE] = max(row[O_SIZE], npages)
            return
        self.check_mappable(npages)
        old_base, old_n = int(row[O_BASE]), int(row[O_NPAGES])
        base = self.obj_pages_used
        self.obj_pages_used += npages
        self.obj_pages = _grow(self.obj_pages, self.obj_pages_used, PT_NONE)
        self.obj_pages[base: base + old_n] = self.obj_pages[old_base: old_base + old_n]
        self.obj_pages[old_base: old_base + old_n] = PT_NONE
        row[O_BASE], row[O_NPAGES], row[O_SIZE] = base, npages, max(row[O_SIZE], npages)

    # ---- what numasim can hold: host memory follows the simulated machine
    def totalram_pages(self) -> int:
        """``totalram_pages()``: the managed pages of every zone."""
        return int(self.zones[:, Z_MANAGED].sum())

    def vm_enough_memory(self, npages: int) -> bool:
        """``__vm_enough_memory`` under ``overcommit_memory = 0`` (OVERCOMMIT_GUESS): an
        accountable mapping (private writable, or shared anonymous) of more pages than the
        machine's RAM (no swap here) fails with ENOMEM."""
        return npages <= self.totalram_pages()

    def check_mappable(self, npages: int) -> None:
        """numasim keeps a page-table entry per page of a mapping, so a mapping's size
        decides host memory: refuse one larger than MAX_MAP_FACTOR x the machine's RAM
        (Linux would map it and fail only when touched; numasim says so instead of
        filling the host)."""
        limit = max(MAX_MAP_FACTOR * self.totalram_pages(), MIN_MAP_LIMIT)
        if npages > limit:
            from numasim.errors import NumasimError

            raise NumasimError(
                f"a mapping of {npages} pages ({npages * 4096 / 2**30:.4g} GiB) is more than "
                f"{MAX_MAP_FACTOR}x the simulated machine's memory ({self.totalram_pages()} "
                "pages): numasim cannot hold its page table", field="mmap",
                hint="map less memory, or use a machine with more")

    def new_region(self, mm: int, start: int, end: int, obj: int, pgoff: int) -> int:
        self.check_mappable(end - start)
        r = self._free_row(self.regions)
        self.regions = _grow(self.regions, r + 1)
        n = end - start
        base = self.pt_used
        self.pt_used += n
        self.pt_page = _grow(self.pt_page, self.pt_used, PT_NONE)
        self.pt_vma = _grow(self.pt_vma, self.pt_used, -1)
        self.pt_page[base: base + n] = PT_NONE
        self.pt_vma[base: base + n] = -1
        row = self.regions[r]
        row[R_ALIVE], row[R_MM], row[R_START], row[R_END] = 1, mm, start, end
        row[R_PT], row[R_OBJ], row[R_PGOFF] = base, obj, pgoff
        return r

    def new_vma(self, **fields: int) -> int:
        v = self._free_row(self.vmas)
        self.vmas = _grow(self.vmas, v + 1)
        row = self.vmas[v]
        row[:] = 0
        row[V_ALIVE] = 1
        row[V_POLICY] = -1
        for k, val in fields.items():
            row[globals()["V_" + k.upper()]] = val
        return v

    def new_sp(self, obj: int, start: int, end: int, policy: int) -> int:
        s = self._free_row(self.sp)
        self.sp = _grow(self.sp, s + 1)
        self.sp[s] = (1, obj, start, end, policy)
        return s

    def ensure_pages(self, extra: int) -> None:
        """Room for ``extra`` more page rows and page-table entries (the core returns
        FAULT_NEED_ROOM otherwise)."""
        need = int(self.sysvars[SV_NEXT_PAGE]) + extra + 8
        if need > self.pages.shape[0]:
            self.pages = _grow(self.pages, need, -1)
        self.pgt_reserve(extra // 64 + 16)

    # ---- page-table pages: an open-addressing hash table in pgtables[cap, 2]
    def pgt_count(self) -> int:
        return int((self.pgtables[:, 0] >= 0).sum())

    def pgt_reserve(self, extra: int) -> None:
        """Keep the table at most half full after ``extra`` more inserts (rehash if not)."""
        used = int((self.pgtables[:, 0] != PGT_EMPTY).sum())
        cap = self.pgtables.shape[0]
        if 2 * (used + extra) <= cap:
            return
        live = self.pgtables[self.pgtables[:, 0] >= 0]
        new_cap = cap
        while 2 * (len(live) + extra) > new_cap:
            new_cap *= 2
        table = np.full((new_cap, 2), PGT_EMPTY, dtype=np.int64)
        for key, val in live:
            i = pgt_hash(int(key), new_cap)
            while table[i, 0] != PGT_EMPTY:
                i = (i + 1) & (new_cap - 1)
            table[i] = (key, val)
        self.pgtables = table

    def pgt_get(self, key: int) -> int | None:
        cap = self.pgtables.shape[0]
        i = pgt_hash(key, cap)
        while True:
            k = int(self.pgtables[i, 0])
            if k == key:
                return int(self.pgtables[i, 1])
            if k == PGT_EMPTY:
                return None
            i = (i + 1) & (cap - 1)

    def pgt_set(self, key: int, value: int) -> None:
        self.pgt_reserve(1)
        cap = self.pgtables.shape[0]
        i = pgt_hash(key, cap)
        while True:
            k = int(self.pgtables[i, 0])
            if k == key or k == PGT_EMPTY:
                self.pgtables[i] = (key, value)
                return
            i = (i + 1) & (cap - 1)

    def pgt_delete(self, key: int) -> None:
        cap = self.pgtables.shape[0]
        i = pgt_hash(key, cap)
        while True:
            k = int(self.pgtables[i, 0])
            if k == key:
                self.pgtables[i] = (PGT_TOMB, -1)
                return
            if k == PGT_EMPTY:
                return
            i = (i + 1) & (cap - 1)

    def pgt_items(self, mm: int | None = None) -> list[tuple[int, int]]:
        rows = self.pgtables[self.pgtables[:, 0] >= 0]
        if mm is not None:
            rows = rows[(rows[:, 0] >> 40) == mm]
        return [(int(k), int(v)) for k, v in rows]

    # --------------------------------------------------------------- views
    def node_free_pages(self, nid: int) -> int:
        return int(self.zones[self.zones[:, Z_NODE] == nid, Z_FREE].sum())

    def core_args(self) -> tuple:
        """``kern``: the arrays every core entry point takes as one bundle, in
        :data:`CORE_ARRAYS` order.  Built afresh per call: ``ensure_pages`` and the page-table
        hash may have replaced an array since the last one."""
        return (self.zones, self.zonelist, self.nodeinfo, self.cpu_node, self.sysvars,
                self.numastat, self.vmstat, self.policies, self.pol_nodes, self.tasks,
                self.task_mems, self.regions, self.vmas, self.objs, self.sp, self.pages,
                self.pt_page, self.pt_vma, self.obj_pages, self.pgtables)
