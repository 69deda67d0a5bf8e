"""The workload YAML: strict schema, every problem at once, file and line in each message.

A file::

    name: stream-triad-first-touch
    description: the classic first-touch trap
    threads: 16
    placement: spread              # spread | compact (or `cpus: 0-15`)
    numactl: --interleave=all      # task policy and CPU binding, numactl syntax
    cpu: {mlp: 10, l2_mlp: 32, prefetch: "off", write_allocate: true, fault: 500ns, hit: 10ns}
    regions:
      - {name: a, size: 64MiB}
      - {name: b, size: 64MiB, policy: --membind=1}   # mbind in numactl syntax
      - {name: c, size: 64MiB, kind: shared}
    phases:
      - {name: init, kernel: init, split: serial}     # thread 0 touches everything
      - {name: triad, kernel: stream, op: triad, repeat: 10}

Top-level keys: ``name`` (required), ``description``, ``threads`` (default 1), ``placement``,
``cpus``, ``pin`` (default true: each thread is pinned to the CPU placement gives it, as
OpenMP's ``OMP_PROC_BIND`` does; false: it starts there but may run on any CPU the task may
use, and NUMA balancing's task placement may move it: :mod:`numasim.mm.task_placement`),
``numactl`` (a string or a list of options), ``cpu`` (``mlp``, ``l2_mlp``,
``prefetch: off|stream`` (see :mod:`numasim.machine.params`), ``write_allocate``,
``fault``, ``hit``, ``zero_gap_cycles``, ``start_skew`` (threads start each phase up to this
much apart, drawn from the seed), ``llc: {size, ways, hit}``, ``tlb: {entries, ways, walk}``
or ``tlb: true``: a per-CPU TLB with page walks, :mod:`numasim.machine.tlb`), ``regions``,
``phases`` (required), ``trace`` (``{file, format: auto|npz|lackey, cpu, instructions}``;
``file`` is relative to the YAML file).

Phase keys: ``name``, ``kernel`` (init, stream, gups, pointer_chase, stride, zipf, kv,
prodcons, trace, mbind), ``regions`` (default: all), ``split`` (parallel, serial, each), ``threads``
(which threads run it), ``repeat``, ``compute`` (cycles before each access), ``measure``,
and per kernel: ``op`` (stream), ``stride`` (a size), ``count``, ``theta`` (zipf, kv),
``write`` (stride, zipf), ``shift`` (zipf, kv: the hot set moves by this size, or this
fraction of the region when below 1, at every repetition), ``value`` (kv: bytes per value),
``write_fraction`` (zipf, kv: the share of items written), ``producers`` (prodcons),
``policy`` and ``move`` (mbind).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from numasim.errors import ConfigError, NumasimError, Problem
from numasim.workloads.model import (
    KERNELS,
    PLACEMENTS,
    REGION_KINDS,
    SPLITS,
    STREAM_OPS,
    Phase,
    Region,
    Trace,
    Workload,
)
from numasim.yamlutil import (
    IdList,
    Size,
    StrictModel,
    TimeNs,
    choice_reader,
    parse_yaml,
    read_text,
    sort_problems,
    validate_model,
)

PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
KernelName = Annotated[str, BeforeValidator(choice_reader(KERNELS, "kernel"))]
SplitName = Annotated[str, BeforeValidator(choice_reader(SPLITS, "split"))]
PlacementName = Annotated[str, BeforeValidator(choice_reader(PLACEMENTS, "placement"))]
RegionKind = Annotated[str, BeforeValidator(choice_reader(REGION_KINDS, "region kind"))]
StreamOp = Annotated[str, BeforeValidator(choice_reader(STREAM_OPS, "STREAM operation"))]
TraceFormat = Annotated[str, BeforeValidator(choice_reader(("auto", "npz", "lackey"),
                                                           "trace format"))]


def _options(value: Any) -> list[str]:
    """numactl options as a string (split on blanks) or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"expected numactl options such as '--interleave=all', got {value!r}")


NumactlOptions = Annotated[list[str], BeforeValidator(_options)]


