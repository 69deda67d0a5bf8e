"""Reclaim on a timed run's clock: kswapd as a simulated kernel thread, direct reclaim in the
faulting thread's time, and the PTE accessed bits from the engines' own accesses.  Both
engines call this module at the same points, so that a run with one thread reclaims the
same pages at the same accesses in both (the kernel's side is :mod:`numasim.mm.vmscan`).

* **kswapd** (``kswapd`` / ``balance_pgdat``): the allocator core records in
  ``sysvars[SV_KSWAPD_WAKE]`` the nodes whose kswapd an allocation woke (every eligible zone
  failed LOW).  Before its next access the thread stops (run_quantum's status
  :data:`KSWAPD_POLL`; the exact engine asks :meth:`KswapdClock.pending`) and the woken
  kswapds start at that cycle.  A kswapd then runs on its own clock, in steps of
  :data:`KSWAPD_BATCH` pages (``shrink_node`` with kswapd's counters), until its node is
  balanced (a zone above HIGH, PROMO in tiering mode) or it can reclaim nothing: a step
  that starts at cycle t takes ``pages scanned x SCAN_NS + pages reclaimed x STEAL_NS``, and
  the next step starts when that is over.  A step runs when some thread's next access
  reaches its start (the thread stops for it as for a scheduler tick, ``nbf[:,
  NBF_KSWAPD]``): its pages move at once (the kernel state), and its copy traffic flows
  over the step's span.  kswapd runs on no workload CPU (Linux's kswapd is pinned to its
  node's CPUs and the scheduler gives it an idle one; numasim assumes one is idle).
* **idle stretches**: Linux's kswapd is a thread of its own: once woken it runs
  ``balance_pgdat`` until its node is balanced (or it gives up after
  ``MAX_RECLAIM_RETRIES`` passes without progress), whether the tasks that woke it run,
  sleep in a fault or have exited -- on an idle machine it keeps reclaiming.  numasim's
  kswapd is driven by the threads' accesses, so where no thread issues (every running
  thread inside a long fault, e.g. its own direct reclaim of a few ms) its steps wait for
  the next access; they then all run, each at its own start, one after the other (catching
  up: they see the accessed bits and allocations up to that access, and their copy lines
  that should already have flowed go out at once).  Before, each such stop ran one step
  starting at the access, so kswapd lost the stretch: on ``98_demotion_bind_pressure`` in
  time kswapd's share of the demotions was 0.619 (15872 / 9785), catching up 0.629 (16128 /
  9497), runtime 263.4 -> 260.4 ms.  Phases follow each other without a gap, so there is
  no other idle stretch in a run; at its end kswapd stops (what it would still reclaim,
  and its copy still in flight, are not simulated).
* **direct reclaim** (``__alloc_pages_direct_reclaim`` / ``try_to_free_pages``): an
  allocation that fails MIN (FAULT_OOM from the core) reclaims SWAP_CLUSTER_MAX pages from
  the nodes it may use, in the faulting thread's time, then retries the fault; the OOM
  killer runs only when reclaim freed nothing (``should_reclaim_retry`` as vmscan.py has
  it).  The thread pays ``max(fault_ns, scanned x SCAN_NS + reclaimed x STEAL_NS)`` and the
  demoted pages' copy -- their lines read from the source node, then written to the target,
  each an ordinary request through its miss slots, the path of a NUMA-balancing migration
  (:mod:`numasim.machine.numab_clock`) -- before its fault is retried.  When one reclaim
  moves pages to more than one target (more than two tiers), the copy is charged to the
  target that got most of them (the line count is exact).
* **copy traffic of kswapd**: each demoted 4 KiB page (or THP: 512 x) moves its lines
  read from the source node and written to the target, spread evenly over the step's span,
  on the routes of the CPU node of the thread that ran the step: posted requests in the exact
  engine (they occupy the controllers and links, nobody waits for them), lines counted in
  the fast engine's kernel row of that node (a weave row of its own after the CPUs': every
  CPU's wait sees them, the thread that ran the step too, as in the exact engine's queues;
  counted in that thread's row they were its own lines, which the weave lets nobody wait
  behind but the others).
* **swap-out** costs ``STEAL_NS`` of the reclaimer's CPU and no memory traffic: the device's
  DMA read of the page and the write to the device are not modelled (a documented
  constant, not a measurement).
* **accessed bits**: every access an engine times sets one byte for its page row
  (``young[row] = 1``; one store in the hot loop, no sampling: that is what the hardware's
  accessed bit gives reclaim, one bit per scan interval).  Before every kswapd step and
  every direct reclaim the set bytes go to :meth:`numasim.mm.vmscan.Reclaim.mark_young`
  and are cleared, so a page touched since reclaim last looked at it is young (second
  chance, then activation) and a cold one is reclaimed -- demoted, when the node has a
  demotion target.  A kswapd step scans at most :data:`KSWAPD_SCAN` pages, so reclaim's
  look at the whole LRU is spread over simulated time and the accesses in between count.

The costs.  :data:`SCAN_NS` (100 ns a page scanned: the LRU isolation and the
``folio_referenced`` rmap walk of one mapping; chosen) and :data:`STEAL_NS` (8 us a page
reclaimed: unmap, TLB flush, the new page's allocation and remap, the copy's CPU side;
the copy's lines are traffic on top).  STEAL_NS is fitted to the one recording that tells
how fast kswapd is against a faulting task, ``98_demotion_bind_pressure`` on 6.12: the
task outruns kswapd and the rest is direct reclaim.  Linux demoted 16767 pages by kswapd and
10365 by direct reclaim in one boot (kswapd's share 0.62), 12664 and 14776 in the other
(0.46).  The same scenario in time (fast engine, default CPU model: 100000 pages touched,
then 40000 under ``--membind=0`` on ``oracle-2node-tier`` with demotion on) gives, by
STEAL_NS: 2 us 20736 / 4896 (0.81), 4.5 us 17152 / 8473 (0.67), 6 us 16128 / 9433 (0.63),
8 us 15872 / 9785 (0.62) (measured before kswapd caught up on idle stretches; now 16128 /
9497, 0.63); the share saturates near 0.6, so the second boot is out of reach (its kswapd
was slower still).  8 us a page is 0.5 GB/s of 4 KiB demotion per kswapd, the
order of Linux's single-threaded 4 KiB page migration throughput (Yan et al., "Nimble Page
Management for Tiered Memory Systems", ASPLOS 2019: well under 1 GB/s for 4 KiB pages).
The region pages end on node 0 / node 1 as 74343 / 25657 (now 74375 / 25625) of the first
region and 40000 / 0 of the bound one, where Linux had 75931 / 24069 and 37704 / 2296.

Results: the ``reclaim`` section of a run (when anything was reclaimed): the vmstat
deltas, kswapd's and direct reclaim's CPU time, the costs, and per interval of simulated
time the pages demoted, stolen and swapped out and the kswapd time; the same per-interval
fields are added to the NUMA-balancing series when balancing is on.
"""

