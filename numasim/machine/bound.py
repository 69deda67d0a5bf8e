"""The fast engine's *bound* phase: one CPU, one quantum, one numba call.

Each CPU process runs one quantum of cycles in a single numba call
(:func:`run_quantum`): it generates the thread's accesses, faults pages through the jitted
allocator core, and times every request as idle latency + the wait in the CPU's *private*
FIFO copy of every server on its route (how a CPU's own requests queue behind each other:
bursts, a write-back meeting the next read -- exactly what the exact engine gives a CPU that
is alone on its resources) + the wait behind *other* CPUs estimated from the previous quantum,
drawn uniformly from [w/2, 3w/2) around its mean w (a deterministic splitmix64 stream per
CPU).  In a real queue some requests wait longer than others, and threads drift apart; giving
every request the same wait kept the CPUs refilling their miss slots in lockstep, a pulsing
load the weave then mistook for a convoy.  (A spread of [0, 2w) did as well for throughput
but widened the latency distribution of a saturated controller, where every request waits
behind a nearly constant queue: p50 34 % below the exact engine's, p99 49 % above.)
It counts the lines each (CPU, memory node, kind) moved, per time bin of the quantum.

One request from issue to completion, in :func:`_quantum`'s loop (:func:`run_quantum`
makes the quantum's arrays, :func:`_begin`, and calls it):

1. the next access comes from the thread's buffer (``fill_batch``), the page lookups of the
   accesses ahead are started (:func:`_look_ahead`);
2. it issues after its gap (and the access it depends on) when a miss slot is free
   (:func:`_issue_at`); the quantum's end, a due scheduler tick or kswapd step stops the CPU
   first (:func:`_due`); posted write-backs due by then pass the queues (:func:`_drain`);
3. a fault Python handled (hinting fault, THP) issues the rest of its lines
   (:func:`_resume_fault`);
4. the page (:func:`_page`): the region's cached one, else :func:`_lookup` (present, zero
   page, or a fault); an ordinary fault goes through the allocator core (:func:`_fault`),
   its zeroing lines issue (:func:`_fault_lines`, the one loop of every fault's lines:
   zeroing, THP zeroing, migration copy), it is counted (:func:`_fault_done`) and the access
   resumes when its last line is back and a slot is free (:func:`_fault_end`,
   :func:`_slot_free`);
5. with a TLB modelled (off by default), its lookup and on a miss the page walk's line load
   from the node holding the page table (:func:`_walk`, :mod:`numasim.machine.tlb`), which
   the access waits for;
   the access itself (:func:`_access`): zero page or LLC hit (:func:`_llc`, a dirty victim
   written back), else a miss (:func:`_miss`): the serve step through the CPU's private
   FIFOs (:func:`_serve`) plus the estimated wait behind others, one count in its time bin
   (:func:`_next_bin`), a dirty line posted as a write-back (:func:`_post`);
6. completion: it holds its miss slot until its data is back (:func:`_refill`).

:func:`_quantum` and its helpers are compiled without numba's reference counting
(``_nrt=False``: they only index the arrays they are given; the arrays are made by
:func:`run_quantum` before).  With it, every call -- and every helper inlined into a loop
this large -- took an atomic increment and decrement per array it was passed: a version of
the loop with every step a helper ran 5x slower, and the kernel's entry points cost some
230 atomic operations per page fault, a third of a fault-heavy run's time.  Without it, the
steps are named inline helpers at no cost (the rarer ones -- a lookup the cached page did
not serve, a fault, its lines, the LLC and TLB steps, the saves -- real calls).

At the quantum's end the bin counts, rows and counters are saved (:func:`_flush`,
:func:`_save_rows`, :func:`_save_stats`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from numasim.machine import cpu as C
from numasim.machine.kswapd_clock import KSWAPD_POLL
from numasim.machine.numab_clock import (
    NBF_AT,
    NBF_EXTRA,
    NBF_FEND,
    NBF_KSWAPD,
    NBF_T0,
    NBF_TICK,
    NBF_TZ,
    NBI_DONE,
    NBI_DST,
    NBI_LINES,
    NBI_PENDING,
    NBI_SRC,
    NUMAB_HINT,
    NUMAB_THP,
    NUMAB_TICK,
)
from numasim.machine.prefetch import prefetch
from numasim.machine.tlb import TLB_ON, tlb_access
from numasim.mm import alloc_core as core
from numasim.mm.state import (
    FAULT_OK,
    K_PAGES,
    K_PGTABLES,
    K_PT_PAGE,
    K_PT_VMA,
    K_REGIONS,
    K_SYSVARS,
    K_VMAS,
    PG_KIND,
    PG_MAPCOUNT,
    PG_NODE,
    PGK_ANON,
    PT_ZERO,
    R_MM,
    R_PT,
    R_START,
    SV_KSWAPD_WAKE,
    SV_THP,
    V_SHARED,
)
from numasim.workloads.gen import (
    B_BYTES,
    B_DEP,
    B_GAP,
    B_LINE,
    B_MODE,
    B_OP,
    B_R,
    STORE,
    fill_batch,
)

# pair[c, node, kind]: lines CPU c moved to or from memory node ``node`` this quantum, by kind
P_READ = 0  # read or read for ownership (latency-bearing, read route)
P_WRITE = 1  # non-temporal write or page zeroing (latency-bearing, write route)
P_WB = 2  # write-back (posted, write route)
P_NKINDS = 3
# how many accesses ahead a page lookup starts: the page-table slot PF_SLOT ahead, the page
# row (which needs the slot's value) PF_PAGE ahead
PF_SLOT = 16
PF_PAGE = 8


# The three steps every line takes, written once.  They are inlined into _quantum by
# numba (a call passing arrays costs tens of ns); their loops have no ``break``: an inlined
# loop with a second exit cost 35 ns per call (numba 0.68), against 4 ns without.


@njit(cache=True, inline="always")
def _serve(route, hop, rlen, node, a, sfl):
    """The one serve step: a line arriving at cycle ``a`` passes the CPU's private FIFO copy
    of every server on ``route[node]`` in turn (``sfl``: when each is next free; the route
    has ``rlen[node]`` hops), each for ``hop[node, k]`` cycles (its service time times the
    hop's work: 1 for a data line, a fraction for a protocol message,
    :mod:`numasim.machine.resources`; :func:`_hops` computes both once per quantum);
    returns the time it waited."""
    w = 0.0
    nu = np.uint64(node)  # unsigned indices: no negative-index fix-up per hop
    for k in range(rlen[nu]):
        ku = np.uint64(k)
        x = np.uint64(route[nu, ku])
        f = sfl[x]
        s0 = a if a > f else f
        w += s0 - a
        a = s0 + hop[nu, ku]
        sfl[x] = a
    return w


@njit(cache=True)
def _hops(route, cost, service):
    """Per route of one CPU node: every hop's service time in cycles (``service[x] *
    cost``, the product :func:`_serve` once took per hop) and the route's length (its hops
    end at the first -1)."""
    hop = np.zeros(route.shape)
    rlen = np.zeros(route.shape[0], dtype=np.int64)
    for n in range(route.shape[0]):
        k = 0
        while k < route.shape[1] and route[n, k] >= 0:
            hop[n, k] = service[route[n, k]] * cost[n, k]
            k += 1
        rlen[n] = k
    return hop, rlen


@njit(cache=True)
def _cpu_rows(c, cn, slots, waits, lat, sfree):
    """CPU c's rows copied into locals for the hot loop: its miss slots, its estimated
    waits (read and write route, by memory node), the idle latencies from its node, when
    its private FIFO copies of the servers are free."""
    m = slots.shape[1]
    nn = waits.shape[2]
    sl = np.sort(slots[c, :m])  # a ring sorted by when each slot frees, head 0
    wr = np.empty(nn)
    ww = np.empty(nn)
    latr = np.empty(nn)
    for k in range(nn):
        wr[k] = waits[c, 0, k]
        ww[k] = waits[c, 1, k]
        latr[k] = lat[cn, k]
    sfl = np.empty(sfree.shape[1])
    for k in range(sfree.shape[1]):
        sfl[k] = sfree[c, k]
    return sl, wr, ww, latr, sfl


@njit(cache=True, _nrt=False)
def _save_rows(c, slots, sfree, pwait, sl, sh, sfl, pw):
    """The hot loop's locals back into CPU c's rows (pwait accumulates over the quantum);
    the slots' ring from its head ``sh``, so the row stays sorted."""
    n = sl.shape[0]
    for k in range(n):
        slots[c, k] = sl[(sh + k) % n]
    for k in range(sfl.shape[0]):
        sfree[c, k] = sfl[k]
    for n in range(pwait.shape[1]):
        for k in range(P_NKINDS):
            pwait[c, n, k] += pw[n * P_NKINDS + k]


