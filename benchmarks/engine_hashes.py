"""One md5 per case of the fast engine's result JSON: a refactoring guard for the engine.

A change that should not move any number (a split of ``run_quantum`` into helpers, an
inlining, a renamed local) must leave every hash here as it was.  The cases cover the paths
of ``numasim.machine.bound.run_quantum``: plain reads/writes local, remote and interleaved,
the fault path (``--init none``: every first store faults and zeroes its page), random and
dependent accesses, a zipf mix, transparent huge pages (the pending-fault path), NUMA
balancing with migrations (hinting faults, copy lines), reclaim with demotion on a small tier
machine (kswapd polls, direct reclaim), a last-level cache (hits, dirty victims), non-temporal
writes (the write route), the ``dram`` controller model (mix pricing) and the TLB's page
walks (through the LLC).
Sizes are small: the whole set runs in well under a minute once numba's cache is warm.

    python benchmarks/engine_hashes.py            # print "case md5" lines
    python benchmarks/engine_hashes.py --check    # compare with engine_hashes_main.txt
    python benchmarks/engine_hashes.py --write    # record the current hashes there

``to_json(host=False)``: host seconds are the only field that is allowed to differ.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

HERE = Path(__file__).resolve().parent
RECORD = HERE / "engine_hashes_main.txt"
SMALL_TIER = HERE.parent / "tests" / "data" / "machines" / "small-tier.yaml"
MIB = 1 << 20


def _cases():
    """``name -> callable returning a RunResult`` (built lazily: imports are slow)."""
    from numasim.api import run
    from numasim.memctrl import ControllerSpec
    from numasim.topology.loaders import load_machine
    from numasim.workloads.model import Phase, Region, Workload

    clx = load_machine("clx-2s")
    skx = load_machine("skx-2s-snc2")
    dram = clx.with_changes(memory_controller=ControllerSpec.from_dict(
        {"impl": "dram", "preset": "ddr4-2933"}))

    def trap() -> Workload:  # as tests/test_numab_timed.py: node 1 reads node 0's pages
        return Workload(name="trap", threads=2, cpus=[0, 24], regions=[Region("a", 2 * MIB)],
                        phases=[Phase("init", "init", threads=[0]),
                                Phase("read", "stride", stride=64, repeat=60, threads=[1])])

    def fill() -> Workload:  # as tests/test_reclaim_timed.py: overcommit node 0 under BIND
        return Workload(name="fill", threads=1, cpus=[0],
                        regions=[Region("a", 40 * MIB, policy="--membind=0")],
                        phases=[Phase("fill", "stride", stride=4096, write=True)])

    knobs = {"scan_delay_ms": 1, "scan_period_min_ms": 4, "scan_size_mb": 1}
    return {
        "triad-local": lambda: run(clx, "stream", op="triad", threads=16, size="4MiB"),
        "copy-remote": lambda: run(clx, "stream", op="copy", threads=8, size="4MiB",
                                   numactl="--membind=1 --cpunodebind=0"),
        "triad-interleave": lambda: run(skx, "stream", op="triad", threads=16, size="4MiB",
                                        numactl="--interleave=0,1"),
        "copy-init-none": lambda: run(clx, "stream", op="copy", threads=16, size="8MiB",
                                      init="none", numactl="--membind=1"),
        "gups": lambda: run(clx, "gups", threads=8, size="16MiB", count=40000),
        "pointer-chase": lambda: run(clx, "pointer_chase", threads=2, size="4MiB",
                                     count=20000, numactl="--membind=1"),
        "zipf": lambda: run(skx, "zipf", threads=8, size="8MiB", count=20000,
                            numactl="--interleave=all"),
        "thp-triad": lambda: run(clx, "stream", op="triad", threads=4, size="8MiB",
                                 thp="always", numactl="--interleave=all"),
        "numab-migrate": lambda: run(clx, trap(), numa_balancing=True, balancing_knobs=knobs),
        "reclaim-demote": lambda: run(load_machine(str(SMALL_TIER)), fill(),
                                      numa_balancing=2, balancing_knobs=knobs),
        "llc-zipf": lambda: run(clx, "zipf", threads=4, size="4MiB", count=20000, write=True,
                                cpu={"llc": {"size": MIB, "ways": 8}}),
        "nt-copy": lambda: run(clx, "stream", op="copy", threads=8, size="4MiB",
                               cpu={"write_allocate": False}, numactl="--interleave=all"),
        "dram-copy": lambda: run(dram, "stream", op="copy", threads=8, size="4MiB",
                                 cpus=list(range(8)), numactl="--membind=0"),
        "tlb-gups": lambda: run(clx, "gups", threads=8, size="16MiB", count=40000,
                                numactl="--membind=1",
                                cpu={"tlb": {"entries": 64, "ways": 4},
                                     "llc": {"size": MIB, "ways": 8}}),
    }


def hashes(only: list[str] | None = None) -> dict[str, str]:
    """``case -> md5`` of the fast engine's result JSON without host time."""
    out = {}
    for name, make in _cases().items():
        if only and name not in only:
            continue
        text = make().to_json(host=False)
        out[name] = hashlib.md5(text.encode()).hexdigest()
        print(f"{name} {out[name]}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help=f"compare with {RECORD.name}")
    ap.add_argument("--write", action="store_true", help=f"record into {RECORD.name}")
    ap.add_argument("cases", nargs="*", help="only these cases (default: all)")
    args = ap.parse_args()
    got = hashes(args.cases or None)
    if args.write:
        RECORD.write_text("".join(f"{k} {v}\n" for k, v in got.items()))
        return 0
    if args.check:
        want = dict(line.split() for line in RECORD.read_text().splitlines() if line.strip())
        bad = [k for k, v in got.items() if want.get(k) != v]
        for k in bad:
            print(f"DIFFERS: {k} (recorded {want.get(k)}, now {got[k]})")
        print("all identical" if not bad else f"{len(bad)} of {len(got)} differ")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
