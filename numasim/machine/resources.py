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
at the resources comes on top.  A CPU-less node's row of the bandwidth matrix is never used
(its CPUs issue nothing): data flowing *to* it (writes) takes the entry its readers measured
(``bandwidth[A][B]`` for data from A to B), unless an explicit link says otherwise.

**What a hop costs** (``cost_read``/``cost_write``, the same shape as the routes): the work a
request puts on each resource of its route, in units of that resource's service time (one
data line).  Without a link protocol and with symmetric memory every cost is 1 and every
route lists the data path only.  With them (both engines read the same costs):

* a written line costs ``read / write`` bandwidth at a controller whose node declares
  ``write_bandwidth`` (a CXL or PMem device: reads and writes share it);
* on a link with a :class:`~numasim.topology.model.LinkProtocol` the resource's bandwidth is
  the payload rate ``raw * 64 / (64 + data_header_bytes)`` (so its service time is one data
  message), and every request adds *message hops* at a fraction of a line: a read or
  read-for-ownership its request message on every protocol link from the CPU's node to the
  memory's node (and on that direction's cap), a write its completion on the way back, and
  with ``coherence: broadcast`` every read a snoop from the home to each other CPU node and
  the response back.  A read's route is then: request messages, the controller, the data
  path back; a write's: the data path, the controller, the completion.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from numasim.memctrl import controller_tables
from numasim.topology.model import LinkProtocol, Machine

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
    cost_read: np.ndarray  # float64, shape of route_read: work per hop, in service times
    cost_write: np.ndarray  # same, for route_write
    latency: np.ndarray  # float64 [nr_node_ids, nr_node_ids]: idle latency in cycles
    mc_of_node: np.ndarray  # int64 [nr_node_ids]: resource id of the node's controller or -1
    cpu_ghz: float
    line_bytes: int
    notes: list[str] = field(default_factory=list)
    # ---- memory-controller models (numasim.memctrl); the defaults are plain FIFO servers
    ctrl_models: list = field(default_factory=list)  # [R]: the model adding latency, or None
    ctrl_n: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # [R]
    ctrl_u: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))  # [R, P] utilisation
    ctrl_w: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))  # [R, P] extra cycles

    @property
    def count(self) -> int:
        return len(self.names)

    def route_names(self, cpu_node: int, mem_node: int, write: bool = False) -> list[str]:
        table = self.route_write if write else self.route_read
        return [self.names[r] for r in table[cpu_node, mem_node] if r >= 0]

    def route_costs(self, cpu_node: int, mem_node: int,
                    write: bool = False) -> list[tuple[str, float]]:
        """(resource, work in lines) for every hop of a route: 1 for a data line."""
        table = self.route_write if write else self.route_read
        cost = self.cost_write if write else self.cost_read
        return [(self.names[r], float(c)) for r, c in
                zip(table[cpu_node, mem_node], cost[cpu_node, mem_node], strict=True) if r >= 0]


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


