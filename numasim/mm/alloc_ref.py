"""The allocator core's plain-Python twin: the same decisions, written to be read.

Where :mod:`numasim.mm.alloc_core` is tuned for numba (flat loops, cached zone choices within a
batch), this module follows the kernel's own shape -- a nodemask is a Python set, a zonelist is
a list of zones walked from the preferred one, every page goes through the whole of
``alloc_pages_mpol`` -- and keeps no cache.  It exposes the same entry points with the same
signatures over the same arrays (``Kernel(machine, backend="python")`` uses it), and the
differential tests drive both with random machines and random system-call sequences and demand
identical pages, nodes, counters and errors.  It is also the slow reference for
``benchmarks/bench_faults.py``.
"""

from __future__ import annotations

from numasim.mm import state as S
from numasim.mm.alloc_core import (  # shared protocol constants, not logic
    ALLOC_FAIL,
    ALLOC_NEED_ROOM,
    ALLOC_OOM,
    MASK_MEMS,
    MASK_NODE,
    MASK_NONE,
    MASK_POLICY,
    NO_ILX,
    OOM_MAY,
    OOM_NEVER,
    OOM_VICTIM,
    R_ALLOCATED,
    R_DONE,
    R_MASK_IDX,
    R_MASK_KIND,
    R_NID,
    R_PASS,
    R_PREF,
    R_SIZE,
    R_ZONE,
)
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
from numasim.topology.model import ZoneType

ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE = (int(ZoneType.DMA), int(ZoneType.DMA32),
                                                   int(ZoneType.NORMAL), int(ZoneType.MOVABLE))

__all__ = ["handle_mm_fault_range", "pgtable_alloc", "alloc_pages_mpol", "alloc_pages_nid",
           "alloc_counted", "free_page", "R_SIZE", "OOM_MAY", "OOM_NEVER", "OOM_VICTIM",
           "ALLOC_FAIL", "ALLOC_OOM", "ALLOC_NEED_ROOM", "NO_ILX", "MASK_NODE", "R_NID",
           "R_MASK_KIND", "R_MASK_IDX", "R_DONE", "R_ALLOCATED"]


_USER_GFPS = (GFP_USER_MOVABLE, GFP_THISNODE, GFP_TRANSHUGE_LIGHT, GFP_TRANSHUGE,
              GFP_TRANSHUGE_KSWAPD)
"""Masks of user pages: highest zone MOVABLE, __GFP_HARDWALL (cpusets)."""


def gfp_zone(gfp: int) -> int:
    if gfp in _USER_GFPS:
        return ZONE_MOVABLE
    return {GFP_DMA32: ZONE_DMA32, GFP_DMA: ZONE_DMA}.get(gfp, ZONE_NORMAL)


def nodes_of(pol_nodes, p: int) -> list[int]:
    return [n for n in range(pol_nodes.shape[1]) if pol_nodes[p, n]]


def next_node_in(node: int, mask: list[int]) -> int:
    if not mask:
        return MAX_NUMNODES
    after = [n for n in mask if n > node]
    return after[0] if after else mask[0]


