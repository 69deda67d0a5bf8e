"""What both engines share about a CPU: its state arrays, its statistics, the latency histogram
and the optional last-level cache.

The issue rule (identical in both engines, so that without queueing they agree to the bit):

* an access may issue ``gap`` cycles after the previous one issued;
* a dependent access (pointer chase) also waits ``gap`` cycles after the previous one completed;
* a miss needs a free miss slot: with all ``mlp`` slots busy it waits for the earliest to free
  (with the stream prefetcher, an access of a sequential sweep may use ``l2_mlp`` slots:
  :func:`slot_offset`);
* a page fault costs ``fault`` cycles, then the new page is zeroed by ``lines_per_page``
  non-temporal line writes to the page's node (one every ``zero_gap`` cycles, each holding a
  miss slot until it completes); the faulting access issues when the last of them completed;
* a request completes after the idle latency of its (CPU node, memory node) pair plus the
  queueing it met (the exact engine measures it in FIFO queues, the fast engine estimates it);
* a store with write-allocate is a read for ownership followed, when the line arrives, by a
  posted write-back of the dirty line (no slot, no latency seen by the CPU, but bandwidth);
  with an LLC the write-back happens when the dirty line is evicted instead.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from numasim.workloads import gen as G

# ---- ci[c, :] int64: a CPU's fixed facts and its access buffer (buf[c, head:count] is
# generated but not issued yet)
CI_TASK = 0
CI_NODE = 1
CI_THREAD = 2  # row in the generator state
CI_CPU = 3
CI_FINISHED = 4
CI_HEAD = 5
CI_COUNT = 6
CI_ACTIVE = 7  # runs in the current phase
CI_WBN = 8  # posted write-backs not yet handed to the queues (fast engine)
CI_WBH = 9  # ring-buffer head of those
CI_NCOLS = 10

BUF_LEN = 256

# ---- cs[c, :] float64: a CPU's clock
CS_ISSUE = 0  # issue time of the last access
CS_DPREV = 1  # completion time of the last access
CS_LAST = 2  # latest completion of anything it issued
CS_NCOLS = 3

# ---- st[c, :] float64: statistics, cumulative over the run (Q_* are per quantum)
ST_ACCESSES = 0  # accesses of the program (memory requests + hits)
ST_MEM = 1  # memory requests of the program (reads, RFOs, non-temporal writes)
ST_HITS = 2  # accesses served without memory (zero page, LLC hit)
ST_LAT_SUM = 3  # cycles, over ST_MEM
ST_LOCAL = 4  # memory requests to the CPU's own node
ST_BYTES = 5  # bytes the program moves, as STREAM counts them
ST_FAULTS = 6
ST_FAULT_CYCLES = 7
ST_ZERO_LINES = 8
ST_WRITEBACKS = 9
ST_STALL = 10  # cycles an access waited for a slot or for the previous load
ST_WAIT_SUM = 11  # queueing part of ST_LAT_SUM
ST_Q_NREQ = 12  # latency-bearing requests this quantum (incl. zeroing)
ST_Q_LAT = 13
ST_Q_STALL = 14
ST_TLB_MISSES = 15  # TLB misses (numasim.machine.tlb; 0 when the TLB is off)
ST_WALKS = 16  # page-walk line loads issued
ST_WALK_CYC = 17  # cycles of those loads (their latency, summed)
ST_NCOLS = 18

# ---- pf[:] float64 parameters
PF_HIT = 0  # cycles of a hit
PF_FAULT = 1  # cycles of the kernel part of a fault
PF_ZERO_GAP = 2
PF_TL_WIDTH = 3  # cycles per timeline bucket
PF_LLC_HIT = 4
PF_LINE = 5  # bytes per line
PF_Q_START = 6  # start of the current quantum (fast engine)
PF_BIN_INV = 7  # 1 / width of the fast engine's load bins
PF_NBINS = 8  # bins in the current quantum
PF_NCOLS = 9

# ---- pi[:] int64 parameters
PI_WRITE_ALLOCATE = 0
PI_LPP_SHIFT = 1  # log2(lines per page)
PI_LLC = 2  # 1 if the LLC is on
PI_MLP = 3  # L1 miss slots (fill buffers); the slot rows hold max(mlp, l2_mlp) with prefetch
PI_PREFETCH = 4  # 1: the stream prefetcher is on (CpuParams.prefetch == "stream")
PI_NCOLS = 5

# the longest stride (bytes) the prefetchers follow: the L1 IP-stride prefetcher's 2 KiB
PREFETCH_MAX_STRIDE = 2048


@njit(cache=True, inline="always")
def slot_offset(ops, k, prefetch_on, off_l1, line):
    """Which of a CPU's miss slots (sorted by when each frees) an access of op ``k`` waits
    for: 0 (the first to free: any of the ``l2_mlp`` slots) for a sequential sweep the
    stream prefetcher covers, ``off_l1`` (= slots - mlp: fewer than ``mlp`` misses may be
    in flight) for anything else, and always without the prefetcher (then off_l1 is 0)."""
    if prefetch_on and ops[k, G.O_KIND] == G.OP_SWEEP and \
            ops[k, G.O_STRIDE] * line <= PREFETCH_MAX_STRIDE:
        return 0
    return off_l1


# per-op constants of a quantum (op_constants): columns
OPC_SLOT = 0  # the miss slot its accesses wait for (slot_offset)
OPC_LOOKAHEAD = 1  # 1: its accesses rarely share a page with the one before (random, trace,
#                    chase, a stride of a page or more): starting their page lookups ahead pays
OPC_NCOLS = 2


@njit(cache=True)
def op_constants(ops, prefetch_on, off_l1, line, lpp):
    """The :data:`OPC_SLOT` / :data:`OPC_LOOKAHEAD` row of every op, once per quantum: the
    fast engine's access path reads one entry instead of working them out per access (a
    sequential sweep's page lookups ahead were 9 % of the steady STREAM triad's time and
    never missed the region's cached page)."""
    out = np.zeros((ops.shape[0], OPC_NCOLS), dtype=np.int64)
    for k in range(ops.shape[0]):
        if off_l1 > 0:
            out[k, OPC_SLOT] = slot_offset(ops, k, prefetch_on, off_l1, line)
        out[k, OPC_LOOKAHEAD] = 0 if ops[k, G.O_KIND] == G.OP_SWEEP and \
            ops[k, G.O_STRIDE] < lpp else 1
    return out


