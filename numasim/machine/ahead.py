"""The fast engine's bound phase on several host threads: every CPU's quantum at once, kept
only where it is exactly what the CPUs' turns in order would have given.

ZSim runs its bound phase in parallel, one host thread per simulated core; numasim's CPUs run
their quanta one after the other (:meth:`numasim.machine.fast.FastEngine._run_cpu`) because a
fault changes the kernel's state the next CPU reads.  Within a quantum a CPU that takes no
fault reads only its own rows and what nobody writes in the quantum (page tables, the waits
the weave estimated, the routes) and writes only its own rows (its clocks, miss slots,
private FIFOs, time bins, statistics, latency histogram, thread state and access buffer,
NUMA balancing's per-CPU rows) and the accessed bits reclaim reads (a 1, whoever writes it).
So when no CPU faults or stops in a quantum, running them all at once on host threads leaves
every array exactly as the turns in order would: the same bytes, whatever the number of
threads.  A scheduler tick of NUMA balancing inside the quantum stops its CPU for Python,
but most ticks only add CPU time to their own task and count its requests (the quantum ends
before any tick that may scan); such a tick is noted (its cycle and the thread's request
counts) and the CPU goes on, and once the quantum is kept the noted ticks run in the order
the turns would have run them (:meth:`~numasim.machine.numab_clock.NumabClock.may_defer_tick`
says which ticks qualify).  That is the test (``tests/test_run_ahead.py``;
``benchmarks/engine_hashes.py --check`` with ``NUMASIM_HOST_THREADS=2``).

How a quantum is run ahead (:meth:`RunAhead.run`): the arrays the CPUs write are copied;
every CPU's ``run_quantum`` is called with ``spec=1``, which stops at the first ordinary
fault instead of taking it (``SPEC_ABORT``: nothing of the kernel's changed); if every CPU
returned ``FAULT_OK`` the quantum is done and the CPUs' turns find it so, otherwise (a fault,
a hinting fault, a tick that may act, kswapd's step, an OOM) the copies are put back and the
quantum runs in order.  After a quantum put back, the next 1, 2, 4 ... up to
:data:`MAX_BACKOFF` quanta run in order without trying (a first-touch phase faults in every
quantum); a new phase tries at once.

Not run ahead: runs with a modelled LLC (the CPUs share the cache's sets), quanta with fewer
than two CPUs running, and whatever runs on one host thread.  A modelled TLB is per CPU:
its rows are copied with the rest, and a page walk reads only page tables.  Where the time
goes then is unchanged, so the speed-up is that of the steady phases only.  ``python
benchmarks/bench_host_threads.py`` on the README's shared
2-vCPU host (which runs a plain throughput-bound numba loop 1.8x faster on two threads): the
80 MB contended triad's triad phase 1.21x and 1.60x faster on two threads in two runs, its
first-touch phase 0.90x and 0.98x (seven attempts put back, about 1 ms each).  With NUMA
balancing on (``numasim numactl --numa-balancing -- stream --kernel triad --threads 16 --size
32MiB --repeat 60 --machine clx-2s --host-threads 2``), passing the ticks took the quanta run
at once from 63 to 87 of 110 (the rest is the first-touch phase) and the run from 3.64-4.39 s
to 2.74-2.90 s (three alternations, one process, a 2-vCPU EPYC host).

Host threads: ``numasim.run(..., host_threads=N)``, ``--host-threads N`` on ``numasim run``
and ``numasim numactl``, or the environment variable ``NUMASIM_HOST_THREADS``; by default the
CPUs this process may run on.  The points of a sweep run on one thread each (the sweep runs
its points in parallel, ``--jobs``) unless the variable says otherwise.  The threads never
change a result.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from numasim.mm.state import FAULT_OK

ENV = "NUMASIM_HOST_THREADS"
MAX_BACKOFF = 64  # quanta a put-back attempt makes the next ones wait, at most


def host_threads(given: int | None = None) -> int:
    """The host threads to run the bound phase on: ``given``, else ``NUMASIM_HOST_THREADS``,
    else the CPUs this process may run on."""
    if given is not None:
        return max(1, int(given))
    env = os.environ.get(ENV, "").strip()
    if env:
        return max(1, check_host_threads(env, ENV))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_host_threads(value, field: str = "host_threads") -> int:
    """A thread count from a user: a whole number >= 1, else a ConfigError naming ``field``."""
    from numasim.errors import ConfigError

    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"host threads must be a whole number >= 1, got {value!r}",
                          field=field, hint="e.g. 2; 1 runs the CPUs' quanta in order")
    return n


class RunAhead:
    """The bound phase of a run on ``threads`` host threads (see the module docstring)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.pool = None
        self.saved: list[np.ndarray] = []
        self.skip = 0
        self.backoff = 1
        self.done = 0  # quanta run ahead
        self.put_back = 0  # attempts put back

    def phase_start(self) -> None:
        """A new phase: open the threads, try at once."""
        self.skip, self.backoff = 0, 1
        if self.threads > 1 and self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=self.threads,
                                           thread_name_prefix="numasim-bound")

    def phase_end(self) -> None:
        """The phase is over: the threads go (a sweep may fork after this run)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None

    def run(self, cpus: list[int], arrays: list[np.ndarray],
            quantum: Callable[[int], int],
            pause: Callable[[int, int], bool] | None = None) -> bool:
        """Run ``quantum(c)`` (a CPU's ``run_quantum`` with ``spec=1``; its status) for every
        CPU in ``cpus`` on the threads; True when all returned FAULT_OK and the quantum is
        done, False when ``arrays`` were put back as they were (or nothing was tried).
        ``pause(c, status)``, called on the CPU's thread for any other status, may let the
        CPU go on (True: it noted what to do once the quantum is kept; ``quantum(c)`` is
        called again)."""
        if self.pool is None or len(cpus) < 2:
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        self._save(arrays)
        k = min(self.threads, len(cpus))
        stop = [False]

        def work(part: list[int]) -> None:
            for c in part:
                while True:
                    if stop[0]:
                        return
                    st = quantum(c)
                    if st == FAULT_OK:
                        break
                    if pause is None or not pause(c, st):
                        stop[0] = True
                        return

        # neighbouring CPUs on the same thread: their rows share cache lines at the edges
        list(self.pool.map(work, [cpus[len(cpus) * i // k: len(cpus) * (i + 1) // k]
                                  for i in range(k)]))
        if stop[0]:
            for a, b in zip(arrays, self.saved, strict=True):
                np.copyto(a, b)
            self.skip = self.backoff
            self.backoff = min(MAX_BACKOFF, 2 * self.backoff)
            self.put_back += 1
            return False
        self.backoff = 1
        self.done += 1
        return True

    def _save(self, arrays: list[np.ndarray]) -> None:
        """Copy ``arrays`` into buffers kept from quantum to quantum (a fresh copy each time
        paid the host's page faults on megabytes)."""
        if len(self.saved) != len(arrays):
            self.saved = [np.empty_like(a) for a in arrays]
        for i, a in enumerate(arrays):
            if self.saved[i].shape != a.shape or self.saved[i].dtype != a.dtype:
                self.saved[i] = np.empty_like(a)
            np.copyto(self.saved[i], a)