# ----------------------------------------------------------------- policy side
def policy_nodemask(policies, pol_nodes, nodeinfo, sysvars, tasks, task_mems, t, p, gfp, ilx,
                    res) -> int:
    """Where the allocation should start and which nodes it may use; returns the mode the
    allocation runs under (-1: no policy, i.e. local)."""
    cpu_nid = int(tasks[t, S.T_NODE])
    kgen = int(sysvars[S.SV_KGEN])
    mode = -1 if (p < 0 or gfp in (GFP_ATOMIC, GFP_THISNODE)) else int(policies[p, S.P_MODE])
    nid, mask_kind, mask_idx = cpu_nid, MASK_NONE, 0
    nodes = nodes_of(pol_nodes, p) if p >= 0 else []
    home = int(policies[p, S.P_HOME]) if p >= 0 else -1
    if mode == MPOL_PREFERRED:
        if nodes:
            nid = nodes[0]
    elif mode == MPOL_PREFERRED_MANY:
        mask_kind, mask_idx = MASK_POLICY, p
        if home >= 0:
            nid = home
    elif mode == MPOL_BIND:
        highest = gfp_zone(gfp)
        if kgen == KGEN_2_6_7:
            if highest >= sysvars[S.SV_POLICY_ZONE]:
                mask_kind, mask_idx, nid = MASK_POLICY, p, nodes[0]
        else:
            policy_zone = int(sysvars[S.SV_POLICY_ZONE])
            if not any(nodeinfo[n, S.N_NORMAL] for n in nodes):
                policy_zone = ZONE_MOVABLE  # apply_policy_zone: movable-only nodes
            mems = {n for n in range(task_mems.shape[1]) if task_mems[t, n]}
            if highest >= policy_zone and mems & set(nodes):
                mask_kind, mask_idx = MASK_POLICY, p
            if home >= 0:
                nid = home
    elif mode == MPOL_INTERLEAVE:
        if ilx == NO_ILX:
            nid = next_node_in(int(tasks[t, S.T_IL_PREV]), nodes)
            if nid < MAX_NUMNODES:
                tasks[t, S.T_IL_PREV] = nid
        elif nodes:
            i = ilx & 0xFFFFFFFF if kgen in (KGEN_6_1, KGEN_2_6_7) else ilx
            nid = nodes[i % len(nodes)]
    elif mode == MPOL_WEIGHTED_INTERLEAVE:
        weight = {n: int(nodeinfo[n, S.N_WEIGHT]) for n in nodes}
        if ilx == NO_ILX:
            node = int(tasks[t, S.T_IL_PREV])
            if tasks[t, S.T_IL_WEIGHT] == 0 or node not in weight:
                node = next_node_in(node, nodes)
                if node != MAX_NUMNODES:
                    tasks[t, S.T_IL_PREV] = node
                    tasks[t, S.T_IL_WEIGHT] = weight[node]
            if node != MAX_NUMNODES:
                tasks[t, S.T_IL_WEIGHT] -= 1
            nid = node
        elif nodes:
            target = ilx % sum(weight.values())
            for n in nodes:
                if target < weight[n]:
                    nid = n
                    break
                target -= weight[n]
    if not 0 <= nid < nodeinfo.shape[0]:
        nid = cpu_nid
    res[R_NID], res[R_MASK_KIND], res[R_MASK_IDX] = nid, mask_kind, mask_idx
    return mode


# ------------------------------------------------------------------ zone side
def allowed_nodes(pol_nodes, task_mems, t, mask_kind, mask_idx) -> set[int] | None:
    if mask_kind == MASK_POLICY:
        return set(nodes_of(pol_nodes, mask_idx))
    if mask_kind == MASK_MEMS:
        return {n for n in range(task_mems.shape[1]) if task_mems[mask_idx, n]}
    if mask_kind == MASK_NODE:
        return {mask_idx}
    return None


def zone_ok(zones, z, order, mark: str, highest, reserve_eighths=8) -> bool:
    """``__zone_watermark_ok`` for order-0-like requests: free above mark + lowmem_reserve."""
    if mark == "none":
        return zones[z, S.Z_FREE] >= 1 << order
    wm = int(zones[z, S.Z_LOW if mark == "low" else S.Z_MIN])
    if mark == "min" and reserve_eighths <= 4:
        wm -= wm // 2
        if reserve_eighths <= 3:
            wm -= wm // 4
    free = int(zones[z, S.Z_FREE]) - ((1 << order) - 1)
    return free > wm + int(zones[z, S.Z_RES + highest])


