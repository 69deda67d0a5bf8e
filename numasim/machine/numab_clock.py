"""NUMA balancing on a timed run's clock: the scanner's ticks, the hinting faults, what a
migration costs, and the series over time.  Both engines call this module the same way.

The simulated kernel's side (:mod:`numasim.mm.numa_balancing`) is driven here from the
engines' cycles (``cpu_ghz``: ms = cycles / (GHz x 1e6)), at the same points in both engines,
so that a run with one thread gives the same result in both, to the bit:

* **ticks**: every thread has its own scheduler tick, HZ=250 (4 ms of its own clock).  When
  its next access would issue at or after its next tick, the tick runs first: the task's CPU
  time grows by 4 ms, ``task_tick_numa`` runs, and ``task_numa_work`` when it got queued (the
  work runs on the way back to user mode, i.e. before the access), at the kernel clock of the
  tick.  A thread that does not run (between phases, finished early) does not tick: ticks
  are CPU time, as in Linux.  The threads' ticks share one grid, so they coincide; one rule,
  :meth:`NumabClock.run_ticks`, orders them in both engines: by cycle, then by thread, each
  before any access at or after it.  The exact engine calls it before every access; the
  fast engine at every quantum boundary, ending quanta at the next tick that may scan
  (:meth:`NumabClock.next_acting_tick`); a tick that only adds CPU time may fall inside
  a quantum, where run_quantum stops with :data:`NUMAB_TICK` and the thread runs its own
  (run ahead on host threads, the CPU goes on and the tick runs after the quantum, in the
  same order: :meth:`NumabClock.may_defer_tick`, :mod:`numasim.machine.ahead`).
  What stays approximate in the fast engine: within one quantum the CPUs' hinting faults
  are handled CPU after CPU, not in time order (a fault's migration decision and a task
  move may see another thread's later faults), and a tick the prediction called idle may
  scan after all when a fault inside the quantum shortened its task's scan period.
* **hinting faults**: an access to a slot the scanner protected
  (:func:`numasim.mm.alloc_core.pte_numa_hint`, the one rule) is a hinting fault: the
  kernel handles it at the access's time (``do_numa_page`` / ``do_huge_pmd_numa_page``:
  statistics, ``mpol_misplaced``, the ``last_cpupid`` filter, the migration) in
  :meth:`NumabClock.hint`; the engine then charges it (run_quantum stops with
  :data:`NUMAB_HINT` and charges it when it resumes; the exact engine charges it in place).
* **the cost**: a hinting fault costs what a page fault costs the engines (``fault_ns``,
  the kernel's entry, lookup and return; 500 ns by default).  A migration adds the TLB
  shootdown (:data:`TLB_SHOOTDOWN_NS`) and copies the folio by the faulting CPU
  (``migrate_misplaced_folio`` runs in the fault): its lines are read from the source node
  (read route: the source's controller and the links to the CPU) and then written to the
  target node (write route), every line an ordinary request through the engines'
  resources holding a miss slot, issued ``zero_gap_cycles`` apart as the zeroing of a fresh
  page is; a THP copies all its 512 x 64 lines.  The fast engine counts them in its
  per-(CPU, node, kind) counts, so the weave sees them; the exact engine queues them.

:data:`TLB_SHOOTDOWN_NS`: migrating a mapped page unmaps it (``try_to_migrate``) and flushes
the TLBs that may cache it; for a single-threaded mm that is a local ``invlpg`` (~100-200 ns),
for a multi-threaded mm an IPI to the other CPUs of the mm and waiting for their
acknowledgement.  Measured IPI round trips on x86 servers are 1-2 us within a socket and
2-4 us across sockets (Amit et al., "Don't shoot down TLB shootdowns!", EuroSys 2020, Fig. 1:
~2.5 us for a remote-socket shootdown on a 2-socket Skylake; LATR, ASPLOS 2018, reports 2-6
us).  numasim charges one flat 2 us per migration (one folio per hinting fault, so one
shootdown per migration), whether the mm has one thread or many: a documented choice, to be
refined when the flush is modelled per CPU.

* **task placement** (:mod:`numasim.mm.task_placement`): a hinting fault may move an
  unpinned thread to another CPU (``task_numa_migrate``, inside the fault as Linux's stopper
  does it); :meth:`NumabClock._moved` re-homes the engine's CPU slot at once (``ci``'s CPU
  and node, ``cpu_nodes``), so from its next access the thread is timed from the new node
  in both engines (the exact engine reads its node before every access, run_quantum when it
  resumes after the fault); the fast engine's weave maps the lines it issued earlier in the
  quantum through the old node (``FastEngine.rehome``).

The series over time (:meth:`NumabClock.series`): per interval of simulated time, the pages
of the run's regions per node at the interval's end, hinting faults, pages migrated, and the
memory requests and local ones (locality), each counted at the time it happened (a thread's
requests at its ticks); intervals double (pairs merged) when the run
outgrows :data:`MAX_SAMPLES`.  Intervals start at one tick (4 ms), since requests are counted
at the ticks; the pages per node at an interval's end are those at the first thread's tick
in the next interval (the run's end for the last interval), a bincount of the regions' page
tables.
"""

