"""Fast-forward's error and speed-up: each case run without and with it, in the same run.

Fast-forward (:mod:`numasim.machine.fastforward`) samples long steady phases: detailed
windows of quanta, skipped stretches advanced at the window's rates.  For every case below
the same configuration runs twice with the fast engine -- fast-forward off (every access
simulated) and on (``--ff``, default 2,20,0.02) -- and the table gives, per measured phase,
the bandwidth, the phase's simulated time and the workload's own figure (STREAM GB/s, GUP/s,
ns per dependent load) with their relative error, the whole run's simulated time, whether
every page landed on the same node, the share of simulated time skipped, and the host time
of the simulation proper (numba compilation excluded: everything is warmed up first).

    python benchmarks/bench_fastforward.py            # the cases below
    python benchmarks/bench_fastforward.py --quick    # smaller, for a smoke test
    python benchmarks/bench_fastforward.py --ff 4,10,0.01

The cases (a representative set of the shipped workloads and experiments' points, with
more repetitions than the experiments use so that there is a steady phase to sample):
STREAM triad with parallel and serial first touch (policy-comparison's first two cases),
STREAM copy under --interleave=all, a triad from remote memory (--membind=1 from socket 0),
a triad faulting its pages inside the measured phase (--init none, --interleave=all:
every page's node is compared), CXL weighted interleave
6:1 (cxl-tiering's best point), an interleaved triad on the 8-node EPYC (a
thread-scaling-epyc point), GUPS, a pointer chase and Zipf loads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from numasim.api import run  # noqa: E402
from numasim.topology.loaders import load_machine  # noqa: E402


def cases(quick: bool) -> list[tuple[str, str, dict, str | None, str | None]]:
    """(label, machine, kernel options, numactl, weights)."""
    s = 8 if quick else 1  # divide sizes
    mib = 1 << 20
    return [
        ("triad parallel init", "clx-2s",
         dict(kernel="stream", op="triad", threads=16, size=64 * mib // s, repeat=20), None,
         None),
        ("triad serial init", "clx-2s",
         dict(kernel="stream", op="triad", threads=16, size=64 * mib // s, repeat=20,
              init="serial"), None, None),
        ("copy --interleave=all", "clx-2s",
         dict(kernel="stream", op="copy", threads=16, size=64 * mib // s, repeat=20),
         "--interleave=all", None),
        ("triad --membind=1 (remote)", "clx-2s",
         dict(kernel="stream", op="triad", threads=8, size=32 * mib // s, repeat=20),
         "--cpunodebind=0 --membind=1", None),
        ("triad --init none, interleave", "clx-2s",
         dict(kernel="stream", op="triad", threads=4, size=32 * mib // s, repeat=20,
              init="none"), "--interleave=all", None),
        ("CXL weighted 6:1", "cxl-1s",
         dict(kernel="stream", op="triad", threads=32, size=32 * mib // s, repeat=20),
         "--weighted-interleave=all", "6:1"),
        ("epyc --interleave=all 32 thr", "epyc-8n-nps4",
         dict(kernel="stream", op="triad", threads=32, size=32 * mib // s, repeat=20),
         "--interleave=all", None),
        ("gups", "clx-2s", dict(kernel="gups", threads=16, size=128 * mib // s, repeat=16),
         None, None),
        ("pointer chase", "clx-2s",
         dict(kernel="pointer_chase", threads=4, size=32 * mib // s, repeat=4), None, None),
        ("zipf", "clx-2s", dict(kernel="zipf", threads=8, size=64 * mib // s, repeat=24),
         None, None),
    ]


def one(machine, opts: dict, numactl, weights, ff):
    o = dict(opts)
    kernel = o.pop("kernel")
    r = run(machine, kernel, numactl=numactl, weights=weights, fast_forward=ff, **o)
    return r, r.to_dict()


def err(a: float, b: float) -> float:
    """Relative error of ``a`` (with fast-forward) against ``b`` (without), in %."""
    return 100.0 * (a - b) / b if b else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--ff", default="2,20,0.02", help="the fast-forward setting (2,20,0.02)")
    ap.add_argument("--only", help="run only the cases whose label contains this")
    args = ap.parse_args()
    t0 = time.perf_counter()
    for m in ("clx-2s", "cxl-1s", "epyc-8n-nps4"):
        run(m, "stream", threads=2, size=1 << 20)
        run(m, "stream", threads=2, size=1 << 20, repeat=8, fast_forward=args.ff)
    print(f"warm-up (numba cache load or compile): {time.perf_counter() - t0:.2f} s")
    print(f"fast-forward {args.ff}; errors are (with - without) / without\n")
    hdr = (f"{'case':<30} {'phase':<7} {'GB/s off':>9} {'err %':>7} {'time err %':>10} "
           f"{'figure err %':>12} {'run err %':>9} {'pages':>5} {'skipped':>7} "
           f"{'host off':>8} {'host on':>7} {'speed-up':>8}")
    print(hdr)
    print("-" * len(hdr))
    worst = 0.0
    tot_off = tot_on = 0.0
    for label, mname, opts, numactl, weights in cases(args.quick):
        if args.only and args.only not in label:
            continue
        m = load_machine(mname)
        r0, d0 = one(m, opts, numactl, weights, None)
        r1, d1 = one(m, opts, numactl, weights, args.ff)
        same_pages = d0["pages_per_node"] == d1["pages_per_node"]
        ff = d1["config"]["fast_forward"]
        tot_off += r0.host_seconds
        tot_on += r1.host_seconds
        for p0, p1 in zip(d0["phases"], d1["phases"], strict=True):
            if not p0["measured"]:
                continue
            eb = err(p1["bandwidth_GBps"], p0["bandwidth_GBps"])
            et = err(p1["seconds"], p0["seconds"])
            f0, f1 = p0.get("figure"), p1.get("figure")
            ef = err(f1["value"], f0["value"]) if f0 and f1 else 0.0
            er = err(d1["runtime_s"], d0["runtime_s"])
            worst = max(worst, abs(eb), abs(et), abs(ef))
            print(f"{label:<30} {p0['name']:<7} {p0['bandwidth_GBps']:>9.2f} {eb:>7.3f} "
                  f"{et:>10.3f} {ef:>12.3f} {er:>9.3f} {'same' if same_pages else 'DIFF':>5} "
                  f"{ff['skipped_fraction']:>7.1%} {r0.host_seconds:>8.2f} "
                  f"{r1.host_seconds:>7.2f} {r0.host_seconds / r1.host_seconds:>7.1f}x")
    print(f"\nworst |error| over bandwidth, phase time and figure: {worst:.3f} %; host time "
          f"{tot_off:.1f} s without, {tot_on:.1f} s with ({tot_off / max(tot_on, 1e-9):.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
