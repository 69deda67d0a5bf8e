"""Which CPU each thread runs on: ``spread`` over nodes, ``compact`` node by node, or an
explicit list (numactl's ``--physcpubind``), always inside the CPUs the task may use (after
``--cpunodebind``/``--physcpubind``)."""

from __future__ import annotations

from numasim.errors import ConfigError
from numasim.topology.model import Machine


def place_threads(machine: Machine, nthreads: int, placement: str, allowed: list[int],
                  cpus: list[int] | None = None, *, file: str | None = None) -> list[int]:
    """CPU of each thread (one thread per CPU; numasim does not time-share CPUs)."""
    allowed_set = set(allowed)
    if cpus:
        bad = [c for c in cpus if c not in allowed_set]
        if bad:
            raise ConfigError(f"CPU {bad[0]} is not one the task may run on", file=file,
                              field="cpus", hint=f"allowed CPUs: {_fmt(allowed)}")
        if nthreads > len(cpus):
            raise ConfigError(f"{nthreads} threads but only {len(cpus)} CPUs listed",
                              file=file, field="cpus",
                              hint="list one CPU per thread, or lower 'threads'")
        return list(cpus[:nthreads])
    if nthreads > len(allowed):
        raise ConfigError(f"{nthreads} threads but the task may use only {len(allowed)} CPUs",
                          file=file, field="threads",
                          hint=f"allowed CPUs: {_fmt(allowed)}; numasim runs one thread "
                               "per CPU")
    by_node: dict[int, list[int]] = {}
    for c in sorted(allowed):
        by_node.setdefault(machine.cpu_to_node[c], []).append(c)
    nodes = sorted(by_node)
    if placement == "compact":
        flat = [c for n in nodes for c in by_node[n]]
        return flat[:nthreads]
    if placement != "spread":
        raise ConfigError(f"unknown placement {placement!r}", file=file, field="placement",
                          hint="valid: spread, compact")
    out: list[int] = []
    used = {n: 0 for n in nodes}
    i = 0
    while len(out) < nthreads:
        n = nodes[i % len(nodes)]
        if used[n] < len(by_node[n]):
            out.append(by_node[n][used[n]])
            used[n] += 1
        i += 1
    return out


def _fmt(cpus: list[int]) -> str:
    from numasim.bitmap import format_list

    return format_list(sorted(cpus))
