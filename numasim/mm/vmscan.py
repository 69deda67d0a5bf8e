"""Page reclaim (``mm/vmscan.c``): per-node LRU lists, page aging, kswapd, direct reclaim,
and demotion to the next memory tier instead of swap (``demote_folio_list``).

*LRU lists.*  Each node has the classic two-list LRU (``inactive_anon``, ``active_anon``,
``inactive_file``, ``active_file``; linux-numa-balancing-facts.md section 3.1).  The lists are
not linked lists here but an order: every resident page row has an LRU key, and a list is its
pages sorted by key (smallest = the tail, where reclaim looks first).  A page the allocator
core has just made has no key of its own: its row number is its key, because rows are handed
out in allocation order (``rmqueue``) -- so the core and the timing engines add pages to the
LRU head without knowing about it, as ``folio_add_lru`` does.  Rotating or activating a page
gives it a key just above the newest row.  Swap-backed pages (anon, shmem) are on the anon
lists; numasim's regular files are ramfs, whose pages are unevictable (never scanned).  Page
tables and kernel pages are not on any LRU.  So "the LRU lists hold exactly the resident
user pages" is true by construction, and :func:`lru_sizes` counts them.

*Aging* (``folio_check_references`` / ``folio_referenced``): an access sets the page's
*young* bit (the PTE accessed bit).  Reclaim scans the inactive tail: a young page loses its
young bit and is activated if it was already ``PG_referenced``, otherwise it gets
``PG_referenced`` and rotates to the head (the second chance); a page that is not young is
reclaimed.  The active list is shrunk into the inactive head while ``inactive_is_low``
(``ratio = int_sqrt(10 x GiB)``, 1 below 1 GiB).  Accesses reach the young bits from
``Kernel.touch`` (scripts' ``touch``/``read``/``write``) and, in timed runs, from every
access the engines time (:mod:`numasim.machine.kswapd_clock`: one byte per page row, fed to
:func:`mark_young` before each kswapd step and direct reclaim), which is what the hardware
accessed bit gives reclaim too: one bit per scan interval, not a count.

*Reclaim* (``shrink_folio_list``): a page chosen for reclaim is demoted when
``can_demote`` (``demotion_enabled``, the node has a demotion target): ``alloc_demote_folio``
allocates on ``next_demotion_node`` (``__GFP_THISNODE``, no direct reclaim, LOW then MIN, may
wake that node's kswapd) and then on the other nodes of the lower tiers; a page that cannot
be demoted falls back to swap in the same call.  Swap needs a swap device
(:attr:`Reclaim.swap_pages`; ``#@ swap SIZE`` in a scenario): a private page mapped once, or
a shmem page, leaves memory (``pswpout``).  Without swap and without a demotion target,
anonymous pages are not even scanned (``can_reclaim_anon_pages``) -- the allocation then ends
in the OOM killer, as before.  MGLRU (on by default in Debian's 6.12) is not modelled: both
generations use the two-list LRU (the recorded outcomes agree, FINDINGS.md section 11).

*kswapd* (one per node): woken when an allocation's fast path fails the LOW watermark on
every eligible zone (``wake_all_kswapds``; the allocator core records the nodes in
``sysvars[SV_KSWAPD_WAKE]``; not every gfp mask may, see ``gfp_kswapd_reclaim``), it
reclaims until the node is balanced (some zone above HIGH + its lowmem reserve,
``pgdat_balanced``), in passes of the node's HIGH marks' worth (:meth:`Reclaim.kswapd_pass`),
so it stops somewhat above HIGH as Linux's does.  It runs as a kernel thread on the script's clock,
on another CPU of the node, at the same time as the task that woke it: for every page the
task allocates while kswapd is awake, kswapd reclaims :data:`KSWAPD_RATIO` pages, and it
finishes its work before the script's next command.  When the task reaches MIN first it
reclaims for itself (``try_to_free_pages``, SWAP_CLUSTER_MAX pages per call: direct
reclaim) -- the recorded 6.12 runs show both, about half and half (FINDINGS.md section 11).
In timed runs (``numasim run``) kswapd is instead a thread on the simulated clock, with a
CPU cost per page, and direct reclaim runs in the faulting thread's time
(:mod:`numasim.machine.kswapd_clock`).  Watermark boosting is not modelled (the scenarios set
``watermark_boost_factor`` 0).
``zone_reclaim_mode`` is accepted but has no effect: node_reclaim only reclaims unmapped
page cache and slab, which numasim does not have.

Counters (``/proc/vmstat``): ``pgscan_kswapd``/``_direct``, ``pgsteal_kswapd``/``_direct``
(demoted pages count as stolen), ``pgscan_anon``, ``pgsteal_anon``, ``pgdemote_kswapd``,
``pgdemote_direct``, ``pgactivate``, ``pgdeactivate``, ``pageoutrun``... see
:data:`COUNTERS`; ``pswpout`` and ``pgmigrate_success`` are the core's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np

from numasim.mm import alloc_core as core
from numasim.mm import state as S
from numasim.mm.constants import GFP_KERNEL, GFP_THISNODE, GFP_USER_MOVABLE, KGEN_6_1

SWAP_CLUSTER_MAX = 32
KSWAPD_RATIO = 0.55
"""Pages kswapd reclaims per page the woken-up task allocates (both run at once on two CPUs
of the node).  Fitted to ``98_demotion_bind_pressure`` on 6.12: kswapd demoted 16767 and
12664 of 27132 / 27440 pages in two boots (0.62 and 0.46 of the pages allocated after the
wake-up)."""

BOOT_RECLAIMABLE = 0.47
"""Share of the booted guest's own memory (``Machine.boot_used``) that reclaim can free
without swap or demotion -- reclaimable slab (``shrink_slab``), which ``pgsteal_*`` does not
count: in 99 the kernel's pgsteal equals its pswpout -- and frees first.  Fitted to
``98_demotion_bind_pressure`` on 6.12: the kernel demoted 26365 / 26677 of the scenario's
pages where numasim, with nothing else to reclaim, demoted 29610 (3245 / 2933 pages freed
elsewhere; 0.47 x 6416 = 3015).  6.1 has no demotion recording; it uses the same share.
Only a node whose anonymous pages can go (swap or a demotion target) frees it: on 6.1, where
node 0 has neither, ``125_thp_defrag_defer_spill`` woke node 0's kswapd about 120 times and
node 0 ended with as many of the region's pages as without kswapd (``122``: 101956 / 101959
against 101949 / 101949)."""

KSWAPD_CHUNK = 256
"""While a kswapd is awake, a task's fault batch is cut into chunks of this many pages and
kswapd gets its share after each chunk (the two run at the same time)."""
MAX_RECLAIM_RETRIES = 16

LRU_ACTIVE = 1
PG_REFERENCED = 2
PTE_OLD = 4
"""The page's accessed bit was cleared by reclaim and not set again.  Stored inverted, so
that a page the allocator core has just faulted in -- young, as its first access made it --
needs no entry: a workload that never meets reclaim pays nothing for the young bits."""

KEY_SHIFT = 20
"""A page's LRU key is ``row << KEY_SHIFT`` until it rotates; then it gets a key between the
newest row and the next one, so it sorts after every page allocated before."""

COUNTERS = ("pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
            "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file", "pgdemote_kswapd",
            "pgdemote_direct", "pgdemote_khugepaged", "pgactivate", "pgdeactivate", "pgrefill",
            "pageoutrun")
"""The reclaim counters of ``/proc/vmstat`` (``mm/vmstat.c`` names; ``pgdemote_khugepaged``
is 6.12 only, -1 on 6.1)."""

_LRU_KINDS = (S.PGK_ANON, S.PGK_SHMEM)


class Reclaim:
    """The reclaim state of one simulated kernel: LRU keys and flags per page row, kswapd
    per node, the swap device, the counters."""

    def __init__(self, k) -> None:
        self.k = k
        self.flags = np.zeros(0, dtype=np.int8)
        self.key = np.zeros(0, dtype=np.int64)
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.awake: set[int] = set()  # nodes whose kswapd is running
        self.owed: dict[int, int] = {}  # pages left in an awake kswapd's current pass
        self.swap_pages = 0  # size of the swap device (0: no swap)
        self.swap_ram = False  # the swap device is a ramdisk (brd) whose pages are RAM
        self.brd_pages: list[int] = []  # the ramdisk's pages (kernel pages, never freed)
        self._kswapd_cpu = -1
        self.boot_reclaimed = 0
        self.swapped = 0  # pages reclaim wrote to swap (pswpout also counts MADV_PAGEOUT)
        self.boot_cache = {nid: int(used * BOOT_RECLAIMABLE)
                           for nid, used in getattr(k.machine, "boot_used", ())}
        self.rng = random.Random(0)  # next_demotion_node's random pick, seeded
        self._credit = 0.0
        self._no_progress = 0
        self.task = 0  # the task whose CPU the reclaimer runs on (numastat local/other)
        self._seq = 0
        self._seq_base = -1
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
        self.moves: list[tuple[int, int, int]] | None = None
        """When a list: every page reclaim moves is appended as (source node, target node or
        -1 for swap, order) -- the timing engines' copy traffic (numasim.machine.kswapd_clock)."""
        self.before_scan: Callable[[], None] | None = None
        """Run before reclaim looks at an LRU: a timed run's hook that turns the accesses
        since reclaim last looked into PTE accessed bits (whoever reclaims: kswapd's steps,
        direct reclaim, or the promotion path's ``wake_target_kswapd``)."""

    @property
    def swap_used(self) -> int:
        """Swap slots in use.  Swap entries carry no slot number in numasim, so a fork's
        copies of an entry cannot be told from other slots: the count is the smaller of the
        swap entries in page tables and shmem caches and the pages written minus the pages
        read back (``pswpout - pswpin``), each an upper bound in its own case."""
        ks = self.k.ks
        entries = int((ks.pt_page[: ks.pt_used] == S.PT_SWAP).sum()
                      + (ks.obj_pages[: ks.obj_pages_used] == S.PT_SWAP).sum())
        return max(0, min(entries, int(ks.vmstat[S.VM_SWPOUT] - ks.vmstat[S.VM_SWPIN])))

    # ----------------------------------------------------------------- arrays
    def _fit(self) -> None:
        n = self.k.ks.pages.shape[0]
        if self.flags.shape[0] < n:
            f = np.zeros(n, dtype=np.int8)
            f[: self.flags.shape[0]] = self.flags
            key = np.full(n, -1, dtype=np.int64)
            key[: self.key.shape[0]] = self.key
            self.flags, self.key = f, key

    def _new_key(self) -> int:
        nxt = int(self.k.ks.sysvars[S.SV_NEXT_PAGE])
        if nxt != self._seq_base:
            self._seq_base, self._seq = nxt, 0
        self._seq = min(self._seq + 1, (1 << KEY_SHIFT) - 1)
        return ((nxt - 1) << KEY_SHIFT) + self._seq

    def keys_of(self, pgs: np.ndarray) -> np.ndarray:
        self._fit()
        kk = self.key[pgs]
        return np.where(kk >= 0, kk, pgs.astype(np.int64) << KEY_SHIFT)

    def lru_pages(self, nid: int) -> np.ndarray:
        """Rows of the resident pages on node ``nid``'s (evictable) LRU lists."""
        ks = self.k.ks
        n = int(ks.sysvars[S.SV_NEXT_PAGE])
        p = ks.pages[:n]
        ok = (p[:, S.PG_ZONE] >= 0) & (p[:, S.PG_NODE] == nid) & np.isin(p[:, S.PG_KIND],
                                                                          _LRU_KINDS)
        return np.flatnonzero(ok)

    def move_flags(self, old: int, new: int) -> None:
        """A migrated page keeps its LRU state (``folio_migrate_flags``)."""
        self._fit()
        self.flags[new] = self.flags[old]
        self.flags[old] = 0
        self.key[old] = -1

    # ------------------------------------------------------------------ aging
    def mark_young(self, pgs: np.ndarray) -> None:
        """Accesses to these pages (their PTEs' accessed bits); hook for every engine.
        Only pages reclaim has aged carry a bit to clear."""
        if pgs.size and self.flags.size:
            pgs = pgs[(pgs >= 0) & (pgs < self.flags.size)]
            self.flags[pgs] &= ~PTE_OLD

    def inactive_is_low(self, nid: int, pgs: np.ndarray) -> bool:
        """``inactive_is_low``: ``inactive x ratio < active``, ratio = int_sqrt(10 x GiB)."""
        act = int((self.flags[pgs] & LRU_ACTIVE).astype(bool).sum())
        ina = pgs.size - act
        gb = (pgs.size * 4096) >> 30
        ratio = math.isqrt(10 * gb) if gb else 1
        return ina * ratio < act

    def shrink_active_list(self, nid: int, pgs: np.ndarray, nr: int) -> None:
        """Move ``nr`` pages from the active tail to the inactive head (anon pages are
        deactivated whatever their references, ``shrink_active_list``)."""
        act = pgs[(self.flags[pgs] & LRU_ACTIVE) != 0]
        if not act.size:
            return
        take = act[np.argsort(self.keys_of(act), kind="stable")[:nr]]
        self.counters["pgrefill"] += int(take.size)
        self.counters["pgdeactivate"] += int(take.size)
        for pg in take:
            self.flags[pg] = (self.flags[pg] & ~LRU_ACTIVE) | PTE_OLD
            self.key[pg] = self._new_key()
        self._cache.pop(nid, None)

    # ---------------------------------------------------------------- scanning
    def _inactive_tail(self, nid: int, want: int) -> np.ndarray:
        """The folios at the inactive tail of node ``nid`` that hold the next ``want`` base
        pages (at least one folio), oldest first: ``isolate_lru_folios`` counts a THP as
        its 512 pages.  A sorted snapshot is kept and read from a cursor; entries that
        rotated, moved or left since are skipped (keys only grow, so the snapshot's order
        stays right), and it is rebuilt when used up."""
        self._fit()
        out: list[int] = []
        taken = 0
        for _attempt in range(2):
            snap = self._cache.get(nid)
            if snap is None:
                pgs = self.lru_pages(nid)
                pgs = pgs[(self.flags[pgs] & LRU_ACTIVE) == 0]
                keys = self.keys_of(pgs)
                o = np.argsort(keys, kind="stable")
                snap = (pgs[o], keys[o], 0)
            rows, keys, cur = snap
            ks = self.k.ks
            while taken < want and cur < rows.size:
                blk = rows[cur: cur + 4 * want]
                kb = keys[cur: cur + 4 * want]
                ok = ((ks.pages[blk, S.PG_ZONE] >= 0) & (ks.pages[blk, S.PG_NODE] == nid)
                      & ((self.flags[blk] & LRU_ACTIVE) == 0) & (self.keys_of(blk) == kb))
                good = blk[ok]
                csum = np.cumsum(1 << ks.pages[good, S.PG_ORDER])
                n = int(np.searchsorted(csum, want - taken, side="right"))
                if n == 0 and not out and good.size:
                    n = 1  # one folio bigger than the request
                good = good[:n]
                if good.size:
                    cur = int(np.flatnonzero(blk == good[-1])[0]) + cur + 1
                    taken += int(csum[n - 1])
                elif ok.any():
                    break  # the next folio does not fit
                else:
                    cur += blk.size
                out.extend(int(x) for x in good)
            if cur >= rows.size:
                self._cache.pop(nid, None)
                if out:
                    break
                if _attempt == 0 and snap is self._cache.get(nid, snap):
                    continue
            else:
                self._cache[nid] = (rows, keys, cur)
            break
        return np.array(out, dtype=np.int64)

    def can_demote(self, nid: int) -> bool:
        """``can_demote``: demotion enabled and the node has a demotion target."""
        k = self.k
        return bool(k.demotion_enabled and k.memory_tiers.node_demotion.get(nid))

    def can_reclaim_anon(self, nid: int) -> bool:
        """``can_reclaim_anon_pages``: free swap space, or a demotion target."""
        return self.swap_used < self.swap_pages or self.can_demote(nid)

    def shrink_node(self, nid: int, nr_to_reclaim: int, who: str,
                    max_scan: int | None = None) -> int:
        """Reclaim up to ``nr_to_reclaim`` pages of node ``nid`` (``who``: ``kswapd`` or
        ``direct``), scanning at most ``max_scan`` pages (default: the LRU twice over -- a
        timed kswapd scans in steps, so that the accesses between them set accessed bits);
        returns the pages freed on the node."""
        if not self.can_reclaim_anon(nid):
            return 0  # nothing on the LRUs can go, and the boot cache is not freed either
        reclaimed = self._shrink_boot_cache(nid, nr_to_reclaim, who)
        if reclaimed >= nr_to_reclaim:
            return reclaimed
        if self.before_scan is not None:
            self.before_scan()
        self._fit()
        scanned = 0
        lru = self.lru_pages(nid)
        limit = 2 * int((1 << self.k.ks.pages[lru, S.PG_ORDER]).sum()) + SWAP_CLUSTER_MAX
        if max_scan is not None:
            limit = min(limit, max_scan)
        if self.inactive_is_low(nid, lru):
            self.shrink_active_list(nid, lru, max(SWAP_CLUSTER_MAX, nr_to_reclaim))
        while reclaimed < nr_to_reclaim and scanned < limit:
            batch = self._inactive_tail(nid, min(max(nr_to_reclaim - reclaimed, 1),
                                                 SWAP_CLUSTER_MAX * 32))
            if not batch.size:
                break
            nr = int((1 << self.k.ks.pages[batch, S.PG_ORDER]).sum())  # base pages
            scanned += nr
            self.counters[f"pgscan_{who}"] += nr
            self.counters["pgscan_anon"] += nr
            reclaimed += self.shrink_folio_list(nid, batch, who)
        return reclaimed

    def _shrink_boot_cache(self, nid: int, want: int, who: str) -> int:
        """Free pages of the guest's own reclaimable memory (:data:`BOOT_RECLAIMABLE`)."""
        left = self.boot_cache.get(nid, 0)
        n = min(left, want)
        if n <= 0:
            return 0
        ks = self.k.ks
        zs = sorted((int(z) for z in np.flatnonzero((ks.zones[:, S.Z_NODE] == nid)
                                                    & (ks.boot_held > 0))),
                    key=lambda z: -int(ks.zones[z, S.Z_TYPE]))
        rest = n
        for z in zs:
            give = min(rest, int(ks.boot_held[z]))
            ks.zones[z, S.Z_FREE] += give
            ks.boot_held[z] -= give
            rest -= give
        n -= rest
        self.boot_cache[nid] = left - n
        self.boot_reclaimed += n  # not in pgsteal_*: the recorded pgsteal = pswpout (99)
        return n

    def shrink_folio_list(self, nid: int, batch: np.ndarray, who: str) -> int:
        """``shrink_folio_list`` over pages from the inactive tail: second chance for young
        pages, demotion (else swap) for the others.  Returns the pages freed."""
        f = self.flags
        young = (f[batch] & PTE_OLD) == 0
        ref = (f[batch] & PG_REFERENCED) != 0
        act = batch[young & ref]
        keep = batch[young & ~ref]
        f[batch[young]] |= PTE_OLD
        for pg in act:  # FOLIOREF_ACTIVATE
            f[pg] |= LRU_ACTIVE
            self.key[pg] = self._new_key()
        self.counters["pgactivate"] += int(act.size)
        for pg in keep:  # FOLIOREF_KEEP: referenced, back to the head
            f[pg] |= PG_REFERENCED
            self.key[pg] = self._new_key()
        cand = batch[~young]
        if not cand.size:
            return 0
        freed = 0
        left = cand
        if self.can_demote(nid):
            n_dem, left = self.demote_folio_list(nid, cand)
            self.counters[f"pgdemote_{who}"] += n_dem
            freed += n_dem
        if left.size and self.swap_used < self.swap_pages:
            n_sw, left = self.pageout(left, who)
            freed += n_sw
        for pg in left:  # could not be reclaimed: activate (``activate_locked``)
            f[pg] |= LRU_ACTIVE
            self.key[pg] = self._new_key()
        self.counters[f"pgsteal_{who}"] += freed
        self.counters["pgsteal_anon"] += freed
        return freed

    # ---------------------------------------------------------------- demotion
    def demote_folio_list(self, nid: int, pgs: np.ndarray) -> tuple[int, np.ndarray]:
        """``demote_folio_list``: migrate each page to ``next_demotion_node`` or, failing
        that, any node of the lower tiers (``alloc_demote_folio``).  Returns (pages
        demoted, pages left)."""
        k = self.k
        ks = k.ks
        fallback = k.memory_tiers.node_get_allowed_targets(nid)
        left = []
        done = 0
        rmap = self._rmap(pgs)
        for pg in pgs:
            pg = int(pg)
            target = k.memory_tiers.next_demotion_node(nid, self.rng)
            new = self._alloc_demote(pg, target, fallback)
            if new < 0:
                left.append(pg)
                continue
            order = int(ks.pages[pg, S.PG_ORDER])
            slot = rmap.get(pg, -1)
            self.move_flags(pg, new)
            self.key[new] = self._new_key()  # putback: the target's inactive head
            ks.pages[new, S.PG_DIRTY] = ks.pages[pg, S.PG_DIRTY]
            if slot >= 0:
                ks.pages[new, S.PG_MAPCOUNT] = 1
                ks.pt_page[slot] = new
                ks.pages[pg, S.PG_MAPCOUNT] = 0
                k.core.free_page(ks.zones, ks.vmstat, ks.pages, pg)
            else:
                remove_migration_ptes(k, pg, new)
            ks.vmstat[S.VM_PGMIGRATE_SUCCESS] += 1 << order
            done += 1 << order
            if self.moves is not None:
                self.moves.append((nid, int(ks.pages[new, S.PG_NODE]), order))
        return done, np.array(left, dtype=np.int64)

    def _alloc_demote(self, pg: int, target: int, fallback: tuple[int, ...]) -> int:
        k = self.k
        ks = k.ks
        ks.ensure_pages(4)
        res = k._res
        kind, obj, index, order = (int(ks.pages[pg, c]) for c in
                                   (S.PG_KIND, S.PG_OBJ, S.PG_INDEX, S.PG_ORDER))
        for nid in (target, *[n for n in fallback if n != target]):
            if nid < 0:
                continue
            res[core.R_NID] = nid
            res[core.R_MASK_KIND] = core.MASK_NODE
            res[core.R_MASK_IDX] = nid
            new = int(k.core.alloc_pages_nid(ks.core_args(), self.task, GFP_THISNODE, order, -1,
                                             -1, kind, obj, index, core.OOM_NEVER, res))
            if new >= 0:
                self._fit()
                return new
        return -1

    def _rmap(self, pgs: np.ndarray) -> dict[int, int]:
        """Page-table slot of each private page mapped once (the anon rmap walk)."""
        ks = self.k.ks
        single = pgs[(ks.pages[pgs, S.PG_MAPCOUNT] == 1) & (ks.pages[pgs, S.PG_OBJ] < 0)
                     & (ks.pages[pgs, S.PG_ORDER] == 0)]
        if not single.size:
            return {}
        pt = ks.pt_page[: ks.pt_used]
        hit = np.flatnonzero(np.isin(pt, single))
        return {int(pt[s]): int(s) for s in hit}

    # -------------------------------------------------------------------- swap
    def pageout(self, pgs: np.ndarray, who: str) -> tuple[int, np.ndarray]:
        """``pageout`` to the swap device: private pages mapped once and shmem pages leave
        memory (as ``Kernel.swapout``); THPs and shared private pages stay.  Returns (pages
        freed, pages left)."""
        k = self.k
        ks = k.ks
        rmap = self._rmap(pgs)
        left = []
        out = 0
        room = self.swap_pages - self.swap_used
        for pg in pgs:
            pg = int(pg)
            if out >= room or ks.pages[pg, S.PG_ORDER] != 0:
                left.append(pg)
                continue
            kind = int(ks.pages[pg, S.PG_KIND])
            if kind == S.PGK_ANON and pg in rmap:
                ks.pt_page[rmap[pg]] = S.PT_SWAP
            elif kind == S.PGK_SHMEM:
                o = int(ks.pages[pg, S.PG_OBJ])
                oslot = int(ks.objs[o, S.O_BASE]) + int(ks.pages[pg, S.PG_INDEX])
                hits = (ks.pt_page[: ks.pt_used] == pg).nonzero()[0]
                ks.pt_page[hits] = S.PT_NONE
                ks.obj_pages[oslot] = S.PT_SWAP
            else:
                left.append(pg)
                continue
            if self.swap_ram and not self._brd_page(who):
                left.append(pg)  # the ramdisk had no page: the write fails, the page stays
                continue
            self.flags[pg] = 0
            self.key[pg] = -1
            if self.moves is not None:
                self.moves.append((int(ks.pages[pg, S.PG_NODE]), -1, 0))
            k.core.free_page(ks.zones, ks.vmstat, ks.pages, pg)
            ks.vmstat[S.VM_SWPOUT] += 1
            out += 1
        self.swapped += out
        return out, np.array(left, dtype=np.int64)

    def _brd_page(self, who: str) -> bool:
        """A RAM-backed swap device (the oracle's brd ramdisk) allocates a page for each
        page written to it (``brd_insert_page``: GFP_NOIO, no direct reclaim), under the
        policy of the task doing the page-out: kswapd's default policy on its own node, or
        the reclaiming task's policy.  The page stays allocated (brd keeps it)."""
        k = self.k
        ks = k.ks
        ks.ensure_pages(4)
        t = self.task
        pol = -1 if who == "kswapd" else int(ks.tasks[t, S.T_POLICY])
        saved = int(ks.tasks[t, S.T_CPU])
        if who == "kswapd" and self._kswapd_cpu >= 0:
            k.set_cpu(t, self._kswapd_cpu)
        try:
            pg = int(k.core.alloc_pages_mpol(ks.core_args(), t, GFP_KERNEL, 0, pol, core.NO_ILX,
                                             S.PGK_KERNEL, -1, -1, core.OOM_NEVER, k._res))
        finally:
            if int(ks.tasks[t, S.T_CPU]) != saved:
                k.set_cpu(t, saved)
        if pg < 0:
            return False
        self._fit()
        self.brd_pages.append(pg)
        return True

    # ------------------------------------------------------------------ kswapd
    def highest_zoneidx(self) -> int:
        return int(core.gfp_zone(GFP_USER_MOVABLE))

    def pgdat_balanced(self, nid: int) -> bool:
        """``pgdat_balanced``: some managed zone of the node has free > HIGH (PROMO while
        bit 2 of numa_balancing is set, :mod:`numasim.mm.numa_promote`) + its lowmem
        reserve for the request's highest zone."""
        ks = self.k.ks
        hz = self.highest_zoneidx()
        nb = getattr(self.k, "numab", None)
        promo = nb is not None and bool(nb.mode & 2)  # NUMA_BALANCING_MEMORY_TIERING
        for z in np.flatnonzero((ks.zones[:, S.Z_NODE] == nid) & (ks.zones[:, S.Z_MANAGED] > 0)):
            high = int(ks.zones[z, S.Z_HIGH])
            mark = high + (high - int(ks.zones[z, S.Z_LOW])) if promo else high  # WMARK_PROMO
            if ks.zones[z, S.Z_FREE] > mark + ks.zones[z, S.Z_RES + hz]:
                return True
        return False

    def wakeup_kswapd(self) -> None:
        """Wake the kswapds the allocator core asked for (``wake_all_kswapds``)."""
        ks = self.k.ks
        mask = int(ks.sysvars[S.SV_KSWAPD_WAKE])
        if not mask:
            return
        ks.sysvars[S.SV_KSWAPD_WAKE] = 0
        for nid in self.k.machine.memory_nodes:
            if nid < 63 and mask >> nid & 1 and not self.pgdat_balanced(nid):
                if nid not in self.awake:
                    self.counters["pageoutrun"] += 1
                self.awake.add(nid)

    def kswapd_run(self, budget: int | None = None) -> int:
        """Let the awake kswapds reclaim: ``budget`` pages in all (the share of a running
        task's allocations), or until balanced (``None``).  A kswapd that is balanced, or
        can reclaim nothing, goes back to sleep."""
        self.wakeup_kswapd()
        total = 0
        for nid in sorted(self.awake):
            cpus = [c for c, n in self.k.machine.cpu_to_node.items() if n == nid]
            self._kswapd_cpu = min(cpus) if cpus else -1  # kswapd runs on its node's CPUs
            while True:
                if self.owed.get(nid, 0) <= 0:  # a pass is done: balanced, or another one
                    if self.pgdat_balanced(nid):
                        break
                    self.owed[nid] = self.kswapd_pass(nid)
                want = SWAP_CLUSTER_MAX * 32 if budget is None else budget - total
                if want <= 0:
                    return total
                got = self.shrink_node(nid, min(want, SWAP_CLUSTER_MAX * 32), "kswapd")
                total += got
                self.owed[nid] -= got
                if got == 0:
                    break
                self.wakeup_kswapd()
            done = self.owed.get(nid, 0) <= 0 and self.pgdat_balanced(nid)
            if budget is None or done or not self.can_reclaim_anon(nid):
                self.awake.discard(nid)
                self.owed.pop(nid, None)
        return total

    def kswapd_pass(self, nid: int) -> int:
        """Pages one ``balance_pgdat`` pass reclaims (``kswapd_shrink_node``: the HIGH marks
        of the node's zones, at least SWAP_CLUSTER_MAX each), balanced or not: so kswapd
        leaves a node above HIGH by up to that much (125 on 6.12: node 0 ends with 12754
        free pages, HIGH 8457)."""
        ks = self.k.ks
        zs = np.flatnonzero((ks.zones[:, S.Z_NODE] == nid) & (ks.zones[:, S.Z_MANAGED] > 0))
        return int(sum(max(int(ks.zones[z, S.Z_HIGH]), SWAP_CLUSTER_MAX) for z in zs))

    def try_to_free_pages(self, nodes: list[int]) -> int:
        """Direct reclaim (``try_to_free_pages``): SWAP_CLUSTER_MAX pages from the
        allocation's nodes, in zonelist order."""
        total = 0
        for nid in nodes:
            total += self.shrink_node(nid, SWAP_CLUSTER_MAX - total, "direct")
            if total >= SWAP_CLUSTER_MAX:
                break
        return total

    # ------------------------------------------------------------------ hooks
    def touched(self, t: int, r: int, vpn: int, n: int, allocated: int) -> None:
        """``Kernel.touch`` handled ``n`` pages from ``vpn`` in region ``r`` (``allocated``
        of them new): their PTEs are young; kswapds woken by the allocations start, and the
        awake ones reclaim their share (:data:`KSWAPD_RATIO`)."""
        ks = self.k.ks
        if n > 0:
            self._no_progress = 0
            if self.flags.size:  # nothing aged before reclaim first ran
                base = int(ks.regions[r, S.R_PT]) + vpn - int(ks.regions[r, S.R_START])
                self.mark_young(ks.pt_page[base: base + n])
        if ks.sysvars[S.SV_KSWAPD_WAKE]:
            self.wakeup_kswapd()
        if self.awake and allocated:
            self.task = t
            self._credit += allocated * KSWAPD_RATIO
            budget = int(self._credit)
            self._credit -= budget
            if budget:
                self.kswapd_run(budget)

    def direct_reclaim(self, t: int, mask: set[int] | None) -> bool:
        """The allocation failed MIN: reclaim for the task on the nodes it may use, in its
        zonelist order; True to retry the allocation (``should_reclaim_retry``)."""
        ks = self.k.ks
        self.wakeup_kswapd()
        self._no_progress = getattr(self, "_no_progress", 0) + 1
        if self._no_progress > MAX_RECLAIM_RETRIES:
            self._no_progress = 0
            return False
        nid = self.k.task_node(t)
        order = []
        for z in ks.zonelist[nid]:
            if z < 0:
                break
            n = int(ks.zones[z, S.Z_NODE])
            if n not in order and (mask is None or n in mask):
                order.append(n)
        self.task = t
        return self.try_to_free_pages(order) > 0

    # ---------------------------------------------------------------- counters
    def vmstat(self, key: str) -> int | None:
        if key not in self.counters:
            return None
        if key == "pgdemote_khugepaged" and self.k.kgen == KGEN_6_1:
            return -1
        return int(self.counters[key])


