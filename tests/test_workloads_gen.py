"""The access generator: what each op kind yields, in which order, with which flags."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from numasim.workloads import gen as G


def _op(kind, **cols):
    row = np.zeros(G.O_NCOLS, dtype=np.int64)
    row[G.O_KIND] = kind
    row[G.O_REPS] = 1
    row[G.O_STRIDE] = 1
    for k, v in cols.items():
        row[getattr(G, "O_" + k.upper())] = v
    return row


def _all(ops, opf=None, buf_len=7, trace=None):
    """Every access thread 0 generates, in small batches (to cross batch boundaries)."""
    ops = np.array(ops, dtype=np.int64).reshape(-1, G.O_NCOLS)
    opf = np.zeros((len(ops), G.OF_NCOLS)) if opf is None else opf
    ts = np.zeros((1, G.TS_NCOLS), dtype=np.int64)
    G.start_thread(ts, 0, ops, 0, len(ops))
    rngs = np.array([12345], dtype=np.uint64)
    buf = np.zeros((1, buf_len, G.B_NCOLS), dtype=np.int64)
    trace = np.zeros((1, 3), dtype=np.int64) if trace is None else trace
    out = []
    while True:
        n = G.fill_batch(ops, opf, ts, rngs, 0, trace, buf, 0)
        if n == 0:
            return out
        out += [tuple(x) for x in buf[0, :n].tolist()]


def test_sweep_interleaves_streams_and_repeats():
    op = _op(G.OP_SWEEP, ns=3, lo=2, hi=5, reps=2, gap=4, bytes=64)
    op[G.O_R:G.O_R + 3] = (7, 8, 9)
    op[G.O_M:G.O_M + 3] = (G.LOAD, G.LOAD, G.STORE)
    acc = _all([op])
    assert len(acc) == 3 * 3 * 2 == G.op_accesses(op)
    first = [(a[G.B_R], a[G.B_LINE], a[G.B_MODE]) for a in acc[:6]]
    assert first == [(7, 2, 0), (8, 2, 0), (9, 2, 1), (7, 3, 0), (8, 3, 0), (9, 3, 1)]
    assert acc[9][G.B_LINE] == 2  # second repetition starts over
    assert {a[G.B_GAP] for a in acc} == {4} and {a[G.B_DEP] for a in acc} == {0}


def test_stride_and_op_sequence():
    a = _op(G.OP_SWEEP, ns=1, lo=0, hi=10, stride=4)
    b = _op(G.OP_SWEEP, ns=1, lo=100, hi=102)
    acc = _all([a, b])
    assert [x[G.B_LINE] for x in acc] == [0, 4, 8, 100, 101]
    assert [x[G.B_OP] for x in acc] == [0, 0, 0, 1, 1]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3000), seed=st.integers(1, 1 << 40), lo=st.integers(0, 50))
def test_chase_visits_every_line_once_per_pass(n, seed, lo):
    op = _op(G.OP_CHASE, lo=lo, hi=lo + n, count=2 * n, seed=seed)
    acc = _all([op], buf_len=64)
    lines = [a[G.B_LINE] for a in acc]
    assert sorted(lines[:n]) == list(range(lo, lo + n))
    assert lines[n:] == lines[:n]  # a cycle: the second pass repeats the first
    assert all(a[G.B_DEP] == 1 for a in acc)


def test_random_stays_in_range_and_depends_on_seed():
    op = _op(G.OP_RANDOM, lo=10, hi=20, count=500, m=G.STORE)
    acc = _all([op])
    lines = [a[G.B_LINE] for a in acc]
    assert min(lines) >= 10 and max(lines) < 20 and len(set(lines)) == 10
    assert {a[G.B_MODE] for a in acc} == {G.STORE}
    op[G.O_SEED] = 0
    rngs_a = _all([op])
    assert rngs_a == acc  # the stream comes from the thread's generator state, not the op


def test_zipf_is_skewed():
    n = 1000
    op = _op(G.OP_ZIPF, lo=0, hi=n, count=20000, seed=5)
    opf = np.zeros((1, G.OF_NCOLS))
    opf[0, :] = (0.99,) + G.zipf_constants(n, 0.99)
    lines = np.array([a[G.B_LINE] for a in _all([op], opf)])
    counts = np.bincount(lines, minlength=n)
    top = np.sort(counts)[::-1]
    assert top[0] > 0.1 * len(lines)  # the hottest line takes about 1/H(n) of the loads
    assert top[:10].sum() > 0.35 * len(lines)
    assert (counts > 0).sum() > 300  # and the cold set is still visited


def test_trace_records_in_order():
    trace = np.array([[3, 5, 1], [3, 6, 0], [4, 0, 1]], dtype=np.int64)
    op = _op(G.OP_TRACE, lo=1, hi=3)
    acc = _all([op], trace=trace)
    assert [(a[G.B_R], a[G.B_LINE], a[G.B_MODE]) for a in acc] == [(3, 6, 0), (4, 0, 1)]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5000), seed=st.integers(0, 1 << 50))
def test_permute_is_a_bijection(n, seed):
    assert sorted(G.permute(i, n, seed) for i in range(n)) == list(range(n))


def _zipf_lines(n, vlines=1, shift=0, wppm=0, reps=1, count=6000, mode=G.LOAD):
    v = max(1, vlines)
    op = _op(G.OP_ZIPF, lo=0, hi=n * v, count=count * v, seed=5, vlines=vlines,
             shift=shift, wppm=wppm, reps=reps, m=mode)
    opf = np.zeros((1, G.OF_NCOLS))
    opf[0, :] = (0.99,) + G.zipf_constants(n, 0.99)
    return _all([op], opf)


def test_kv_gets_read_whole_values_and_writes_their_share():
    """A kv get reads its value's lines in order, from the value's first line; about
    write_fraction of the gets are sets, every line of a set a store."""
    acc = _zipf_lines(500, vlines=4, wppm=100_000)
    lines = [a[G.B_LINE] for a in acc]
    modes = [a[G.B_MODE] for a in acc]
    assert len(acc) == 6000 * 4
    for g in range(0, len(acc), 4):
        assert lines[g] % 4 == 0 and lines[g:g + 4] == list(range(lines[g], lines[g] + 4))
        assert len(set(modes[g:g + 4])) == 1
    sets = sum(modes[0::4]) / 6000
    assert 0.08 < sets < 0.12
    assert not any(a[G.B_MODE] for a in _zipf_lines(500, vlines=4))


def test_shift_moves_the_hot_set_each_repetition():
    """With a shift as large as the hot set, the hottest items of one repetition are cold in
    the next; without one the same items stay hot."""
    def hot(acc, rep, k=20):
        part = np.array([a[G.B_LINE] for a in acc[rep * 6000:(rep + 1) * 6000]])
        return set(np.argsort(np.bincount(part, minlength=1000))[::-1][:k])

    moving = _zipf_lines(1000, shift=250, reps=2)
    still = _zipf_lines(1000, shift=0, reps=2)
    assert len(hot(still, 0) & hot(still, 1)) >= 15
    assert len(hot(moving, 0) & hot(moving, 1)) <= 3
    # the zipf stream without the new options is the stream it always was
    assert _zipf_lines(1000, vlines=0, reps=2) == still
