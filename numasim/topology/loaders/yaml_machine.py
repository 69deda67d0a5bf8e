"""numasim's own machine description: strict YAML, read by :func:`load`, written by :func:`dump`.

A minimal file::

    name: two-socket
    nodes:
      - {id: 0, cpus: 0-3, memory: 8GiB}
      - {id: 1, cpus: 4-7, memory: 8GiB}
    distance:
      - [10, 21]
      - [21, 10]

Keys (all but ``nodes`` optional; quantities need units):

``name``, ``description``; ``cpu_clock`` (``2.3GHz``, default 2GHz); ``page_size`` (4KiB),
``huge_page_size`` (2MiB), ``cache_line`` (64B); ``nodes``, listed in ascending ``id``, each
with ``id``, ``cpus`` (``0-23,48-71`` or a list; empty for a CPU-less node), ``memory``
(``192GiB``; 0 or absent for a memoryless node), ``kind`` (DRAM, HBM, CXL, NVM),
``controller_bandwidth`` (its read bandwidth), ``write_bandwidth`` (a device that writes
slower than it reads: CXL, PMem), ``device_latency`` (the part of the latency spent in the
device), ``movable`` (memory in ZONE_MOVABLE), ``free`` (informative),
``zones`` (explicit zones in pages: ``{type, start_pfn, spanned, present, managed}``);
``distance`` (the SLIT), ``latency`` (``81.2ns``) and ``bandwidth`` (``122GB/s``) matrices,
one row per node in the order of ``nodes``, row = CPU node, column = memory node (absent
matrices are derived, see :mod:`numasim.topology.build`); ``links``
(``{between: [0, 1], bandwidth: 62GB/s, latency: 20ns}``; ``bandwidth: [a->b, b->a]`` for a
full-duplex link whose directions differ; ``protocol:`` a preset ``upi``, ``qpi``, ``cxl``,
``none``, or a mapping ``{preset, data_header_bytes, request_bytes, completion_bytes,
coherence: directory|broadcast, snoop_bytes}``: per-message costs, see
:class:`numasim.topology.model.LinkProtocol`); ``kernel``
(``min_free_kbytes``, ``watermark_scale_factor``, ``lowmem_reserve_ratio``; NUMA balancing:
``numa_balancing`` 0-4 (1 normal, 2 memory tiering, 3 both) and
``numa_balancing_scan_delay_ms``, ``..._scan_period_min_ms``, ``..._scan_period_max_ms``,
``numa_balancing_task_placement`` (0/1: numasim's switch for moving unpinned threads),
``..._scan_size_mb``, ``..._hot_threshold_ms``, ``..._promote_rate_limit_MBps`` (tiering,
:mod:`numasim.mm.numa_promote`), Linux's defaults when absent;
``transparent_hugepage``: ``always`` | ``madvise`` | ``never``, default ``never``;
``transparent_hugepage_defrag``: ``always`` | ``defer`` | ``defer+madvise`` | ``madvise`` |
``never``, default ``madvise`` (Linux's; what reclaim a THP fault may do);
``khugepaged``: ``{scan_sleep_millisecs: 100, max_ptes_none: 255, ...}``, the knobs under
``/sys/kernel/mm/transparent_hugepage/khugepaged/`` (:mod:`numasim.mm.khugepaged`), Linux's
defaults when absent;
``swap``: a swap device of that size, ``1GiB``, default none, see :mod:`numasim.mm.vmscan`;
``demotion_enabled``: ``true`` | ``false`` (default, as Linux boots), reclaim demotes to the
next memory tier;
``boot_used_pages``: ``{0: 6416}``, pages the booted system holds on a node, default none);
``weighted_interleave`` (``{0: 9, 1: 1}``, nodes not named weigh 1);
``memory_controller`` (``{impl: curve, points: [[0.7, 5ns], ...], source: ...}``, the
controller model of every node, default ``{impl: fifo}``; a node's own ``memory_controller``
overrides it; models and their parameters: :mod:`numasim.memctrl`).

:func:`dump` writes the same format back; ``load(dump(m)) == m`` for every machine.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, ValidationError

from numasim import units
from numasim.bitmap import format_list
from numasim.errors import ConfigError, ErrorCollector, NumasimError, Problem
from numasim.memctrl import ControllerSpec, ParamError, check_spec
from numasim.topology.build import check_nodes, make_machine
from numasim.topology.model import (
    CACHE_LINE,
    HUGE_PAGE_SIZE,
    LINK_PROTOCOLS,
    PAGE_SIZE,
    PROTOCOL_FIELDS,
    Link,
    LinkProtocol,
    Machine,
    MemKind,
    Node,
    ZoneSpec,
    ZoneType,
)
from numasim.yamlutil import (
    BandwidthGBps,
    FreqGHz,
    IdList,
    Size,
    StrictModel,
    TimeNs,
    YamlDoc,
    choice_reader,
    dotted,
    parse_yaml,
    read_text,
    sort_problems,
    validate_model,
)

DEFAULT_CPU_GHZ = 2.0
DEFAULT_LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)
DEFAULT_WATERMARK_SCALE_FACTOR = 10

NonNegInt = Annotated[int, Field(ge=0)]
ZoneName = Annotated[str, BeforeValidator(choice_reader(
    [z.kname for z in ZoneType], "zone type"))]
KindName = Annotated[str, BeforeValidator(choice_reader([k.value for k in MemKind],
                                                        "memory kind"))]


# ------------------------------------------------------------------------ schema
class ZoneModel(StrictModel):
    type: ZoneName
    start_pfn: NonNegInt
    spanned: NonNegInt
    present: NonNegInt
    managed: NonNegInt


class NodeModel(StrictModel):
    id: NonNegInt
    cpus: IdList = []
    memory: Size = 0
    kind: KindName = "DRAM"
    controller_bandwidth: BandwidthGBps | None = None
    write_bandwidth: BandwidthGBps | None = None
    device_latency: TimeNs | None = None
    movable: Size = 0
    free: Size | None = None
    zones: list[ZoneModel] | None = None
    memory_controller: dict[str, Any] | None = None


def _link_bandwidth(value: Any) -> list[float]:
    """One bandwidth for both directions, or ``[a->b, b->a]`` in the order of ``between``."""
    if isinstance(value, list):
        if len(value) != 2:
            raise ValueError(f"expected one bandwidth or two ([a->b, b->a] in the order of "
                             f"'between'), got a list of {len(value)}")
        return [_one_bandwidth(v) for v in value]
    return [_one_bandwidth(value)]


def _one_bandwidth(value: Any) -> float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return units.parse_bandwidth_GBps(value)  # a UnitError is a ValueError
    raise ValueError(f"expected a bandwidth such as 40GB/s, got {value!r}")
LinkBandwidth = Annotated[list[float], BeforeValidator(_link_bandwidth)]


NonNegFloat = Annotated[float, Field(ge=0, le=4096)]


class ProtocolModel(StrictModel):
    preset: Literal["upi", "qpi", "cxl", "none"] = "none"
    data_header_bytes: NonNegFloat | None = None
    request_bytes: NonNegFloat | None = None
    completion_bytes: NonNegFloat | None = None
    coherence: Literal["directory", "broadcast"] | None = None
    snoop_bytes: NonNegFloat | None = None


def _protocol(value: Any) -> Any:
    """A preset name, or a mapping (its ``preset`` fills what it leaves out)."""
    if isinstance(value, str):
        if value not in LINK_PROTOCOLS:
            raise ValueError(f"unknown link protocol {value!r}; valid: "
                             + ", ".join(LINK_PROTOCOLS) + ", or a mapping {preset, "
                             + ", ".join(PROTOCOL_FIELDS) + ", coherence}")
        return {"preset": value}
    return value


class LinkModel(StrictModel):
    between: Annotated[list[NonNegInt], Field(min_length=2, max_length=2)]
    bandwidth: LinkBandwidth
    latency: TimeNs = 0.0
    protocol: Annotated[ProtocolModel, BeforeValidator(_protocol)] | None = None

    def link_protocol(self) -> LinkProtocol | None:
        """The :class:`LinkProtocol` this entry describes (None: data only)."""
        if self.protocol is None:
            return None
        p = self.protocol
        base = LINK_PROTOCOLS[p.preset]
        given = {k: v for k, v in p.model_dump().items() if k != "preset" and v is not None}
        if not given:
            return base
        return dataclasses.replace(base, name=f"{p.preset}+" if p.preset != "none"
                                   else "custom", **given)


PositiveInt = Annotated[int, Field(ge=1, lt=1 << 32)]


class KernelModel(StrictModel):
    min_free_kbytes: NonNegInt | None = None
    watermark_scale_factor: Annotated[int, Field(ge=1, le=3000)] = \
        DEFAULT_WATERMARK_SCALE_FACTOR
    lowmem_reserve_ratio: list[NonNegInt] = list(DEFAULT_LOWMEM_RESERVE_RATIO)
    # NUMA balancing: the sysctl, and the debugfs knobs under their old sysctl names
    numa_balancing: Annotated[int, Field(ge=0, le=4)] = 0  # 1 normal, 2 tiering, 3 both
    numa_balancing_scan_delay_ms: Annotated[int, Field(ge=0, lt=1 << 32)] | None = None
    numa_balancing_scan_period_min_ms: PositiveInt | None = None
    numa_balancing_scan_period_max_ms: PositiveInt | None = None
    numa_balancing_scan_size_mb: PositiveInt | None = None
    numa_balancing_hot_threshold_ms: Annotated[int, Field(ge=0, lt=1 << 32)] | None = None
    numa_balancing_promote_rate_limit_MBps: Annotated[int, Field(ge=0, lt=1 << 31)] | None \
        = None
    # numasim's switch for task placement (numasim.mm.task_placement; not a Linux file)
    numa_balancing_task_placement: Annotated[int, Field(ge=0, le=1)] | None = None
    # /sys/kernel/mm/transparent_hugepage/enabled at boot (numasim.mm.huge_memory)
    transparent_hugepage: Literal["always", "madvise", "never"] = "never"
    # /sys/kernel/mm/transparent_hugepage/defrag at boot (numasim.mm.huge_memory)
    transparent_hugepage_defrag: Literal["always", "defer", "defer+madvise", "madvise",
                                         "never"] = "madvise"
    # khugepaged's knobs (numasim.mm.khugepaged), by their sysfs file names
    khugepaged: dict[str, Any] = {}
    # a swap device of this size (numasim.mm.vmscan); 0 = none
    swap: Size = 0
    # /sys/kernel/mm/numa/demotion_enabled at boot (numasim.mm.vmscan)
    demotion_enabled: bool = False
    # pages the booted system holds per node when a workload starts (managed, not free)
    boot_used_pages: dict[int, NonNegInt] = {}


class MachineModel(StrictModel):
    name: str | None = None
    description: str = ""
    cpu_clock: FreqGHz = DEFAULT_CPU_GHZ
    page_size: Size = PAGE_SIZE
    huge_page_size: Size = HUGE_PAGE_SIZE
    cache_line: Size = CACHE_LINE
    nodes: Annotated[list[NodeModel], Field(min_length=1)]
    distance: list[list[int]] | None = None
    latency: list[list[TimeNs]] | None = None
    bandwidth: list[list[BandwidthGBps]] | None = None
    links: list[LinkModel] = []
    kernel: KernelModel = KernelModel()
    weighted_interleave: dict[int, int] | None = None
    memory_controller: dict[str, Any] | None = None


# ------------------------------------------------------------------------- sniff
_NUMACTL = re.compile(r"^available:\s*\d+\s+nodes", re.M)
_LAYOUT = re.compile(r"^\s*(node\s+\d+\s+mem=|dist(\s+\d+)+\s*$)", re.M)
_NODES_KEY = re.compile(r"^nodes\s*:", re.M)


def sniff(head: str) -> bool:
    """Is this numasim machine YAML: a YAML mapping with a ``nodes`` key?"""
    text = head.lstrip("\ufeff \t\r\n")
    if text.startswith("<") or _NUMACTL.search(head) or _LAYOUT.search(head):
        return False
    try:
        data = parse_yaml(head).data
    except NumasimError:  # perhaps only cut short (or hostile): judge by the top-level key
        return bool(_NODES_KEY.search(head))
    return isinstance(data, dict) and "nodes" in data


# -------------------------------------------------------------------------- load
def load(path: str | os.PathLike) -> Machine:
    """Read a machine YAML file; raises :class:`ConfigError` listing every problem."""
    return loads(read_text(path), file=str(path))


def loads(text: str, *, file: str | None = None) -> Machine:
    """Read machine YAML from a string (``file`` names it in messages)."""
    machine, problems = _read(text, file)
    if problems or machine is None:
        raise ConfigError(problems=problems or [Problem("invalid machine", file)])
    return machine


def validate_file(path: str | os.PathLike) -> list[Problem]:
    """Every problem of a machine YAML file (empty list: the file is good); never raises."""
    try:
        text = read_text(path)
    except NumasimError as e:
        return e.problems
    return validate_text(text, file=str(path))


def validate_text(text: str, *, file: str | None = None) -> list[Problem]:
    try:
        machine, problems = _read(text, file)
        if not problems and machine is not None:
            from numasim.topology.derive import boot_state

            boot_state(machine)  # zones, zonelists and watermarks must build
    except NumasimError as e:
        return e.problems
    return problems


def _read(text: str, file: str | None) -> tuple[Machine | None, list[Problem]]:
    doc = parse_yaml(text, file=file)
    model, problems = validate_model(doc, MachineModel, what="machine")
    if model is None:
        # the file's structure is wrong somewhere; still check every node that reads on its
        # own, so that one run reports as much as possible
        problems += _check_parts(doc)
        return None, sort_problems(problems)
    assert isinstance(model, MachineModel)
    problems += _check(model, doc)
    machine = None
    try:
        machine = _build(model, doc)
    except ConfigError as e:
        problems += [_locate(p, [n.id for n in model.nodes],
                             [ln.between for ln in model.links], doc) for p in e.problems
                     if p.field not in ("links", "weights")]  # _check reported those
    if problems:
        return None, sort_problems(problems)
    return machine, []


def _check_parts(doc: YamlDoc) -> list[Problem]:
    """The checks that need a whole machine, run on the parts of a file whose structure is
    wrong elsewhere: each node as far as it reads, CPUs shared between nodes, the SLIT if it
    reads -- so one run reports every problem, not the schema's first and these after."""
    data = doc.data if isinstance(doc.data, dict) else {}
    raw_nodes = data.get("nodes")
    out: list[Problem] = []
    good: list[tuple[int, NodeModel]] = []
    whole = True  # every node read with all its keys: "no node has memory" can be judged
    for i, raw in enumerate(raw_nodes if isinstance(raw_nodes, list) else []):
        node = _lenient_node(raw)
        if node is not None:
            good.append((i, node))
            out += _check_node(i, node, doc)
            whole = whole and len(node.model_fields_set) == len(raw)
    all_read = isinstance(raw_nodes, list) and len(good) == len(raw_nodes) > 0
    nodes = [Node(id=n.id, cpus=tuple(n.cpus), mem_bytes=n.memory) for _, n in good]
    ids = [n.id for _, n in good]
    if not all_read:
        errs = ErrorCollector(file=doc.file)
        check_nodes(nodes, errs)
        return out + [_locate_node(p, good, doc) for p in errs.problems
                      if not p.message.startswith(("no node has", "node id"))]
    try:
        dist = _Matrix.model_validate({"m": data.get("distance")}).m
    except ValidationError:
        dist = None  # the schema's problems name it already
    try:
        make_machine("check", nodes, distance=dist, file=doc.file)
    except ConfigError as e:
        raw_links = data.get("links")
        links = [ln.get("between") for ln in raw_links if isinstance(ln, dict)] \
            if isinstance(raw_links, list) else []
        out += [_locate(p, ids, links, doc) for p in e.problems
                if whole or not p.message.startswith("no node has")]
    return out


