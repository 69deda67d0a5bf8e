"""Transparent huge pages of the simulated kernel (Linux ``mm/huge_memory.c``, ``madvise.c``).

What is modelled (linux-numa-balancing-facts.md §4, checked against the oracle, scenarios
85-88 in tests/data/oracle):

- ``/sys/kernel/mm/transparent_hugepage/enabled`` = ``always`` | ``madvise`` | ``never``
  (:data:`THP_MODES`), ``.../defrag`` (:data:`THP_DEFRAG_MODES`, Linux's default
  ``madvise``), and
  ``madvise(MADV_HUGEPAGE / MADV_NOHUGEPAGE)`` per VMA (``VM_HUGEPAGE`` / ``VM_NOHUGEPAGE``,
  column ``V_HUGEPAGE``).  numasim's default is ``never`` (the oracle's boot option and
  numasim's behaviour before THP existed); Debian boots with ``always``.
- The huge fault (``__handle_mm_fault`` -> ``create_huge_pmd`` ->
  ``do_huge_pmd_anonymous_page``): a fault on private anonymous memory whose aligned 2 MiB
  block lies wholly inside the VMA, whose PMD is still empty, when the mode and the VMA
  flags allow it.  A write allocates one order-9 folio under the mempolicy (interleave index
  ``(vm_pgoff >> 9) + ((haddr - vm_start) >> 21)``; the node-only ``__GFP_THISNODE`` first
  attempt for the other modes, retried over the whole zonelist only when the mask has direct
  reclaim); on failure ``thp_fault_fallback`` and the fault goes down the 4 KiB path.
- The fault's gfp mask is ``vma_thp_gfp_mask`` (:func:`vma_thp_gfp_mask`), by ``defrag`` and
  MADV_HUGEPAGE: ``madvise`` (default) gives GFP_TRANSHUGE_LIGHT (no reclaim of any kind)
  without MADV_HUGEPAGE, GFP_TRANSHUGE (direct reclaim, no kswapd wake) with it; ``always``
  GFP_TRANSHUGE; ``defer`` GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM (kswapd wake, no direct
  reclaim); ``defer+madvise`` GFP_TRANSHUGE with MADV_HUGEPAGE, else as ``defer``; ``never``
  GFP_TRANSHUGE_LIGHT.  So a THP fault on a full node wakes kswapd only under ``defer``
  (and ``defer+madvise`` without MADV_HUGEPAGE), and only a mask with direct reclaim spills
  huge pages to the next node; the others fall back to 4 KiB pages, which spill in the fast
  path (scenarios 122-125 on the 2node-tier machine: no demotion except with ``defer``).
  Not modelled: compaction, and the direct reclaim a costly order gets once every node of
  the retry has failed (numasim's retry fails and the fault falls back).  A read maps the huge zero
  page (``thp_zero_page_alloc`` counts its one allocation; a later write splits the PMD,
  ``thp_split_pmd``, and faults 4 KiB pages).
- Representation: a THP is ONE row of ``pages`` with ``PG_ORDER`` 9 and map count 1, and
  the 512 page-table slots of its block all point at that row, so every per-page view
  (``query``/``move_pages`` status, numa_maps ``N<node>=`` counting 512 base pages,
  ``kernelpagesize_kB=4`` as Linux prints for a THP) works unchanged; numastat counts one
  allocation per huge page, as ``zone_statistics`` does.  The deposited PTE table is
  allocated with the THP (``pte_alloc_one``), as Linux does; ``thp_pmds`` remembers which
  blocks are PMD-mapped.
- ``move_pages``/``mbind`` of any subpage migrate the whole folio
  (``thp_migration_success`` +1, ``pgmigrate_success`` +512), as the oracle shows.
- Anything that needs single 4 KiB pages of a THP -- fork (copy-on-write), a partial
  munmap, swap-out -- first splits it (``split_huge_pmd`` + ``split_folio``): 512 order-0
  rows on the same node.

- NUMA balancing of huge PMDs (:mod:`numasim.mm.numa_balancing`): a THP is marked as one
  unit (``numa_pte_updates`` +512, ``numa_huge_pte_updates`` +1), takes one hinting fault
  and migrates whole or not at all (``thp_migration_success``, ``numa_pages_migrated``
  +512); a large folio never waits in a per-CPU LRU batch (scenario 89).

In the timing engines a page fault with THP on goes through this path too
(:meth:`numasim.machine.numab_clock.NumabClock.thp_fault`: the jitted allocator core the
engines call directly faults 4 KiB pages only).

khugepaged (collapsing 4 KiB pages into THPs) is :mod:`numasim.mm.khugepaged`; 6.12's
THP-aligned address for an anonymous mapping whose length is a multiple of 2 MiB is
:meth:`numasim.mm.kernel.Kernel.thp_get_unmapped_area` (scenario 120).

Not modelled (yet): per-size mTHP knobs, THP for shmem and file mappings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from numasim.mm import alloc_core as core
from numasim.mm import state as S
from numasim.mm.constants import (
    GFP_TRANSHUGE,
    GFP_TRANSHUGE_KSWAPD,
    GFP_TRANSHUGE_LIGHT,
    MPOL_INTERLEAVE,
    MPOL_WEIGHTED_INTERLEAVE,
)

if TYPE_CHECKING:
    from numasim.mm.kernel import Kernel

HPAGE_PMD_ORDER = 9
HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER

THP_NEVER, THP_ALWAYS, THP_MADVISE = 0, 1, 2
THP_MODES = {"never": THP_NEVER, "always": THP_ALWAYS, "madvise": THP_MADVISE}
"""``transparent_hugepage/enabled`` values by name (the sysvar ``SV_THP`` holds the number)."""

VM_HUGEPAGE, VM_NOHUGEPAGE = 1, 2
MADV_HUGEPAGE, MADV_NOHUGEPAGE = 14, 15
THP_SYSFS = "/sys/kernel/mm/transparent_hugepage/enabled"
THP_DEFRAG_SYSFS = "/sys/kernel/mm/transparent_hugepage/defrag"
THP_DEFRAG_MODES = ("always", "defer", "defer+madvise", "madvise", "never")
"""``transparent_hugepage/defrag`` values, in the order Linux prints them."""
THP_DEFRAG_DEFAULT = "madvise"  # transparent_hugepage_flags: DEFRAG_REQ_MADV_FLAG at boot
THP_EVENTS = ("thp_zero_page_alloc", "thp_split_pmd", "thp_migration_success",
              "thp_migration_fail", "thp_migration_split", "thp_split_page")
"""THP vm events numasim keeps in ``Kernel.thp_events`` (the fault counters are core vmstat)."""


def thp_mode_value(mode: str | int | bool | None) -> int:
    """A THP mode given by name (``always``...), number or bool (True = always) -> SV_THP.
    Raises ConfigError naming the valid modes for anything else."""
    if mode is None or mode is False:
        return THP_NEVER
    if mode is True:
        return THP_ALWAYS
    if isinstance(mode, int) and mode in THP_MODES.values():
        return mode
    if isinstance(mode, str) and mode.strip() in THP_MODES:
        return THP_MODES[mode.strip()]
    from numasim.errors import ConfigError

    raise ConfigError(f"unknown transparent_hugepage mode {mode!r}", field="thp",
                      hint="valid: always, madvise, never")


def thp_enabled_text(k: Kernel) -> str:
    """The sysfs file as Linux prints it: the active mode in brackets."""
    cur = int(k.ks.sysvars[S.SV_THP])
    return " ".join(f"[{n}]" if v == cur else n for n, v in
                    (("always", THP_ALWAYS), ("madvise", THP_MADVISE), ("never", THP_NEVER)))


def set_thp_mode(k: Kernel, mode: str | int | bool) -> None:
    k.ks.sysvars[S.SV_THP] = thp_mode_value(mode)
    kh = getattr(k, "khugepaged", None)
    if kh is not None:  # enabled_store -> start_stop_khugepaged
        kh.start_stop_khugepaged()


def thp_defrag_text(k: Kernel) -> str:
    """``defrag_show``: the five modes, the active one in brackets."""
    cur = thp_defrag(k)
    return " ".join(f"[{m}]" if m == cur else m for m in THP_DEFRAG_MODES)


def thp_defrag(k: Kernel) -> str:
    return getattr(k, "thp_defrag_mode", THP_DEFRAG_DEFAULT)


def set_thp_defrag(k: Kernel, mode: str) -> None:
    """``defrag_store``: one of :data:`THP_DEFRAG_MODES` (the caller answers EINVAL or a
    ConfigError for anything else)."""
    if mode not in THP_DEFRAG_MODES:
        raise ValueError(f"unknown transparent_hugepage defrag mode {mode!r}")
    k.thp_defrag_mode = mode


def vma_thp_gfp_mask(k: Kernel, v: int) -> int:
    """``vma_thp_gfp_mask``: the THP fault's gfp by the defrag mode and MADV_HUGEPAGE."""
    madvised = int(k.ks.vmas[v, S.V_HUGEPAGE]) == VM_HUGEPAGE
    mode = thp_defrag(k)
    if mode == "always":  # synchronous compaction (| __GFP_NORETRY without madvise)
        return GFP_TRANSHUGE
    if mode == "defer":  # kick kswapd/kcompactd and fail quickly
        return GFP_TRANSHUGE_KSWAPD
    if mode == "defer+madvise":
        return GFP_TRANSHUGE if madvised else GFP_TRANSHUGE_KSWAPD
    if mode == "madvise":
        return GFP_TRANSHUGE if madvised else GFP_TRANSHUGE_LIGHT
    return GFP_TRANSHUGE_LIGHT


