"""Boot-time derivation of big machines: ``build_zonelists`` as one sort per node against the
kernel's step-by-step ``find_next_best_node`` (O(n^3) in all), and ``derive`` as a whole.

The machine has n nodes in four sockets (SLIT 10 / 16 in a socket / 32 across, many ties so
that ``node_load`` decides), every second node with a CPU, 1 GiB each.  Linux allows 1024 nodes
(MAX_NUMNODES); the step-by-step build is skipped above ``--reference-max`` nodes (it takes
minutes at 1024).

    python benchmarks/bench_zonelists.py [--nodes 64 256 1024] [--reference-max 256]
"""

from __future__ import annotations

import argparse
import time

from numasim.topology.build import make_machine
from numasim.topology.derive import build_zonelists, derive, find_next_best_node
from numasim.topology.model import Machine, Node


def machine(n: int) -> Machine:
    nodes = [Node(id=i, cpus=(i,) if i % 2 == 0 else (), mem_bytes=1 << 30) for i in range(n)]
    s = max(n // 4, 1)
    dist = [[10 if i == j else (16 if i // s == j // s else 32) for j in range(n)]
            for i in range(n)]
    return make_machine(f"bench-{n}n", nodes, distance=dist)


def step_by_step(m: Machine) -> dict[int, tuple[int, ...]]:
    """Fallback orders one ``find_next_best_node`` call at a time, as the kernel does."""
    node_load = {n: 0 for n in m.node_ids}
    orders = {}
    for local in m.node_ids:
        used: set[int] = set()
        order, prev = [], local
        while (nxt := find_next_best_node(m, local, used, node_load, False)) >= 0:
            if m.dist(local, nxt) != m.dist(local, prev):
                node_load[nxt] += 1
            order.append(nxt)
            prev = nxt
        orders[local] = tuple(order)
    return orders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--reference-max", type=int, default=256)
    args = ap.parse_args()
    print(f"{'nodes':>6} {'derive':>9} {'zonelists':>10} {'step-by-step':>13}")
    for n in args.nodes:
        m = machine(n)
        t0 = time.perf_counter()
        d = derive(m)
        t_derive = time.perf_counter() - t0
        by_node = {nid: d.zones_of(nid) for nid in m.node_ids}
        t0 = time.perf_counter()
        orders, _, _ = build_zonelists(m, by_node)
        t_sorted = time.perf_counter() - t0
        ref = "skipped"
        if n <= args.reference_max:
            t0 = time.perf_counter()
            assert step_by_step(m) == orders
            ref = f"{time.perf_counter() - t0:.3f} s"
        print(f"{n:>6} {t_derive:>7.3f} s {t_sorted:>8.3f} s {ref:>13}", flush=True)


if __name__ == "__main__":
    main()
