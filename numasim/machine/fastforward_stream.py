"""The access-stream side of fast-forward (:mod:`numasim.machine.fastforward`), in numba.

Two questions about the next ``n`` accesses of a thread, answered without simulating them:

* :func:`safe_accesses`: how many of them, from where the thread stands, certainly do not
  enter the fault handler (the kernel's rule, :func:`numasim.mm.alloc_core.pte_access` and
  :func:`~numasim.mm.alloc_core.access_faults`, asked per page): a skip ends before the
  first access that would fault, so every fault is taken in a detailed window, in order;
* :func:`advance_stream`: move the thread's generator (``ts``, ``rngs``) past them, leaving
  exactly the state :func:`numasim.workloads.gen.fill_batch` would have left after
  generating them (a sweep, a trace, a random or chase op in O(1) per repetition; a Zipf or
  key-value op draws its items -- rank, moving-hot-set shift, write draw -- through
  :func:`numasim.workloads.gen.zipf_item`, the generator's own function, since its rejection
  sampling uses a variable number of draws).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from numasim.mm import alloc_core as core
from numasim.mm.state import R_PT
from numasim.workloads.gen import (
    B_LINE,
    B_MODE,
    B_R,
    O_B,
    O_COUNT,
    O_HI,
    O_KIND,
    O_LO,
    O_M,
    O_NS,
    O_R,
    O_REPS,
    O_SEED,
    O_STRIDE,
    O_WPPM,
    OP_CHASE,
    OP_RANDOM,
    OP_SWEEP,
    OP_TRACE,
    STORE,
    TS_END,
    TS_I,
    TS_OP,
    TS_REP,
    TS_S,
    TS_X,
    next_rep,
    zipf_item,
    zipf_offset,
    zipf_vlines,
)

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment


@njit(cache=True)
def _sweep_steps(ops, k):
    lo, hi, stride = ops[k, O_LO], ops[k, O_HI], ops[k, O_STRIDE]
    return max(np.int64(0), (hi - lo + stride - 1) // stride)


@njit(cache=True)
def _rep_left(ops, ts, t, k):
    """Accesses left in the current repetition of op ``k`` for thread ``t``."""
    kind = ops[k, O_KIND]
    i = ts[t, TS_I]
    if kind == OP_SWEEP:
        ns = ops[k, O_NS]
        total = _sweep_steps(ops, k) * ns
        done = (i - ops[k, O_LO]) // ops[k, O_STRIDE] * ns + ts[t, TS_S]
        return max(np.int64(0), total - done)
    if kind == OP_TRACE:
        return max(np.int64(0), ops[k, O_HI] - i)
    return max(np.int64(0), ops[k, O_COUNT] - i)


@njit(cache=True)
def _advance_in_rep(ops, opf, ts, rngs, t, k, m):
    """``m`` accesses (fewer than the repetition has left) of op ``k``."""
    kind = ops[k, O_KIND]
    if kind == OP_SWEEP:
        ns = ops[k, O_NS]
        lo, stride = ops[k, O_LO], ops[k, O_STRIDE]
        p = (ts[t, TS_I] - lo) // stride * ns + ts[t, TS_S] + m
        ts[t, TS_I] = lo + (p // ns) * stride
        ts[t, TS_S] = p % ns
    elif kind == OP_TRACE:
        ts[t, TS_I] += m
    elif kind == OP_RANDOM:
        rngs[t] = rngs[t] + np.uint64(m) * GOLDEN
        ts[t, TS_I] += m
    elif kind == OP_CHASE:
        ts[t, TS_X] += m
        ts[t, TS_I] += m
    else:  # ZIPF: the draws, one per item started, as fill_batch makes them
        st = rngs[t]
        vl = zipf_vlines(ops, k)
        nitems, off = zipf_offset(ops, k, ts[t, TS_REP])
        i = ts[t, TS_I]
        x = ts[t, TS_X]
        for j in range(i, i + m):
            if j % vl == 0:
                x, st = zipf_item(opf, k, nitems, off, ops[k, O_SEED], ops[k, O_M],
                                  ops[k, O_WPPM], st)
        rngs[t] = st
        ts[t, TS_X] = x
        ts[t, TS_I] += m


@njit(cache=True)
def advance_stream(ops, opf, ts, rngs, t, n):
    """Move thread ``t``'s generator past its next ``n`` accesses; returns how many it
    passed (fewer when the thread's ops end first)."""
    done = np.int64(0)
    while done < n:
        k = ts[t, TS_OP]
        if k >= ts[t, TS_END]:
            break
        left = _rep_left(ops, ts, t, k)
        if n - done < left:
            _advance_in_rep(ops, opf, ts, rngs, t, k, n - done)
            done = n
            break
        # the rest of this repetition: for a random op the draws still advance the state
        kind = ops[k, O_KIND]
        if kind == OP_SWEEP:
            ts[t, TS_I] = ops[k, O_LO] + _sweep_steps(ops, k) * ops[k, O_STRIDE]
        elif kind == OP_TRACE:
            ts[t, TS_I] = ops[k, O_HI]
        elif left > 0:
            _advance_in_rep(ops, opf, ts, rngs, t, k, left)
        done += left
        if not next_rep(ops, ts, t, k):
            break
    return done


@njit(cache=True)
def _first_fault_page(regions, pages, vmas, pt_page, pt_vma, r, first, last, write):
    """The first page slot offset in [first, last] of region ``r`` (page offsets) whose
    access would fault, or -1."""
    base = regions[r, R_PT]
    for off in range(first, last + 1):
        a = core.pte_access(pages, vmas, pt_page, pt_vma, base + off)
        if core.access_faults(a, write):
            return off
    return -1


@njit(cache=True)
def _sweep_safe(ops, k, j0, nsteps, regions, pages, vmas, pt_page, pt_vma, lpp_shift):
    """Of the steps j0 .. j0+nsteps-1 of sweep op ``k`` (step j touches line lo + j*stride
    of every stream), how many come before the first step with an access that faults."""
    lo, stride, ns = ops[k, O_LO], ops[k, O_STRIDE], ops[k, O_NS]
    lpp = np.int64(1) << lpp_shift
    safe = nsteps
    for s in range(ns):
        r = ops[k, O_R + s]
        b = ops[k, O_B + s] + lo
        write = np.int64(ops[k, O_M + s] == STORE)
        if stride <= lpp:  # every page between the first and the last line is touched
            p0 = (b + j0 * stride) >> lpp_shift
            p1 = (b + (j0 + safe - 1) * stride) >> lpp_shift
            f = _first_fault_page(regions, pages, vmas, pt_page, pt_vma, r, p0, p1, write)
            if f >= 0:
                # the first step whose line lies on page f
                jf = max(np.int64(0), ((f << lpp_shift) - b + stride - 1) // stride - j0)
                safe = min(safe, jf)
        else:
            for j in range(safe):
                p = (b + (j0 + j) * stride) >> lpp_shift
                if _first_fault_page(regions, pages, vmas, pt_page, pt_vma, r, p, p,
                                     write) >= 0:
                    safe = j
                    break
    return safe


@njit(cache=True)
def _range_safe(ops, k, regions, pages, vmas, pt_page, pt_vma, lpp_shift):
    """Does every line a random, chase or Zipf op ``k`` may touch map without a fault?"""
    r = ops[k, O_R]
    a = ops[k, O_B] + ops[k, O_LO]
    b = ops[k, O_B] + ops[k, O_HI] - 1
    write = np.int64(ops[k, O_M] == STORE)
    return _first_fault_page(regions, pages, vmas, pt_page, pt_vma, r, a >> lpp_shift,
                             b >> lpp_shift, write) < 0


@njit(cache=True)
def safe_accesses(ops, ts, t, n, trace, regions, pages, vmas, pt_page, pt_vma, lpp_shift):
    """How many of thread ``t``'s next ``n`` generated accesses (from its generator state
    ``ts[t]``; the state is not changed) come before the first one that would fault.  A
    random op counts as safe only if its whole range is mapped; an op whose ranges were
    found safe once is not checked again for its later repetitions."""
    op = ts[t, TS_OP]
    i = ts[t, TS_I]
    s = ts[t, TS_S]
    rep = ts[t, TS_REP]
    end = ts[t, TS_END]
    checked = -1  # an op whose full repetition was found safe
    done = np.int64(0)
    while done < n and op < end:
        kind = ops[op, O_KIND]
        if kind == OP_SWEEP:
            ns = ops[op, O_NS]
            total = _sweep_steps(ops, op) * ns
            pos = (i - ops[op, O_LO]) // ops[op, O_STRIDE] * ns + s
        elif kind == OP_TRACE:
            total = ops[op, O_HI] - ops[op, O_LO]
            pos = i - ops[op, O_LO]
        else:
            total = ops[op, O_COUNT]
            pos = i
        if checked == op and pos == 0:
            # the remaining repetitions of an op found safe touch the same pages
            left = (ops[op, O_REPS] - rep) * total
            if n - done <= left:
                return n
            done += left
            rep = ops[op, O_REPS]
        else:
            m = min(n - done, total - pos)
            if m > 0:
                if kind == OP_SWEEP:
                    j0 = pos // ns
                    nst = (pos + m - 1) // ns - j0 + 1
                    ok = _sweep_safe(ops, op, j0, nst, regions, pages, vmas, pt_page, pt_vma,
                                     lpp_shift)
                    if ok < nst:
                        return done + max(np.int64(0), (j0 + ok) * ns - pos)
                elif kind == OP_TRACE:
                    for x in range(i, i + m):
                        r = trace[x, 0]
                        slot = regions[r, R_PT] + (trace[x, 1] >> lpp_shift)
                        a = core.pte_access(pages, vmas, pt_page, pt_vma, slot)
                        if core.access_faults(a, np.int64(trace[x, 2] == STORE)):
                            return done + (x - i)
                elif not _range_safe(ops, op, regions, pages, vmas, pt_page, pt_vma,
                                     lpp_shift):
                    return done
            if pos == 0 and m == total:
                checked = op
            done += m
            if done >= n:
                break
            rep += 1
        # the repetition is over: the next one (or the next op) starts from its beginning
        if rep >= ops[op, O_REPS]:
            rep = 0
            op += 1
            if op >= end:
                break
        kind = ops[op, O_KIND]
        i = ops[op, O_LO] if kind == OP_SWEEP or kind == OP_TRACE else 0
        s = 0
    return min(done, n)


@njit(cache=True)
def buffered_safe(buf, c, head, count, regions, pages, vmas, pt_page, pt_vma, lpp_shift):
    """How many of CPU ``c``'s generated but not yet issued accesses (``buf[c, head:count]``)
    come before the first one that would fault."""
    for x in range(head, count):
        r = buf[c, x, B_R]
        slot = regions[r, R_PT] + (buf[c, x, B_LINE] >> lpp_shift)
        a = core.pte_access(pages, vmas, pt_page, pt_vma, slot)
        if core.access_faults(a, np.int64(buf[c, x, B_MODE] == STORE)):
            return x - head
    return count - head

