"""Wall time of whole runs with the ``dram`` controller model against ``fifo``, per engine.

clx-2s with its default ``fifo`` controllers against the same machine with ``memory_controller:
{impl: dram, preset: ddr4-2933}``: STREAM copy and GUPS, 24 threads on node 0 with their
memory there.  The fast engine pays for the model once per quantum (the mix factor, the
derived curve's table, cached on disk after the first derivation); the exact engine serves
every request through the banks (numasim.memctrl.dram_online).  Best of ``--reps`` runs after
one warm-up run each (numba compile, curve derivation).

    python benchmarks/bench_dram_engine.py [--size 64MiB] [--exact-size 4MiB] [--reps 2]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="64MiB", help="fast engine working set")
    ap.add_argument("--exact-size", default="4MiB", help="exact engine working set")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()

    from numasim.api import run
    from numasim.memctrl import ControllerSpec
    from numasim.topology.loaders import load_machine

    fifo = load_machine("clx-2s")
    dram = fifo.with_changes(memory_controller=ControllerSpec.from_dict(
        {"impl": "dram", "preset": "ddr4-2933"}))
    for engine, size in (("fast", args.size), ("exact", args.exact_size)):
        for wl, kw in (("stream", {"op": "copy"}), ("gups", {})):
            best = {}
            for name, m in (("fifo", fifo), ("dram", dram)):
                def once(m=m, wl=wl, kw=kw, engine=engine, size=size):
                    t = time.perf_counter()
                    run(m, wl, engine=engine, threads=24, size=size, cpus=list(range(24)),
                        numactl="--membind=0", **kw)
                    return time.perf_counter() - t
                once()
                best[name] = min(once() for _ in range(args.reps))
            print(f"{engine:5s} {wl:6s} {size:>6s}: fifo {best['fifo']:7.2f} s, dram "
                  f"{best['dram']:7.2f} s ({best['dram'] / best['fifo']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
