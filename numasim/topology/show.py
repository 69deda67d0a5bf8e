"""Show a machine the way Linux tools do: ``numactl --hardware``, the boot log, zoneinfo."""

from __future__ import annotations

from numasim.topology.derive import boot_state
from numasim.topology.model import Machine
from numasim.units import format_size, human_bytes


def _node_ranges(ids: list[int]) -> str:
    """numactl's ``available: N nodes (...)`` list: ``0-3`` or ``0,2-3``."""
    out, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out)


def _cpu_compressed(cpus: tuple[int, ...]) -> str:
    runs, i, xs = [], 0, sorted(cpus)
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        runs.append(f" {xs[i]}" if i == j else f" {xs[i]}-{xs[j]}")
        i = j + 1
    return ",".join(runs) + f" ({len(xs)})"


def node_free_bytes(machine: Machine, node_id: int, linux: str = "6.12") -> int:
    """MemFree of a node right after boot: the source's figure, else its managed pages."""
    node = machine.node(node_id)
    if node.free_bytes is not None:
        return node.free_bytes
    zones = boot_state(machine, linux).zones_of(node_id)
    return sum(z.managed for z in zones) * machine.page_size


def numactl_hardware(machine: Machine, cpu_compress: bool = False,
                     free_bytes: dict[int, int] | None = None) -> str:
    """The text ``numactl --hardware`` (numactl 2.0.19) prints for this machine.

    ``node N size`` is the node's memory in MB (0 for a memoryless node); ``free`` is the
    source's figure when it gave one, else the managed pages after boot (or ``free_bytes``).
    """
    ids = list(machine.node_ids)
    lines = [f"available: {len(ids)} nodes ({_node_ranges(ids)})"]
    for node in machine.nodes:
        if cpu_compress:
            cpus = _cpu_compressed(node.cpus) if node.cpus else " (0)"
        else:
            cpus = "".join(f" {c}" for c in sorted(node.cpus))
        free = (free_bytes or {}).get(node.id)
        if free is None:
            free = node_free_bytes(machine, node.id)
        lines.append(f"node {node.id} cpus:{cpus}")
        lines.append(f"node {node.id} size: {node.mem_bytes >> 20} MB")
        lines.append(f"node {node.id} free: {free >> 20} MB")
    if "distance" in machine.derived and len(ids) > 1:
        lines.append("No distance information available.")
    else:
        lines.append("node distances:")
        lines.append("node  " + "".join(f"{i:4d} " for i in ids))
        for i, row in zip(ids, machine.distance, strict=True):
            lines.append(f"{i:4d}: " + "".join(f"{d:4d} " for d in row))
    return "\n".join(lines) + "\n"


def _matrix(title: str, machine: Machine, rows, fmt: str) -> list[str]:
    ids = machine.node_ids
    width = max(8, max(len(format(v, fmt)) for r in rows for v in r) + 2)
    out = [title, "from\\to " + "".join(f"{i:>{width}}" for i in ids)]
    for i, r in zip(ids, rows, strict=True):
        out.append(f"{i:>7} " + "".join(f"{format(v, fmt):>{width}}" for v in r))
    return out


def tier_lines(machine: Machine, linux: str = "6.12") -> list[str]:
    """Memory tiers and demotion targets as generation ``linux`` derives them at boot
    (:mod:`numasim.mm.memory_tiers`)."""
    from numasim.mm.memory_tiers import memory_tiers

    return memory_tiers(machine, linux, boot_state(machine, linux).fallback_order).describe()