def _lenient_node(raw: Any) -> NodeModel | None:
    """A node read from what of it is valid (unknown and bad keys dropped), or None."""
    if not isinstance(raw, dict):
        return None
    keep = {k: v for k, v in raw.items() if k in NodeModel.model_fields}
    for _ in range(2):
        try:
            return NodeModel.model_validate(keep)
        except ValidationError as e:
            bad = {err["loc"][0] for err in e.errors() if err["loc"]}
            if "id" in bad or not bad & set(keep):
                return None
            keep = {k: v for k, v in keep.items() if k not in bad}
    return None


class _Matrix(StrictModel):
    m: list[list[int]] | None = None


def _locate_node(p: Problem, good: list[tuple[int, NodeModel]], doc: YamlDoc) -> Problem:
    """Locate a node problem when only some nodes read: by the node's position in the file."""
    mnode = re.match(r"nodes\[(\d+)\]\.?(\w*)", p.field or "")
    if mnode:
        nid = int(mnode.group(1))
        k = next((i for i, n in good if n.id == nid), None)
        if k is not None:
            loc = ("nodes", k) + ((mnode.group(2),) if mnode.group(2) else ())
            return dataclasses.replace(p, field=dotted(loc), line=doc.line(loc))
    return dataclasses.replace(p, line=p.line or doc.line(("nodes",)))


