"""Access streams, generated in numba one access at a time from small op descriptors.

A thread's work in a phase is a list of *ops* (rows of ``ops``/``opf``); each op describes a
loop the program runs, and :func:`fill_batch` yields its memory accesses at
cache-line granularity, without ever materialising them (a 1 GiB triad is 50 million accesses).
The stream depends only on the op and the thread's seed, never on timing, so the exact and
fast engines see the same accesses in the same order.  :func:`fill_batch` writes the next few
hundred accesses of a thread into a buffer; both engines consume that buffer.

Op kinds:

* ``SWEEP``: for i in lo, lo+stride, ... < hi, access line ``base_s + i`` of region ``r_s`` for
  each stream s (up to 4: STREAM's copy/scale/add/triad, init loops, strided walks);
* ``RANDOM``: ``count`` accesses to uniformly random lines in [lo, hi) (GUPS);
* ``CHASE``: ``count`` dependent loads walking a pseudo-random cyclic permutation of the lines
  [lo, hi) (a pointer chase: each load's address comes from the previous load);
* ``ZIPF``: ``count`` accesses whose rank follows a Zipf law of exponent ``theta`` (hot and
  cold sets).  The range [lo, hi) holds ``(hi - lo) // vlines`` *items* of ``O_VLINES`` lines
  each (1 for the ``zipf`` kernel: an item is a line; a value of V bytes for ``kv``); a drawn
  rank picks an item through a fixed bijection (ranks scattered over the range), and the
  item's lines are read one after another (a get).  ``O_SHIFT`` moves the hot set: in
  repetition ``rep`` rank r picks the item the bijection gives ``(r - 1 + rep * shift) mod
  items``, so with a shift of at least the hot set's size each repetition's hot items are new
  ones.  ``O_WPPM``: a get becomes a write of the whole value with this probability (parts
  per million; one more draw per item, only when it is not 0);
* ``TRACE``: records [lo, hi) of the trace arrays (region, line, mode).

Every op repeats ``reps`` times and spends ``gap`` compute cycles before each access.
Modes: ``LOAD`` reads, ``STORE`` writes (the CPU model decides read-for-ownership or not).
"""

from __future__ import annotations

import numpy as np
from numba import njit

OP_SWEEP = 0
OP_RANDOM = 1
OP_CHASE = 2
OP_ZIPF = 3
OP_TRACE = 4
OP_NAMES = {OP_SWEEP: "sweep", OP_RANDOM: "random", OP_CHASE: "chase", OP_ZIPF: "zipf",
            OP_TRACE: "trace"}

LOAD = 0
STORE = 1

MAX_STREAMS = 4
# ---- ops[k, :] (int64)
O_KIND = 0
O_NS = 1  # number of streams (SWEEP)
O_R = 2  # O_R + s: region of stream s
O_B = 6  # O_B + s: base line of stream s
O_M = 10  # O_M + s: mode of stream s
O_LO = 14
O_HI = 15
O_STRIDE = 16
O_COUNT = 17  # accesses per repetition for RANDOM/CHASE/ZIPF
O_REPS = 18
O_GAP = 19  # compute cycles before each access
O_BYTES = 20  # bytes the program itself moves per access (STREAM-style counting)
O_SEED = 21
O_PHASE = 22  # index of the phase the op belongs to (for statistics)
O_VLINES = 23  # ZIPF: lines per item (0 or 1: an item is a line)
O_SHIFT = 24  # ZIPF: items the ranks rotate by per repetition (a moving hot set)
O_WPPM = 25  # ZIPF: probability (parts per million) that an item's access is a write
O_NCOLS = 26
# ---- opf[k, :] (float64): ZIPF constants
OF_THETA = 0
OF_HX1 = 1
OF_HN = 2
OF_S = 3
OF_NCOLS = 4

# ---- ts[t, :] (int64): generator state of a thread
TS_OP = 0  # current op
TS_END = 1  # one past the thread's last op
TS_I = 2  # position in the op (index, or access count)
TS_REP = 3
TS_S = 4  # stream within a SWEEP step
TS_X = 5  # CHASE: permutation counter; ZIPF: current item * 2 + its mode
TS_NCOLS = 6

MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, inline="always")
def splitmix64(state):
    """One step of SplitMix64: returns (new state, 64 random bits)."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return state, z


@njit(cache=True, inline="always")
def _bits_for(n):
    k = 1
    while (np.int64(1) << k) < n:
        k += 1
    return k


@njit(cache=True)
def permute(i, n, seed):
    """A bijection of [0, n): a mixing bijection of [0, 2^k) with cycle walking."""
    if n <= 1:
        return 0
    k = _bits_for(n)
    mask = (np.uint64(1) << np.uint64(k)) - np.uint64(1)
    half = np.uint64((k + 1) // 2)
    a = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    c = np.uint64(seed) * np.uint64(0xD6E8FEB86659FD93)
    x = np.uint64(i)
    while True:
        for _ in range(3):
            x = (x * a + c) & mask
            x = x ^ (x >> half)
        if x < np.uint64(n):
            return np.int64(x)


@njit(cache=True, inline="always")
def _zipf_h(x, q):
    """Integral of x^-q (the H of rejection-inversion sampling)."""
    lx = np.log(x)
    y = (1.0 - q) * lx
    if abs(y) > 1e-8:
        return np.expm1(y) / y * lx
    return lx


@njit(cache=True, inline="always")
def _zipf_hinv(y, q):
    t = y * (1.0 - q)
    if t < -1.0:
        t = -1.0
    if abs(t) > 1e-8:
        return np.exp(np.log1p(t) / t * y)
    return np.exp(y)


def zipf_constants(n: int, theta: float) -> tuple[float, float, float]:
    """(H(1.5) - 1, H(n + 0.5), s) for rejection-inversion Zipf sampling over 1..n."""
    q = float(theta)
    hx1 = _zipf_h(1.5, q) - 1.0
    hn = _zipf_h(n + 0.5, q)
    s = 2.0 - _zipf_hinv(_zipf_h(2.5, q) - 2.0 ** -q, q)
    return hx1, hn, s


@njit(cache=True)
def zipf_rank(u, n, q, hx1, hn, s, rng):
    """A Zipf(q) rank in 1..n by rejection-inversion (Hormann and Derflinger); ``u`` is the
    first uniform draw, more come from ``rng`` when a draw is rejected.  Returns (rank, rng)."""
    while True:
        y = hn + u * (hx1 - hn)
        x = _zipf_hinv(y, q)
        k = np.int64(x + 0.5)
        if k < 1:
            k = 1
        elif k > n:
            k = n
        if k - x <= s or y >= _zipf_h(k + 0.5, q) - np.exp(-q * np.log(k)):
            return k, rng
        rng, z = splitmix64(rng)
        u = np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def zipf_vlines(ops, k):
    """Lines per item of ZIPF op ``k`` (at least 1)."""
    return max(np.int64(1), ops[k, O_VLINES])


@njit(cache=True, inline="always")
def zipf_offset(ops, k, rep):
    """ZIPF op ``k``'s item count and, in repetition ``rep``, how far its ranks are rotated
    (the moving hot set)."""
    nitems = (ops[k, O_HI] - ops[k, O_LO]) // zipf_vlines(ops, k)
    shift = ops[k, O_SHIFT]
    return nitems, (rep * shift) % nitems if shift != 0 else np.int64(0)


@njit(cache=True, inline="always")
def zipf_item(opf, k, nitems, off, seed, mode, wppm, st):
    """The next item of ZIPF op ``k`` (``nitems`` items, ranks rotated by ``off``, the
    op's ``seed``, ``mode`` and write share ``wppm``), drawn from rng state ``st``: returns
    (item * 2 + mode, st).  Shared with the fast-forward's stream advance."""
    st, z = splitmix64(st)
    u = np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    rank, st = zipf_rank(u, nitems, opf[k, OF_THETA], opf[k, OF_HX1], opf[k, OF_HN],
                         opf[k, OF_S], st)
    pos = rank - 1
    if off != 0:
        pos = (pos + off) % nitems
    item = permute(pos, nitems, seed)
    if wppm > 0:
        st, z = splitmix64(st)
        if np.int64(z % np.uint64(1000000)) < wppm:
            mode = STORE
    return item * 2 + mode, st


# ---- buf[k, :] (int64): one generated access
B_R = 0
B_LINE = 1
B_MODE = 2
B_DEP = 3
B_GAP = 4
B_BYTES = 5
B_OP = 6
B_NCOLS = 7


@njit(cache=True, inline="always")
def next_rep(ops, ts, t, k):
    """The repetition of op ``k`` is over: move ``ts[t]`` to the next repetition, or to the
    start of the next op.  Returns False when the thread has no more ops.  (Shared with the
    fast-forward's stream advance, which must leave exactly the state generation leaves.)"""
    rep = ts[t, TS_REP] + 1
    ts[t, TS_S] = 0
    if rep < ops[k, O_REPS]:
        ts[t, TS_REP] = rep
    else:
        ts[t, TS_REP] = 0
        ts[t, TS_OP] = k + 1
        k += 1
        if k >= ts[t, TS_END]:
            return False
    kind = ops[k, O_KIND]
    ts[t, TS_I] = ops[k, O_LO] if kind == OP_SWEEP or kind == OP_TRACE else 0
    return True


@njit(cache=True)
def fill_batch(ops, opf, ts, rngs, t, trace, buf, c):
    """Generate thread ``t``'s next accesses into ``buf[c]`` (up to its length); returns how
    many (0 when the thread has no more).  Advances ``ts[t]`` and ``rngs[t]``.

    The state lives in locals inside the loops, so a batch costs a few ns per access.  The
    buffer and op rows are indexed with unsigned integers (``u``): numba then leaves out the
    fix-up of a negative index (a sweep access: 4.4 -> 3.6 ns).
    """
    nmax = buf.shape[1]
    n = 0
    while n < nmax:
        k = ts[t, TS_OP]
        if k >= ts[t, TS_END]:
            break
        kind = ops[k, O_KIND]
        gap = ops[k, O_GAP]
        nb = ops[k, O_BYTES]
        i = ts[t, TS_I]
        if kind == OP_SWEEP:
            hi = ops[k, O_HI]
            ns = ops[k, O_NS]
            stride = ops[k, O_STRIDE]
            s = ts[t, TS_S]
            while n < nmax and i < hi:
                # unsigned indices: numba leaves out the negative-index fix-up
                u = np.uint64(n)
                su = np.uint64(s)
                buf[c, u, B_R] = ops[k, np.uint64(O_R) + su]
                buf[c, u, B_LINE] = ops[k, np.uint64(O_B) + su] + i
                buf[c, u, B_MODE] = ops[k, np.uint64(O_M) + su]
                buf[c, u, B_DEP] = 0
                buf[c, u, B_GAP] = gap
                buf[c, u, B_BYTES] = nb
                buf[c, u, B_OP] = k
                n += 1
                s += 1
                if s >= ns:
                    s = 0
                    i += stride
            ts[t, TS_S] = s
            ts[t, TS_I] = i
            if i < hi:
                break
        elif kind == OP_TRACE:
            hi = ops[k, O_HI]
            while n < nmax and i < hi:
                u = np.uint64(n)
                ui = np.uint64(i)
                buf[c, u, B_R] = trace[ui, 0]
                buf[c, u, B_LINE] = trace[ui, 1]
                buf[c, u, B_MODE] = trace[ui, 2]
                buf[c, u, B_DEP] = 0
                buf[c, u, B_GAP] = gap
                buf[c, u, B_BYTES] = nb
                buf[c, u, B_OP] = k
                n += 1
                i += 1
            ts[t, TS_I] = i
            if i < hi:
                break
        else:
            count = ops[k, O_COUNT]
            lo = ops[k, O_LO]
            span = ops[k, O_HI] - lo
            base = ops[k, O_B] + lo
            r = ops[k, O_R]
            mode = ops[k, O_M]
            seed = ops[k, O_SEED]
            st = rngs[t]
            x = ts[t, TS_X]
            dep = 1 if kind == OP_CHASE else 0
            vl = zipf_vlines(ops, k)
            nitems, off = zipf_offset(ops, k, ts[t, TS_REP])
            wppm = ops[k, O_WPPM]
            amode = mode  # the access's mode (a ZIPF item's own: a kv set writes)
            while n < nmax and i < count:
                if kind == OP_RANDOM:
                    st, z = splitmix64(st)
                    line = base + np.int64(z % np.uint64(span))
                elif kind == OP_CHASE:
                    line = base + permute(x % span, span, seed)
                    x += 1
                elif vl == 1:  # ZIPF, one line an item: a draw per access
                    x, st = zipf_item(opf, k, nitems, off, seed, mode, wppm, st)
                    line = base + (x >> 1)
                    amode = x & 1
                else:  # ZIPF, items of vl lines (kv values): a draw per item
                    j = i % vl
                    if j == 0:
                        x, st = zipf_item(opf, k, nitems, off, seed, mode, wppm, st)
                    line = base + (x >> 1) * vl + j
                    amode = x & 1
                u = np.uint64(n)
                buf[c, u, B_R] = r
                buf[c, u, B_LINE] = line
                buf[c, u, B_MODE] = amode
                buf[c, u, B_DEP] = dep
                buf[c, u, B_GAP] = gap
                buf[c, u, B_BYTES] = nb
                buf[c, u, B_OP] = k
                n += 1
                i += 1
            rngs[t] = st
            ts[t, TS_X] = x
            ts[t, TS_I] = i
            if i < count:
                break
        # this repetition of op k is done
        if not next_rep(ops, ts, t, k):
            break
    return n


def op_accesses(op: np.ndarray) -> int:
    """How many accesses an op yields in all its repetitions."""
    kind = int(op[O_KIND])
    reps = int(op[O_REPS])
    if kind == OP_SWEEP:
        lo, hi, stride = int(op[O_LO]), int(op[O_HI]), int(op[O_STRIDE])
        steps = max(0, -(-(hi - lo) // stride))
        return steps * int(op[O_NS]) * reps
    if kind == OP_TRACE:
        return (int(op[O_HI]) - int(op[O_LO])) * reps
    return int(op[O_COUNT]) * reps


def start_thread(ts: np.ndarray, t: int, ops: np.ndarray, first: int, end: int) -> None:
    """Point thread t's generator at ops [first, end)."""
    ts[t, :] = 0
    ts[t, TS_OP] = first
    ts[t, TS_END] = end
    if first < end:
        kind = int(ops[first, O_KIND])
        ts[t, TS_I] = int(ops[first, O_LO]) if kind in (OP_SWEEP, OP_TRACE) else 0