def describe(machine: Machine, linux: str = "6.12") -> str:
    """Everything ``numasim topo show`` prints after the numactl block: the boot of Linux
    generation ``linux`` (6.12, 6.1 or 2.6.7) on this machine, memory tiers included."""
    d = boot_state(machine, linux)
    page_kib = machine.page_size // 1024
    out = [f"# {machine.name}" + (f"  ({machine.source})" if machine.source else "")]
    out += d.boot_log()
    mfk = f"min_free_kbytes: {d.min_free_kbytes}" + (
        " (derived as at boot)" if d.min_free_kbytes_derived else " (given)")
    out.append(f"{mfk}  watermark_scale_factor: {machine.watermark_scale_factor}  "
               f"lowmem_reserve_ratio: {' '.join(map(str, machine.lowmem_reserve_ratio))}")
    out.append("")
    out.append(f"Zones (pages of {page_kib} KiB):")
    out.append(f"{'node':>4} {'zone':<8}{'start_pfn':>12}{'spanned':>11}{'present':>11}"
               f"{'managed':>11}{'min':>8}{'low':>8}{'high':>8}  protection")
    for z in d.zones:
        out.append(f"{z.node:>4} {z.name:<8}{z.start_pfn:>12}{z.spanned:>11}{z.present:>11}"
                   f"{z.managed:>11}{z.wmark_min:>8}{z.wmark_low:>8}{z.wmark_high:>8}  "
                   f"({', '.join(map(str, z.lowmem_reserve))})")
    memless = [n.id for n in machine.nodes if not n.has_memory]
    if memless:
        out.append(f"memoryless nodes: {', '.join(map(str, memless))}")
    out.append("")
    out += tier_lines(machine, linux)
    out.append("")
    kinds = ", ".join(f"{n.id}={n.kind.value}" for n in machine.nodes)
    out.append(f"Memory kinds: {kinds}")
    out.append(f"CPU clock: {machine.cpu_ghz:g} GHz  page size: {format_size(machine.page_size)}"
               f"  huge page: {format_size(machine.huge_page_size)}  cache line: "
               f"{machine.cache_line} B")
    tag = lambda what: " [derived from distance]" if what in machine.derived else ""  # noqa: E731
    out.append("")
    out += _matrix("Idle latency (ns), CPU node -> memory node" + tag("latency"), machine,
                   machine.latency_ns, ".1f")
    out.append("")
    out += _matrix("Bandwidth (GB/s), CPU node -> memory node" + tag("bandwidth"), machine,
                   machine.bandwidth_GBps, ".1f")
    out.append("")
    mcs = ", ".join(f"{n.id}: {machine.mc_bandwidth(n.id):.1f}" for n in machine.nodes
                    if n.has_memory)
    out.append(f"Memory-controller bandwidth (GB/s): {mcs}")
    dev = [f"{n.id}: writes {machine.mc_write_bandwidth(n.id):.1f} GB/s"
           + (f", device latency {n.device_latency_ns:g} ns" if n.device_latency_ns else "")
           for n in machine.nodes if n.mc_write_bandwidth_GBps is not None
           or n.device_latency_ns is not None]
    if dev:
        out.append("Memory devices: " + "; ".join(dev))
    models = [(n.id, machine.controller_spec(n.id)) for n in machine.nodes if n.has_memory]
    if any(spec is not None for _, spec in models):
        out.append("Memory-controller models: " + ", ".join(
            f"{nid}: {spec.impl if spec else 'fifo'}" for nid, spec in models))
    if machine.links:
        out.append("Links: " + ", ".join(f"{ln.a}-{ln.b} {ln.bandwidth_GBps:g}"
                                         + ("" if ln.symmetric else
                                            f"/{ln.bandwidth_ba_GBps:g}") + " GB/s"
                                         + (f" +{ln.latency_ns:g} ns" if ln.latency_ns else "")
                                         + (f" ({ln.protocol.name} protocol)"
                                            if ln.protocol is not None else "")
                                         for ln in machine.links))
    else:
        out.append("Links: none given (contention uses a full mesh from the bandwidth matrix)")
    if machine.wi_weights is not None:
        out.append("Weighted-interleave weights: " + ", ".join(
            f"{n.id}={machine.weight(n.id)}" for n in machine.nodes))
    total = human_bytes(machine.total_mem_bytes)
    out.append(f"Total memory: {total} on {len(machine.memory_nodes)} memory node(s); "
               f"{len(machine.cpus)} CPUs on {len(machine.cpu_nodes)} node(s)")
    for note in machine.notes:
        out.append(f"note: {note}")
    return "\n".join(out) + "\n"
