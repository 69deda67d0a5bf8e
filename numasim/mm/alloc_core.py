"""The allocator core, numba-jitted: policy -> (node, nodemask) -> zonelist walk -> page.

Read beside ``mm/mempolicy.c`` (``get_vma_policy``, ``policy_nodemask``, ``interleave_nid``,
``weighted_interleave_nid``, ``interleave_nodes``, ``alloc_pages_mpol``,
``alloc_pages_preferred_many``) and ``mm/page_alloc.c`` (``__alloc_pages``,
``get_page_from_freelist``, ``zone_watermark_fast``, ``zone_statistics``).  Every function
here has the kernel's name when it does the kernel function's job.

All state is the arrays of :class:`numasim.mm.state.KernelState`; entry points take them as
one bundle, ``kern`` (``KernelState.core_args()``: a tuple in ``CORE_ARRAYS`` order, unpacked
at compile time; ``kern[K_PAGES]`` names one), and do a whole batch per call (a range of
pages, not one page), because a jitted call from Python costs as much as the fault itself.
The core runs without numba's reference counting (:func:`numasim.jit.kernel_jit`), so passing
the bundle across a call costs nothing per array; the entry points the fault loop calls are
also inlined into their jitted callers (``kernel_jit(inline="always")``), as measured when
the bundle still cost the reference counting of every array in it.  The plain-Python
twin, :mod:`numasim.mm.alloc_ref`, must make exactly the same decisions; the differential
tests hold the two together.

Model limits, stated once: no per-CPU page lists (the kernel's free counts move in batches of
a few hundred pages; numasim's move page by page), no buddy fragmentation (a free block of any
order exists while enough pages are free), no page reclaim (memory comes back only by munmap,
exit, migration and explicit swap-out), no ALLOC_NOFRAGMENT retry (it only changes which
migratetype is used, which numasim does not model).
"""

from __future__ import annotations

import numpy as np

from numasim.jit import I64_1D, kernel_jit
from numasim.mm.constants import (
    GFP_ATOMIC,
    GFP_DMA,
    GFP_DMA32,
    GFP_KERNEL,
    GFP_THISNODE,
    GFP_TRANSHUGE,
    GFP_TRANSHUGE_KSWAPD,
    GFP_TRANSHUGE_LIGHT,
    GFP_USER_MOVABLE,
    KGEN_2_6_7,
    KGEN_6_1,
    MAX_NUMNODES,
    MPOL_BIND,
    MPOL_INTERLEAVE,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
    NUMA_FOREIGN,
    NUMA_HIT,
    NUMA_INTERLEAVE_HIT,
    NUMA_LOCAL,
    NUMA_MISS,
    NUMA_OTHER,
)
from numasim.mm.state import (
    FAULT_NEED_ROOM,
    FAULT_OK,
    FAULT_OOM,
    FAULT_SEGV,
    FAULT_SIGBUS,
    K_NODEINFO,
    K_NUMASTAT,
    K_OBJ_PAGES,
    K_OBJS,
    K_PAGES,
    K_PGTABLES,
    K_POL_NODES,
    K_POLICIES,
    K_PT_PAGE,
    K_SP,
    K_SYSVARS,
    K_TASK_MEMS,
    K_TASKS,
    K_VMAS,
    K_VMSTAT,
    K_ZONELIST,
    K_ZONES,
    KIND_ANON,
    KIND_FILE,
    KIND_SHMEM,
    N_NORMAL,
    N_WEIGHT,
    O_BASE,
    O_INO,
    O_NPAGES,
    O_SIZE,
    P_FIRST,
    P_FLAGS,
    P_HOME,
    P_MODE,
    P_WEIGHT,
    PG_DIRTY,
    PG_INDEX,
    PG_KIND,
    PG_MAPCOUNT,
    PG_NODE,
    PG_OBJ,
    PG_ORDER,
    PG_ZONE,
    PGK_ANON,
    PGK_FILE,
    PGK_PGTABLE,
    PGK_SHMEM,
    PGT_EMPTY,
    PGT_PMD,
    PGT_PTE,
    PGT_PUD,
    PT_NONE,
    PT_SWAP,
    PT_ZERO,
    R_END,
    R_MM,
    R_PT,
    R_START,
    S_ALIVE,
    S_END,
    S_OBJ,
    S_POLICY,
    S_START,
    SV_CPUSETS_ENABLED,
    SV_INTERLEAVE_HIT_WEIGHTED,
    SV_KGEN,
    SV_KSWAPD_WAKE,
    SV_NEXT_ANON_VMA,
    SV_NEXT_PAGE,
    SV_POLICY_ZONE,
    SV_STATS_ENABLED,
    T_IL_PREV,
    T_IL_WEIGHT,
    T_NODE,
    T_POLICY,
    V_ALIVE,
    V_ANON_VMA,
    V_END,
    V_KIND,
    V_MM,
    V_OBJ,
    V_PGOFF,
    V_POLICY,
    V_PROT,
    V_SHARED,
    V_START,
    VM_ALLOCSTALL,
    VM_PGALLOC,
    VM_PGFAULT,
    VM_PGFREE,
    VM_PGTABLE,
    VM_SWPIN,
    Z_FREE,
    Z_LOW,
    Z_MIN,
    Z_NODE,
    Z_RES,
    Z_TYPE,
)
from numasim.topology.model import ZoneType

ZONE_DMA = int(ZoneType.DMA)
ZONE_DMA32 = int(ZoneType.DMA32)
ZONE_NORMAL = int(ZoneType.NORMAL)
ZONE_MOVABLE = int(ZoneType.MOVABLE)

# which nodemask an allocation is restricted to
MASK_NONE = 0
MASK_POLICY = 1  # pol_nodes[idx]
MASK_MEMS = 2  # task_mems[idx]: cpuset_current_mems_allowed
MASK_NODE = 3  # the single node idx (__GFP_THISNODE: ZONELIST_NOFALLBACK)

# watermark to test (alloc_flags & ALLOC_WMARK_MASK), plus reserve access
WMARK_MIN = 0
WMARK_LOW = 1
WMARK_NONE = 3  # ALLOC_NO_WATERMARKS (OOM victim)

NO_ILX = -1  # NO_INTERLEAVE_INDEX

# slots of the small scratch array ``res`` the allocation functions report through
R_NID = 0  # the node the policy asked for (interleave target, preferred node...)
R_MASK_KIND = 1
R_MASK_IDX = 2
R_ZONE = 3
R_PREF = 4
R_PASS = 5
R_ALLOCATED = 6  # pages allocated by a fault batch
R_DONE = 7  # pages handled by a fault batch
R_SIZE = 8
# handle_mm_fault_range's per-batch caches live in the result array after R_SIZE (5 rows of
# nr_node_ids and 2): the core runs without numba's reference counting, and an array it
# allocated itself would need it (fault_res sizes the array)
R_SCRATCH = R_SIZE


def fault_res(nr_node_ids: int) -> np.ndarray:
    """The result array of the core's entry points, with room for the fault batch's caches."""
    return np.zeros(R_SCRATCH + 5 * nr_node_ids + 2, dtype=np.int64)