Hop = tuple[int, float]  # (resource id, work in lines)


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
        """Bandwidth-matrix entry for data flowing from node a to node b: what b's CPUs
        measured reading a; into a CPU-less node (whose row nobody measured) what a's
        CPUs measured reading b."""
        if a != b and not machine.node(b).has_cpus and machine.node(a).has_cpus:
            return float(bw[pos[a], pos[b]])
        return float(bw[pos[b], pos[a]])

    adj: dict[int, list[int]] = {}
    proto: dict[tuple[int, int], LinkProtocol] = {}  # link direction -> its protocol
    if machine.links:
        for ln in machine.links:
            for a, b in ((ln.a, ln.b), (ln.b, ln.a)):
                gbps = ln.bandwidth_towards(a, b)
                if ln.protocol is not None:
                    # the stated bandwidth counts payload; a data message is a line + header
                    gbps *= line / (line + ln.protocol.data_header_bytes)
                    proto[(a, b)] = ln.protocol
                if ("link", a, b) in index:  # two links between the same nodes: add up
                    bws[index[("link", a, b)]] += gbps
                    continue
                add(KIND_LINK, f"link {a}->{b}", a, b, gbps)
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

    paths: dict[tuple[int, int], list[int] | None] = {}

    def path(a: int, b: int) -> list[int] | None:
        if (a, b) not in paths:
            paths[(a, b)] = _shortest_path(adj, a, b)
        return paths[(a, b)]

    def data_path(a: int, b: int) -> list[Hop]:
        """Hops (other than the controller) for a data line flowing from node a to b."""
        if a == b:
            # a local bandwidth-matrix entry below the controller's bandwidth caps local traffic
            if machine.node(a).has_memory and flow_bw(a, a) < machine.mc_bandwidth(a) - 1e-9:
                key = ("cap", a, a)
                if key not in index:
                    add(KIND_CAP, f"cap {a}->{a}", a, a, flow_bw(a, a))
                return [(index[key], 1.0)]
            return []
        if not machine.links:
            return [(index[("link", a, b)], 1.0)]
        out = [(index[("cap", a, b)], 1.0)]
        p = path(a, b)
        if p is None:
            notes.append(f"no chain of links joins node {a} to node {b}: traffic between them "
                         "is limited by the bandwidth matrix only")
            return out
        out += [(index[("link", u, v)], 1.0) for u, v in zip(p, p[1:], strict=False)]
        return out

    def message(a: int, b: int, size: str) -> list[Hop]:
        """Hops of a protocol message of kind ``size`` (a LinkProtocol field) from node a to
        b: a fraction of a data message on every protocol link of the path, and on the cap
        of that direction at the first protocol link's ratio."""
        p = path(a, b) if a != b and machine.links else None
        if not p:
            return []
        out: list[Hop] = []
        first = None
        for u, v in zip(p, p[1:], strict=False):
            pr = proto.get((u, v))
            if pr is None or getattr(pr, size) <= 0:
                continue
            frac = getattr(pr, size) / (line + pr.data_header_bytes)
            out.append((index[("link", u, v)], frac))
            first = first if first is not None else frac
        if first is not None:
            out.insert(0, (index[("cap", a, b)], first))
        return out

    def snoops(i: int, j: int) -> list[Hop]:
        """Broadcast coherence: the home j snoops every other CPU node k, which answers."""
        out: list[Hop] = []
        for k in machine.cpu_nodes:
            if k in (i, j):
                continue
            p = path(j, k) if machine.links else None
            if p and any(proto.get((u, v)) is not None and
                         proto[(u, v)].coherence == "broadcast"
                         for u, v in zip(p, p[1:], strict=False)):
                out += message(j, k, "snoop_bytes") + message(k, j, "snoop_bytes")
        return out

    routes_r: dict[tuple[int, int], list[Hop]] = {}
    routes_w: dict[tuple[int, int], list[Hop]] = {}
    for i in ids:  # CPU node
        for j in machine.memory_nodes:  # memory node
            mc = int(mc_of_node[j])
            wcost = machine.mc_bandwidth(j) / machine.mc_write_bandwidth(j)
            routes_r[(i, j)] = (message(i, j, "request_bytes") + [(mc, 1.0)]
                                + data_path(j, i) + snoops(i, j))
            routes_w[(i, j)] = (data_path(i, j) + [(mc, wcost)]
                                + message(j, i, "completion_bytes"))
    k = max([len(r) for r in routes_r.values()] + [len(r) for r in routes_w.values()] + [1])
    route_read = np.full((nr, nr, k), -1, dtype=np.int64)
    route_write = np.full((nr, nr, k), -1, dtype=np.int64)
    cost_read = np.zeros((nr, nr, k), dtype=np.float64)
    cost_write = np.zeros((nr, nr, k), dtype=np.float64)
    for table, cost, routes in ((route_read, cost_read, routes_r),
                                (route_write, cost_write, routes_w)):
        for (i, j), r in routes.items():
            for h, (x, c) in enumerate(r):
                table[i, j, h] = x
                cost[i, j, h] = c

    latency = np.zeros((nr, nr), dtype=np.float64)
    for i in ids:
        for j in ids:
            latency[i, j] = lat_ns[pos[i], pos[j]] * ghz
    bw_arr = np.array(bws, dtype=np.float64)
    service = line / bw_arr * ghz  # line / (GB/s) = ns; * GHz = cycles
    # ---- memory-controller models: the extra latency each controller adds (memctrl)
    ctrl_models, ctrl_n, ctrl_u, ctrl_w = controller_tables(machine, mc_of_node, len(names))
    return Resources(ctrl_models=ctrl_models, ctrl_n=ctrl_n, ctrl_u=ctrl_u, ctrl_w=ctrl_w,
                     names=names, kinds=np.array(kinds, dtype=np.int64),
                     ends=np.array(ends, dtype=np.int64).reshape(-1, 2), bandwidth_GBps=bw_arr,
                     service=service, route_read=route_read, route_write=route_write,
                     cost_read=cost_read, cost_write=cost_write,
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
