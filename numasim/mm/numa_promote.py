"""Memory tiering mode of NUMA balancing (``kernel.numa_balancing`` 2 and 3): promotion of
hot slow-tier pages to the faulting CPU's node.

Linux 5.18-6.x (``kernel/sched/fair.c``, ``mm/mprotect.c``, ``mm/migrate.c``; facts in
``linux-numa-balancing-facts.md`` sections 1.3, 1.8 and 2.4, the same in 6.1 and 6.12) adds
to the NUMA balancing of :mod:`numasim.mm.numa_balancing`:

* bit 2 of ``numa_balancing`` (``NUMA_BALANCING_MEMORY_TIERING``); 3 = NORMAL | TIERING.
  With bit 1 clear the scanner skips top-tier pages (``change_pte_range``,
  ``change_huge_pmd``); with bit 2 set it writes the scan time (ms) into every slow-tier
  page it marks (``folio_xchg_access_time``: the ``last_cpupid`` field holds a time);
* the hinting fault on a slow-tier page reads its ``last_cpupid`` as unset, and
  ``should_numa_migrate_memory`` takes the tiering branch (:meth:`Promotion.should_promote`):
  ``pgdat_free_space_enough`` (the target has ``promo + max(1 GiB, present/16)`` free: promote
  at once), ``numa_promotion_adjust_threshold`` (once per ``scan_period_max_ms``: the hot
  threshold moves by ``2 x hot_threshold_ms / 16`` toward the rate limit's candidate budget),
  ``numa_hint_fault_latency`` (fault time - time stored, the stored time becomes now; at or
  above the threshold: not promoted), ``numa_promotion_rate_limit`` (``pgpromote_candidate``
  += pages on the target node; beyond ``numa_balancing_promote_rate_limit_MBps`` in a window
  of a little over one second: not promoted);
* ``task_numa_fault`` ignores faults whose memory ends on a slow-tier node (bit 2 set, or
  an unset ``last_cpupid``); a promoted page counts (its memory is then top tier);
* ``migrate_misplaced_folio``: ``pgpromote_success`` += pages on the target node when a page
  moves from a slow tier to the top tier (6.12: only with bit 2; 6.1: in any mode), and the
  moved page's ``last_cpupid`` is reset when it changes tier in tiering mode
  (``folio_migrate_flags``); a target below ``high + pages`` wakes its kswapd (bit 2 only,
  ``migrate_misplaced_folio_prepare``), and kswapd then reclaims -- and demotes, if
  ``demotion_enabled`` -- up to the PROMO watermark (``pgdat_balanced``,
  :func:`promo_wmark`; ``high + (high - low)``, in both 6.1 and 6.12).

Knobs, with Linux's names and defaults: ``/proc/sys/kernel/numa_balancing_promote_rate_limit_MBps``
(65536; an int >= 0), ``/sys/kernel/debug/sched/numa_balancing/hot_threshold_ms`` (1000; kept
with the other debugfs knobs in ``NumaBalancing.knobs``).  Which nodes are top tier comes from
:mod:`numasim.mm.memory_tiers`: on Linux 6.1 every boot node is in the DRAM tier, so mode 2
finds nothing to scan on a machine without dax/kmem memory (recorded: scenario 100 on 6.1).

Time is the balancing clock (``NumaBalancing.now``, ms, 4 ms ticks), so a latency is a whole
number of ticks, as jiffies make it on Linux (HZ=250).  Not modelled: the access-time field's
wrap (21 bits of ms, 35 minutes), ``PAGE_ACCESS_TIME_BUCKETS`` (only with fewer CPU bits than
Debian's NR_CPUS=8192), memory cgroups; the node's present pages are taken as its managed
pages in ``pgdat_free_space_enough`` (they differ by the memmap, about 1.6 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numasim.mm import state as S
from numasim.mm.constants import KGEN_6_1

NUMA_BALANCING_NORMAL = 1
NUMA_BALANCING_MEMORY_TIERING = 2
RATE_LIMIT_SYSCTL = "/proc/sys/kernel/numa_balancing_promote_rate_limit_MBps"
DEFAULT_RATE_LIMIT_MBPS = 65536
"""``sysctl_numa_balancing_promote_rate_limit`` (MB/s), both 6.1 and 6.12."""
NUMAB_THRESHOLD_NR_STEPS = 16
MSEC_PER_SEC = 1000
PAGE_SHIFT = 12
ZONE_MOVABLE = 3  # the lowmem_reserve index zone_watermark_ok(..., ZONE_MOVABLE) uses
COUNTERS = ("pgpromote_success", "pgpromote_candidate")
"""Node statistics of the promotion target (summed in ``/proc/vmstat``)."""


@dataclass
class PgdatPromo:
    """The ``pgdat->nbp_*`` fields of one node (``include/linux/mmzone.h``)."""

    nbp_rl_start: int | None = None  # None: long ago (jiffies start 5 minutes before 0)
    nbp_rl_nr_cand: int = 0
    nbp_threshold: int = 0  # ms; 0 = use hot_threshold_ms
    nbp_th_start: int = 0
    nbp_th_nr_cand: int = 0


class Promotion:
    """Promotion state of one simulated kernel's NUMA balancing (``nb``)."""

    def __init__(self, nb) -> None:
        self.nb = nb
        self.rate_limit_mbps = DEFAULT_RATE_LIMIT_MBPS
        self.pgdat: dict[int, PgdatPromo] = {}
        self.cnt: dict[str, dict[int, int]] = {name: {} for name in COUNTERS}

    # ------------------------------------------------------------------ knobs
    def set_rate_limit(self, value: int) -> None:
        """``numa_balancing_promote_rate_limit_MBps`` (proc_dointvec_minmax, min 0); a bad
        value raises ValueError (``NumaBalancing.set_knob`` makes it EINVAL)."""
        if not 0 <= value < 1 << 31:
            raise ValueError("numa_balancing_promote_rate_limit_MBps is an int from 0 to "
                             f"2147483647 (MB/s), got {value}")
        self.rate_limit_mbps = value

    def reset_memory_tiering(self) -> None:
        """``reset_memory_tiering``: bit 2 was just set; every node starts a new
        threshold window with the default threshold."""
        now = self.now_ms()
        for nid in self.nb.k.machine.memory_nodes:
            st = self._pg(nid)
            st.nbp_threshold = 0
            st.nbp_th_nr_cand = self.cnt["pgpromote_candidate"].get(nid, 0)
            st.nbp_th_start = now

    # ------------------------------------------------------------------ tiers
    def now_ms(self) -> int:
        return int(self.nb.now)

    def _pg(self, nid: int) -> PgdatPromo:
        st = self.pgdat.get(nid)
        if st is None:
            st = self.pgdat[nid] = PgdatPromo()
        return st

    def node_is_toptier(self, nid: int) -> bool:
        return self.nb.k.memory_tiers.node_is_toptier(nid)

    @property
    def has_lower_tier(self) -> bool:
        """Some memory node is not top tier (only then do the tiering rules matter)."""
        k = self.nb.k
        return any(not self.node_is_toptier(n) for n in k.machine.memory_nodes)

    def folio_use_access_time(self, nid: int) -> bool:
        """``folio_use_access_time``: bit 2 set and the page on a slow-tier node."""
        return bool(self.nb.mode & NUMA_BALANCING_MEMORY_TIERING) and \
            not self.node_is_toptier(nid)

    # ------------------------------------------------------------------ scanning
    def prot_numa_keep(self, rows: np.ndarray) -> np.ndarray:
        """The ``change_pte_range`` / ``change_huge_pmd`` test of tiering: with bit 1 clear
        top-tier pages are not marked.  Returns a mask of the rows that may be marked."""
        ks = self.nb.k.ks
        if self.nb.mode & NUMA_BALANCING_NORMAL or not rows.size:
            return np.ones(rows.shape[0], dtype=bool)
        return ~self.toptier_of(ks.pages[rows, S.PG_NODE])

    def toptier_of(self, nodes: np.ndarray) -> np.ndarray:
        """``node_is_toptier`` of each node in ``nodes`` (an array)."""
        top = np.array([self.node_is_toptier(n) for n in range(self.nb.k.ks.nr_node_ids)],
                       dtype=bool)
        return top[nodes]

    def stamp(self, a: int, pg: np.ndarray, marked: np.ndarray) -> None:
        """``folio_xchg_access_time`` for the pages just marked (offsets ``marked`` from
        page-table slot ``a``; ``pg`` the rows there): slow-tier pages get the scan time."""
        nb = self.nb
        if not nb.mode & NUMA_BALANCING_MEMORY_TIERING or not marked.size:
            return
        ks = nb.k.ks
        now = self.now_ms()
        rows = pg[marked]
        slow = ~self.toptier_of(ks.pages[rows, S.PG_NODE])
        marked, rows = marked[slow], rows[slow]
        plain = (ks.pages[rows, S.PG_ORDER] == 0) & (ks.pages[rows, S.PG_OBJ] < 0)
        nb.lc[rows[plain]] = now  # private 4 KiB pages: the key is the slot
        nb.lc_key[rows[plain]] = a + marked[plain]
        for i, row in zip(marked[~plain], rows[~plain], strict=True):
            slot = a + int(i)
            if ks.pages[row, S.PG_ORDER]:  # a THP's time is kept under its first slot
                slot = int(nb._thp_slots(slot, int(row))[0])
            nb.lc[row] = now
            nb.lc_key[row] = nb._key(int(row), slot)

    # ------------------------------------------------------------------ the decision
    def should_promote(self, pg: int, slot: int, dst_nid: int) -> bool:
        """The tiering branch of ``should_numa_migrate_memory`` for a slow-tier page."""
        nb = self.nb
        nr = 1 << int(nb.k.ks.pages[pg, S.PG_ORDER])
        st = self._pg(dst_nid)
        if self.pgdat_free_space_enough(dst_nid):
            st.nbp_threshold = 0  # the workload changed: reset the hot threshold
            return True
        def_th = nb.knobs["hot_threshold_ms"]
        rate_limit = self.rate_limit_mbps << (20 - PAGE_SHIFT)
        self.numa_promotion_adjust_threshold(dst_nid, rate_limit, def_th)
        th = st.nbp_threshold or def_th
        if self.numa_hint_fault_latency(pg, slot) >= th:
            return False
        return not self.numa_promotion_rate_limit(dst_nid, rate_limit, nr)

    def numa_hint_fault_latency(self, pg: int, slot: int) -> int:
        """Time since the scan (or the last fault) stamped the page; the stamp becomes
        now.  A page with no stamp reads as stamped at time 0 (its field was "unset")."""
        nb = self.nb
        now = self.now_ms()
        last = nb._xchg_last_cpupid(pg, slot, now)
        return now - max(last, 0)

    def numa_promotion_adjust_threshold(self, nid: int, rate_limit: int, ref_th: int) -> None:
        st = self._pg(nid)
        now = self.now_ms()
        th_period = self.nb.knobs["scan_period_max_ms"]
        if now - st.nbp_th_start <= th_period:
            return
        st.nbp_th_start = now
        ref_cand = rate_limit * th_period // MSEC_PER_SEC
        nr_cand = self.cnt["pgpromote_candidate"].get(nid, 0)
        diff_cand = nr_cand - st.nbp_th_nr_cand
        unit_th = ref_th * 2 // NUMAB_THRESHOLD_NR_STEPS
        th = st.nbp_threshold or ref_th
        if diff_cand > ref_cand * 11 // 10:
            th = max(th - unit_th, unit_th)
        elif diff_cand < ref_cand * 9 // 10:
            th = min(th + unit_th, ref_th * 2)
        st.nbp_th_nr_cand = nr_cand
        st.nbp_threshold = th

    def numa_promotion_rate_limit(self, nid: int, rate_limit: int, nr: int) -> bool:
        """Count the candidate; True when the node's window is over its budget."""
        st = self._pg(nid)
        now = self.now_ms()
        c = self.cnt["pgpromote_candidate"]
        c[nid] = c.get(nid, 0) + nr
        nr_cand = c[nid]
        if st.nbp_rl_start is None or now - st.nbp_rl_start > MSEC_PER_SEC:
            st.nbp_rl_start = now
            st.nbp_rl_nr_cand = nr_cand
        return nr_cand - st.nbp_rl_nr_cand >= rate_limit

    def pgdat_free_space_enough(self, nid: int) -> bool:
        """Some populated zone of the node passes ``promo + max(1 GiB, present / 16)``."""
        ks = self.nb.k.ks
        zs = np.flatnonzero((ks.zones[:, S.Z_NODE] == nid) & (ks.zones[:, S.Z_MANAGED] > 0))
        present = int(ks.zones[zs, S.Z_MANAGED].sum())
        enough = max((1 << 30) >> PAGE_SHIFT, present >> 4)
        movable = ZONE_MOVABLE
        for z in zs:
            mark = promo_wmark(ks, int(z)) + enough + int(ks.zones[z, S.Z_RES + movable])
            if int(ks.zones[z, S.Z_FREE]) > mark:
                return True
        return False

    # ------------------------------------------------------------------ migration
    def wake_target_kswapd(self, nid: int) -> None:
        """``migrate_misplaced_folio_prepare`` in tiering mode: the target is not balanced;
        wake its kswapd, which reclaims to PROMO (demoting its coldest pages if
        ``demotion_enabled``).  kswapd runs on another CPU while the task goes on; numasim
        lets it finish at once, as it does after a command (``Kernel.touch``)."""
        if not self.nb.mode & NUMA_BALANCING_MEMORY_TIERING or nid >= 63:
            return
        from numasim.mm.vmscan import reclaim

        self.nb.k.ks.sysvars[S.SV_KSWAPD_WAKE] |= 1 << nid
        reclaim(self.nb.k).kswapd_run()

    def migrated(self, old_nid: int, new: int, nr: int) -> None:
        """After ``migrate_misplaced_folio`` moved a folio from ``old_nid`` to row ``new``:
        ``pgpromote_success`` and the cpupid reset of ``folio_migrate_flags``."""
        nb = self.nb
        k = nb.k
        new_nid = int(k.ks.pages[new, S.PG_NODE])
        tiering = bool(nb.mode & NUMA_BALANCING_MEMORY_TIERING)
        src_top, dst_top = self.node_is_toptier(old_nid), self.node_is_toptier(new_nid)
        if not src_top and dst_top and (tiering or k.kgen == KGEN_6_1):
            c = self.cnt["pgpromote_success"]
            c[new_nid] = c.get(new_nid, 0) + nr
        if tiering and src_top != dst_top:
            nb.lc[new] = -1
            nb.lc_key[new] = -1

    def skip_task_fault(self, mem_node: int, last_cpupid: int) -> bool:
        """``task_numa_fault``'s early return: the memory is on a slow tier and the mode
        is tiering or the ``last_cpupid`` is unset."""
        if self.node_is_toptier(mem_node):
            return False
        return bool(self.nb.mode & NUMA_BALANCING_MEMORY_TIERING) or last_cpupid < 0

    # ------------------------------------------------------------------ views
    def vmstat(self, key: str) -> int | None:
        if key not in self.cnt:
            return None
        return sum(self.cnt[key].values())

    def node_vmstat(self, nid: int) -> dict[str, int]:
        """The node's lines in ``/sys/devices/system/node/nodeN/vmstat``."""
        return {key: self.cnt[key].get(nid, 0) for key in COUNTERS}


def promo_wmark(ks, z: int) -> int:
    """``promo_wmark_pages``: high + the watermark step (``high - low``), WMARK_PROMO."""
    return int(ks.zones[z, S.Z_HIGH]) + int(ks.zones[z, S.Z_HIGH]) - int(ks.zones[z, S.Z_LOW])


def promotion(nb) -> Promotion:
    """The promotion state of a :class:`~numasim.mm.numa_balancing.NumaBalancing`, made on
    first use."""
    p = getattr(nb, "promo", None)
    if p is None:
        p = Promotion(nb)
        nb.promo = p
    return p
