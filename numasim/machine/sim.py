"""One run in time: a built program (:mod:`numasim.wiring`), the machine's resources, an
engine.

:class:`Simulation` takes a :class:`~numasim.wiring.Program` -- the kernel with the process
already set up as Linux would start it, threads placed, phases compiled -- adds the machine's
resources and the state and statistics arrays, then runs the phases with one engine
(:mod:`numasim.machine.engine`) inside a SimPy environment.  Both engines write the same
arrays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy

from numasim.errors import ConfigError, NumasimError
from numasim.machine import cpu as C
from numasim.machine.resources import Resources, build_resources
from numasim.mm import state as S
from numasim.mm.alloc_core import fault_res
from numasim.workloads import gen as G

if TYPE_CHECKING:
    from numasim.wiring import Program
    from numasim.workloads.program import PhaseProgram

TL_BUCKETS = 4096
TL_WIDTH_NS = 1000.0  # initial timeline bucket; doubled whenever the run outgrows the array


class OutOfMemory(NumasimError):
    """The simulated process was killed by the OOM killer."""


@dataclass
class PhaseRecord:
    name: str
    kernel: str
    measured: bool
    start: float
    end: float
    accesses: int = 0
    bytes: float = 0.0
    mem: float = 0.0
    lat_sum: float = 0.0
    local: float = 0.0  # memory requests served by the requesting CPU's node
    res_lines: list[float] = field(default_factory=list)
    thread_cycles: list[float] = field(default_factory=list)
    numab: tuple[int, int] | None = None  # NUMA balancing on: (hinting faults, pages migrated)


class Simulation:
    """Everything of one run that both engines share: the built program (kernel, threads,
    compiled phases; see :mod:`numasim.wiring`), the machine's resources, and the state and
    statistics arrays the engines write (:class:`~numasim.machine.engine.SimulationView`)."""

    def __init__(self, program: Program, *, progress: bool = False) -> None:
        spec = program.spec
        m = spec.machine
        self.program = program
        self.machine = m
        self.wl = spec.workload
        self.numactl = list(spec.numactl)
        self.seed = spec.seed
        self.rng = program.rng
        self.params = spec.cpu
        self.eparams = spec.engine_params
        self.progress = progress
        self.notes: list[str] = []
        self.k = program.kernel
        self.linux = spec.linux
        self.ks = self.k.ks
        self.res: Resources = build_resources(m)
        self.notes += self.res.notes
        self.line = program.line
        self.lpp = program.lpp
        self.lpp_shift = int(self.lpp).bit_length() - 1
        self.ghz = float(m.cpu_ghz)
        self.numastat0 = program.numastat0
        self.main = program.main
        self.notes += program.notes
        self.cpus = program.cpus
        self.nthreads = len(self.cpus)
        self.tasks = program.tasks
        self.regions = program.regions
        self.trace_arr = program.trace_arr
        self.programs = program.programs
        self.total_accesses = sum(p.accesses for p in self.programs)
        self._arrays()

    def _arrays(self) -> None:
        """The per-CPU state and statistics arrays (slot c = thread c)."""
        m = self.machine
        n = self.nthreads
        self.ci = np.zeros((n, C.CI_NCOLS), dtype=np.int64)
        for c in range(n):
            self.ci[c, C.CI_TASK] = self.tasks[c]
            self.ci[c, C.CI_NODE] = m.cpu_to_node[self.cpus[c]]
            self.ci[c, C.CI_THREAD] = c
            self.ci[c, C.CI_CPU] = self.cpus[c]
        self.cpu_nodes = np.ascontiguousarray(self.ci[:, C.CI_NODE])
        self.cs = np.zeros((n, C.CS_NCOLS))
        self.buf = np.zeros((n, C.BUF_LEN, G.B_NCOLS), dtype=np.int64)
        self.slots = np.zeros((n, self.params.slots))
        self.ts = np.zeros((n, G.TS_NCOLS), dtype=np.int64)
        self.rngs = np.array([int(x) for x in self.rng.integers(1, 1 << 63, size=n,
                                                                  dtype=np.uint64)],
                             dtype=np.uint64)
        self.st = np.zeros((n, C.ST_NCOLS))
        self.hist = np.zeros((n, C.HIST_BINS), dtype=np.int64)
        nr = m.nr_node_ids
        self.tl = np.zeros((TL_BUCKETS, nr))
        self.tl_width = TL_WIDTH_NS * self.ghz
        self.res_lines = np.zeros(self.res.count)  # lines carried (served), per resource
        self.pf = np.zeros(C.PF_NCOLS)
        self.pf[C.PF_HIT] = self.params.hit_ns * self.ghz
        self.pf[C.PF_FAULT] = self.params.fault_ns * self.ghz
        self.pf[C.PF_ZERO_GAP] = self.params.zero_gap_cycles
        self.pf[C.PF_TL_WIDTH] = self.tl_width
        self.pf[C.PF_LINE] = self.line
        self.pi = np.zeros(C.PI_NCOLS, dtype=np.int64)
        self.pi[C.PI_WRITE_ALLOCATE] = int(self.params.write_allocate)
        self.pi[C.PI_LPP_SHIFT] = self.lpp_shift
        self.pi[C.PI_MLP] = self.params.mlp
        self.pi[C.PI_PREFETCH] = int(self.params.prefetch != "off")
        if self.params.llc is not None:
            self.pi[C.PI_LLC] = 1
            self.pf[C.PF_LLC_HIT] = self.params.llc.hit_ns * self.ghz
            self.llc = C.make_llc(nr, self.params.llc.size, self.params.llc.ways, self.line)
        else:
            self.llc = C.no_llc()
        from numasim.machine.tlb import make_tlb

        self.tlb = make_tlb(n, nr, self.params.tlb)  # per-CPU TLBs (numasim.machine.tlb)
        self.phases: list[PhaseRecord] = []
        self.thread_cycles = np.zeros(n)
        self.fault_res = fault_res(self.ks.nodeinfo.shape[0])
        from numasim.machine.numab_clock import NumabClock

        self.numab = NumabClock(self)  # NUMA balancing on the run's clock (off: inert)
        from numasim.machine.kswapd_clock import KswapdClock

        self.kswapd = KswapdClock(self)  # reclaim on the run's clock (no pressure: inert)

    # ------------------------------------------------------------------ helpers
    def ensure_timeline(self, t: float) -> None:
        """Coarsen the timeline (merge bucket pairs) until time ``t`` fits."""
        while t >= (TL_BUCKETS - 1) * self.tl_width:
            half = TL_BUCKETS // 2
            merged = self.tl[0::2] + self.tl[1::2]
            self.tl[:half] = merged
            self.tl[half:] = 0.0
            self.tl_width *= 2
            self.pf[C.PF_TL_WIDTH] = self.tl_width

    def fault_status(self, status: int, c: int) -> None:
        """What Python does when the allocator core stops: grow arrays, or end the run."""
        if status == S.FAULT_NEED_ROOM:
            self.ks.ensure_pages(self.ks.pages.shape[0])
            return
        head = int(self.ci[c, C.CI_HEAD])
        r = int(self.buf[c, head, G.B_R])
        line = int(self.buf[c, head, G.B_LINE])
        if status == S.FAULT_OOM:
            name = next((m.name for m in self.regions.values() if m.rid == r), "?")
            raise OutOfMemory(
                f"the simulated process was killed by the OOM killer while thread {c} (CPU "
                f"{self.cpus[c]}) faulted in region {name!r}", field="regions",
                hint="the memory policy does not leave room for the workload: use smaller "
                     "regions or allow more nodes")
        raise NumasimError(f"thread {c} got {'SIGBUS' if status == S.FAULT_SIGBUS else 'SIGSEGV'}"
                           f" touching line {line} of region {r}",
                           field="trace", hint="the trace or workload touches memory outside "
                                               "its regions")

    def numab_status(self, status: int, c: int) -> None:
        """What Python does when run_quantum stops for NUMA balancing or THP: thread c's
        tick, the kernel's side of its hinting fault, or its page fault with THP on (the
        engine charges the faults when it resumes)."""
        from numasim.machine import numab_clock as NC

        if status == NC.NUMAB_TICK:
            self.numab.tick(c)
        elif status == NC.NUMAB_THP:
            head = int(self.ci[c, C.CI_HEAD])
            slot, vpn = self.numab.head_slot(c)
            self.numab.thp_fault(c, slot, vpn, int(self.buf[c, head, G.B_MODE]) == G.STORE,
                                 float(self.numab.nbf[c, NC.NBF_AT]))
            self.ks.ensure_pages(4096)
        else:
            slot, vpn = self.numab.head_slot(c)
            self.numab.hint(c, float(self.numab.nbf[c, NC.NBF_AT]), slot, vpn)

    def next_event_cycle(self, now: float) -> float | None:
        """The next event a fast-forward skip must not pass (NUMA balancing's scanner; see
        :meth:`numasim.machine.numab_clock.NumabClock.next_event`; an awake kswapd's next
        step, :mod:`numasim.machine.kswapd_clock`), or None."""
        ev = self.numab.next_event(now)
        ks = self.kswapd
        if ks.next_at != float("inf") or ks.jobs:
            nxt = now if ks.jobs else max(now, ks.next_at)
            ev = nxt if ev is None else min(ev, nxt)
        return ev

    def reset_clocks(self, t0: float, prog: PhaseProgram) -> list[int]:
        """Point every thread at its ops and start its clock: at ``t0`` plus its release
        skew (threads leave a barrier, or get created, a little apart; drawn from the run's
        seed).  The phase's ops become ``programs_ops``/``programs_opf`` here, with the
        threads' pointers into them: whatever reads a thread's position before the engine
        runs (NUMA balancing's phase start, the tiering hot set) reads the same program."""
        self.programs_ops, self.programs_opf = prog.ops, prog.opf
        active = []
        skew = self.params.start_skew_ns * self.ghz
        offsets = self.rng.random(self.nthreads) * skew if skew > 0 else \
            np.zeros(self.nthreads)
        for c in range(self.nthreads):
            first, end = prog.ranges[c]
            G.start_thread(self.ts, c, prog.ops, first, end)
            self.cs[c, :] = t0 + float(offsets[c])
            self.slots[c, :] = t0
            self.ci[c, C.CI_FINISHED] = 0
            self.ci[c, C.CI_HEAD] = 0
            self.ci[c, C.CI_COUNT] = 0
            self.ci[c, C.CI_ACTIVE] = int(first < end)
            if first < end:
                active.append(c)
        return active

    def apply_mbind_phase(self, pi: int) -> None:
        """An ``mbind`` phase: the phase's policy (parsed with the spec) on its regions."""
        from numasim.mm import syscalls as sc
        from numasim.mm.constants import MPOL_MF_MOVE
        from numasim.mm.nodemask import UserMask

        ph = self.wl.phases[pi]
        popts = self.program.spec.phase_policies[pi]
        for name in ph.regions or list(self.regions):
            mr = self.regions[name]
            npages = -(-mr.lines // self.lpp)
            try:
                sc.mbind(self.k, self.main, mr.vpn << 12, npages << 12, popts.mbind_mode(),
                         UserMask.of(popts.nodes), 1025, MPOL_MF_MOVE if ph.move else 0)
            except OSError as e:
                raise ConfigError(f"mbind failed: {e.strerror}", file=self.wl.file,
                                  field=f"phases[{pi}].policy") from None

    # ------------------------------------------------------------------ run
    def run(self, engine_name: str) -> Simulation:
        """Run every phase with the engine called ``engine_name`` (fast or exact)."""
        from numasim.machine.engine import engine_class

        factory = engine_class(engine_name)
        self.engine_name = engine_name
        self.env = simpy.Environment()
        engine = factory(self)
        self.bar = None
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total_accesses, unit="acc", unit_scale=True, delay=2.0,
                            leave=False, desc=f"{self.wl.name} ({engine_name})")
        t_host = time.perf_counter()
        done = self.env.process(self._main(engine))
        self.env.run(until=done)
        self.host_seconds = time.perf_counter() - t_host
        self.host_note = getattr(engine, "host_note", "")  # optional (machine.engine)
        if self.bar is not None:
            self.bar.close()
        self.end_cycles = max([p.end for p in self.phases], default=0.0)
        return self

    def _main(self, engine):
        t = 0.0
        for pi, (ph, prog) in enumerate(zip(self.wl.phases, self.programs, strict=True)):
            if ph.kernel == "mbind":
                self.apply_mbind_phase(pi)
                self.phases.append(PhaseRecord(ph.name, ph.kernel, False, t, t))
                continue
            before = self.st.sum(axis=0)
            lines0 = self.res_lines.copy()
            active = self.reset_clocks(t, prog)
            nb0 = (self.numab.hint_faults, self.numab.migrations)
            self.numab.start_phase(t, active)
            end = t
            if active:
                end = yield from engine.phase(prog, active, t)
            self.numab.end_phase(active)
            rec = PhaseRecord(ph.name, ph.kernel, ph.measured, t, end)
            if self.numab.on:
                rec.numab = (self.numab.hint_faults - nb0[0], self.numab.migrations - nb0[1])
            delta = self.st.sum(axis=0) - before
            rec.accesses = int(delta[C.ST_ACCESSES])
            rec.bytes = float(delta[C.ST_BYTES])
            rec.mem = float(delta[C.ST_MEM])
            rec.lat_sum = float(delta[C.ST_LAT_SUM])
            rec.local = float(delta[C.ST_LOCAL])
            rec.res_lines = [float(x) for x in self.res_lines - lines0]
            rec.thread_cycles = [float(self.cs[c, C.CS_LAST] - t) if c in active else 0.0
                                 for c in range(self.nthreads)]
            for c in active:
                self.thread_cycles[c] += self.cs[c, C.CS_LAST] - t
            self.phases.append(rec)
            t = end

    def progress_to(self) -> None:
        if self.bar is not None:
            self.bar.n = int(self.st[:, C.ST_ACCESSES].sum())
            self.bar.refresh()

    # ------------------------------------------------------------------ results
    def pages_per_node(self) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {}
        ks = self.ks
        for name, mr in self.regions.items():
            row = ks.regions[mr.rid]
            base, n = int(row[S.R_PT]), int(row[S.R_END] - row[S.R_START])
            pgs = ks.pt_page[base: base + n]
            pgs = pgs[pgs >= 0]
            nodes = ks.pages[pgs, S.PG_NODE]
            counts = np.bincount(nodes, minlength=self.machine.nr_node_ids)
            out[name] = {nid: int(counts[nid]) for nid in self.machine.node_ids}
        return out

    def numastat_delta(self) -> dict[int, dict[str, int]]:
        from numasim.mm.constants import NUMASTAT_NAMES

        d = self.ks.numastat - self.numastat0
        return {nid: dict(zip(NUMASTAT_NAMES, map(int, d[nid]), strict=True))
                for nid in self.machine.node_ids}