# up to this many miss slots, _refill merges without a branch (a walk's exit was a
# mispredicted branch whenever the wait spread reordered completions)
REFILL_MERGE_MAX = 32


@njit(cache=True, inline="always")
def _refill(sl, sh, done):
    """The miss slot that frees first (``sl[sh]``: the slots are a ring sorted by when each
    frees) is taken until ``done``: the ring loses its head and gets ``done`` in order;
    returns the new head.  Only the slots' times matter, not which slot is which, so a
    sorted ring gives what a scan for the earliest would (a scan of mlp slots was a chain of
    mlp dependent float compares: ~15 ns of every access at mlp 10).

    Up to :data:`REFILL_MERGE_MAX` slots the head stays at 0 and every cell takes its new
    value without a branch: with the old head gone, cell k holds ``max(min(sl[k + 1],
    done), sl[k])`` (cell 0 ``min(sl[1], done)``, the last ``max(done, sl[n - 1])``) --
    the same sorted values the walk below leaves; a vectorised pass, and nothing for the
    branch predictor to miss.  Larger rings walk back from the tail."""
    n = sl.shape[0]
    if sh == 0 and n <= REFILL_MERGE_MAX:
        if n == 1:
            sl[0] = done
            return 0
        v = sl[1]
        sl[0] = v if v < done else done
        for k in range(1, n - 1):
            v = sl[k + 1]
            v = v if v < done else done
            u = sl[k]
            sl[k] = v if v > u else u
        u = sl[n - 1]
        sl[n - 1] = done if done > u else u
        return 0
    h = sh + 1
    if h == n:
        h = 0
    # the new element's cell is the old head's (h + n - 1 mod n): walk back while later
    i = n - 1
    p = h + i - 1
    if p >= n:
        p -= n
    while i > 0 and sl[p] > done:
        q = p + 1
        if q == n:
            q = 0
        sl[q] = sl[p]
        i -= 1
        p = p - 1 if p > 0 else n - 1
    q = h + i
    if q >= n:
        q -= n
    sl[q] = done
    return h


@njit(cache=True, inline="always")
def _splitmix_uniform(key):
    """A uniform in [0, 1) from a counter (splitmix64): independent draws, no state."""
    z = key * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    # z >> 11 < 2**53: through int64, the conversion is one instruction (an unsigned one is
    # a branchy sequence); the value is the same
    return np.float64(np.int64(z >> np.uint64(11))) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _post(wbqc, wbh, nwb, tw, node):
    """A posted write-back to ``node`` at cycle ``tw`` into the CPU's ring, kept sorted by
    time (it is served when the CPU's clock passes it: :func:`_drain`); returns the ring's
    length."""
    qmask = wbqc.shape[0] - 1
    k = nwb
    while k > 0 and wbqc[np.uint64((wbh + k - 1) & qmask), 0] > tw:
        p = np.uint64((wbh + k - 1) & qmask)  # unsigned: no negative-index fix-up
        q = np.uint64((wbh + k) & qmask)
        wbqc[q, 0] = wbqc[p, 0]
        wbqc[q, 1] = wbqc[p, 1]
        k -= 1
    q = np.uint64((wbh + k) & qmask)
    wbqc[q, 0] = tw
    wbqc[q, 1] = node
    return nwb + 1


