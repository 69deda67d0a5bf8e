"""Page faults per second: the numba allocator core in bulk against its Python twin.

A 4-node machine (SLIT 10/16/22 like a 4-socket ring), one process, four regions under mixed
policies -- first touch (local), mbind BIND to a remote node, INTERLEAVE over all nodes,
WEIGHTED_INTERLEAVE 3:1:1:1 -- each written in one call, so every page takes a full fault
(page tables, policy lookup, zonelist walk, watermarks, numastat).  Both backends run in the
same process on the same machine; the twin gets fewer pages (it is ~100x slower) and rates are
compared as pages per second.  Compile time of the core is measured first (cold if numba's
cache is empty).

    python benchmarks/bench_faults.py [--pages N] [--twin-pages N]
"""

from __future__ import annotations

import argparse
import time

from numasim.topology.build import make_machine
from numasim.topology.model import Node


def machine():
    gib = 1 << 30
    nodes = [Node(i, tuple(range(4 * i, 4 * i + 4)), 32 * gib) for i in range(4)]
    dist = [[10, 16, 16, 22], [16, 10, 22, 16], [16, 22, 10, 16], [22, 16, 16, 10]]
    return make_machine("bench-4n", nodes, distance=dist, wi_weights=(3, 1, 1, 1))


def run(backend: str, pages: int) -> tuple[float, int, dict]:
    from numasim.mm import syscalls as sc
    from numasim.mm.constants import MPOL_BIND, MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE
    from numasim.mm.kernel import Kernel
    from numasim.mm.nodemask import UserMask

    k = Kernel(machine(), backend=backend)
    t = k.new_process(0)
    regions = []
    for i, (mode, nodes) in enumerate([(None, ()), (MPOL_BIND, (2,)),
                                       (MPOL_INTERLEAVE, (0, 1, 2, 3)),
                                       (MPOL_WEIGHTED_INTERLEAVE, (0, 1, 2, 3))]):
        vpn = (0x100000 + i * 0x400000)
        k.mmap(t, pages, vpn=vpn)
        if mode is not None:
            sc.mbind(k, t, vpn << 12, pages << 12, mode, UserMask.of(nodes), 1025, 0)
        regions.append(vpn)
    k.ks.ensure_pages(4 * pages + 4 * (pages // 256) + 4096)
    t0 = time.perf_counter()
    n = 0
    for vpn in regions:
        n += k.touch(t, vpn, pages)
    dt = time.perf_counter() - t0
    per_node = {nid: int((k.ks.pages[: k.ks.sysvars[3], 0] == nid).sum())
                for nid in range(4)}
    return dt, n, per_node


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1 << 20, help="pages per region (numba)")
    ap.add_argument("--twin-pages", type=int, default=1 << 14, help="pages per region (twin)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import numasim.mm.alloc_core  # noqa: F401  (compiles or loads the cached core)

    load = time.perf_counter() - t0
    run("numba", 64)  # first call: page tables, caches
    dt_n, n_n, nodes_n = run("numba", args.pages)
    dt_p, n_p, nodes_p = run("python", args.twin_pages)
    rate_n, rate_p = n_n / dt_n, n_p / dt_p
    print(f"core import (compile or cache load): {load:.2f} s")
    print(f"numba core  : {n_n:>10} faults in {dt_n:7.3f} s = {rate_n / 1e6:8.2f} M faults/s"
          f"   pages per node {nodes_n}")
    print(f"python twin : {n_p:>10} faults in {dt_p:7.3f} s = {rate_p / 1e6:8.3f} M faults/s"
          f"   pages per node {nodes_p}")
    print(f"ratio numba / twin: {rate_n / rate_p:.1f}x")


if __name__ == "__main__":
    main()
