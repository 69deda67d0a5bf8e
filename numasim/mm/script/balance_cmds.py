"""Scenario commands for pages that move in time: ``spin``, ``vmstat``, ``vmstat_mark``,
``vmstat_delta`` (the oracle probe's commands, same arguments and output lines).

``spin OFF N MS [read|write]`` -- the access model.  The probe reads (or writes) one byte of
each page OFF..OFF+N-1 in order, again and again, for MS ms of CLOCK_MONOTONIC.  numasim
runs the task for MS ms of simulated time in scheduler ticks (4 ms, HZ=250): the first pass
faults in what is not present (as ``touch``), and in every tick the task touches the whole
range at least once, so a page the scanner made PROT_NONE takes its hinting fault in the
same tick.  Hinting faults and migrations cost no simulated time here (the timing engines
will charge them).  The task's CPU time is the time it spins; ``sleep MS`` moves the clock
without running anything.

``vmstat [KEY...]``, ``vmstat_mark [KEY...]``, ``vmstat_delta [KEY...]`` -- /proc/vmstat
counters by name (:mod:`numasim.mm.vmstat`), absolute or since the mark; without keys the
probe's default set.  A forked child inherits its parent's mark.
"""

from __future__ import annotations

import numpy as np

from numasim.mm.numa_balancing import numab
from numasim.mm.vmstat import VMSTAT_DEFAULT, vmstat_read

COMMANDS = ("spin", "vmstat", "vmstat_mark", "vmstat_delta")
PROBE_COW_PAGES = 11


def parse(ctx, line) -> None:
    """Arguments of the commands above (``ctx`` is the parser context of :mod:`.lang`)."""
    w = line.words
    a = line.args
    if w[0] == "spin":
        usage = "spin OFF N MS [read|write]"
        if len(w) < 4:
            raise ctx.fail("missing arguments", f"usage: {usage}")
        a["off"], a["n"] = ctx.num(w[1], "page offset"), ctx.num(w[2], "page count")
        a["ms"] = ctx.num(w[3], "milliseconds")
        a["mode"] = w[4] if len(w) > 4 else "read"
        if a["mode"] not in ("read", "write") or len(w) > 5:
            raise ctx.fail(f"unknown spin mode {a['mode']!r}", f"usage: {usage}")
        return
    a["keys"] = tuple(w[1:])


