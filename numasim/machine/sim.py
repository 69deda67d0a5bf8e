"""One run: a simulated kernel, a process with its threads and regions, phases, an engine.

:class:`Simulation` sets the run up exactly as a program would start on Linux -- numactl's
system calls on the main task, threads created with ``clone(CLONE_VM)`` (they inherit the
task policy), regions ``mmap``-ed and ``mbind``-ed -- then runs the phases with one engine
inside a SimPy environment and gathers the raw statistics both engines write into the same
arrays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import simpy

from numasim.errors import ConfigError, NumasimError
from numasim.machine import cpu as C
from numasim.machine.params import CpuParams, EngineParams
from numasim.machine.resources import Resources, build_resources
from numasim.mm import state as S
from numasim.mm.kernel import Kernel
from numasim.topology.model import Machine
from numasim.workloads import gen as G
from numasim.workloads.model import Workload
from numasim.workloads.program import MappedRegion, PhaseProgram, compile_phase

TL_BUCKETS = 4096
TL_WIDTH_NS = 1000.0  # initial timeline bucket; doubled whenever the run outgrows the array


HOST_BYTES_PER_PAGE = 128  # numasim's own memory per simulated page: page row, page table
LOUD_SETUP_BYTES = 1 << 30  # a setup that needs more than this says so (it takes seconds)


def host_memory_available() -> int | None:
    """Bytes this process may still allocate: MemAvailable, capped by RLIMIT_AS (None
    where neither can be read)."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for ln in f:
                if ln.startswith("MemAvailable:"):
                    avail = int(ln.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm", encoding="ascii") as f:
                used = int(f.read().split()[0]) * 4096
            left = max(0, soft - used)
            avail = left if avail is None else min(avail, left)
    except (OSError, ValueError, ImportError):
        pass
    return avail


def check_host_memory(pages: int, file: str | None = None) -> None:
    """Refuse before it starts a run whose simulated memory this computer cannot hold
    (rather than sit silent for minutes and then run out)."""
    need = pages * HOST_BYTES_PER_PAGE
    avail = host_memory_available()
    if avail is not None and need > avail:
        raise ConfigError(
            f"the workload maps {pages * 4096 / 2**30:.4g} GiB of simulated memory; "
            f"numasim needs about {need / 1e9:.3g} GB of this computer's memory to hold its "
            f"pages and {avail / 1e9:.3g} GB is available", file=file, field="regions",
            hint="use smaller regions: a STREAM-like loop's bandwidth does not change once "
                 "its arrays are well beyond the caches")


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


class Simulation:
    """Everything of one run that both engines share."""

    def __init__(self, machine: Machine, workload: Workload, *, kernel: str = "6.12",
                 seed: int = 0, cpu: CpuParams | None = None,
                 engine_params: EngineParams | None = None,
                 weights: dict[int, int] | None = None, progress: bool = False) -> None:
        self.machine = machine
        self.wl = workload
        self.seed = int(seed)
        self.rng = np.random.Generator(np.random.PCG64(self.seed))
        self.params = cpu or CpuParams()
        self.params.check()
        self.eparams = engine_params or EngineParams()
        self.progress = progress
        self.notes: list[str] = []
        self.k = Kernel(machine, kernel)
        self.kernel_name = kernel
        self.ks = self.k.ks
        if weights:
            for nid, w in weights.items():
                if nid not in machine.node_ids:
                    raise ConfigError(f"node {nid} does not exist", field="weights",
                                      hint="nodes: " + ", ".join(map(str, machine.node_ids)))
                if not 1 <= int(w) <= 255:
                    raise ConfigError(f"weight {w} of node {nid} must be 1..255",
                                      field="weights")
                self.ks.nodeinfo[nid, S.N_WEIGHT] = int(w)
        self.res: Resources = build_resources(machine)
        self.notes += self.res.notes
        self.line = int(machine.cache_line)
        page = 4096
        if page % self.line:
            raise ConfigError(f"cache line {self.line} does not divide the page",
                              field="cache_line")
        self.lpp = page // self.line
        self.lpp_shift = int(self.lpp).bit_length() - 1
        self.ghz = float(machine.cpu_ghz)
        self.numastat0 = self.ks.numastat.copy()
        self._setup()

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        wl, k, m = self.wl, self.k, self.machine
        from numasim.mm.numactl import parse_numactl

        opts = parse_numactl(list(wl.numactl), m)
        if opts.command:
            raise ConfigError(f"unexpected argument {opts.command[0]!r} in the numactl options",
                              file=wl.file, field="numactl",
                              hint="give only options, e.g. --interleave=all --cpunodebind=0")
        if opts.show or opts.hardware or opts.version:
            raise ConfigError("--show, --hardware and --version do not run a workload",
                              file=wl.file, field="numactl")
        self.main = k.new_process(m.cpus[0])
        allowed = opts.apply(k, self.main)
        self.notes += opts.warnings
        self.trace = None
        trace_cpus: list[int] | None = None
        if wl.trace is not None:
            from numasim.workloads.trace import load_trace

            default_cpu = wl.trace.cpu if wl.trace.cpu is not None else sorted(allowed)[0]
            self.trace = load_trace(wl.trace.path, wl.trace.format, cpu=default_cpu,
                                    instructions=wl.trace.instructions)
            trace_cpus = sorted({int(c) for c in np.unique(self.trace.cpu)})
            bad = [c for c in trace_cpus if c not in m.cpu_to_node]
            if bad:
                raise ConfigError(f"the trace names CPU {bad[0]}, which {m.name} does not "
                                  "have", file=self.trace.file, field="cpu",
                                  hint=f"CPUs: 0-{max(m.cpus)}")
        from numasim.workloads.placement import place_threads

        if trace_cpus is not None:
            self.cpus = trace_cpus
        else:
            self.cpus = place_threads(m, wl.threads, wl.placement, allowed, wl.cpus,
                                      file=wl.file)
        self.nthreads = len(self.cpus)
        k.set_cpu(self.main, self.cpus[0])
        self.tasks = [self.main] + [k.new_thread(self.main, c) for c in self.cpus[1:]]
        # ---- memory
        self.regions: dict[str, MappedRegion] = {}
        trace_ops: list[np.ndarray | None] | None = None
        self.trace_arr = np.zeros((1, 3), dtype=np.int64)
        if self.trace is not None:
            trace_ops = self._map_trace()
        from numasim.mm import syscalls as sc
        from numasim.mm.nodemask import UserMask

        self._check_regions_fit()
        for i, reg in enumerate(wl.regions):
            npages = max(1, -(-reg.size // 4096))
            rid = k.mmap(self.main, npages, kind="anon" if reg.kind == "anon" else "shared")
            vpn = int(self.ks.regions[rid, S.R_START])
            lines = max(1, -(-reg.size // self.line))
            self.regions[reg.name] = MappedRegion(reg.name, rid, lines, vpn)
            if reg.policy:
                popts = parse_numactl(reg.policy.split(), m)
                if popts.policy is None or popts.cpunodebind is not None or \
                        popts.physcpubind is not None or popts.command:
                    raise ConfigError(f"region policy {reg.policy!r} must be exactly one "
                                      "numactl memory policy option", file=wl.file,
                                      field=f"regions[{i}].policy",
                                      hint="e.g. --interleave=all, --membind=1, --preferred=0,"
                                           " --localalloc, --weighted-interleave=0,1")
                try:
                    sc.mbind(k, self.main, vpn << 12, npages << 12, popts.policy,
                             UserMask.of(popts.nodes), 1025, 0)
                except OSError as e:
                    raise ConfigError(f"mbind with {reg.policy!r} failed: {e.strerror}",
                                      file=wl.file, field=f"regions[{i}].policy") from None
        # ---- programs
        self.programs: list[PhaseProgram] = []
        for pi, ph in enumerate(wl.phases):
            self.programs.append(compile_phase(wl, ph, pi, self.regions, self.nthreads,
                                               self.line, self.rng, trace_ops))
        self.total_accesses = sum(p.accesses for p in self.programs)
        # ---- per-CPU arrays (slot c = thread c)
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
        self.slots = np.zeros((n, self.params.mlp))
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
        if self.params.llc is not None:
            self.pi[C.PI_LLC] = 1
            self.pf[C.PF_LLC_HIT] = self.params.llc.hit_ns * self.ghz
            self.llc = C.make_llc(nr, self.params.llc.size, self.params.llc.ways, self.line)
        else:
            self.llc = C.no_llc()
        self.phases: list[PhaseRecord] = []
        self.thread_cycles = np.zeros(n)
        self.fault_res = np.zeros(8, dtype=np.int64)

    def _check_regions_fit(self) -> None:
        """Each region's mmap as Linux answers it (ENOMEM beyond RAM), then whether this
        computer can hold them all -- before any is mapped."""
        wl, ram = self.wl, self.ks.totalram_pages()
        for i, reg in enumerate(wl.regions):
            if not self.ks.vm_enough_memory(max(1, -(-reg.size // 4096))):
                raise ConfigError(
                    f"region '{reg.name}' of {reg.size} bytes is larger than the machine's "
                    f"memory ({ram * 4096} bytes): the program's mmap fails with ENOMEM on "
                    "Linux (overcommit heuristic)", file=wl.file, field=f"regions[{i}].size",
                    hint=f"{self.machine.name} has {ram * 4096 / 2**30:.4g} GiB")
        pages = sum(max(1, -(-r.size // 4096)) for r in wl.regions)
        check_host_memory(pages, wl.file)
        if self.progress and pages * HOST_BYTES_PER_PAGE > LOUD_SETUP_BYTES:
            import sys

            # the progress bar starts once every region is mapped: say why nothing moves
            print(f"numasim: mapping {pages * 4096 / 2**30:.4g} GiB of simulated memory "
                  f"(about {pages * HOST_BYTES_PER_PAGE / 1e9:.2g} GB of this computer's); "
                  "the progress bar follows", file=sys.stderr)

    def _map_trace(self) -> list[np.ndarray | None]:
        """mmap the spans the trace touches and turn it into per-thread (region, line, mode)
        records; returns one TRACE op template per thread."""
        from numasim.workloads.trace import trace_spans

        tr = self.trace
        spans = trace_spans(tr.address)
        rids = []
        for i, (a, b) in enumerate(spans):
            rid = self.k.mmap(self.main, b - a, vpn=a)
            rids.append(rid)
            self.regions[f"trace{i}"] = MappedRegion(f"trace{i}", rid, (b - a) * self.lpp, a)
        vpn = (tr.address >> np.uint64(12)).astype(np.int64)
        starts = np.array([a for a, _ in spans], dtype=np.int64)
        idx = np.searchsorted(starts, vpn, side="right") - 1
        line = ((tr.address >> np.uint64(int(self.line).bit_length() - 1)).astype(np.int64)
                - starts[idx] * self.lpp)
        arr = np.stack([np.array(rids, dtype=np.int64)[idx], line,
                        tr.write.astype(np.int64)], axis=1)
        out: list[np.ndarray | None] = []
        parts = []
        pos = 0
        for cpu in self.cpus:
            sel = arr[tr.cpu == cpu]
            parts.append(sel)
            row = np.zeros(G.O_NCOLS, dtype=np.int64)
            row[G.O_KIND] = G.OP_TRACE
            row[G.O_LO], row[G.O_HI] = pos, pos + len(sel)
            row[G.O_BYTES] = 8
            row[G.O_REPS] = 1
            row[G.O_STRIDE] = 1
            out.append(row)
            pos += len(sel)
        self.trace_arr = np.ascontiguousarray(np.concatenate(parts) if parts else
                                              np.zeros((1, 3), dtype=np.int64))
        if len(self.trace_arr) == 0:
            self.trace_arr = np.zeros((1, 3), dtype=np.int64)
        return out

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

    def reset_clocks(self, t0: float, prog: PhaseProgram) -> list[int]:
        """Point every thread at its ops and start its clock: at ``t0`` plus its release
        skew (threads leave a barrier, or get created, a little apart; drawn from the run's
        seed)."""
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
        from numasim.mm import syscalls as sc
        from numasim.mm.constants import MPOL_MF_MOVE
        from numasim.mm.nodemask import UserMask
        from numasim.mm.numactl import parse_numactl

        ph = self.wl.phases[pi]
        popts = parse_numactl((ph.policy or "").split(), self.machine)
        if popts.policy is None:
            raise ConfigError("an mbind phase needs a 'policy' (one numactl memory policy "
                              "option)", file=self.wl.file, field=f"phases[{pi}].policy")
        for name in ph.regions or list(self.regions):
            mr = self.regions[name]
            npages = -(-mr.lines // self.lpp)
            try:
                sc.mbind(self.k, self.main, mr.vpn << 12, npages << 12, popts.policy,
                         UserMask.of(popts.nodes), 1025, MPOL_MF_MOVE if ph.move else 0)
            except OSError as e:
                raise ConfigError(f"mbind failed: {e.strerror}", file=self.wl.file,
                                  field=f"phases[{pi}].policy") from None

    # ------------------------------------------------------------------ run
    def run(self, engine_name: str):
        from numasim.machine.exact import ExactEngine
        from numasim.machine.fast import FastEngine

        engines = {"fast": FastEngine, "exact": ExactEngine}
        if engine_name not in engines:
            raise ConfigError(f"unknown engine {engine_name!r}", field="engine",
                              hint="valid: fast, exact")
        self.engine_name = engine_name
        self.env = simpy.Environment()
        engine = engines[engine_name](self)
        self.bar = None
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total_accesses, unit="acc", unit_scale=True, delay=2.0,
                            leave=False, desc=f"{self.wl.name} ({engine_name})")
        t_host = time.perf_counter()
        done = self.env.process(self._main(engine))
        self.env.run(until=done)
        self.host_seconds = time.perf_counter() - t_host
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
            end = t
            if active:
                end = yield from engine.phase(prog, active, t)
            rec = PhaseRecord(ph.name, ph.kernel, ph.measured, t, end)
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