def _problem(doc: YamlDoc, msg: str, loc: tuple, hint: str | None = None) -> Problem:
    return Problem(msg, doc.file, dotted(loc), doc.line(loc), hint)


def _check_node(i: int, n: NodeModel, doc: YamlDoc) -> list[Problem]:
    """A node's own consistency: movable memory and explicit zones."""
    out = []
    if n.write_bandwidth is not None and n.write_bandwidth <= 0:
        out.append(_problem(doc, f"node {n.id}'s write_bandwidth must be positive",
                            ("nodes", i, "write_bandwidth"), "e.g. 8GB/s"))
    elif n.write_bandwidth is not None and not n.memory and not n.zones:
        out.append(_problem(doc, f"node {n.id} has no memory to write to",
                            ("nodes", i, "write_bandwidth"),
                            "give the node memory, or leave write_bandwidth out"))
    if n.movable > n.memory:
        out.append(_problem(doc, f"movable ({units.format_size(n.movable)}) is more than the "
                            f"node's memory ({units.format_size(n.memory)})",
                            ("nodes", i, "movable")))
    if n.zones is None:
        return out
    seen: set[str] = set()
    spans = []
    for k, z in enumerate(n.zones):
        loc = ("nodes", i, "zones", k)
        if z.type in seen:
            out.append(_problem(doc, f"node {n.id} has two {z.type} zones", loc,
                                "one zone of each type per node"))
        seen.add(z.type)
        if z.present > z.spanned:
            out.append(_problem(doc, f"present ({z.present}) exceeds spanned ({z.spanned})",
                                loc, "present pages lie inside the zone's span"))
        if z.managed > z.present:
            out.append(_problem(doc, f"managed ({z.managed}) exceeds present ({z.present})",
                                loc, "managed pages are present pages less boot-time "
                                "reservations"))
        spans.append((z.start_pfn, z.start_pfn + z.spanned, k))
    spans.sort()
    for (_, end_a, _), (start_b, _, kb) in zip(spans, spans[1:], strict=False):
        if start_b < end_a:
            out.append(_problem(doc, f"zone overlaps another zone of node {n.id} (pfn "
                                f"{start_b} < {end_a})", ("nodes", i, "zones", kb)))
    return out