# request kinds in the per-resource counters cnt[c, r, k]
CNT_ALL = 0  # every line that passed
CNT_LAT = 1  # those a CPU waited for

# ---- latency histogram: 1-cycle bins below 1024 cycles, then 64 bins per octave
HIST_LINEAR = 1024
HIST_SUB = 64
HIST_BINS = HIST_LINEAR + 40 * HIST_SUB


# the bin of a latency of 1024 cycles or more, from its float64 bits: bits >> 46 is
# (biased exponent) * HIST_SUB + the mantissa's top 6 bits, 1033 the bias of 2**10
_HIST_BITS_OFF = 1033 * HIST_SUB - HIST_LINEAR


@njit(cache=True, inline="always")
def hist_bin(lat):
    """The histogram bin of latency ``lat`` (cycles): the bin whose edges
    (:func:`hist_edges`) hold it.  From 1024 cycles on, read off the float's exponent and
    mantissa bits (a division by a power of two is exact, so this is the bin the formula
    ``(e - 10) * 64 + int((lat / 2**e - 1) * 64)`` gives for ``e`` the true exponent);
    ``math.log2`` and ``2.0 ** e`` there were two libm calls per access, and log2 rounds a
    value a few ulps below a power of two up to it, one bin too high."""
    if not lat >= HIST_LINEAR:
        if not lat >= 0.0:  # negative (or NaN)
            return 0
        return np.int64(lat)
    b = (np.float64(lat).view(np.int64) >> 46) - _HIST_BITS_OFF
    if b >= HIST_BINS:
        return HIST_BINS - 1
    return b


@functools.lru_cache(maxsize=1)
def hist_edges() -> np.ndarray:
    """Lower edge (cycles) of every bin, plus the upper edge of the last one."""
    edges = [float(i) for i in range(HIST_LINEAR)]
    for e in range(10, 10 + 40):
        for s in range(HIST_SUB):
            edges.append(2.0 ** e * (1 + s / HIST_SUB))
    edges.append(2.0 ** 50)
    return np.array(edges)


