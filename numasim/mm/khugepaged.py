"""khugepaged: the kernel thread that collapses 4 KiB pages into transparent huge pages
(Linux ``mm/khugepaged.c``; linux-numa-balancing-facts.md §4.4, the same logic in 6.1 and
6.12, checked against the oracle: scenario 121 in tests/data/oracle).

What is modelled:

- **Registration** (``khugepaged_enter_vma``): an mm joins khugepaged's list when one of its
  VMAs becomes eligible -- a new anonymous mapping while THP is ``always``, ``madvise(
  MADV_HUGEPAGE)`` while THP is ``always`` or ``madvise``, a huge fault -- and a forked child
  of a registered mm joins too (``khugepaged_fork``).  An mm that exits leaves the list at the
  next visit (``collect_mm_slot``).
- **Pacing** (``khugepaged`` -> ``khugepaged_do_scan`` -> ``khugepaged_wait_work``): a pass
  first drains the per-CPU LRU batches (``lru_add_drain_all``), then scans up to
  ``pages_to_scan`` units (512 per PMD range looked at, 1 per VMA skipped, 1 per mm visited)
  resuming where the last pass stopped, passing the list head at most twice; then the thread
  sleeps ``scan_sleep_millisecs`` (``alloc_sleep_millisecs`` after a failed huge
  allocation).  With nothing registered it waits until an mm registers; a write to either
  sleep knob or to ``transparent_hugepage/enabled`` wakes it at once.  THP ``never`` stops it.
- **The range test** (``hpage_collapse_scan_pmd``), PTE by PTE in address order: swap entries
  <= ``max_ptes_swap``, empty or zero-page PTEs <= ``max_ptes_none``, pages mapped more than
  once <= ``max_ptes_shared``, every page anonymous and on the LRU (not in a per-CPU batch),
  at least one writable PTE.  Exceeding a limit counts ``thp_scan_exceed_{none,swap,shared}
  _pte``.  A range already PMD-mapped, or without a page table, is passed over.
- **The node** (``hpage_collapse_find_target_node``): the node holding most of the range's
  pages, the lowest-numbered one on a tie; the allocation may use any node with that same
  count (``alloc_nmask``), the target node first.  **The mempolicy plays no part** (the
  oracle: a task bound to node 3 still gets its collapsed pages on the majority node).
- **The collapse** (``collapse_huge_page``): one order-9 allocation (``thp_collapse_alloc``,
  or ``thp_collapse_alloc_failed`` and the alloc sleep), the present pages copied, empty ones
  zeroed, the old pages freed, the PMD mapped (``pages_collapsed`` +1).  Each collapse is
  logged (:attr:`Khugepaged.log`: time, target node, pages per source node) so a timed run
  can charge the copy as traffic.

Not modelled: swap-in of swapped PTEs during a collapse (a range with 1..max_ptes_swap swap
entries is left alone; beyond it is counted as exceeded), the young/referenced test (every
present page counts as referenced), reclaim and compaction for the huge allocation
(``defrag`` picks GFP_TRANSHUGE or GFP_TRANSHUGE_LIGHT, neither of which wakes kswapd, but
an allocation either finds a free order-9 block above the watermark or fails),
``zone_reclaim_mode``'s scan abort, file and shmem collapse,
MADV_COLLAPSE.  numasim keeps adjacent mappings as separate VMAs (Linux merges them), so a
2 MiB range straddling two of a script's mappings is not collapsed.

Knobs, as the files under ``/sys/kernel/mm/transparent_hugepage/khugepaged/``:
:data:`numasim.khugepaged_knobs.KNOBS` (Linux's defaults; a leaf module, so the machine YAML
loader checks them too); ``pages_collapsed`` and ``full_scans`` are read-only.  The kernel
owns its thread (``Kernel.khugepaged``); the clock that ``spin`` and ``sleep`` move drives it
(:meth:`numasim.mm.numa_balancing.NumaBalancing.run`), and in timed runs
:mod:`numasim.machine.khugepaged_clock`.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from numasim.khugepaged_knobs import KNOBS, check_knob
from numasim.mm import alloc_core as core
from numasim.mm import state as S
from numasim.mm.constants import GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT
from numasim.topology.model import ZoneType

if TYPE_CHECKING:
    from numasim.mm.kernel import Kernel

HPAGE_PMD_ORDER = 9
HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER
ZONE_NORMAL = int(ZoneType.NORMAL)
KHUGEPAGED_DIR = "/sys/kernel/mm/transparent_hugepage/khugepaged/"
STATS = ("pages_collapsed", "full_scans")
EVENTS = ("thp_collapse_alloc", "thp_collapse_alloc_failed", "thp_scan_exceed_none_pte",
          "thp_scan_exceed_swap_pte", "thp_scan_exceed_share_pte")
"""The vm events khugepaged counts (Linux's names in /proc/vmstat)."""

# results of one range (enum scan_result; the ones numasim can produce)
SCAN_SUCCEED = 1
SCAN_PMD_NULL = 2
SCAN_PMD_MAPPED = 4
SCAN_EXCEED_NONE_PTE = 5
SCAN_EXCEED_SWAP_PTE = 6
SCAN_EXCEED_SHARED_PTE = 7
SCAN_PAGE_RO = 9
SCAN_LACK_REFERENCED_PAGE = 10
SCAN_PAGE_LRU = 12
SCAN_PAGE_ANON = 15
SCAN_ALLOC_HUGE_PAGE_FAIL = 20
SCAN_SWAPIN_NOT_MODELLED = 99  # numasim only: see the module


@dataclass
class Collapse:
    """One collapse, for the timed runs' traffic: when, into which node, from where."""

    ms: float
    mm: int
    vpn: int
    node: int
    sources: dict[int, int] = field(default_factory=dict)  # node -> 4 KiB pages copied


class Khugepaged:
    """The thread's state (see the module); one per :class:`~numasim.mm.kernel.Kernel`."""

    def __init__(self, k: Kernel, **knobs: int) -> None:
        self.k = k
        self.knobs = dict(KNOBS)
        self.slots: list[int] = []  # registered mms, in list order
        self.cursor_mm: int | None = None  # khugepaged_scan.mm_slot
        self.cursor_vpn = 0  # khugepaged_scan.address
        self.next_run: float | None = None  # simulated ms of the next pass (None: waiting)
        self.stats = dict.fromkeys(STATS, 0)
        self.events = dict.fromkeys(EVENTS, 0)
        self.log: list[Collapse] = []
        self.now = 0.0
        self.run_at_call = False  # True in timed runs: passes run at the tick's time
        for name, value in knobs.items():
            self.set_knob(name, value)

    # ------------------------------------------------------------ knobs
    def set_knob(self, name: str, value: int | str) -> None:
        """A knob by its sysfs name; ValueError saying why not (the store's EINVAL)."""
        self.knobs[name] = check_knob(name, value)
        if name in ("scan_sleep_millisecs", "alloc_sleep_millisecs"):
            self.wake()  # *_store: khugepaged_sleep_expire = 0; wake_up_interruptible

    # ------------------------------------------------------------ the thread
    def running(self) -> bool:
        """The thread exists while PMD THP is enabled (``start_stop_khugepaged``)."""
        from numasim.mm.huge_memory import THP_NEVER

        return int(self.k.ks.sysvars[S.SV_THP]) != THP_NEVER

    def start_stop_khugepaged(self) -> None:
        """``start_stop_khugepaged`` after a write to ``enabled``: the thread (re)starts and
        ``min_free_kbytes`` follows the mode (:func:`set_recommended_min_free_kbytes`)."""
        self.wake()
        set_recommended_min_free_kbytes(self.k)

    def wake(self) -> None:
        if self.slots and self.running():
            self.next_run = self.now

    def enter(self, mm: int) -> None:
        """``__khugepaged_enter``: add the mm (once); wake the thread if the list was
        empty."""
        if mm in self.slots:
            return
        was_empty = not self.slots
        self.slots.append(mm)
        if was_empty or self.next_run is None:
            self.wake()

    def enter_vma(self, v: int) -> None:
        """``khugepaged_enter_vma``: register the VMA's mm if the VMA is eligible."""
        if int(self.k.ks.sysvars[S.SV_THP]) != 0 and khugepaged_vma_check(self.k, v):
            self.enter(int(self.k.ks.vmas[v, S.V_MM]))

    def advance(self, now: float) -> int:
        """The clock moved to ``now`` (ms): run every pass due by then, each at its own
        time.  Returns the number of collapses."""
        done = 0
        while self.next_run is not None and self.next_run <= now:
            # a script's sleep: each pass at its own time; a timed run's tick: the pass
            # runs at the tick that found it due (:mod:`numasim.machine.khugepaged_clock`)
            self.now = now if self.run_at_call else self.next_run
            if not self.running() or not self.slots:
                self.next_run = None
                break
            failed, n = self.do_scan()
            done += n
            sleep = self.knobs["alloc_sleep_millisecs" if failed else "scan_sleep_millisecs"]
            # khugepaged_wait_work: with no sleep the thread loops at once; numasim lets the
            # clock move by one millisecond so a pass is never repeated at the same instant
            self.next_run = self.now + max(float(sleep), 1.0) if self.slots else None
        self.now = max(self.now, now)
        return done

    def do_scan(self) -> tuple[bool, int]:
        """``khugepaged_do_scan``: one pass.  Returns (an allocation failed, collapses)."""
        nb = getattr(self.k, "numab", None)
        if nb is not None:
            nb.lru_add_drain_all()
        pages = self.knobs["pages_to_scan"]
        progress = 0
        pass_through_head = 0
        collapsed0 = self.stats["pages_collapsed"]
        failed = False
        while True:
            if self.cursor_mm is None:
                pass_through_head += 1
            if self.slots and pass_through_head < 2:
                got, failed = self.scan_mm_slot(pages - progress)
                progress += got
            else:
                progress = pages
            if progress >= pages or failed:
                break
        return failed, self.stats["pages_collapsed"] - collapsed0

    def scan_mm_slot(self, pages: int) -> tuple[int, bool]:
        """``khugepaged_scan_mm_slot``: scan the current mm from the cursor.  Returns
        (progress, an allocation failed)."""
        k = self.k
        if self.cursor_mm is None:
            self.cursor_mm, self.cursor_vpn = self.slots[0], 0
        mm = self.cursor_mm
        progress = 1
        finished = True
        failed = False
        if mm in k.mms:
            for v in sorted(k.mm_vmas(mm), key=lambda x: int(k.ks.vmas[x, S.V_START])):
                if int(k.ks.vmas[v, S.V_END]) <= self.cursor_vpn:
                    continue
                if not khugepaged_vma_check(k, v):
                    progress += 1
                    continue
                vs, ve = int(k.ks.vmas[v, S.V_START]), int(k.ks.vmas[v, S.V_END])
                hstart = -(-vs // HPAGE_PMD_NR) * HPAGE_PMD_NR
                hend = ve // HPAGE_PMD_NR * HPAGE_PMD_NR
                if self.cursor_vpn > hend:
                    progress += 1
                    continue
                self.cursor_vpn = max(self.cursor_vpn, hstart)
                while self.cursor_vpn < hend:
                    res = self.scan_pmd(mm, v, self.cursor_vpn)
                    self.cursor_vpn += HPAGE_PMD_NR
                    progress += HPAGE_PMD_NR
                    if res == SCAN_SUCCEED:
                        self.stats["pages_collapsed"] += 1
                    if res in (SCAN_SUCCEED, SCAN_ALLOC_HUGE_PAGE_FAIL):
                        # the mmap lock was dropped: back to khugepaged_do_scan
                        return progress, res == SCAN_ALLOC_HUGE_PAGE_FAIL
                    if progress >= pages:
                        finished = False
                        break
                if not finished:
                    break
        if finished:  # every VMA scanned, or the mm is gone: on to the next slot
            i = self.slots.index(mm)
            if mm not in k.mms:
                self.slots.remove(mm)  # collect_mm_slot
            else:
                i += 1
            if i < len(self.slots):
                self.cursor_mm, self.cursor_vpn = self.slots[i], 0
            else:
                self.cursor_mm = None
                self.stats["full_scans"] += 1
        return progress, failed

    # ------------------------------------------------------------ one range
    def scan_pmd(self, mm: int, v: int, h: int) -> int:
        """``hpage_collapse_scan_pmd`` for the 2 MiB range at vpn ``h`` of VMA ``v``, and
        ``collapse_huge_page`` when it qualifies.  Returns a SCAN_* result."""
        k = self.k
        ks = k.ks
        from numasim.mm.huge_memory import _pmds

        if (mm, h >> HPAGE_PMD_ORDER) in _pmds(k):
            return SCAN_PMD_MAPPED
        if ks.pgt_get(S.pgtable_key(mm, S.PGT_PTE, h >> HPAGE_PMD_ORDER)) is None:
            return SCAN_PMD_NULL
        r = int(ks.vmas[v, S.V_REGION])
        lo = int(ks.regions[r, S.R_PT]) + h - int(ks.regions[r, S.R_START])
        ents = ks.pt_page[lo: lo + HPAGE_PMD_NR].copy()
        res, node_load = self.range_check(ents, bool(int(ks.vmas[v, S.V_PROT]) & S.PROT_WRITE))
        if res != SCAN_SUCCEED:
            return res
        return self.collapse_huge_page(mm, v, h, lo, ents, node_load)

    def range_check(self, ents: np.ndarray, vma_writable: bool) -> tuple[int, np.ndarray]:
        """The PTE walk of ``hpage_collapse_scan_pmd`` over one range's entries (page rows
        or PT_*): the first limit crossed, in address order, decides; else SCAN_SUCCEED.
        Also returns ``node_load`` (present pages per node)."""
        ks = self.k.ks
        kn = self.knobs
        present = ents >= 0
        rows = np.where(present, ents, 0)
        nr = ks.nr_node_ids
        node_load = np.bincount(ks.pages[rows[present], S.PG_NODE], minlength=nr)
        big = HPAGE_PMD_NR + 1

        def first(mask: np.ndarray, limit: int) -> int:
            c = np.cumsum(mask)
            hit = np.flatnonzero(c > limit)
            return int(hit[0]) if hit.size else big

        shared = present & (ks.pages[rows, S.PG_MAPCOUNT] > 1)
        nb = getattr(self.k, "numab", None)
        batched = nb._batched_rows() if nb is not None and nb.lru else set()
        not_lru = present & np.isin(rows, list(batched)) if batched else present & False
        not_anon = present & (ks.pages[rows, S.PG_KIND] != S.PGK_ANON)
        checks = [
            (first(ents == S.PT_SWAP, kn["max_ptes_swap"]), SCAN_EXCEED_SWAP_PTE,
             "thp_scan_exceed_swap_pte"),
            (first((ents == S.PT_NONE) | (ents == S.PT_ZERO), kn["max_ptes_none"]),
             SCAN_EXCEED_NONE_PTE, "thp_scan_exceed_none_pte"),
            (first(shared, kn["max_ptes_shared"]), SCAN_EXCEED_SHARED_PTE,
             "thp_scan_exceed_share_pte"),
            (first(not_lru, 0), SCAN_PAGE_LRU, None),  # tested before PageAnon
            (first(not_anon, 0), SCAN_PAGE_ANON, None),
        ]
        at, res, event = min(checks, key=lambda c: c[0])
        if at < big:
            if event:
                self.events[event] += 1
            return res, node_load
        # a COW-shared page is mapped read-only; a private one in a writable VMA is writable
        if not (vma_writable and (present & ~shared).any()):
            return SCAN_PAGE_RO, node_load
        if not present.any():
            return SCAN_LACK_REFERENCED_PAGE, node_load
        if (ents == S.PT_SWAP).any():
            return SCAN_SWAPIN_NOT_MODELLED, node_load
        return SCAN_SUCCEED, node_load

    def collapse_huge_page(self, mm: int, v: int, h: int, lo: int, ents: np.ndarray,
                           node_load: np.ndarray) -> int:
        """Allocate on the target node (or another node with the same load), copy, free the
        old pages, map the PMD."""
        k = self.k
        ks = k.ks
        from numasim.mm.huge_memory import _pmds

        target = hpage_collapse_find_target_node(node_load)
        pg = self._alloc(mm, target, node_load, int(ks.vmas[v, S.V_PGOFF])
                         + h - int(ks.vmas[v, S.V_START]))
        if pg < 0:
            self.events["thp_collapse_alloc_failed"] += 1
            return SCAN_ALLOC_HUGE_PAGE_FAIL
        self.events["thp_collapse_alloc"] += 1
        ks.pages[pg, S.PG_MAPCOUNT] = 1
        ks.pages[pg, S.PG_DIRTY] = 1
        sources: dict[int, int] = {}
        for old in (int(x) for x in ents if x >= 0):
            n = int(ks.pages[old, S.PG_NODE])
            sources[n] = sources.get(n, 0) + 1
            k._unmap_page(old)
        ks.pt_page[lo: lo + HPAGE_PMD_NR] = pg
        _pmds(k).add((mm, h >> HPAGE_PMD_ORDER))
        nb = getattr(k, "numab", None)
        if nb is not None and nb.prot.shape[0] >= lo + HPAGE_PMD_NR:
            nb.prot[lo: lo + HPAGE_PMD_NR] = -1  # the new PMD is not PROT_NONE
        self.log.append(Collapse(self.now, mm, h, int(ks.pages[pg, S.PG_NODE]), sources))
        return SCAN_SUCCEED

    def _alloc(self, mm: int, target: int, node_load: np.ndarray, index: int) -> int:
        """``__alloc_pages(gfp, HPAGE_PMD_ORDER, target, &alloc_nmask)``: the target node,
        then the other nodes of the mask in the target's fallback order."""
        k = self.k
        ks = k.ks
        ks.ensure_pages(8)
        best = int(node_load.max())
        order = [int(ks.zones[z, S.Z_NODE]) for z in ks.zonelist[target] if z >= 0]
        nodes = [target] + [n for n in dict.fromkeys(order)
                            if n != target and int(node_load[n]) == best]
        tasks = [t for t in np.flatnonzero(ks.tasks[:, S.T_ALIVE] == 1)
                 if int(ks.tasks[t, S.T_MM]) == mm]
        t = int(tasks[0]) if tasks else 0
        res = k._res
        alloc_pages = getattr(k.core, "__alloc_pages")  # (a dunder name: no class mangling)
        # alloc_hugepage_khugepaged_gfpmask: GFP_TRANSHUGE with khugepaged/defrag, else
        # GFP_TRANSHUGE_LIGHT; either way no kswapd wake-up
        gfp = GFP_TRANSHUGE if self.knobs["defrag"] else GFP_TRANSHUGE_LIGHT
        for n in nodes:
            alloc_pages(ks.zones, ks.zonelist, ks.sysvars, ks.numastat, ks.vmstat,
                        ks.pol_nodes, ks.task_mems, t, n, gfp, HPAGE_PMD_ORDER, n,
                        core.MASK_NODE, n, core.OOM_NEVER, res)
            z = int(res[core.R_ZONE])
            if z >= 0:
                return int(k.core.rmqueue(ks.zones, ks.sysvars, ks.vmstat, ks.pages, z,
                                          HPAGE_PMD_ORDER, S.PGK_ANON, -1, index))
        return -1


def hpage_collapse_find_target_node(node_load: np.ndarray) -> int:
    """The first node with the highest count (ties go to the lowest node id; 6.1 and 6.12
    alike -- the round-robin tie-break of older kernels is gone)."""
    return int(np.argmax(node_load))


def khugepaged_vma_check(k: Kernel, v: int) -> bool:
    """``hugepage_vma_check(..., enforce_sysfs=true)`` for an anonymous VMA: THP allowed by
    the mode and the VMA's madvise flags (the fault path's rule) and at least one whole
    aligned 2 MiB range inside."""
    from numasim.mm.huge_memory import thp_vma_allowable

    if not int(k.ks.vmas[v, S.V_ALIVE]) or not thp_vma_allowable(k, v):
        return False
    vs, ve = int(k.ks.vmas[v, S.V_START]), int(k.ks.vmas[v, S.V_END])
    return -(-vs // HPAGE_PMD_NR) * HPAGE_PMD_NR + HPAGE_PMD_NR <= ve


def khugepaged(k: Kernel) -> Khugepaged:
    """The kernel's khugepaged (made with the kernel, the machine YAML's knobs applied)."""
    return k.khugepaged


def vm_event(k: Kernel, key: str) -> int | None:
    """A khugepaged vm event (0 before khugepaged ever ran), or None for other names."""
    if key not in EVENTS:
        return None
    return int(k.khugepaged.events[key])


# ------------------------------------------------------------------ the files scripts see
def khugepaged_read(k: Kernel, path: str) -> list[str] | None:
    """The file under ``transparent_hugepage/khugepaged/`` as Linux prints it, or None."""
    if not path.startswith(KHUGEPAGED_DIR):
        return None
    name = path[len(KHUGEPAGED_DIR):]
    kh = k.khugepaged
    if name in KNOBS:
        return [str(kh.knobs[name])]
    if name in STATS:
        return [str(kh.stats[name])]
    raise OSError(E.ENOENT, path)


def khugepaged_write(k: Kernel, path: str, value: str) -> bool:
    """A write to a khugepaged file: True when handled; OSError(EINVAL) for a value its
    ``*_store`` rejects, OSError(EACCES) for the read-only statistics."""
    if not path.startswith(KHUGEPAGED_DIR):
        return False
    name = path[len(KHUGEPAGED_DIR):]
    if name in STATS:
        raise OSError(E.EACCES, path)
    if name not in KNOBS:
        raise OSError(E.ENOENT, path)
    try:
        k.khugepaged.set_knob(name, value)
    except ValueError:
        raise OSError(E.EINVAL, path) from None
    return True


# ------------------------------------------------- min_free_kbytes for THP (khugepaged.c)
MIGRATE_PCPTYPES = 3


def recommended_min_free_kbytes(k: Kernel) -> int:
    """``set_recommended_min_free_kbytes``'s target: two free pageblocks per zone up to
    ZONE_NORMAL plus MIGRATE_PCPTYPES^2 more (fragmentation avoidance for THP), at most 5 %
    of ``nr_free_buffer_pages`` (managed minus HIGH over those zones), in kB."""
    ks = k.ks
    nr_zones = free_buffer = 0
    for z in ks.derived.zones:
        if z.present <= 0 or z.type > ZONE_NORMAL:
            continue
        nr_zones += 1
        managed = int(ks.zones[z.index, S.Z_MANAGED])
        high = int(ks.zones[z.index, S.Z_HIGH])
        free_buffer += max(managed - high, 0)
    pageblock = HPAGE_PMD_NR
    rec = pageblock * nr_zones * 2 + pageblock * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
    rec = min(rec, free_buffer // 20)
    return rec * (k.machine.page_size >> 10)


def set_recommended_min_free_kbytes(k: Kernel) -> None:
    """Run when khugepaged starts or stops (boot with THP on, a write to ``enabled``): with
    THP on, ``min_free_kbytes`` is raised to :func:`recommended_min_free_kbytes` if that is
    more (the oracle's 2node-tier node 0: MIN 455 -> 5639 pages, so a THP spill leaves
    ~25 MiB more free on node 0 than a 4 KiB one); with THP off it goes back to the boot
    value (``calculate_min_free_kbytes``, or what the user wrote).  Then every zone's
    watermarks are recomputed (``setup_per_zone_wmarks``)."""
    base = getattr(k, "user_min_free_kbytes", None)
    if base is None:
        base = int(k.ks.derived.min_free_kbytes)
    mfk = base
    if int(k.ks.sysvars[S.SV_THP]) != 0:
        mfk = max(base, recommended_min_free_kbytes(k))
    k.setup_per_zone_wmarks(min_free_kbytes=mfk)