def walk(zones, zonelist, nid, highest, nodemask, cpuset, order, mark, eighths=8) -> int:
    """``get_page_from_freelist``: zones of nid's zonelist, from the preferred one on."""
    eligible = [int(z) for z in zonelist[nid] if z >= 0 and zones[z, S.Z_TYPE] <= highest
                and (nodemask is None or zones[z, S.Z_NODE] in nodemask)]
    for z in eligible:
        if cpuset is not None and zones[z, S.Z_NODE] not in cpuset:
            continue
        if zone_ok(zones, z, order, mark, highest, eighths):
            return z
    return -1


def __alloc_pages(zones, zonelist, sysvars, numastat, vmstat, pol_nodes, task_mems, t, cpu_nid,
                  gfp, order, nid, mask_kind, mask_idx, may_oom, res) -> None:
    highest = gfp_zone(gfp)
    cpusets = bool(sysvars[S.SV_CPUSETS_ENABLED])
    if gfp == GFP_THISNODE:
        mask_kind, mask_idx = MASK_NODE, nid
    elif cpusets and mask_kind == MASK_NONE and gfp != GFP_ATOMIC:
        mask_kind, mask_idx = MASK_MEMS, t
    nodemask = allowed_nodes(pol_nodes, task_mems, t, mask_kind, mask_idx)
    cpuset = ({n for n in range(task_mems.shape[1]) if task_mems[t, n]}
              if cpusets and gfp in _USER_GFPS else None)
    prefs = [int(z) for z in zonelist[nid] if z >= 0 and zones[z, S.Z_TYPE] <= highest
             and (nodemask is None or zones[z, S.Z_NODE] in nodemask)]
    res[R_PASS] = 0
    res[R_PREF] = prefs[0] if prefs else -1
    if not prefs:
        res[R_ZONE] = ALLOC_FAIL
        return
    z = walk(zones, zonelist, nid, highest, nodemask, cpuset, order, "low")
    if z < 0:
        # reclaim hook: wake_all_kswapds, every node of the eligible zones (numasim.mm.vmscan),
        # unless the mask lacks __GFP_KSWAPD_RECLAIM (GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT)
        for zz in prefs if gfp not in (GFP_TRANSHUGE_LIGHT, GFP_TRANSHUGE) else ():
            if zones[zz, S.Z_NODE] < 63:
                sysvars[S.SV_KSWAPD_WAKE] |= 1 << int(zones[zz, S.Z_NODE])
        res[R_PASS] = 1
        z = walk(zones, zonelist, nid, highest, nodemask, cpuset, order, "min",
                 3 if gfp == GFP_ATOMIC else 8)
        if z < 0 and may_oom == OOM_VICTIM:
            nodemask = allowed_nodes(pol_nodes, task_mems, t,
                                     MASK_MEMS if cpusets else MASK_NONE, t)
            prefs = [int(z) for z in zonelist[nid] if z >= 0 and zones[z, S.Z_TYPE] <= highest
                     and (nodemask is None or zones[z, S.Z_NODE] in nodemask)]
            res[R_PREF] = prefs[0] if prefs else -1
            if prefs:
                z = walk(zones, zonelist, nid, highest, nodemask, None, order, "min", 4)
        if z < 0:
            direct = gfp not in (GFP_ATOMIC, GFP_TRANSHUGE_LIGHT, GFP_TRANSHUGE_KSWAPD)
            if direct and may_oom == OOM_MAY and gfp != GFP_THISNODE:
                vmstat[S.VM_ALLOCSTALL] += 1
                res[R_ZONE] = ALLOC_OOM
            else:
                res[R_ZONE] = ALLOC_FAIL
            return
    zone_statistics(numastat, sysvars, zones, int(res[R_PREF]), z, cpu_nid)
    res[R_ZONE] = z


def zone_statistics(numastat, sysvars, zones, pref, z, cpu_nid) -> None:
    if not sysvars[S.SV_STATS_ENABLED]:
        return
    node, pnode = int(zones[z, S.Z_NODE]), int(zones[pref, S.Z_NODE])
    if node == pnode:
        numastat[node, NUMA_HIT] += 1
    else:
        numastat[node, NUMA_MISS] += 1
        numastat[pnode, NUMA_FOREIGN] += 1
    numastat[node, NUMA_LOCAL if node == cpu_nid else NUMA_OTHER] += 1


