"""The fast engine: bound and weave.

*Bound* (:mod:`numasim.machine.bound`): each CPU process runs one quantum of cycles in a
single numba call, timing every request as idle latency + its wait in the CPU's private
FIFO copy of each server on its route + the wait behind other CPUs estimated from the last
quantum.  *Weave* (:mod:`numasim.machine.weave`): at the quantum boundary the lines every
CPU moved, per time bin, become the next estimate of the wait behind others, per resource
and CPU.  This module drives the two from SimPy.

SimPy synchronises the CPUs at quantum boundaries and runs what is rare in Python: array
growth, the OOM killer, phase barriers.  The quantum is the accuracy knob: it starts at 2000
cycles at every phase (with a fresh estimate), doubles up to 2M cycles, and shortens when a
thread is about to finish so the others do not run on with contention that has gone.
"""

from __future__ import annotations

import numpy as np

from numasim.machine import cpu as C
from numasim.machine.ahead import RunAhead, host_threads
from numasim.machine.bound import P_NKINDS, P_READ, P_WB, P_WRITE, run_quantum
from numasim.machine.kswapd_clock import KSWAPD_POLL
from numasim.machine.mix import cpu_random, fast_service
from numasim.machine.numab_clock import NBF_AT, NUMAB_TICK
from numasim.machine.resources import KIND_MC, carried_lines
from numasim.machine.tlb import TLB_ON
from numasim.machine.weave import (
    concentration,
    estimate_waits,
    fluid_backlog,
    pairs_to_resources,
    route_waits,
)
from numasim.mm.state import FAULT_OK, FAULT_OOM
from numasim.workloads.gen import op_accesses

NBINS = 1024  # time bins per quantum for the load concentration
BIN_CYCLES = 1024  # at least this wide