def _check(m: MachineModel, doc: YamlDoc) -> list[Problem]:
    """What pydantic cannot see and make_machine does not check (or checks only after the
    matrices): node order, zones, movable memory, links, weights."""
    out: list[Problem] = []
    ids = [n.id for n in m.nodes]
    known = ", ".join(map(str, sorted(set(ids))))
    for k in range(1, len(ids)):
        if ids[k] < ids[k - 1]:
            out.append(_problem(
                doc, f"node {ids[k]} comes after node {ids[k - 1]}", ("nodes", k, "id"),
                "list nodes in ascending id order: the rows and columns of distance, latency "
                "and bandwidth follow the order of nodes"))
            break
    for i, n in enumerate(m.nodes):
        out += _check_node(i, n, doc)
    ratios = m.kernel.lowmem_reserve_ratio
    if len(ratios) != len(ZoneType):
        out.append(_problem(
            doc, f"needs {len(ZoneType)} entries, one per zone type (DMA, DMA32, Normal, "
            f"Movable, Device), got {len(ratios)}", ("kernel", "lowmem_reserve_ratio"),
            "the default is [256, 256, 32, 0, 0]"))
    for k, ln in enumerate(m.links):
        a, b = ln.between
        for end in (a, b):
            if end not in ids:
                out.append(_problem(doc, f"link {a}-{b} names node {end}, which does not "
                                    "exist", ("links", k, "between"), f"nodes: {known}"))
        if a == b:
            out.append(_problem(doc, f"link {a}-{b} joins a node to itself",
                                ("links", k, "between")))
        if any(bw <= 0 for bw in ln.bandwidth):
            out.append(_problem(doc, f"link {a}-{b} needs a positive bandwidth",
                                ("links", k, "bandwidth")))
    out += _check_controller(m.memory_controller, ("memory_controller",), doc)
    for i, n in enumerate(m.nodes):
        out += _check_controller(n.memory_controller, ("nodes", i, "memory_controller"), doc)
    for i, n in enumerate(m.nodes):
        if n.device_latency is None or m.latency is None or len(m.latency) != len(m.nodes):
            continue
        for r, row in enumerate(m.latency):
            if i < len(row) and row[i] < n.device_latency:
                out.append(_problem(
                    doc, f"the latency from node {m.nodes[r].id} to node {n.id} "
                    f"({units.format_time_ns(row[i])}) is below node {n.id}'s device_latency "
                    f"({units.format_time_ns(n.device_latency)})", ("nodes", i, "device_latency"),
                    "the matrix holds the whole idle latency, the device's part included"))
                break
    for k, ln in enumerate(m.links):
        p = ln.link_protocol()
        if p is not None and p.coherence == "broadcast" and p.snoop_bytes <= 0:
            out.append(_problem(doc, f"link {ln.between[0]}-{ln.between[1]}: coherence "
                                "broadcast needs snoop_bytes > 0", ("links", k, "protocol"),
                                "give snoop_bytes (8 for a QPI flit) or coherence: directory"))
    for nid, w in (m.weighted_interleave or {}).items():
        if nid not in ids:
            out.append(_problem(doc, f"node {nid} does not exist", ("weighted_interleave", nid),
                                f"nodes: {known}"))
        if not 0 <= w <= 255:
            out.append(_problem(doc, f"weight {w} of node {nid} is outside 0..255",
                                ("weighted_interleave", nid),
                                "weights are u8 values; 0 reads as 1"))
    return out