# what an allocation may do when memory is exhausted (the ``may_oom`` argument)
OOM_NEVER = 0  # fail (no direct reclaim, __GFP_RETRY_MAYFAIL, first preferred-many pass)
OOM_MAY = 1  # report ALLOC_OOM: the caller runs the OOM killer
OOM_VICTIM = 2  # this task is the OOM victim: ALLOC_OOM reserves, nodemask ignored

# extra results of alloc_pages_mpol beyond a page row
ALLOC_FAIL = -1
ALLOC_OOM = -2
ALLOC_NEED_ROOM = -3


# ---------------------------------------------------------------- gfp helpers
@kernel_jit
def gfp_transhuge(gfp):
    """One of the THP fault masks (``vma_thp_gfp_mask``)."""
    return gfp == GFP_TRANSHUGE_LIGHT or gfp == GFP_TRANSHUGE or gfp == GFP_TRANSHUGE_KSWAPD


@kernel_jit
def gfp_zone(gfp):
    """Highest zone an allocation may use (``gfp_zone``)."""
    if gfp in (GFP_USER_MOVABLE, GFP_THISNODE) or gfp_transhuge(gfp):
        return ZONE_MOVABLE
    if gfp == GFP_DMA32:
        return ZONE_DMA32
    if gfp == GFP_DMA:
        return ZONE_DMA
    return ZONE_NORMAL


@kernel_jit
def gfp_hardwall(gfp):
    """__GFP_HARDWALL: user allocations stay inside the cpuset's mems."""
    return gfp in (GFP_USER_MOVABLE, GFP_THISNODE) or gfp_transhuge(gfp)


@kernel_jit
def gfp_direct_reclaim(gfp):
    """__GFP_DIRECT_RECLAIM: everything but atomic and the light THP masks."""
    return gfp != GFP_ATOMIC and gfp != GFP_TRANSHUGE_LIGHT and gfp != GFP_TRANSHUGE_KSWAPD


@kernel_jit
def gfp_kswapd_reclaim(gfp):
    """__GFP_KSWAPD_RECLAIM (``ALLOC_KSWAPD``): may the slow path wake kswapd?  Not for
    GFP_TRANSHUGE(_LIGHT): a THP fault wakes kswapd only with defrag ``defer``."""
    return gfp != GFP_TRANSHUGE_LIGHT and gfp != GFP_TRANSHUGE


# ------------------------------------------------------------ nodemask helpers
@kernel_jit
def next_node_in(nid, pol_nodes, p, nr_node_ids):
    """``next_node_in``: the next node of the mask after ``nid``, wrapping; MAX_NUMNODES if
    the mask is empty."""
    start = nid + 1
    if start < 0:
        start = 0
    for n in range(start, nr_node_ids):
        if pol_nodes[p, n]:
            return n
    for n in range(0, min(start, nr_node_ids)):
        if pol_nodes[p, n]:
            return n
    return MAX_NUMNODES


@kernel_jit
def nth_node(pol_nodes, p, target, nr_node_ids):
    """The ``target``-th (0-based) node set in the mask."""
    for n in range(nr_node_ids):
        if pol_nodes[p, n]:
            if target == 0:
                return n
            target -= 1
    return -1


# ------------------------------------------------------------ interleave
@kernel_jit
def interleave_nid(policies, pol_nodes, nodeinfo, p, ilx, kgen, cpu_nid, nr_node_ids):
    """``interleave_nid``: the ``ilx mod weight``-th node of the mask.

    Linux 6.1 (``offset_il_node``) truncated the index to 32 bits first.
    """
    nnodes = policies[p, P_WEIGHT]
    if nnodes == 0:
        return cpu_nid
    if kgen in (KGEN_6_1, KGEN_2_6_7):
        ilx = ilx & 0xFFFFFFFF
    return nth_node(pol_nodes, p, ilx % nnodes, nr_node_ids)


@kernel_jit
def weighted_interleave_nid(policies, pol_nodes, nodeinfo, p, ilx, cpu_nid, nr_node_ids):
    """``weighted_interleave_nid``: walk the mask subtracting weights until the remainder of
    ``ilx mod total`` is below the node's weight."""
    if policies[p, P_WEIGHT] == 0:
        return cpu_nid
    total = 0
    for n in range(nr_node_ids):
        if pol_nodes[p, n]:
            total += nodeinfo[n, N_WEIGHT]
    target = ilx % total
    nid = policies[p, P_FIRST]
    while target:
        w = nodeinfo[nid, N_WEIGHT]
        if target < w:
            break
        target -= w
        nid = next_node_in(nid, pol_nodes, p, nr_node_ids)
    return nid


@kernel_jit
def interleave_nodes(tasks, pol_nodes, t, p, nr_node_ids):
    """``interleave_nodes``: the per-task counter, for allocations without a VMA."""
    nid = next_node_in(tasks[t, T_IL_PREV], pol_nodes, p, nr_node_ids)
    if nid < MAX_NUMNODES:
        tasks[t, T_IL_PREV] = nid
    return nid


@kernel_jit
def weighted_interleave_nodes(tasks, pol_nodes, nodeinfo, t, p, nr_node_ids):
    """``weighted_interleave_nodes``: the counter, spending ``il_weight`` on each node."""
    node = tasks[t, T_IL_PREV]
    if tasks[t, T_IL_WEIGHT] == 0 or node < 0 or node >= nr_node_ids or pol_nodes[p, node] == 0:
        node = next_node_in(node, pol_nodes, p, nr_node_ids)
        if node == MAX_NUMNODES:
            return node
        tasks[t, T_IL_PREV] = node
        tasks[t, T_IL_WEIGHT] = nodeinfo[node, N_WEIGHT]
    tasks[t, T_IL_WEIGHT] -= 1
    return node


# ------------------------------------------------------------ zones
@kernel_jit
def zone_allowed(zones, pol_nodes, task_mems, z, highest, mask_kind, mask_idx):
    if zones[z, Z_TYPE] > highest:
        return False
    node = zones[z, Z_NODE]
    if mask_kind == MASK_POLICY:
        return pol_nodes[mask_idx, node] != 0
    if mask_kind == MASK_MEMS:
        return task_mems[mask_idx, node] != 0
    if mask_kind == MASK_NODE:
        return node == mask_idx
    return True


@kernel_jit
def first_zones_zonelist(zones, zonelist, pol_nodes, task_mems, nid, highest, mask_kind,
                         mask_idx):
    """``first_zones_zonelist``: the preferred zone, first eligible zone in nid's zonelist."""
    for k in range(zonelist.shape[1]):
        z = zonelist[nid, k]
        if z < 0:
            break
        if zone_allowed(zones, pol_nodes, task_mems, z, highest, mask_kind, mask_idx):
            return z
    return -1


@kernel_jit
def zone_watermark_ok(zones, z, order, wmark, highest, reserve_mult8):
    """``zone_watermark_fast`` for our model: free pages above mark + lowmem_reserve.

    ``reserve_mult8`` scales the MIN mark in eighths (8 = as is, 4 = ALLOC_MIN_RESERVE,
    3 = __GFP_HIGH and non-blocking, as GFP_ATOMIC gets).
    """
    if wmark == WMARK_NONE:
        return zones[z, Z_FREE] >= (1 << order)
    mark = zones[z, Z_MIN + wmark]
    if wmark == WMARK_MIN and reserve_mult8 != 8:
        m = mark
        if reserve_mult8 <= 4:
            m -= mark // 2
            if reserve_mult8 <= 3:
                m -= m // 4
        mark = m
    free = zones[z, Z_FREE] - ((1 << order) - 1)
    return free > mark + zones[z, Z_RES + highest]