class BalanceCommands:
    """Mixed into :class:`~numasim.mm.script.runner.Runner`."""

    def _vm_marks(self) -> dict:
        if not hasattr(self, "_vm_mark_store"):
            self._vm_mark_store: dict[int, dict[str, int]] = {}
        return self._vm_mark_store

    def _vm_mark_of(self, proc) -> dict[str, int] | None:
        """The mark of proc, else of the parent it was forked from (a child gets a copy of
        its parent's memory; the parent is blocked in wait while the child runs)."""
        marks = self._vm_marks()
        p = proc
        while p is not None:
            if id(p) in marks:
                return marks[id(p)]
            parents = [q for q in self._proc_list if q.pid == p.parent_pid and q is not p]
            p = parents[-1] if parents and p.in_child else None
        return None

    def after_fork(self, child) -> None:
        """The probe's child writes a few pages of its own right after ``fork`` (stack,
        data: copy-on-write copies on the CPU it runs on).  With NUMA balancing on they are
        scanned and migrate like the scenario's pages: every recording of scenarios 81-83
        counts exactly PROBE_COW_PAGES (11) more migrations than the scenario's pages.
        They are modelled only while balancing is on, where the counters show them;
        otherwise the numastat tolerance covers them (check.check_numastat)."""
        if not numab(self.k).enabled:
            return
        img = self.image
        n = min(PROBE_COW_PAGES, img.stack_pages)
        self.access(child, img.stack_vpn + img.stack_pages - n, n, True)
        self._own_pages()[id(child)] = (img.stack_vpn + img.stack_pages - n, n)

    def _own_pages(self) -> dict:
        if not hasattr(self, "_own_store"):
            self._own_store: dict[int, tuple[int, int]] = {}
        return self._own_store

    def before_command(self, proc, line) -> None:
        """Commands that drain the per-CPU LRU batches on Linux: mbind with a move flag,
        migrate_pages and move_pages (``lru_add_drain_all``), munmap (this CPU)."""
        from numasim.mm import state as S
        from numasim.mm.constants import MPOL_MF_MOVE, MPOL_MF_MOVE_ALL

        c = line.cmd
        nb = numab(self.k)
        if c in ("move", "migrate") or (c in ("mbind", "mbind_raw") and
                                        line.args["pol"].flags & (MPOL_MF_MOVE
                                                                  | MPOL_MF_MOVE_ALL)):
            nb.lru_add_drain_all()
        elif c in ("munmap", "unmap"):
            nb.lru_add_drain(int(self.k.ks.tasks[proc.t, S.T_CPU]))

    def cmd_spin(self, proc, line, a: dict) -> None:
        r = self.curreg(proc)
        off, n, ms = a["off"], a["n"], a["ms"]
        if not self.check_range(r, off, n):
            return
        write = a["mode"] == "write"
        nb = numab(self.k)
        first = r.vpn + off
        self.access(proc, first, n, write)

        own = self._own_pages().get(id(proc))

        def tick() -> None:  # every page of the range, and the probe's own pages
            nb.hinting_faults(proc.t, first, n)
            if own is not None:
                nb.hinting_faults(proc.t, *own)

        nb.run(proc.t, max(ms, 0), tick)
        self.out(f"spun region={proc.cur} off={off} n={n} ms={ms} mode={a['mode']}",
                 {"op": "spin", "region": proc.cur, "off": off, "n": n, "ms": ms,
                  "mode": a["mode"]})

    def access(self, proc, vpn: int, n: int, write: bool) -> None:
        """One pass of accesses: hinting faults on PROT_NONE pages, then ordinary faults on
        pages not present; the pages the faults allocated join the CPU's LRU batch."""
        from numasim.mm import state as S

        k = self.k
        ks = k.ks
        nb = numab(k)
        nb.hinting_faults(proc.t, vpn, n)
        mm = k.task_mm(proc.t)
        spans = []
        for r in list(k.mms[mm].regions):
            rs, re_ = int(ks.regions[r, S.R_START]), int(ks.regions[r, S.R_END])
            a, b = max(vpn, rs), min(vpn + n, re_)
            if a < b:
                base = int(ks.regions[r, S.R_PT]) - rs
                spans.append((a, base + a, base + b, ks.pt_page[base + a: base + b].copy()))
        k.touch(proc.t, vpn, n, write=write)
        new = []
        for _a, lo, hi, old in sorted(spans):
            now = ks.pt_page[lo:hi]
            idx = np.flatnonzero((now >= 0) & (now != old))
            new.extend(zip((int(x) for x in now[idx]), (lo + int(i) for i in idx),
                           strict=True))
        if new:
            nb.lru_add(int(ks.tasks[proc.t, S.T_CPU]), new)

    def _vm_keys(self, a: dict) -> tuple[str, ...]:
        return a["keys"] or VMSTAT_DEFAULT

    def cmd_vmstat(self, proc, line, a: dict) -> None:
        vals = {key: vmstat_read(self.k, key) for key in self._vm_keys(a)}
        self.out("vmstat " + " ".join(f"{key}={v}" for key, v in vals.items()),
                 {"op": "vmstat", **vals})

    def cmd_vmstat_mark(self, proc, line, a: dict) -> None:
        self._vm_marks()[id(proc)] = {key: vmstat_read(self.k, key)
                                      for key in self._vm_keys(a)}
        self.out("vmstat_mark ok=1", {"op": "vmstat_mark"})

    def cmd_vmstat_delta(self, proc, line, a: dict) -> None:
        mark = self._vm_mark_of(proc)
        if not mark:
            self.error("vmstat_delta_without_mark")
            mark = {}
        vals = {}
        for key in self._vm_keys(a):
            v = vmstat_read(self.k, key)
            base = mark.get(key, -1)
            vals[key] = v - base if v >= 0 and base >= 0 else -1
        self.out("vmstat_delta " + " ".join(f"{key}={v}" for key, v in vals.items()),
                 {"op": "vmstat_delta", **vals})
