"""The request-level DRAM channel model, jitted: arrays in, completion cycles out.

All times are in DRAM command-clock cycles (tCK).  One call simulates every channel of one
controller; the channels share nothing, so each is run on its own (:func:`run_channel`).
The meaning of every timing and policy slot is in :mod:`numasim.memctrl.dram` (``T_*``,
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

# timing slots (cycles): keep in step with numasim.memctrl.dram.TIMING_SLOTS
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


@njit(cache=True, inline="always")
def _refresh(rank, t, tim, org, pol, st):
    """Apply the refreshes of ``rank`` due by cycle ``t`` (close its rows, block it for tRFC)
    and return the first cycle at or after ``t`` outside a refresh.  Rank r refreshes at
    r * tREFI / ranks + k * tREFI, k >= 1 (staggered, as controllers do)."""
    if pol[P_REFRESH] == 0:
        return t
    refi = tim[T_REFI]
    off = rank * refi // org[O_RANKS]
    if t < off + refi:
        return t
    k = (t - off) // refi
    start = off + k * refi
    ref_k = st[1]
    if k > ref_k[rank]:
        ref_k[rank] = k
        nb = org[O_BANKGROUPS] * org[O_BANKS]
        bank = st[0]
        for b in range(rank * nb, (rank + 1) * nb):
            bank[b, 0] = -1  # rows closed (the precharge-all is taken inside tRFC)
            bank[b, 1] = max(bank[b, 1], start + tim[T_RFC])
    if t < start + tim[T_RFC]:
        return start + tim[T_RFC]
    return t


@njit(cache=True, inline="always")
def _act_time(t, rank, gbank, tim, st):
    """Earliest ACT at or after ``t`` under tRRD_S/L and tFAW (per rank)."""
    rnk = st[2]  # rank: [last ACT, FAW ring pos, ring 0..3]
    grp = st[3]  # (rank, bank group): [last ACT, last CAS, last WR CAS]
    t = max(t, rnk[rank, 0] + tim[T_RRD_S], grp[gbank, 0] + tim[T_RRD_L])
    oldest = rnk[rank, 2 + rnk[rank, 1]]  # the 4th ACT back
    return max(t, oldest + tim[T_FAW])


@njit(cache=True, inline="always")
def _cas_floor(is_write, rank, gbank, tim, st):
    """Earliest column command allowed by the bus: tCCD_S/L, tWTR_S/L, tRTW, tRTRS and the
    data bus."""
    grp = st[3]
    bus = st[4]  # [last CAS, last RD CAS, last WR CAS, data free, data rank, last WR CAS rank]
    t = max(bus[0] + tim[T_CCD_S], grp[gbank, 1] + tim[T_CCD_L])
    lat = tim[T_CWL] if is_write else tim[T_CL]
    gap = tim[T_RTRS] if bus[4] != rank and bus[4] >= 0 else 0
    t = max(t, bus[3] + gap - lat)
    if is_write:
        t = max(t, bus[1] + tim[T_RTW])
    else:
        wr_end = tim[T_CWL] + tim[T_BURST]
        if bus[5] == rank:
            t = max(t, bus[2] + wr_end + tim[T_WTR_S])
        t = max(t, grp[gbank, 2] + wr_end + tim[T_WTR_L])
    return t


@njit(cache=True, inline="always")
def _serve(now, is_write, rank, gbank, b, row, tim, org, pol, st):
    """Place the commands of one request; returns (CAS cycle, data end cycle, kind)."""
    bank = st[0]  # bank: [open row, next ACT, next PRE, next CAS]
    t0 = _refresh(rank, now, tim, org, pol, st)
    while True:
        kind = ROW_HIT
        act = -1
        if bank[b, 0] == row:
            cas = max(t0, bank[b, 3])
        else:
            kind = ROW_MISS
            t = t0
            if bank[b, 0] >= 0:
                kind = ROW_CONFLICT
                t = max(t, bank[b, 2]) + tim[T_RP]
            act = _act_time(max(t, bank[b, 1]), rank, gbank, tim, st)
            cas = act + tim[T_RCD]
        cas = max(cas, _cas_floor(is_write, rank, gbank, tim, st))
        epoch = st[1][rank]
        t1 = _refresh(rank, cas, tim, org, pol, st)
        if t1 == cas and st[1][rank] == epoch:
            break
        t0 = t1  # a refresh fell before the column command: the rows closed, start again
    if act >= 0:
        rnk = st[2]
        rnk[rank, 0] = act
        rnk[rank, 2 + rnk[rank, 1]] = act
        rnk[rank, 1] = (rnk[rank, 1] + 1) % 4
        st[3][gbank, 0] = act
        bank[b, 0] = row
        bank[b, 1] = act + tim[T_RAS] + tim[T_RP]
        bank[b, 2] = act + tim[T_RAS]
        bank[b, 3] = act + tim[T_RCD]
    lat = tim[T_CWL] if is_write else tim[T_CL]
    end = cas + lat + tim[T_BURST]
    bus = st[4]
    bus[0] = cas
    st[3][gbank, 1] = cas
    if is_write:
        bank[b, 2] = max(bank[b, 2], end + tim[T_WR])
        bus[2] = cas
        bus[5] = rank
        st[3][gbank, 2] = cas
    else:
        bank[b, 2] = max(bank[b, 2], cas + tim[T_RTP])
        bus[1] = cas
    bus[3] = end
    bus[4] = rank
    return cas, end, kind


@njit(cache=True)
def _new_state(tim, org):
    nb = org[O_RANKS] * org[O_BANKGROUPS] * org[O_BANKS]
    far = -(1 << 40)  # "long ago": no constraint from a command that never happened
    bank = np.empty((nb, 4), dtype=np.int64)
    bank[:, 0] = -1
    bank[:, 1:] = 0
    ref_k = np.zeros(org[O_RANKS], dtype=np.int64)
    rnk = np.full((org[O_RANKS], 6), far, dtype=np.int64)
    rnk[:, 1] = 0
    grp = np.full((org[O_RANKS] * org[O_BANKGROUPS], 3), far, dtype=np.int64)
    bus = np.full(6, far, dtype=np.int64)
    bus[4] = -1
    bus[5] = -1
    return (bank, ref_k, rnk, grp, bus)


@njit(cache=True, inline="always")
def _ready(now, is_write, b, row, rank, gbank, tim, st):
    """The cycle the column command of a request could issue if served next (refresh
    ignored): what "ready" means in first-ready FCFS."""
    bank = st[0]
    if bank[b, 0] == row:
        cas = max(now, bank[b, 3])
    else:
        t = now
        if bank[b, 0] >= 0:
            t = max(t, bank[b, 2]) + tim[T_RP]
        cas = _act_time(max(t, bank[b, 1]), rank, gbank, tim, st) + tim[T_RCD]
    return max(cas, _cas_floor(is_write, rank, gbank, tim, st))


@njit(cache=True, inline="always")
def _pick(now, w, q, served, head, arrived, reqs, tim, pol, st, bypass):
    """FR-FCFS over the oldest ``window`` arrived, unserved requests of queue ``q``: the one
    whose column command is ready first (a row hit usually is), the oldest among equals;
    the oldest outright once ``hit_cap`` requests have overtaken it.  Returns its position
    in ``q``."""
    rbank, rrow, rrank, rgbank = reqs
    bus = st[4]
    lat = tim[T_CWL] if w == 1 else tim[T_CL]
    floor = max(now, bus[0] + tim[T_CCD_S], bus[3] - lat)  # no request can be ready earlier
    best = -1
    best_t = 1 << 62
    seen = 0
    j = head
    while j < arrived and seen < pol[P_WINDOW]:
        if not served[j]:
            if best < 0 and bypass >= pol[P_HIT_CAP]:
                return j
            i = q[j]
            t = _ready(now, w == 1, rbank[i], rrow[i], rrank[i], rgbank[i], tim, st)
            if t < best_t:
                best_t = t
                best = j
                if t <= floor:
                    return j  # ready as early as anything can be: the oldest such wins
            seen += 1
        j += 1
    return best


@njit(cache=True)
def run_channel(arrival, is_write, rbank, rrow, rrank, rgbank, tim, org, pol, out_done,
                out_kind):
    """Serve one channel's requests (indices sorted by arrival); fills ``out_done`` (cycle the
    data burst ends) and ``out_kind`` (row hit / miss / conflict)."""
    st = _new_state(tim, org)
    reqs = (rbank, rrow, rrank, rgbank)
    n = arrival.shape[0]
    nr = 0
    for i in range(n):
        nr += 1 - is_write[i]
    qs = (np.empty(nr, dtype=np.int64), np.empty(n - nr, dtype=np.int64))
    fill = np.zeros(2, dtype=np.int64)
    for i in range(n):
        w = is_write[i]
        qs[w][fill[w]] = i
        fill[w] += 1
    served = (np.zeros(nr, dtype=np.bool_), np.zeros(n - nr, dtype=np.bool_))
    head = np.zeros(2, dtype=np.int64)
    arrived = np.zeros(2, dtype=np.int64)
    done = np.zeros(2, dtype=np.int64)
    size = fill
    now = 0
    write_mode = False
    bypass = 0
    horizon = tim[T_RP] + tim[T_RCD]
    while done[0] + done[1] < n:
        for w in range(2):
            while arrived[w] < size[w] and arrival[qs[w][arrived[w]]] <= now:
                arrived[w] += 1
        pend_r = arrived[0] - done[0]
        pend_w = arrived[1] - done[1]
        if pend_r == 0 and pend_w == 0:
            nxt = 1 << 62
            for w in range(2):
                if arrived[w] < size[w]:
                    nxt = min(nxt, arrival[qs[w][arrived[w]]])
            now = nxt
            continue
        if write_mode:
            if pend_w == 0 or (pend_w <= pol[P_WRITE_LOW] and pend_r > 0):
                write_mode = False
        elif pend_w >= pol[P_WRITE_HIGH] or pend_r == 0:
            write_mode = True
        w = 1 if write_mode else 0
        q = qs[w]
        j = _pick(now, w, q, served[w], head[w], arrived[w], reqs, tim, pol, st, bypass)
        i = q[j]
        bypass = bypass + 1 if j != head[w] else 0
        cas, end, kind = _serve(now, w == 1, rrank[i], rgbank[i], rbank[i], rrow[i], tim,
                                org, pol, st)
        out_done[i] = end
        out_kind[i] = kind
        served[w][j] = True
        done[w] += 1
        while head[w] < size[w] and served[w][head[w]]:
            head[w] += 1
        now = max(now, cas - horizon)
    return 0
