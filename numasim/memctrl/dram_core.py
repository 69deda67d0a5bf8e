"""The request-level DRAM channel model, jitted: arrays in, completion cycles out.

All times are in DRAM command-clock cycles (tCK).  One call simulates every channel of one
controller; the channels share nothing, so each is run on its own (:func:`run_channel`).
The meaning of every timing and policy slot is in :mod:`numasim.memctrl.dram_model` (``T_*``,
``P_*``), which builds these arrays from a cited preset; this module only runs them.

Scheduling is transaction-level FR-FCFS (Rixner et al., ISCA 2000): at each decision the
controller looks at the oldest ``window`` requests of the active queue that have arrived and
serves the oldest *row hit*, else the oldest request; at most ``hit_cap`` hits may bypass an
older request (the "FR-FCFS-Cap" guard against starvation).  Serving one request places its
commands (PRE, ACT, RD/WR) at the earliest cycles every constraint allows; those cycles may lie
before the previous request's column command (bank-level parallelism), but column commands
and ACTs keep the order of service.  The decision clock trails the last column command by
``tRP + tRCD`` (the controller commits one row cycle ahead), so requests that arrive while
the bus is busy can still be reordered.  Reads and writes have separate queues; the write queue
is drained when it holds ``write_high`` requests (or no read waits) until it holds
``write_low``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# timing slots (cycles): keep in step with numasim.memctrl.dram_model.TIMING_SLOTS
T_CL, T_CWL, T_RCD, T_RP, T_RAS, T_BURST = 0, 1, 2, 3, 4, 5
T_CCD_S, T_CCD_L, T_RRD_S, T_RRD_L, T_FAW = 6, 7, 8, 9, 10
T_WTR_S, T_WTR_L, T_RTP, T_WR, T_RTRS, T_RTW, T_REFI, T_RFC = 11, 12, 13, 14, 15, 16, 17, 18
N_TIMING = 19
# organisation slots
O_CHANNELS, O_RANKS, O_BANKGROUPS, O_BANKS, O_LINES_PER_ROW = 0, 1, 2, 3, 4
N_ORG = 5
# policy slots
P_WINDOW, P_WRITE_HIGH, P_WRITE_LOW, P_HIT_CAP, P_REFRESH = 0, 1, 2, 3, 4
N_POLICY = 5
# what a request found at its bank (out_kind)
ROW_HIT, ROW_MISS, ROW_CONFLICT = 0, 1, 2
# ``par``, the one parameter vector the channel model reads: timings at T_*, then the
# organisation at _O + O_*, the policy at _P + P_*, and the rows of the state array where
# the ranks, the (rank, bank group)s and the bus start
_O = N_TIMING
_P = _O + N_ORG
_RB, _GB, _BUS = _P + N_POLICY, _P + N_POLICY + 1, _P + N_POLICY + 2
N_PAR = _BUS + 1


@njit(cache=True)
def decode(addr, org):
    """Address -> (channel, rank, bank group, bank, row) per request.

    Mapping, low bits to high: 64-byte line offset, channel, bank group, column, bank, rank,
    row ("RoRaBaCoBgCh").  Consecutive lines go round the channels, then round the bank
    groups of a channel (so a stream meets tCCD_S, not tCCD_L), and a stream stays in one row
    of each bank for ``lines_per_row`` lines of that bank."""
    n = addr.shape[0]
    out = np.empty((n, 5), dtype=np.int64)
    nch, nrk, nbg, nba, lpr = (org[O_CHANNELS], org[O_RANKS], org[O_BANKGROUPS], org[O_BANKS],
                               org[O_LINES_PER_ROW])
    for i in range(n):
        x = addr[i] >> 6
        out[i, 0] = x % nch
        x //= nch
        out[i, 2] = x % nbg
        x //= nbg
        x //= lpr  # the column
        out[i, 3] = x % nba
        x //= nba
        out[i, 1] = x % nrk
        out[i, 4] = x // nrk
    return out


def pack_params(tim, org, pol):
    """``par`` from the timing, organisation and policy vectors (one array into the jitted
    code instead of three: fewer references to count per call)."""
    nb = org[O_RANKS] * org[O_BANKGROUPS] * org[O_BANKS]
    rows = np.array([nb, nb + org[O_RANKS], nb + org[O_RANKS] * (1 + org[O_BANKGROUPS])])
    return np.ascontiguousarray(np.concatenate([tim, org, pol, rows]).astype(np.int64))


@njit(cache=True)
def _new_state(par):
    """The channel's state, one array of 8 columns, all "idle since long ago".  Rows: one per
    bank [open row, next ACT, next PRE, next CAS]; from ``par[_RB]`` one per rank [last ACT,
    FAW ring position, the last four ACTs, refreshes done]; from ``par[_GB]`` one per (rank,
    bank group) [last ACT, last CAS, last WR CAS]; at ``par[_BUS]`` the bus [last CAS, last RD
    CAS, last WR CAS, data free, data rank, rank of the last WR CAS]."""
    far = -(1 << 40)  # no constraint from a command that never happened
    S = np.full((par[_BUS] + 1, 8), far, dtype=np.int64)
    S[:par[_RB], 0] = -1
    S[:par[_RB], 1:4] = 0
    S[par[_RB]:par[_GB], 1] = 0
    S[par[_RB]:par[_GB], 6] = 0
    S[par[_BUS], 4] = -1
    S[par[_BUS], 5] = -1
    return S


@njit(cache=True, inline="always")
def _refresh(rank, t, par, S):
    """Apply the refreshes of ``rank`` due by cycle ``t`` (close its rows, block it for tRFC)
    and return the first cycle at or after ``t`` outside a refresh.  Rank r refreshes at
    r * tREFI / ranks + k * tREFI, k >= 1 (staggered, as controllers do)."""
    if par[_P + P_REFRESH] == 0:
        return t
    refi = par[T_REFI]
    off = rank * refi // par[_O + O_RANKS]
    if t < off + refi:
        return t
    k = (t - off) // refi
    start = off + k * refi
    rr = par[_RB] + rank
    if k > S[rr, 6]:
        S[rr, 6] = k
        nb = par[_O + O_BANKGROUPS] * par[_O + O_BANKS]
        for b in range(rank * nb, (rank + 1) * nb):
            S[b, 0] = -1  # rows closed (the precharge-all is taken inside tRFC)
            S[b, 1] = max(S[b, 1], start + par[T_RFC])
    if t < start + par[T_RFC]:
        return start + par[T_RFC]
    return t


@njit(cache=True, inline="always")
def _act_time(t, rank, gbank, par, S):
    """Earliest ACT at or after ``t`` under tRRD_S/L and tFAW (per rank)."""
    rr = par[_RB] + rank
    t = max(t, S[rr, 0] + par[T_RRD_S], S[par[_GB] + gbank, 0] + par[T_RRD_L])
    oldest = S[rr, 2 + S[rr, 1]]  # the 4th ACT back
    return max(t, oldest + par[T_FAW])


@njit(cache=True, inline="always")
def _cas_floor(is_write, rank, gbank, par, S):
    """Earliest column command allowed by the bus: tCCD_S/L, tWTR_S/L, tRTW, tRTRS and the
    data bus."""
    bus = par[_BUS]
    gg = par[_GB] + gbank
    t = max(S[bus, 0] + par[T_CCD_S], S[gg, 1] + par[T_CCD_L])
    lat = par[T_CWL] if is_write else par[T_CL]
    gap = par[T_RTRS] if S[bus, 4] != rank and S[bus, 4] >= 0 else 0
    t = max(t, S[bus, 3] + gap - lat)
    if is_write:
        t = max(t, S[bus, 1] + par[T_RTW])
    else:
        wr_end = par[T_CWL] + par[T_BURST]
        if S[bus, 5] == rank:
            t = max(t, S[bus, 2] + wr_end + par[T_WTR_S])
        t = max(t, S[gg, 2] + wr_end + par[T_WTR_L])
    return t


@njit(cache=True, inline="always")
def _serve(now, is_write, req, i, par, S):
    """Place the commands of request ``i`` (``req[i]`` = [bank, row, rank, gbank]); returns
    (CAS cycle, data end cycle, kind)."""
    b, row, rank, gbank = req[i, 0], req[i, 1], req[i, 2], req[i, 3]
    rr = par[_RB] + rank
    t0 = _refresh(rank, now, par, S)
    while True:
        kind = ROW_HIT
        act = -1
        if S[b, 0] == row:
            cas = max(t0, S[b, 3])
        else:
            kind = ROW_MISS
            t = t0
            if S[b, 0] >= 0:
                kind = ROW_CONFLICT
                t = max(t, S[b, 2]) + par[T_RP]
            act = _act_time(max(t, S[b, 1]), rank, gbank, par, S)
            cas = act + par[T_RCD]
        cas = max(cas, _cas_floor(is_write, rank, gbank, par, S))
        epoch = S[rr, 6]
        t1 = _refresh(rank, cas, par, S)
        if t1 == cas and S[rr, 6] == epoch:
            break
        t0 = t1  # a refresh fell before the column command: the rows closed, start again
    gg = par[_GB] + gbank
    if act >= 0:
        S[rr, 0] = act
        S[rr, 2 + S[rr, 1]] = act
        S[rr, 1] = (S[rr, 1] + 1) % 4
        S[gg, 0] = act
        S[b, 0] = row
        S[b, 1] = act + par[T_RAS] + par[T_RP]
        S[b, 2] = act + par[T_RAS]
        S[b, 3] = act + par[T_RCD]
    lat = par[T_CWL] if is_write else par[T_CL]
    end = cas + lat + par[T_BURST]
    bus = par[_BUS]
    S[bus, 0] = cas
    S[gg, 1] = cas
    if is_write:
        S[b, 2] = max(S[b, 2], end + par[T_WR])
        S[bus, 2] = cas
        S[bus, 5] = rank
        S[gg, 2] = cas
    else:
        S[b, 2] = max(S[b, 2], cas + par[T_RTP])
        S[bus, 1] = cas
    S[bus, 3] = end
    S[bus, 4] = rank
    return cas, end, kind


@njit(cache=True, inline="always")
def _ready(now, is_write, req, i, par, S):
    """The cycle the column command of request ``i`` could issue if served next (refresh
    ignored): what "ready" means in first-ready FCFS."""
    b, row, rank, gbank = req[i, 0], req[i, 1], req[i, 2], req[i, 3]
    if S[b, 0] == row:
        cas = max(now, S[b, 3])
    else:
        t = now
        if S[b, 0] >= 0:
            t = max(t, S[b, 2]) + par[T_RP]
        cas = _act_time(max(t, S[b, 1]), rank, gbank, par, S) + par[T_RCD]
    return max(cas, _cas_floor(is_write, rank, gbank, par, S))


@njit(cache=True, inline="always")
def _pick(now, w, q, served, lo, hi, req, par, S, bypass):
    """FR-FCFS over the oldest ``window`` unserved requests among positions ``lo``..``hi`` of
    ``q`` (one queue, in arrival order): the one whose column command is ready first (a row
    hit usually is), the oldest among equals; the oldest outright once ``hit_cap``
    requests have overtaken it.  Returns the position in ``q``."""
    lat = par[T_CWL] if w == 1 else par[T_CL]
    bus = par[_BUS]
    floor = max(now, S[bus, 0] + par[T_CCD_S], S[bus, 3] - lat)  # nothing is ready earlier
    best = -1
    best_t = 1 << 62
    seen = 0
    j = lo
    while j < hi and seen < par[_P + P_WINDOW]:
        if not served[j]:
            if best < 0 and bypass >= par[_P + P_HIT_CAP]:
                return j
            t = _ready(now, w == 1, req, q[j], par, S)
            if t < best_t:
                best_t = t
                best = j
                if t <= floor:
                    return j  # ready as early as anything can be: the oldest such wins
            seen += 1
        j += 1
    return best


@njit(cache=True)
def run_channel(arrival, is_write, req, par, out_done, out_kind):
    """Serve one channel's requests (sorted by arrival; ``req[i]`` = [bank, row, rank,
    rank x bank group]); fills ``out_done`` (cycle the data burst ends) and ``out_kind``."""
    S = _new_state(par)
    n = arrival.shape[0]
    # one array holds both queues: reads at [0, nr), writes at [nr, n), each in arrival order
    q = np.empty(n, dtype=np.int64)
    nr = 0
    for i in range(n):
        nr += 1 - is_write[i]
    base = np.array([0, nr], dtype=np.int64)
    end = np.array([nr, n], dtype=np.int64)
    fill = base.copy()
    for i in range(n):
        q[fill[is_write[i]]] = i
        fill[is_write[i]] += 1
    served = np.zeros(n, dtype=np.bool_)
    head = base.copy()  # first unserved position of each queue
    arrived = base.copy()  # first position not yet arrived
    done = np.zeros(2, dtype=np.int64)
    now = 0
    write_mode = False
    bypass = 0
    horizon = par[T_RP] + par[T_RCD]
    while done[0] + done[1] < n:
        for w in range(2):
            while arrived[w] < end[w] and arrival[q[arrived[w]]] <= now:
                arrived[w] += 1
        pend_r = arrived[0] - base[0] - done[0]
        pend_w = arrived[1] - base[1] - done[1]
        if pend_r == 0 and pend_w == 0:
            nxt = 1 << 62
            for w in range(2):
                if arrived[w] < end[w]:
                    nxt = min(nxt, arrival[q[arrived[w]]])
            now = nxt
            continue
        if write_mode:
            if pend_w == 0 or (pend_w <= par[_P + P_WRITE_LOW] and pend_r > 0):
                write_mode = False
        elif pend_w >= par[_P + P_WRITE_HIGH] or pend_r == 0:
            write_mode = True
        w = 1 if write_mode else 0
        j = _pick(now, w, q, served, head[w], arrived[w], req, par, S, bypass)
        i = q[j]
        bypass = bypass + 1 if j != head[w] else 0
        cas, fin, kind = _serve(now, w == 1, req, i, par, S)
        out_done[i] = fin
        out_kind[i] = kind
        served[j] = True
        done[w] += 1
        while head[w] < end[w] and served[head[w]]:
            head[w] += 1
        now = max(now, cas - horizon)
    return 0
