"""The one place a run is wired together: spec -> kernel and placed threads -> compiled phases
-> an engine -> the result.

Data flows one way.  :func:`build_program` does what a program does when it starts on Linux
-- the simulated kernel boots (its generation's zonelists and watermarks), numactl's system
calls run on the main task, threads are created with ``clone(CLONE_VM)`` on the CPUs
placement picks, regions are ``mmap``-ed and ``mbind``-ed, a trace's spans are mapped -- and
compiles every phase into per-thread ops.  The result, a :class:`Program`, is all an engine
needs from the workload; :class:`~numasim.machine.sim.Simulation` adds the machine's
resources and the statistics arrays and runs it with the engine the spec names
(:mod:`numasim.machine.engine`).  Nothing under ``numasim/machine`` reads a workload file,
places a thread or parses a policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numasim.errors import ConfigError
from numasim.machine.report import RunResult, build_result
from numasim.machine.sim import Simulation
from numasim.mm import state as S
from numasim.mm.kernel import Kernel
from numasim.spec import RunSpec
from numasim.workloads import gen as G
from numasim.workloads.placement import place_threads
from numasim.workloads.program import MappedRegion, PhaseProgram, compile_phase
from numasim.workloads.trace import TraceData

PAGE = 4096


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


@dataclass
class Program:
    """A built program: the booted kernel with the process set up, and its phases compiled.

    ``kernel``: the simulated kernel (task policy set, regions mapped); ``main``: the process's
    first task; ``tasks[i]`` runs thread ``i`` on CPU ``cpus[i]``; ``regions``: every mapped
    region by name; ``programs[i]``: phase ``i``'s ops per thread; ``trace_arr``: the trace's
    (region, line, write) records the TRACE ops index; ``rng``: the run's random stream, as
    far as building has drawn from it; ``numastat0``: numastat right after boot.
    """

    spec: RunSpec
    kernel: Kernel
    main: int
    cpus: list[int]
    tasks: list[int]
    regions: dict[str, MappedRegion]
    programs: list[PhaseProgram]
    trace_arr: np.ndarray
    rng: np.random.Generator
    numastat0: np.ndarray
    line: int
    lpp: int
    notes: list[str] = field(default_factory=list)
    cpus_allowed: list[frozenset[int]] = field(default_factory=list)
    """Each thread's affinity: its one CPU when pinned (the workload's ``pin``, a trace's
    CPUs), else every CPU the task may use (NUMA balancing may then move it)."""


def boot_kernel(spec: RunSpec) -> Kernel:
    """The simulated kernel of this run, booted, with the run's weighted-interleave
    weights written to sysfs."""
    k = Kernel(spec.machine, spec.linux)
    for nid, w in (spec.weights or {}).items():
        k.ks.nodeinfo[nid, S.N_WEIGHT] = int(w)
    return k


def build_program(spec: RunSpec, *, progress: bool = False) -> Program:
    """Set the process up as Linux would start it and compile its phases (see the module).
    ``progress``: say so on the terminal when mapping the regions will take a while."""
    m, wl = spec.machine, spec.workload
    rng = np.random.Generator(np.random.PCG64(spec.seed))
    k = boot_kernel(spec)
    line = int(m.cache_line)
    if PAGE % line:
        raise ConfigError(f"cache line {line} does not divide the page", field="cache_line")
    lpp = PAGE // line
    numastat0 = k.ks.numastat.copy()
    main = k.new_process(m.cpus[0])
    allowed = spec.task.apply(k, main)
    notes = list(spec.task.warnings)
    trace = None
    if wl.trace is not None:
        from numasim.workloads.trace import load_trace

        default_cpu = wl.trace.cpu if wl.trace.cpu is not None else sorted(allowed)[0]
        trace = load_trace(wl.trace.path, wl.trace.format, cpu=default_cpu,
                           instructions=wl.trace.instructions)
        cpus = sorted({int(c) for c in np.unique(trace.cpu)})
        bad = [c for c in cpus if c not in m.cpu_to_node]
        if bad:
            raise ConfigError(f"the trace names CPU {bad[0]}, which {m.name} does not "
                              "have", file=trace.file, field="cpu",
                              hint=f"CPUs: 0-{max(m.cpus)}")
    else:
        cpus = place_threads(m, wl.threads, wl.placement, allowed, wl.cpus, file=wl.file)
    k.set_cpu(main, cpus[0])
    tasks = [main] + [k.new_thread(main, c) for c in cpus[1:]]
    regions: dict[str, MappedRegion] = {}
    trace_ops = None
    trace_arr = np.zeros((1, 3), dtype=np.int64)
    if trace is not None:
        trace_ops, trace_arr = map_trace(k, main, trace, cpus, regions, line, lpp)
    check_regions_fit(spec, k, progress)
    _map_regions(spec, k, main, regions, line)
    programs = [compile_phase(wl, ph, pi, regions, len(cpus), line, rng, trace_ops)
                for pi, ph in enumerate(wl.phases)]
    free = not getattr(wl, "pin", True) and trace is None
    cpus_allowed = [frozenset(allowed) if free else frozenset((c,)) for c in cpus]
    return Program(spec, k, main, cpus, tasks, regions, programs, trace_arr, rng, numastat0,
                   line, lpp, notes, cpus_allowed)


def check_regions_fit(spec: RunSpec, k: Kernel, progress: bool = False) -> None:
    """Each region's mmap as Linux answers it (ENOMEM beyond RAM), then whether this
    computer can hold them all -- before any is mapped."""
    wl, ks = spec.workload, k.ks
    ram = ks.totalram_pages()
    for i, reg in enumerate(wl.regions):
        if not ks.vm_enough_memory(max(1, -(-reg.size // PAGE))):
            raise ConfigError(
                f"region '{reg.name}' of {reg.size} bytes is larger than the machine's "
                f"memory ({ram * PAGE} bytes): the program's mmap fails with ENOMEM on "
                "Linux (overcommit heuristic)", file=wl.file, field=f"regions[{i}].size",
                hint=f"{spec.machine.name} has {ram * PAGE / 2**30:.4g} GiB")
    pages = sum(max(1, -(-r.size // PAGE)) for r in wl.regions)
    check_host_memory(pages, wl.file)
    if progress and pages * HOST_BYTES_PER_PAGE > LOUD_SETUP_BYTES:
        import sys

        # the progress bar starts once every region is mapped: say why nothing moves
        print(f"numasim: mapping {pages * PAGE / 2**30:.4g} GiB of simulated memory "
              f"(about {pages * HOST_BYTES_PER_PAGE / 1e9:.2g} GB of this computer's); "
              "the progress bar follows", file=sys.stderr)


def _map_regions(spec: RunSpec, k: Kernel, main: int, regions: dict[str, MappedRegion],
                 line: int) -> None:
    """``mmap`` every region of the workload, then ``mbind`` it to its policy."""
    from numasim.mm import syscalls as sc
    from numasim.mm.nodemask import UserMask

    wl = spec.workload
    for i, reg in enumerate(wl.regions):
        npages = max(1, -(-reg.size // PAGE))
        # a workload's arrays are malloc'ed: glibc maps the size plus its 16-byte header, a
        # length that is no multiple of 2 MiB, so 6.12's THP alignment of anonymous mmaps
        # (Kernel.thp_get_unmapped_area) does not apply; the placement is 6.1's
        rid = k.mmap(main, npages, kind="anon" if reg.kind == "anon" else "shared",
                     thp_align=False)
        vpn = int(k.ks.regions[rid, S.R_START])
        regions[reg.name] = MappedRegion(reg.name, rid, max(1, -(-reg.size // line)), vpn)
        popts = spec.region_policies[i]
        if popts is None:
            continue
        try:
            sc.mbind(k, main, vpn << 12, npages << 12, popts.mbind_mode(), UserMask.of(popts.nodes),
                     1025, 0)
        except OSError as e:
            raise ConfigError(f"mbind with {reg.policy!r} failed: {e.strerror}",
                              file=wl.file, field=f"regions[{i}].policy") from None


def map_trace(k: Kernel, main: int, tr: TraceData, cpus: list[int],
              regions: dict[str, MappedRegion], line: int, lpp: int
              ) -> tuple[list[np.ndarray | None], np.ndarray]:
    """mmap the spans the trace touches and turn it into per-thread (region, line, mode)
    records; returns one TRACE op template per thread and the records."""
    from numasim.workloads.trace import trace_spans

    spans = trace_spans(tr.address)
    rids = []
    for i, (a, b) in enumerate(spans):
        rid = k.mmap(main, b - a, vpn=a)
        rids.append(rid)
        regions[f"trace{i}"] = MappedRegion(f"trace{i}", rid, (b - a) * lpp, a)
    vpn = (tr.address >> np.uint64(12)).astype(np.int64)
    starts = np.array([a for a, _ in spans], dtype=np.int64)
    idx = np.searchsorted(starts, vpn, side="right") - 1
    lines = ((tr.address >> np.uint64(int(line).bit_length() - 1)).astype(np.int64)
             - starts[idx] * lpp)
    arr = np.stack([np.array(rids, dtype=np.int64)[idx], lines,
                    tr.write.astype(np.int64)], axis=1)
    out: list[np.ndarray | None] = []
    parts = []
    pos = 0
    for cpu in cpus:
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
    records = np.ascontiguousarray(np.concatenate(parts) if parts else
                                   np.zeros((1, 3), dtype=np.int64))
    if len(records) == 0:
        records = np.zeros((1, 3), dtype=np.int64)
    return out, records


def simulate(spec: RunSpec, *, progress: bool = False) -> RunResult:
    """Build the program, run it on the spec's engine, and return what it measured."""
    sim = Simulation(build_program(spec, progress=progress), progress=progress)
    sim.run(spec.engine)
    return build_result(sim)