@kernel_jit
def get_page_from_freelist(zones, zonelist, pol_nodes, task_mems, t, nid, highest, mask_kind,
                           mask_idx, cpuset_filter, order, wmark, reserve_mult8):
    """``get_page_from_freelist``: the first zone from the preferred one on that passes."""
    started = False
    pref = first_zones_zonelist(zones, zonelist, pol_nodes, task_mems, nid, highest, mask_kind,
                                mask_idx)
    if pref < 0:
        return -1
    for k in range(zonelist.shape[1]):
        z = zonelist[nid, k]
        if z < 0:
            break
        if not started:
            if z != pref:
                continue
            started = True
        if not zone_allowed(zones, pol_nodes, task_mems, z, highest, mask_kind, mask_idx):
            continue
        if cpuset_filter and task_mems[t, zones[z, Z_NODE]] == 0:
            continue
        if zone_watermark_ok(zones, z, order, wmark, highest, reserve_mult8):
            return z
    return -1


@kernel_jit
def zone_statistics(numastat, sysvars, zones, pref, z, cpu_nid):
    """``zone_statistics``: numa_hit/miss/foreign against the preferred zone, local/other
    against the allocating CPU's node.  Once per allocation call, not per page."""
    if sysvars[SV_STATS_ENABLED] == 0:
        return
    node = zones[z, Z_NODE]
    pnode = zones[pref, Z_NODE]
    if node == pnode:
        numastat[node, NUMA_HIT] += 1
    else:
        numastat[node, NUMA_MISS] += 1
        numastat[pnode, NUMA_FOREIGN] += 1
    if node == cpu_nid:
        numastat[node, NUMA_LOCAL] += 1
    else:
        numastat[node, NUMA_OTHER] += 1


@kernel_jit
def wake_all_kswapds(zones, zonelist, pol_nodes, task_mems, sysvars, nid, highest, mask_kind,
                     mask_idx):
    """``wake_all_kswapds``: every node of the eligible zones (from the preferred one) gets
    its bit in ``sysvars[SV_KSWAPD_WAKE]`` (nodes 0-62; numasim.mm.vmscan wakes them)."""
    started = False
    pref = first_zones_zonelist(zones, zonelist, pol_nodes, task_mems, nid, highest, mask_kind,
                                mask_idx)
    for k in range(zonelist.shape[1]):
        z = zonelist[nid, k]
        if z < 0:
            break
        if not started:
            if z != pref:
                continue
            started = True
        if zone_allowed(zones, pol_nodes, task_mems, z, highest, mask_kind, mask_idx):
            if zones[z, Z_NODE] < 63:
                sysvars[SV_KSWAPD_WAKE] |= np.int64(1) << zones[z, Z_NODE]


@kernel_jit
def __alloc_pages(zones, zonelist, sysvars, numastat, vmstat, pol_nodes, task_mems, t, cpu_nid,
                  gfp, order, nid, mask_kind, mask_idx, may_oom, res):
    """``__alloc_pages``: the fast path at the LOW mark, then the slow path at MIN.

    res[R_ZONE] = the zone to take the page from, or ALLOC_FAIL, or ALLOC_OOM when the
    caller should run the OOM killer; res[R_PREF] = the preferred zone (``finalise_ac``);
    res[R_PASS] = 0 for the LOW pass, 1 for MIN.  Counts numastat on success.
    """
    highest = gfp_zone(gfp)
    cpusets = sysvars[SV_CPUSETS_ENABLED] != 0
    if gfp == GFP_THISNODE:
        mask_kind = MASK_NODE
        mask_idx = nid
    elif cpusets and mask_kind == MASK_NONE and gfp != GFP_ATOMIC:
        mask_kind = MASK_MEMS  # prepare_alloc_pages: nodemask = cpuset_current_mems_allowed
        mask_idx = t
    cpuset_filter = cpusets and gfp_hardwall(gfp)
    res[R_PASS] = 0
    pref = first_zones_zonelist(zones, zonelist, pol_nodes, task_mems, nid, highest, mask_kind,
                                mask_idx)
    res[R_PREF] = pref
    if pref < 0:
        res[R_ZONE] = ALLOC_FAIL
        return
    z = get_page_from_freelist(zones, zonelist, pol_nodes, task_mems, t, nid, highest,
                               mask_kind, mask_idx, cpuset_filter, order, WMARK_LOW, 8)
    if z < 0:
        # __alloc_pages_slowpath: wake_all_kswapds if ALLOC_KSWAPD (reclaim hook: the nodes
        # of the eligible zones go to sysvars[SV_KSWAPD_WAKE], numasim.mm.vmscan runs them),
        # retry at MIN
        if gfp_kswapd_reclaim(gfp):
            wake_all_kswapds(zones, zonelist, pol_nodes, task_mems, sysvars, nid, highest,
                             mask_kind, mask_idx)
        res[R_PASS] = 1
        mult = 3 if gfp == GFP_ATOMIC else 8
        z = get_page_from_freelist(zones, zonelist, pol_nodes, task_mems, t, nid, highest,
                                   mask_kind, mask_idx, cpuset_filter, order, WMARK_MIN, mult)
        if z < 0 and may_oom == OOM_VICTIM:
            # an OOM victim gets ALLOC_OOM: half the MIN reserve, and the nodemask dropped
            mask_kind = MASK_MEMS if cpusets else MASK_NONE
            mask_idx = t
            pref = first_zones_zonelist(zones, zonelist, pol_nodes, task_mems, nid, highest,
                                        mask_kind, mask_idx)
            res[R_PREF] = pref
            if pref >= 0:
                z = get_page_from_freelist(zones, zonelist, pol_nodes, task_mems, t, nid,
                                           highest, mask_kind, mask_idx, False, order,
                                           WMARK_MIN, 4)
        if z < 0:
            if gfp_direct_reclaim(gfp) and may_oom == OOM_MAY and gfp != GFP_THISNODE:
                vmstat[VM_ALLOCSTALL] += 1
                res[R_ZONE] = ALLOC_OOM
            else:
                res[R_ZONE] = ALLOC_FAIL
            return
    zone_statistics(numastat, sysvars, zones, pref, z, cpu_nid)
    res[R_ZONE] = z


@kernel_jit
def interleave_hit(numastat, sysvars, zones, z, nid, mode):
    """numa_interleave_hit: an interleave allocation (weighted too where the kernel counts
    it) that landed on the node it asked for."""
    counts_hit = mode == MPOL_INTERLEAVE or (mode == MPOL_WEIGHTED_INTERLEAVE
                                             and sysvars[SV_INTERLEAVE_HIT_WEIGHTED] != 0)
    if counts_hit and zones[z, Z_NODE] == nid and sysvars[SV_STATS_ENABLED] != 0:
        numastat[nid, NUMA_INTERLEAVE_HIT] += 1