from __future__ import annotations

import math

import numpy as np

from numasim.machine import cpu as C
from numasim.mm import alloc_core as core
from numasim.mm import state as S
from numasim.mm.vmscan import SWAP_CLUSTER_MAX, reclaim

KSWAPD_POLL = 19
"""run_quantum's status: a kswapd was woken, or an awake one's next step is due, before
the thread's next access."""
SCAN_NS = 100.0
STEAL_NS = 8000.0
KSWAPD_BATCH = SWAP_CLUSTER_MAX * 8
"""Pages one kswapd step reclaims at most (the kernel state changes by this much at once)."""
KSWAPD_SCAN = 4 * KSWAPD_BATCH
"""Pages one kswapd step scans at most: a step that finds only young pages rotates them and
ends, and the accesses before the next step can make them young again (Linux's kswapd scans
a priority-sized share of the LRU per pass, not the whole list at once)."""
MAX_SAMPLES = 256
SAMPLE_MS0 = 4.0
FIELDS = ("pgdemote_kswapd", "pgdemote_direct", "pgsteal_kswapd", "pgsteal_direct",
          "pswpout", "kswapd_ms", "direct_reclaim_ms")
"""The per-interval fields of the series (pages; ms of CPU time for the last two)."""
VMSTAT = ("pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
          "pgdemote_kswapd", "pgdemote_direct", "pswpout")