def _events(k: Kernel) -> dict[str, int]:
    ev = getattr(k, "thp_events", None)
    if ev is None:
        ev = k.thp_events = dict.fromkeys(THP_EVENTS, 0)
    return ev


def _pmds(k: Kernel) -> set[tuple[int, int]]:
    pm = getattr(k, "thp_pmds", None)
    if pm is None:
        pm = k.thp_pmds = set()
    return pm


def thp_vma_allowable(k: Kernel, v: int) -> bool:
    """``thp_vma_allowable_order`` for PMD order on an anonymous VMA: the mode and the
    VMA's madvise flags (``never`` wins over MADV_HUGEPAGE; MADV_NOHUGEPAGE wins over
    ``always``)."""
    ks = k.ks
    mode = int(ks.sysvars[S.SV_THP])
    flag = int(ks.vmas[v, S.V_HUGEPAGE])
    if mode == THP_NEVER or flag == VM_NOHUGEPAGE:
        return False
    if int(ks.vmas[v, S.V_KIND]) != S.KIND_ANON or ks.vmas[v, S.V_SHARED]:
        return False
    return mode == THP_ALWAYS or flag == VM_HUGEPAGE


def huge_candidate(k: Kernel, mm: int, r: int, vpn: int, write: bool) -> bool:
    """Would a fault at ``vpn`` take the huge path: THP allowed for the VMA, the aligned
    block inside the VMA, the PMD empty (no PTE table, nothing mapped), the access allowed
    by the protection (else the 4 KiB path raises the SIGSEGV)."""
    ks = k.ks
    rs = int(ks.regions[r, S.R_START])
    base = int(ks.regions[r, S.R_PT])
    v = int(ks.pt_vma[base + vpn - rs])
    if v < 0 or not thp_vma_allowable(k, v):
        return False
    prot = int(ks.vmas[v, S.V_PROT])
    if prot == 0 or (write and not prot & S.PROT_WRITE):
        return False
    h = vpn & ~(HPAGE_PMD_NR - 1)
    if h < int(ks.vmas[v, S.V_START]) or h + HPAGE_PMD_NR > int(ks.vmas[v, S.V_END]):
        return False
    if (mm, h >> HPAGE_PMD_ORDER) in _pmds(k):
        return False
    if ks.pgt_get(S.pgtable_key(mm, S.PGT_PTE, h >> HPAGE_PMD_ORDER)) is not None:
        return False
    lo = base + h - rs
    return bool((ks.pt_page[lo: lo + HPAGE_PMD_NR] == S.PT_NONE).all())