def bind_zonelist_alloc(zones, sysvars, numastat, vmstat, pol_nodes, task_mems, t, cpu_nid, gfp,
                        order, p, may_oom, res) -> None:
    """2.6.7: the bind zonelist, lowest node id first, zones highest first."""
    highest = gfp_zone(gfp)
    order_zones = [z for n in nodes_of(pol_nodes, p)
                   for z in sorted((z for z in range(zones.shape[0]) if zones[z, S.Z_NODE] == n
                                    and zones[z, S.Z_TYPE] <= highest),
                                   key=lambda z: -zones[z, S.Z_TYPE])]
    res[R_PREF] = order_zones[0] if order_zones else -1
    for pass_, mark in ((0, "low"), (1, "min")):
        for z in order_zones:
            if zone_ok(zones, z, order, mark, highest):
                zone_statistics(numastat, sysvars, zones, order_zones[0], z, cpu_nid)
                res[R_ZONE], res[R_PASS] = z, pass_
                return
    res[R_PASS] = 1
    if order_zones and may_oom == OOM_MAY:
        vmstat[S.VM_ALLOCSTALL] += 1
        res[R_ZONE] = ALLOC_OOM
    else:
        res[R_ZONE] = ALLOC_FAIL


def rmqueue(zones, sysvars, vmstat, pages, z, order, kind, obj, index) -> int:
    pg = int(sysvars[S.SV_NEXT_PAGE])
    sysvars[S.SV_NEXT_PAGE] = pg + 1
    zones[z, S.Z_FREE] -= 1 << order
    vmstat[S.VM_PGALLOC] += 1 << order
    pages[pg] = (zones[z, S.Z_NODE], z, 0, kind, obj, index, order, 0)
    return pg


def free_page(zones, vmstat, pages, pg) -> None:
    z = int(pages[pg, S.PG_ZONE])
    if z < 0:
        return
    n = 1 << int(pages[pg, S.PG_ORDER])
    zones[z, S.Z_FREE] += n
    vmstat[S.VM_PGFREE] += n
    pages[pg, S.PG_ZONE] = -1
    pages[pg, S.PG_MAPCOUNT] = 0


def alloc_pages_nid(kern, t, gfp, order, p, mode, kind, obj, index, may_oom, res) -> int:
    zones, zonelist, sysvars, numastat, vmstat = (kern[S.K_ZONES], kern[S.K_ZONELIST],
                                                  kern[S.K_SYSVARS], kern[S.K_NUMASTAT],
                                                  kern[S.K_VMSTAT])
    pol_nodes, tasks, task_mems, pages = (kern[S.K_POL_NODES], kern[S.K_TASKS],
                                          kern[S.K_TASK_MEMS], kern[S.K_PAGES])
    if sysvars[S.SV_NEXT_PAGE] >= pages.shape[0]:
        return ALLOC_NEED_ROOM
    nid, mask_kind, mask_idx = int(res[R_NID]), int(res[R_MASK_KIND]), int(res[R_MASK_IDX])
    cpu_nid = int(tasks[t, S.T_NODE])
    args = (zones, zonelist, sysvars, numastat, vmstat, pol_nodes, task_mems, t, cpu_nid)
    if sysvars[S.SV_KGEN] == KGEN_2_6_7 and mode == MPOL_BIND and mask_kind == MASK_POLICY:
        bind_zonelist_alloc(zones, sysvars, numastat, vmstat, pol_nodes, task_mems, t, cpu_nid,
                            gfp, order, p, may_oom, res)
    elif mode == MPOL_PREFERRED_MANY:
        __alloc_pages(*args, gfp, order, nid, mask_kind, mask_idx, OOM_NEVER, res)
        if res[R_ZONE] < 0:
            __alloc_pages(*args, gfp, order, nid, MASK_NONE, 0, may_oom, res)
    elif order > 0 and gfp in _USER_GFPS[2:] and mode not in (MPOL_INTERLEAVE,
                                                                MPOL_WEIGHTED_INTERLEAVE) \
            and (mask_kind != MASK_POLICY or pol_nodes[mask_idx, nid]):
        # THP: the node-only first attempt with the THP mask (kswapd woken only if it says so)
        __alloc_pages(*args, gfp, order, nid, MASK_NODE, nid, OOM_NEVER, res)
    else:
        __alloc_pages(*args, gfp, order, nid, mask_kind, mask_idx, may_oom, res)
    z = int(res[R_ZONE])
    if z < 0:
        return z
    weighted_counts = sysvars[S.SV_INTERLEAVE_HIT_WEIGHTED] != 0
    if (mode == MPOL_INTERLEAVE or (mode == MPOL_WEIGHTED_INTERLEAVE and weighted_counts)) \
            and zones[z, S.Z_NODE] == nid and sysvars[S.SV_STATS_ENABLED]:
        numastat[nid, NUMA_INTERLEAVE_HIT] += 1
    return rmqueue(zones, sysvars, vmstat, pages, z, order, kind, obj, index)