@kernel_jit
def rmqueue(zones, sysvars, vmstat, pages, z, order, kind, obj, index):
    """Take ``2^order`` pages from zone ``z``; returns the new page row."""
    pg = sysvars[SV_NEXT_PAGE]
    sysvars[SV_NEXT_PAGE] = pg + 1
    zones[z, Z_FREE] -= 1 << order
    vmstat[VM_PGALLOC] += 1 << order
    pages[pg, PG_NODE] = zones[z, Z_NODE]
    pages[pg, PG_ZONE] = z
    pages[pg, PG_MAPCOUNT] = 0
    pages[pg, PG_KIND] = kind
    pages[pg, PG_OBJ] = obj
    pages[pg, PG_INDEX] = index
    pages[pg, PG_ORDER] = order
    pages[pg, PG_DIRTY] = 0
    return pg


@kernel_jit
def free_page(zones, vmstat, pages, pg):
    """``free_pages``: the page's zone gets its pages back."""
    z = pages[pg, PG_ZONE]
    if z < 0:
        return
    n = 1 << pages[pg, PG_ORDER]
    zones[z, Z_FREE] += n
    vmstat[VM_PGFREE] += n
    pages[pg, PG_ZONE] = -1
    pages[pg, PG_MAPCOUNT] = 0


@kernel_jit
def apply_policy_zone(policies, pol_nodes, nodeinfo, sysvars, p, zone, nr_node_ids):
    """``apply_policy_zone``: BIND's mask only binds allocations that may use policy_zone
    (ZONE_MOVABLE when the mask's nodes have only movable memory)."""
    dynamic_policy_zone = sysvars[SV_POLICY_ZONE]
    normal = False
    for n in range(nr_node_ids):
        if pol_nodes[p, n] and nodeinfo[n, N_NORMAL]:
            normal = True
            break
    if not normal:
        dynamic_policy_zone = ZONE_MOVABLE
    return zone >= dynamic_policy_zone


@kernel_jit
def cpuset_nodemask_valid_mems_allowed(pol_nodes, task_mems, p, t, nr_node_ids):
    for n in range(nr_node_ids):
        if pol_nodes[p, n] and task_mems[t, n]:
            return True
    return False


@kernel_jit
def policy_mode(policies, p, gfp):
    """The mode an allocation sees: -1 for no policy (the per-node default, i.e. local), and
    interrupts and __GFP_THISNODE ignore policy (``default_policy``)."""
    if p < 0 or gfp == GFP_ATOMIC or gfp == GFP_THISNODE:
        return -1
    return policies[p, P_MODE]


@kernel_jit
def policy_nodemask(policies, pol_nodes, nodeinfo, sysvars, tasks, task_mems, t, p, gfp, ilx,
                    res):
    """``policy_nodemask``: the node an allocation should start from and the nodemask it is
    confined to.  Interleave modes pick their target here (advancing the task's counter when
    there is no interleave index).  Writes res[R_NID], res[R_MASK_KIND], res[R_MASK_IDX]."""
    nr = nodeinfo.shape[0]
    cpu_nid = tasks[t, T_NODE]
    nid = cpu_nid
    mask_kind = MASK_NONE
    mask_idx = 0
    mode = policy_mode(policies, p, gfp)
    highest = gfp_zone(gfp)
    if mode == MPOL_PREFERRED:
        if policies[p, P_WEIGHT] > 0:
            nid = policies[p, P_FIRST]
    elif mode == MPOL_PREFERRED_MANY:
        mask_kind = MASK_POLICY
        mask_idx = p
        if policies[p, P_HOME] >= 0:
            nid = policies[p, P_HOME]
    elif mode == MPOL_BIND:
        if sysvars[SV_KGEN] == KGEN_2_6_7:
            # 2.6.7 zonelist_policy: BIND's private zonelist for allocations >= policy_zone
            if highest >= sysvars[SV_POLICY_ZONE]:
                mask_kind = MASK_POLICY
                mask_idx = p
                nid = policies[p, P_FIRST]
        else:
            if apply_policy_zone(policies, pol_nodes, nodeinfo, sysvars, p, highest, nr) and \
                    cpuset_nodemask_valid_mems_allowed(pol_nodes, task_mems, p, t, nr):
                mask_kind = MASK_POLICY
                mask_idx = p
            if policies[p, P_HOME] >= 0:
                nid = policies[p, P_HOME]
    elif mode == MPOL_INTERLEAVE:
        if ilx == NO_ILX:
            nid = interleave_nodes(tasks, pol_nodes, t, p, nr)
        else:
            nid = interleave_nid(policies, pol_nodes, nodeinfo, p, ilx, sysvars[SV_KGEN],
                                 cpu_nid, nr)
    elif mode == MPOL_WEIGHTED_INTERLEAVE:
        if ilx == NO_ILX:
            nid = weighted_interleave_nodes(tasks, pol_nodes, nodeinfo, t, p, nr)
        else:
            nid = weighted_interleave_nid(policies, pol_nodes, nodeinfo, p, ilx, cpu_nid, nr)
    if nid < 0 or nid >= nr:
        nid = cpu_nid
    res[R_NID] = nid
    res[R_MASK_KIND] = mask_kind
    res[R_MASK_IDX] = mask_idx
    return mode


@kernel_jit
def bind_zonelist_alloc(zones, sysvars, numastat, vmstat, pol_nodes, task_mems, t, cpu_nid, gfp,
                        order, p, nr, may_oom, res):
    """2.6.7's ``bind_zonelist``: the mask's nodes in ascending id order, each node's zones
    highest first; LOW pass then MIN pass; the preferred zone is the list's first zone."""
    highest = gfp_zone(gfp)
    pref = -1
    for wmark in (WMARK_LOW, WMARK_MIN):
        for n in range(nr):
            if pol_nodes[p, n] == 0:
                continue
            for zt in range(ZONE_MOVABLE, -1, -1):
                if zt > highest:
                    continue
                for z in range(zones.shape[0]):
                    if zones[z, Z_NODE] != n or zones[z, Z_TYPE] != zt:
                        continue
                    if pref < 0:
                        pref = z
                    if zone_watermark_ok(zones, z, order, wmark, highest, 8):
                        zone_statistics(numastat, sysvars, zones, pref, z, cpu_nid)
                        res[R_ZONE] = z
                        res[R_PREF] = pref
                        res[R_PASS] = 0 if wmark == WMARK_LOW else 1
                        return
    res[R_PREF] = pref
    res[R_PASS] = 1
    if pref >= 0 and may_oom == OOM_MAY:
        vmstat[VM_ALLOCSTALL] += 1
        res[R_ZONE] = ALLOC_OOM
    else:
        res[R_ZONE] = ALLOC_FAIL