def next_huge_fault(k: Kernel, mm: int, r: int, vpn: int, n: int, write: bool) -> int:
    """Offset in [0, n) of the first page of [vpn, vpn+n) whose fault takes the huge path
    (the first page touched in a candidate block), or n."""
    if int(k.ks.sysvars[S.SV_THP]) == THP_NEVER or \
            int(k.ks.regions[r, S.R_OBJ]) >= 0 and _region_not_anon(k, r):
        return n
    i = 0
    while i < n:
        if huge_candidate(k, mm, r, vpn + i, write):
            return i
        i += HPAGE_PMD_NR - ((vpn + i) & (HPAGE_PMD_NR - 1))
    return n


def _region_not_anon(k: Kernel, r: int) -> bool:
    return int(k.ks.objs[int(k.ks.regions[r, S.R_OBJ]), S.O_KIND]) != S.KIND_ANON


def do_huge_pmd_anonymous_page(k: Kernel, t: int, r: int, vpn: int, write: bool) -> int:
    """The huge fault at ``vpn`` (a :func:`huge_candidate`).  Returns the number of pages of
    the block from ``vpn`` on that are now mapped (THP or huge zero page), or 0 when the
    fault fell back to 4 KiB pages (``thp_fault_fallback`` counted; the caller's 4 KiB path
    handles it)."""
    ks = k.ks
    mm = k.task_mm(t)
    rs = int(ks.regions[r, S.R_START])
    base = int(ks.regions[r, S.R_PT])
    v = int(ks.pt_vma[base + vpn - rs])
    h = vpn & ~(HPAGE_PMD_NR - 1)
    lo = base + h - rs
    res = k._res
    ks.ensure_pages(8)
    k.khugepaged.enter_vma(v)  # do_huge_pmd_anonymous_page registers the mm first
    if not write:
        # use_zero_page: map the huge zero page, allocated once, under this task's policy
        ev = _events(k)
        if not getattr(k, "huge_zero_page", False):
            k.huge_zero_page = True
            ev["thp_zero_page_alloc"] += 1
        st = k.core.pgtable_alloc(ks.core_args(), t, mm, h, core.OOM_NEVER, res)
        if st != S.FAULT_OK:
            return 0
        ks.vmstat[S.VM_PGFAULT] += 1
        ks.pt_page[lo: lo + HPAGE_PMD_NR] = S.PT_ZERO
        _pmds(k).add((mm, h >> HPAGE_PMD_ORDER))
        return h + HPAGE_PMD_NR - vpn
    pg = _alloc_huge(k, t, v, h)
    if pg < 0:
        ks.vmstat[S.VM_THP_FAULT_FALLBACK] += 1
        return 0
    # __do_huge_pmd_anonymous_page: the deposited page table, then the PMD
    st = k.core.pgtable_alloc(ks.core_args(), t, mm, h, core.OOM_NEVER, res)
    if st != S.FAULT_OK:
        core_free(k, pg)
        ks.vmstat[S.VM_THP_FAULT_FALLBACK] += 1
        return 0
    k.core.anon_vma_prepare(ks.vmas, ks.policies, ks.pol_nodes, ks.sysvars, v)
    ks.pages[pg, S.PG_MAPCOUNT] = 1
    ks.pages[pg, S.PG_DIRTY] = 1
    ks.pt_page[lo: lo + HPAGE_PMD_NR] = pg
    ks.vmstat[S.VM_PGFAULT] += 1
    ks.vmstat[S.VM_THP_FAULT_ALLOC] += 1
    _pmds(k).add((mm, h >> HPAGE_PMD_ORDER))
    return h + HPAGE_PMD_NR - vpn