def alloc_pages_mpol(kern, t, gfp, order, p, ilx, kind, obj, index, may_oom, res) -> int:
    mode = policy_nodemask(kern[S.K_POLICIES], kern[S.K_POL_NODES], kern[S.K_NODEINFO],
                           kern[S.K_SYSVARS], kern[S.K_TASKS], kern[S.K_TASK_MEMS], t, p, gfp,
                           ilx, res)
    return alloc_pages_nid(kern, t, gfp, order, p, mode, kind, obj, index, may_oom, res)


# ----------------------------------------------------------------------- faults
def mpol_equal(policies, pol_nodes, a, b) -> bool:
    if a == b:
        return True
    if a < 0 or b < 0:
        return False
    return (tuple(policies[a, 1:4]) == tuple(policies[b, 1:4])
            and nodes_of(pol_nodes, a) == nodes_of(pol_nodes, b))


def anon_vma_prepare(vmas, policies, pol_nodes, sysvars, v) -> None:
    """A private VMA's first write fault gives it an anon_vma: a compatible neighbour's
    (next, then previous) or a fresh one."""
    if vmas[v, S.V_ANON_VMA]:
        return
    live = [u for u in range(vmas.shape[0]) if vmas[u, S.V_ALIVE] and u != v
            and vmas[u, S.V_MM] == vmas[v, S.V_MM]]

    def compatible(a, b):
        return (vmas[a, S.V_END] == vmas[b, S.V_START]
                and mpol_equal(policies, pol_nodes, vmas[a, S.V_POLICY], vmas[b, S.V_POLICY])
                and all(vmas[a, c] == vmas[b, c] for c in (S.V_OBJ, S.V_PROT, S.V_SHARED))
                and vmas[b, S.V_PGOFF] == vmas[a, S.V_PGOFF] + vmas[b, S.V_START]
                - vmas[a, S.V_START])

    nxt = [u for u in live if vmas[u, S.V_START] == vmas[v, S.V_END]]
    prv = [u for u in live if vmas[u, S.V_END] == vmas[v, S.V_START]]
    if nxt and vmas[nxt[-1], S.V_ANON_VMA] and compatible(v, nxt[-1]):
        vmas[v, S.V_ANON_VMA] = vmas[nxt[-1], S.V_ANON_VMA]
    elif prv and vmas[prv[-1], S.V_ANON_VMA] and compatible(prv[-1], v):
        vmas[v, S.V_ANON_VMA] = vmas[prv[-1], S.V_ANON_VMA]
    else:
        vmas[v, S.V_ANON_VMA] = sysvars[S.SV_NEXT_ANON_VMA]
        sysvars[S.SV_NEXT_ANON_VMA] += 1


