"""The per-CPU TLB and its page walks, one rule for both engines (off by default).

Every access whose page is mapped looks its translation up in its CPU's TLB
(:func:`tlb_access`): a set-associative LRU array tagged by (mm, virtual page), where a
PMD-mapped THP is one 2 MiB entry and anything else one 4 KiB entry (Skylake's STLB holds
both kinds in the same 1536 entries: :class:`numasim.machine.params.TlbParams`).

A miss with ``walk`` on costs one dependent line load: the 64-byte line (8 entries) of the
page table that maps the page -- the PTE table, or the PMD table for a THP -- read from the
node that holds that table page (``pgtables``: the simulated kernel allocates page-table
pages under the faulting task's policy, :func:`numasim.mm.alloc_core.pgtable_alloc`).  The
upper levels are taken to hit the paging-structure caches; those caches, 5-level paging and
ASIDs/PCIDs are not modelled.  The access the walk serves issues when the line is back; it
holds its miss slot from the walk's issue on.

Shootdowns: an entry remembers the page row it translated to, and a lookup that finds the
page table now pointing elsewhere (the page migrated -- NUMA balancing, demotion,
promotion, khugepaged's collapse -- or was reclaimed or replaced by COW) is a miss.  That
is what a shootdown invalidating the entry in every CPU's TLB gives, each CPU seeing it at
its next access to the page; the shootdown's time is charged where the kernel charges it
(``TLB_SHOOTDOWN_NS`` of :mod:`numasim.machine.numab_clock`, in the hinting fault; the
demotion, promotion and collapse paths charge their own costs).  A PTE made PROT_NONE by
the NUMA scanner without a migration keeps its entry (the hinting fault itself is modelled).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from numasim.machine import cpu as C
from numasim.mm.alloc_core import pgt_slot
from numasim.mm.state import PG_NODE, PG_ORDER, PGT_PMD, PGT_PTE

# cfg[:] int64
TLB_ON = 0
TLB_WALK = 1
TLB_NCFG = 2
HUGE_ORDER = 9
HUGE_BIT = np.int64(1) << 39  # tag bit of a 2 MiB entry (virtual page numbers stay below)
ENTRIES_PER_LINE_SHIFT = 3  # 8 entries of 8 bytes per 64-byte line


def make_tlb(ncpu: int, nr_node_ids: int, params) -> tuple:
    """Empty TLBs, one per CPU slot: (tags, meta (stamp, page row), clock, walk lines by
    (CPU, node), cfg).  ``params``: a TlbParams, or None (off: tiny inert arrays)."""
    if params is None:
        return (np.full((1, 1, 1), -1, dtype=np.int64), np.zeros((1, 1, 1, 2), dtype=np.int64),
                np.zeros(1, dtype=np.int64), np.zeros((ncpu, nr_node_ids)),
                np.zeros(TLB_NCFG, dtype=np.int64))
    ways = params.ways
    sets = params.entries // ways
    cfg = np.zeros(TLB_NCFG, dtype=np.int64)
    cfg[TLB_ON] = 1
    cfg[TLB_WALK] = int(params.walk)
    return (np.full((ncpu, sets, ways), -1, dtype=np.int64),
            np.zeros((ncpu, sets, ways, 2), dtype=np.int64), np.zeros(ncpu, dtype=np.int64),
            np.zeros((ncpu, nr_node_ids)), cfg)


@njit(cache=True, inline="always")
def tlb_lookup(tags, meta, clock, c, key, pg):
    """Look ``key`` up in CPU c's TLB; a miss (or an entry for another page row: a shootdown
    invalidated it) fills the LRU way.  Returns 1 on a hit."""
    nsets = tags.shape[1]
    s = key % nsets
    clock[c] += 1
    now = clock[c]
    victim = 0
    oldest = meta[c, s, 0, 0]
    for w in range(tags.shape[2]):
        if tags[c, s, w] == key:
            meta[c, s, w, 0] = now
            if meta[c, s, w, 1] == pg:
                return 1
            meta[c, s, w, 1] = pg
            return 0
        if meta[c, s, w, 0] < oldest:
            oldest = meta[c, s, w, 0]
            victim = w
    tags[c, s, victim] = key
    meta[c, s, victim, 0] = now
    meta[c, s, victim, 1] = pg
    return 0


@njit(cache=True, inline="always")
def tlb_access(tlb, st, c, mm, vpn, pg, pages, pgtables):
    """CPU c's access to virtual page ``vpn`` of ``mm``, mapped to page row ``pg`` (or the zero
    page): the TLB lookup, its counters (``st[c]``: misses, walks; walk lines by node).
    Returns (page row of the table line to load, the line in it, its node) for a walk, or
    (-1, 0, -1) when nothing is loaded (a hit, walks off, a table numasim did not allocate).
    Inlined into the fast engine's loop (as a call it cost ~0.6 us more per access)."""
    tags, meta, clock, walk_nodes, cfg = tlb
    huge = pg >= 0 and pages[pg, PG_ORDER] == HUGE_ORDER
    key = (mm << 40) | ((vpn >> 9) | HUGE_BIT if huge else vpn)
    if tlb_lookup(tags, meta, clock, c, key, pg):
        return -1, 0, -1
    st[c, C.ST_TLB_MISSES] += 1
    if cfg[TLB_WALK] == 0:
        return -1, 0, -1
    if huge:
        tkey = (mm << 40) | (PGT_PMD << 36) | (vpn >> 18)
        idx = (vpn >> 9) & 511
    else:
        tkey = (mm << 40) | (PGT_PTE << 36) | (vpn >> 9)
        idx = vpn & 511
    i = pgt_slot(pgtables, tkey)
    tpg = pgtables[i, 1] if pgtables[i, 0] == tkey else -1
    if tpg < 0:
        return -1, 0, -1
    node = pages[tpg, PG_NODE]
    st[c, C.ST_WALKS] += 1
    walk_nodes[c, node] += 1.0
    return tpg, idx >> ENTRIES_PER_LINE_SHIFT, node
