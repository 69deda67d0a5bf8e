"""The exact engine: SimPy advances request by request.

Every CPU is a SimPy process issuing its thread's accesses one at a time under the issue rule
of :mod:`numasim.machine.cpu`.  Every memory request walks its route resource by resource; a
resource is a single FIFO server (it serves one line per service time), and an arrival is
handled at its own event time, so queues are resolved in true event order.  A request's
latency is the idle latency of its (CPU node, memory node) pair plus the time it waited at
every server of its route, plus the extra latency a controller model adds at the
controller's recent utilisation (:mod:`numasim.memctrl`; ``fifo`` adds none), and a
controller whose model prices the traffic mix serves each line in its service time times the
factor of its recent window's mix (:mod:`numasim.machine.mix`).  A ``dram`` controller
(``exact: banks``, its default) is no FIFO server here: every request goes through its banks,
rows and queues (:mod:`numasim.memctrl.dram_online`, called every ``CL + tBURST`` DRAM clocks
while requests wait), a read continuing when its data is out, a write accepted at once.

This is the reference the fast engine is measured against: slow (a few SimPy events per
access), exact for the model.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from numasim.machine import cpu as C
from numasim.machine.mix import MixWindow, op_random
from numasim.machine.resources import carried_lines
from numasim.machine.tlb import TLB_ON, tlb_access
from numasim.memctrl import WINDOW_CYCLES
from numasim.mm import alloc_core as core
from numasim.mm.state import (
    FAULT_OK,
    FAULT_OOM,
    PG_KIND,
    PG_MAPCOUNT,
    PG_NODE,
    PGK_ANON,
    PT_ZERO,
    R_MM,
    R_PT,
    R_START,
    SV_THP,
    V_SHARED,
)
from numasim.workloads.gen import STORE, fill_batch


class _Req:
    """A request in flight: its route, where it is on it, the waits it met."""

    __slots__ = ("route", "k", "a", "wait", "t_issue", "idle", "done_cb", "c", "posted", "read",
                 "rand", "addr", "wr")

    def __init__(self, route, t_issue, idle, c, done_cb, posted=False, read=True,
                 rand=False, addr=-1, wr=False) -> None:
        self.route = route
        self.k = 0
        self.a = t_issue
        self.wait = 0.0
        self.t_issue = t_issue
        self.idle = idle
        self.c = c
        self.done_cb = done_cb
        self.posted = posted  # a write-back: counted when posted, not when served
        self.read = read and not posted  # a read (or RFO): the controller's read fraction
        self.rand = rand  # issued by a random-access loop (numasim.machine.mix.op_random)
        self.addr = addr  # physical byte address (a dram controller's banks); -1: unknown
        self.wr = wr  # data going to memory (a write route): a DRAM write


def _issue_at(env, state, m, t):
    """Wait until cycle ``t`` and a free miss slot (``state["out"] < m``, woken by the
    request that frees one); returns the cycle the request issues at."""
    if t > env.now:
        yield env.timeout(t - env.now)
    while state["out"] >= m:
        state["waiter"] = env.event()
        freed = yield state["waiter"]
        if freed > t:
            t = freed
    return t


HINT = 2  # _translate's "fault": a NUMA hinting fault (numab_clock)


def _translate(ks, pcache: dict, key: tuple, r: int, off: int, write: bool,
               prot: np.ndarray):
    """Where an access to page ``off`` of region r goes: (page row, its node, does it fault
    (HINT: a NUMA hinting fault), the page-table slot).  A page the access may use without
    a fault is remembered in ``pcache`` (until the next fault clears it)."""
    hit_pc = pcache.get(key)
    if hit_pc is not None and (hit_pc[2] or not write):
        return hit_pc[0], hit_pc[1], False, -1
    pslot = int(ks.regions[r, R_PT]) + off
    pg = int(ks.pt_page[pslot])
    if pg >= 0 and prot.shape[0] and core.pte_numa_hint(prot, ks.pt_page, pslot):
        return pg, -1, HINT, pslot
    node = -1
    fault = False
    wok = False
    if pg >= 0:
        node = int(ks.pages[pg, PG_NODE])
        wok = bool(ks.pages[pg, PG_KIND] == PGK_ANON and ks.pages[pg, PG_MAPCOUNT] <= 1) or \
            bool(ks.vmas[ks.pt_vma[pslot], V_SHARED] != 0)
        fault = write and not wok
    elif not (pg == PT_ZERO and not write):
        fault = True
    if not fault:
        pcache[key] = (pg, node, wok)
    return pg, node, fault, pslot


class ExactEngine:
    def __init__(self, sim) -> None:
        self.sim = sim
        self.env = sim.env
        res = sim.res
        self.free = [0.0] * res.count
        self.service = [float(s) for s in res.service]
        nr = sim.machine.nr_node_ids
        # a route is its hops: (resource, work in lines) -- 1 for a data line, a fraction
        # for a protocol message (numasim.machine.resources)
        self.routes_r = {(a, b): [(int(x), float(w)) for x, w in
                                  zip(res.route_read[a, b], res.cost_read[a, b], strict=True)
                                  if x >= 0]
                         for a in range(nr) for b in range(nr)}
        self.routes_w = {(a, b): [(int(x), float(w)) for x, w in
                                  zip(res.route_write[a, b], res.cost_write[a, b], strict=True)
                                  if x >= 0]
                         for a in range(nr) for b in range(nr)}
        self.lat = res.latency.tolist()
        self.res_lines = [0] * res.count  # lines that reached each server this phase
        self.carry = np.zeros(res.count)  # lines queued at the end of the last phase
        self.version = 0  # bumped by every fault: page tables changed
        # controller models adding latency (None: a plain FIFO server), and per resource the
        # utilisation and read utilisation over the recent window, at the time of the last line
        self.models = list(res.ctrl_models) or [None] * res.count
        self.util = [(0.0, 0.0, 0.0)] * res.count
        sim.kswapd.exact = self  # kswapd's copy lines are posted here (kswapd_lines)
        # dram controllers served request by request (memctrl.dram_online), else None
        self.online = [m.online() if m is not None and hasattr(m, "online") else None
                       for m in self.models]
        self.calls: list = [None] * res.count  # the pending scheduler call of each
        self.waiting: dict = {}  # read id -> (request, controller)
        self.next_id = 0
        self.synth = 0  # addresses for lines whose address the engine does not know
        self.extra_on = [m is not None and m.extra and o is None
                         for m, o in zip(self.models, self.online, strict=True)]
        # models pricing the traffic mix: their window and a cache of their factors
        self.mix = [MixWindow() if m is not None and m.mix_aware and o is None else None
                    for m, o in zip(self.models, self.online, strict=True)]
        self.factors: dict = {}

    # ---------------------------------------------------------------- queues
    def _start(self, req: _Req) -> None:
        """The request arrives at the next server of its route (now, at time req.a)."""
        env = self.env
        while True:
            if req.k >= len(req.route):
                done = req.t_issue + req.idle + req.wait
                ev = env.timeout(max(0.0, done - env.now))
                ev.callbacks.append(lambda _e, r=req, d=done: r.done_cb(r, d))
                return
            x, cost = req.route[req.k]
            if self.online[x] is not None:
                if not self._dram_arrive(x, req, cost):
                    return  # a read: it continues when the DRAM has served it
                continue
            sv = self.service[x] * cost
            start = req.a if req.a > self.free[x] else self.free[x]
            if self.mix[x] is not None:
                sv *= self._mix_factor(x, start, req)
            self.free[x] = start + sv
            req.wait += start - req.a
            self.res_lines[x] += cost
            extra = 0.0
            if self.extra_on[x]:
                extra = self._controller_extra(x, start, sv, req.read)
                req.wait += extra
            req.k += 1
            if req.k < len(req.route):
                req.a = start + sv + extra
                ev = env.timeout(max(0.0, req.a - env.now))
                ev.callbacks.append(lambda _e, r=req: self._start(r))
                return

    def _dram_arrive(self, x: int, req: _Req, cost: float) -> bool:
        """Hand a request to dram controller x.  A write is accepted (True: it goes on at
        once); a read waits for the scheduler (False)."""
        o = self.online[x]
        self.res_lines[x] += cost
        addr = req.addr
        if addr < 0:  # a line the engine has no address for (an LLC victim): spread them
            self.synth += 1
            addr = ((self.synth * 0x9E3779B97F4A7C15) & ((1 << 42) - 1)) & ~63
        if req.wr:
            o.arrive(req.a, addr, True, -1)
            req.k += 1
            if req.k < len(req.route):
                ev = self.env.timeout(max(0.0, req.a - self.env.now))
                ev.callbacks.append(lambda _e, r=req: self._start(r))
                self._dram_call(x)
                return False
            self._dram_call(x)
            return True
        rid = self.next_id
        self.next_id += 1
        self.waiting[rid] = (req, x)
        o.arrive(req.a, addr, False, rid)
        self._dram_call(x)
        return False

    def _dram_call(self, x: int) -> None:
        """Make sure dram controller x's scheduler runs at its next call time."""
        if self.calls[x] is None:
            t = self.online[x].next_call(self.env.now)
            ev = self.env.timeout(max(0.0, t - self.env.now))
            ev.callbacks.append(lambda _e, x=x, t=t: self._dram_run(x, t))
            self.calls[x] = ev

    def _dram_run(self, x: int, t: float) -> None:
        """Controller x's scheduler up to cycle t; the reads it issued go on from when their
        data is out (their wait: the DRAM latency beyond the idle one)."""
        self.calls[x] = None
        o = self.online[x]
        for rid, end in o.run_to(t):
            req, _ = self.waiting.pop(rid)
            extra = end - req.a
            req.wait += extra
            if end > self.free[x]:
                self.free[x] = end
            req.k += 1
            if req.k < len(req.route):
                req.a = max(req.a, end)
                ev = self.env.timeout(max(0.0, req.a - self.env.now))
                ev.callbacks.append(lambda _e, r=req: self._start(r))
            else:
                self._start(req)  # done: completes at t_issue + idle + wait
        if o.pending:
            self._dram_call(x)

    def _mix_factor(self, x: int, start: float, req: _Req) -> float:
        """Controller x's service-time factor for a line starting at ``start``: its model's
        factor for the mix of its recent window, this line included (read and random
        fractions on a 1/256 grid, so the factors can be cached)."""
        rf, rnd = self.mix[x].add(start, req.read, req.rand)
        key = (x, round(rf * 256.0), round(rnd * 256.0))
        f = self.factors.get(key)
        if f is None:
            f = self.models[x].service_factor(key[1] / 256.0, key[2] / 256.0)
            self.factors[key] = f
        return f

    def _controller_extra(self, x: int, start: float, s: float, read: bool) -> float:
        """The extra latency controller x's model gives a line it starts serving at
        ``start``: its utilisation is an exponential average of the lines it served
        (time constant :data:`~numasim.memctrl.WINDOW_CYCLES`; a server's start times only
        grow, so the average decays forwards); ``s``: the cycles this line occupies it."""
        u, rd, t_last = self.util[x]
        decay = math.exp(-(start - t_last) / WINDOW_CYCLES) if start > t_last else 1.0
        u = u * decay + s / WINDOW_CYCLES
        rd = rd * decay + (s / WINDOW_CYCLES if read else 0.0)
        self.util[x] = (u, rd, start if start > t_last else t_last)
        return self.models[x].extra_latency(min(u, 1.0), rd / u)

    def _posted(self, route, t: float, c: int, now: bool = False, rand: bool = False,
                addr: int = -1, wr: bool = True) -> None:
        """A write-back: traffic at time t (``now``: t is the current event's time, whatever
        rounding made of env.now), nobody waits for it; ``rand``: from a random-access
        loop; ``addr``: the line's physical address (-1: unknown); ``wr``: False for a
        posted read (kswapd's copy source)."""
        req = _Req(route, t, 0.0, c, lambda r, d: None, posted=True, read=False, rand=rand,
                   addr=addr, wr=wr)
        if now or t <= self.env.now:
            self._start(req)
        else:
            ev = self.env.timeout(t - self.env.now)
            ev.callbacks.append(lambda _e, r=req: self._start(r))

    def kswapd_lines(self, c: int, start: float, span: float,
                     groups: dict[tuple[int, int], int]) -> None:
        """kswapd's copy (:mod:`numasim.machine.kswapd_clock`): per (source, target), its
        lines read from the source and written to the target, posted evenly over
        [start, start + span) on the routes of thread c's CPU node (nobody waits for them)."""
        sim = self.sim
        cn = int(sim.ci[c, C.CI_NODE])
        line_bytes = float(sim.pf[C.PF_LINE])
        for (src, dst), n in groups.items():
            step = span / n
            for i in range(n):
                for node, route, t in ((src, self.routes_r[(cn, src)], start + i * step),
                                       (dst, self.routes_w[(cn, dst)], start + (i + 0.5) * step)):
                    self._posted(route, t, c, wr=node == dst)
                    sim.ensure_timeline(t)
                    sim.tl[min(int(t / sim.tl_width), sim.tl.shape[0] - 1), node] += line_bytes

    # ---------------------------------------------------------------- phases
    def phase(self, prog, active: list[int], t0: float):
        sim = self.sim
        procs = [self.env.process(self._cpu(c, t0)) for c in active]
        yield simpy.AllOf(self.env, procs)
        end = float(max(sim.cs[c, C.CS_LAST] for c in active))
        # lines that reached a server this phase, less those still queued at its end
        tail = np.array(self.free) - end
        served, self.carry = carried_lines(np.array(self.res_lines, dtype=np.float64),
                                           self.carry, tail, end - t0, sim.res.service)
        sim.res_lines += served
        self.res_lines = [0] * len(self.res_lines)
        return end

    def _accesses(self, c: int, th: int):
        """Thread th's accesses, generated in batches by the same numba code the fast engine
        uses."""
        sim = self.sim
        batches = 0
        while True:
            n = fill_batch(sim.programs_ops, sim.programs_opf, sim.ts, sim.rngs, th,
                           sim.trace_arr, sim.buf, c)
            if n == 0:
                sim.ci[c, C.CI_FINISHED] = 1  # as run_quantum marks it: no more ticks
                return
            batches += 1
            if batches % 64 == 0:
                sim.progress_to()
            yield from sim.buf[c, :n].tolist()

    def _fault_in(self, c: int, t: int, r: int, off: int, line: int, mode: int,
                  write: bool, ti: float) -> list:
        """``handle_mm_fault`` for one page of region r at cycle ti; when the core stops,
        Python grows the page array and retries, reclaims for it (direct reclaim, then the
        kswapds it woke; :mod:`numasim.machine.kswapd_clock`) and retries, or the run ends
        (``sim.fault_status``).  Returns the direct reclaims' costs, to charge before the
        fault's own."""
        sim, ks = self.sim, self.sim.ks
        self.version += 1
        if ks.sysvars[SV_THP]:  # THP on: the kernel's own fault path (numab_clock.thp_fault)
            vpn = int(ks.regions[r, R_START]) + off
            lines = sim.numab.thp_fault(c, int(ks.regions[r, R_PT]) + off, vpn, write, ti)
            sim.numab.take(c)  # charged below as any fault: fault_ns, then the zeroing
            sim.fault_res[core.R_ALLOCATED] = lines >> int(sim.pi[C.PI_LPP_SHIFT])
            return []
        charges = []
        while True:
            ks.ensure_pages(64)
            status = core.handle_mm_fault_range(
                ks.core_args(), t, r, int(ks.regions[r, R_START]) + off, 1,
                int(write), core.OOM_MAY, sim.fault_res)
            if status == FAULT_OK:
                return charges
            if status == FAULT_OOM:
                got = sim.kswapd.direct(c, ti)
                if got is not None:
                    charges.append(got)
                    if sim.kswapd.pending(ti):
                        sim.kswapd.poll(c, ti)
                    continue
            sim.buf[c, 0, :3] = (r, line, mode)
            sim.ci[c, C.CI_HEAD] = 0
            sim.fault_status(status, c)

    def _zero_fill(self, state: dict, c: int, cn: int, node: int, nz: int, tz: float,
                   fend: float, zero_done, tl_add, routes=None, addr0: int = -1):
        """The fault's nz zeroed lines written to node from time tz, one issue slot each
        (they compete with every other request); returns when the last one landed, or fend
        if that is later.  ``routes``: the read routes for a migration's copy (its source
        lines), else the write routes; ``addr0``: the page's physical byte address (its
        lines follow; -1: unknown)."""
        env = self.env
        m = int(self.sim.pi[C.PI_MLP])
        zero_gap = float(self.sim.pf[C.PF_ZERO_GAP])
        route, zl = (routes or self.routes_w)[(cn, node)], self.lat[cn][node]
        zevents = []
        for k in range(nz):
            tz = yield from _issue_at(env, state, m, tz)
            ev = env.event()
            state["out"] += 1
            self._start(_Req(route, tz, zl, c, lambda rq, d, e=ev: zero_done(d, e),
                             read=False, addr=addr0 + 64 * k if addr0 >= 0 else -1,
                             wr=routes is None))
            tl_add(tz, node)
            zevents.append(ev)
            tz += zero_gap
        got = yield simpy.AllOf(env, zevents)
        for v in got.values():
            if v > fend:
                fend = v
        return fend

    def _numa_hint(self, state: dict, c: int, cn: int, ti: float, pslot: int, r: int,
                   off: int, plain_done, tl_add):
        """A hinting fault at ti (:mod:`numasim.machine.numab_clock`): the kernel handles it,
        then the CPU pays fault_ns (+ the TLB shootdown) and the migration's copy, the
        source's lines read, then the target's written; returns when it is over."""
        sim = self.sim
        sim.numab.hint(c, ti, pslot, int(sim.ks.regions[r, R_START]) + off)
        # a fault that moved the thread (task placement) is charged from its new CPU, as
        # the fast engine charges it when run_quantum resumes there
        cn = int(sim.ci[c, C.CI_NODE])
        return (yield from self._kernel_copy(state, c, cn, ti, plain_done, tl_add))

    def _kernel_copy(self, state: dict, c: int, cn: int, ti: float, plain_done, tl_add):
        """Thread c's pending kernel work (numab_clock's nbi/nbf: a hinting fault's
        migration, or khugepaged's collapse copy) at ti: fault_ns plus the extra cycles, the
        source's lines read, then the target's written; returns when it is over."""
        from numasim.machine.numab_clock import hint_cost

        sim = self.sim
        src, dst, lines, first = hint_cost(sim, sim.numab, c)
        tz = ti + first
        fend = tz
        if lines:
            fend = yield from self._zero_fill(state, c, cn, src, lines, tz, fend, plain_done,
                                              tl_add, routes=self.routes_r)
            fend = yield from self._zero_fill(state, c, cn, dst, lines, fend, fend,
                                              plain_done, tl_add)
        elif fend > self.env.now:
            yield self.env.timeout(fend - self.env.now)
        return fend

    def _data(self, dx: tuple, ti: float, pg: int, node: int, line: int, write: bool,
              rand: bool, ev, cn: int) -> None:
        """The access's data at cycle ``ti`` (now): the zero page, an LLC hit, or a request
        along its route.  ``dx``: the CPU slot and its process's completion callbacks."""
        c, plain_done, data_done, tl_add = dx
        sim = self.sim
        env = self.env
        st = sim.st[c]
        if pg == PT_ZERO:
            st[C.ST_HITS] += 1
            hit_cyc = float(sim.pf[C.PF_HIT])
            tev = env.timeout(hit_cyc)
            tev.callbacks.append(lambda _e, d=ti + hit_cyc, e=ev: plain_done(d, e))
            return
        lpp = 1 << int(sim.pi[C.PI_LPP_SHIFT])
        write_allocate = bool(sim.pi[C.PI_WRITE_ALLOCATE])
        hit = 0
        if sim.pi[C.PI_LLC] and (write_allocate or not write):
            tags, meta, clock = sim.llc
            hit, wbn = C.llc_access(tags, meta, clock, cn, C.llc_key(pg, line, lpp), write, node)
            if wbn >= 0:
                self._posted(self.routes_w[(cn, int(wbn))], ti, c, now=True, rand=rand)
                tl_add(ti, int(wbn))
                st[C.ST_WRITEBACKS] += 1
        if hit:
            st[C.ST_HITS] += 1
            llc_hit = float(sim.pf[C.PF_LLC_HIT])
            tev = env.timeout(llc_hit)
            tev.callbacks.append(lambda _e, d=ti + llc_hit, e=ev: plain_done(d, e))
        else:
            nt = write and not write_allocate
            route = self.routes_w[(cn, node)] if nt else self.routes_r[(cn, node)]
            self._start(_Req(route, ti, self.lat[cn][node], c,
                             lambda rq, d, n=node, w=write, e=ev, a=cn:
                             data_done(rq, d, n, w, e, a), read=not nt, rand=rand,
                             addr=(pg * lpp + (line & (lpp - 1))) * 64, wr=nt))
            tl_add(ti, node)

    def _walk(self, c: int, cn: int, ti: float, tpg: int, tline: int, tnode: int,
              rand: bool, tl_add, then) -> None:
        """A page walk's line load (line ``tline`` of page-table page ``tpg`` on node
        ``tnode``) issued now at ``ti``, as a read: an LLC hit, or a request along the read
        route; ``then(cycle)`` runs when its data is back (the access it serves)."""
        sim = self.sim
        st = sim.st[c]
        lpp = 1 << int(sim.pi[C.PI_LPP_SHIFT])
        if sim.pi[C.PI_LLC]:
            tags, meta, clock = sim.llc
            hit, wbn = C.llc_access(tags, meta, clock, cn, C.llc_key(tpg, tline, lpp), False,
                                    tnode)
            if wbn >= 0:
                self._posted(self.routes_w[(cn, int(wbn))], ti, c, now=True, rand=rand)
                tl_add(ti, int(wbn))
                st[C.ST_WRITEBACKS] += 1
            if hit:
                h = float(sim.pf[C.PF_LLC_HIT])
                st[C.ST_WALK_CYC] += h
                tev = self.env.timeout(h)
                tev.callbacks.append(lambda _e, d=ti + h: then(d))
                return

        def back(_rq, d: float) -> None:
            st[C.ST_WALK_CYC] += d - ti
            then(d)

        self._start(_Req(self.routes_r[(cn, tnode)], ti, self.lat[cn][tnode], c, back,
                         read=True, rand=rand, addr=(tpg * lpp + tline) * 64))
        tl_add(ti, tnode)

    def _direct_charge(self, state: dict, c: int, cn: int, ma: int, ti: float, src: int,
                       dst: int, lines: int, first: float, plain_done, tl_add):
        """A direct reclaim's cost in the faulting thread's time (as run_quantum charges a
        pending fault): ``first`` cycles, then the demoted pages' lines read from ``src``
        and written to ``dst``; returns the cycle the retried fault starts at."""
        tz = ti + first
        fend = tz
        if lines:
            fend = yield from self._zero_fill(state, c, cn, src, lines, tz, fend, plain_done,
                                              tl_add, routes=self.routes_r)
            fend = yield from self._zero_fill(state, c, cn, dst, lines, fend, fend,
                                              plain_done, tl_add)
        elif fend > self.env.now:
            yield self.env.timeout(fend - self.env.now)
        if fend > state["last"]:
            state["last"] = fend
        return (yield from _issue_at(self.env, state, ma, fend))

    def _page_fault(self, state: dict, cx: tuple, ax: tuple, ti: float, base: float,
                    pslot: int):
        """An ordinary fault of the access ``ax`` (region, page offset, line, mode, write)
        by the CPU of ``cx`` (slot, task, node, miss slots, completion callbacks): the
        allocator core, direct reclaim's charges, then the zeroing lines.  Returns (page,
        node, the cycle the access issues again)."""
        sim, env, ks = self.sim, self.env, self.sim.ks
        c, t, cn, ma, plain_done, tl_add = cx
        r, off, line, mode, write = ax
        st = sim.st[c]
        lpp = 1 << int(sim.pi[C.PI_LPP_SHIFT])
        fault_cyc = float(sim.pf[C.PF_FAULT])
        charges = self._fault_in(c, t, r, off, line, mode, write, ti)
        st[C.ST_STALL] += ti - base
        nz = int(sim.fault_res[core.R_ALLOCATED]) * lpp
        pg = int(ks.pt_page[pslot])
        node = int(ks.pages[pg, PG_NODE]) if pg >= 0 else -1
        t_re = ti
        for src, dst, nl, cyc in charges:  # direct reclaim, then the retried fault
            t_re = yield from self._direct_charge(state, c, cn, ma, t_re, src, dst, nl,
                                                  max(fault_cyc, cyc), plain_done, tl_add)
        tz = t_re + fault_cyc
        fend = tz
        if nz > 0:
            fend = yield from self._zero_fill(state, c, cn, node, nz, tz, fend, plain_done,
                                              tl_add, addr0=pg * lpp * 64 if pg >= 0 else -1)
            st[C.ST_ZERO_LINES] += nz
        elif fend > env.now:
            yield env.timeout(fend - env.now)
        st[C.ST_FAULTS] += 1
        st[C.ST_FAULT_CYCLES] += fend - ti
        if fend > state["last"]:
            state["last"] = fend
        ti = yield from _issue_at(env, state, ma, fend)
        return pg, node, ti

    def _charged(self, state: dict, c: int, ma: int, ti: float, base: float, work,
                 hint: bool):
        """A fault the kernel's Python side runs in the thread's time (``work``, a generator
        returning when its last line is back: a hinting fault's migration, khugepaged's
        collapse copy), counted as a fault; then the access issues again when a slot is
        free.  A hinting fault changed page tables (the page caches are stale) and may have
        moved the thread: its node is read again.  Returns (issue cycle, the CPU's node,
        or -1 when not read)."""
        st = self.sim.st[c]
        st[C.ST_STALL] += ti - base
        fend = yield from work
        cn = -1
        if hint:
            cn = int(self.sim.ci[c, C.CI_NODE])  # the fault may have moved the thread
            self.version += 1
        st[C.ST_FAULTS] += 1
        st[C.ST_FAULT_CYCLES] += fend - ti
        if fend > state["last"]:
            state["last"] = fend
        ti = yield from _issue_at(self.env, state, ma, fend)
        return ti, cn

    def _cpu(self, c: int, t0: float):
        sim = self.sim
        env = self.env
        ks = sim.ks
        st, hist = sim.st[c], sim.hist[c]
        ci = sim.ci
        t = int(ci[c, C.CI_TASK])
        cn = int(ci[c, C.CI_NODE])
        th = int(ci[c, C.CI_THREAD])
        m = int(sim.pi[C.PI_MLP])
        nslots = int(sim.slots.shape[1])  # l2_mlp with the stream prefetcher, else mlp
        prefetch_on = bool(sim.pi[C.PI_PREFETCH])
        lpp_shift = int(sim.pi[C.PI_LPP_SHIFT])
        write_allocate = bool(sim.pi[C.PI_WRITE_ALLOCATE])
        llc_on = bool(sim.pi[C.PI_LLC])
        line_bytes = float(sim.pf[C.PF_LINE])
        tl = sim.tl
        routes_w = self.routes_w
        state = {"out": 0, "waiter": None, "last": float(sim.cs[c, C.CS_LAST])}
        hist_bin = C.hist_bin

        ntl = tl.shape[0]

        def tl_add(tt: float, node: int) -> None:
            b = int(tt / sim.tl_width)
            if b >= ntl - 1:
                sim.ensure_timeline(tt)
                b = min(int(tt / sim.tl_width), ntl - 1)
            tl[b, node] += line_bytes

        def complete(done: float) -> None:
            state["out"] -= 1
            if done > state["last"]:
                state["last"] = done
            w = state["waiter"]
            if w is not None:
                state["waiter"] = None
                w.succeed(done)

        def data_done(req: _Req, done: float, node: int, write: bool, ev, cn: int) -> None:
            # cn: the CPU's node when the request issued (task placement may move it)
            latv = done - req.t_issue
            st[C.ST_MEM] += 1
            st[C.ST_LAT_SUM] += latv
            st[C.ST_WAIT_SUM] += req.wait
            if node == cn:
                st[C.ST_LOCAL] += 1
            hist[hist_bin(latv)] += 1
            if write and write_allocate and not llc_on:
                self._posted(routes_w[(cn, node)], done, c, now=True, rand=req.rand,
                             addr=req.addr)
                tl_add(done, node)
                st[C.ST_WRITEBACKS] += 1
            complete(done)
            ev.succeed(done)

        def plain_done(done: float, ev) -> None:
            complete(done)
            ev.succeed(done)

        tlb_on = bool(sim.tlb[4][TLB_ON])
        dx = (c, plain_done, data_done, tl_add)  # what the access's data step needs
        issue = float(sim.cs[c, C.CS_ISSUE])
        prev_ev = None
        pcache: dict = {}  # (region, page) -> (page row, node, writable), until a fault
        seen_version = self.version
        clock = sim.numab  # NUMA balancing (numab_clock): ticks and hinting faults
        prot = clock.prot
        ksw = sim.kswapd  # reclaim (kswapd_clock): kswapd's steps, accessed bits
        rand_of: dict = {}  # op -> issued by a random-access loop (numasim.machine.mix)
        for r, line, mode, dep, gap, nb, op in self._accesses(c, th):
            base = issue + gap
            ti = base
            if dep and prev_ev is not None:
                dprev = yield prev_ev
                if dprev + gap > ti:
                    ti = dprev + gap
            # the stream prefetcher lets a sequential sweep use every slot (slot_offset)
            ma = m if nslots == m or C.slot_offset(sim.programs_ops, op, prefetch_on,
                                                    nslots - m, int(line_bytes)) else nslots
            ti = yield from _issue_at(env, state, ma, ti)
            # every thread's ticks up to now, in the order the fast engine runs them too
            if ti >= clock.t_next and clock.run_ticks(ti):
                self.version += 1  # PTEs were protected: page caches are stale
            cn = int(ci[c, C.CI_NODE])  # NUMA balancing's task placement may move the thread
            if ksw.pending(ti) and ksw.poll(c, ti):  # reclaim: kswapd moved pages
                self.version += 1
            if clock.nbi[c, 0]:  # khugepaged's collapse copy, charged to this thread
                ti, _ = yield from self._charged(
                    state, c, ma, ti, base,
                    self._kernel_copy(state, c, cn, ti, plain_done, tl_add), False)
                base = ti
            write = mode == STORE
            rand = rand_of.get(op)
            if rand is None:
                rand = rand_of[op] = op_random(sim.programs_ops, op, int(line_bytes))
            off = line >> lpp_shift
            key = (r, off)
            if self.version != seen_version:  # another thread's tick or fault, or ours
                pcache.clear()
                seen_version = self.version
                prot = clock.prot
            pg, node, fault, pslot = _translate(ks, pcache, key, r, off, write, prot)
            if fault == HINT:
                ti, cn = yield from self._charged(
                    state, c, ma, ti, base,
                    self._numa_hint(state, c, cn, ti, pslot, r, off, plain_done, tl_add),
                    True)
                prot = clock.prot
                base = ti
                pcache.clear()
                seen_version = self.version
                pg, node, fault, pslot = _translate(ks, pcache, key, r, off, write, prot)
            if fault:
                pg, node, ti = yield from self._page_fault(
                    state, (c, t, cn, ma, plain_done, tl_add), (r, off, line, mode, write),
                    ti, base, pslot)
                base = ti
            st[C.ST_STALL] += ti - base
            # ---- the access (and its page's accessed bit, for reclaim)
            ksw.accessed(pg)
            st[C.ST_ACCESSES] += 1
            st[C.ST_BYTES] += nb
            ev = env.event()
            state["out"] += 1
            tpg = -1
            if tlb_on:  # the TLB, and a page walk the access waits for (numasim.machine.tlb)
                tpg, tline, tnode = tlb_access(
                    sim.tlb, sim.st, c, int(ks.regions[r, R_MM]),
                    int(ks.regions[r, R_START]) + off, pg, ks.pages, ks.pgtables)
            if tpg >= 0:
                self._walk(c, cn, ti, int(tpg), int(tline), int(tnode), rand, tl_add,
                           lambda d, a=(pg, node, line, write, rand, ev, cn):
                           self._data(dx, d, *a))
            else:
                self._data(dx, ti, pg, node, line, write, rand, ev, cn)
            issue = ti
            prev_ev = ev
        # drain: the thread is done when its last request completes
        while state["out"] > 0:
            state["waiter"] = env.event()
            yield state["waiter"]
        sim.cs[c, C.CS_LAST] = state["last"]
        sim.cs[c, C.CS_ISSUE] = issue
