"""Fast-forward for the fast engine: sampling in the SMARTS spirit over long steady phases.

Off by default.  When on, the fast engine (:mod:`numasim.machine.fast`) alternates *detailed
windows* -- ordinary quanta, every access simulated -- with *skipped stretches* advanced at
the rates the last detailed window measured:

* **settled**: the last ``window`` quanta (at least 2) have the same length, none took a
  page fault, and consecutive ones agree within ``tolerance`` (default 2 %): in all the
  threads' accesses, in every resource's lines (resources carrying at least 1 % of the
  busiest one's), and per thread within ``tolerance`` or the count's own noise
  (``4 * sqrt(n)`` for ``n`` accesses: 32 threads sharing a saturated controller each vary
  by 3-5 % from one 2 M-cycle quantum to the next while the total is steady to 0.5 %);
  and no resource is filling its queue: lines arriving at more than ``1 + tolerance / 2``
  times what it serves in the window (a saturated CXL controller took 5 % more than it
  served for tens of quanta while its backlog grew, at steady rates: skipping there ran
  the phase 4 % fast);
* **skip**: ``skip`` times the window's length, cut to a whole number of quanta and cut
  short (or not taken, when shorter than one quantum) so that it ends
  - before any thread's first access that would fault (first touch, COW, the zero page:
    the kernel's own rule, :mod:`numasim.machine.fastforward_stream`): **a stretch that
    would fault is not skipped, never replayed**.  Every fault happens in a detailed window,
    in each thread's program order, through the allocator, with its cost; replaying the
    faults of a skipped stretch would need each thread's accesses generated in time order
    against the others' (that order decides which thread touches a shared page first and
    how the interleave and fallback counters advance) and would still leave the rates
    wrong for a stretch whose pages are being zeroed;
  - ``window + 2`` quanta of work before the first thread would finish (its phase end; the
    barrier and the thread's last accesses are simulated in detail);
  - before the next external event the simulation announces (:func:`next_event`: e.g. a
    NUMA-balancing scanner tick on the simulated clock);
* **advanced at the measured rates**: every thread's access stream moves on by its rate
  times the stretch (its generator state exactly as if it had generated them); its
  statistics (``st``: accesses, memory requests, hits, latency and wait sums, local
  requests, bytes, stalls, write-backs) and latency histogram by the window's per-access
  values; per-resource lines and the bytes per memory node of the timeline by the window's
  per-cycle values; every clock, miss slot, private queue and posted write-back by the
  stretch's length.  The weave's estimates are kept (the load is the window's).

Where repetition comes from: a workload repeats by its ops (:mod:`numasim.workloads.gen`):
a phase's ``repeat`` becomes ``O_REPS`` of each thread's op, a sweep walks ``[lo, hi)``
again, a random/chase/Zipf op draws ``count`` accesses again.  Fast-forward does not need to
be told: it looks for the symptom (rates that have settled over memory that no longer
faults), so a long single sweep over faulted memory is sampled as well as a STREAM kernel's
iterations, and a phase that keeps faulting (a first touch) is simulated in full.

The per-resource test is strict on purpose: a 32-thread triad interleaved over the 8 nodes of
epyc-8n-nps4 keeps its total steady to 0.1 % while convoys move 3-4 % of the load between
controllers from quantum to quantum; it is not sampled.  Allowing 5x the tolerance per
resource sampled 52 % of it and ran the phase 2.8 % fast: in the full run the threads drift
apart and the last ones finish alone (a 1 ms tail on a 20 ms phase), a drift that rates
measured over a two-quantum window do not reproduce.

What is not kept exact: the LLC's contents (not touched by a skipped stretch; a sweep much
larger than the LLC refills it within a window), and the inter-thread timing inside
skipped stretches (each thread keeps its own rate).  Faults are placed as without
fast-forward when placement does not depend on the order in which *different* threads
fault (private pages under any policy, interleave counters per task); it can differ when
two threads race for the first touch of a shared page or for the last free pages of a
node.  Phase ends, barriers and per-phase results stay exact in structure: every phase
starts and ends with detailed quanta.

**Next event** (hook for the NUMA-balancing scanner and anything else that happens on the
simulated clock): a simulation may carry ``next_event_cycle``, a callable taking the current
cycle and returning the cycle of the next external event at or after it (or None: none
known); a skip never passes it (it ends at or before that cycle, so the event falls in a
detailed quantum).  :class:`~numasim.machine.sim.Simulation` defines it from NUMA
balancing (:meth:`numasim.machine.numab_clock.NumabClock.next_event`: the next tick where the
scanner acts, or now while protected PTEs wait for their hinting faults; None when balancing
is off, "no events").  E.g. a scanner ticking every ``P`` cycles::

    sim.next_event_cycle = lambda now: (now // P + 1) * P

**Measured error and speed-up** (``benchmarks/bench_fastforward.py``, window 2, skip 20,
tolerance 2 %, ten cases on clx-2s, cxl-1s and epyc-8n-nps4: STREAM triad with
parallel/serial first touch, interleaved copy, remote triad, a triad faulting in its measured
phase, CXL weighted interleave, an 8-node interleaved triad, GUPS, pointer chase, Zipf; table
in the README): worst error 1.16 % on phase bandwidth and time (the interleaved copy; all
others within 0.06 %), pages per node identical in every case, 58-76 % of simulated time
skipped (0 % on the 8-node case, see above), host time 2-4.6x shorter on these 10-80 ms
runs; a 16-thread triad on clx-2s over 1 simulated second: -0.0002 %, 9.9x less CPU; over
10 simulated seconds 55 s of CPU (~17x).  Stated bound: 2 % on throughput, held by
``tests/test_fastforward.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from numasim.errors import ConfigError
from numasim.machine import cpu as C
from numasim.machine.fastforward_stream import advance_stream, buffered_safe, safe_accesses
from numasim.machine.numab_clock import NBI_PENDING

# the st columns a skipped stretch advances (the per-quantum ones are the weave's)
ST_COUNTS = np.array([C.ST_MEM, C.ST_HITS, C.ST_LOCAL, C.ST_WRITEBACKS, C.ST_TLB_MISSES,
                      C.ST_WALKS])  # whole numbers
ST_SUMS = np.array([C.ST_LAT_SUM, C.ST_BYTES, C.ST_STALL, C.ST_WAIT_SUM, C.ST_WALK_CYC])
BUSY_FLOOR = 0.01  # resources with less than this share of the busiest one's lines: noise
NOISE_SIGMAS = 4.0  # a thread's count may move by this many sqrt(count) between quanta


@dataclass(frozen=True)
class FastForwardParams:
    """``window``: detailed quanta compared before a skip (>= 2); ``skip``: skipped cycles
    per detailed window cycle; ``tolerance``: how close the window's quanta must agree."""

    window: int = 2
    skip: float = 20.0
    tolerance: float = 0.02

    def text(self) -> str:
        return f"{self.window},{self.skip:g},{self.tolerance:g}"