@kernel_jit(inline="always")
def alloc_pages_nid(kern, t, gfp, order, p, mode, kind, obj, index, may_oom, res):
    """The second half of ``alloc_pages_mpol``: given res[R_NID] and the nodemask from
    :func:`policy_nodemask`, run ``__alloc_pages`` (or ``alloc_pages_preferred_many``, or
    the THP node-only attempt), count interleave_hit, and take the page.

    Returns a page row, or ALLOC_FAIL / ALLOC_OOM / ALLOC_NEED_ROOM; also writes
    res[R_ZONE], res[R_PREF] and res[R_PASS] (0: LOW fast path, 1: MIN slow path).
    """
    zones, zonelist, nodeinfo, sysvars, numastat = (kern[K_ZONES], kern[K_ZONELIST],
                                                    kern[K_NODEINFO], kern[K_SYSVARS],
                                                    kern[K_NUMASTAT])
    vmstat, pol_nodes, tasks, task_mems, pages = (kern[K_VMSTAT], kern[K_POL_NODES],
                                                  kern[K_TASKS], kern[K_TASK_MEMS],
                                                  kern[K_PAGES])
    if sysvars[SV_NEXT_PAGE] >= pages.shape[0]:
        return ALLOC_NEED_ROOM
    nid = res[R_NID]
    mask_kind = res[R_MASK_KIND]
    mask_idx = res[R_MASK_IDX]
    cpu_nid = tasks[t, T_NODE]
    nr = nodeinfo.shape[0]
    if sysvars[SV_KGEN] == KGEN_2_6_7 and mode == MPOL_BIND and mask_kind == MASK_POLICY:
        bind_zonelist_alloc(zones, sysvars, numastat, vmstat, pol_nodes, task_mems, t,
                            cpu_nid, gfp, order, p, nr, may_oom, res)
    elif mode == MPOL_PREFERRED_MANY:
        # alloc_pages_preferred_many: inside the mask without reclaim, then anywhere
        __alloc_pages(zones, zonelist, sysvars, numastat, vmstat, pol_nodes, task_mems, t,
                      cpu_nid, gfp, order, nid, mask_kind, mask_idx, OOM_NEVER, res)
        if res[R_ZONE] < 0:
            __alloc_pages(zones, zonelist, sysvars, numastat, vmstat, pol_nodes, task_mems, t,
                          cpu_nid, gfp, order, nid, MASK_NONE, 0, may_oom, res)
    elif order > 0 and gfp_transhuge(gfp) and mode != MPOL_INTERLEAVE and \
            mode != MPOL_WEIGHTED_INTERLEAVE and \
            (mask_kind != MASK_POLICY or pol_nodes[mask_idx, nid] != 0):
        # THP under a non-interleave policy: first only the wanted node (gfp | __GFP_THISNODE
        # | __GFP_NORETRY: the THP mask decides whether kswapd is woken); the caller retries
        # over the zonelist if the mask has direct reclaim, else falls back to base pages
        __alloc_pages(zones, zonelist, sysvars, numastat, vmstat, pol_nodes, task_mems, t,
                      cpu_nid, gfp, order, nid, MASK_NODE, nid, OOM_NEVER, res)
    else:
        __alloc_pages(zones, zonelist, sysvars, numastat, vmstat, pol_nodes, task_mems, t,
                      cpu_nid, gfp, order, nid, mask_kind, mask_idx, may_oom, res)
    z = res[R_ZONE]
    if z < 0:
        return z
    interleave_hit(numastat, sysvars, zones, z, nid, mode)
    return rmqueue(zones, sysvars, vmstat, pages, z, order, kind, obj, index)


@kernel_jit(inline="always")
def alloc_pages_mpol(kern, t, gfp, order, p, ilx, kind, obj, index, may_oom, res):
    """``alloc_pages_mpol``: place one allocation under policy ``p`` (-1 = no policy: the
    per-node default, i.e. local) with interleave index ``ilx`` (NO_ILX = the task's
    counter).  Returns a page row or ALLOC_FAIL / ALLOC_OOM / ALLOC_NEED_ROOM; res[R_NID]
    is the node the policy asked for."""
    mode = policy_nodemask(kern[K_POLICIES], kern[K_POL_NODES], kern[K_NODEINFO],
                           kern[K_SYSVARS], kern[K_TASKS], kern[K_TASK_MEMS], t, p, gfp, ilx,
                           res)
    return alloc_pages_nid(kern, t, gfp, order, p, mode, kind, obj, index, may_oom, res)


# ------------------------------------------------------------------ faults
@kernel_jit
def mpol_equal(policies, pol_nodes, a, b):
    """``mpol_equal``: same mode, flags, home node and nodes (-1 = no policy)."""
    if a == b:
        return True
    if a < 0 or b < 0:
        return False
    for c in (P_MODE, P_FLAGS, P_HOME):
        if policies[a, c] != policies[b, c]:
            return False
    for n in range(pol_nodes.shape[1]):
        if pol_nodes[a, n] != pol_nodes[b, n]:
            return False
    return True


@kernel_jit
def anon_vma_compatible(vmas, policies, pol_nodes, a, b):
    """``anon_vma_compatible``: b follows a and the two could be one VMA."""
    return (vmas[a, V_END] == vmas[b, V_START]
            and mpol_equal(policies, pol_nodes, vmas[a, V_POLICY], vmas[b, V_POLICY])
            and vmas[a, V_OBJ] == vmas[b, V_OBJ] and vmas[a, V_PROT] == vmas[b, V_PROT]
            and vmas[a, V_SHARED] == vmas[b, V_SHARED]
            and vmas[b, V_PGOFF] == vmas[a, V_PGOFF] + vmas[b, V_START] - vmas[a, V_START])


@kernel_jit
def anon_vma_prepare(vmas, policies, pol_nodes, sysvars, v):
    """``anon_vma_prepare``: a VMA gets its anon_vma at its first private write fault,
    reusing a compatible neighbour's (next first, then prev), else a new one.  Which one it
    gets decides whether mbind can merge VMAs back later."""
    if vmas[v, V_ANON_VMA] != 0:
        return
    mm = vmas[v, V_MM]
    nxt = -1
    prv = -1
    for u in range(vmas.shape[0]):
        if vmas[u, V_ALIVE] == 0 or u == v or vmas[u, V_MM] != mm:
            continue
        if vmas[u, V_START] == vmas[v, V_END]:
            nxt = u
        elif vmas[u, V_END] == vmas[v, V_START]:
            prv = u
    if nxt >= 0 and vmas[nxt, V_ANON_VMA] != 0 and \
            anon_vma_compatible(vmas, policies, pol_nodes, v, nxt):
        vmas[v, V_ANON_VMA] = vmas[nxt, V_ANON_VMA]
        return
    if prv >= 0 and vmas[prv, V_ANON_VMA] != 0 and \
            anon_vma_compatible(vmas, policies, pol_nodes, prv, v):
        vmas[v, V_ANON_VMA] = vmas[prv, V_ANON_VMA]
        return
    vmas[v, V_ANON_VMA] = sysvars[SV_NEXT_ANON_VMA]
    sysvars[SV_NEXT_ANON_VMA] += 1