class LlcModel(StrictModel):
    size: Size = 32 << 20
    ways: PosInt = 16
    hit: TimeNs = 20.0


class TlbModel(StrictModel):
    entries: PosInt = 1536
    ways: PosInt = 12
    walk: bool = True


class CpuModel(StrictModel):
    mlp: Annotated[int, Field(ge=1, le=256)] | None = None
    l2_mlp: Annotated[int, Field(ge=1, le=256)] | None = None
    prefetch: Literal["off", "stream"] | None = None
    write_allocate: bool | None = None
    fault: TimeNs | None = None
    hit: TimeNs | None = None
    zero_gap_cycles: Annotated[float, Field(ge=0)] | None = None
    start_skew: TimeNs | None = None
    llc: LlcModel | None = None
    tlb: TlbModel | bool | None = None


class RegionModel(StrictModel):
    name: str
    size: Size
    kind: RegionKind = "anon"
    policy: str | None = None


class PhaseModel(StrictModel):
    name: str | None = None
    kernel: KernelName
    regions: list[str] | None = None
    split: SplitName = "parallel"
    threads: IdList | None = None
    repeat: PosInt = 1
    compute: NonNegInt | None = None
    measure: bool | None = None
    op: StreamOp = "triad"
    stride: Size = 64
    count: NonNegInt | None = None
    theta: Annotated[float, Field(gt=0, le=10)] = 0.99
    write: bool = False
    shift: Annotated[float, Field(ge=0, lt=1)] | Size = 0
    value: Size = 4096
    write_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0
    producers: PosInt | None = None
    policy: str | None = None
    move: bool = False


class TraceModel(StrictModel):
    file: str
    format: TraceFormat = "auto"
    cpu: NonNegInt | None = None
    instructions: bool = False


class WorkloadModel(StrictModel):
    name: str
    description: str = ""
    threads: PosInt = 1
    placement: PlacementName = "spread"
    cpus: IdList | None = None
    pin: bool = True
    numactl: NumactlOptions = []
    cpu: CpuModel = CpuModel()
    regions: list[RegionModel] = []
    phases: Annotated[list[PhaseModel], Field(min_length=1)]
    trace: TraceModel | None = None


REGIONS_NEEDED = {"stream": 3, "gups": 1, "pointer_chase": 1, "stride": 1, "zipf": 1,
                  "kv": 1, "prodcons": 1}


def _semantic(model: WorkloadModel, doc, file: str | None) -> list[Problem]:
    """What the structure cannot say: names that must exist, kernels that need regions."""
    out: list[Problem] = []
    names = [r.name for r in model.regions]
    seen: set[str] = set()
    for i, r in enumerate(model.regions):
        if r.name in seen:
            out.append(Problem(f"region {r.name!r} is defined twice", file, f"regions[{i}].name",
                               doc.line(("regions", i, "name")), "give every region its own "
                               "name"))
        seen.add(r.name)
        if r.size <= 0:
            out.append(Problem("a region needs a positive size", file, f"regions[{i}].size",
                               doc.line(("regions", i, "size"))))
    for i, ph in enumerate(model.phases):
        where = f"phases[{i}]"
        for j, rn in enumerate(ph.regions or []):
            if rn not in names:
                from numasim.errors import did_you_mean

                out.append(Problem(f"unknown region {rn!r}", file, f"{where}.regions[{j}]",
                                   doc.line(("phases", i, "regions", j)),
                                   did_you_mean(rn, names) if names else "define it under "
                                   "'regions'"))
        need = REGIONS_NEEDED.get(ph.kernel, 0)
        have = len(ph.regions) if ph.regions is not None else len(names)
        if have < need:
            out.append(Problem(f"the {ph.kernel} kernel needs {need} region(s), it gets {have}",
                               file, f"{where}.regions", doc.line(("phases", i)),
                               "list them under 'regions' of the phase or of the workload"))
        if ph.kernel == "trace" and model.trace is None:
            out.append(Problem("a trace phase needs a 'trace' section", file, f"{where}.kernel",
                               doc.line(("phases", i, "kernel"))))
        if ph.kernel == "mbind" and not ph.policy:
            out.append(Problem("an mbind phase needs a 'policy' such as --membind=1", file,
                               f"{where}.policy", doc.line(("phases", i))))
        if ph.kernel == "kv" and ph.value < 64:
            out.append(Problem(f"a value must be at least one line (64B), got {ph.value}",
                               file, f"{where}.value", doc.line(("phases", i, "value"))))
        if ph.kernel == "init" and have < 1:
            out.append(Problem("an init phase needs regions to touch", file, f"{where}.regions",
                               doc.line(("phases", i))))
    if model.trace is not None and file is not None:
        path = Path(file).parent / model.trace.file
        if not path.exists():
            out.append(Problem(f"trace file {model.trace.file!r} not found (looked in "
                               f"{path.parent})", file, "trace.file",
                               doc.line(("trace", "file"))))
    return out