class KswapdClock:
    """The timed run's reclaim (see the module); inert in a run without memory pressure."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.k = sim.k
        self.vm = reclaim(sim.k)
        self.vm.before_scan = self.feed  # also when the promotion path reclaims at once
        self.cyc_per_ns = float(sim.ghz)
        self.young = np.zeros(sim.ks.pages.shape[0], dtype=np.uint8)
        self.t_node: dict[int, float] = {}  # an awake kswapd: the cycle its next step starts
        self.busy: dict[int, float] = {}  # the cycle a kswapd's last step ends
        self.noprog: dict[int, int] = {}  # pages a kswapd scanned since it last freed any
        self.next_at = math.inf
        self.events: list[tuple[float, int, float]] = []  # (cycle, FIELDS index, value)
        self.vm0 = self._vmstat()
        self.jobs: list[list] = []  # the fast engine's copy lines still to count
        self.exact = None  # the exact engine, which posts the copy lines itself
        self.kswapd_ns = 0.0
        self.direct_ns = 0.0

    # ------------------------------------------------------------ accessed bits
    def young_arr(self) -> np.ndarray:
        """The accessed-bit bytes, one per page row (grown to the page array)."""
        n = self.sim.ks.pages.shape[0]
        if self.young.shape[0] < n:
            y = np.zeros(n, dtype=np.uint8)
            y[: self.young.shape[0]] = self.young
            self.young = y
        return self.young

    def accessed(self, pg: int) -> None:
        """The exact engine's access to page row ``pg`` (negative: no page)."""
        if pg >= 0:
            y = self.young if pg < self.young.shape[0] else self.young_arr()
            y[pg] = 1

    def feed(self) -> None:
        """The accesses since reclaim last looked become PTE accessed bits."""
        pgs = np.flatnonzero(self.young)
        if pgs.size:
            self.vm.mark_young(pgs)
            self.young[pgs] = 0

    # ------------------------------------------------------------ kswapd
    def pending(self, ti: float) -> bool:
        """Must a thread stop for kswapd before an access issued at ``ti``?"""
        return bool(self.sim.ks.sysvars[S.SV_KSWAPD_WAKE]) or ti >= self.next_at

    def _wake(self, ti: float) -> None:
        vm = self.vm
        if self.sim.ks.sysvars[S.SV_KSWAPD_WAKE]:
            vm.wakeup_kswapd()
        for nid in vm.awake:
            if nid not in self.t_node:  # a kswapd still busy with its last step starts later
                self.t_node[nid] = max(ti, self.busy.get(nid, ti))

    def _set_next(self) -> None:
        for nid in [n for n in self.t_node if n not in self.vm.awake]:
            del self.t_node[nid]
        self.next_at = min(self.t_node.values(), default=math.inf)
        self.sim.numab.nbf[:, _nbf_kswapd()] = self.next_at

    def poll(self, c: int, ti: float) -> bool:
        """Thread c stopped before an access at ``ti``: wake the kswapds asked for, and run
        every awake kswapd's steps that start by ``ti``.  True if pages moved."""
        self._wake(ti)
        moved = False
        for nid in sorted(self.t_node):
            while nid in self.vm.awake and self.t_node[nid] <= ti:
                moved |= self._step(c, nid, ti)
                self._wake(ti)
        self._set_next()
        return moved

    def _step(self, c: int, nid: int, ti: float) -> bool:
        """One kswapd step on node nid: reclaim KSWAPD_BATCH pages (or to balanced)."""
        vm = self.vm
        if vm.pgdat_balanced(nid):
            vm.awake.discard(nid)
            return False
        self.feed()
        vm.task = int(self.sim.tasks[c])
        cpus = [x for x, n in self.k.machine.cpu_to_node.items() if n == nid]
        vm._kswapd_cpu = min(cpus) if cpus else -1
        before = self._vmstat()
        vm.moves = []
        try:
            got = vm.shrink_node(nid, KSWAPD_BATCH, "kswapd", max_scan=KSWAPD_SCAN)
        finally:
            moves, vm.moves = vm.moves, None
        d = self._delta(before)
        # no progress: kswapd gives up once it scanned the LRU twice over for nothing
        self.noprog[nid] = 0 if got else self.noprog.get(nid, 0) + d["pgscan_kswapd"]
        hopeless = not got and (not d["pgscan_kswapd"] or self.noprog[nid]
                                > 2 * vm.lru_pages(nid).size + SWAP_CLUSTER_MAX)
        ns = d["pgscan_kswapd"] * SCAN_NS + got * STEAL_NS
        start = self.t_node[nid]  # its own start, though the stop that runs it comes later
        span = max(1.0, ns * self.cyc_per_ns)
        self.t_node[nid] = self.busy[nid] = start + span
        self.kswapd_ns += ns
        self._record(start, d, kswapd_ns=ns)
        self._traffic(c, start, span, moves)
        if hopeless or vm.pgdat_balanced(nid) or not vm.can_reclaim_anon(nid):
            vm.awake.discard(nid)
            self.noprog.pop(nid, None)
        return bool(moves)

    def _traffic(self, c: int, start: float, span: float, moves) -> None:
        groups = _groups(moves, self.sim.lpp)
        if not groups:
            return
        if self.exact is not None:
            self.exact.kswapd_lines(c, start, span, groups)
        else:  # the fast engine's kernel row of c's node (fast.py: after the CPUs' rows)
            row = self.sim.nthreads + int(self.sim.ci[c, C.CI_NODE])
            for (src, dst), n in groups.items():
                self.jobs.append([row, src, dst, n, start, span, 0, 0])

    def issue_fast(self, pbin: np.ndarray, q_start: float, binw: float, nbins: int,
                   kinds: tuple[int, int]) -> None:
        """The fast engine's quantum boundary: kswapd's copy lines that issued in this
        quantum into ``pbin`` (reads on the source, writes on the target), by time bin, in
        the kernel row of the node whose CPU ran the step (not a CPU's row: the weave
        counts no CPU's own lines as traffic it waits behind, and kswapd's copy is nobody's
        own); lines of a stretch fast-forward skipped go to the first bin."""
        if not self.jobs:
            return
        edges = q_start + np.arange(1, nbins + 1) * binw
        edges[-1] = q_start + nbins * binw
        keep = []
        for job in self.jobs:
            row, src, dst, n, start, span, rd, wr = job
            x = (edges - start) * (n / span)
            up_r = np.clip(np.ceil(x), 0, n).astype(np.int64)
            up_w = np.clip(np.ceil(x - 0.5), 0, n).astype(np.int64)
            for node, kind, up, done in ((src, kinds[0], up_r, rd), (dst, kinds[1], up_w, wr)):
                cnt = np.diff(np.concatenate(([done], np.maximum(up, done))))
                pbin[row, node, kind, :nbins] += cnt
            job[6], job[7] = max(rd, int(up_r[-1])), max(wr, int(up_w[-1]))
            if job[6] < n or job[7] < n:
                keep.append(job)
        self.jobs = keep

    # ------------------------------------------------------------ direct reclaim
    def direct(self, c: int, ti: float) -> tuple[int, int, int, float] | None:
        """Thread c's allocation failed MIN at ``ti``: direct reclaim.  Returns what the
        thread pays -- (source node, target node, lines to copy, CPU cycles) -- or None when
        nothing could be freed (the OOM killer's turn)."""
        vm = self.vm
        ks = self.sim.ks
        fres = self.sim.fault_res
        mask = None
        if fres[core.R_MASK_KIND] == core.MASK_POLICY:
            mask = set(ks.policy_nodes(int(fres[core.R_MASK_IDX])))
        self.feed()
        before = self._vmstat()
        vm.moves = []
        try:
            ok = vm.direct_reclaim(int(self.sim.tasks[c]), mask)
        finally:
            moves, vm.moves = vm.moves, None
        self._wake(ti)  # direct_reclaim woke them: they start now (or when free)
        self._set_next()
        if not ok:
            return None
        vm._no_progress = 0  # did_some_progress: the retries start over
        d = self._delta(before)
        ns = d["pgscan_direct"] * SCAN_NS + d["pgsteal_direct"] * STEAL_NS
        self.direct_ns += ns
        self._record(ti, d, direct_ns=ns)
        groups = _groups(moves, self.sim.lpp)
        node = int(self.sim.ci[c, C.CI_NODE])  # no copy: the thread's own node
        if not groups:
            return node, node, 0, ns * self.cyc_per_ns
        (src, dst), _n = max(groups.items(), key=lambda kv: (kv[1], -kv[0][1]))
        return src, dst, int(sum(groups.values())), ns * self.cyc_per_ns

    def direct_fast(self, c: int) -> bool:
        """The fast engine's FAULT_OOM: direct reclaim at the access's cycle; its cost is
        left in nbi/nbf as a pending fault (run_quantum charges it when it resumes, then
        retries the page fault).  False: nothing reclaimed."""
        from numasim.machine import numab_clock as NC

        nb = self.sim.numab
        got = self.direct(c, float(nb.nbf[c, NC.NBF_AT]))
        if got is None:
            return False
        src, dst, lines, cyc = got
        fault = float(self.sim.pf[C.PF_FAULT])
        nb.nbi[c] = (1, src, dst, lines, 0)
        nb.nbf[c, NC.NBF_EXTRA] = max(0.0, cyc - fault)
        self.sim.st[c, C.ST_FAULTS] -= 1  # part of the page fault it retries, not a fault
        return True

    # ------------------------------------------------------------ other reclaimers
    def around(self, c: int, ti: float):
        """Context for kernel code that may run kswapd synchronously (the promotion path's
        ``wake_target_kswapd``): its demotions are recorded and their traffic issued."""
        return _Around(self, c, ti)

    # ------------------------------------------------------------ results
    def _vmstat(self) -> dict[str, int]:
        c = self.vm.counters
        out = {key: int(c[key]) for key in VMSTAT if key in c}
        out["pswpout"] = int(self.sim.ks.vmstat[S.VM_SWPOUT])
        return out

    def _delta(self, before: dict[str, int]) -> dict[str, int]:
        now = self._vmstat()
        return {key: now[key] - before[key] for key in now}

    def _record(self, cycle: float, d: dict[str, int], kswapd_ns: float = 0.0,
                direct_ns: float = 0.0) -> None:
        for i, key in enumerate(FIELDS[:5]):
            if d.get(key):
                self.events.append((cycle, i, float(d[key])))
        if kswapd_ns:
            self.events.append((cycle, 5, kswapd_ns / 1e6))
        if direct_ns:
            self.events.append((cycle, 6, direct_ns / 1e6))

    def active(self) -> bool:
        """Did anything reclaim during the run?"""
        return bool(self.events) or any(self._delta(self.vm0).values())

    def intervals(self, end_cycles: float, width_ms: float) -> list[dict]:
        """Per interval of ``width_ms``: the FIELDS (see the module)."""
        cyc_ms = self.cyc_per_ns * 1e6
        n = int(end_cycles / cyc_ms / width_ms) + 1 if end_cycles > 0 else 0
        acc = np.zeros((max(n, 1), len(FIELDS)))
        for cyc, i, v in self.events:
            acc[min(int(cyc / cyc_ms / width_ms), acc.shape[0] - 1), i] += v
        rows = []
        for b in range(n):
            row = {"t_ms": round((b + 1) * width_ms, 6)}
            for i, key in enumerate(FIELDS):
                row[key] = round(float(acc[b, i]), 6) if i >= 5 else int(acc[b, i])
            rows.append(row)
        return rows

    def series(self, end_cycles: float) -> dict:
        """The run's ``reclaim`` section."""
        width = SAMPLE_MS0
        while end_cycles / (self.cyc_per_ns * 1e6) / width >= MAX_SAMPLES:
            width *= 2
        return {"vmstat": self._delta(self.vm0),
                "kswapd_cpu_ms": round(self.kswapd_ns / 1e6, 6),
                "direct_reclaim_ms": round(self.direct_ns / 1e6, 6),
                "costs": {"scan_ns": SCAN_NS, "steal_ns": STEAL_NS,
                          "kswapd_batch": KSWAPD_BATCH},
                "interval_ms": width, "intervals": self.intervals(end_cycles, width)}