@kernel_jit
def get_vma_policy(vmas, objs, sp, tasks, t, v, index, run):
    """``get_vma_policy``: the policy for page ``index`` of the VMA's object and the base of
    its interleave index (ilx = base + index).  Shared (shmem) objects look up their shared
    policy by page index (``shmem_get_policy``, ilx biased by the inode number); everything
    else uses the VMA's own policy; both fall back to the task policy.

    Also writes run[0:2], the index range [lo, hi) over which the answer stays the same, so a
    batch can skip the lookup for the following pages.  Returns (policy, ilx base).
    """
    kind = vmas[v, V_KIND]
    o = vmas[v, V_OBJ]
    lo = vmas[v, V_PGOFF]
    hi = lo + vmas[v, V_END] - vmas[v, V_START]
    if kind == KIND_SHMEM:
        base = objs[o, O_INO]
        found = -1
        for s in range(sp.shape[0]):
            if sp[s, S_ALIVE] == 0 or sp[s, S_OBJ] != o:
                continue
            if sp[s, S_START] <= index < sp[s, S_END]:
                found = s
                lo = max(lo, sp[s, S_START])
                hi = min(hi, sp[s, S_END])
            elif sp[s, S_END] <= index:
                lo = max(lo, sp[s, S_END])
            else:
                hi = min(hi, sp[s, S_START])
        run[0] = lo
        run[1] = hi
        if found >= 0:
            return sp[found, S_POLICY], base
        return tasks[t, T_POLICY], base
    run[0] = lo
    run[1] = hi
    p = vmas[v, V_POLICY]
    if p < 0:
        p = tasks[t, T_POLICY]
    return p, 0


@kernel_jit
def pgt_slot(pgtables, key):
    """Slot of ``key`` in the page-table hash (or of the empty slot where it would go)."""
    cap = pgtables.shape[0]
    idx = key & ((1 << 36) - 1)
    level = (key >> 36) & 0xF
    mm = key >> 40
    i = (idx * 40503 + mm * 1000003 + level * 97) & (cap - 1)
    while True:
        k = pgtables[i, 0]
        if k == key or k == PGT_EMPTY:
            return i
        i = (i + 1) & (cap - 1)


@kernel_jit(inline="always")
def pgtable_alloc(kern, t, mm, vpn, oom_mode, res):
    """Allocate the PUD/PMD/PTE table pages a fault at ``vpn`` needs (``__pud_alloc``,
    ``__pmd_alloc``, ``__pte_alloc``): GFP_KERNEL under the task policy, counter interleave.
    Returns FAULT_OK, FAULT_OOM or FAULT_NEED_ROOM."""
    tasks, pages, vmstat = kern[K_TASKS], kern[K_PAGES], kern[K_VMSTAT]
    pgtables = kern[K_PGTABLES]
    for level in (PGT_PUD, PGT_PMD, PGT_PTE):
        shift = 27 if level == PGT_PUD else (18 if level == PGT_PMD else 9)
        key = (mm << 40) | (level << 36) | (vpn >> shift)
        i = pgt_slot(pgtables, key)
        if pgtables[i, 0] == key:
            continue
        pg = alloc_pages_mpol(kern, t, GFP_KERNEL, 0, tasks[t, T_POLICY], NO_ILX, PGK_PGTABLE,
                              -1, key, oom_mode, res)
        if pg == ALLOC_NEED_ROOM:
            return FAULT_NEED_ROOM
        if pg < 0:
            return FAULT_OOM
        pages[pg, PG_MAPCOUNT] = 1
        pgtables[i, 0] = key
        pgtables[i, 1] = pg
        vmstat[VM_PGTABLE] += 1
    return FAULT_OK


# what an access finds in the page tables (pte_access): the kernel's rule for which
# accesses fault, in one place for this fault path and for the engines' page caches
ACCESS_FAULT = 0  # nothing usable mapped: any access enters the fault handler
ACCESS_RO = 1  # a read is served by the mapping; a write faults (COW, the zero page, PROT_READ)
ACCESS_RW = 2  # reads and writes are served by the mapping


@kernel_jit
def pte_access_of(cur, prot, shared, page_kind, mapcount):
    """Which accesses a page-table entry serves without a fault, from the values: ``cur``
    what the entry holds (a page row, PT_NONE, PT_SWAP or PT_ZERO), the VMA's ``prot`` and
    ``shared`` flag, the page's ``page_kind`` and ``mapcount`` (anything when cur < 0).

    A present page is writable when the VMA allows writing and the page is the task's own:
    the VMA is MAP_SHARED, or the page is private anonymous and mapped once (after fork
    both copies are read-only until one writes: COW; a MAP_PRIVATE file page is read-only
    until its private copy exists).  The shared zero page (a read of untouched private
    anonymous memory) serves reads only.  Nothing mapped, a swap entry or PROT_NONE: every
    access faults, and the fault handler decides (allocate, copy, swap in, SIGSEGV).
    Scalars only, so that a call per access costs no array passing (the fault path calls
    it for every page; :func:`pte_access` reads the values from the arrays)."""
    if prot == 0:
        return ACCESS_FAULT
    if cur == PT_ZERO:
        return ACCESS_RO
    if cur < 0:
        return ACCESS_FAULT
    if prot & 2 and (shared != 0 or (page_kind == PGK_ANON and mapcount <= 1)):
        return ACCESS_RW
    return ACCESS_RO


@kernel_jit
def pte_access(pages, vmas, pt_page, pt_vma, slot):
    """:func:`pte_access_of` for page-table slot ``slot`` (no VMA there: ACCESS_FAULT):
    what an engine asks before it serves an access from its page cache."""
    v = pt_vma[slot]
    if v < 0:
        return ACCESS_FAULT
    cur = pt_page[slot]
    kind = pages[cur, PG_KIND] if cur >= 0 else 0
    mapcount = pages[cur, PG_MAPCOUNT] if cur >= 0 else 0
    return pte_access_of(cur, vmas[v, V_PROT], vmas[v, V_SHARED], kind, mapcount)


@kernel_jit
def access_faults(access, write):
    """Does an access (``write`` or a read) that :func:`pte_access` answered ``access``
    enter the fault handler?"""
    return access == ACCESS_FAULT or (write != 0 and access != ACCESS_RW)


@kernel_jit(extra={"prot": I64_1D})
def pte_numa_hint(prot, pt_page, slot):
    """Is the entry at ``slot`` one NUMA balancing made PROT_NONE (``change_prot_numa``;
    ``NumaBalancing.prot`` holds the page row it protected, -1 for none)?  Then any access
    to it is a hinting fault (``do_numa_page``), whatever :func:`pte_access` says of the
    page: the rule the timing engines ask before an access (``prot`` may be shorter than
    the page tables: slots past its end were never protected)."""
    if slot >= prot.shape[0]:
        return False
    p = prot[slot]
    return p >= 0 and p == pt_page[slot]


@kernel_jit(extra={"il_nodes": I64_1D, "il_cum": I64_1D})
def interleave_run(pol_nodes, nodeinfo, p, mode, il_nodes, il_cum):
    """The node list of an (weighted) interleave policy ``p`` and its cumulative weights,
    fixed along a run of pages under it: returns (nodes, total weight); (0, 0) for any
    other mode."""
    il_n = 0
    il_total = 0
    if mode == MPOL_INTERLEAVE or mode == MPOL_WEIGHTED_INTERLEAVE:
        for nn in range(nodeinfo.shape[0]):
            if pol_nodes[p, nn]:
                il_total += nodeinfo[nn, N_WEIGHT] if mode == MPOL_WEIGHTED_INTERLEAVE else 1
                il_nodes[il_n] = nn
                il_cum[il_n] = il_total
                il_n += 1
    return il_n, il_total


