"""Sweep throughput: points per minute with ``-j 1`` (in process) and ``-j 2`` (two worker
processes), on the real engine.

The sweep is STREAM triad on the two-socket Cascade Lake (clx-2s): four placements x the
thread counts given, each point ``--size`` per array.  numba's cache is warmed first (one
point in this process) so that compile time is not counted; worker start-up is counted,
since a user pays it.  Each ``-j`` runs into a fresh results folder (nothing reused) and the
tables are checked to be the same bytes.

    python benchmarks/bench_sweep.py [--size 8MiB] [--threads 1,2,4,8] [--jobs 1,2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def experiment(size: str, threads: list[int]) -> dict:
    return {
        "experiment": "bench-sweep",
        "machine": "clx-2s",
        "workload": {"kernel": "stream", "op": "triad", "size": size},
        "seed": 1,
        "sweep": {
            "cases": [
                {"label": "first touch"},
                {"label": "serial init", "init": "serial"},
                {"label": "interleave", "policy": "--interleave=all"},
                {"label": "membind 1", "policy": "--membind=1"},
            ],
            "grid": {"threads": threads},
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="8MiB", help="per array (default 8MiB)")
    ap.add_argument("--threads", default="1,2,4,8", help="thread counts (default 1,2,4,8)")
    ap.add_argument("--jobs", default="1,2", help="-j values to time (default 1,2)")
    args = ap.parse_args()

    from numasim.experiments.expand import expand
    from numasim.experiments.point import run_point
    from numasim.experiments.runner import run_sweep
    from numasim.experiments.schema import read_source

    exp = expand(read_source(data=experiment(args.size, [int(t) for t in
                                                          args.threads.split(",")])))
    n = len(exp.points)
    t0 = time.perf_counter()
    run_point(exp.points[0].config)  # warm numba's cache (compile on a cold one)
    warm = time.perf_counter() - t0
    print(f"sweep: {n} points (4 placements x threads {args.threads}, STREAM triad "
          f"{args.size} per array, clx-2s); warm-up point {warm:.2f} s; "
          f"{os.cpu_count()} CPUs")
    print(f"{'-j':>3} {'seconds':>9} {'points/min':>11} {'engine s':>9}")
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for j in [int(x) for x in args.jobs.split(",")]:
            out = Path(tmp) / f"j{j}"
            s = run_sweep(exp, out, jobs=j, progress=False)
            assert s.ok, s.failures
            engine = 0.0
            import json

            for f in (out / "points").glob("*.json"):
                engine += json.loads(f.read_text())["host_seconds"] or 0.0
            print(f"{j:>3} {s.seconds:9.2f} {60 * n / s.seconds:11.1f} {engine:9.2f}")
            tables[j] = (out / "results.csv").read_bytes()
    same = len(set(tables.values())) == 1
    print(f"result tables identical across -j: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