class _Around:
    def __init__(self, clock: KswapdClock, c: int, ti: float) -> None:
        self.clock, self.c, self.ti = clock, c, ti

    def __enter__(self):
        self.before = self.clock._vmstat()
        self.clock.vm.moves = []
        return self

    def __exit__(self, *exc) -> None:
        ck = self.clock
        moves, ck.vm.moves = ck.vm.moves, None
        d = ck._delta(self.before)
        if not any(d.values()):
            return
        ns = d["pgscan_kswapd"] * SCAN_NS + d["pgsteal_kswapd"] * STEAL_NS
        ck.kswapd_ns += ns
        ck._record(self.ti, d, kswapd_ns=ns)
        ck._traffic(self.c, self.ti, max(1.0, ns * ck.cyc_per_ns), moves)


def _groups(moves, lpp: int) -> dict[tuple[int, int], int]:
    """Lines to copy per (source, target) of the pages reclaim moved (swap: none)."""
    out: dict[tuple[int, int], int] = {}
    for src, dst, order in moves or ():
        if dst >= 0:
            out[(src, dst)] = out.get((src, dst), 0) + (lpp << order)
    return out


def _nbf_kswapd() -> int:
    from numasim.machine.numab_clock import NBF_KSWAPD

    return NBF_KSWAPD
