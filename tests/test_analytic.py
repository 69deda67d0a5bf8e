"""Analytic checks of the timing model, each within 2 %.

* one thread pointer-chasing on an idle machine sees exactly the idle latency, local and
  remote;
* one node's controller saturated by many threads delivers its bandwidth and no more, from
  just enough demand to eight times its bandwidth;
* a remote stream is capped by the link or by the bandwidth-matrix entry, whichever is lower;
* loaded latency rises monotonically with the injection rate while the delivered bandwidth
  stays below the controller's.
"""

from __future__ import annotations

import pytest

from numasim.api import run
from numasim.topology.build import make_machine
from numasim.topology.loaders import load_machine
from numasim.topology.model import Link, Node
from numasim.workloads.kernels import build_kernel
from numasim.workloads.model import Phase, Region, Workload

CLX = load_machine("clx-2s")


def _phase(result, name):
    return next(p for p in result.to_dict()["phases"] if p["name"] == name)


def _readers(threads, cpus, size, policy, compute=0, repeat=1):
    """Threads that first touch a region under ``policy`` and then only read it."""
    return Workload(
        name="readers", threads=threads, cpus=cpus,
        regions=[Region("data", size, policy=policy)],
        phases=[Phase("init", "init", ["data"]),
                Phase("read", "stride", ["data"], stride=64, compute=compute, repeat=repeat)])


@pytest.mark.parametrize("engine", ["fast", "exact"])
def test_idle_pointer_chase_sees_the_latency_matrix(engine):
    wl = Workload(
        name="chase", threads=1, cpus=[0],
        regions=[Region("local", 256 << 10, policy="--membind=0"),
                 Region("remote", 256 << 10, policy="--membind=1")],
        phases=[Phase("init", "init", ["local", "remote"]),
                Phase("local", "pointer_chase", ["local"]),
                Phase("remote", "pointer_chase", ["remote"])])
    r = run(CLX, wl, engine=engine)
    local, remote = _phase(r, "local"), _phase(r, "remote")
    assert local["latency_ns_mean"] == pytest.approx(81.2, rel=0.02)
    assert remote["latency_ns_mean"] == pytest.approx(130.2, rel=0.02)
    # nothing else runs: not a cycle of queueing, so the match is exact
    assert local["latency_ns_mean"] == pytest.approx(81.2, abs=1e-6)
    assert remote["latency_ns_mean"] == pytest.approx(130.2, abs=1e-6)
    # a chase of n lines takes n latencies
    lines = (256 << 10) // 64
    assert local["cycles"] == pytest.approx(lines * 81.2 * 2.3, rel=1e-6)


@pytest.mark.parametrize("engine,size", [("fast", 32 << 20), ("exact", 1 << 20)])
def test_saturated_controller_delivers_its_bandwidth_and_no_more(engine, size):
    cpus = list(range(0, 24))  # all of node 0's cores, demand ~190 GB/s > 122 GB/s
    r = run(CLX, _readers(24, cpus, size, "--membind=0"), engine=engine)
    gbps = _phase(r, "read")["resources"]["mc 0"]["GBps"]
    assert gbps == pytest.approx(CLX.mc_bandwidth(0), rel=0.02)
    assert gbps <= CLX.mc_bandwidth(0) * 1.02


CXL = load_machine("cxl-1s")  # node 0: 32 CPUs, 30.6 GB/s; node 1: CXL, no CPUs, 4.8 GB/s