@kernel_jit(extra={"il_nodes": I64_1D, "il_cum": I64_1D}, inline="always")
def vma_policy_run(kern, t, v, index, run, il_nodes, il_cum, res):
    """What stays fixed along a run of pages of VMA ``v`` from page ``index`` on (the run is
    run[0:2], :func:`get_vma_policy`'s): the policy and its interleave index base, its mode,
    the node and nodemask of a non-interleave mode (``policy_nodemask``: res[R_NID],
    res[R_MASK_KIND], res[R_MASK_IDX]), the node list and cumulative weights of an
    interleave mode (:func:`interleave_run`).  Once per run, so the fault loop keeps only the
    per-page choice.  Returns (policy, ilx base, mode, interleave nodes, their total weight,
    node, mask kind, mask index)."""
    nodeinfo, sysvars, policies, pol_nodes, tasks = (kern[K_NODEINFO], kern[K_SYSVARS],
                                                     kern[K_POLICIES], kern[K_POL_NODES],
                                                     kern[K_TASKS])
    task_mems, vmas, objs, sp = kern[K_TASK_MEMS], kern[K_VMAS], kern[K_OBJS], kern[K_SP]
    p, ilx_base = get_vma_policy(vmas, objs, sp, tasks, t, v, index, run)
    mode = policy_mode(policies, p, GFP_USER_MOVABLE)
    il_n, il_total = interleave_run(pol_nodes, nodeinfo, p, mode, il_nodes, il_cum)
    policy_nodemask(policies, pol_nodes, nodeinfo, sysvars, tasks, task_mems, t, p,
                    GFP_USER_MOVABLE, 0, res)
    return p, ilx_base, mode, il_n, il_total, res[R_NID], res[R_MASK_KIND], res[R_MASK_IDX]


@kernel_jit(extra={"il_nodes": I64_1D, "il_cum": I64_1D}, inline="always")
def run_interleave_nid(mode, kgen, ilx, run_nid, il_nodes, il_cum, il_n, il_total):
    """The node of interleave index ``ilx`` along a run (``interleave_nid`` /
    ``weighted_interleave_nid`` over the run's node list, :func:`interleave_run`); the run's
    node when the mode does not interleave."""
    if il_n == 0:
        return run_nid
    if mode == MPOL_INTERLEAVE:
        if kgen == KGEN_6_1 or kgen == KGEN_2_6_7:
            return il_nodes[(ilx & 0xFFFFFFFF) % il_n]  # offset_il_node's unsigned int
        return il_nodes[ilx % il_n]
    target = ilx % il_total
    k = 0
    while il_cum[k] <= target:
        k += 1
    return il_nodes[k]


@kernel_jit(inline="always")
def take_cached_zone_page(kern, z, pref, nid, mode, kind, obj, index, cpu_nid):
    """A page from zone ``z``, the zone the zonelist walk for target ``nid`` would stop at
    again (the fault batch's cache: :func:`handle_mm_fault_range`), with the counters
    ``rmqueue`` and ``zone_statistics`` move (``pref``: the walk's preferred zone)."""
    zones, sysvars, numastat, vmstat, pages = (kern[K_ZONES], kern[K_SYSVARS],
                                               kern[K_NUMASTAT], kern[K_VMSTAT], kern[K_PAGES])
    pg = rmqueue(zones, sysvars, vmstat, pages, z, 0, kind, obj, index)
    zone_statistics(numastat, sysvars, zones, pref, z, cpu_nid)
    interleave_hit(numastat, sysvars, zones, z, nid, mode)
    return pg


@kernel_jit(inline="always")
def map_new_page(kern, pg, cur, private, oslot, slot, write):
    """Map the fresh page ``pg`` at page-table slot ``slot`` (``do_anonymous_page`` /
    ``wp_page_copy``'s ``set_pte_at``; a shared object's page goes into the object at
    ``oslot`` too).  Returns 1 when copy-on-write freed the page it replaced."""
    zones, vmstat, pages, pt_page, obj_pages = (kern[K_ZONES], kern[K_VMSTAT], kern[K_PAGES],
                                                kern[K_PT_PAGE], kern[K_OBJ_PAGES])
    freed = 0
    if private:
        if cur == PT_SWAP:
            vmstat[VM_SWPIN] += 1
        if cur >= 0:
            pages[cur, PG_MAPCOUNT] -= 1  # copy-on-write: the old page loses a mapping
            if pages[cur, PG_MAPCOUNT] <= 0 and pages[cur, PG_KIND] == PGK_ANON:
                free_page(zones, vmstat, pages, cur)
                freed = 1
    else:
        if obj_pages[oslot] == PT_SWAP:
            vmstat[VM_SWPIN] += 1
        obj_pages[oslot] = pg
    pages[pg, PG_MAPCOUNT] = 1
    pt_page[slot] = pg
    pages[pg, PG_DIRTY] = write
    return freed