def core_free(k: Kernel, pg: int) -> None:
    k.core.free_page(k.ks.zones, k.ks.vmstat, k.ks.pages, pg)


def _alloc_huge(k: Kernel, t: int, v: int, h: int) -> int:
    """``vma_alloc_folio(vma_thp_gfp_mask(vma), 9)``: the policy and the huge interleave
    index, the node-only first attempt (in the core's ``alloc_pages_nid``), and when the mask
    has direct reclaim the full retry.  A row or < 0."""
    ks = k.ks
    res = k._res
    gfp = vma_thp_gfp_mask(k, v)
    run = np.zeros(2, dtype=np.int64)
    index = int(ks.vmas[v, S.V_PGOFF]) + (h - int(ks.vmas[v, S.V_START]))
    p, ilx_base = core.get_vma_policy(ks.vmas, ks.objs, ks.sp, ks.tasks, t, v, index, run)
    p = int(p)
    ilx = int(ilx_base) + (int(ks.vmas[v, S.V_PGOFF]) >> HPAGE_PMD_ORDER) + \
        ((h - int(ks.vmas[v, S.V_START])) >> HPAGE_PMD_ORDER)
    pg = int(k.core.alloc_pages_mpol(ks.core_args(), t, gfp, HPAGE_PMD_ORDER, p, ilx,
                                     S.PGK_ANON, -1, index, core.OOM_NEVER, res))
    if pg >= 0 or gfp != GFP_TRANSHUGE:
        return pg
    mode = int(k.core.policy_nodemask(ks.policies, ks.pol_nodes, ks.nodeinfo, ks.sysvars,
                                      ks.tasks, ks.task_mems, t, p, gfp, ilx, res))
    if mode in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE):
        return pg  # already a full zonelist allocation
    # GFP_TRANSHUGE has direct reclaim: __alloc_pages over the policy's zonelist and mask
    # (costly order: no OOM kill, NULL on failure; no kswapd wake)
    k.core.__alloc_pages(ks.zones, ks.zonelist, ks.sysvars, ks.numastat, ks.vmstat,
                         ks.pol_nodes, ks.task_mems, t, int(ks.tasks[t, S.T_NODE]),
                         gfp, HPAGE_PMD_ORDER, int(res[core.R_NID]),
                         int(res[core.R_MASK_KIND]), int(res[core.R_MASK_IDX]),
                         core.OOM_NEVER, res)
    z = int(res[core.R_ZONE])
    if z < 0:
        return z
    return int(k.core.rmqueue(ks.zones, ks.sysvars, ks.vmstat, ks.pages, z, HPAGE_PMD_ORDER,
                              S.PGK_ANON, -1, index))