def _build(model: WorkloadModel, file: str | None) -> Workload:
    cpu: dict[str, Any] = {}
    c = model.cpu
    if c.mlp is not None:
        cpu["mlp"] = c.mlp
    if c.l2_mlp is not None:
        cpu["l2_mlp"] = c.l2_mlp
    if c.prefetch is not None:
        cpu["prefetch"] = c.prefetch
    if c.write_allocate is not None:
        cpu["write_allocate"] = c.write_allocate
    if c.fault is not None:
        cpu["fault_ns"] = c.fault
    if c.hit is not None:
        cpu["hit_ns"] = c.hit
    if c.zero_gap_cycles is not None:
        cpu["zero_gap_cycles"] = c.zero_gap_cycles
    if c.start_skew is not None:
        cpu["start_skew_ns"] = c.start_skew
    if c.llc is not None:
        cpu["llc"] = {"size": c.llc.size, "ways": c.llc.ways, "hit_ns": c.llc.hit}
    if isinstance(c.tlb, TlbModel):
        cpu["tlb"] = {"entries": c.tlb.entries, "ways": c.tlb.ways, "walk": c.tlb.walk}
    elif c.tlb:
        cpu["tlb"] = True
    trace = None
    if model.trace is not None:
        base = Path(file).parent if file else Path(".")
        trace = Trace(str(base / model.trace.file), model.trace.format, model.trace.cpu,
                      model.trace.instructions)
    phases = [Phase(name=p.name or f"{p.kernel}{i}", kernel=p.kernel, regions=list(p.regions or []),
                    split=p.split, threads=p.threads, repeat=p.repeat, compute=p.compute,
                    measure=p.measure, op=p.op, stride=p.stride, count=p.count, theta=p.theta,
                    write=p.write, producers=p.producers, policy=p.policy, move=p.move,
                    shift=p.shift, value=p.value, write_fraction=p.write_fraction)
              for i, p in enumerate(model.phases)]
    return Workload(name=model.name, threads=model.threads, placement=model.placement,
                    cpus=model.cpus, pin=model.pin, numactl=list(model.numactl),
                    regions=[Region(r.name, r.size, r.kind, r.policy) for r in model.regions],
                    phases=phases, cpu=cpu, trace=trace, description=model.description,
                    file=file)


def _read(text: str, file: str | None) -> tuple[Workload | None, list[Problem]]:
    doc = parse_yaml(text, file=file)
    model, problems = validate_model(doc, WorkloadModel, what="workload")
    if model is None:
        return None, problems
    problems = sort_problems(problems + _semantic(model, doc, file))
    if problems:
        return None, problems
    return _build(model, file), []


def loads(text: str, *, file: str | None = None) -> Workload:
    wl, problems = _read(text, file)
    if problems or wl is None:
        raise ConfigError(problems=problems or [Problem("invalid workload", file)])
    return wl


def load_workload(path: str | os.PathLike) -> Workload:
    """Read a workload YAML file; raises :class:`ConfigError` listing every problem."""
    return loads(read_text(path), file=str(path))


def validate_file(path: str | os.PathLike) -> list[Problem]:
    """Every problem of a workload YAML file (empty list: the file is good); never raises."""
    try:
        text = read_text(path)
        _, problems = _read(text, str(path))
    except NumasimError as e:
        return e.problems
    return problems