FF_HINT = ("fast-forward is off unless asked; on, it takes WINDOW,SKIP[,TOLERANCE]: WINDOW "
           "detailed quanta (a whole number, at least 2) must agree within TOLERANCE (a "
           "fraction, 0 < TOLERANCE < 1, default 0.02) before a stretch of SKIP times their "
           "length (a number > 0) is advanced at their rates; e.g. --fast-forward, "
           "--fast-forward=2,20 or --fast-forward=4,10,0.01 (YAML: fast_forward: true, "
           "'2,20' or {window: 2, skip: 20})")


def _bad(value: Any, why: str) -> ConfigError:
    return ConfigError(f"fast-forward {value!r}: {why}", field="fast_forward", hint=FF_HINT)


def check_fast_forward(value: Any) -> FastForwardParams | None:
    """The fast-forward knob as any front door gives it -- None/False (off), True (the
    defaults), ``"WINDOW,SKIP[,TOLERANCE]"``, a mapping with those keys, or
    :class:`FastForwardParams` -- checked; None when off."""
    if value is None or value is False:
        return None
    if value is True:
        return FastForwardParams()
    if isinstance(value, FastForwardParams):
        parts: dict[str, Any] = {"window": value.window, "skip": value.skip,
                                 "tolerance": value.tolerance}
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ("on", "true", "yes", ""):
            return FastForwardParams()
        if text in ("off", "false", "no"):
            return None
        fields = [f.strip() for f in text.split(",")]
        if len(fields) > 3:
            raise _bad(value, "at most three comma-separated values")
        parts = dict(zip(("window", "skip", "tolerance"), fields, strict=False))
    elif isinstance(value, dict):
        bad = sorted(set(value) - {"window", "skip", "tolerance"})
        if bad:
            raise _bad(value, f"unknown key {bad[0]!r}")
        parts = dict(value)
    else:
        raise _bad(value, "not a setting")
    d = FastForwardParams()
    try:
        w = parts.get("window", d.window)
        if isinstance(w, bool) or (isinstance(w, float) and not w.is_integer()):
            raise ValueError
        window = int(w) if not isinstance(w, str) else int(w, 10)
        skip = float(parts.get("skip", d.skip))
        tol = float(parts.get("tolerance", d.tolerance))
    except (TypeError, ValueError):
        raise _bad(value, "WINDOW must be a whole number, SKIP and TOLERANCE numbers") from None
    if window < 2:
        raise _bad(value, f"WINDOW {window} is below 2 (settled means two quanta agree)")
    if not (skip > 0 and np.isfinite(skip)):
        raise _bad(value, f"SKIP {skip:g} is not a positive number")
    if not 0 < tol < 1:
        raise _bad(value, f"TOLERANCE {tol:g} is not a fraction between 0 and 1")
    return FastForwardParams(window, skip, tol)


