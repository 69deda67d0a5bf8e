"""What a controller's traffic mix does to its service time, for both engines (issue 11).

A DRAM channel's datasheet peak is never reached, and how far below it a controller stays
depends on what it carries: writes cost read/write turnaround and write drains, random lines
cost row misses (the :mod:`numasim.memctrl` models say how much:
:meth:`~numasim.memctrl.base.ControllerModel.service_factor`).  The engines apply it by
stretching the controller's service time per line, so a saturated controller delivers the
mix's sustainable bandwidth and its queue builds earlier:

* the exact engine per request, from the mix of the controller's recent window
  (:class:`MixWindow`, an exponential average over
  :data:`~numasim.memctrl.WINDOW_CYCLES`, counted in lines);
* the fast engine per quantum, from the lines the quantum carried (:func:`fast_service`):
  the factor is set on its ``service`` array before the weave, so the weave's fixed point
  and the next quantum's private FIFO copies both use it.

A line is a *read* when a CPU waits for it from memory (a load or a read-for-ownership), a
*write* when it goes to memory (a write-back, a non-temporal store, a page being zeroed); it is
*random* when the loop that issued it is (:func:`op_random`).  Controllers whose model ignores
the mix (``fifo``) are never touched.
"""

from __future__ import annotations

import math

import numpy as np

from numasim.machine.cpu import PREFETCH_MAX_STRIDE
from numasim.memctrl import WINDOW_CYCLES
from numasim.workloads import gen as G


def op_random(ops: np.ndarray, k: int, line_bytes: int) -> bool:
    """Does op ``k`` access memory in random order, as far as DRAM rows are concerned?
    RANDOM (GUPS), CHASE and ZIPF do; a SWEEP does unless its stride is beyond what the
    stream prefetcher follows (:data:`~numasim.machine.cpu.PREFETCH_MAX_STRIDE`: then every
    access opens another row); a TRACE counts as sequential (its order is unknown)."""
    kind = int(ops[k, G.O_KIND])
    if kind in (G.OP_RANDOM, G.OP_CHASE, G.OP_ZIPF):
        return True
    return kind == G.OP_SWEEP and int(ops[k, G.O_STRIDE]) * line_bytes > PREFETCH_MAX_STRIDE


class MixWindow:
    """The exact engine's view of one controller's recent mix: lines, reads and random
    lines, each an exponential average with time constant
    :data:`~numasim.memctrl.WINDOW_CYCLES` (a server's start times only grow, so it decays
    forwards)."""

    __slots__ = ("lines", "reads", "rand", "t")

    def __init__(self) -> None:
        self.lines = 0.0
        self.reads = 0.0
        self.rand = 0.0
        self.t = 0.0

    def add(self, t: float, read: bool, rand: bool) -> tuple[float, float]:
        """Count a line starting at ``t``; returns the window's (read fraction, random
        fraction), this line included."""
        if t > self.t:
            d = math.exp(-(t - self.t) / WINDOW_CYCLES)
            self.lines *= d
            self.reads *= d
            self.rand *= d
            self.t = t
        self.lines += 1.0
        if read:
            self.reads += 1.0
        if rand:
            self.rand += 1.0
        return self.reads / self.lines, self.rand / self.lines


def cpu_random(sim) -> np.ndarray:
    """Per CPU, 1.0 when the op its thread is at is random (:func:`op_random`), else 0.0:
    the fast engine's per-quantum stand-in for the loop each line came from (a thread that
    changed ops within the quantum is counted by the op it ended at)."""
    out = np.zeros(sim.nthreads)
    ops = sim.programs_ops
    if ops is None or len(ops) == 0:
        return out
    line = int(sim.line)
    for c in range(sim.nthreads):
        th = int(sim.ci[c, 2])  # cpu.CI_THREAD
        k = min(int(sim.ts[th, G.TS_OP]), int(sim.ts[th, G.TS_END]) - 1, len(ops) - 1)
        if k >= 0 and op_random(ops, k, line):
            out[c] = 1.0
    return out


def fast_service(models: list, mc_node: np.ndarray, base: np.ndarray, pair: np.ndarray,
                 rand_c: np.ndarray, service: np.ndarray, kinds: tuple[int, int, int]) -> None:
    """Set ``service[r]`` of every mix-aware controller r to ``base[r]`` times its model's
    factor for the mix of this quantum's lines (``pair[c, node, kind]``: the quantum's lines
    per CPU, memory node and kind; ``kinds`` = (read, write, write-back) columns).  A
    controller that carried nothing keeps its last factor."""
    rd, wr, wb = kinds
    for r, m in enumerate(models):
        if m is None or not m.mix_aware:
            continue
        n = int(mc_node[r])
        reads = pair[:, n, rd]
        lines = reads + pair[:, n, wr] + pair[:, n, wb]
        total = float(lines.sum())
        if total <= 0.0:
            continue
        rf = float(reads.sum()) / total
        rnd = float((lines * rand_c).sum()) / total
        service[r] = base[r] * m.service_factor(rf, rnd)