def remove_migration_ptes(k, old: int, new: int) -> None:
    """Every mapping of ``old`` -- PTEs in any process (all 512 of a THP), the object's
    page-cache slot -- now points at ``new``; ``old`` is freed (the general rmap walk; the
    same as ``syscalls._replace_page``, which this module cannot import)."""
    ks = k.ks
    ks.pages[new, S.PG_MAPCOUNT] = ks.pages[old, S.PG_MAPCOUNT]
    ks.pages[new, S.PG_DIRTY] = ks.pages[old, S.PG_DIRTY]
    hits = (ks.pt_page[: ks.pt_used] == old).nonzero()[0]
    ks.pt_page[hits] = new
    if int(ks.pages[old, S.PG_OBJ]) >= 0:
        slots = (ks.obj_pages[: ks.obj_pages_used] == old).nonzero()[0]
        ks.obj_pages[slots] = new
    ks.pages[old, S.PG_MAPCOUNT] = 0
    k.core.free_page(ks.zones, ks.vmstat, ks.pages, old)


def lru_sizes(k, nid: int) -> dict[str, int]:
    """``nr_inactive_anon``, ``nr_active_anon`` ... of a node (pages)."""
    r = reclaim(k)
    r._fit()
    pgs = r.lru_pages(nid)
    n = np.where(k.ks.pages[pgs, S.PG_ORDER] > 0, 1 << k.ks.pages[pgs, S.PG_ORDER], 1)
    act = (r.flags[pgs] & LRU_ACTIVE) != 0
    return {"nr_inactive_anon": int(n[~act].sum()), "nr_active_anon": int(n[act].sum()),
            "nr_inactive_file": 0, "nr_active_file": 0}


def reclaim(k) -> Reclaim:
    """The kernel's reclaim state, made on first use (no swap unless the machine or the
    scenario gives one)."""
    r = getattr(k, "vmscan", None)
    if r is None:
        r = Reclaim(k)
        r.swap_pages = int(getattr(k.machine, "swap_pages", 0) or 0)
        k.vmscan = r
    return r
