"""The ``dram`` model served online, one request at a time: how the exact engine runs it.

:func:`numasim.memctrl.dram_model.simulate` serves a whole trace at once (FR-FCFS needs the
requests that have arrived but are not served yet).  The exact engine knows a request only
when it reaches the controller, in time order, so this module serves each one as it comes,
on the same channel state and with the same command placement
(:func:`numasim.memctrl.dram_core._serve`: open rows, tRCD/tRP/tRAS, tCCD/tRRD/tFAW,
read/write turnaround, rank switches, all-bank refresh):

* requests wait in per-channel read and write queues that persist between calls;
  :func:`step` runs the offline model's scheduler loop (FR-FCFS over the oldest ``window``
  requests, the hit cap, write drains between ``write_high`` and ``write_low``, the decision
  clock trailing the last column command by tRP + tRCD) up to a time ``T`` and returns the
  reads it issued with the cycle their data ends;
* the engine calls it every ``CL + tBURST`` clocks while requests are pending
  (:class:`OnlineDram`): no read can complete sooner after it arrives, so every issued read's
  data ends at or after the call (its continuation is never in the past) and the scheduler
  sees every request that arrived before its decisions, as the offline one does;
* a write is *accepted* when it arrives (the writer does not wait for the DRAM, as with a
  real controller's posted writes); it occupies the DRAM when the scheduler drains it.

Times are DRAM clocks (tCK) inside, CPU cycles outside.  Address mapping:
:func:`numasim.memctrl.dram_core.decode`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from numasim.memctrl import dram_core as K
from numasim.memctrl.dram_model import DramConfig

_WQ_COLS = 5  # bank, row, rank, rank x bank group, arrival


@njit(cache=True, inline="always")
def _locate(addr, par):
    """(channel, bank within the channel, row, rank, rank x bank group) of a byte address
    (the mapping of :func:`numasim.memctrl.dram_core.decode`)."""
    o = K._O
    nch, nrk, nbg, nba, lpr = (par[o + K.O_CHANNELS], par[o + K.O_RANKS],
                               par[o + K.O_BANKGROUPS], par[o + K.O_BANKS],
                               par[o + K.O_LINES_PER_ROW])
    x = addr >> 6
    ch = x % nch
    x //= nch
    bg = x % nbg
    x //= nbg
    x //= lpr
    ba = x % nba
    x //= nba
    rank = x % nrk
    row = x // nrk
    gbank = rank * nbg + bg
    return ch, gbank * nba + ba, row, rank, gbank


@njit(cache=True)
def _append(ch, k, arr, rid, bank, row, rank, gbank, larr, lid, lreq, lcnt):
    n = lcnt[ch, k]
    larr[ch, k, n] = arr
    lid[ch, k, n] = rid
    lreq[ch, k, n, 0] = bank
    lreq[ch, k, n, 1] = row
    lreq[ch, k, n, 2] = rank
    lreq[ch, k, n, 3] = gbank
    lcnt[ch, k] = n + 1


@njit(cache=True)
def _remove(ch, k, j, larr, lid, lreq, lcnt):
    n = lcnt[ch, k]
    for i in range(j, n - 1):
        larr[ch, k, i] = larr[ch, k, i + 1]
        lid[ch, k, i] = lid[ch, k, i + 1]
        for c in range(4):
            lreq[ch, k, i, c] = lreq[ch, k, i + 1, c]
    lcnt[ch, k] = n - 1


@njit(cache=True)
def _pick(now, k, ch, lreq, narr, bypass, par, S):
    """FR-FCFS among the first ``window`` arrived requests of queue k (as
    :func:`numasim.memctrl.dram_core._pick`): the first ready, the oldest among equals, the
    oldest outright once ``hit_cap`` requests overtook it."""
    if bypass >= par[K._P + K.P_HIT_CAP]:
        return 0
    lat = par[K.T_CWL] if k == 1 else par[K.T_CL]
    bus = par[K._BUS]
    floor = max(now, S[bus, 0] + par[K.T_CCD_S], S[bus, 3] - lat)
    best = 0
    best_t = 1 << 62
    m = min(narr, par[K._P + K.P_WINDOW])
    for j in range(m):
        t = K._ready(now, k == 1, lreq[ch, k], j, par, S)
        if t < best_t:
            best_t = t
            best = j
            if t <= floor:
                break
    return best


@njit(cache=True)
def step(T, new_arr, new_addr, new_w, new_id, par, S, larr, lid, lreq, lcnt, sc,
         out_id, out_end, out_kind):
    """Queue the new requests (arrival clocks, byte addresses, write flags, ids), then run
    every channel's scheduler while its decision clock is at most ``T``.  ``sc[ch]`` =
    [decision clock, write mode, bypass count].  Fills ``out_*`` with the reads issued (id,
    clock their data ends, ROW_HIT/MISS/CONFLICT); returns how many."""
    for i in range(new_arr.shape[0]):
        ch, bank, row, rank, gbank = _locate(new_addr[i], par)
        _append(ch, new_w[i], new_arr[i], new_id[i], bank, row, rank, gbank, larr, lid,
                lreq, lcnt)
    nout = 0
    horizon = par[K.T_RP] + par[K.T_RCD]
    for ch in range(S.shape[0]):
        Sc = S[ch]
        now = sc[ch, 0]
        wmode = sc[ch, 1] != 0
        bypass = sc[ch, 2]
        while now <= T:
            na = np.zeros(2, dtype=np.int64)  # requests of each queue that have arrived
            nxt = 1 << 62
            for k in range(2):
                n = lcnt[ch, k]
                while na[k] < n and larr[ch, k, na[k]] <= now:
                    na[k] += 1
                if na[k] < n and larr[ch, k, na[k]] < nxt:
                    nxt = larr[ch, k, na[k]]
            if na[0] == 0 and na[1] == 0:
                if nxt > T:
                    break
                now = nxt
                continue
            if wmode:
                if na[1] == 0 or (na[1] <= par[K._P + K.P_WRITE_LOW] and na[0] > 0):
                    wmode = False
            elif na[1] >= par[K._P + K.P_WRITE_HIGH] or na[0] == 0:
                wmode = True
            k = 1 if wmode else 0
            j = _pick(now, k, ch, lreq, na[k], bypass, par, Sc)
            bypass = bypass + 1 if j != 0 else 0
            cas, end, kind = K._serve(now, k == 1, lreq[ch, k], j, par, Sc)
            if k == 0:
                out_id[nout] = lid[ch, k, j]
                out_end[nout] = end
                out_kind[nout] = kind
                nout += 1
            _remove(ch, k, j, larr, lid, lreq, lcnt)
            now = max(now, cas - horizon)
        sc[ch, 0] = now
        sc[ch, 1] = 1 if wmode else 0
        sc[ch, 2] = bypass
    return nout


class OnlineDram:
    """One controller's DRAM served request by request for the exact engine, in CPU cycles.

    :meth:`arrive` queues a request; :meth:`run_to` runs the scheduler to a time and returns
    the reads issued with their *extra* latency: DRAM latency (+ the device's added latency)
    less ``idle_ns``, the latency the machine's latency matrix already holds (the derived
    curve's lightest-load latency for the model's ``pattern``: 0 extra at idle on average,
    negative for a row hit, the queue and the conflicts under load).  ``period``: the CPU
    cycles between two calls (``CL + tBURST`` clocks)."""

    def __init__(self, cfg: DramConfig, cpu_ghz: float, idle_ns: float, cap: int = 4096) -> None:
        tim, org, pol = cfg.arrays()
        self.par = K.pack_params(tim, org, pol)
        nch = int(org[K.O_CHANNELS])
        self.S = np.ascontiguousarray(np.stack([K._new_state(self.par) for _ in range(nch)]))
        self._alloc(nch, cap)
        self.sc = np.zeros((nch, 3), dtype=np.int64)
        self.ck = cfg.tck_ns * cpu_ghz  # CPU cycles per DRAM clock
        self.period_ck = int(tim[0] + tim[5])  # CL + tBURST
        self.period = self.period_ck * self.ck
        self.offset = (cfg["added_latency_ns"] - idle_ns) * cpu_ghz
        self.kinds = np.zeros(3, dtype=np.int64)  # reads that found a row hit/miss/conflict
        self.new: list[tuple[int, int, int, int]] = []

    def _alloc(self, nch: int, cap: int, old=None) -> None:
        self.larr = np.zeros((nch, 2, cap), dtype=np.int64)
        self.lid = np.zeros((nch, 2, cap), dtype=np.int64)
        self.lreq = np.zeros((nch, 2, cap, 4), dtype=np.int64)
        self.lcnt = np.zeros((nch, 2), dtype=np.int64)
        self.out = (np.zeros(cap * 2 * nch, dtype=np.int64),
                    np.zeros(cap * 2 * nch, dtype=np.int64),
                    np.zeros(cap * 2 * nch, dtype=np.int64))
        if old is not None:
            n = old[0].shape[2]
            self.larr[:, :, :n], self.lid[:, :, :n], self.lreq[:, :, :n] = old[:3]
            self.lcnt[:] = old[3]

    @property
    def pending(self) -> int:
        return int(self.lcnt.sum()) + len(self.new)

    def arrive(self, t: float, addr: int, write: bool, rid: int) -> None:
        """A request at CPU cycle ``t`` (``rid`` >= 0 names a read to report)."""
        self.new.append((int(math.ceil(t / self.ck - 1e-9)), int(addr), int(write), rid))

    def next_call(self, now: float) -> float:
        """The CPU cycle of the next scheduler call after ``now`` (a multiple of the period)."""
        return (math.floor(now / self.period + 1e-9) + 1) * self.period

    def run_to(self, t: float) -> list[tuple[int, float]]:
        """Run the scheduler to CPU cycle ``t``: [(read id, the cycle its data ends + the
        device's added latency - the idle latency)]: its extra latency is that less its
        arrival."""
        nch, cap = self.lcnt.shape[0], self.larr.shape[2]
        if self.lcnt.max(initial=0) + len(self.new) >= cap:
            self._alloc(nch, 2 * (cap + len(self.new)),
                        (self.larr, self.lid, self.lreq, self.lcnt))
        new = np.array(sorted(self.new), dtype=np.int64).reshape(-1, 4)
        self.new = []
        oid, oend, okind = self.out
        n = step(int(math.floor(t / self.ck + 1e-9)), new[:, 0].copy(), new[:, 1].copy(),
                 new[:, 2].copy(), new[:, 3].copy(), self.par, self.S, self.larr, self.lid,
                 self.lreq, self.lcnt, self.sc, oid, oend, okind)
        np.add.at(self.kinds, okind[:n], 1)
        ck, off = self.ck, self.offset
        return [(int(i), e * ck + off) for i, e in zip(oid[:n].tolist(), oend[:n].tolist(),
                                                       strict=True)]
