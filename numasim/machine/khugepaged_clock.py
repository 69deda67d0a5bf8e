"""khugepaged on a timed run's clock: its passes and what a collapse costs.  Both engines
reach it the same way, through :class:`numasim.machine.numab_clock.NumabClock`'s ticks.

The kernel side is :mod:`numasim.mm.khugepaged` (which ranges collapse, where the huge page
goes).  Here:

* **when**: the thread has no CPU of its own in numasim.  Its passes run at the scheduler
  ticks (HZ=250) of the phase's first thread (the ``leader`` of NumabClock), at the kernel
  clock of that tick: a pass due at ``next_run`` runs at the first such tick at or after it.
  The clock ticks for this even with NUMA balancing off (then a tick does nothing else).
  Between phases, or when that thread has finished, the thread does not run.
* **the cost**: a collapse copies the range's present 4 KiB pages into the new huge page
  (``__collapse_huge_page_copy``) after a TLB flush of the range (``pmdp_collapse_flush``).
  numasim issues that copy through the migration-copy path of the hinting faults: the lines
  of the pages are read from their node and written to the huge page's node, every line an
  ordinary request through the engines' resources, by the CPU whose tick ran the pass, which
  pays it as one fault (``fault_ns`` + :data:`~numasim.machine.numab_clock.TLB_SHOOTDOWN_NS`
  + the copy).  One collapse is charged per tick of that thread (the others wait their
  turn, in order: with Linux's knobs a pass collapses at most 8 ranges); a range whose pages
  came from several nodes is read from the node most of them came from.  Zeroing the empty
  PTEs' subpages is not charged.  Charging the application thread is a simplification (Linux runs
  the copy on khugepaged's CPU while the task keeps running, except on the range being
  collapsed): the traffic is right, the stall is an upper bound.
* **the result**: the JSON's ``khugepaged`` section (knobs, collapses, the counters, and
  each collapse's time, range and nodes).
"""

from __future__ import annotations

import math

from numasim.mm import state as S


class KhugepagedClock:
    """khugepaged in a timed run (see the module); :meth:`of` gives None when it cannot
    act (THP ``never``, no mm registered)."""

    def __init__(self, sim, kh) -> None:
        self.sim = sim
        self.kh = kh
        # the passes due before the run started ran then (registration woke the thread at
        # mmap time, before any page was touched); from now on passes run at ticks
        from numasim.mm.numa_balancing import numab

        kh.advance(float(numab(sim.k).now))
        kh.run_at_call = True
        self.log0 = len(kh.log)
        self.debt: list[tuple[int, int, int]] = []  # (source, target, pages) not yet charged
        self.charged = 0

    @classmethod
    def of(cls, sim) -> KhugepagedClock | None:
        kh = getattr(sim.k, "khugepaged", None)
        if kh is None or not kh.slots or int(sim.ks.sysvars[S.SV_THP]) == 0:
            return None
        return cls(sim, kh)

    def after_tick(self, clock, c: int, now_ms: float) -> bool:
        """The leader's tick at ``now_ms``: run the passes due; post the copies to thread
        c's pending fault when it has none.  True when page tables changed."""
        n0 = len(self.kh.log)
        self.kh.advance(now_ms)
        new = self.kh.log[n0:]
        for col in new:
            src = max(col.sources, key=lambda n: (col.sources[n], -n))
            self.debt.append((src, col.node, sum(col.sources.values())))
        if self.debt and clock.nbi[c, 0] == 0:  # NBI_PENDING: the thread has no fault due
            src, dst, pages = self.debt.pop(0)
            clock.nbi[c] = (1, src, dst, pages * self.sim.lpp, 0)
            clock.nbf[c, 1] = clock.tlb_cyc  # NBF_EXTRA: the flush of the collapsed range
            self.charged += 1
        return bool(new)

    def next_event(self, clock, now: float) -> float | None:
        """The cycle of the next pass (fast-forward must not skip it), or None."""
        if self.debt:
            return now
        nr = self.kh.next_run
        if nr is None:
            return None
        cyc = (nr - clock.ms0) * clock.cyc_per_ms
        return max(now, cyc) if math.isfinite(cyc) else None

    def report(self) -> dict:
        kh = self.kh
        log = kh.log[self.log0:]
        return {"knobs": dict(kh.knobs), "collapses": len(log),
                "pages_collapsed": kh.stats["pages_collapsed"],
                "full_scans": kh.stats["full_scans"],
                "vmstat": {e: int(v) for e, v in kh.events.items()},
                "copies_charged": self.charged,
                "log": [{"t_ms": round(x.ms, 6), "vpn": x.vpn, "node": x.node,
                         "sources": {int(n): int(p) for n, p in sorted(x.sources.items())}}
                        for x in log[:256]]}
