"""The queues a memory request passes, and which ones each (CPU node, memory node) pair uses.

Three kinds of resource, each a single server moving one cache line per *service time*
(``line_bytes / bandwidth``):

* ``mc N`` -- the memory controller of node N (``Node.mc_bandwidth_GBps``, else the diagonal
  of the bandwidth matrix).  Every line read from or written to node N's memory passes it.
* ``link A->B`` -- one direction of an interconnect link, carrying data from node A to node B.
  With ``Machine.links`` these are the machine's links (each direction has the link's
  bandwidth, or its own with ``bandwidth: [a->b, b->a]``) and a request follows the shortest
  path (fewest hops; ties go to the lower node id).  Without links the interconnect is a full
  mesh derived from the bandwidth matrix: the link A->B has ``bandwidth[B][A]``, the
  bandwidth the CPUs of B measured reading A's memory.
* ``cap A->B`` -- only when the machine has explicit links: the bandwidth-matrix entry for
  data flowing from A to B (``bandwidth[B][A]``), an end-to-end limit that holds whatever the
  links could carry (so a remote stream gets the link or the matrix entry, whichever is lower).

Directions follow the data: a read (or the read-for-ownership of a write) moves a line from
the memory node to the CPU node; a write-back, a non-temporal store or the zeroing of a fresh
page moves it from the CPU node to the memory node.  The idle latency of a request is the
latency matrix entry (it already includes the link hops, as measured latencies do); queueing
at the resources comes on top.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from numasim.topology.model import Machine

KIND_MC = 0
KIND_LINK = 1
KIND_CAP = 2
KIND_NAMES = {KIND_MC: "controller", KIND_LINK: "link", KIND_CAP: "cap"}


@dataclass
class Resources:
    """Every queue of the machine and the route of every request type, as numpy arrays."""

    names: list[str]
    kinds: np.ndarray  # int64 [R]: KIND_*
    ends: np.ndarray  # int64 [R, 2]: (from node, to node); (N, N) for a controller
    bandwidth_GBps: np.ndarray  # float64 [R]
    service: np.ndarray  # float64 [R]: cycles to move one line
    route_read: np.ndarray  # int64 [nr_node_ids, nr_node_ids, K]: (cpu node, mem node) -> ids
    route_write: np.ndarray  # same, for data going from the CPU node to the memory node
    latency: np.ndarray  # float64 [nr_node_ids, nr_node_ids]: idle latency in cycles
    mc_of_node: np.ndarray  # int64 [nr_node_ids]: resource id of the node's controller or -1
    cpu_ghz: float
    line_bytes: int
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.names)

    def route_names(self, cpu_node: int, mem_node: int, write: bool = False) -> list[str]:
        table = self.route_write if write else self.route_read
        return [self.names[r] for r in table[cpu_node, mem_node] if r >= 0]


def _shortest_path(adj: dict[int, list[int]], a: int, b: int) -> list[int] | None:
    """Fewest-hop path a..b (node list), ties broken towards lower node ids; None if none."""
    prev: dict[int, int] = {a: a}
    q = deque([a])
    while q:
        u = q.popleft()
        if u == b:
            break
        for v in sorted(adj.get(u, ())):
            if v not in prev:
                prev[v] = u
                q.append(v)
    if b not in prev:
        return None
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


def build_resources(machine: Machine) -> Resources:
    """The resources and routes of ``machine`` (see the module docstring for the rules)."""
    ghz = float(machine.cpu_ghz)
    line = int(machine.cache_line)
    nr = machine.nr_node_ids
    ids = list(machine.node_ids)
    pos = {nid: machine.index_of(nid) for nid in ids}
    bw = machine.bandwidth_array()
    lat_ns = machine.latency_array()

    names: list[str] = []
    kinds: list[int] = []
    ends: list[tuple[int, int]] = []
    bws: list[float] = []
    index: dict[tuple[str, int, int], int] = {}
    notes: list[str] = []

    def add(kind: int, name: str, a: int, b: int, gbps: float) -> int:
        index[(KIND_NAMES[kind], a, b)] = len(names)
        names.append(name)
        kinds.append(kind)
        ends.append((a, b))
        bws.append(float(gbps))
        return len(names) - 1

    mc_of_node = np.full(nr, -1, dtype=np.int64)
    for nid in machine.memory_nodes:
        mc_of_node[nid] = add(KIND_MC, f"mc {nid}", nid, nid, machine.mc_bandwidth(nid))

    def flow_bw(a: int, b: int) -> float:
        """Bandwidth-matrix entry for data flowing from node a to node b."""
        return float(bw[pos[b], pos[a]])

    adj: dict[int, list[int]] = {}
    if machine.links:
        for ln in machine.links:
            for a, b in ((ln.a, ln.b), (ln.b, ln.a)):
                if ("link", a, b) in index:  # two links between the same nodes: add up
                    bws[index[("link", a, b)]] += ln.bandwidth_towards(a, b)
                    continue
                add(KIND_LINK, f"link {a}->{b}", a, b, ln.bandwidth_towards(a, b))
                adj.setdefault(a, []).append(b)
        for a in ids:
            for b in ids:
                if a != b:
                    add(KIND_CAP, f"cap {a}->{b}", a, b, flow_bw(a, b))
    else:
        for a in ids:
            for b in ids:
                if a != b:
                    add(KIND_LINK, f"link {a}->{b}", a, b, flow_bw(a, b))

    def data_path(a: int, b: int) -> list[int]:
        """Resources (other than the controller) for data flowing from node a to node b."""
        if a == b:
            # a local bandwidth-matrix entry below the controller's bandwidth caps local traffic
            if machine.node(a).has_memory and flow_bw(a, a) < machine.mc_bandwidth(a) - 1e-9:
                key = ("cap", a, a)
                if key not in index:
                    add(KIND_CAP, f"cap {a}->{a}", a, a, flow_bw(a, a))
                return [index[key]]
            return []
        if not machine.links:
            return [index[("link", a, b)]]
        out = [index[("cap", a, b)]]
        path = _shortest_path(adj, a, b)
        if path is None:
            notes.append(f"no chain of links joins node {a} to node {b}: traffic between them "
                         "is limited by the bandwidth matrix only")
            return out
        out += [index[("link", u, v)] for u, v in zip(path, path[1:], strict=False)]
        return out

    routes_r: dict[tuple[int, int], list[int]] = {}
    routes_w: dict[tuple[int, int], list[int]] = {}
    for i in ids:  # CPU node
        for j in machine.memory_nodes:  # memory node
            mc = int(mc_of_node[j])
            routes_r[(i, j)] = [mc] + data_path(j, i)
            routes_w[(i, j)] = data_path(i, j) + [mc]
    k = max([len(r) for r in routes_r.values()] + [len(r) for r in routes_w.values()] + [1])
    route_read = np.full((nr, nr, k), -1, dtype=np.int64)
    route_write = np.full((nr, nr, k), -1, dtype=np.int64)
    for (i, j), r in routes_r.items():
        route_read[i, j, : len(r)] = r
    for (i, j), r in routes_w.items():
        route_write[i, j, : len(r)] = r

    latency = np.zeros((nr, nr), dtype=np.float64)
    for i in ids:
        for j in ids:
            latency[i, j] = lat_ns[pos[i], pos[j]] * ghz
    bw_arr = np.array(bws, dtype=np.float64)
    service = line / bw_arr * ghz  # line / (GB/s) = ns; * GHz = cycles
    return Resources(names=names, kinds=np.array(kinds, dtype=np.int64),
                     ends=np.array(ends, dtype=np.int64).reshape(-1, 2), bandwidth_GBps=bw_arr,
                     service=service, route_read=route_read, route_write=route_write,
                     latency=latency, mc_of_node=mc_of_node, cpu_ghz=ghz, line_bytes=line,
                     notes=sorted(set(notes)))


def carried_lines(arrived: np.ndarray, carry_in: np.ndarray, tail_cycles: np.ndarray,
                  duration: float, service: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lines each resource carried during a phase of ``duration`` cycles, and the lines still
    queued at its end (carried into the next phase).

    A line counts where the resource serves it, not where it was sent: a posted write-back
    queued behind a saturated link at the end of a phase is moved in the next phase (or
    after the run, and then not at all).  ``tail_cycles``: the work left in each queue at
    the end of the phase as the engine saw it; whatever it says, a server cannot have done
    more than ``duration`` cycles of work, so no resource carries more than its bandwidth.
    """
    avail = carry_in + arrived
    tail = np.maximum(tail_cycles, 0.0) / service
    tail = np.maximum(tail, avail - duration / service)
    tail = np.clip(tail, 0.0, avail)
    return avail - tail, tail