def split_huge_pmd(k: Kernel, mm: int, r: int, vpn: int) -> None:
    """``split_huge_pmd`` + ``split_folio`` for the block holding ``vpn`` in region ``r``
    if it is PMD-mapped: a THP becomes 512 order-0 rows on the same node (same zone, so
    free counts do not move); the huge zero page becomes 512 small zero-page entries."""
    key = (mm, vpn >> HPAGE_PMD_ORDER)
    pm = _pmds(k)
    if key not in pm:
        return
    pm.discard(key)
    ks = k.ks
    ev = _events(k)
    ev["thp_split_pmd"] += 1
    rs = int(ks.regions[r, S.R_START])
    base = int(ks.regions[r, S.R_PT])
    h = vpn & ~(HPAGE_PMD_NR - 1)
    lo = max(base, base + h - rs)
    hi = min(base + h + HPAGE_PMD_NR - rs, base + int(ks.regions[r, S.R_END]) - rs)
    head = int(ks.pt_page[lo])
    if head < 0 or int(ks.pages[head, S.PG_ORDER]) != HPAGE_PMD_ORDER:
        return
    ev["thp_split_page"] += 1
    ks.ensure_pages(HPAGE_PMD_NR)
    row = ks.pages[head].copy()
    ks.pages[head, S.PG_ORDER] = 0
    for i, slot in enumerate(range(lo, hi)):
        if i == 0:
            continue
        pg = int(ks.sysvars[S.SV_NEXT_PAGE])
        ks.sysvars[S.SV_NEXT_PAGE] = pg + 1
        ks.pages[pg] = row
        ks.pages[pg, S.PG_ORDER] = 0
        ks.pages[pg, S.PG_INDEX] = int(row[S.PG_INDEX]) + i
        if int(ks.pt_page[slot]) == head:
            ks.pt_page[slot] = pg
    ks.pages[head, S.PG_INDEX] = int(row[S.PG_INDEX])


