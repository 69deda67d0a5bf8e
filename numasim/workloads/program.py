"""Phases compiled into op descriptors (:mod:`numasim.workloads.gen`), one list per thread."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numasim.errors import ConfigError
from numasim.workloads import gen as G
from numasim.workloads.model import DEFAULT_COMPUTE, Phase, Workload


@dataclass
class MappedRegion:
    """A workload region once mapped: the kernel's region id and its size in lines."""

    name: str
    rid: int
    lines: int
    vpn: int


@dataclass
class PhaseProgram:
    ops: np.ndarray  # int64 [n, O_NCOLS]
    opf: np.ndarray  # float64 [n, OF_NCOLS]
    ranges: list[tuple[int, int]]  # per thread: ops [first, end)
    accesses: int  # total accesses the phase will generate


def _chunk(n: int, i: int, parts: int) -> tuple[int, int]:
    return n * i // parts, n * (i + 1) // parts


def _row(kind: int, phase_index: int, gap: int, nbytes: int, reps: int, seed: int) -> np.ndarray:
    row = np.zeros(G.O_NCOLS, dtype=np.int64)
    row[G.O_KIND] = kind
    row[G.O_GAP] = gap
    row[G.O_BYTES] = nbytes
    row[G.O_REPS] = reps
    row[G.O_SEED] = seed
    row[G.O_PHASE] = phase_index
    row[G.O_STRIDE] = 1
    return row


def _sweep(streams: list[tuple[MappedRegion, int]], lo: int, hi: int, stride: int, **kw
           ) -> np.ndarray:
    assert len(streams) <= G.MAX_STREAMS, "an op has MAX_STREAMS stream slots"
    row = _row(G.OP_SWEEP, **kw)
    row[G.O_NS] = len(streams)
    for s, (reg, mode) in enumerate(streams):
        row[G.O_R + s] = reg.rid
        row[G.O_B + s] = 0
        row[G.O_M + s] = mode
    row[G.O_LO], row[G.O_HI], row[G.O_STRIDE] = lo, hi, stride
    return row


def _random(kind: int, reg: MappedRegion, lo: int, hi: int, count: int, mode: int, **kw
            ) -> np.ndarray:
    row = _row(kind, **kw)
    row[G.O_NS] = 1
    row[G.O_R] = reg.rid
    row[G.O_M] = mode
    row[G.O_LO], row[G.O_HI], row[G.O_COUNT] = lo, hi, count
    return row