def next_event(sim: Any, now: float) -> float | None:
    """The cycle of the next external event at or after ``now`` the simulation knows of
    (its optional ``next_event_cycle`` callable), or None."""
    fn = getattr(sim, "next_event_cycle", None)
    return None if fn is None else fn(now)


class FastForwarder:
    """The sampling controller of one fast engine: fed after every quantum, it skips when
    the window has settled (see the module docstring)."""

    def __init__(self, engine: Any, params: FastForwardParams) -> None:
        self.engine = engine
        self.sim = engine.sim
        self.p = params
        self.skips = 0
        self.skipped_cycles = 0.0
        self.skipped_accesses = 0.0
        self.detailed_cycles = 0.0
        self.stretches: list[tuple[float, float]] = []  # (start, end) cycles skipped
        self.sim.fast_forwarder = self  # the result reports it

    def phase_start(self) -> None:
        self.hist: list[tuple] = []  # per quantum: (q, st delta, hist delta, lines, tl bytes)
        self._snap()

    def _snap(self) -> None:
        sim = self.sim
        self.st0 = sim.st.copy()
        self.hist0 = sim.hist.copy()

    def after_quantum(self, q_ran: float, q_next: float, t_next: float, act: np.ndarray,
                      remaining: np.ndarray, lines: np.ndarray, tl_bytes: np.ndarray,
                      arrived: np.ndarray) -> tuple[float, np.ndarray]:
        """One quantum of ``q_ran`` cycles has run (``lines``: its lines per resource,
        ``tl_bytes``: its bytes per memory node); the next would start at ``t_next`` and
        last ``q_next``; ``arrived``: the phase's lines per resource so far.  Returns the
        cycles skipped (0: none) and the accesses each thread was advanced by (the caller
        moves its quantum start and bookkeeping)."""
        sim = self.sim
        self.detailed_cycles += q_ran
        self.hist.append((q_ran, sim.st - self.st0, sim.hist - self.hist0, lines.copy(),
                          tl_bytes.copy()))
        self._snap()
        w = self.p.window
        if len(self.hist) > w:
            self.hist.pop(0)
        none = np.zeros(sim.nthreads, dtype=np.int64)
        if len(self.hist) < w or not self._settled(act, q_next):
            return 0.0, none
        d = self._skip_length(q_ran, t_next, act, remaining)
        if d <= 0.0:
            return 0.0, none
        adv = self._advance(d, t_next, act, arrived)
        self.hist.clear()  # a fresh window after every skip
        return d, adv

    def _settled(self, act: np.ndarray, q_next: float) -> bool:
        tol = self.p.tolerance
        qs = [h[0] for h in self.hist]
        if any(q != qs[0] for q in qs) or q_next != qs[0]:
            return False
        on = act == 1
        acc = np.array([h[1][on, C.ST_ACCESSES] for h in self.hist])
        faults = np.array([h[1][on, C.ST_FAULTS] for h in self.hist])
        if (acc <= 0).any() or faults.any():
            return False
        if self.sim.numab.nbi[:, NBI_PENDING].any():
            return False  # a fault's lines still to issue (its clock is not the CPU's)
        total = acc.sum(axis=1)
        if (np.abs(np.diff(total)) > tol * total[:-1]).any():
            return False
        noise = np.maximum(tol * acc[:-1], NOISE_SIGMAS * np.sqrt(acc[:-1]))
        if (np.abs(np.diff(acc, axis=0)) > noise).any():
            return False
        res = np.array([h[3] for h in self.hist], dtype=float)
        busy = res.max(axis=0) >= BUSY_FLOOR * max(res.max(), 1.0)
        r = res[:, busy]
        if (np.abs(np.diff(r, axis=0)) > tol * np.maximum(r[:-1], 1.0)).any():
            return False
        served = float(sum(qs)) / self.engine.service  # lines each resource can serve
        return not (res.sum(axis=0) > (1.0 + tol / 2) * served).any()

    def _rates(self, act: np.ndarray) -> tuple[float, np.ndarray]:
        span = float(sum(h[0] for h in self.hist))
        acc = sum(h[1][:, C.ST_ACCESSES] for h in self.hist) * (act == 1)
        return span, acc / span

    def _skip_length(self, q: float, t_next: float, act: np.ndarray,
                     remaining: np.ndarray) -> float:
        """The stretch to skip, in cycles (a whole number of quanta; 0: none)."""
        sim = self.sim
        ks = sim.ks
        span, rate = self._rates(act)
        d = self.p.skip * span
        margin = (self.p.window + 2) * q
        on = np.flatnonzero(act == 1)
        for c in on:
            d = min(d, remaining[c] / rate[c] - margin)
        ev = next_event(sim, t_next)
        if ev is not None:
            d = min(d, float(ev) - t_next)
        if d < q:
            return 0.0
        pt_page, pt_vma, pages, vmas, regions = ks.pt_page, ks.pt_vma, ks.pages, ks.vmas, \
            ks.regions
        for c in on:
            want = int(rate[c] * d) + 1
            head, count = int(sim.ci[c, C.CI_HEAD]), int(sim.ci[c, C.CI_COUNT])
            ok = buffered_safe(sim.buf, c, head, count, regions, pages, vmas, pt_page,
                               pt_vma, sim.lpp_shift)
            if ok == count - head and want > ok:
                ok += safe_accesses(sim.programs_ops, sim.ts, int(sim.ci[c, C.CI_THREAD]),
                                    want - ok, sim.trace_arr, regions, pages, vmas,
                                    pt_page, pt_vma, sim.lpp_shift)
            if ok < want:
                d = min(d, (ok - 1) / rate[c])
            if d < q:
                return 0.0
        return float(np.floor(d / q) * q)

    def _advance(self, d: float, t_next: float, act: np.ndarray, arrived: np.ndarray
                 ) -> np.ndarray:
        """Advance every active thread by ``d`` cycles at the window's rates."""
        sim = self.sim
        eng = self.engine
        span, rate = self._rates(act)
        dst = sum(h[1] for h in self.hist)
        dhist = sum(h[2] for h in self.hist)
        adv = np.zeros(sim.nthreads, dtype=np.int64)
        for c in np.flatnonzero(act == 1):
            n = int(rate[c] * d)
            head, count = int(sim.ci[c, C.CI_HEAD]), int(sim.ci[c, C.CI_COUNT])
            from_buf = min(n, count - head)
            sim.ci[c, C.CI_HEAD] = head + from_buf
            moved = from_buf + advance_stream(sim.programs_ops, sim.programs_opf, sim.ts,
                                              sim.rngs, int(sim.ci[c, C.CI_THREAD]),
                                              n - from_buf)
            adv[c] = moved
            f = moved / dst[c, C.ST_ACCESSES]
            sim.st[c, C.ST_ACCESSES] += moved
            sim.st[c, ST_COUNTS] += np.rint(f * dst[c, ST_COUNTS])
            sim.st[c, ST_SUMS] += f * dst[c, ST_SUMS]
            sim.hist[c] += np.rint(f * dhist[c]).astype(np.int64)
            # every clock of the CPU moves by d
            sim.cs[c, :] += d
            sim.slots[c, :] += d
            eng.sfree[c, :] += d
            eng.wbq[c, :, 0] += d
        g = d / span
        lines = sum(h[3] for h in self.hist)
        arrived += g * lines
        self._timeline(t_next, d, g * sum(h[4] for h in self.hist))
        self.skips += 1
        self.stretches.append((t_next, t_next + d))
        self.skipped_cycles += d
        self.skipped_accesses += float(adv.sum())
        self._snap()
        return adv

    def _timeline(self, t0: float, d: float, per_node: np.ndarray) -> None:
        """Bytes per memory node, spread evenly over [t0, t0 + d), into the timeline."""
        sim = self.sim
        sim.ensure_timeline(t0 + d)
        w = sim.tl_width
        b0, b1 = int(t0 // w), int((t0 + d) // w)
        rate = per_node / d
        for b in range(b0, min(b1, sim.tl.shape[0] - 1) + 1):
            lo, hi = max(t0, b * w), min(t0 + d, (b + 1) * w)
            if hi > lo:
                sim.tl[b] += rate * (hi - lo)

    def summary(self) -> dict[str, Any]:
        """What the result says about fast-forward."""
        total = self.detailed_cycles + self.skipped_cycles
        return {"on": True, "window": self.p.window, "skip": self.p.skip,
                "tolerance": self.p.tolerance, "skips": self.skips,
                "skipped_cycles": round(self.skipped_cycles, 1),
                "skipped_accesses": int(self.skipped_accesses),
                "skipped_fraction": round(self.skipped_cycles / total, 4) if total else 0.0}