def _check_controller(raw: dict[str, Any] | None, loc: tuple, doc: YamlDoc) -> list[Problem]:
    """A ``memory_controller`` mapping: a known model and its declared parameters."""
    if raw is None:
        return []
    try:
        check_spec(ControllerSpec.from_dict(raw))
    except ParamError as e:
        where = loc + (e.key,) if e.key in raw else loc
        hint = e.hint or ""
        if "impl" not in raw:
            hint = (hint + "; " if hint else "") + "no 'impl:' given, so fifo: name the model"
        return [_problem(doc, str(e), where, hint or None)]
    return []


def _spec(raw: dict[str, Any] | None) -> ControllerSpec | None:
    return None if raw is None else ControllerSpec.from_dict(raw)


def _build(m: MachineModel, doc: YamlDoc) -> Machine:
    nodes = []
    for n in m.nodes:
        zones = None
        if n.zones is not None:
            zones = tuple(ZoneSpec(ZoneType.from_name(z.type), z.start_pfn, z.spanned,
                                   z.present, z.managed) for z in n.zones)
        mem = n.memory
        if zones and "memory" not in n.model_fields_set:
            mem = sum(z.present for z in zones) * m.page_size
        nodes.append(Node(id=n.id, cpus=tuple(n.cpus), mem_bytes=mem, kind=MemKind(n.kind),
                          zones=zones, mc_bandwidth_GBps=n.controller_bandwidth,
                          movable_bytes=n.movable, free_bytes=n.free,
                          memory_controller=_spec(n.memory_controller),
                          mc_write_bandwidth_GBps=n.write_bandwidth,
                          device_latency_ns=n.device_latency))
    ids = sorted(n.id for n in m.nodes)
    weights = None
    if m.weighted_interleave is not None:
        weights = tuple(m.weighted_interleave.get(i, 1) for i in ids)
    links = tuple(Link(ln.between[0], ln.between[1], ln.bandwidth[0], ln.latency,
                       ln.bandwidth[1] if len(ln.bandwidth) == 2 else None,
                       ln.link_protocol())
                  for ln in m.links)
    name = m.name
    if name is None:
        name = os.path.splitext(os.path.basename(doc.file))[0] if doc.file else "machine"
    settings: dict[str, Any] = {}
    if "description" in {f.name for f in dataclasses.fields(Machine)}:
        settings["description"] = m.description
    nb = [(k.removeprefix("numa_balancing_"), v) for k, v in m.kernel.model_dump().items()
          if k.startswith("numa_balancing") and v is not None and (v or k != "numa_balancing")]
    if nb:
        settings["numa_balancing"] = tuple(nb)
    if m.kernel.transparent_hugepage != "never":
        settings["thp"] = m.kernel.transparent_hugepage
    if m.kernel.transparent_hugepage_defrag != "madvise":
        settings["thp_defrag"] = m.kernel.transparent_hugepage_defrag
    if m.kernel.khugepaged:
        from numasim.khugepaged_knobs import validate_knobs

        settings["khugepaged"] = tuple(validate_knobs(m.kernel.khugepaged,
                                                      "kernel.khugepaged").items())
    if m.memory_controller is not None:
        settings["memory_controller"] = _spec(m.memory_controller)
    if m.kernel.swap:
        settings["swap_pages"] = m.kernel.swap // PAGE_SIZE
    if m.kernel.demotion_enabled:
        settings["demotion_enabled"] = True
    if m.kernel.boot_used_pages:
        settings["boot_used"] = tuple(sorted(m.kernel.boot_used_pages.items()))
    return make_machine(
        name, nodes, distance=m.distance, latency_ns=m.latency, bandwidth_GBps=m.bandwidth,
        links=links, file=doc.file, source=f"yaml:{doc.file}" if doc.file else "yaml",
        cpu_ghz=m.cpu_clock, page_size=m.page_size, huge_page_size=m.huge_page_size,
        cache_line=m.cache_line, min_free_kbytes=m.kernel.min_free_kbytes,
        watermark_scale_factor=m.kernel.watermark_scale_factor,
        lowmem_reserve_ratio=tuple(m.kernel.lowmem_reserve_ratio), wi_weights=weights,
        **settings)