@pytest.mark.parametrize("node,threads,size", [
    (0, 4, "16MB"), (0, 8, "16MB"), (0, 16, "32MB"), (0, 32, "64MB"),  # 1x .. 8x the DRAM's
    (1, 4, "4MB"), (1, 8, "8MB"), (1, 16, "8MB"), (1, 32, "16MB"),  # 1x .. 7.5x the CXL's
])
def test_overloaded_controller_delivers_its_bandwidth(node, threads, size):
    """STREAM triad bound to one node, with one to eight times the demand its controller can
    serve: the fast engine's contention estimate must neither give away bandwidth nor
    invent it.  (It once settled an 8x-overloaded controller at 40-70 % busy: a load that
    pulsed because every request got the same estimated wait was taken for a convoy.)"""
    wl = build_kernel("stream", op="triad", threads=threads, size=size)
    r = run(CXL, wl, numactl=f"--membind={node}")
    ph = _phase(r, "triad")
    util = ph["resources"][f"mc {node}"]["utilisation"]
    # the CXL node at 4 threads, just enough demand, is the marginal point: the exact engine
    # keeps the device 99.99 % busy, the fast engine 95.4 % -- and 94.6 % since the write-backs
    # cross a 4.8 GB/s host->device queue (the measured read figure; it was 30.6 GB/s, read
    # from the CPU-less node's own, unmeasured row)
    lo = 0.94 if (node, threads) == (1, 4) else 0.95
    assert lo <= util <= 1.02, util
    # triad moves 4 lines (2 reads, a read for ownership, a write-back) per 3 counted
    assert ph["bandwidth_GBps"] == pytest.approx(CXL.mc_bandwidth(node) * 0.75 * util, rel=0.02)


@pytest.mark.parametrize("engine,size", [("fast", 32 << 20), ("exact", 1 << 20)])
def test_remote_stream_capped_by_the_matrix_entry(engine, size):
    # node 1's cores read node 0's memory: the matrix says 51.3 GB/s, the UPI link 62.4 GB/s
    # (55.5 GB/s of data lines once each carries its 8-byte header: protocol upi)
    cpus = list(range(24, 48))
    r = run(CLX, _readers(24, cpus, size, "--membind=0"), engine=engine)
    ph = _phase(r, "read")
    assert ph["resources"]["cap 0->1"]["GBps"] == pytest.approx(51.3092, rel=0.02)
    assert ph["resources"]["link 0->1"]["utilisation"] < 0.95


@pytest.mark.parametrize("engine,size", [("fast", 32 << 20), ("exact", 1 << 20)])
def test_remote_stream_capped_by_the_link(engine, size):
    m = make_machine("narrow-link", [Node(0, tuple(range(16)), 8 << 30),
                                     Node(1, tuple(range(16, 32)), 8 << 30)],
                     latency_ns=[[80, 130], [130, 80]],
                     bandwidth_GBps=[[100, 60], [60, 100]],
                     links=[Link(0, 1, 30.0)], cpu_ghz=2.0)
    r = run(m, _readers(16, list(range(16, 32)), size, "--membind=0"), engine=engine)
    ph = _phase(r, "read")
    assert ph["resources"]["link 0->1"]["GBps"] == pytest.approx(30.0, rel=0.02)
    # what the program reads: 8 bytes per line visited, 64 bytes of traffic each
    assert ph["bandwidth_GBps"] * 8 == pytest.approx(30.0, rel=0.02)


def test_loaded_latency_rises_with_injection_rate_and_stays_bounded():
    """A load-latency curve (as Intel MLC draws it): 16 threads read node 0 with less and less
    compute between loads."""
    cpus = list(range(24)) + list(range(48, 56))
    lat, bw = [], []
    for gap in (1200, 600, 300, 150, 80, 40, 20, 10, 0):
        r = run(CLX, _readers(32, cpus, 16 << 20, "--membind=0", compute=gap))
        ph = _phase(r, "read")
        lat.append(ph["latency_ns_mean"])
        bw.append(ph["resources"]["mc 0"]["GBps"])
    assert all(b <= CLX.mc_bandwidth(0) * 1.02 for b in bw)
    assert all(b2 >= b1 * 0.99 for b1, b2 in zip(bw, bw[1:], strict=False))
    # monotone; once saturated the latency is flat (Little's law), up to rounding
    assert all(l2 >= l1 * 0.995 for l1, l2 in zip(lat, lat[1:], strict=False)), lat
    assert lat[0] == pytest.approx(81.2, rel=0.01)  # idle end of the curve
    assert lat[-1] > 1.5 * lat[0]  # saturated end: queueing dominates
    assert bw[-1] == pytest.approx(CLX.mc_bandwidth(0), rel=0.03)