def split_huge_range(k: Kernel, mm: int, r: int, lo_vpn: int, hi_vpn: int) -> None:
    """Split every PMD-mapped block of region ``r`` that overlaps [lo_vpn, hi_vpn)."""
    if not getattr(k, "thp_pmds", None):
        return
    for h in range(lo_vpn & ~(HPAGE_PMD_NR - 1), hi_vpn, HPAGE_PMD_NR):
        split_huge_pmd(k, mm, r, h)


def split_zero_pmds(k: Kernel, mm: int, r: int, lo_vpn: int, hi_vpn: int) -> None:
    """A write into a PMD-mapped huge zero page (``do_huge_pmd_wp_page``): split the PMD
    (``thp_split_pmd``) so the 4 KiB path copies-on-write from the small zero page."""
    pm = getattr(k, "thp_pmds", None)
    if not pm:
        return
    for h in range(lo_vpn & ~(HPAGE_PMD_NR - 1), hi_vpn, HPAGE_PMD_NR):
        if (mm, h >> HPAGE_PMD_ORDER) in pm and k.pte(mm, max(h, lo_vpn)) == S.PT_ZERO:
            split_huge_pmd(k, mm, r, max(h, lo_vpn))


def zap_huge_pmds(k: Kernel, mm: int, r: int, a: int, b: int) -> None:
    """munmap of [a, b) in region ``r`` (``zap_huge_pmd``): a block wholly inside drops its
    THP (one unmap of the folio) or huge zero page; a block cut by the range is split first,
    so the 4 KiB unmap that follows frees only the pages it covers."""
    ks = k.ks
    pm = _pmds(k)
    rs = int(ks.regions[r, S.R_START])
    base = int(ks.regions[r, S.R_PT])
    for h in range(a & ~(HPAGE_PMD_NR - 1), b, HPAGE_PMD_NR):
        key = (mm, h >> HPAGE_PMD_ORDER)
        if key not in pm:
            continue
        if h >= a and h + HPAGE_PMD_NR <= b:
            pm.discard(key)
            lo = base + h - rs
            head = int(ks.pt_page[lo])
            if head >= 0:
                k._unmap_page(head)
            ks.pt_page[lo: lo + HPAGE_PMD_NR] = S.PT_NONE
        else:
            split_huge_pmd(k, mm, r, max(h, a))


def anon_huge_pages(k: Kernel, mm: int | None = None) -> dict[int, int]:
    """``AnonHugePages`` in pages per node: PMD-mapped THPs (of one mm, or all)."""
    ks = k.ks
    out: dict[int, int] = {}
    for m, idx in getattr(k, "thp_pmds", set()):
        if mm is not None and m != mm:
            continue
        pg = k.pte(m, idx << HPAGE_PMD_ORDER)
        if pg >= 0 and int(ks.pages[pg, S.PG_ORDER]) == HPAGE_PMD_ORDER:
            nid = int(ks.pages[pg, S.PG_NODE])
            out[nid] = out.get(nid, 0) + HPAGE_PMD_NR
    return out


def thp_event(k: Kernel, key: str) -> int | None:
    """A THP vm event numasim keeps outside the core's vmstat array, or None."""
    if key in THP_EVENTS:
        return _events(k)[key]
    return None


def count_event(k: Kernel, key: str, n: int = 1) -> None:
    _events(k)[key] += n