def vma_policy(vmas, objs, sp, tasks, t, v, index) -> tuple[int, int]:
    """(policy, interleave index) for page ``index`` of the VMA's object."""
    if vmas[v, S.V_KIND] == S.KIND_SHMEM:
        o = int(vmas[v, S.V_OBJ])
        ilx = int(objs[o, S.O_INO]) + index
        for s in range(sp.shape[0]):
            if sp[s, S.S_ALIVE] and sp[s, S.S_OBJ] == o and \
                    sp[s, S.S_START] <= index < sp[s, S.S_END]:
                return int(sp[s, S.S_POLICY]), ilx
        return int(tasks[t, S.T_POLICY]), ilx
    p = int(vmas[v, S.V_POLICY])
    return (p if p >= 0 else int(tasks[t, S.T_POLICY])), index


def pgt_find(pgtables, key) -> int:
    cap = pgtables.shape[0]
    i = S.pgt_hash(key, cap)
    while pgtables[i, 0] not in (key, S.PGT_EMPTY):
        i = (i + 1) & (cap - 1)
    return i


def pgtable_alloc(kern, t, mm, vpn, oom_mode, res) -> int:
    tasks, pages, vmstat = kern[S.K_TASKS], kern[S.K_PAGES], kern[S.K_VMSTAT]
    pgtables = kern[S.K_PGTABLES]
    for level, shift in ((S.PGT_PUD, 27), (S.PGT_PMD, 18), (S.PGT_PTE, 9)):
        key = S.pgtable_key(mm, level, vpn >> shift)
        i = pgt_find(pgtables, key)
        if pgtables[i, 0] == key:
            continue
        pg = alloc_pages_mpol(kern, t, GFP_KERNEL, 0, int(tasks[t, S.T_POLICY]), NO_ILX,
                              S.PGK_PGTABLE, -1, key, oom_mode, res)
        if pg == ALLOC_NEED_ROOM:
            return S.FAULT_NEED_ROOM
        if pg < 0:
            return S.FAULT_OOM
        pages[pg, S.PG_MAPCOUNT] = 1
        pgtables[i] = (key, pg)
        vmstat[S.VM_PGTABLE] += 1
    return S.FAULT_OK