def shift_items(shift: float, nitems: int, item_bytes: int) -> int:
    """A phase's ``shift`` (bytes, or a fraction of the region when below 1) in items."""
    if shift <= 0:
        return 0
    if shift < 1:
        return max(1, round(shift * nitems))
    return max(1, int(shift) // item_bytes)


def compile_phase(wl: Workload, phase: Phase, phase_index: int,
                  regions: dict[str, MappedRegion], nthreads: int, line: int,
                  rng: np.random.Generator, trace_ops: list[np.ndarray] | None = None
                  ) -> PhaseProgram:
    """The ops each thread runs in ``phase`` (threads are 0..nthreads-1)."""
    per_thread: list[list[np.ndarray]] = [[] for _ in range(nthreads)]
    zipf_consts: dict[int, tuple[float, float, float, float]] = {}
    where = f"phases[{phase_index}]"
    if phase.threads is not None:
        bad = [t for t in phase.threads if not 0 <= t < nthreads]
        if bad:
            raise ConfigError(f"thread {bad[0]} does not exist (the workload has {nthreads})",
                              file=wl.file, field=f"{where}.threads")
        runners = sorted(set(phase.threads))
    else:
        runners = list(range(nthreads))
    if phase.split == "serial":
        runners = runners[:1]
    gap = phase.compute if phase.compute is not None else DEFAULT_COMPUTE.get(phase.kernel, 1)
    reps = phase.repeat

    def regs(n_min: int = 1) -> list[MappedRegion]:
        names = phase.regions or [r.name for r in wl.regions]
        out = []
        for nm in names:
            if nm not in regions:
                raise ConfigError(f"unknown region {nm!r}", file=wl.file,
                                  field=f"{where}.regions",
                                  hint="regions: " + ", ".join(regions))
            out.append(regions[nm])
        if len(out) < n_min:
            raise ConfigError(f"the {phase.kernel} kernel needs {n_min} regions, got "
                              f"{len(out)}", file=wl.file, field=f"{where}.regions")
        return out

    def seed() -> int:
        return int(rng.integers(1, 1 << 62))

    def span(n: int, i: int, k: int) -> tuple[int, int]:
        return (0, n) if phase.split in ("each", "serial") else _chunk(n, i, k)

    def share(total: int, i: int, k: int) -> int:
        if phase.split in ("each", "serial"):
            return total
        lo, hi = _chunk(total, i, k)
        return hi - lo

    nrun = len(runners)
    kw = dict(phase_index=phase_index, gap=gap, reps=reps)
    kern = phase.kernel
    if kern == "init":
        rs = regs()
        same = len({r.lines for r in rs}) == 1
        for i, t in enumerate(runners):
            if same:  # one sweep over up to MAX_STREAMS regions at a time (an op's slots)
                lo, hi = span(rs[0].lines, i, nrun)
                for g in range(0, len(rs), G.MAX_STREAMS):
                    per_thread[t].append(_sweep([(r, G.STORE) for r in rs[g:g + G.MAX_STREAMS]],
                                                lo, hi, 1, nbytes=line, seed=0, **kw))
            else:
                for r in rs:
                    lo, hi = span(r.lines, i, nrun)
                    per_thread[t].append(_sweep([(r, G.STORE)], lo, hi, 1, nbytes=line,
                                                seed=0, **kw))
    elif kern == "stream":
        a, b, c = regs(3)[:3]
        pattern = {"copy": [(a, G.LOAD), (c, G.STORE)],
                   "scale": [(c, G.LOAD), (b, G.STORE)],
                   "add": [(a, G.LOAD), (b, G.LOAD), (c, G.STORE)],
                   "triad": [(b, G.LOAD), (c, G.LOAD), (a, G.STORE)]}[phase.op]
        n = min(a.lines, b.lines, c.lines)
        for i, t in enumerate(runners):
            lo, hi = span(n, i, nrun)
            per_thread[t].append(_sweep(pattern, lo, hi, 1, nbytes=line, seed=0, **kw))
    elif kern == "stride":
        r = regs()[0]
        step = max(1, phase.stride // line)
        nbytes = 8 * max(1, line // max(1, phase.stride))
        mode = G.STORE if phase.write else G.LOAD
        for i, t in enumerate(runners):
            lo, hi = span(r.lines, i, nrun)
            per_thread[t].append(_sweep([(r, mode)], lo, hi, step, nbytes=nbytes, seed=0,
                                        **kw))
    elif kern == "gups":
        r = regs()[0]
        total = phase.count if phase.count is not None else r.lines
        for i, t in enumerate(runners):
            per_thread[t].append(_random(G.OP_RANDOM, r, 0, r.lines, share(total, i, nrun),
                                         G.STORE, nbytes=16, seed=seed(), **kw))
    elif kern in ("zipf", "kv"):
        r = regs()[0]
        vl = max(1, phase.value // line) if kern == "kv" else 1
        nitems = r.lines // vl
        if nitems < 1:
            raise ConfigError(f"a value of {phase.value} bytes does not fit the region "
                              f"{r.name!r}", file=wl.file, field=f"{where}.value")
        total = phase.count if phase.count is not None else nitems
        mode = G.STORE if phase.write else G.LOAD
        hx1, hn, s = G.zipf_constants(nitems, phase.theta)
        shared_seed = seed() if kern == "kv" else 0  # a store's clients share its keys
        for i, t in enumerate(runners):
            row = _random(G.OP_ZIPF, r, 0, nitems * vl, share(total, i, nrun) * vl, mode,
                          nbytes=8 if kern == "zipf" else line,
                          seed=shared_seed or seed(), **kw)
            row[G.O_VLINES] = vl
            row[G.O_SHIFT] = shift_items(phase.shift, nitems, vl * line)
            row[G.O_WPPM] = round(phase.write_fraction * 1_000_000)
            zipf_consts[id(row)] = (phase.theta, hx1, hn, s)
            per_thread[t].append(row)
    elif kern == "pointer_chase":
        r = regs()[0]
        for i, t in enumerate(runners):
            lo, hi = span(r.lines, i, nrun)
            count = phase.count if phase.count is not None else hi - lo
            if phase.count is not None and phase.split == "parallel":
                count = share(phase.count, i, nrun)
            per_thread[t].append(_random(G.OP_CHASE, r, lo, hi, count, G.LOAD, nbytes=8,
                                         seed=seed(), **kw))
    elif kern == "prodcons":
        r = regs()[0]
        if nrun < 2:
            raise ConfigError("prodcons needs at least two threads (producers and consumers)",
                              file=wl.file, field=f"{where}.threads")
        p = phase.producers if phase.producers is not None else max(1, nrun // 2)
        if not 1 <= p < nrun:
            raise ConfigError(f"producers must be 1..{nrun - 1}, got {p}", file=wl.file,
                              field=f"{where}.producers")
        for i, t in enumerate(runners):
            slot = i if i < p else (i - p) % p
            lo, hi = _chunk(r.lines, slot, p)
            mode = G.STORE if i < p else G.LOAD
            per_thread[t].append(_sweep([(r, mode)], lo, hi, 1, nbytes=line, seed=0, **kw))
    elif kern == "trace":
        for t in runners:
            if trace_ops is not None and t < len(trace_ops) and trace_ops[t] is not None:
                row = trace_ops[t].copy()
                row[G.O_GAP], row[G.O_REPS], row[G.O_PHASE] = gap, reps, phase_index
                per_thread[t].append(row)
    elif kern == "mbind":
        pass
    else:  # the schema rejects unknown kernels; this is a bug guard
        raise ConfigError(f"unknown kernel {kern!r}", file=wl.file, field=f"{where}.kernel")

    rows: list[np.ndarray] = []
    ranges: list[tuple[int, int]] = []
    fl: list[np.ndarray] = []
    for t in range(nthreads):
        first = len(rows)
        for row in per_thread[t]:
            rows.append(row)
            f = np.zeros(G.OF_NCOLS)
            if id(row) in zipf_consts:
                f[:] = zipf_consts[id(row)]
            fl.append(f)
        ranges.append((first, len(rows)))
    ops = np.array(rows, dtype=np.int64).reshape(-1, G.O_NCOLS)
    opf = np.array(fl, dtype=np.float64).reshape(-1, G.OF_NCOLS)
    if ops.shape[0] == 0:
        ops = np.zeros((1, G.O_NCOLS), dtype=np.int64)
        opf = np.zeros((1, G.OF_NCOLS), dtype=np.float64)
    total = sum(G.op_accesses(r) for r in rows)
    return PhaseProgram(np.ascontiguousarray(ops), np.ascontiguousarray(opf), ranges, total)