@njit(cache=True, inline="always")
def _drain(wbqc, wbh, nwb, until, rw, hw, lw, sfl, pw):
    """Posted write-backs due at or before ``until`` leave the CPU's ring (sorted by time)
    through the serve step, in time order; returns the ring's new head and length."""
    qmask = wbqc.shape[0] - 1
    while nwb > 0 and wbqc[np.uint64(wbh), 0] <= until:
        hu = np.uint64(wbh)  # unsigned: no negative-index fix-up
        wm = np.int64(wbqc[hu, 1])
        pw[np.uint64(wm * P_NKINDS + P_WB)] += _serve(rw, hw, lw, wm, wbqc[hu, 0], sfl)
        wbh = (wbh + 1) & qmask
        nwb -= 1
    return wbh, nwb


@njit(cache=True, inline="always")
def _flush(pbinc, lb, bcur):
    """The current time bin's counts (``lb``, by node and kind) into ``pbinc``."""
    for k in range(lb.shape[0]):
        pbinc[k // P_NKINDS, k % P_NKINDS, bcur] += lb[k]
        lb[k] = 0


@njit(cache=True, inline="always")
def _next_bin(pbinc, lb, t, bcur, q_start, bin_inv, nbin):
    """``t`` has left the current time bin: flush the bin's counts, move to t's bin (the last
    one at most).  Returns the bin and its end.  The caller tests and counts: one line is
    ``if t >= bend and bcur < nbin - 1: bcur, bend = _next_bin(...)`` then
    ``lb[node * P_NKINDS + kind] += 1`` (a helper doing all of it cost a quarter of the
    engine's speed)."""
    _flush(pbinc, lb, bcur)
    bcur = np.int64((t - q_start) * bin_inv)
    if bcur >= nbin:
        bcur = nbin - 1
    return bcur, q_start + (bcur + 1) / bin_inv


# ---- the steps of one request, in the order _quantum takes them.  ``kx`` (the CPU's
# constants for the quantum) and ``lx`` (the arrays every line touches) are tuples built once
# per quantum by _begin; numba unpacks them at compile time, so a helper pays nothing for the
# fields it does not use.  The scalars a step changes come back in its return value.


@njit(cache=True)
def _begin(c, cpu, eng):
    """CPU c's constants for this quantum (``kx``) and the arrays its lines touch (``lx``:
    its slots' ring, its private FIFOs, its wait and bin counters, its rows of the routes,
    costs, idle latencies and estimated waits)."""
    ci, cs, slots, buf, ops, opf, ts, rngs, trace, st, hist, pf, pi = cpu
    waits, lat, route_r, route_w, service, sfree, pwait, wbq, pbin, cost_r, cost_w = eng
    cn = ci[c, C.CI_NODE]
    lpp_shift = pi[C.PI_LPP_SHIFT]
    nsl = slots.shape[1]
    nbin = np.int64(pf[C.PF_NBINS])
    opc = C.op_constants(ops, pi[C.PI_PREFETCH] != 0, nsl - pi[C.PI_MLP], np.int64(pf[C.PF_LINE]),
                         np.int64(1) << lpp_shift)
    kx = (nsl - pi[C.PI_MLP],  # a non-prefetched miss waits for this slot (0: no prefetch)
          nsl, pi[C.PI_PREFETCH] != 0, np.int64(pf[C.PF_LINE]), lpp_shift,
          np.int64(1) << lpp_shift, pi[C.PI_WRITE_ALLOCATE] != 0, pi[C.PI_LLC] != 0,
          pf[C.PF_HIT], pf[C.PF_LLC_HIT], pf[C.PF_FAULT], pf[C.PF_ZERO_GAP],
          pf[C.PF_Q_START], pf[C.PF_BIN_INV], nbin, cn,
          opc[:, C.OPC_LOOKAHEAD].any())  # any op whose page lookups start ahead
    sl, wr, ww, latr, sfl = _cpu_rows(c, cn, slots, waits, lat, sfree)
    nn = waits.shape[2]
    pw = np.zeros(nn * P_NKINDS)  # private-FIFO waits by (node, kind), for burst factors
    # lines by (node, kind) in the current time bin; flushed to pbin when the bin changes
    lb = np.zeros(nn * P_NKINDS, dtype=np.int64)
    hr, lr = _hops(route_r[cn], cost_r[cn], service)
    hw, lw = _hops(route_w[cn], cost_w[cn], service)
    lx = (sl, sfl, pw, lb, pbin[c], wbq[c], route_r[cn], route_w[cn], hr, hw, lr, lw, latr, wr,
          ww, opc)
    return kx, lx


@njit(cache=True, inline="always")
def _first_bin(kx, t):
    """The time bin of cycle ``t`` (clamped to the quantum's bins) and its end."""
    q_start, bin_inv, nbin = kx[12], kx[13], kx[14]
    bcur = np.int64((t - q_start) * bin_inv)
    if bcur < 0:
        bcur = 0
    elif bcur >= nbin:
        bcur = nbin - 1
    return bcur, q_start + (bcur + 1) / bin_inv


@njit(cache=True, inline="always")
def _slot_free(kx, opc, bufc, head, sl, sh):
    """When the miss slot the access at ``head`` waits for frees: the first to free, or with
    the stream prefetcher and a non-sweep access the one that leaves fewer than mlp in
    flight (``opc``: :func:`numasim.machine.cpu.op_constants`)."""
    nsl = kx[1]
    so = opc[bufc[head, B_OP], C.OPC_SLOT] + sh
    if so >= nsl:
        so -= nsl
    return sl[so]


@njit(cache=True, _nrt=False)
def _lookup(pcache, nb_prot, pt_page, pages, pt_vma, vmas, r, pslot, write):
    """The page behind page-table slot ``pslot`` of region ``r``: (page, its node, whether the
    access faults, whether it is a NUMA hinting fault).  Which accesses fault is the kernel's
    rule: none, the zero page read, a present page written where it may be (anonymous and
    mapped once, or a shared mapping); anything else faults (first touch, COW).  Called when
    the region's cached page (``pcache``) does not serve the access; a page that does not
    fault becomes the cached one."""
    pg = pt_page[pslot]
    node = -1
    wok = 0
    fault = False
    if pg >= 0 and core.pte_numa_hint(nb_prot, pt_page, pslot):
        return pg, node, False, True
    if pg >= 0:
        node = pages[pg, PG_NODE]
        wok = 1
        if not (pages[pg, PG_KIND] == PGK_ANON and pages[pg, PG_MAPCOUNT] <= 1):
            wok = 1 if vmas[pt_vma[pslot], V_SHARED] != 0 else 0
        fault = write and wok == 0
    elif not (pg == PT_ZERO and not write):
        fault = True
    if not fault:
        pcache[r, 0] = pslot
        pcache[r, 1] = pg
        pcache[r, 2] = node
        pcache[r, 3] = wok
    return pg, node, fault, False


@njit(cache=True, _nrt=False)
def _fault(kern, fres, pcache, t, r, off, pslot, write, lpp):
    """An ordinary fault through the allocator core: (status, page, its node, lines to zero).
    The page cache of every region is dropped (the fault may have changed page tables: COW
    frees pages)."""
    regions, pages, pt_page = kern[K_REGIONS], kern[K_PAGES], kern[K_PT_PAGE]
    status = core.handle_mm_fault_range(kern, t, r, regions[r, R_START] + off, 1,
                                        np.int64(write), core.OOM_MAY, fres)
    if status != FAULT_OK:
        return status, -1, -1, 0
    pg = pt_page[pslot]
    pcache[:, 0] = -1
    node = pages[pg, PG_NODE] if pg >= 0 else -1
    return status, pg, node, fres[core.R_ALLOCATED] * lpp


@njit(cache=True, _nrt=False)
def _fault_lines(lx, kx, pos, fx, src, dst, nz, k, tz, fend, stop):
    """The one loop of a fault's lines: ``nz`` lines read from ``src`` (none when src < 0),
    then ``nz`` written to ``dst`` -- a fresh page's zeroing (src < 0), a migration's copy,
    a THP's zeroing -- from line ``k`` on, the first at cycle ``tz``, one every zero_gap.
    Each line waits for a miss slot, passes the serve step, is counted in its time bin; the
    writes start when every read has arrived.  Lines stop at cycle ``stop`` (a pending
    fault's rest issues in the next quantum; an ordinary fault passes inf).  ``pos``: (slots'
    head, write-back ring head and length, time bin and its end); ``fx``: (stall, queue
    latency, requests) of the quantum.  Returns (k, tz, fend, pos, fx)."""
    sl, sfl, pw, lb, pbinc, wbqc, rr, rw, hr, hw, lr, lw, latr, wr, ww, opc = lx
    off1, nsl, zero_gap, q_start, bin_inv, nbin = kx[0], kx[1], kx[11], kx[12], kx[13], kx[14]
    sh, wbh, nwb, bcur, bend = pos
    stall, q_lat, q_nreq = fx
    p0 = 0 if src >= 0 else 1
    ntot = (2 - p0) * nz
    while k < ntot:
        # the pass (0 read, 1 write), without two integer divisions a line (k < 2 nz)
        pas = 1 if p0 == 1 or k >= nz else 0
        if pas == 1 and (k == 0 or k == nz) and fend > tz:
            tz = fend  # the writes start when every read has arrived
        nd = src if pas == 0 else dst
        kind = P_READ if pas == 0 else P_WRITE
        zl = latr[nd] + (wr[nd] if pas == 0 else ww[nd])
        zo = sh + off1
        if zo >= nsl:
            zo -= nsl
        zmin = sl[zo]
        if zmin > tz:
            stall += zmin - tz
            tz = zmin
        if tz >= stop:
            break
        wbh, nwb = _drain(wbqc, wbh, nwb, tz, rw, hw, lw, sfl, pw)
        if pas == 0:
            wz = _serve(rr, hr, lr, nd, tz, sfl)
        else:
            wz = _serve(rw, hw, lw, nd, tz, sfl)
        pw[nd * P_NKINDS + kind] += wz
        dz = tz + zl + wz
        sh = _refill(sl, sh, dz)
        if dz > fend:
            fend = dz
        if tz >= bend and bcur < nbin - 1:
            bcur, bend = _next_bin(pbinc, lb, tz, bcur, q_start, bin_inv, nbin)
        lb[nd * P_NKINDS + kind] += 1
        q_lat += zl + wz
        q_nreq += 1.0
        tz += zero_gap
        k += 1
    return k, tz, fend, (sh, wbh, nwb, bcur, bend), (stall, q_lat, q_nreq)


@njit(cache=True, inline="always")
def _fault_done(st, c, src, nz, t0, tz, fend, q_zstall):
    """A fault's lines have all issued: count it (zeroing lines when nothing was copied);
    waiting for its last lines is a memory stall too (the weave's demand model must see a
    fault-bound CPU as memory-bound).  Returns the quantum's zeroing stall."""
    if src < 0:
        st[c, C.ST_ZERO_LINES] += nz
    if fend > tz:
        q_zstall += fend - tz
    st[c, C.ST_FAULTS] += 1
    st[c, C.ST_FAULT_CYCLES] += fend - t0
    return q_zstall


@njit(cache=True, _nrt=False)
def _resume_fault(lx, kx, nbi, nbf, st, c, pos, fx, ti, base, t_end):
    """The fault the kernel's Python side handled (a hinting fault: fault_ns + the TLB
    shootdown, then the migration's copy; a THP fault: fault_ns, then the zeroing) issues
    its lines up to the quantum's end; the rest wait in nbi/nbf for the next quantum, so the
    weave counts each line in the quantum it issues in (a THP's 32768 lines counted in one
    short quantum looked like a burst far beyond any bandwidth: the next fault then waited
    ~100 us a line).  ``fx``: (stall, queue latency, requests, zeroing stall).  Returns
    (fend, pos, fx); ``nbi[c, NBI_PENDING]`` is 0 once the fault is done."""
    stall, q_lat, q_nreq, q_zstall = fx
    if nbi[c, NBI_PENDING] == 1:
        stall += ti - base
        nbi[c, NBI_PENDING] = 2
        nbi[c, NBI_DONE] = 0
        nbf[c, NBF_T0] = ti
        nbf[c, NBF_TZ] = ti + kx[10] + nbf[c, NBF_EXTRA]
        nbf[c, NBF_FEND] = nbf[c, NBF_TZ]
    src = nbi[c, NBI_SRC]
    nz = nbi[c, NBI_LINES]
    k, tz, fend, pos, (stall, q_lat, q_nreq) = _fault_lines(
        lx, kx, pos, (stall, q_lat, q_nreq), src, nbi[c, NBI_DST], nz, nbi[c, NBI_DONE],
        nbf[c, NBF_TZ], nbf[c, NBF_FEND], t_end)
    if k < (1 if src < 0 else 2) * nz:
        # the quantum ended mid-fault: the rest issues in the next one
        nbi[c, NBI_DONE] = k
        nbf[c, NBF_TZ] = tz
        nbf[c, NBF_FEND] = fend
    else:
        nbi[c, NBI_PENDING] = 0
        q_zstall = _fault_done(st, c, src, nz, nbf[c, NBF_T0], tz, fend, q_zstall)
    return fend, pos, (stall, q_lat, q_nreq, q_zstall)


@njit(cache=True, inline="always")
def _fault_end(lx, kx, bufc, head, sh, wbh, nwb, fend, last):
    """After a fault the access issues when its last line arrived and a miss slot is free;
    write-backs due by then go first.  Returns (issue cycle, base, last, wbh, nwb)."""
    sl, sfl, pw, rw, hw, lw, wbqc = lx[0], lx[1], lx[2], lx[7], lx[9], lx[11], lx[5]
    if fend > last:
        last = fend
    ti = fend
    smin = _slot_free(kx, lx[15], bufc, head, sl, sh)
    if smin > ti:
        ti = smin
    wbh, nwb = _drain(wbqc, wbh, nwb, ti, rw, hw, lw, sfl, pw)
    return ti, ti, last, wbh, nwb


@njit(cache=True, _nrt=False)
def _llc(llc, rw, hw, lw, sfl, pw, pbinc, lb, kx, pos, pg, line, node, write, ti):
    """The last-level cache: is line ``line`` of page ``pg`` a hit; a dirty victim goes out
    as a write-back through the serve step, counted in its time bin.  ``pos``: (time bin,
    its end).  Returns (hit, write-backs, pos)."""
    lpp, q_start, bin_inv, nbin, cn = kx[5], kx[12], kx[13], kx[14], kx[15]
    bcur, bend = pos
    llc_tags, llc_meta, llc_clock = llc
    hit, wbn = C.llc_access(llc_tags, llc_meta, llc_clock, cn, C.llc_key(pg, line, lpp), write,
                            node)
    n_wb = 0.0
    if wbn >= 0:
        pw[wbn * P_NKINDS + P_WB] += _serve(rw, hw, lw, wbn, ti, sfl)
        if ti >= bend and bcur < nbin - 1:
            bcur, bend = _next_bin(pbinc, lb, ti, bcur, q_start, bin_inv, nbin)
        lb[wbn * P_NKINDS + P_WB] += 1
        n_wb = 1.0
    return hit, n_wb, (bcur, bend)


@njit(cache=True, _nrt=False)
def _walk(lx, kx, llc, tlb, st, c, hx, pos, kern, r, line, pg, ti):
    """The TLB lookup of an access to page ``pg`` (:func:`numasim.machine.tlb.tlb_access`)
    and on a miss the page walk's line load (:func:`_walk_load`).  Returns (cycles the access
    waits for the walk, hx, pos).  A call without reference counting (the module
    docstring)."""
    regions, pages, pgtables = kern[K_REGIONS], kern[K_PAGES], kern[K_PGTABLES]
    vpn = regions[r, R_START] + (line >> kx[4])
    tpg, tline, node = tlb_access(tlb, st, c, regions[r, R_MM], vpn, pg, pages, pgtables)
    if tpg < 0:
        return 0.0, hx, pos
    return _walk_load(lx, kx, llc, st, c, hx, pos, tpg, tline, node, ti)


@njit(cache=True, _nrt=False)
def _walk_load(lx, kx, llc, st, c, hx, pos, tpg, tline, node, ti):
    """A page walk's line load (line ``tline`` of page-table page ``tpg`` on ``node``),
    issued at ``ti`` like a read: an LLC hit, or the serve step plus the estimated wait drawn
    as :func:`_miss` draws a miss, counted in its time bin."""
    sl, sfl, pw, lb, pbinc, wbqc, rr, rw, hr, hw, lr, lw, latr, wr, ww, opc = lx
    lpp, llc_on, llc_hit = kx[5], kx[7], kx[9]
    q_start, bin_inv, nbin, cn = kx[12], kx[13], kx[14], kx[15]
    n_hits, n_wb, n_mem, lat_sum, wait_sum, n_local, dkey = hx
    wbh, nwb, bcur, bend = pos
    if llc_on:
        hit, wbn = C.llc_access(llc[0], llc[1], llc[2], cn, C.llc_key(tpg, tline, lpp), False,
                                node)
        if wbn >= 0:
            pw[wbn * P_NKINDS + P_WB] += _serve(rw, hw, lw, wbn, ti, sfl)
            if ti >= bend and bcur < nbin - 1:
                bcur, bend = _next_bin(pbinc, lb, ti, bcur, q_start, bin_inv, nbin)
            lb[wbn * P_NKINDS + P_WB] += 1
            n_wb += 1.0
        if hit != 0:
            st[c, C.ST_WALK_CYC] += llc_hit
            return llc_hit, (n_hits, n_wb, n_mem, lat_sum, wait_sum, n_local, dkey), \
                (wbh, nwb, bcur, bend)
    dkey += np.uint64(1)
    w = wr[node] * (0.5 + _splitmix_uniform(dkey))
    ws = _serve(rr, hr, lr, node, ti, sfl)
    pw[node * P_NKINDS + P_READ] += ws
    if ti >= bend and bcur < nbin - 1:
        bcur, bend = _next_bin(pbinc, lb, ti, bcur, q_start, bin_inv, nbin)
    lb[node * P_NKINDS + P_READ] += 1
    latv = latr[node] + w + ws
    st[c, C.ST_WALK_CYC] += latv
    return latv, (n_hits, n_wb, n_mem, lat_sum, wait_sum, n_local, dkey), (wbh, nwb, bcur, bend)


@njit(cache=True, _nrt=False)
def _save_stats(st, c, n_acc, nbytes, hx, fx):
    """The quantum's counters into CPU c's statistics (the queue columns count every request
    that waited: misses and fault lines)."""
    n_hits, n_wb, n_mem, lat_sum, wait_sum, n_local, _ = hx
    stall, q_lat, q_nreq, q_zstall = fx
    st[c, C.ST_ACCESSES] += n_acc
    st[c, C.ST_MEM] += n_mem
    st[c, C.ST_HITS] += n_hits
    st[c, C.ST_LAT_SUM] += lat_sum
    st[c, C.ST_WAIT_SUM] += wait_sum
    st[c, C.ST_LOCAL] += n_local
    st[c, C.ST_BYTES] += nbytes
    st[c, C.ST_STALL] += stall
    st[c, C.ST_WRITEBACKS] += n_wb
    st[c, C.ST_Q_NREQ] += q_nreq + n_mem
    st[c, C.ST_Q_LAT] += q_lat + lat_sum
    st[c, C.ST_Q_STALL] += stall + q_zstall


@njit(cache=True, inline="always")
def _look_ahead(kern, pcache, opc, bufc, head, count, lpp_shift):
    """Start the page lookups of the accesses ahead (:func:`numasim.machine.prefetch.prefetch`):
    the page-table slot PF_SLOT ahead, the page row PF_PAGE ahead (it needs the slot's
    value); not for sequential sweeps, whose accesses hit the region's cached page."""
    regions, pages, pt_page = kern[K_REGIONS], kern[K_PAGES], kern[K_PT_PAGE]
    if head + PF_SLOT < count and opc[bufc[head + PF_SLOT, B_OP], C.OPC_LOOKAHEAD]:
        r2 = bufc[head + PF_SLOT, B_R]
        s2 = regions[r2, R_PT] + (bufc[head + PF_SLOT, B_LINE] >> lpp_shift)
        if s2 != pcache[r2, 0]:
            prefetch(pt_page, s2)
    if head + PF_PAGE < count and opc[bufc[head + PF_PAGE, B_OP], C.OPC_LOOKAHEAD]:
        r2 = bufc[head + PF_PAGE, B_R]
        s2 = regions[r2, R_PT] + (bufc[head + PF_PAGE, B_LINE] >> lpp_shift)
        if s2 != pcache[r2, 0]:
            prefetch(pages, pt_page[s2])


@njit(cache=True, inline="always")
def _issue_at(kx, lx, bufc, head, sh, issue, dprev, nbi, nbf, c):
    """When the access at ``head`` issues: after its gap (and the access it depends on), when
    its miss slot is free; a fault's lines still to issue come first.  Returns (issue
    cycle, base: the cycle it would issue at with nothing to wait for)."""
    gap = bufc[head, B_GAP]
    base = issue + gap
    ti = base
    if bufc[head, B_DEP] != 0 and dprev + gap > ti:
        ti = dprev + gap
    smin = _slot_free(kx, lx[15], bufc, head, lx[0], sh)
    if smin > ti:
        ti = smin
    if nbi[c, NBI_PENDING] == 2:
        ti = nbf[c, NBF_TZ]  # a fault's lines still to issue: the CPU resumes them
    return ti, base


GO = -1  # _due: nothing stops the access


@njit(cache=True, inline="always")
def _due(sysvars, nbf, c, ti, t_end):
    """What stops the CPU before an access at ``ti``: the quantum's end (FAULT_OK), a
    scheduler tick of NUMA balancing (NUMAB_TICK), a woken kswapd or an awake one's step
    (KSWAPD_POLL, :mod:`numasim.machine.kswapd_clock`); GO when nothing does."""
    if ti >= t_end:
        return FAULT_OK
    if ti >= nbf[c, NBF_TICK]:
        return NUMAB_TICK
    if sysvars[SV_KSWAPD_WAKE] != 0 or ti >= nbf[c, NBF_KSWAPD]:
        nbf[c, NBF_AT] = ti
        return KSWAPD_POLL
    return GO


@njit(cache=True, inline="always")
def _page(kern, pcache, nb_prot, r, pslot, write):
    """The page of an access: the region's cached one, else :func:`_lookup`.  Returns (page,
    its node, whether the access faults, whether it is a NUMA hinting fault)."""
    if pcache[r, 0] == pslot and (pcache[r, 3] != 0 or not write):
        return pcache[r, 1], pcache[r, 2], False, False
    return _lookup(pcache, nb_prot, kern[K_PT_PAGE], kern[K_PAGES], kern[K_PT_VMA],
                   kern[K_VMAS], r, pslot, write)


@njit(cache=True, inline="always")
def _miss(lx, kx, histc, pos, hx, node, write, ti):
    """A miss goes to memory: the wait behind others, uniform over [w/2, 3w/2) around its
    mean (splitmix64 of a per-CPU counter: one wait for all kept CPUs in lockstep), plus the
    serve step through the CPU's private FIFOs, one count in its time bin; a line written
    with no LLC to hold it is posted as a write-back when it arrives.  Returns (latency,
    pos, hx)."""
    sl, sfl, pw, lb, pbinc, wbqc, rr, rw, hr, hw, lr, lw, latr, wr, ww, opc = lx
    write_allocate, llc_on, q_start, bin_inv, nbin, cn = kx[6], kx[7], kx[12], kx[13], kx[14], \
        kx[15]
    wbh, nwb, bcur, bend = pos
    n_hits, n_wb, n_mem, lat_sum, wait_sum, n_local, dkey = hx
    dkey += np.uint64(1)
    dith = 0.5 + _splitmix_uniform(dkey)
    # a non-temporal write goes to memory on the write route, anything else (a read, a read
    # for ownership) comes back on the read route
    if write and not write_allocate:
        route, hop, rlen = rw, hw, lw
        kind = P_WRITE
        w = ww[node] * dith
    else:
        route, hop, rlen = rr, hr, lr
        kind = P_READ
        w = wr[node] * dith
    ws = _serve(route, hop, rlen, node, ti, sfl)
    pw[node * P_NKINDS + kind] += ws
    w += ws
    if ti >= bend and bcur < nbin - 1:
        bcur, bend = _next_bin(pbinc, lb, ti, bcur, q_start, bin_inv, nbin)
    lb[node * P_NKINDS + kind] += 1
    latv = latr[node] + w
    if write and write_allocate and not llc_on:
        # the dirty line is written back when it arrives: queue it by time
        if nwb > wbqc.shape[0] - 1:  # full (cannot happen: capacity > mlp)
            wbh, nwb = _drain(wbqc, wbh, nwb, wbqc[wbh, 0], rw, hw, lw, sfl, pw)
        nwb = _post(wbqc, wbh, nwb, ti + latv, node)
        if ti >= bend and bcur < nbin - 1:
            bcur, bend = _next_bin(pbinc, lb, ti, bcur, q_start, bin_inv, nbin)
        lb[node * P_NKINDS + P_WB] += 1
        n_wb += 1.0
    n_mem += 1.0
    lat_sum += latv
    wait_sum += w
    if node == cn:
        n_local += 1.0
    histc[C.hist_bin(latv)] += 1
    return latv, (wbh, nwb, bcur, bend), (n_hits, n_wb, n_mem, lat_sum, wait_sum, n_local, dkey)


@njit(cache=True, inline="always")
def _access(lx, kx, llc, histc, pos, hx, pg, line, node, write, ti):
    """The access itself: the zero page or an LLC hit (:func:`_llc`, a dirty victim written
    back), else a miss (:func:`_miss`).  Returns (latency, pos, hx)."""
    write_allocate, llc_on, hit_cyc, llc_hit = kx[6], kx[7], kx[8], kx[9]
    wbh, nwb, bcur, bend = pos
    hit = 0
    if pg == PT_ZERO:
        hit = 1
    elif llc_on and (write_allocate or not write):
        hit, d, (bcur, bend) = _llc(llc, lx[7], lx[9], lx[11], lx[1], lx[2], lx[4], lx[3], kx,
                                    (bcur, bend), pg, line, node, write, ti)
        hx = (hx[0], hx[1] + d, hx[2], hx[3], hx[4], hx[5], hx[6])
    if hit == 0:
        return _miss(lx, kx, histc, (wbh, nwb, bcur, bend), hx, node, write, ti)
    latv = hit_cyc if pg == PT_ZERO else llc_hit
    return latv, (wbh, nwb, bcur, bend), (hx[0] + 1.0, hx[1], hx[2], hx[3], hx[4], hx[5], hx[6])


# run_quantum's status when, run ahead (``spec``), CPU c reached a fault: nothing of the
# kernel's was changed; the caller puts the CPUs' rows back and runs the quantum in order
SPEC_ABORT = 20


@njit(cache=True, nogil=True)
def run_quantum(kern, fres, cpu, eng, llc, numab, tlb, c, t_end, spec):
    """Run CPU ``c`` until its next access would issue at or after ``t_end`` (or its thread
    has no more accesses).  The bundles, unpacked at compile time: ``kern`` the kernel's
    arrays (``KernelState.core_args()``), ``fres`` the fault result, ``cpu`` the CPUs'
    (ci, cs, slots, buf, ops, opf, ts, rngs, trace, st, hist, pf, pi), ``eng`` the engine's
    (waits, lat, route_r, route_w, service, sfree, pwait, wbq, pbin, cost_r, cost_w), ``llc``
    the last-level caches (tags, meta, clock), ``numab`` NUMA balancing's (prot, nbi, nbf:
    :mod:`numasim.machine.numab_clock`) and reclaim's accessed bits (young), ``tlb`` the
    CPUs' TLBs (:mod:`numasim.machine.tlb`; inert when off).  Returns FAULT_OK, the
    allocator's status when a fault needs Python, NUMAB_TICK / NUMAB_HINT / NUMAB_THP (a
    tick due, a hinting fault, a fault with THP on) or KSWAPD_POLL; the access then stays in
    the buffer.  The quantum's arrays are made here (:func:`_begin`), the accesses run in
    :func:`_quantum`, which counts no references."""
    kx, lx = _begin(c, cpu, eng)
    # the last page looked up in each region: (page-table slot, page, node, writable)
    pcache = np.zeros((kern[K_REGIONS].shape[0], 4), dtype=np.int64)
    pcache[:, 0] = -1
    return _quantum(kern, fres, cpu, eng, llc, numab, tlb, c, t_end, kx, lx, pcache, spec)


@njit(cache=True, _nrt=False)
def _quantum(kern, fres, cpu, eng, llc, numab, tlb, c, t_end, kx, lx, pcache, spec):
    """:func:`run_quantum`'s accesses, one request at a time from issue to completion (the
    module docstring); clocks, slots and counters live in locals and are written back at
    the end (:func:`_save_rows`, :func:`_save_stats`).  Compiled without numba's reference
    counting, so its steps are inlined helpers at no cost."""
    ci, cs, slots, buf, ops, opf, ts, rngs, trace, st, hist, pf, pi = cpu
    sysvars = kern[K_SYSVARS]
    nb_prot, nbi, nbf, young = numab
    sl, sfl, pw, lb, pbinc, wbqc, rr, rw, hr, hw, lr, lw, latr, wr, ww, opc = lx
    lpp_shift, lpp, fault_cyc = kx[4], kx[5], kx[10]
    bufc = buf[c]
    issue, dprev, last = cs[c, C.CS_ISSUE], cs[c, C.CS_DPREV], cs[c, C.CS_LAST]
    sh = 0  # head of the slots' ring: the slot that frees first
    bcur, bend = _first_bin(kx, issue)
    head, count = ci[c, C.CI_HEAD], ci[c, C.CI_COUNT]
    nwb, wbh = ci[c, C.CI_WBN], ci[c, C.CI_WBH]
    tlb_on = tlb[4][TLB_ON] != 0
    # the counters (hits, write-backs, misses, latency and wait sums, local misses) and the
    # wait spread's draws: a splitmix64 counter keyed by CPU and access number, resumed
    # where the last quantum stopped
    hx = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
          (np.uint64(c) << np.uint64(40)) + np.uint64(st[c, C.ST_ACCESSES]))
    n_acc = nbytes = stall = q_nreq = q_lat = q_zstall = 0.0
    # the first cycle something stops the CPU (_due): the quantum's end, a tick, kswapd's
    # step; Python sets them between quanta, so the loop compares once
    t_stop = min(t_end, nbf[c, NBF_TICK], nbf[c, NBF_KSWAPD])
    status = FAULT_OK
    while True:
        if head >= count:
            count = fill_batch(ops, opf, ts, rngs, ci[c, C.CI_THREAD], trace, buf, c)
            head = 0
            if count == 0:
                ci[c, C.CI_FINISHED] = 1
                break
        if kx[16]:  # (a program of sequential sweeps skips the checks)
            _look_ahead(kern, pcache, opc, bufc, head, count, lpp_shift)
        ti, base = _issue_at(kx, lx, bufc, head, sh, issue, dprev, nbi, nbf, c)
        if ti >= t_stop or sysvars[SV_KSWAPD_WAKE] != 0:
            due = _due(sysvars, nbf, c, ti, t_end)
            if due != GO:
                status = due
                break
        # write-backs that happened before now go through the queues first
        wbh, nwb = _drain(wbqc, wbh, nwb, ti, rw, hw, lw, sfl, pw)
        if nbi[c, NBI_PENDING] != 0:  # ---- the rest of a fault Python handled
            fend, (sh, wbh, nwb, bcur, bend), (stall, q_lat, q_nreq, q_zstall) = \
                _resume_fault(lx, kx, nbi, nbf, st, c, (sh, wbh, nwb, bcur, bend),
                              (stall, q_lat, q_nreq, q_zstall), ti, base, t_end)
            if nbi[c, NBI_PENDING] != 0:
                last = max(last, fend)
                break
            ti, base, last, wbh, nwb = _fault_end(lx, kx, bufc, head, sh, wbh, nwb,
                                                  fend, last)
        # ---- the page: the region's cached one, else a lookup (present, zero, a fault)
        r, line = bufc[head, B_R], bufc[head, B_LINE]
        write = bufc[head, B_MODE] == STORE
        off = line >> lpp_shift
        pslot = kern[K_REGIONS][r, R_PT] + off
        pg, node, fault, hint = _page(kern, pcache, nb_prot, r, pslot, write)
        if hint or (fault and sysvars[SV_THP] != 0):
            # a hinting fault, or a fault under transparent huge pages (the huge fault path
            # is Python's: numab_clock.thp_fault)
            nbf[c, NBF_AT] = ti
            status = NUMAB_HINT if hint else NUMAB_THP
            break
        if fault and spec:  # run ahead of the others: a fault must wait for its turn
            status = SPEC_ABORT
            break
        if fault:  # ---- an ordinary fault: the allocator core, then the zeroing lines
            status, pg, node, nz = _fault(kern, fres, pcache, ci[c, C.CI_TASK], r, off, pslot,
                                          write, lpp)
            if status != FAULT_OK:
                nbf[c, NBF_AT] = ti  # direct reclaim (kswapd_clock) happens at this cycle
                break
            stall += ti - base
            tz = ti + fault_cyc
            _, tz, fend, (sh, wbh, nwb, bcur, bend), (stall, q_lat, q_nreq) = _fault_lines(
                lx, kx, (sh, wbh, nwb, bcur, bend), (stall, q_lat, q_nreq), -1, node, nz, 0,
                tz, tz, np.inf)
            q_zstall = _fault_done(st, c, -1, nz, ti, tz, fend, q_zstall)
            ti, base, last, wbh, nwb = _fault_end(lx, kx, bufc, head, sh, wbh, nwb,
                                                  fend, last)
        stall += ti - base
        # ---- the access itself (and its page's accessed bit, for reclaim: written only
        # when it changes -- a store every access kept the bits' cache lines, which hold 64
        # pages of all CPUs, moving between the host cores that run the bound phase)
        if pg >= 0 and young[pg] == 0:
            young[pg] = 1
        head += 1
        n_acc += 1.0
        nbytes += bufc[head - 1, B_BYTES]
        tw = 0.0  # ---- the TLB, and a page walk the access waits for (numasim.machine.tlb)
        if tlb_on:
            tw, hx, (wbh, nwb, bcur, bend) = _walk(lx, kx, llc, tlb, st, c, hx,
                                                   (wbh, nwb, bcur, bend), kern, r, line, pg,
                                                   ti)
        latv, (wbh, nwb, bcur, bend), hx = _access(lx, kx, llc, hist[c], (wbh, nwb, bcur, bend),
                                                   hx, pg, line, node, write, ti)
        latv += tw
        # ---- completion: the access holds its miss slot until its data is back
        done = ti + latv
        sh = _refill(sl, sh, done)
        issue = ti
        dprev = done
        if done > last:
            last = done
    _flush(pbinc, lb, bcur)
    _save_rows(c, slots, eng[5], eng[6], sl, sh, sfl, pw)
    ci[c, C.CI_HEAD], ci[c, C.CI_COUNT], ci[c, C.CI_WBN], ci[c, C.CI_WBH] = head, count, nwb, wbh
    cs[c, C.CS_ISSUE], cs[c, C.CS_DPREV], cs[c, C.CS_LAST] = issue, dprev, last
    _save_stats(st, c, n_acc, nbytes, hx, (stall, q_lat, q_nreq, q_zstall))
    return status
