"""NUMA balancing ("AutoNUMA", ``kernel.numa_balancing=1``) in the simulated kernel.

Linux moves pages toward the CPUs that use them: a per-task scanner (``task_numa_work``)
makes ranges of the task's memory PROT_NONE (``change_prot_numa``), the next access to such a
page is a hinting fault (``do_numa_page``), the policy says whether the page is misplaced
(``mpol_misplaced``), a two-pass filter on the page's ``last_cpupid`` decides
(``should_numa_migrate_memory``), and the page moves (``migrate_misplaced_folio``).  The
fault statistics (``task_numa_fault``) pick the preferred node and adapt the scan period
(``task_numa_placement``, ``update_task_scan_period``).  Every rule here is from
``linux-numa-balancing-facts.md`` sections 1.1-1.9 (6.12, with the 6.1 differences); the
functions carry the kernel's names.

What is modelled and what is not:

* time is a simulated clock in milliseconds that only moves when a task runs (``spin``) or
  sleeps; a task's CPU time is the time it ran; scheduler ticks are HZ=250 (4 ms);
* the scanner's pacing (``task_tick_numa``: ``node_stamp``, ``numa_scan_period``,
  ``mm->numa_next_scan``), its budget (``scan_size_mb`` in pages, chunks aligned up to 2 MiB,
  ``virtpages`` = 8 x pages), the VMAs it skips (no MOF in the policy, shmem without a shared
  policy, read-only file mappings, inaccessible VMAs), the PTEs it skips (zero page, pages
  mapped twice in a COW mapping, dirty page cache, a single-threaded task's pages already on
  the scanning CPU's node; 6.1 also pages still held by a per-CPU LRU batch), and 6.12's
  per-VMA filter (``numab_state``: new-VMA delay, PID activity, once per sequence);
* hinting faults, ``mpol_misplaced`` for every mode, the ``last_cpupid`` filter, private vs
  shared faults, migration with its refusals (target node not above its high watermark,
  page not isolable from the LRU because it still sits in a per-CPU ``lru_add`` batch of
  15 (6.1) / 31 (6.12) pages, dirty page cache) and its allocation failure;
* the scan-period adaptation and the preferred node from decayed fault counts;
* PMD-mapped THPs (:mod:`numasim.mm.huge_memory`): ``change_huge_pmd`` marks one as a unit,
  ``do_huge_pmd_numa_page`` takes one fault and migrates it whole (in Python: the jitted
  loop handles 4 KiB pages only);
* memory tiering (``numa_balancing`` 2 and 3: promotion of hot slow-tier pages) is in
  :mod:`numasim.mm.numa_promote`; the hooks here that call it are marked ``# tiering``;
* task placement (``task_numa_migrate``: an unpinned thread of a timed run moves toward
  its preferred node) is in :mod:`numasim.mm.task_placement`; scripts' tasks are pinned;
* NOT modelled: numa groups (every task is its own group-less task; shared faults only
  count as shared).  The time hinting faults and migrations cost is the timing engines'
  (:mod:`numasim.machine.numab_clock` drives this module from their clocks); in scripts
  they cost no time.

The hinting-fault loop is jitted (:mod:`numasim.mm.numab_core`, the same rules for a run of
faults in one anonymous VMA); :meth:`NumaBalancing.do_numa_page` is its plain-Python reference
and handles the rest (shared and file pages, the fault that runs placement).

6.12's retry when every VMA was skipped for PID activity restarts from
``mm->numa_scan_offset`` and scans one VMA (our reading of ``task_numa_work``, marked
derived).  Per-CPU LRU batches are fed by the pages a script's accesses allocate and drained
by ``lru_add_drain_all`` (mbind with a move flag, migrate_pages, move_pages) and by munmap on
the task's CPU; the exit path's drain and the probe's other pages are not modelled.

The state lives beside :class:`~numasim.mm.state.KernelState` (``Kernel.numab``), in numpy
arrays indexed like its own: ``prot`` per page-table slot (the page row made PROT_NONE there,
-1 for none), ``last_cpupid`` per page row (with the slot it belongs to, so a reused row
reads as unset, as a new folio does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numasim.mm import state as S
from numasim.mm.constants import (
    GFP_THISNODE,
    KGEN_2_6_7,
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
from numasim.mm.errors import VfsError
from numasim.mm.numa_promote import RATE_LIMIT_SYSCTL, ZONE_MOVABLE, promotion

NUMA_BALANCING_NORMAL = 1
NUMA_BALANCING_MEMORY_TIERING = 2
SYSCTL_PATH = "/proc/sys/kernel/numa_balancing"
DEBUGFS_DIR = "/sys/kernel/debug/sched/numa_balancing"
KNOB_DEFAULTS = {"scan_delay_ms": 1000, "scan_period_min_ms": 1000,
                 "scan_period_max_ms": 60000, "scan_size_mb": 256, "hot_threshold_ms": 1000}
"""Linux's defaults (kernel/sched/fair.c), the same in 6.1 and 6.12."""
TICK_MS = 4  # HZ=250 (Debian)
NUMA_PERIOD_SLOTS = 10
NUMA_PERIOD_THRESHOLD = 7
MAX_SCAN_WINDOW = 2560  # MB/s
VMA_PID_RESET_PERIOD_FACTOR = 4  # x scan_delay
HPAGE_PAGES = 512
TNF_MIGRATED = 0x01
TNF_NO_GROUP = 0x02
TNF_SHARED = 0x04
TNF_FAULT_LOCAL = 0x08
TNF_MIGRATE_FAIL = 0x10
LRU_BATCH = {KGEN_6_1: 15}  # PAGEVEC_SIZE; 31 (folio_batch) in 6.12
LRU_BATCH_DEFAULT = 31
PLACEMENT_KNOB = "task_placement"
"""numasim's on/off switch for task placement (:mod:`numasim.mm.task_placement`; Linux has
none: it places tasks whenever balancing is on).  Not a debugfs file."""
COUNTERS = ("numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults",
            "numa_hint_faults_local", "numa_pages_migrated")


class KnobError(ValueError):
    """A knob write Linux refuses (the errno is in ``errno``)."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


def hash_32(val: int, bits: int) -> int:
    """``hash_32`` (GOLDEN_RATIO_32): the bit a thread sets in a VMA's ``pids_active``."""
    return ((val * 0x61C88647) & 0xFFFFFFFF) >> (32 - bits)


@dataclass
class MmNuma:
    """The mm's scanner state (``mm->numa_next_scan``, ``numa_scan_seq``, offset)."""

    numa_next_scan: float
    numa_scan_seq: int = 0
    numa_scan_offset: int = 0  # vpn