_FIELD_RENAMES = {"weights": "weighted_interleave"}


def _locate(p: Problem, ids: list[int], links: list[list[int]], doc: YamlDoc) -> Problem:
    """Give a make_machine problem the YAML field path and line it comes from (``ids``: the
    node ids in file order, ``links``: each link's two ends)."""
    pos: dict[int, int] = {}
    for k, nid in enumerate(ids):
        pos.setdefault(nid, k)
    field = _FIELD_RENAMES.get(p.field or "", p.field or "")
    loc: tuple = tuple(field.split(".")) if field else ()
    mnode = re.match(r"nodes\[(\d+)\]\.?(\w*)", field)
    if mnode:  # make_machine names nodes by id; the file lists them by position
        nid = int(mnode.group(1))
        loc = ("nodes", pos.get(nid, nid)) + ((mnode.group(2),) if mnode.group(2) else ())
    elif field == "nodes":
        twice = re.search(r"node (\d+) is described twice", p.message)
        rng = re.search(r"node id (\d+) out of range", p.message)
        if twice:
            found = [k for k, nid in enumerate(ids) if nid == int(twice.group(1))]
            loc = ("nodes", found[-1], "id")
        elif rng and int(rng.group(1)) in pos:
            loc = ("nodes", pos[int(rng.group(1))], "id")
    elif field in ("distance", "latency", "bandwidth"):
        entry = re.search(r"entry \[(\d+)\]\[(\d+)\]", p.message)
        pair = re.search(r"node (\d+) to node (\d+)|nodes (\d+) and (\d+)", p.message)
        diag = re.search(r"diagonal entry for node (\d+)", p.message)
        order = sorted(pos)
        index = {nid: k for k, nid in enumerate(order)}
        if entry:
            loc = (field, int(entry.group(1)), int(entry.group(2)))
        elif diag and int(diag.group(1)) in index:
            k = index[int(diag.group(1))]
            loc = (field, k, k)
        elif pair:
            a, b = (int(x) for x in pair.groups() if x is not None)
            if a in index and b in index:
                loc = (field, index[a], index[b])
    elif field == "links":
        ln = re.search(r"link (\d+)-(\d+)", p.message)
        if ln:
            ends = [int(ln.group(1)), int(ln.group(2))]
            for k, link in enumerate(links):
                if list(link) == ends:
                    loc = ("links", k)
                    break
    return dataclasses.replace(p, file=p.file or doc.file, field=dotted(loc) or p.field,
                               line=p.line or doc.line(loc))


