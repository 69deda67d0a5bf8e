"""Page faults per second: the numba allocator core in bulk against its Python twin.

A 4-node machine (SLIT 10/16/22 like a 4-socket ring), one process, four regions under mixed
policies -- first touch (local), mbind BIND to a remote node, INTERLEAVE over all nodes,
WEIGHTED_INTERLEAVE 3:1:1:1 -- each written in one call, so every page takes a full fault
(page tables, policy lookup, zonelist walk, watermarks, numastat).  Both backends run in the
same process on the same machine; the twin gets fewer pages (it is ~100x slower) and rates are
compared as pages per second.  Compile time of the core is measured first (cold if numba's
cache is empty).  Last, single-page faults called from a jitted loop through a jitted step, the
shape of the fast engine's ``bound._fault`` (one call per fault: the ``kern`` bundle unpacked,
the zone cache and the policy run set up afresh each time), best of 5.

    python benchmarks/bench_faults.py [--pages N] [--twin-pages N] [--single-pages N]
"""

from __future__ import annotations

import argparse
import functools
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


@functools.cache
def _single_loop():
    """The jitted loop of :func:`single`, compiled once per process."""
    from numba import njit

    from numasim.mm import alloc_core as core

    @njit
    def step(kern, t, r, vpn, res):  # bound._fault's call
        return core.handle_mm_fault_range(kern, t, r, vpn, 1, 1, core.OOM_MAY, res)

    @njit
    def loop(kern, t, r, start, n, res):
        bad = 0
        for i in range(n):
            bad += step(kern, t, r, start + i, res)
        return bad

    return loop


def single(pages: int, interleave: bool) -> float:
    """Seconds for ``pages`` first-touch write faults of one page per core call, made from
    jitted code as the fast engine makes them."""
    import numpy as np

    from numasim.mm import alloc_core as core
    from numasim.mm import syscalls as sc
    from numasim.mm.constants import MPOL_INTERLEAVE
    from numasim.mm.kernel import Kernel
    from numasim.mm.nodemask import UserMask
    from numasim.mm.state import R_ALIVE, R_START

    loop = _single_loop()
    k = Kernel(machine(), backend="numba")
    t = k.new_process(0)
    vpn = 0x100000
    k.mmap(t, pages, vpn=vpn)
    if interleave:
        sc.mbind(k, t, vpn << 12, pages << 12, MPOL_INTERLEAVE, UserMask.of((0, 1, 2, 3)),
                 1025, 0)
    ks = k.ks
    ks.ensure_pages(pages + pages // 256 + 4096)
    r = int(np.nonzero((ks.regions[:, R_START] == vpn) & (ks.regions[:, R_ALIVE] == 1))[0][0])
    res = core.fault_res(int(ks.nodeinfo.shape[0]))
    t0 = time.perf_counter()
    bad = loop(ks.core_args(), t, r, vpn, pages, res)
    dt = time.perf_counter() - t0
    assert bad == 0, bad
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1 << 20, help="pages per region (numba)")
    ap.add_argument("--twin-pages", type=int, default=1 << 14, help="pages per region (twin)")
    ap.add_argument("--single-pages", type=int, default=1 << 16,
                    help="pages faulted one per call (0: skip)")
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
    if args.single_pages:
        for il in (False, True):
            single(64, il)  # compiles the loop
            best = min(single(args.single_pages, il) for _ in range(5))
            print(f"single-page ({'interleave' if il else 'local':10}): {args.single_pages:>10} "
                  f"faults in {best:7.3f} s = {args.single_pages / best / 1e6:8.3f} M faults/s")


if __name__ == "__main__":
    main()