@dataclass
class TaskNuma:
    """A task's balancing state (the ``numa_*`` fields of task_struct)."""

    numa_scan_period: float
    mm: int = -1
    node_stamp: float = 0.0
    runtime: float = 0.0  # se.sum_exec_runtime, ms
    numa_scan_seq: int = 0
    numa_scan_period_max: float = 0.0
    numa_preferred_nid: int = -1
    numa_migrate_retry: float = 0.0
    total_numa_faults: int = 0
    has_faults: bool = False  # p->numa_faults allocated (the first hinting fault)
    # numa_faults regions MEM, MEMBUF, CPUBUF: [node, shared=0/private=1]; set by _task
    mem: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    membuf: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    cpubuf: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    locality: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.int64))
    tstat: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    last_node: int = -1


@dataclass
class VmaNuma:
    """6.12's ``vma->numab_state``."""

    key: tuple
    start_scan_seq: int
    next_scan: float
    pids_active_reset: float
    prev_scan_seq: int
    pids_active: list = field(default_factory=lambda: [0, 0])


class NumaBalancing:
    """NUMA balancing of one simulated :class:`~numasim.mm.kernel.Kernel`."""

    def __init__(self, k, *, numa_balancing: int = 0, **knobs: int) -> None:
        from numasim.mm.task_placement import TaskPlacement

        self.k = k
        self.placement = TaskPlacement(self)  # task_numa_migrate (numasim.mm.task_placement)
        self.mode = 0
        self.now = 0.0  # ms since boot
        self.knobs = dict(KNOB_DEFAULTS)
        for name, value in knobs.items():
            self.set_knob(name, value)
        self.set_mode(numa_balancing)
        self.cnt = np.zeros(len(COUNTERS), dtype=np.int64)  # in COUNTERS order
        self.use_numba = True  # the jitted fault loop (numab_core); False: Python only
        self.mms: dict[int, MmNuma] = {}
        self.tasks: dict[int, TaskNuma] = {}
        self.vmas: dict[int, VmaNuma] = {}
        self.prot = np.full(0, -1, dtype=np.int64)
        self.lc = np.full(0, -1, dtype=np.int64)
        self.lc_key = np.full(0, -1, dtype=np.int64)
        self.lru: dict[int, list[tuple[int, int]]] = {}
        self.lru_size = LRU_BATCH.get(k.kgen, LRU_BATCH_DEFAULT)

    # ------------------------------------------------------------ knobs
    def set_mode(self, value: int) -> None:
        """``sysctl_numa_balancing``: a bitmask, 0..4 (1 NORMAL, 2 MEMORY_TIERING; any
        non-zero value turns the scanner on).  Newly setting bit 2 resets every node's
        promotion state (``reset_memory_tiering``)."""
        if self.k.kgen == KGEN_2_6_7 and value:
            raise KnobError(2, "kernel.numa_balancing does not exist in Linux 2.6.7")
        if not 0 <= value <= 4:
            raise KnobError(22, f"numa_balancing accepts 0..4 (1 normal, 2 memory tiering, "
                                f"3 both), got {value}")
        if value & NUMA_BALANCING_MEMORY_TIERING and \
                not self.mode & NUMA_BALANCING_MEMORY_TIERING:  # tiering
            promotion(self).reset_memory_tiering()
        self.mode = value

    def set_knob(self, name: str, value: int) -> None:
        if name == PLACEMENT_KNOB:  # numasim's switch for task placement (not a Linux file)
            if value not in (0, 1):
                raise KnobError(22, f"{PLACEMENT_KNOB} is 0 (off) or 1 (on), got {value}")
            self.placement.enabled = bool(value)
            return
        if name == "promote_rate_limit_MBps":  # tiering: a sysctl, set at boot from YAML
            try:
                promotion(self).set_rate_limit(value)
            except ValueError as e:
                raise KnobError(22, str(e)) from None
            return
        if name not in KNOB_DEFAULTS:
            raise KnobError(2, f"unknown NUMA balancing knob {name!r}; valid: "
                               + ", ".join(KNOB_DEFAULTS))
        if not 0 <= value < 1 << 32:
            raise KnobError(22, f"{name} is an unsigned 32-bit number, got {value}")
        if value == 0 and name in ("scan_size_mb", "scan_period_min_ms", "scan_period_max_ms"):
            # Linux accepts 0 here and then divides by it (task_scan_min/max); refused
            raise KnobError(22, f"{name} must be at least 1 (0 would divide by zero in "
                                "task_scan_min/task_scan_max)")
        self.knobs[name] = value

    @property
    def counters(self) -> dict[str, int]:
        """The /proc/vmstat counters of NUMA balancing, by name."""
        return {name: int(v) for name, v in zip(COUNTERS, self.cnt, strict=True)}

    def count(self, name: str, n: int = 1) -> None:
        self.cnt[COUNTERS.index(name)] += n

    @property
    def enabled(self) -> bool:
        """The ``sched_numa_balancing`` static key: any non-zero mode."""
        return bool(self.mode)

    # ------------------------------------------------------------ bookkeeping
    def _fit(self) -> None:
        ks = self.k.ks
        if self.prot.shape[0] < ks.pt_page.shape[0]:
            new = np.full(ks.pt_page.shape[0], -1, dtype=np.int64)
            new[: self.prot.shape[0]] = self.prot
            self.prot = new
        n = ks.pages.shape[0]
        if self.lc.shape[0] < n:
            for name in ("lc", "lc_key"):
                old = getattr(self, name)
                new = np.full(n, -1, dtype=np.int64)
                new[: old.shape[0]] = old
                setattr(self, name, new)

    def _task(self, t: int) -> TaskNuma:
        """``init_numa_balancing``, done when numasim first sees the task (the clock does
        not move between a fork and that moment)."""
        tn = self.tasks.get(t)
        mm = self.k.task_mm(t)
        if mm not in self.mms:
            self.mms[mm] = MmNuma(self.now + self.knobs["scan_delay_ms"])
        if tn is None or tn.mm != mm:  # a new task (rows are reused), or an exec
            tn = TaskNuma(float(self.knobs["scan_delay_ms"]), mm=mm)
            nn = self.k.ks.nr_node_ids
            tn.mem, tn.membuf, tn.cpubuf = (np.zeros((nn, 2), dtype=np.int64)
                                            for _ in range(3))
            tn.numa_scan_seq = self.mms[mm].numa_scan_seq
            tn.last_node = self.k.task_node(t)
            self.tasks[t] = tn
        return tn

    def register_all(self) -> None:
        ks = self.k.ks
        alive = {int(t) for t in np.flatnonzero(ks.tasks[:, S.T_ALIVE] == 1)}
        for t in list(self.tasks):
            if t not in alive:
                del self.tasks[t]
        for t in alive:
            self._task(t)

    def sleep(self, ms: float) -> None:
        """Wall time passes; nothing runs."""
        self.register_all()
        self.now += ms
        self._kthreads()

    def _kthreads(self) -> None:
        """The kernel threads on this clock: khugepaged (numasim.mm.khugepaged) runs the
        passes due by now."""
        kh = getattr(self.k, "khugepaged", None)
        if kh is not None and kh.next_run is not None:
            kh.advance(self.now)

    # ------------------------------------------------------------ scan windows
    def _rss(self, t: int) -> int:
        return self.k.rss(t)

    def task_nr_scan_windows(self, t: int) -> int:
        nr_scan_pages = self.knobs["scan_size_mb"] << 8
        rss = self._rss(t) or nr_scan_pages
        rss = -(-rss // nr_scan_pages) * nr_scan_pages
        return rss // nr_scan_pages

    def task_scan_min(self, t: int) -> int:
        scan_size = self.knobs["scan_size_mb"]
        windows = MAX_SCAN_WINDOW // scan_size if scan_size < MAX_SCAN_WINDOW else 1
        floor = 1000 // windows
        return max(floor, self.knobs["scan_period_min_ms"] // self.task_nr_scan_windows(t))

    def task_scan_start(self, t: int) -> int:
        return self.task_scan_min(t)  # no numa group to scale it

    def task_scan_max(self, t: int) -> int:
        smin = self.task_scan_min(t)
        return max(smin, self.knobs["scan_period_max_ms"] // self.task_nr_scan_windows(t))

    # ------------------------------------------------------------ the clock
    def run(self, t: int, ms: float, access=None) -> None:
        """Task t runs for ``ms`` ms of CPU time: the clock moves in scheduler ticks,
        ``task_tick_numa`` runs at each, the queued ``task_numa_work`` runs on the way back
        to user mode, then ``access()`` (the task's memory accesses in that tick) runs."""
        self.register_all()
        tn = self._task(t)
        node = self.k.task_node(t)
        if node != tn.last_node:
            self.update_scan_period(t, tn.last_node, node)
            tn.last_node = node
        left = float(ms)
        while left > 0:
            step = min(TICK_MS, left)
            left -= step
            self.now += step
            tn.runtime += step
            if self.enabled and self.task_tick_numa(t):
                self.task_numa_work(t)
            self._kthreads()
            if access is not None:
                access()

    def spin(self, t: int, vpn: int, n: int, ms: float, write: bool = False) -> None:
        """Task t keeps accessing [vpn, vpn+n) for ``ms`` ms (the scripts' ``spin``
        without the per-CPU LRU batches): pages not present are faulted in first, then
        every tick touches the whole range, so a PROT_NONE page faults in the tick it was
        marked."""
        self.hinting_faults(t, vpn, n)
        self.k.touch(t, vpn, n, write=write)
        self.run(t, ms, lambda: self.hinting_faults(t, vpn, n))

    def task_tick_numa(self, t: int) -> bool:
        """True when the scan work gets queued."""
        tn = self._task(t)
        period = tn.numa_scan_period
        if tn.runtime > tn.node_stamp + period:
            if not tn.node_stamp:
                tn.numa_scan_period = self.task_scan_start(t)
            tn.node_stamp += period
            return self.now >= self.mms[self.k.task_mm(t)].numa_next_scan
        return False

    def update_scan_period(self, t: int, src_nid: int, dst_nid: int) -> None:
        """A task moved to a CPU of another node (``update_scan_period``)."""
        tn = self._task(t)
        if not self.enabled or not tn.has_faults or src_nid == dst_nid:
            return
        if tn.numa_scan_seq and (dst_nid == tn.numa_preferred_nid or (
                tn.numa_preferred_nid != -1 and src_nid != tn.numa_preferred_nid)):
            return
        tn.numa_scan_period = self.task_scan_start(t)

    # ------------------------------------------------------------ task_numa_work
    def vma_skipped(self, t: int, v: int) -> bool:
        """The VMA tests of ``task_numa_work``: not migratable, no MOF in the policy
        (``vma_policy_mof``), read-only file mapping, inaccessible."""
        ks = self.k.ks
        row = ks.vmas[v]
        prot = int(row[S.V_PROT])
        if prot & (S.PROT_READ | S.PROT_WRITE) == 0:
            return True
        kind = int(row[S.V_KIND])
        if kind != S.KIND_ANON and prot & (S.PROT_READ | S.PROT_WRITE) == S.PROT_READ:
            return True
        return not self.vma_policy_mof(t, v)

    def vma_policy_mof(self, t: int, v: int) -> bool:
        ks = self.k.ks
        row = ks.vmas[v]
        if int(row[S.V_KIND]) == S.KIND_SHMEM:  # vm_ops->get_policy at vm_start
            p = self.k.shared_policy_at(int(row[S.V_OBJ]), int(row[S.V_PGOFF]))
            return p >= 0 and bool(ks.policies[p, S.P_FLAGS] & MPOL_F_MOF)
        p = int(row[S.V_POLICY])
        if p < 0:
            p = int(ks.tasks[t, S.T_POLICY])
        if p < 0:
            return True  # preferred_node_policy[]: PREFERRED with MOF|MORON
        return bool(ks.policies[p, S.P_FLAGS] & MPOL_F_MOF)

    def _vma_state(self, v: int, seq: int) -> VmaNuma:
        ks = self.k.ks
        key = (int(ks.vmas[v, S.V_MM]), int(ks.vmas[v, S.V_START]))
        st = self.vmas.get(v)
        if st is None or st.key != key:
            nxt = self.now + self.knobs["scan_delay_ms"]
            st = VmaNuma(key, seq, nxt,
                         nxt + VMA_PID_RESET_PERIOD_FACTOR * self.knobs["scan_delay_ms"],
                         seq - 1)
            self.vmas[v] = st
        return st

    def _vma_is_accessed(self, t: int, mmn: MmNuma, v: int, st: VmaNuma) -> bool:
        ks = self.k.ks
        if mmn.numa_scan_seq - st.start_scan_seq < 2:
            return True
        bit = 1 << hash_32(t, 6)
        if (st.pids_active[0] | st.pids_active[1]) & bit:
            return True
        if mmn.numa_scan_offset > int(ks.vmas[v, S.V_START]):
            return True
        threads = self.k.mms[self.k.task_mm(t)].users
        return mmn.numa_scan_seq > st.prev_scan_seq + threads

    def task_numa_work(self, t: int) -> None:
        k = self.k
        mm = k.task_mm(t)
        mmn = self.mms[mm]
        tn = self._task(t)
        if self.now < mmn.numa_next_scan:
            return
        mmn.numa_next_scan = self.now + tn.numa_scan_period
        tn.node_stamp += 2 * TICK_MS
        pages = self.knobs["scan_size_mb"] << 8
        virtpages = pages * 8
        if not pages:
            return
        vmas = k.mm_vmas(mm)
        forced = False
        while True:
            start = mmn.numa_scan_offset
            todo = [v for v in vmas if int(k.ks.vmas[v, S.V_END]) > start]
            if not todo:
                self.reset_ptenuma_scan(mmn)
                start = 0
                todo = vmas
            start, pages, virtpages, stopped, skipped = self._walk(
                t, mmn, todo, start, pages, virtpages, forced)
            if stopped or forced or not skipped:
                break
            forced = True  # 6.12: every VMA was skipped for PID activity: force one
        if stopped:
            mmn.numa_scan_offset = start
        else:
            self.reset_ptenuma_scan(mmn)

    def _walk(self, t: int, mmn: MmNuma, todo: list[int], start: int, pages: int,
              virtpages: int, forced: bool) -> tuple[int, int, int, bool, bool]:
        """The VMA loop of ``task_numa_work``: (start, pages, virtpages, stopped inside
        a VMA, VMAs skipped by the 6.12 PID-activity test)."""
        k = self.k
        is_612 = k.kgen != KGEN_6_1
        skipped = False
        for v in todo:
            row = k.ks.vmas[v]
            vs, ve = int(row[S.V_START]), int(row[S.V_END])
            if self.vma_skipped(t, v):
                continue
            if is_612:
                st = self._vma_state(v, mmn.numa_scan_seq)
                seq = mmn.numa_scan_seq
                if seq and self.now < st.next_scan:
                    continue
                if seq and self.now > st.pids_active_reset:
                    st.pids_active_reset += VMA_PID_RESET_PERIOD_FACTOR * \
                        self.knobs["scan_delay_ms"]
                    st.pids_active = [st.pids_active[1], 0]
                if st.prev_scan_seq == seq:
                    mmn.numa_scan_offset = ve
                    continue
                if not forced and not self._vma_is_accessed(t, mmn, v, st):
                    skipped = True
                    continue
            while True:
                start = max(start, vs)
                end = min(-(-(start + pages) // HPAGE_PAGES) * HPAGE_PAGES, ve)
                if self.change_prot_numa(t, v, start, end):
                    pages -= end - start
                virtpages -= end - start
                start = end
                if pages <= 0 or virtpages <= 0:
                    return start, pages, virtpages, True, skipped
                if end == ve:
                    break
            if is_612:
                st.prev_scan_seq = mmn.numa_scan_seq
                if forced:
                    return start, pages, virtpages, True, skipped
        return start, pages, virtpages, False, skipped

    @staticmethod
    def reset_ptenuma_scan(mmn: MmNuma) -> None:
        mmn.numa_scan_seq += 1
        mmn.numa_scan_offset = 0

    def change_prot_numa(self, t: int, v: int, start: int, end: int) -> int:
        """Make the present PTEs of [start, end) PROT_NONE; returns how many changed
        (``numa_pte_updates``).  The PTE tests of ``change_pte_range``."""
        k = self.k
        ks = k.ks
        self._fit()
        row = ks.vmas[v]
        r = int(row[S.V_REGION])
        base = int(ks.regions[r, S.R_PT]) - int(ks.regions[r, S.R_START])
        a, b = base + start, base + end
        pg = ks.pt_page[a:b]
        cand = (pg >= 0) & (self.prot[a:b] != pg)
        if not cand.any():
            return 0
        idx = np.flatnonzero(cand)
        rows = pg[idx]
        shared_vma = bool(row[S.V_SHARED])
        keep = np.ones(idx.shape[0], dtype=bool)
        if not shared_vma:  # a COW mapping: pages mapped more than once are skipped
            keep &= ks.pages[rows, S.PG_MAPCOUNT] <= 1
        keep &= ks.pages[rows, S.PG_KIND] != S.PGK_FILE  # page cache of ramfs: dirty
        promo = promotion(self)  # tiering: top tier skipped with bit 1 clear
        keep &= promo.prot_numa_keep(rows)
        huge = ks.pages[rows, S.PG_ORDER] != 0
        hidx = idx[keep & huge]
        if huge.any():  # PMD-mapped THPs: change_huge_pmd, marked as one unit
            nh = self._change_huge_pmds(hidx, a, pg)
            keep &= ~huge
        else:
            nh = 0
        if not shared_vma and k.mms[k.task_mm(t)].users == 1:
            keep &= ks.pages[rows, S.PG_NODE] != k.task_node(t)
        if k.kgen == KGEN_6_1:  # page_count != 1: an LRU batch still holds a reference
            held = self._batched_rows()
            if held:
                keep &= ~np.isin(rows, np.fromiter(held, dtype=np.int64))
        marked = idx[keep]
        self.prot[a + marked] = pg[marked]
        promo.stamp(a, pg, np.concatenate([marked, hidx]))  # tiering: the scan time
        n = int(marked.shape[0])
        self.count("numa_pte_updates", n)
        return n + nh

    def _change_huge_pmds(self, idx: np.ndarray, a: int, pg: np.ndarray) -> int:
        """``change_huge_pmd(MM_CP_PROT_NUMA)``: every THP with a subpage in ``idx`` (offsets
        from slot ``a``) becomes PROT_NONE whole, without the single-threaded same-node
        skip of the PTE path; +512 ``numa_pte_updates`` and +1 ``numa_huge_pte_updates``
        each.  Returns the pages marked."""
        ks = self.k.ks
        n = 0
        done: set[int] = set()
        for i in idx:
            row = int(pg[i])
            if row in done:
                continue
            done.add(row)
            slots = self._thp_slots(a + int(i), row)
            self.prot[slots] = row
            n += slots.shape[0]
            self.count("numa_huge_pte_updates")
        self.count("numa_pte_updates", n)
        del ks
        return n

    def _thp_slots(self, slot: int, row: int) -> np.ndarray:
        """The page-table slots of the 2 MiB block holding ``slot`` that map THP ``row``."""
        ks = self.k.ks
        v = int(ks.pt_vma[slot])
        r = int(ks.vmas[v, S.V_REGION])
        base, rs = int(ks.regions[r, S.R_PT]), int(ks.regions[r, S.R_START])
        vpn = slot - base + rs
        lo = base + (vpn & ~(HPAGE_PAGES - 1)) - rs
        blk = np.arange(max(lo, base), lo + HPAGE_PAGES, dtype=np.int64)
        return blk[ks.pt_page[blk] == row]

    # ------------------------------------------------------------ LRU batches
    def lru_add(self, cpu: int, rows: list[tuple[int, int]]) -> None:
        """New pages (row, slot) faulted on ``cpu`` join its ``lru_add`` batch; a full
        batch is moved to the LRU lists (``folio_batch_add`` / ``pagevec_add``)."""
        batch = self.lru.setdefault(cpu, [])
        ks = self.k.ks
        if rows and any(ks.pages[pg, S.PG_ORDER] for pg, _ in rows):
            # a large folio drains the batch at once (folio_batch_add_and_move): one entry
            # per folio, and nothing of a THP stays behind
            seen: set[int] = set()
            for pg, slot in rows:
                if pg in seen:
                    continue
                seen.add(pg)
                batch.append((pg, slot))
                if len(batch) >= self.lru_size or ks.pages[pg, S.PG_ORDER]:
                    batch = []
            self.lru[cpu] = batch
            return
        total = len(batch) + len(rows)
        left = total % self.lru_size  # what is still in the batch after the last drain
        self.lru[cpu] = (batch + list(rows))[total - left:] if left else []

    def lru_add_drain_all(self) -> None:
        """``lru_add_drain_all`` (mbind with MPOL_MF_MOVE, migrate_pages, move_pages)."""
        self.lru.clear()

    def lru_add_drain(self, cpu: int) -> None:
        """``lru_add_drain`` on one CPU (munmap)."""
        self.lru.pop(cpu, None)

    def _in_batch(self, row: int) -> bool:
        ks = self.k.ks
        for batch in self.lru.values():
            for pg, slot in batch:
                if pg == row and ks.pt_page[slot] == row:
                    return True
        return False

    def _batched_rows(self) -> set[int]:
        ks = self.k.ks
        return {pg for batch in self.lru.values() for pg, slot in batch
                if ks.pt_page[slot] == pg}

    # ------------------------------------------------------------ accesses
    def hinting_faults(self, t: int, vpn: int, n: int) -> int:
        """Accesses by t to [vpn, vpn+n): every PROT_NONE page there takes a hinting
        fault, in address order.  Returns the number of faults."""
        k = self.k
        ks = k.ks
        self._fit()
        mm = k.task_mm(t)
        done, faults = 0, 0
        while done < n:
            cur = vpn + done
            r = k.find_region(mm, cur)
            if r < 0:
                break
            rs, re_ = int(ks.regions[r, S.R_START]), int(ks.regions[r, S.R_END])
            m = min(n - done, re_ - cur)
            a = int(ks.regions[r, S.R_PT]) + cur - rs
            pg = ks.pt_page[a: a + m]
            hit = np.flatnonzero((self.prot[a: a + m] == pg) & (pg >= 0))
            if hit.size:
                huge = ks.pages[pg[hit], S.PG_ORDER] != 0
                if huge.any():
                    faults += self._faults_with_huge(t, a, cur, hit, huge, pg)
                else:
                    slots = (a + hit).astype(np.int64)
                    self._faults(t, slots, (cur + hit).astype(np.int64))
                    faults += int(hit.size)
            done += m
        return faults

    def _faults_with_huge(self, t: int, a: int, cur: int, hit: np.ndarray, huge: np.ndarray,
                          pg: np.ndarray) -> int:
        """Hinting faults in address order when some PROT_NONE slots map THPs: one fault
        per huge PMD (``do_huge_pmd_numa_page``), the 4 KiB ones as usual."""
        faults, i = 0, 0
        while i < hit.shape[0]:
            if not huge[i]:
                j = i
                while j < hit.shape[0] and not huge[j]:
                    j += 1
                self._faults(t, (a + hit[i:j]).astype(np.int64),
                             (cur + hit[i:j]).astype(np.int64))
                faults += j - i
                i = j
                continue
            row = int(pg[hit[i]])
            if self.prot[a + hit[i]] == row:  # not yet handled through another subpage
                self.do_huge_pmd_numa_page(t, a + int(hit[i]), cur + int(hit[i]), row)
                faults += 1
            i += 1
        return faults

    def do_huge_pmd_numa_page(self, t: int, slot: int, vpn: int, pg: int) -> None:
        """The hinting fault on a PMD-mapped THP: one fault, 512 pages in the task's
        statistics, migration of the whole folio or nothing (no split: MR_NUMA_MISPLACED
        does not split), ``thp_migration_success`` / ``_fail``."""
        from numasim.mm.huge_memory import HPAGE_PMD_NR, count_event

        k = self.k
        ks = k.ks
        slots = self._thp_slots(slot, pg)
        self.prot[slots] = -1
        key = int(slots[0])  # the folio's last_cpupid, whichever subpage faulted
        v = int(ks.pt_vma[slot])
        if not self.enabled:
            return
        self._task(t)
        cpu = int(ks.tasks[t, S.T_CPU])
        thisnid = k.task_node(t)
        nid = int(ks.pages[pg, S.PG_NODE])
        flags = 0 if int(ks.vmas[v, S.V_PROT]) & S.PROT_WRITE else TNF_NO_GROUP
        last, flags = self._count_hint_fault(t, v, pg, key, nid, thisnid, flags)
        target = self.mpol_misplaced(t, v, vpn, pg, key, nid, cpu, thisnid)
        if target < 0:
            self.task_numa_fault(t, last, nid, HPAGE_PMD_NR, flags)
            return
        if not self.migrate_misplaced_folio_prepare(pg, target, HPAGE_PMD_NR):
            self.task_numa_fault(t, last, nid, HPAGE_PMD_NR, flags | TNF_MIGRATE_FAIL)
            return
        new = self.migrate_misplaced_folio(t, pg, key, target)
        if new < 0:
            count_event(k, "thp_migration_fail")
            self.task_numa_fault(t, last, nid, HPAGE_PMD_NR, flags | TNF_MIGRATE_FAIL)
        else:
            count_event(k, "thp_migration_success")
            self.task_numa_fault(t, last, target, HPAGE_PMD_NR, flags | TNF_MIGRATED)

    def _faults(self, t: int, slots: np.ndarray, vpns: np.ndarray) -> None:
        """Hinting faults on PROT_NONE slots, VMA by VMA: the jitted loop where it can,
        the Python reference (:meth:`do_numa_page`) for the rest."""
        ks = self.k.ks
        vmas = ks.pt_vma[slots]
        ok = (ks.vmas[vmas, S.V_PROT] & (S.PROT_READ | S.PROT_WRITE)) != 0
        if not ok.all():  # an inaccessible VMA: no hinting fault (the access faults)
            slots, vpns, vmas = slots[ok], vpns[ok], vmas[ok]
        i = 0
        while i < slots.shape[0]:
            j = i
            while j < slots.shape[0] and vmas[j] == vmas[i]:
                j += 1
            while i < j:
                if not self._fast_ok(t, int(vmas[i])):
                    self.do_numa_page(t, int(slots[i]), int(vpns[i]))
                    i += 1
                    continue
                i += self._fast_run(t, int(vmas[i]), slots[i:j], vpns[i:j])
                if i < j:  # a page the jitted loop leaves to Python
                    self.do_numa_page(t, int(slots[i]), int(vpns[i]))
                    i += 1

    def _fast_ok(self, t: int, v: int) -> bool:
        """The jitted loop applies: enabled, an accessible anonymous VMA, no placement due
        before the next fault (that one goes through Python)."""
        ks = self.k.ks
        if not (self.use_numba and self.enabled):
            return False
        if self.mode != NUMA_BALANCING_NORMAL or promotion(self).has_lower_tier:
            return False  # tiering: the jitted loop has no tier rules
        if not int(ks.vmas[v, S.V_PROT]) & (S.PROT_READ | S.PROT_WRITE):
            return False
        if int(ks.vmas[v, S.V_KIND]) != S.KIND_ANON:
            return False
        tn = self._task(t)
        return tn.has_faults and self.now <= tn.numa_migrate_retry or (
            tn.has_faults and tn.numa_preferred_nid == -1
            and tn.numa_scan_seq == self.mms[self.k.task_mm(t)].numa_scan_seq)

    def _fast_run(self, t: int, v: int, slots: np.ndarray, vpns: np.ndarray) -> int:
        from numasim.mm import numab_core

        k = self.k
        ks = k.ks
        ks.ensure_pages(slots.shape[0] + 8)
        self._fit()
        tn = self._task(t)
        thisnid = k.task_node(t)
        p = int(ks.vmas[v, S.V_POLICY])
        if p < 0:
            p = int(ks.tasks[t, S.T_POLICY])
        pnodes = np.zeros(ks.nr_node_ids, dtype=np.uint8)
        if p < 0:
            pmode, pflags = MPOL_PREFERRED, MPOL_F_MOF | MPOL_F_MORON
            pnodes[thisnid] = 1
        else:
            pmode, pflags = int(ks.policies[p, S.P_MODE]), int(ks.policies[p, S.P_FLAGS])
            pnodes[:] = ks.pol_nodes[p]
        batch = np.array(sorted(self._batched_rows()), dtype=np.int64)
        pol = (int(pmode), int(pflags), int(ks.vmas[v, S.V_START]), int(ks.vmas[v, S.V_PGOFF]))
        task = (int(t), int(ks.tasks[t, S.T_CPU]), int(thisnid), int(tn.numa_preferred_nid),
                int(tn.numa_scan_seq))
        done = int(numab_core.numa_hint_faults(
            ks.core_args(), self.prot, self.lc, self.lc_key, np.ascontiguousarray(slots),
            np.ascontiguousarray(vpns), pnodes, pol, task, batch, self.cnt,
            (tn.membuf, tn.cpubuf, tn.locality, tn.tstat), k._res))
        if done and k.kgen != KGEN_6_1:
            st = self.vmas.get(v)
            if st is not None:
                st.pids_active[1] |= 1 << hash_32(t, 6)
        return done

    def do_numa_page(self, t: int, slot: int, vpn: int) -> None:
        k = self.k
        ks = k.ks
        self.prot[slot] = -1  # the PTE is restored whatever happens
        pg = int(ks.pt_page[slot])
        v = int(ks.pt_vma[slot])
        if not self.enabled:
            return
        self._task(t)
        cpu = int(ks.tasks[t, S.T_CPU])
        thisnid = k.task_node(t)
        nid = int(ks.pages[pg, S.PG_NODE])
        flags = 0
        if not int(ks.vmas[v, S.V_PROT]) & S.PROT_WRITE:
            flags |= TNF_NO_GROUP
        if ks.pages[pg, S.PG_MAPCOUNT] > 1 and ks.vmas[v, S.V_SHARED]:
            flags |= TNF_SHARED
        last, flags = self._count_hint_fault(t, v, pg, slot, nid, thisnid, flags)
        target = self.mpol_misplaced(t, v, vpn, pg, slot, nid, cpu, thisnid)
        if target < 0:
            self.task_numa_fault(t, last, nid, 1, flags)
            return
        if not self.migrate_misplaced_folio_prepare(pg, target):
            self.task_numa_fault(t, last, nid, 1, flags | TNF_MIGRATE_FAIL)
            return
        new = self.migrate_misplaced_folio(t, pg, slot, target)
        if new < 0:
            self.task_numa_fault(t, last, nid, 1, flags | TNF_MIGRATE_FAIL)
        else:
            self.task_numa_fault(t, last, target, 1, flags | TNF_MIGRATED)

    def _count_hint_fault(self, t: int, v: int, pg: int, key: int, nid: int, thisnid: int,
                          flags: int) -> tuple[int, int]:
        """What every hinting fault does before the migration decision, small page or THP
        (``do_numa_page`` / ``do_huge_pmd_numa_page``): read the folio's last_cpupid, mark the
        task active on the VMA (6.12's per-VMA scan filter), count the fault and whether it
        was local.  Returns the last_cpupid and the task_numa_fault flags."""
        last = self._last_cpupid(pg, key)
        if promotion(self).folio_use_access_time(nid):  # tiering: the field holds a time
            last = -1
        if self.k.kgen != KGEN_6_1:
            st = self.vmas.get(v)
            if st is not None:
                st.pids_active[1] |= 1 << hash_32(t, 6)
        self.count("numa_hint_faults")
        if nid == thisnid:
            self.count("numa_hint_faults_local")
            flags |= TNF_FAULT_LOCAL
        return last, flags

    def _key(self, pg: int, slot: int) -> int:
        ks = self.k.ks
        o = int(ks.pages[pg, S.PG_OBJ])
        if o >= 0:
            return -2 - (int(ks.objs[o, S.O_BASE]) + int(ks.pages[pg, S.PG_INDEX]))
        return slot

    def _last_cpupid(self, pg: int, slot: int) -> int:
        if self.lc_key[pg] != self._key(pg, slot):
            return -1
        return int(self.lc[pg])

    def _xchg_last_cpupid(self, pg: int, slot: int, value: int) -> int:
        old = self._last_cpupid(pg, slot)
        self.lc[pg] = value
        self.lc_key[pg] = self._key(pg, slot)
        return old

    # ------------------------------------------------------------ the decision
    def mpol_misplaced(self, t: int, v: int, vpn: int, pg: int, slot: int, curnid: int,
                       cpu: int, thisnid: int) -> int:
        """The node the page should move to, or -1 (``mpol_misplaced``)."""
        from numasim.mm.syscalls import _vma_policy_for_addr

        ks = self.k.ks
        p = _vma_policy_for_addr(self.k, t, vpn)
        if p < 0:
            p = int(ks.tasks[t, S.T_POLICY])
        if p < 0:  # preferred_node_policy[thisnid]: PREFERRED{thisnid}, MOF|MORON
            mode, flags, nodes = MPOL_PREFERRED, MPOL_F_MOF | MPOL_F_MORON, {thisnid}
        else:
            mode, flags = int(ks.policies[p, S.P_MODE]), int(ks.policies[p, S.P_FLAGS])
            nodes = set(ks.policy_nodes(p))
        if not flags & MPOL_F_MOF:
            return -1
        if mode in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE):
            # unreachable: MOF is never set on these (fact sheet 1.5); interleave target
            order = sorted(nodes)
            polnid = order[(vpn - int(ks.vmas[v, S.V_START]) + int(ks.vmas[v, S.V_PGOFF]))
                           % len(order)]
        elif mode == MPOL_PREFERRED:
            if curnid in nodes:
                return -1
            polnid = min(nodes)
        elif mode == MPOL_LOCAL:
            polnid = thisnid
        elif mode in (MPOL_BIND, MPOL_PREFERRED_MANY):
            if flags & MPOL_F_MORON:
                if thisnid not in nodes:
                    return -1
                polnid = thisnid
            else:
                if curnid in nodes:
                    return -1
                polnid = next((int(ks.zones[z, S.Z_NODE]) for z in ks.zonelist[thisnid]
                               if z >= 0 and int(ks.zones[z, S.Z_NODE]) in nodes), curnid)
        else:
            return -1
        if flags & MPOL_F_MORON:
            polnid = thisnid
            if not self.should_numa_migrate_memory(t, pg, slot, curnid, cpu, thisnid):
                return -1
        return polnid if curnid != polnid else -1

    def should_numa_migrate_memory(self, t: int, pg: int, slot: int, src_nid: int,
                                   dst_cpu: int, dst_nid: int) -> bool:
        """The two-stage ``last_cpupid`` filter (no numa groups, no tiering)."""
        ks = self.k.ks
        if self.k.kgen != KGEN_6_1 and not ks.nodeinfo[dst_nid, S.N_MEMORY]:
            return False
        promo = promotion(self)
        if promo.folio_use_access_time(src_nid):  # tiering: the hot-page rule
            return promo.should_promote(pg, slot, dst_nid)
        tn = self._task(t)
        this = (dst_cpu << 8) | (t & 0xFF)
        last = self._xchg_last_cpupid(pg, slot, this)
        if last >= 0 and last >> 8 >= ks.cpu_node.shape[0]:  # tiering: a stale time stamp
            return False
        last_pid = -1 if last < 0 else last & 0xFF
        if (tn.numa_preferred_nid == -1 or tn.numa_scan_seq <= 4) and \
                (last_pid == -1 or last_pid == t & 0xFF):
            return True
        # the page must fault twice in a row from the same node; after that a private
        # fault, or a task without a numa group (all tasks here), migrates
        return last_pid == -1 or int(ks.cpu_node[last >> 8]) == dst_nid

    # ------------------------------------------------------------ migration
    def migrate_misplaced_folio_prepare(self, pg: int, target: int, nr: int = 1) -> bool:
        """The refusals before ``migrate_pages``: dirty page cache, a target node not above
        its high watermark + the folio + the zone's lowmem reserve for ZONE_MOVABLE
        (``migrate_balanced_pgdat``), a page still in a
        per-CPU LRU batch (``folio_isolate_lru`` fails)."""
        ks = self.k.ks
        if int(ks.pages[pg, S.PG_KIND]) == S.PGK_FILE:
            return False
        zs = np.flatnonzero((ks.zones[:, S.Z_NODE] == target) & (ks.zones[:, S.Z_MANAGED] > 0))
        mv = S.Z_RES + ZONE_MOVABLE  # tiering: zone_watermark_ok counts the lowmem reserve
        if not any(ks.zones[z, S.Z_FREE] > ks.zones[z, S.Z_HIGH] + nr + ks.zones[z, mv]
                   for z in zs):
            promotion(self).wake_target_kswapd(target)  # tiering
            return False
        return not self._in_batch(pg)

    def migrate_misplaced_folio(self, t: int, pg: int, slot: int, target: int) -> int:
        """Move the page to ``target`` (``__GFP_THISNODE``, no reclaim); returns the new
        page row or -1 (``pgmigrate_fail``)."""
        from numasim.mm import alloc_core as core

        k = self.k
        ks = k.ks
        ks.ensure_pages(4)
        self._fit()
        res = k._res
        res[core.R_NID] = target
        res[core.R_MASK_KIND] = core.MASK_NODE
        res[core.R_MASK_IDX] = target
        kind, obj, index = (int(ks.pages[pg, c]) for c in (S.PG_KIND, S.PG_OBJ, S.PG_INDEX))
        src_nid = int(ks.pages[pg, S.PG_NODE])
        order = int(ks.pages[pg, S.PG_ORDER])  # a THP moves whole
        new = int(k.core.alloc_pages_nid(ks.core_args(), t, GFP_THISNODE, order, -1, -1, kind,
                                         obj, index, core.OOM_NEVER, res))
        if new < 0:
            ks.vmstat[S.VM_PGMIGRATE_FAIL] += 1 << order
            return -1
        self._fit()
        ks.pages[new, S.PG_DIRTY] = ks.pages[pg, S.PG_DIRTY]
        if ks.pages[pg, S.PG_MAPCOUNT] == 1 and obj < 0 and order == 0:
            ks.pages[new, S.PG_MAPCOUNT] = 1
            ks.pt_page[slot] = new
            ks.pages[pg, S.PG_MAPCOUNT] = 0
            k.core.free_page(ks.zones, ks.vmstat, ks.pages, pg)
        else:
            from numasim.mm.syscalls import _replace_page

            _replace_page(k, pg, new)
        self.lc[new], self.lc_key[new] = self.lc[pg], self._key(new, slot)
        self.lc[pg] = self.lc_key[pg] = -1
        ks.vmstat[S.VM_PGMIGRATE_SUCCESS] += 1 << order
        self.count("numa_pages_migrated", 1 << order)
        promotion(self).migrated(src_nid, new, 1 << order)  # tiering
        return new

    # ------------------------------------------------------------ statistics
    def task_numa_fault(self, t: int, last_cpupid: int, mem_node: int, pages: int,
                        flags: int) -> None:
        tn = self._task(t)
        if not self.enabled:
            return
        if promotion(self).skip_task_fault(mem_node, last_cpupid):  # tiering
            return
        if not tn.has_faults:
            tn.has_faults = True
            tn.total_numa_faults = 0
            tn.locality[:] = 0
        cpu_node = self.k.task_node(t)
        priv = int(last_cpupid < 0 or (last_cpupid & 0xFF) == (t & 0xFF))
        local = int(bool(flags & TNF_FAULT_LOCAL))
        if self.now > tn.numa_migrate_retry:
            self.task_numa_placement(t)
            self.numa_migrate_preferred(t)
        if flags & TNF_MIGRATED:
            tn.tstat[0] += pages
        if flags & TNF_MIGRATE_FAIL:
            tn.locality[2] += pages
        tn.membuf[mem_node, priv] += pages
        tn.cpubuf[cpu_node, priv] += pages
        tn.locality[local] += pages

    def task_numa_placement(self, t: int) -> None:
        k = self.k
        tn = self._task(t)
        seq = self.mms[k.task_mm(t)].numa_scan_seq
        if tn.numa_scan_seq == seq:
            return
        tn.numa_scan_seq = seq
        tn.numa_scan_period_max = self.task_scan_max(t)
        fault_types = [0, 0]
        max_faults, max_nid = 0, -1
        for nid in k.machine.node_ids:
            faults = 0
            for priv in (0, 1):
                buf = int(tn.membuf[nid, priv])
                mem = int(tn.mem[nid, priv])
                diff = buf - mem // 2
                fault_types[priv] += buf
                tn.membuf[nid, priv] = 0
                tn.mem[nid, priv] = mem + diff
                tn.total_numa_faults += diff
                faults += mem + diff
                tn.cpubuf[nid, priv] = 0  # CPU statistics only weigh numa groups
            if faults > max_faults:
                max_faults, max_nid = faults, nid
        if max_faults:
            ks = k.ks
            if not ks.nodeinfo[max_nid, S.N_CPU]:  # nearest node with CPUs
                cands = [n for n in k.machine.node_ids if ks.nodeinfo[n, S.N_CPU]]
                max_nid = min(cands, key=lambda n: (k.machine.dist(max_nid, n), n))
            tn.numa_preferred_nid = max_nid
        self.update_task_scan_period(t, fault_types[0], fault_types[1])

    def update_task_scan_period(self, t: int, shared: int, private: int) -> None:
        tn = self._task(t)
        remote, local = tn.locality[0], tn.locality[1]
        if local + shared == 0 or tn.locality[2]:
            tn.numa_scan_period = min(tn.numa_scan_period_max, tn.numa_scan_period * 2)
            self.mms[self.k.task_mm(t)].numa_next_scan = self.now + tn.numa_scan_period
            return
        period_slot = -(-int(tn.numa_scan_period) // NUMA_PERIOD_SLOTS)
        lr_ratio = local * NUMA_PERIOD_SLOTS // (local + remote)
        ps_ratio = private * NUMA_PERIOD_SLOTS // (private + shared)
        if ps_ratio >= NUMA_PERIOD_THRESHOLD:
            diff = max(ps_ratio - NUMA_PERIOD_THRESHOLD, 1) * period_slot
        elif lr_ratio >= NUMA_PERIOD_THRESHOLD:
            diff = max(lr_ratio - NUMA_PERIOD_THRESHOLD, 1) * period_slot
        else:
            diff = -(NUMA_PERIOD_THRESHOLD - max(lr_ratio, ps_ratio)) * period_slot
        tn.numa_scan_period = min(max(tn.numa_scan_period + diff, self.task_scan_min(t)),
                                  self.task_scan_max(t))
        tn.locality[:] = 0

    def numa_migrate_preferred(self, t: int) -> None:
        """The retry timer, then ``task_numa_migrate`` when the task is not on its
        preferred node (:mod:`numasim.mm.task_placement`: pinned tasks stay)."""
        tn = self._task(t)
        if tn.numa_preferred_nid == -1 or not tn.has_faults:
            return
        tn.numa_migrate_retry = self.now + min(1000, tn.numa_scan_period / 16)
        if self.k.task_node(t) != tn.numa_preferred_nid:
            self.placement.task_numa_migrate(t)

    # ------------------------------------------------------------ views
    def vmstat(self) -> dict[str, int]:
        return dict(self.counters)


def numab(k) -> NumaBalancing:
    """The kernel's NUMA-balancing state, made on first use: off with Linux's knob defaults,
    unless the machine YAML's ``kernel:`` block says otherwise."""
    nb = getattr(k, "numab", None)
    if nb is None:
        settings = dict(getattr(k.machine, "numa_balancing", ()))
        mode = settings.pop("numa_balancing", 0)
        nb = NumaBalancing(k, numa_balancing=mode if k.kgen != KGEN_2_6_7 else 0, **settings)
        k.numab = nb
    return nb


# ------------------------------------------------------------------ the files scripts see
DEBUGFS_MOUNT = "/sys/kernel/debug"


def balancing_read(vfs, path: str) -> list[str] | None:
    """``cat`` of /proc/sys/kernel/numa_balancing or a debugfs knob (None: not ours).
    The debugfs files exist only while debugfs is mounted on /sys/kernel/debug."""
    nb = numab(vfs.k)
    if path == SYSCTL_PATH:
        if vfs.k.kgen == KGEN_2_6_7:
            return None
        return [str(nb.mode)]
    if path == RATE_LIMIT_SYSCTL and vfs.k.kgen != KGEN_2_6_7:  # tiering
        return [str(promotion(nb).rate_limit_mbps)]
    knob = _debugfs_knob(vfs, path)
    if knob is None:
        return None
    return [str(nb.knobs[knob])]


def balancing_write(vfs, path: str, value: str) -> bool:
    """``write`` of those files: True when handled; raises the VfsError Linux would."""
    nb = numab(vfs.k)
    if path == SYSCTL_PATH and vfs.k.kgen != KGEN_2_6_7:
        setter = nb.set_mode
    elif path == RATE_LIMIT_SYSCTL and vfs.k.kgen != KGEN_2_6_7:  # tiering

        def setter(v: int) -> None:
            nb.set_knob("promote_rate_limit_MBps", v)
    else:
        knob = _debugfs_knob(vfs, path)
        if knob is None:
            return False

        def setter(v: int) -> None:
            nb.set_knob(knob, v)
    try:
        setter(int(value.strip(), 10))
    except ValueError as e:
        err = e.errno if isinstance(e, KnobError) else 22
        raise VfsError(err, str(e)) from None
    return True


def _debugfs_knob(vfs, path: str) -> str | None:
    if not path.startswith(DEBUGFS_DIR + "/"):
        return None
    m = vfs.mounts.get(DEBUGFS_MOUNT)
    if m is None or m.fstype != "debugfs":
        return None
    name = path[len(DEBUGFS_DIR) + 1:]
    if name not in KNOB_DEFAULTS:
            raise VfsError(2, "no such debugfs file")
    return name