# -------------------------------------------------------------------------- dump
def _scalar(key: str, value: str) -> str:
    """``key: value`` with the value quoted only if YAML needs it."""
    for allow_unicode in (True, False):  # escaped only if the readable form would not read back
        text = yaml.safe_dump({key: value}, allow_unicode=allow_unicode, width=1 << 30,
                              default_flow_style=False, sort_keys=False)
        if yaml.safe_load(text) == {key: value}:
            break
    return text.rstrip("\n").removesuffix("\n...")


def _cpus(cpus: tuple[int, ...]) -> str:
    """``0-23,48-71``; a single CPU reads back as a YAML int, which ``cpus`` accepts."""
    return format_list(cpus) if cpus else "[]"


def _row(values, fmt) -> str:
    return "[" + ", ".join(fmt(v) for v in values) + "]"


def _flow(spec: ControllerSpec) -> str:
    """A controller spec on one line (YAML flow style; floats as Python writes them, so
    ``load(dump(m)) == m``)."""
    return yaml.safe_dump(spec.as_dict(), default_flow_style=True, sort_keys=False,
                          width=10**6).strip()


def _dump_protocol(p: LinkProtocol) -> str:
    """A preset by name, anything else as a mapping of every field."""
    if LINK_PROTOCOLS.get(p.name) == p:
        return p.name
    fields = ", ".join(f"{k}: {getattr(p, k)!r}" for k in PROTOCOL_FIELDS)
    return f"{{{fields}, coherence: {p.coherence}}}"