def handle_mm_fault_range(kern, t, r, first_vpn, n, write, oom_mode, res) -> int:
    """Page by page, the fault path: find the VMA, decide whether this access faults, make
    the page tables, pick the policy, allocate, map."""
    (zones, zonelist, nodeinfo, cpu_node, sysvars, numastat, vmstat, policies, pol_nodes,
     tasks, task_mems, regions, vmas, objs, sp, pages, pt_page, pt_vma, obj_pages,
     pgtables) = kern
    res[R_DONE] = res[R_ALLOCATED] = 0
    mm, base, rstart, rend = (int(regions[r, c]) for c in (S.R_MM, S.R_PT, S.R_START, S.R_END))
    for vpn in range(first_vpn, first_vpn + n):
        if not rstart <= vpn < rend:
            return S.FAULT_SEGV
        slot = base + vpn - rstart
        v = int(pt_vma[slot])
        if v < 0:
            return S.FAULT_SEGV
        prot = int(vmas[v, S.V_PROT])
        if not prot or (write and not prot & S.PROT_WRITE):
            return S.FAULT_SEGV
        kind, shared = int(vmas[v, S.V_KIND]), bool(vmas[v, S.V_SHARED])
        cur = int(pt_page[slot])
        # does this access fault at all?
        exclusive_anon = cur >= 0 and pages[cur, S.PG_KIND] == S.PGK_ANON and \
            pages[cur, S.PG_MAPCOUNT] <= 1
        if (cur >= 0 and (not write or shared or exclusive_anon)) or \
                (cur == S.PT_ZERO and not write):
            if cur >= 0 and write:
                pages[cur, S.PG_DIRTY] = 1
            res[R_DONE] += 1
            continue
        vmstat[S.VM_PGFAULT] += 1
        st = pgtable_alloc(kern, t, mm, vpn, oom_mode, res)
        if st != S.FAULT_OK:
            return st
        index = int(vmas[v, S.V_PGOFF]) + vpn - int(vmas[v, S.V_START])
        o = int(vmas[v, S.V_OBJ])
        private = kind == S.KIND_ANON or (not shared and write)  # MAP_PRIVATE file: COW
        if private:
            if kind == S.KIND_ANON and cur == S.PT_NONE and not write:
                pt_page[slot] = S.PT_ZERO
                res[R_DONE] += 1
                continue
            anon_vma_prepare(vmas, policies, pol_nodes, sysvars, v)
            p, ilx = vma_policy(vmas, objs, sp, tasks, t, v, index)
            pg = alloc_pages_mpol(kern, t, GFP_USER_MOVABLE, 0, p, ilx, S.PGK_ANON, -1, index,
                                  oom_mode, res)
            if pg == ALLOC_NEED_ROOM:
                return S.FAULT_NEED_ROOM
            if pg < 0:
                return S.FAULT_OOM
            if cur == S.PT_SWAP:
                vmstat[S.VM_SWPIN] += 1
            if cur >= 0:  # copy-on-write
                pages[cur, S.PG_MAPCOUNT] -= 1
                if pages[cur, S.PG_MAPCOUNT] <= 0 and pages[cur, S.PG_KIND] == S.PGK_ANON:
                    free_page(zones, vmstat, pages, cur)
            pages[pg, S.PG_MAPCOUNT] = 1
        else:
            if index >= objs[o, S.O_SIZE] or index >= objs[o, S.O_NPAGES]:
                return S.FAULT_SIGBUS
            oslot = int(objs[o, S.O_BASE]) + index
            pg = int(obj_pages[oslot])
            if pg < 0:
                if kind == S.KIND_SHMEM:
                    p, ilx = vma_policy(vmas, objs, sp, tasks, t, v, index)
                    pk = S.PGK_SHMEM
                else:
                    p, ilx, pk = int(tasks[t, S.T_POLICY]), NO_ILX, S.PGK_FILE
                pg = alloc_pages_mpol(kern, t, GFP_USER_MOVABLE, 0, p, ilx, pk, o, index,
                                      oom_mode, res)
                if pg == ALLOC_NEED_ROOM:
                    return S.FAULT_NEED_ROOM
                if pg < 0:
                    return S.FAULT_OOM
                if obj_pages[oslot] == S.PT_SWAP:
                    vmstat[S.VM_SWPIN] += 1
                obj_pages[oslot] = pg
                pages[pg, S.PG_MAPCOUNT] = 1
                res[R_ALLOCATED] += 1
            elif cur != pg:
                pages[pg, S.PG_MAPCOUNT] += 1
            if write:
                pages[pg, S.PG_DIRTY] = 1
            pt_page[slot] = pg
            res[R_DONE] += 1
            continue
        pt_page[slot] = pg
        pages[pg, S.PG_DIRTY] = int(write)
        res[R_ALLOCATED] += 1
        res[R_DONE] += 1
    return S.FAULT_OK


def alloc_counted(kern, t, gfp, p, n, kind, obj, first_index, ilx_base, oom_mode, res,
                  out_pages) -> int:
    pages = kern[S.K_PAGES]
    done = 0
    for i in range(n):
        ilx = NO_ILX if ilx_base == NO_ILX else ilx_base + i
        idx = first_index + i if first_index >= 0 else -1
        pg = alloc_pages_mpol(kern, t, gfp, 0, p, ilx, kind, obj, idx, oom_mode, res)
        out_pages[i] = pg
        if pg < 0:
            return done
        pages[pg, S.PG_MAPCOUNT] = 0
        pages[pg, S.PG_DIRTY] = 1
        done += 1
    return done