def hist_percentile(hist: np.ndarray, q: float) -> float:
    """The q-quantile (0..1) of a histogram, in cycles (midpoint of the bin it falls in)."""
    total = int(hist.sum())
    if total == 0:
        return 0.0
    rank = max(1, math.ceil(q * total))
    cum = np.cumsum(hist)
    b = int(np.searchsorted(cum, rank))
    edges = hist_edges()
    lo, hi = edges[b], edges[b + 1]
    return float(lo if b < HIST_LINEAR else (lo + hi) / 2)


# ---- the last-level cache: tags[cache, set, way], meta[cache, set, way, (stamp, dirty, node)]
@njit(cache=True, _nrt=False)  # only indexes its arrays: no reference counts per call
def llc_access(tags, meta, clock, cache, key, write, node):
    """Look ``key`` (a physical line) up in cache ``cache``; allocate it on a miss (LRU victim).

    Returns (hit, write-back node): the node of the dirty line the allocation evicted, or -1.
    """
    nsets = tags.shape[1]
    ways = tags.shape[2]
    s = key % nsets
    clock[cache] += 1
    now = clock[cache]
    victim = 0
    oldest = meta[cache, s, 0, 0]
    for w in range(ways):
        if tags[cache, s, w] == key:
            meta[cache, s, w, 0] = now
            if write:
                meta[cache, s, w, 1] = 1
            return 1, -1
        if meta[cache, s, w, 0] < oldest:
            oldest = meta[cache, s, w, 0]
            victim = w
    wb = -1
    if tags[cache, s, victim] >= 0 and meta[cache, s, victim, 1] != 0:
        wb = meta[cache, s, victim, 2]
    tags[cache, s, victim] = key
    meta[cache, s, victim, 0] = now
    meta[cache, s, victim, 1] = 1 if write else 0
    meta[cache, s, victim, 2] = node
    return 0, wb


_COLOR_MASK = np.uint64((1 << 40) - 1)  # page rows stay below 2**40
_COLOR_HALF = np.uint64(20)
_COLOR_MUL = np.uint64(0x9E3779B97F)  # odd: a bijection on 40 bits


@njit(cache=True, inline="always")
def llc_key(pg, line, lpp):
    """The cache's name for line ``line`` (within its page) of page row ``pg``: the page's
    *colour* times the lines per page, plus the line.  The set is the key modulo the sets
    (:func:`llc_access`), so a page's lines fill consecutive sets as a physical page's do,
    and the colour -- which sets a page starts at -- is a bijective mix of the page row
    (xorshift, odd multiply, xorshift on 40 bits: no two pages share a key).  Page rows are
    allocation order, not physical frames: with ``pg * lpp`` as the key, two CPUs that fault
    turn about got every other row, half of a small cache's colours each, and the engines
    (which order faults differently within a quantum) disagreed on shared caches (a pointer
    chase, 2 threads x 256 KiB on 256 KiB caches: 7003 vs 1258 hits).  The buddy allocator's
    frames are as good as random colours for a large cache; so are these."""
    x = np.uint64(pg) & _COLOR_MASK
    x ^= x >> _COLOR_HALF
    x = (x * _COLOR_MUL) & _COLOR_MASK
    x ^= x >> _COLOR_HALF
    return np.int64(x) * lpp + (line & (lpp - 1))


def make_llc(nr_node_ids: int, size: int, ways: int, line: int):
    """Empty caches, one per node id: (tags, meta, clock)."""
    sets = max(1, size // (line * ways))
    tags = np.full((nr_node_ids, sets, ways), -1, dtype=np.int64)
    meta = np.zeros((nr_node_ids, sets, ways, 3), dtype=np.int64)
    clock = np.zeros(nr_node_ids, dtype=np.int64)
    return tags, meta, clock


def no_llc():
    return (np.full((1, 1, 1), -1, dtype=np.int64), np.zeros((1, 1, 1, 3), dtype=np.int64),
            np.zeros(1, dtype=np.int64))