from __future__ import annotations

import math

import numpy as np

from numasim.machine import cpu as C
from numasim.mm import state as S
from numasim.mm.numa_balancing import NUMA_BALANCING_MEMORY_TIERING, TICK_MS, numab

NUMAB_TICK = 16
"""run_quantum's status: the thread's next tick is due before its next access."""
NUMAB_HINT = 17
"""run_quantum's status: the access at the buffer's head is a hinting fault."""
NUMAB_THP = 18
"""run_quantum's status: a page fault with transparent huge pages on (Python's fault path)."""
TLB_SHOOTDOWN_NS = 2000.0
MAX_SAMPLES = 256
SAMPLE_MS0 = float(TICK_MS)  # the threads' requests are counted at their ticks
# nbi[c, :] int64: a hinting fault the CPU still has to be charged for
NBI_PENDING = 0  # 1: handled by the kernel, not yet charged; 2: its lines partly issued
NBI_SRC = 1
NBI_DST = 2
NBI_LINES = 3  # lines to copy (0: no migration)
NBI_DONE = 4  # lines already issued (over both passes) when a quantum ended mid-fault
NBI_NCOLS = 5
# nbf[c, :] float64
NBF_TICK = 0  # cycle of the thread's next scheduler tick (inf: balancing off)
NBF_EXTRA = 1  # extra cycles of the pending fault (the TLB shootdown)
NBF_AT = 2  # cycle of the access that took the hinting fault (set by run_quantum)
# a fault whose lines a quantum's end interrupted (NBI_PENDING 2): when the next line
# issues, when the last issued one lands, when the fault started
NBF_TZ = 3
NBF_FEND = 4
NBF_T0 = 5
NBF_KSWAPD = 6  # cycle of the next kswapd step (numasim.machine.kswapd_clock; inf: asleep)
NBF_NCOLS = 7
# sample columns
SM_HINT = 0
SM_MIGRATED = 1
SM_MEM = 2
SM_LOCAL = 3
SM_PROMOTED = 4  # migrations from a lower tier into the top tier (numasim.machine.tiering)
SM_NCOLS = 5
_NO_PROT = np.zeros(0, dtype=np.int64)
TIERING_VMSTAT = ("pgpromote_success", "pgpromote_candidate", "pgdemote_kswapd",
                  "pgdemote_direct", "pgsteal_kswapd", "pgsteal_direct", "pgmigrate_success")
"""The counters a tiering run's ``numa_balancing.vmstat`` adds (Linux's names)."""


