"""The hot loop of NUMA balancing, jitted: a run of hinting faults in one VMA.

:meth:`numasim.mm.numa_balancing.NumaBalancing.do_numa_page` is the reference (plain
Python, one fault at a time, every rule commented there).  :func:`numa_hint_faults` does the
same for a run of PROT_NONE pages of one VMA under one policy, without leaving numba: the
fault counters, ``mpol_misplaced`` with the ``last_cpupid`` filter, the refusals of
``migrate_misplaced_folio_prepare``, the copy to the target node through the allocator core
(``alloc_pages_nid``, ``__GFP_THISNODE``) and the ``task_numa_fault`` buffers.  What it does
not do it hands back: it stops before a page that is mapped more than once or belongs to a
file (the Python path replaces every mapping of those), and the caller runs placement
(``task_numa_placement``) before the run when it is due.  ``tests/test_numa_balancing.py``
holds the two paths to the same answers.
"""

from __future__ import annotations

from numba import types

from numasim.jit import I64_1D, I64_2D, kernel_jit
from numasim.mm.alloc_core import (
    MASK_NODE,
    OOM_NEVER,
    R_MASK_IDX,
    R_MASK_KIND,
    R_NID,
    alloc_pages_nid,
    free_page,
)
from numasim.mm.constants import (
    GFP_THISNODE,
    KGEN_6_1,
    MPOL_BIND,
    MPOL_F_MOF,
    MPOL_F_MORON,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)
from numasim.mm.state import (
    K_CPU_NODE,
    K_NODEINFO,
    K_OBJS,
    K_PAGES,
    K_PT_PAGE,
    K_SYSVARS,
    K_VMSTAT,
    K_ZONELIST,
    K_ZONES,
    N_MEMORY,
    O_BASE,
    PG_DIRTY,
    PG_INDEX,
    PG_KIND,
    PG_MAPCOUNT,
    PG_NODE,
    PG_OBJ,
    PGK_FILE,
    SV_KGEN,
    VM_PGMIGRATE_FAIL,
    VM_PGMIGRATE_SUCCESS,
    Z_FREE,
    Z_HIGH,
    Z_MANAGED,
    Z_NODE,
    Z_RES,
)

U8_1D = types.Array(types.uint8, 1, "C")
# the run's bundles: ``pol`` the VMA's policy (mode, flags, vm_start, vm_pgoff) with its nodes
# in ``pnodes``; ``task`` the faulting task (t, cpu, its node, numa_preferred_nid,
# numa_scan_seq); ``tnf`` its task_numa_fault buffers (membuf, cpubuf, locality, tstat)
POL_MODE, POL_FLAGS, POL_VSTART, POL_VPGOFF = range(4)
TASK_T, TASK_CPU, TASK_NID, TASK_PREFERRED_NID, TASK_SCAN_SEQ = range(5)
EXTRA = {"prot": I64_1D, "lc": I64_1D, "lc_key": I64_1D, "slots": I64_1D, "vpns": I64_1D,
         "pnodes": U8_1D, "batch": I64_1D, "counters": I64_1D,
         "pol": types.UniTuple(types.int64, 4), "task": types.UniTuple(types.int64, 5),
         "tnf": types.Tuple((I64_2D, I64_2D, I64_1D, I64_1D))}

# counters[]: the order of numa_balancing.COUNTERS
C_PTE_UPDATES = 0
C_HINT_FAULTS = 2
C_HINT_FAULTS_LOCAL = 3
C_PAGES_MIGRATED = 4
TNF_MIGRATED = 0x01
TNF_FAULT_LOCAL = 0x08
TNF_MIGRATE_FAIL = 0x10


@kernel_jit(extra=EXTRA)
def page_key(pages, objs, pg, slot):
    """What a ``last_cpupid`` belongs to: the page-table slot, or the object's page."""
    o = pages[pg, PG_OBJ]
    if o >= 0:
        return -2 - (objs[o, O_BASE] + pages[pg, PG_INDEX])
    return slot


@kernel_jit(extra=EXTRA)
def node_balanced(zones, nid):
    """``migrate_balanced_pgdat``: some zone of the node is above high + the page + its
    lowmem reserve for ZONE_MOVABLE (``zone_watermark_ok(..., ZONE_MOVABLE, 0)``)."""
    for z in range(zones.shape[0]):
        if zones[z, Z_NODE] == nid and zones[z, Z_MANAGED] > 0 and \
                zones[z, Z_FREE] > zones[z, Z_HIGH] + 1 + zones[z, Z_RES + 3]:
            return 1
    return 0


@kernel_jit(extra=EXTRA)
def should_migrate(nodeinfo, cpu_node, lc, lc_key, pages, objs, pg, slot, t, kgen, dst_cpu,
                   dst_nid, preferred_nid, task_seq):
    """``should_numa_migrate_memory`` without numa groups or tiering (1 = yes)."""
    if kgen != KGEN_6_1 and nodeinfo[dst_nid, N_MEMORY] == 0:
        return 0
    key = page_key(pages, objs, pg, slot)
    last = lc[pg] if lc_key[pg] == key else -1
    lc[pg] = (dst_cpu << 8) | (t & 0xFF)
    lc_key[pg] = key
    last_pid = -1 if last < 0 else last & 0xFF
    if (preferred_nid == -1 or task_seq <= 4) and (last_pid == -1 or last_pid == (t & 0xFF)):
        return 1
    if last_pid == -1 or cpu_node[last >> 8] == dst_nid:
        return 1
    return 0