class FastEngine:
    """Bound-weave over the shared :class:`~numasim.machine.sim.Simulation` arrays."""

    def __init__(self, sim) -> None:
        self.sim = sim
        n = sim.nthreads
        nres = sim.res.count
        nr = sim.machine.nr_node_ids
        # the weave's rows: one per CPU slot, then one per node for the kernel threads
        # (kswapd's copy lines, kswapd_clock.issue_fast): traffic that is nobody's own, so
        # the weave makes every CPU wait behind it, the CPU that ran the step too
        nk = n + nr
        self.row_nodes = np.concatenate((sim.cpu_nodes, np.arange(nr, dtype=np.int64)))
        self.st_rows = np.zeros((nk, sim.st.shape[1]))  # the kernel rows have no statistics
        self.cnt = np.zeros((nk, nres, 2))  # lines, weighted by hop cost (resources.py)
        self.pbin = np.zeros((nk, nr, P_NKINDS, NBINS), dtype=np.int64)
        self.kappa = np.ones(nres)
        self.sfree = np.zeros((n, nres))
        self.swait = np.zeros((nk, nres))
        self.pwait = np.zeros((nk, nr, P_NKINDS))
        cap = 1 << int(sim.params.slots + 2).bit_length()
        self.wbq = np.zeros((n, cap, 2))
        self.wres = np.zeros((nk, nres))
        self.rho_used = np.zeros(nres)
        self.backlog = np.zeros(nres)
        self.carry = np.zeros(nres)  # lines queued at the end of the last phase
        self.waits = np.zeros((nk, 2, nr))
        # a copy: a controller pricing the traffic mix stretches its own entry per quantum
        self.service = np.array(sim.res.service, dtype=np.float64, copy=True)
        self.base_service = self.service.copy()
        mc = sim.res.kinds == KIND_MC
        self.mc_node = np.where(mc, sim.res.ends[:, 1], -1).astype(np.int64)
        self.gk = np.ones((nk, nres))
        self.route_r = np.ascontiguousarray(sim.res.route_read)
        self.route_w = np.ascontiguousarray(sim.res.route_write)
        self.cost_r = np.ascontiguousarray(sim.res.cost_read)
        self.cost_w = np.ascontiguousarray(sim.res.cost_write)
        self.lat = np.ascontiguousarray(sim.res.latency)
        # controller models' extra-latency tables (numasim.memctrl; n = 0: a FIFO server)
        res = sim.res
        self.ctrl_n = np.ascontiguousarray(res.ctrl_n if len(res.ctrl_n) == nres
                                           else np.zeros(nres, dtype=np.int64))
        self.ctrl_u = np.ascontiguousarray(res.ctrl_u if len(res.ctrl_n) == nres
                                           else np.zeros((nres, 1)))
        self.ctrl_w = np.ascontiguousarray(res.ctrl_w if len(res.ctrl_n) == nres
                                           else np.zeros((nres, 1)))
        models = list(res.ctrl_models) if len(res.ctrl_models) == nres else []
        self.mix_models = [m if m is not None and m.mix_aware else None for m in models]
        self.mix_on = any(m is not None for m in self.mix_models)
        self.quanta = 0
        # ---- task placement (numab_clock): the lines a thread moved this quantum before it
        # changed node, and what they weigh on the resources from its old node
        self.moved_part = np.zeros((n, nr, P_NKINDS), dtype=np.int64)
        self.moved_cnt = np.zeros((n, nres, 2))
        sim.rehome = self.rehome
        # ---- the bound phase on several host threads (numasim.machine.ahead)
        self.ahead = RunAhead(host_threads(getattr(sim.eparams, "host_threads", None)))
        self.ahead_done = False  # this quantum ran ahead: the CPUs' turns find it done
        # ---- fast-forward hook (numasim.machine.fastforward; None: off, the default)
        ff = getattr(sim.eparams, "fast_forward", None)
        self.ff = None
        if ff is not None:
            from numasim.machine.fastforward import FastForwarder

            self.ff = FastForwarder(self, ff)

    def _args(self) -> None:
        """The argument bundles of run_quantum, rebuilt whenever the kernel's arrays may have
        been reallocated (they are the same objects otherwise)."""
        sim = self.sim
        self.args = (
            sim.ks.core_args(), sim.fault_res,
            (sim.ci, sim.cs, sim.slots, sim.buf, sim.programs_ops, sim.programs_opf, sim.ts,
             sim.rngs, sim.trace_arr, sim.st, sim.hist, sim.pf, sim.pi),
            (self.waits, self.lat, self.route_r, self.route_w, self.service, self.sfree,
             self.pwait, self.wbq, self.pbin, self.cost_r, self.cost_w),
            tuple(sim.llc),
            (sim.numab.prot, sim.numab.nbi, sim.numab.nbf,  # NUMA balancing (numab_clock)
             sim.kswapd.young_arr()),  # reclaim's accessed bits (kswapd_clock)
            sim.tlb)  # the CPUs' TLBs (numasim.machine.tlb)

    def rehome(self, c: int, old_node: int) -> None:
        """CPU slot c's thread moved off ``old_node`` (NUMA balancing's task placement):
        the lines it issued so far this quantum crossed the resources from there, not from
        its new node (the weave maps a CPU's lines through its node at the quantum's end)."""
        part = self.pbin[c].sum(axis=2) - self.moved_part[c]
        cnt = np.zeros((1, self.cnt.shape[1], 2))
        pairs_to_resources(part[None], np.zeros((1,) + part.shape), self.route_r,
                           self.route_w, self.cost_r, self.cost_w,
                           np.array([old_node], dtype=np.int64), cnt,
                           np.zeros((1, self.cnt.shape[1])))
        self.moved_cnt[c] += cnt[0]
        self.moved_part[c] += part

    def _rehomed(self) -> None:
        """The weave's counts of the quantum corrected for the threads that moved in it."""
        if not self.moved_part.any():
            return
        now = np.zeros_like(self.moved_cnt)
        pairs_to_resources(self.moved_part, np.zeros(self.moved_part.shape), self.route_r,
                           self.route_w, self.cost_r, self.cost_w, self.sim.cpu_nodes, now,
                           np.zeros(now.shape[:2]))
        self.cnt[: now.shape[0]] += self.moved_cnt - now
        self.moved_part[:] = 0
        self.moved_cnt[:] = 0

    def _quantum_end(self, q_start: float, q: float) -> tuple[float, float]:
        """(end, length) of the quantum that starts at ``q_start``: ``q`` cycles, or up to the
        next scheduler tick that may act (NUMA balancing's scan, khugepaged's pass), whichever
        comes first.  The ticks due at ``q_start`` run here, before any CPU does, in the
        one order both engines use (:meth:`~numasim.machine.numab_clock.NumabClock.run_ticks`:
        by tick cycle, then thread).  Inside a quantum the CPUs run one after the other: a
        scan there would be claimed by whichever CPU runs first and would come before
        faults other CPUs take earlier in time, so no tick that may scan falls inside one
        (the ticks that only add CPU time do, each run by its thread when it gets there).
        A run whose ticks never act keeps its quanta: the same numbers as without them."""
        clock = self.sim.numab
        if clock.ticking:
            clock.run_ticks(q_start)
            nxt = clock.next_acting_tick()
            if nxt < q_start + q:
                return nxt, nxt - q_start
        return q_start + q, q

    def _row_nodes(self) -> np.ndarray:
        """The node of each weave row: the CPUs' (task placement may have moved them), then
        the kernel rows' own."""
        n = self.sim.nthreads
        self.row_nodes[:n] = self.sim.cpu_nodes
        return self.row_nodes

    def _row_random(self) -> np.ndarray:
        """cpu_random per weave row; the kernel rows copy pages line by line (sequential).
        Without kernel lines only the CPUs' rows are priced (numpy's pairwise sums would
        group them differently with the zero rows: not a bit of a plain run may change)."""
        out = np.zeros(self.cnt.shape[0])
        out[: self.sim.nthreads] = cpu_random(self.sim)
        return out

    # one quantum of one CPU, with the Python side of faults
    def _run_cpu(self, c: int, t_end: float) -> None:
        sim = self.sim
        if self.ahead_done:  # _run_ahead ran it already
            return
        while True:
            st = run_quantum(*self.args, c, t_end, 0)
            if st == FAULT_OK:
                return
            if st == KSWAPD_POLL:  # reclaim: kswapd wakes or takes its next step
                sim.kswapd.poll(c, float(sim.numab.nbf[c, NBF_AT]))
            elif st >= NUMAB_TICK:  # NUMA balancing: a tick or a hinting fault
                sim.numab_status(st, c)
            elif st == FAULT_OOM and sim.kswapd.direct_fast(c):
                pass  # direct reclaim freed pages: charged, then the fault is retried
            else:
                sim.fault_status(st, c)
                sim.ks.ensure_pages(4096)
            self._args()

    @property
    def host_note(self) -> str:
        """The summary's word on the host threads (:mod:`numasim.machine.ahead`)."""
        a = self.ahead
        if a.threads < 2:
            return "bound phase on 1 host thread"
        return (f"bound phase on {a.threads} host threads: {a.done} of {self.quanta} quanta "
                f"run at once, {a.put_back} tried and run in order")

    def _ahead_arrays(self) -> list[np.ndarray]:
        """Every array a CPU's quantum writes when it takes no fault: its rows of these (and
        of its TLB, when TLBs are modelled: tags, entries, LRU clock, walk lines)."""
        sim = self.sim
        arrays = [sim.ci, sim.cs, sim.slots, sim.buf, sim.ts, sim.rngs, sim.st, sim.hist,
                  self.sfree, self.pwait, self.wbq, self.pbin[: sim.nthreads], sim.numab.nbi,
                  sim.numab.nbf, sim.kswapd.young_arr()]
        if sim.tlb[4][TLB_ON] != 0:
            arrays += list(sim.tlb[:4])
        return arrays

    def _run_ahead(self, active: list[int]) -> bool:
        """Every running CPU's quantum at once on the host's threads, kept only if none
        faulted or stopped (:mod:`numasim.machine.ahead`); not with an LLC modelled (its
        sets are shared by the CPUs)."""
        sim = self.sim
        if sim.pi[C.PI_LLC] != 0:
            return False
        running = [c for c in active if not sim.ci[c, C.CI_FINISHED]]
        args, t_end = self.args, self.t_end
        clock = sim.numab
        ticks: dict[int, list] = {c: [] for c in running}  # ticks passed, per CPU

        def pause(c: int, status: int) -> bool:  # a tick that only adds CPU time: go on
            if status != NUMAB_TICK or not clock.may_defer_tick(c, len(ticks[c])):
                return False
            ticks[c].append(clock.defer_tick(c))
            return True

        if not self.ahead.run(running, self._ahead_arrays(),
                              lambda c: run_quantum(*args, c, t_end, 1), pause):
            return False
        for c in running:  # the ticks as the CPUs' turns would have run them
            for at in ticks[c]:
                clock.tick(c, at)
        return True

    def _queue_ends(self) -> np.ndarray:
        """When each CPU's private copy of each server would be free, counting the posted
        write-backs still waiting in its ring (run_quantum serves them when its clock passes
        them); the arrays are not changed."""
        sim = self.sim
        ends = self.sfree.copy()
        qmask = self.wbq.shape[1] - 1
        for c in range(sim.nthreads):
            head, n = int(sim.ci[c, C.CI_WBH]), int(sim.ci[c, C.CI_WBN])
            cn = int(sim.cpu_nodes[c])
            for i in range(n):
                a, node = self.wbq[c, (head + i) & qmask]
                for x, w in zip(self.route_w[cn, int(node)], self.cost_w[cn, int(node)],
                                strict=True):
                    if x < 0:
                        break
                    a = max(a, ends[c, x]) + self.service[x] * w
                    ends[c, x] = a
        return ends

    def _timeline(self, used, q_start: float, binw: float) -> None:
        """Bytes per memory node and time bin of this quantum into the run's timeline."""
        sim = self.sim
        per_bin = used.sum(axis=(0, 2)).T * float(sim.line)  # [bin, node]
        times = q_start + (np.arange(per_bin.shape[0]) + 0.5) * binw
        sim.ensure_timeline(float(times[-1]))
        idx = np.minimum((times / sim.tl_width).astype(np.int64), sim.tl.shape[0] - 1)
        np.add.at(sim.tl, idx, per_bin)

    def _cpu_proc(self, c: int, first_tick):
        """A CPU: at each tick, run one quantum; stop when the thread has no more work."""
        sim = self.sim
        tick = first_tick
        while True:
            yield tick
            tick = self.tick  # the driver made the next tick before firing this one
            self._run_cpu(c, self.t_end)
            self.reported += 1
            if sim.ci[c, C.CI_FINISHED]:
                self.live -= 1
            if self.reported == self.expect:
                self.all_ran.succeed()
            if sim.ci[c, C.CI_FINISHED]:
                return

    def phase(self, prog, active: list[int], t0: float):
        sim = self.sim
        env = sim.env
        ep = sim.eparams
        q = float(ep.quantum or ep.quantum_min)
        self.ahead.phase_start()  # the host threads of the bound phase (machine.ahead)
        # a new phase is a new load: estimate it afresh (the first quantum is short)
        self.wres[:] = 0.0
        self.waits[:] = 0.0
        self.rho_used[:] = 0.0
        self.backlog[:] = 0.0
        self.kappa[:] = 1.0
        self.gk[:] = 1.0
        self.tick = env.event()
        self.live = len(active)
        act = np.zeros(self.cnt.shape[0], dtype=np.int64)  # the kernel rows: 0
        act[active] = 1
        procs = [env.process(self._cpu_proc(c, self.tick)) for c in active]
        q_start = t0
        # accesses each thread still has to do, to end quanta near the first finish
        remaining = np.zeros(sim.nthreads)
        for c in active:
            first, end = prog.ranges[c]
            remaining[c] = sum(op_accesses(prog.ops[k]) for k in range(first, end))
        acc_before = sim.st[:, C.ST_ACCESSES].copy()
        arrived = np.zeros(len(self.service))
        if self.ff is not None:  # fast-forward hook: a fresh window per phase
            self.ff.phase_start()
        while self.live > 0:
            self.t_end, qe = self._quantum_end(q_start, q)  # qe < q: a tick comes first
            nbins_used = max(1, min(NBINS, int(qe // BIN_CYCLES)))
            binw = qe / nbins_used
            sim.pf[C.PF_Q_START] = q_start
            sim.pf[C.PF_BIN_INV] = 1.0 / binw
            sim.pf[C.PF_NBINS] = nbins_used
            sim.ensure_timeline(self.t_end + qe)
            # room for the pages this quantum may fault (the core asks for more if not)
            sim.ks.ensure_pages(4096 * self.live)
            self._args()
            self.expect = self.live
            live_before = self.live
            self.reported = 0
            self.all_ran = env.event()
            self.ahead_done = self._run_ahead(active)
            old, self.tick = self.tick, env.event()
            old.succeed()
            yield self.all_ran
            self.ahead_done = False
            self.quanta += 1
            # kswapd's copy lines of this quantum (kswapd_clock; none without reclaim)
            sim.kswapd.issue_fast(self.pbin, q_start, binw, nbins_used, (P_READ, P_WRITE))
            nodes = self._row_nodes()
            # ---- weave: contention for the next quantum
            used = self.pbin[:, :, :, :nbins_used]
            pair = used.sum(axis=3)
            if self.mix_on:  # the mix each controller carried prices its next quantum
                rows = pair if pair[sim.nthreads:].any() else pair[: sim.nthreads]
                fast_service(self.mix_models, self.mc_node, self.base_service, rows,
                             self._row_random()[: rows.shape[0]], self.service,
                             (P_READ, P_WRITE, P_WB))
            self.cnt[:] = 0
            self.swait[:] = 0.0
            pairs_to_resources(pair, self.pwait, self.route_r, self.route_w, self.cost_r,
                               self.cost_w, nodes, self.cnt, self.swait)
            self._rehomed()
            self.pwait[:] = 0.0
            lines = self.cnt[:, :, 0].sum(axis=0)
            burst = 1.0 + 2.0 * self.swait.sum(axis=0) / np.maximum(lines, 1) / self.service
            if ep.concentration:
                concentration(self.pbin, self.route_r, self.cost_r, nodes, self.service,
                              self.mc_node, nbins_used, binw, burst, self.kappa, self.gk)
            fluid_backlog(self.pbin, self.route_r, self.route_w, self.cost_r, self.cost_w,
                          nodes, self.service, nbins_used, binw, self.backlog)
            self._timeline(used, q_start, binw)
            if self.ff is not None:  # fast-forward hook: this quantum's bytes per node
                q_bytes = used.sum(axis=(0, 2, 3)) * float(sim.line)
            used[:] = 0
            self.st_rows[: sim.nthreads] = sim.st
            estimate_waits(self.cnt, self.swait, self.st_rows, self.service, self.kappa, self.gk,
                           self.wres, self.rho_used, act, qe, sim.params.slots, self.backlog,
                           self.ctrl_n, self.ctrl_u, self.ctrl_w)
            self.swait[:] = 0.0
            route_waits(self.wres, self.route_r, self.route_w, nodes, self.waits)
            q_lines = self.cnt[:, :, 0].sum(axis=0)
            arrived += q_lines
            self.cnt[:] = 0
            sim.st[:, C.ST_Q_NREQ:C.ST_Q_STALL + 1] = 0.0
            for c in active:
                if sim.ci[c, C.CI_FINISHED]:
                    act[c] = 0
            cpus_act = act[: sim.nthreads]
            q_start = self.t_end
            q_ran = qe
            done_now = sim.st[:, C.ST_ACCESSES] - acc_before
            acc_before = sim.st[:, C.ST_ACCESSES].copy()
            remaining -= done_now
            if ep.quantum is None:
                # grow while the load is steady; start over when a thread finished (the
                # load changes); end a quantum about when the next thread should finish, so
                # the others do not run on with the contention it caused
                if self.live < live_before:
                    q = float(ep.quantum_min)
                else:
                    q = min(2 * q, float(ep.quantum_max))
                    rates = done_now[cpus_act == 1] / q_ran
                    if rates.size and (rates > 0).all():
                        first_end = float((remaining[cpus_act == 1] / rates).min())
                        q = max(float(ep.quantum_min), min(q, 0.5 * first_end))
            if self.ff is not None:  # fast-forward hook: skip a settled stretch
                d, adv = self.ff.after_quantum(q_ran, q, q_start, cpus_act, remaining, q_lines,
                                               q_bytes, arrived)
                q_start += d
                remaining -= adv
                acc_before += adv
            sim.progress_to()
        self.ahead.phase_end()
        yield simpy_all(env, procs)
        end = float(max(sim.cs[c, C.CS_LAST] for c in active))
        # the lines still queued at the end: the CPUs' own FIFOs (the fluid backlog of the
        # shared queue bounds what carried_lines lets through)
        tail = self._queue_ends().max(axis=0) - end
        served, self.carry = carried_lines(arrived, self.carry, tail, end - t0, self.service)
        sim.res_lines += served
        return end


def simpy_all(env, procs):
    import simpy

    return simpy.AllOf(env, procs)