class NumabClock:
    """The timed run's NUMA balancing (see the module).  ``on`` is False when balancing is
    off: then nothing here is ever called by the engines and the run is today's."""

    def __init__(self, sim) -> None:
        self.sim = sim
        settings = dict(getattr(sim.machine, "numa_balancing", ()))
        self.on = bool(settings.get("numa_balancing", 0)) or bool(
            getattr(sim.k, "numab", None) is not None and sim.k.numab.enabled)
        self.nb = numab(sim.k) if self.on else None
        if self.on and not self.nb.enabled:  # Linux 2.6.7 has no NUMA balancing
            sim.notes.append("NUMA balancing was asked for, but Linux "
                             f"{sim.linux} has none: it is off in this run")
            self.on = False
        from numasim.machine.khugepaged_clock import KhugepagedClock

        # khugepaged (numasim.machine.khugepaged_clock) runs at the leader's ticks: the
        # clock ticks when balancing or khugepaged is on
        self.kh = KhugepagedClock.of(sim)
        self.ticking = self.on or self.kh is not None
        if self.ticking and self.nb is None:
            self.nb = numab(sim.k)
        n = sim.nthreads
        self.cyc_per_ms = float(sim.ghz) * 1e6
        self.tick_cyc = TICK_MS * self.cyc_per_ms
        self.tlb_cyc = TLB_SHOOTDOWN_NS * float(sim.ghz)
        self.ms0 = float(self.nb.now) if self.ticking else 0.0
        self.nbi = np.zeros((n, NBI_NCOLS), dtype=np.int64)
        self.nbf = np.zeros((n, NBF_NCOLS))
        self.nbf[:, NBF_TICK] = self.tick_cyc if self.ticking else math.inf
        self.nbf[:, NBF_KSWAPD] = math.inf
        self.version = 0  # bumped when page tables or protections change
        self.t_next = math.inf  # the earliest tick of a thread that ticks (next_tick)
        self.mem_seen = np.zeros((n, 2))  # st's ST_MEM, ST_LOCAL at the last tick
        self.width_ms = SAMPLE_MS0
        self.samples = np.zeros((MAX_SAMPLES, SM_NCOLS), dtype=np.int64)
        self.pages = np.full((MAX_SAMPLES, sim.machine.nr_node_ids), -1, dtype=np.int64)
        from numasim.machine.tiering import TierTracker

        self.tier = TierTracker(sim)  # the hot set's residency, at the same snapshots
        self.hotres = np.full(MAX_SAMPLES, -1.0)
        self.leader = 0  # the thread whose ticks take the pages-per-node snapshots
        self.migrations = 0
        self.hint_faults = 0
        self.moves: list[tuple[float, int, int, int, str]] = []  # (ms, thread, from, to, kind)
        if self.on:
            self.nb.register_all()
            self.nb._fit()
            self._attach_placement()

    # ------------------------------------------------------------ task placement
    def _attach_placement(self) -> None:
        """Task placement (:mod:`numasim.mm.task_placement`): the run's threads with their
        allowed CPUs; a thread runs while it takes part in the current phase; a move re-homes
        the engine's CPU slot (its node, so its routes, latencies and LLC from then on)."""
        sim = self.sim
        allowed = getattr(sim.program, "cpus_allowed", None) or \
            [frozenset((c,)) for c in sim.cpus]
        self.slot_of = {int(t): c for c, t in enumerate(sim.tasks)}
        self.nb.placement.attach(
            {int(t): allowed[c] for c, t in enumerate(sim.tasks)},
            running=lambda t: bool(sim.ci[self.slot_of[t], C.CI_ACTIVE]),
            on_move=self._moved)

    def _moved(self, mv) -> None:
        """A thread now runs on another CPU: what moves with it is its engine slot (its
        clock, miss slots, private queue copies, write-back ring, statistics); what stays is
        the old node's LLC contents and the lines already in flight (they complete on the
        routes they were issued on)."""
        sim = self.sim
        c = self.slot_of[int(mv.task)]
        node = int(sim.machine.cpu_to_node[mv.dst_cpu])
        rehome = getattr(sim, "rehome", None)  # the fast engine's weave (fast.py)
        if rehome is not None:
            rehome(c, int(sim.ci[c, C.CI_NODE]))
        sim.ci[c, C.CI_CPU] = mv.dst_cpu
        sim.ci[c, C.CI_NODE] = node
        sim.cpu_nodes[c] = node
        self.moves.append((float(mv.ms), c, int(mv.src_cpu), int(mv.dst_cpu), mv.kind))

    @property
    def prot(self) -> np.ndarray:
        """The protections the scanner set, per page-table slot (grown to the tables;
        empty when balancing is off: no slot is ever a hinting fault)."""
        if not self.on:
            return _NO_PROT
        self.nb._fit()
        return self.nb.prot

    # ------------------------------------------------------------ phases and ticks
    def start_phase(self, t0: float, active: list[int]) -> None:
        """A phase starts at cycle t0: a thread's next tick is its first tick boundary
        after t0 (idle time between phases is no CPU time)."""
        if not self.ticking:
            return
        for c in active:
            nt = self.nbf[c, NBF_TICK]
            if nt <= t0:
                k = math.floor((t0 - nt) / self.tick_cyc) + 1
                self.nbf[c, NBF_TICK] = nt + k * self.tick_cyc
            st = self.sim.st[c]
            self.mem_seen[c] = (st[C.ST_MEM], st[C.ST_LOCAL])
        if active:
            self.leader = active[0]
        self.next_tick()
        if active and self.on:
            b = self._bin(t0)
            if b > 0:
                self._snapshot(b - 1)

    def end_phase(self, active: list[int]) -> None:
        """A phase ended: each thread's requests since its last tick count at its end."""
        if not self.on:
            return
        for c in active:
            st = self.sim.st[c]
            b = self._bin(float(self.sim.cs[c, C.CS_LAST]))
            self.samples[b, SM_MEM] += int(st[C.ST_MEM] - self.mem_seen[c, 0])
            self.samples[b, SM_LOCAL] += int(st[C.ST_LOCAL] - self.mem_seen[c, 1])
            self.mem_seen[c] = (st[C.ST_MEM], st[C.ST_LOCAL])

    def _ticking(self, c: int) -> bool:
        """Thread c ticks: it takes part in the phase and has accesses left to issue (its
        CPU time runs; a finished thread's CPU is idle)."""
        ci = self.sim.ci
        return bool(ci[c, C.CI_ACTIVE]) and not ci[c, C.CI_FINISHED]

    def next_tick(self) -> float:
        """The cycle of the earliest tick of a thread that ticks (inf: none); kept in
        :attr:`t_next` (which may lag low after a thread finished: harmless, the next
        :meth:`run_ticks` finds nothing and recomputes it)."""
        nxt = math.inf
        for c in range(self.sim.nthreads):
            if self._ticking(c) and self.nbf[c, NBF_TICK] < nxt:
                nxt = float(self.nbf[c, NBF_TICK])
        self.t_next = nxt
        return nxt

    def next_acting_tick(self) -> float:
        """The earliest tick of a thread that ticks at which it may touch what other threads
        see (inf: none): ``task_tick_numa`` may queue the scan (the thread's CPU time passes
        ``node_stamp`` plus its scan period; once the mm has been scanned, the shorter of
        that and ``task_scan_min``, which a hinting fault may set meanwhile), or
        khugepaged's pass at the leader's tick.  The ticks before it only add CPU time to
        their own thread (and count its requests for the series), so their order against
        other threads' events changes nothing."""
        nxt = math.inf
        nb = self.nb
        scanned = self.on and int(nb.cnt[0]) + int(nb.cnt[1]) > 0  # numa_(huge_)pte_updates
        for c in range(self.sim.nthreads):
            if not self._ticking(c):
                continue
            tick = float(self.nbf[c, NBF_TICK])
            if self.kh is not None and c == self.leader:
                kev = self.kh.next_event(self, tick)
                if kev is not None:  # the leader's first tick at or after the pass
                    nxt = min(nxt, tick + math.ceil((kev - tick) / self.tick_cyc)
                              * self.tick_cyc)
            if not self.on:
                continue
            t = int(self.sim.tasks[c])
            tn = nb.tasks.get(t)
            if tn is None:
                nxt = min(nxt, tick)
                continue
            period = min(tn.numa_scan_period, nb.task_scan_min(t)) if scanned else \
                tn.numa_scan_period
            ahead = tn.node_stamp + period - tn.runtime
            j = max(0, math.floor(ahead / TICK_MS) - 1)  # one early: float rounding
            nxt = min(nxt, tick + j * self.tick_cyc)
        return nxt

    def run_ticks(self, upto: float) -> bool:
        """Every tick at or before cycle ``upto`` of every thread that ticks, in the one
        order both engines use: by the tick's cycle, then by thread (CPU slot) number.

        A tick is CPU time, and every running thread is one busy CPU, so a thread's tick
        comes at its cycle whatever the thread is doing (waiting for memory, in a fault).
        Ticks of several threads often coincide (they share one grid: :meth:`start_phase`),
        and which of them runs ``task_numa_work`` first decides which thread claims the
        mm's next scan (``numa_next_scan``), so the order must not depend on the engine:
        the exact engine calls this before every access (``upto`` its issue cycle), the
        fast engine at every quantum boundary (and ends quanta at the next tick, so none
        falls inside one).  Returns True when page tables or protections changed (the
        engines' page caches are stale)."""
        v0 = self.version
        while True:
            due = [(float(self.nbf[c, NBF_TICK]), c) for c in range(self.sim.nthreads)
                   if self._ticking(c) and self.nbf[c, NBF_TICK] <= upto]
            if not due:
                break
            self.tick(min(due)[1])
        self.next_tick()
        return self.version != v0

    def tick(self, c: int, at: tuple[float, int, int] | None = None) -> None:
        """Thread c's scheduler tick (``task_tick_numa``, then the queued
        ``task_numa_work``), at its tick's cycle.  ``at``: a tick the thread went past while
        run ahead (:meth:`defer_tick`), run now with its cycle and request counts as they
        were then."""
        nb = self.nb
        if at is None:
            at = self.defer_tick(c)
        when, mem, local = at
        nb.now = self.ms0 + when / self.cyc_per_ms
        if self.kh is not None and c == self.leader and \
                self.kh.after_tick(self, c, float(nb.now)):
            self.version += 1  # khugepaged collapsed ranges: page caches are stale
        if not self.on:
            return
        t = int(self.sim.tasks[c])
        tn = nb._task(t)
        tn.runtime += TICK_MS
        if nb.task_tick_numa(t):
            before = int(nb.cnt[0]) + int(nb.cnt[1])  # numa_pte_updates, _huge_
            nb.task_numa_work(t)
            if int(nb.cnt[0]) + int(nb.cnt[1]) != before:
                self.version += 1
        b = self._bin(when)
        self.samples[b, SM_MEM] += mem - int(self.mem_seen[c, 0])
        self.samples[b, SM_LOCAL] += local - int(self.mem_seen[c, 1])
        self.mem_seen[c] = (mem, local)
        if c == self.leader and b > 0:  # the pages as the previous interval ended
            self._snapshot(b - 1)

    def defer_tick(self, c: int) -> tuple[float, int, int]:
        """Thread c passes its tick: (its cycle, the thread's requests and local ones so
        far) for :meth:`tick`, and its next tick due one tick later."""
        when = float(self.nbf[c, NBF_TICK])
        self.nbf[c, NBF_TICK] = when + self.tick_cyc
        st = self.sim.st[c]
        return when, int(st[C.ST_MEM]), int(st[C.ST_LOCAL])

    def may_defer_tick(self, c: int, k: int) -> bool:
        """Whether thread c's next tick, its k-th (from 0) passed in a quantum run ahead
        (:mod:`numasim.machine.ahead`), may run after every CPU's quantum instead of in its
        thread's turn: it must only add CPU time to its own task and count its requests.
        Not so when ``task_tick_numa`` would pass ``node_stamp`` plus the scan period (with
        a tick to spare for rounding), and not for the leader's tick when khugepaged runs
        (its pass, its copies posted to the thread) or memory tiers are on (the hot set's
        residency reads every thread's position)."""
        if c == self.leader and (self.kh is not None or self.tier.on):
            return False
        if not self.on:
            return True
        tn = self.nb.tasks.get(int(self.sim.tasks[c]))
        if tn is None:
            return False
        return tn.runtime + (k + 2) * TICK_MS <= tn.node_stamp + tn.numa_scan_period

    def next_event(self, now: float) -> float | None:
        """For fast-forward (:func:`numasim.machine.fastforward.next_event`): the cycle
        before which a skipped stretch must end.  ``now`` while the scanner has left
        protected PTEs not yet faulted (a skip would pass over hinting faults); else the
        first tick of a running thread at which ``task_tick_numa`` acts (its CPU time passes
        ``node_stamp + numa_scan_period``: it may queue the scan).  The ticks before it only
        add CPU time, which the thread catches up on after the stretch, tick by tick at
        their own times."""
        if not self.ticking:
            return None
        kev = self.kh.next_event(self, now) if self.kh is not None else None
        if not self.on:
            return kev
        sim = self.sim
        nb = self.nb
        prot = self.prot
        if prot.shape[0]:
            pt = sim.ks.pt_page[: prot.shape[0]]
            if ((prot >= 0) & (prot == pt)).any():
                return now
        ev = math.inf
        for c in range(sim.nthreads):
            if not sim.ci[c, C.CI_ACTIVE] or sim.ci[c, C.CI_FINISHED]:
                continue
            tn = nb.tasks.get(int(sim.tasks[c]))
            if tn is None:
                return now
            ahead = tn.node_stamp + tn.numa_scan_period - tn.runtime
            j = max(0, math.floor(ahead / TICK_MS) - 1)  # one early: float rounding
            ev = min(ev, float(self.nbf[c, NBF_TICK]) + j * self.tick_cyc)
        if kev is not None:
            ev = min(ev, kev)
        return None if ev == math.inf else max(now, ev)

    # ------------------------------------------------------------ hinting faults
    def head_slot(self, c: int) -> tuple[int, int]:
        """(page-table slot, vpn) of the access at the head of CPU c's buffer."""
        sim = self.sim
        ks = sim.ks
        from numasim.workloads import gen as G

        head = int(sim.ci[c, C.CI_HEAD])
        r = int(sim.buf[c, head, G.B_R])
        off = int(sim.buf[c, head, G.B_LINE]) >> sim.lpp_shift
        return int(ks.regions[r, S.R_PT]) + off, int(ks.regions[r, S.R_START]) + off

    def hint(self, c: int, ti: float, slot: int, vpn: int) -> None:
        """The hinting fault of thread c's access at cycle ``ti`` to ``slot``: the kernel
        handles it (and migrates); what the CPU pays is left in ``nbi``/``nbf`` for the
        engine."""
        nb = self.nb
        ks = self.sim.ks
        nb.now = self.ms0 + ti / self.cyc_per_ms
        pg = int(ks.pt_page[slot])
        src = int(ks.pages[pg, S.PG_NODE])
        moved0 = int(nb.cnt[4])
        t = int(self.sim.tasks[c])
        with self.sim.kswapd.around(c, ti):  # a promotion may run kswapd (tiering mode)
            if int(ks.pages[pg, S.PG_ORDER]) == 0:  # one 4 KiB page: the fault loop
                nb._faults(t, np.array([slot], dtype=np.int64),
                           np.array([vpn], dtype=np.int64))
            else:  # a PMD-mapped THP: do_huge_pmd_numa_page
                nb.hinting_faults(t, vpn, 1)
        moved = int(nb.cnt[4]) - moved0
        new = int(ks.pt_page[slot])
        dst = int(ks.pages[new, S.PG_NODE]) if new >= 0 else src
        self.nbi[c] = (1, src, dst, moved * self.sim.lpp, 0)
        self.nbf[c, NBF_EXTRA] = self.tlb_cyc if moved else 0.0
        self.version += 1
        self.hint_faults += 1
        self.migrations += moved
        b = self._bin(ti)
        self.samples[b, SM_HINT] += 1
        self.samples[b, SM_MIGRATED] += moved
        if moved and not self.tier.top[src] and self.tier.top[dst]:
            self.samples[b, SM_PROMOTED] += moved

    def thp_fault(self, c: int, slot: int, vpn: int, write: bool, ti: float = 0.0) -> int:
        """A page fault of thread c with THP on, through the kernel's own path
        (``Kernel.touch``: ``do_huge_pmd_anonymous_page`` with its node-only attempt, the
        huge zero page on a read, the 4 KiB fallback): the allocator core the engines call
        directly faults 4 KiB pages only.  What the CPU pays -- fault_ns, then the zeroing of
        every page allocated (512 x the lines for a THP) -- is left in ``nbi`` as a pending
        fault without a source (``ti``: the fault's cycle).  Returns the lines to zero."""
        from numasim.mm.kernel import Segfault, TaskKilled

        sim = self.sim
        ks = sim.ks
        try:  # the script kernel's reclaim runs in touch: counted as kswapd's (kswapd_clock)
            with sim.kswapd.around(c, ti):
                allocated = sim.k.touch(int(sim.tasks[c]), vpn, 1, write=write)
        except TaskKilled:
            sim.fault_status(S.FAULT_OOM, c)
            raise
        except Segfault as e:
            sim.fault_status(S.FAULT_SIGBUS if e.signal == 7 else S.FAULT_SEGV, c)
            raise
        pg = int(ks.pt_page[slot])
        node = int(ks.pages[pg, S.PG_NODE]) if pg >= 0 else 0
        lines = allocated * sim.lpp
        self.nbi[c] = (1, -1, node, lines, 0)
        self.nbf[c, NBF_EXTRA] = 0.0
        self.version += 1
        return lines

    def take(self, c: int) -> tuple[int, int, int, float]:
        """The pending fault's (source node, target node, lines to copy, extra cycles),
        cleared (the exact engine's side of what run_quantum reads from the arrays)."""
        src, dst, lines = (int(x) for x in self.nbi[c, NBI_SRC:NBI_LINES + 1])
        extra = float(self.nbf[c, NBF_EXTRA])
        self.nbi[c, NBI_PENDING] = 0
        return src, dst, lines, extra

    # ------------------------------------------------------------ series
    def _bin(self, cycles: float) -> int:
        ms = cycles / self.cyc_per_ms
        b = int(ms / self.width_ms)
        while b >= MAX_SAMPLES:
            self._coarsen()
            b = int(ms / self.width_ms)
        return b

    def _coarsen(self) -> None:
        half = MAX_SAMPLES // 2
        self.samples[:half] = self.samples[0::2] + self.samples[1::2]
        self.samples[half:] = 0
        later = self.pages[1::2]
        self.pages[:half] = np.where(later[:, :1] >= 0, later, self.pages[0::2])
        self.pages[half:] = -1
        later_h = self.hotres[1::2]
        self.hotres[:half] = np.where(later_h >= 0, later_h, self.hotres[0::2])
        self.hotres[half:] = -1.0
        self.width_ms *= 2

    def _snapshot(self, b: int) -> None:
        """Interval b's end: the pages per node, and (memory tiers) the hot set's
        residency in the top tier."""
        self.pages[b] = self._pages_per_node()
        if self.tier.on:
            r = self.tier.residency(self.tier.hot_now())
            self.hotres[b] = -1.0 if r is None else r

    def _pages_per_node(self) -> np.ndarray:
        sim = self.sim
        ks = sim.ks
        counts = np.zeros(sim.machine.nr_node_ids, dtype=np.int64)
        for mr in sim.regions.values():
            row = ks.regions[mr.rid]
            base, n = int(row[S.R_PT]), int(row[S.R_END] - row[S.R_START])
            pgs = ks.pt_page[base: base + n]
            pgs = pgs[pgs >= 0]
            counts += np.bincount(ks.pages[pgs, S.PG_NODE], minlength=counts.shape[0])
        return counts

    def _vmstat(self) -> dict[str, int]:
        """NUMA balancing's ``/proc/vmstat`` counters; in memory-tiering mode (2, 3) also
        those of promotion and of the reclaim that makes room for it (:data:`TIERING_VMSTAT`;
        mode 1 keeps the balancing counters only, as before tiering existed)."""
        vm = self.nb.vmstat()
        if self.nb.mode & NUMA_BALANCING_MEMORY_TIERING:
            from numasim.mm.vmstat import vmstat_read

            vm.update((key, vmstat_read(self.sim.k, key)) for key in TIERING_VMSTAT)
        return vm

    def series(self, end_cycles: float) -> dict:
        """The run's series over time (see the module), up to ``end_cycles``."""
        nb = self.nb
        n = min(MAX_SAMPLES, self._bin(end_cycles) + 1) if end_cycles > 0 else 0
        final = self._pages_per_node()
        rows = []
        pages = None
        for b in range(n):
            if self.pages[b, 0] >= 0:
                pages = self.pages[b]
            s = self.samples[b]
            cur = final if b == n - 1 else pages
            rows.append({
                "t_ms": round((b + 1) * self.width_ms, 6),
                "pages_per_node": ({int(i): int(x) for i, x in enumerate(cur)}
                                   if cur is not None else None),
                "hint_faults": int(s[SM_HINT]),
                "pages_migrated": int(s[SM_MIGRATED]),
                "mem_requests": int(s[SM_MEM]),
                "local_fraction": (round(float(s[SM_LOCAL]) / float(s[SM_MEM]), 6)
                                   if s[SM_MEM] else None),
            })
        self._threads_per_node(rows)
        return {"interval_ms": self.width_ms, "knobs": dict(nb.knobs),
                "hint_faults": self.hint_faults, "pages_migrated": self.migrations,
                "vmstat": self._vmstat(), "tlb_shootdown_ns": TLB_SHOOTDOWN_NS,
                "intervals": rows, "task_placement": self._placement_doc()}

    def _threads_per_node(self, rows: list[dict]) -> None:
        """Each interval's threads per node at its end (only when some thread may move):
        the start nodes with the moves up to then applied."""
        sim = self.sim
        if all(self.nb.placement.pinned(int(t)) for t in sim.tasks):
            return
        node = [int(sim.machine.cpu_to_node[c]) for c in sim.cpus]
        cpu_nodes = sorted({int(n) for n in sim.machine.cpu_to_node.values()})
        moves = sorted(self.moves)
        i = 0
        for row in rows:
            while i < len(moves) and moves[i][0] - self.ms0 <= row["t_ms"]:
                node[moves[i][1]] = int(sim.machine.cpu_to_node[moves[i][3]])
                i += 1
            row["threads_per_node"] = {n: node.count(n) for n in cpu_nodes}

    def _placement_doc(self) -> dict:
        """Task placement in the result: on or off, Linux's counters, every move with its
        time, and each thread's start and end (its node over time is the start node and
        the moves)."""
        sim = self.sim
        pl = self.nb.placement
        m = sim.machine
        threads = []
        for c, t in enumerate(sim.tasks):
            tn = self.nb.tasks.get(int(t))
            end = int(sim.ci[c, C.CI_CPU])
            threads.append({
                "thread": c, "pinned": pl.pinned(int(t)),
                "cpu_start": int(sim.cpus[c]), "node_start": int(m.cpu_to_node[sim.cpus[c]]),
                "cpu_end": end, "node_end": int(m.cpu_to_node[end]),
                "numa_preferred_nid": -1 if tn is None else int(tn.numa_preferred_nid),
                "nr_migrations": int(pl.nr_migrations.get(int(t), 0))})
        moves = [{"t_ms": round(ms - self.ms0, 6), "thread": c, "from_cpu": a, "to_cpu": b,
                  "from_node": int(m.cpu_to_node[a]), "to_node": int(m.cpu_to_node[b]),
                  "kind": kind} for ms, c, a, b, kind in self.moves]
        return {"on": bool(pl.enabled), **pl.counters, "moves": moves, "threads": threads}


def hint_cost(sim, clock: NumabClock, c: int) -> tuple[int, int, int, float]:
    """(source, target, lines, first cycle offset) of thread c's pending hinting fault:
    ``fault_ns`` plus the TLB shootdown when the page moved."""
    src, dst, lines, extra = clock.take(c)
    return src, dst, lines, float(sim.pf[C.PF_FAULT]) + extra