def dump(machine: Machine) -> str:
    """The machine as numasim YAML.  Matrices that were derived are left out (a reader derives
    them again); explicit zones are written only if the machine has them."""
    out = ["# numasim machine description",
           "# units: sizes in B/KiB/MiB/GiB, times in ns, bandwidth in GB/s (10^9 bytes/s);",
           "# matrices: row = node whose CPUs access, column = node whose memory is accessed"]
    out.append(_scalar("name", machine.name))
    description = getattr(machine, "description", "")
    if description:
        out.append(_scalar("description", description))
    out.append(f"cpu_clock: {units.format_freq_GHz(machine.cpu_ghz)}")
    if machine.page_size != PAGE_SIZE:
        out.append(f"page_size: {units.format_size(machine.page_size)}")
    if machine.huge_page_size != HUGE_PAGE_SIZE:
        out.append(f"huge_page_size: {units.format_size(machine.huge_page_size)}")
    if machine.cache_line != CACHE_LINE:
        out.append(f"cache_line: {units.format_size(machine.cache_line)}")
    out.append("nodes:")
    for n in machine.nodes:
        out.append(f"  - id: {n.id}")
        out.append(f"    cpus: {_cpus(n.cpus)}")
        if n.mem_bytes or n.zones:
            out.append(f"    memory: {units.format_size(n.mem_bytes)}")
        out.append(f"    kind: {n.kind.value}")
        if n.mc_bandwidth_GBps is not None:
            out.append(f"    controller_bandwidth: "
                       f"{units.format_bandwidth_GBps(n.mc_bandwidth_GBps)}")
        if n.mc_write_bandwidth_GBps is not None:
            out.append(f"    write_bandwidth: "
                       f"{units.format_bandwidth_GBps(n.mc_write_bandwidth_GBps)}")
        if n.device_latency_ns is not None:
            out.append(f"    device_latency: {units.format_time_ns(n.device_latency_ns)}")
        if n.movable_bytes:
            out.append(f"    movable: {units.format_size(n.movable_bytes)}")
        if n.free_bytes is not None:
            out.append(f"    free: {units.format_size(n.free_bytes)}")
        if n.memory_controller is not None:
            out.append(f"    memory_controller: {_flow(n.memory_controller)}")
        if n.zones is not None:
            if not n.zones:
                out.append("    zones: []")
            else:
                out.append("    zones:")
                for z in n.zones:
                    out.append(f"      - {{type: {z.type.kname}, start_pfn: {z.start_pfn}, "
                               f"spanned: {z.spanned}, present: {z.present}, "
                               f"managed: {z.managed}}}")
    matrices = (("distance", machine.distance, str),
                ("latency", machine.latency_ns, units.format_time_ns),
                ("bandwidth", machine.bandwidth_GBps, units.format_bandwidth_GBps))
    for key, rows, fmt in matrices:
        if key in machine.derived:
            continue
        out.append(f"{key}:")
        out += [f"  - {_row(r, fmt)}" for r in rows]
    if machine.links:
        out.append("links:")
        for ln in machine.links:
            bw = units.format_bandwidth_GBps(ln.bandwidth_GBps)
            if not ln.symmetric:
                bw = f"[{bw}, {units.format_bandwidth_GBps(ln.bandwidth_ba_GBps)}]"
            text = f"  - {{between: [{ln.a}, {ln.b}], bandwidth: {bw}"
            if ln.latency_ns:
                text += f", latency: {units.format_time_ns(ln.latency_ns)}"
            if ln.protocol is not None:
                text += f", protocol: {_dump_protocol(ln.protocol)}"
            out.append(text + "}")
    kernel = []
    if machine.min_free_kbytes is not None:
        kernel.append(f"  min_free_kbytes: {machine.min_free_kbytes}")
    if machine.watermark_scale_factor != DEFAULT_WATERMARK_SCALE_FACTOR:
        kernel.append(f"  watermark_scale_factor: {machine.watermark_scale_factor}")
    if tuple(machine.lowmem_reserve_ratio) != DEFAULT_LOWMEM_RESERVE_RATIO:
        kernel.append(f"  lowmem_reserve_ratio: {_row(machine.lowmem_reserve_ratio, str)}")
    for name, value in machine.numa_balancing:
        key = name if name == "numa_balancing" else f"numa_balancing_{name}"
        kernel.append(f"  {key}: {value}")
    if getattr(machine, "thp", "never") != "never":
        kernel.append(f"  transparent_hugepage: {machine.thp}")
    if getattr(machine, "thp_defrag", "madvise") != "madvise":
        kernel.append(f"  transparent_hugepage_defrag: {machine.thp_defrag}")
    if getattr(machine, "khugepaged", ()):
        kernel.append("  khugepaged: {" + ", ".join(f"{n}: {v}" for n, v in
                                                   machine.khugepaged) + "}")
    if machine.swap_pages:
        kernel.append(f"  swap: {machine.swap_pages * PAGE_SIZE}")
    if getattr(machine, "demotion_enabled", False):
        kernel.append("  demotion_enabled: true")
    if machine.boot_used:
        kernel.append("  boot_used_pages: {" + ", ".join(f"{n}: {u}" for n, u in
                                                       machine.boot_used) + "}")
    if kernel:
        out += ["kernel:"] + kernel
    if machine.memory_controller is not None:
        out.append(f"memory_controller: {_flow(machine.memory_controller)}")
    if machine.wi_weights is not None:
        pairs = ", ".join(f"{n.id}: {w}" for n, w in zip(machine.nodes, machine.wi_weights,
                                                         strict=True))
        out.append(f"weighted_interleave: {{{pairs}}}")
    return "\n".join(out) + "\n"


__all__ = ["sniff", "load", "loads", "dump", "validate_file", "validate_text", "MachineModel"]
