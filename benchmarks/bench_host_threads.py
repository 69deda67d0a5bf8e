"""What the fast engine's bound phase gains on this host's threads (numasim.machine.ahead).

Two measurements in one run, each alternated between one thread and N (``--threads``, default
every CPU the process may use), best of ``--repeat``:

1. the host itself: a throughput-bound numba loop (four independent LCG chains) split over
   N threads, against one -- what the host's cores give a loop like the engine's when they
   work at once (shared physical cores or a busy host give less than N);
2. the engine: bench_engines' 80 MB contended STREAM triad (skx-2s-snc2, 16 threads,
   ``--interleave=0,1``), each phase's wall time, with the result checked to be the same bytes.
   The first-touch phase faults in every quantum and runs in order on any number of threads;
   the triad phase is the steady one.
3. the engine with NUMA balancing on (clx-2s, STREAM triad, 16 threads, 32 MiB arrays): the
   whole run's wall time.  Every thread's scheduler tick (4 ms) falls inside a quantum; such a
   tick no longer puts the quantum back when it only adds CPU time (numasim.machine.ahead).

    python benchmarks/bench_host_threads.py              # under a minute
    python benchmarks/bench_host_threads.py --quick      # 16 MB arrays
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from numasim.api import run  # noqa: E402
from numasim.machine import fast as F  # noqa: E402
from numasim.machine.ahead import host_threads  # noqa: E402
from numasim.topology.loaders import load_machine  # noqa: E402
from numasim.workloads.kernels import build_kernel  # noqa: E402


@njit(nogil=True, cache=True)
def _chains(n, seed):
    """Four independent LCG chains: enough independent work to keep a core's ports busy."""
    m, a = np.uint64(6364136223846793005), np.uint64(1442695040888963407)
    x0 = np.uint64(seed)
    x1, x2, x3 = x0 + np.uint64(1), x0 + np.uint64(2), x0 + np.uint64(3)
    for _ in range(n):
        x0, x1, x2, x3 = x0 * m + a, x1 * m + a, x2 * m + a, x3 * m + a
        x0 ^= x0 >> np.uint64(7)
        x1 ^= x1 >> np.uint64(7)
        x2 ^= x2 >> np.uint64(7)
        x3 ^= x3 >> np.uint64(7)
    return x0 ^ x1 ^ x2 ^ x3


def host_scaling(k: int, steps: int, repeat: int) -> tuple[float, float]:
    """Best wall seconds of ``steps`` chain steps on one thread and split over ``k``."""
    _chains(10, 1)
    best = {1: 1e9, k: 1e9}
    for _ in range(repeat):
        for n in (1, k):
            t = time.perf_counter()
            with ThreadPoolExecutor(n) as ex:
                list(ex.map(lambda i, n=n: _chains(steps // n, i), range(n)))
            best[n] = min(best[n], time.perf_counter() - t)
    return best[1], best[k]


def phase_times(k: int, size: int, repeat: int):
    """Best wall seconds of each phase of the triad run, on one thread and on ``k``; the
    run-ahead note of the last k-thread run; whether the results were the same bytes."""
    m = load_machine("skx-2s-snc2")
    walls: list[float] = []
    orig = F.FastEngine.phase

    def timed_phase(self, prog, active, t0):
        t = time.perf_counter()
        end = yield from orig(self, prog, active, t0)
        walls.append(time.perf_counter() - t)
        return end

    F.FastEngine.phase = timed_phase
    best = {1: [1e9, 1e9], k: [1e9, 1e9]}
    texts, note = {}, ""
    try:
        for _ in range(repeat):
            for n in (1, k):
                walls.clear()
                wl = build_kernel("stream", op="triad", threads=16, size=size, repeat=2)
                r = run(m, wl, numactl=["--interleave=0,1"], host_threads=n)
                best[n] = [min(a, b) for a, b in zip(best[n], walls, strict=True)]
                texts[n] = r.to_json(host=False)
                if n == k:
                    note = r.host_note
    finally:
        F.FastEngine.phase = orig
    return best[1], best[k], note, texts[1] == texts[k]


def balancing_times(k: int, repeat: int, passes: int):
    """Best wall seconds of a triad run with NUMA balancing on, on one thread and on ``k``;
    the run-ahead note of the last k-thread run; whether the results were the same bytes."""
    m = load_machine("clx-2s")
    best, texts, note = {1: 1e9, k: 1e9}, {}, ""
    for _ in range(repeat):
        for n in (1, k):
            wl = build_kernel("stream", op="triad", threads=16, size=32 << 20, repeat=passes)
            t = time.perf_counter()
            r = run(m, wl, host_threads=n, numa_balancing=True)
            best[n] = min(best[n], time.perf_counter() - t)
            texts[n] = r.to_json(host=False)
            if n == k:
                note = r.host_note
    return best[1], best[k], note, texts[1] == texts[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None,
                    help="host threads to compare with one (default: every usable CPU)")
    ap.add_argument("--repeat", type=int, default=4, help="alternations; the best is kept")
    ap.add_argument("--quick", action="store_true", help="16 MB arrays")
    args = ap.parse_args()
    k = host_threads(args.threads)
    if k < 2:
        print("one host thread: nothing to compare (give --threads 2 or more)")
        return 0
    one, many = host_scaling(k, 40_000_000, args.repeat)
    print(f"host: a throughput-bound numba loop on {k} threads runs {one / many:.2f}x as fast "
          f"as on one ({one:.3f} s -> {many:.3f} s; {k}x would be every core free)")
    size = 16_000_000 if args.quick else 80_000_000
    p1, pk, note, same = phase_times(k, size, args.repeat)
    print(f"engine: STREAM triad, {size / 1e6:g} MB arrays, 16 CPUs on skx-2s-snc2, best of "
          f"{args.repeat} alternated:")
    for name, a, b in (("first touch", p1[0], pk[0]), ("triad", p1[1], pk[1])):
        print(f"  {name:<12} {a:.3f} s on 1 thread, {b:.3f} s on {k}: {a / b:.2f}x")
    print(f"  {note}; the same bytes: {'yes' if same else 'NO'}")
    passes = 10 if args.quick else 30
    b1, bk, bnote, bsame = balancing_times(k, args.repeat, passes)
    print(f"engine, NUMA balancing on: STREAM triad, 32 MiB arrays, {passes} passes, 16 CPUs on "
          f"clx-2s, whole run, best of {args.repeat} alternated:")
    print(f"  {b1:.3f} s on 1 thread, {bk:.3f} s on {k}: {b1 / bk:.2f}x")
    print(f"  {bnote}; the same bytes: {'yes' if bsame else 'NO'}")
    return 0 if same and bsame else 1


if __name__ == "__main__":
    sys.exit(main())