@kernel_jit
def handle_mm_fault_range(kern, t, r, first_vpn, n, write, oom_mode, res):
    """Touch pages ``first_vpn .. first_vpn+n-1`` of region ``r`` as task ``t`` (write or
    read), faulting in what is missing as ``handle_mm_fault`` would: private pages under the
    VMA policy (read faults map the zero page), shmem pages found or allocated under the
    shared policy, file pages under the task policy, copy-on-write after fork.

    Stops at the first page it cannot handle and returns that status (FAULT_OOM,
    FAULT_SEGV, FAULT_SIGBUS, FAULT_NEED_ROOM) or FAULT_OK; res[R_DONE] = pages handled,
    res[R_ALLOCATED] = data pages allocated, res[R_NID] = the policy's node for the last one.

    Speed: consecutive pages under the same policy reuse the zone chosen for the same target
    node as long as that zone still passes its LOW mark; this is exactly what a fresh
    zonelist walk would pick, because within a batch zones only lose pages (the cache is
    dropped when a copy-on-write frees one).  Per-run work lives in :func:`vma_policy_run`,
    the per-page steps in :func:`run_interleave_nid`, :func:`take_cached_zone_page` and
    :func:`map_new_page`, inlined here.  (Such helpers once made faults 25 % to 4x slower,
    while every call counted references to the arrays it was passed; the core no longer
    does: its batch caches live in ``res``, :func:`fault_res`.)
    """
    (zones, _, nodeinfo, _, sysvars, numastat, vmstat, policies, pol_nodes, tasks, task_mems,
     regions, vmas, objs, _, pages, pt_page, pt_vma, obj_pages, _) = kern
    nr = nodeinfo.shape[0]
    mm, base, rstart = regions[r, R_MM], regions[r, R_PT], regions[r, R_START]
    cpu_nid = tasks[t, T_NODE]
    kgen = sysvars[SV_KGEN]
    # per target node: zone, preferred, mark; the run; the interleave nodes (fault_res)
    cache_zone, cache_pref, cache_thresh, run, il_nodes, il_cum = (
        res[R_SCRATCH:R_SCRATCH + nr], res[R_SCRATCH + nr:R_SCRATCH + 2 * nr],
        res[R_SCRATCH + 2 * nr:R_SCRATCH + 3 * nr], res[R_SCRATCH + 3 * nr:R_SCRATCH + 3 * nr + 2],
        res[R_SCRATCH + 3 * nr + 2:R_SCRATCH + 4 * nr + 2],
        res[R_SCRATCH + 4 * nr + 2:R_SCRATCH + 5 * nr + 2])
    res[R_SCRATCH:R_SCRATCH + 5 * nr + 2] = 0
    cache_zone[:] = -1
    # the current run of pages under one policy (vma_policy_run), the last VMA and PTE table
    run_v, run_lo, run_hi, p, ilx_base, mode, cacheable = -1, 0, -1, -1, 0, -1, False
    il_n, il_total, run_nid, run_mask_kind, run_mask_idx = 0, 0, 0, 0, 0
    last_v, last_pte = -1, -1
    res[R_DONE] = 0
    res[R_ALLOCATED] = 0
    for i in range(n):
        vpn = first_vpn + i
        if vpn < rstart or vpn >= regions[r, R_END]:
            return FAULT_SEGV
        slot = base + (vpn - rstart)
        v = pt_vma[slot]
        if v < 0:
            return FAULT_SEGV
        prot = vmas[v, V_PROT]
        if prot == 0 or (write and (prot & 2) == 0):
            return FAULT_SEGV
        cur = pt_page[slot]
        kind = vmas[v, V_KIND]
        shared = vmas[v, V_SHARED] != 0
        acc = pte_access_of(cur, prot, vmas[v, V_SHARED],
                            pages[cur, PG_KIND] if cur >= 0 else 0,
                            pages[cur, PG_MAPCOUNT] if cur >= 0 else 0)
        if acc == ACCESS_RW or (acc == ACCESS_RO and not write):
            if write:
                pages[cur, PG_DIRTY] = 1
            res[R_DONE] += 1
            continue
        vmstat[VM_PGFAULT] += 1
        if vpn >> 9 != last_pte:
            st = pgtable_alloc(kern, t, mm, vpn, oom_mode, res)
            if st != FAULT_OK:
                return st
            last_pte = vpn >> 9
            cache_zone[:] = -1  # the table may have come from a cached zone's free pages
        index = vmas[v, V_PGOFF] + (vpn - vmas[v, V_START])
        o = vmas[v, V_OBJ]
        private = kind == KIND_ANON or (not shared and write)  # MAP_PRIVATE file: COW
        oslot = -1
        if private:  # do_anonymous_page / wp_page_copy
            if kind == KIND_ANON and cur == PT_NONE and not write:
                pt_page[slot] = PT_ZERO  # read fault: map the shared zero page
                res[R_DONE] += 1
                continue
            if v != last_v:
                anon_vma_prepare(vmas, policies, pol_nodes, sysvars, v)
                last_v = v
            pk = PGK_ANON
        else:  # do_shared_fault / do_read_fault: the object's page, if it has one
            if index >= objs[o, O_SIZE] or index >= objs[o, O_NPAGES]:
                return FAULT_SIGBUS
            oslot = objs[o, O_BASE] + index
            pg = obj_pages[oslot]
            if pg >= 0:
                if cur != pg:
                    pages[pg, PG_MAPCOUNT] += 1
                    pt_page[slot] = pg
                if write:
                    pages[pg, PG_DIRTY] = 1
                res[R_DONE] += 1
                continue
            pk = PGK_SHMEM if kind == KIND_SHMEM else PGK_FILE
        # ---- which policy, which node
        if kind == KIND_FILE and not private:
            if v != run_v or run_hi != -2:
                p = tasks[t, T_POLICY]  # page cache: task policy, counter interleave
                cache_zone[:] = -1
                run_v, run_hi = v, -2
                mode = policy_mode(policies, p, GFP_USER_MOVABLE)
                cacheable = mode != MPOL_PREFERRED_MANY and kgen != KGEN_2_6_7
            ilx = NO_ILX
        else:
            if v != run_v or index < run_lo or index >= run_hi:
                q, ilx_base, mode, il_n, il_total, run_nid, run_mask_kind, run_mask_idx = \
                    vma_policy_run(kern, t, v, index, run, il_nodes, il_cum, res)
                if q != p:
                    cache_zone[:] = -1
                p, run_v, run_lo, run_hi = q, v, run[0], run[1]
                cacheable = mode != MPOL_PREFERRED_MANY and kgen != KGEN_2_6_7
            ilx = ilx_base + index
        if ilx == NO_ILX:
            policy_nodemask(policies, pol_nodes, nodeinfo, sysvars, tasks, task_mems, t, p,
                            GFP_USER_MOVABLE, ilx, res)
        else:
            res[R_NID] = run_interleave_nid(mode, kgen, ilx, run_nid, il_nodes, il_cum, il_n,
                                            il_total)
            res[R_MASK_KIND] = run_mask_kind
            res[R_MASK_IDX] = run_mask_idx
        nid = res[R_NID]
        z = cache_zone[nid] if cacheable else -1
        if z >= 0 and zones[z, Z_FREE] > cache_thresh[nid] and \
                sysvars[SV_NEXT_PAGE] < pages.shape[0]:
            # the zonelist walk would stop at the same zone: take the page directly
            pg = take_cached_zone_page(kern, z, cache_pref[nid], nid, mode, pk,
                                       o if not private else -1, index, cpu_nid)
        else:
            pg = alloc_pages_nid(kern, t, GFP_USER_MOVABLE, 0, p, mode, pk,
                                 o if not private else -1, index, oom_mode, res)
            if pg == ALLOC_NEED_ROOM:
                return FAULT_NEED_ROOM
            if pg < 0:
                return FAULT_OOM
            if cacheable and res[R_PASS] == 0:
                z = res[R_ZONE]
                cache_zone[nid] = z
                cache_pref[nid] = res[R_PREF]
                cache_thresh[nid] = zones[z, Z_LOW] + zones[z, Z_RES + ZONE_MOVABLE]
        # ---- map it
        res[R_ALLOCATED] += 1
        if map_new_page(kern, pg, cur, private, oslot, slot, write):
            cache_zone[:] = -1  # copy-on-write freed the old page
        res[R_DONE] += 1
    return FAULT_OK


@kernel_jit
def alloc_counted(kern, t, gfp, p, n, kind, obj, first_index, ilx_base, oom_mode, res,
                  out_pages):
    """``n`` separate order-0 allocations without a page-table mapping (page cache written
    with write(2), kernel memory) under policy ``p``: ilx = ilx_base + i, or the task's
    counter when ilx_base is NO_ILX.  Fills ``out_pages``; returns how many succeeded and
    stores the failure code after the last good one."""
    pages = kern[K_PAGES]
    done = 0
    for i in range(n):
        ilx = NO_ILX if ilx_base == NO_ILX else ilx_base + i
        idx = first_index + i if first_index >= 0 else -1
        pg = alloc_pages_mpol(kern, t, gfp, 0, p, ilx, kind, obj, idx, oom_mode, res)
        out_pages[i] = pg
        if pg < 0:
            return done
        pages[pg, PG_MAPCOUNT] = 0
        pages[pg, PG_DIRTY] = 1  # written with write(2)
        done += 1
    return done