@kernel_jit(extra=EXTRA)
def misplaced(kern, lc, lc_key, pnodes, pol, task, pg, slot, vpn, curnid):
    """``mpol_misplaced`` for a policy given as ``pol`` and ``pnodes``: target node or -1."""
    zones, zonelist, nodeinfo, cpu_node = (kern[K_ZONES], kern[K_ZONELIST], kern[K_NODEINFO],
                                           kern[K_CPU_NODE])
    pmode, pflags, vstart, vpgoff = pol
    t, cpu, thisnid, preferred_nid, task_seq = task
    if pflags & MPOL_F_MOF == 0:
        return -1
    if pmode == MPOL_INTERLEAVE or pmode == MPOL_WEIGHTED_INTERLEAVE:
        cnt = 0
        for n in range(pnodes.shape[0]):
            cnt += pnodes[n]
        k = (vpn - vstart + vpgoff) % cnt
        polnid = -1
        for n in range(pnodes.shape[0]):
            if pnodes[n]:
                if k == 0:
                    polnid = n
                    break
                k -= 1
    elif pmode == MPOL_PREFERRED:
        if pnodes[curnid]:
            return -1
        polnid = -1
        for n in range(pnodes.shape[0]):
            if pnodes[n]:
                polnid = n
                break
    elif pmode == MPOL_LOCAL:
        polnid = thisnid
    elif pmode == MPOL_BIND or pmode == MPOL_PREFERRED_MANY:
        if pflags & MPOL_F_MORON:
            if pnodes[thisnid] == 0:
                return -1
            polnid = thisnid
        else:
            if pnodes[curnid]:
                return -1
            polnid = curnid
            for i in range(zonelist.shape[1]):
                z = zonelist[thisnid, i]
                if z < 0:
                    break
                if pnodes[zones[z, Z_NODE]]:
                    polnid = zones[z, Z_NODE]
                    break
    else:
        return -1
    if pflags & MPOL_F_MORON:
        polnid = thisnid
        if not should_migrate(nodeinfo, cpu_node, lc, lc_key, kern[K_PAGES], kern[K_OBJS], pg,
                              slot, t, kern[K_SYSVARS][SV_KGEN], cpu, thisnid, preferred_nid,
                              task_seq):
            return -1
    return polnid if polnid != curnid else -1


@kernel_jit(extra=EXTRA)
def numa_hint_faults(kern, prot, lc, lc_key, slots, vpns, pnodes, pol, task, batch, counters,
                     tnf, res):
    """Hinting faults on ``slots`` (PROT_NONE pages of one VMA, address order).  Returns
    how many were handled; the page at that index (if any) needs the Python path."""
    zones, vmstat, objs, pages, pt_page = (kern[K_ZONES], kern[K_VMSTAT], kern[K_OBJS],
                                           kern[K_PAGES], kern[K_PT_PAGE])
    t, thisnid = task[TASK_T], task[TASK_NID]
    membuf, cpubuf, locality, tstat = tnf
    for i in range(slots.shape[0]):
        slot = slots[i]
        pg = pt_page[slot]
        if pages[pg, PG_MAPCOUNT] > 1 or pages[pg, PG_OBJ] >= 0:
            return i
        prot[slot] = -1
        nid = pages[pg, PG_NODE]
        flags = 0
        key = page_key(pages, objs, pg, slot)
        last = lc[pg] if lc_key[pg] == key else -1
        counters[C_HINT_FAULTS] += 1
        if nid == thisnid:
            counters[C_HINT_FAULTS_LOCAL] += 1
            flags |= TNF_FAULT_LOCAL
        target = misplaced(kern, lc, lc_key, pnodes, pol, task, pg, slot, vpns[i], nid)
        mem_node = nid
        if target >= 0:
            ok = pages[pg, PG_KIND] != PGK_FILE and node_balanced(zones, target) == 1
            for j in range(batch.shape[0]):
                if batch[j] == pg:
                    ok = False
            if not ok:
                flags |= TNF_MIGRATE_FAIL
            else:
                res[R_NID] = target
                res[R_MASK_KIND] = MASK_NODE
                res[R_MASK_IDX] = target
                new = alloc_pages_nid(kern, t, GFP_THISNODE, 0, -1, -1, pages[pg, PG_KIND], -1,
                                      pages[pg, PG_INDEX], OOM_NEVER, res)
                if new < 0:
                    vmstat[VM_PGMIGRATE_FAIL] += 1
                    flags |= TNF_MIGRATE_FAIL
                else:
                    pages[new, PG_DIRTY] = pages[pg, PG_DIRTY]
                    pages[new, PG_MAPCOUNT] = 1
                    pt_page[slot] = new
                    pages[pg, PG_MAPCOUNT] = 0
                    free_page(zones, vmstat, pages, pg)
                    lc[new] = lc[pg]
                    lc_key[new] = slot
                    lc[pg] = -1
                    lc_key[pg] = -1
                    vmstat[VM_PGMIGRATE_SUCCESS] += 1
                    counters[C_PAGES_MIGRATED] += 1
                    flags |= TNF_MIGRATED
                    mem_node = target
        # task_numa_fault (placement is the caller's, before the run)
        priv = 1 if last < 0 or (last & 0xFF) == (t & 0xFF) else 0
        if flags & TNF_MIGRATED:
            tstat[0] += 1
        if flags & TNF_MIGRATE_FAIL:
            locality[2] += 1
        membuf[mem_node, priv] += 1
        cpubuf[thisnid, priv] += 1
        locality[1 if flags & TNF_FAULT_LOCAL else 0] += 1
    return slots.shape[0]
