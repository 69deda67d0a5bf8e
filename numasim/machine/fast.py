"""The fast engine: bound and weave.

*Bound*: each CPU process runs one quantum of cycles in a single numba call
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

*Weave*: at the quantum boundary (:func:`estimate_waits`) the counts become a new estimate of
the wait behind others, per resource and CPU.  For each resource (busiest first, each CPU's
demand scaled by the slowdown earlier resources imposed, Gauss-Seidel) it solves the fixed
point "the wait the utilisation causes = the wait that lets exactly that utilisation through":

* the wait: Pollaczek-Khinchine for a deterministic server with batch arrivals, the others'
  utilisation weighted by their burst factor (measured from their private-FIFO waits) over
  the idle fraction ``1 - kappa * rho``; ``kappa`` (:func:`concentration`) > 1 when the
  load comes in bunches within the quantum (a convoy through interleaved pages), and each
  CPU's wait is scaled by the load it met there (a thread ahead of a convoy finds the node
  quiet, so it pulls away and the convoy dissolves, as with FIFO queues);
* the demand: each CPU runs at the lower of its unstalled rate and its requests in flight
  over its latency (Little's law), so a CPU stalled on memory slows down as waits grow and
  one that computes does not.

The fixed point always has utilisation below 1, so a saturated controller delivers its
bandwidth and no more, and latency rises to what Little's law gives.  No estimated wait
exceeds the work that can be queued ahead of a request: the fluid backlog of the lines that
arrived beyond the resource's capacity (:func:`fluid_backlog`; posted write-backs hold no
miss slot, so nothing else holds them back) plus the others' miss slots.  A CPU waiting for
the zeroing of a fresh page counts as stalled on memory.  The estimate's idle
fraction moves at most tenfold per quantum (a thousandfold when demand clearly exceeds the
capacity), which keeps fault-heavy phases from oscillating.

SimPy synchronises the CPUs at quantum boundaries and runs what is rare in Python: array
growth, the OOM killer, phase barriers.  The quantum is the accuracy knob: it starts at 2000
cycles at every phase (with a fresh estimate), doubles up to 2M cycles, and shortens when a
thread is about to finish so the others do not run on with contention that has gone.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from numasim.machine import cpu as C
from numasim.machine.resources import KIND_MC, carried_lines
from numasim.mm import alloc_core as core
from numasim.mm.state import (
    FAULT_OK,
    PG_KIND,
    PG_MAPCOUNT,
    PG_NODE,
    PGK_ANON,
    PT_ZERO,
    R_PT,
    R_START,
    V_SHARED,
)
from numasim.workloads.gen import (
    B_BYTES,
    B_DEP,
    B_GAP,
    B_LINE,
    B_MODE,
    B_R,
    STORE,
    fill_batch,
    op_accesses,
)

# pair[c, node, kind]: lines CPU c moved to or from memory node ``node`` this quantum, by kind
P_READ = 0  # read or read for ownership (latency-bearing, read route)
P_WRITE = 1  # non-temporal write or page zeroing (latency-bearing, write route)
P_WB = 2  # write-back (posted, write route)
P_NKINDS = 3


@njit(cache=True)
def pairs_to_resources(pair, pwait, route_r, route_w, cpu_nodes, cnt, swait):
    """cnt[c, r, 0/1] (all lines / latency-bearing) from the per-(CPU, node) counts, and
    swait[c, r] from the per-(CPU, node) private-FIFO waits (split evenly over the route)."""
    ncpu = pair.shape[0]
    nn = pair.shape[1]
    kk = route_r.shape[2]
    for c in range(ncpu):
        a = cpu_nodes[c]
        for n in range(nn):
            rd = pair[c, n, P_READ]
            wr = pair[c, n, P_WRITE]
            wb = pair[c, n, P_WB]
            if rd == 0 and wr == 0 and wb == 0:
                continue
            lr = 0
            lw = 0
            for k in range(kk):
                if route_r[a, n, k] >= 0:
                    lr += 1
                if route_w[a, n, k] >= 0:
                    lw += 1
            for k in range(kk):
                x = route_r[a, n, k]
                if x >= 0:
                    cnt[c, x, 0] += rd
                    cnt[c, x, 1] += rd
                    swait[c, x] += pwait[c, n, P_READ] / lr
                y = route_w[a, n, k]
                if y >= 0:
                    cnt[c, y, 0] += wr + wb
                    cnt[c, y, 1] += wr
                    swait[c, y] += (pwait[c, n, P_WRITE] + pwait[c, n, P_WB]) / lw


@njit(cache=True)
def concentration(pbin, route_r, cpu_nodes, service, mc_node, nbins_used, binw, burst, kappa,
                  gk):
    """kappa[r]: how much more load an average request meets at resource r than the
    quantum's average load, because r's share of the machine's memory traffic changes
    within the quantum (threads marching together through interleaved pages: all on one
    node at a time, a convoy).

    The requests each resource got per time bin are first passed through a fluid queue of
    the resource's capacity (a backlog carries over, so a saturated resource is evenly busy
    however its requests arrived), giving served counts s_b; T_b is the sum of the
    controllers' served counts (every request passes exactly one controller: the machine's
    memory work in bin b).  A convoy is uneven both in time and in share, so kappa is the
    lower of

    * ``B sum(s_b^2) / S^2`` (uneven in time: 4 for a resource busy a quarter of the time),
      less the ``B X / S`` that random arrivals in batches of mean burst factor X
      (``burst[r]``, from the private-FIFO waits) give by chance;
    * ``sum(s_b^2 / T_b) sum(T_b) / S^2`` (uneven in share: 1 when r keeps the same share of
      the traffic in every bin, N for a convoy visiting N resources in turn), less the
      ``(1 - p) B X / S`` of random splitting (p = r's share);

    with a 5 % dead zone.  Time alone is not enough: when the whole machine's traffic pulses
    (every request given the same estimated wait, so the CPUs' miss slots refill in
    lockstep), that is an artefact of the estimate, and counting it made the estimate
    self-reinforcing (an 8x-overloaded controller settled at 40-70 % of its bandwidth).
    Share alone is not enough either: a saturated slow node keeps its controller evenly busy
    while the fast node beside it comes and goes.

    gk[c, r]: how CPU c's requests at controller r meet the convoy compared with the
    average request, ``k_c / k_mean``, where k_c is the load of the *other* CPUs in the bins
    where c's requests arrived relative to their mean load (k_mean: its request-weighted
    mean, so the average wait is unchanged).  A thread ahead of the convoy finds the node
    quiet and a thread inside it finds it crowded; giving both the average wait kept every
    thread in step forever, where the exact engine's FIFO queues let the leaders pull away
    and the convoy dissolve.  1 without a convoy (kappa = 1) and for links."""
    ncpu = pbin.shape[0]
    nn = pbin.shape[1]
    kk = route_r.shape[2]
    nres = service.shape[0]
    bins = np.zeros((nres, nbins_used))
    for c in range(ncpu):
        a = cpu_nodes[c]
        for n in range(nn):
            for k in range(kk):
                x = route_r[a, n, k]
                if x < 0:
                    break
                for b in range(nbins_used):
                    bins[x, b] += pbin[c, n, P_READ, b] + pbin[c, n, P_WRITE, b]
    served = np.zeros((nres, nbins_used))
    for r in range(nres):
        cap = binw / service[r]
        backlog = 0.0
        for b in range(nbins_used):
            have = backlog + bins[r, b]
            sv = have if have < cap else cap
            backlog = have - sv
            served[r, b] = sv
    total = np.zeros(nbins_used)
    for r in range(nres):
        if mc_node[r] >= 0:
            for b in range(nbins_used):
                total[b] += served[r, b]
    for r in range(nres):
        tot = 0.0
        ttot = 0.0
        sq = 0.0
        sqn = 0.0
        for b in range(nbins_used):
            sv = served[r, b]
            tb = total[b] if total[b] > sv else sv
            ttot += tb
            tot += sv
            sq += sv * sv
            if sv > 0.0:
                sqn += sv * sv / tb
        k = 1.0
        if tot > 0.0:
            # uneven in time ...
            k = nbins_used * sq / (tot * tot) - nbins_used * burst[r] / tot
            # ... and uneven in share: both, or it is not a convoy
            p = tot / ttot
            kn = sqn * ttot / (tot * tot) - (1.0 - p) * nbins_used * burst[r] / tot
            if kn < k:
                k = kn
            k -= 0.05
            if k < 1.0:
                k = 1.0
        kappa[r] = k
        for c in range(ncpu):
            gk[c, r] = 1.0
        n = mc_node[r]
        if k <= 1.0 or n < 0:
            continue
        # per CPU: the others' load where its own requests arrived
        kc = np.zeros(ncpu)
        ncnt = np.zeros(ncpu)
        wsum = 0.0
        nsum = 0.0
        for c in range(ncpu):
            nc = 0.0
            met = 0.0
            oth = 0.0
            for b in range(nbins_used):
                x = pbin[c, n, P_READ, b] + pbin[c, n, P_WRITE, b]
                o = served[r, b] - x
                if o < 0.0:
                    o = 0.0
                nc += x
                met += x * o
                oth += o
            if nc > 0.0 and oth > 0.0:
                kc[c] = nbins_used * met / (nc * oth)
                ncnt[c] = nc
                wsum += nc * kc[c]
                nsum += nc
        if wsum <= 0.0:
            continue
        kmean = wsum / nsum
        for c in range(ncpu):
            if ncnt[c] > 0.0:
                gk[c, r] = kc[c] / kmean


@njit(cache=True)
def fluid_backlog(pbin, route_r, route_w, cpu_nodes, service, nbins_used, binw, backlog):
    """Carry ``backlog[r]`` (cycles of work queued at resource r beyond what it could serve)
    through this quantum's arrivals: every line in its time bin, reads on the read route,
    writes and posted write-backs on the write route, served at the resource's capacity.

    Latency-bearing requests hold a miss slot, so demand beyond capacity slows the CPUs down
    and the queue stays short; posted write-backs hold nothing, so a link that carries more
    of them than it can (a stream of stores behind a slow link) builds a queue that only time
    drains -- the queue every later request meets, whatever the utilisation formula says."""
    ncpu = pbin.shape[0]
    nn = pbin.shape[1]
    kk = route_r.shape[2]
    nres = service.shape[0]
    bins = np.zeros((nres, nbins_used))
    for c in range(ncpu):
        a = cpu_nodes[c]
        for n in range(nn):
            for k in range(kk):
                x = route_r[a, n, k]
                if x >= 0:
                    for b in range(nbins_used):
                        bins[x, b] += pbin[c, n, P_READ, b]
                y = route_w[a, n, k]
                if y >= 0:
                    for b in range(nbins_used):
                        bins[y, b] += pbin[c, n, P_WRITE, b] + pbin[c, n, P_WB, b]
    for r in range(nres):
        work = backlog[r]
        for b in range(nbins_used):
            work += bins[r, b] * service[r] - binw
            if work < 0.0:
                work = 0.0
        backlog[r] = work


@njit(cache=True)
def run_quantum(zones, zonelist, nodeinfo, cpu_node, sysvars, numastat, vmstat, policies,
                pol_nodes, tasks, task_mems, regions, vmas, objs, sp, pages, pt_page, pt_vma,
                obj_pages, pgtables, res,
                c, t_end, ci, cs, slots, buf, ops, opf, ts, rngs, trace, waits, lat, route_r,
                route_w, service, sfree, pwait, wbq, pbin, st, hist, pf, pi, llc_tags,
                llc_meta, llc_clock):
    """Run CPU ``c`` until its next access would issue at or after ``t_end`` (or its thread
    has no more accesses).  Returns FAULT_OK, or the allocator's status when a fault needs
    Python (FAULT_NEED_ROOM, FAULT_OOM, FAULT_SEGV...); the access then stays in the buffer.

    A request's latency = idle latency + its wait in the CPU's private FIFO copy of each
    server on its route + the estimated wait behind other CPUs (``waits``).  The private
    copies capture exactly how a CPU's requests queue behind each other (bursts, a write-back
    meeting the next read) -- what the exact engine sees when the CPU is alone on a resource;
    waiting behind other CPUs is the weave's estimate.  Posted write-backs wait in ``wbq``
    (a ring sorted by time) until the CPU's clock passes them, so each private FIFO sees its
    lines in time order, as the exact engine's queues do.  Every line is counted in
    ``pbin[c, node, kind, time bin]`` for the weave and the timeline.

    Hot loop: clocks, slots and counters live in locals and are written back at the end;
    the per-line steps (serve, count, flush write-backs) are written out in place, because a
    helper taking arrays costs a reference-count update per array per call (measured: 34 ns
    against 7 ns inlined by hand; the same three steps as ``inline="always"`` helpers took
    the whole engine from 26 to 17 M accesses/s, so the repetition stays).
    """
    t = ci[c, C.CI_TASK]
    cn = ci[c, C.CI_NODE]
    th = ci[c, C.CI_THREAD]
    m = pi[C.PI_MLP]
    lpp_shift = pi[C.PI_LPP_SHIFT]
    lpp = np.int64(1) << lpp_shift
    write_allocate = pi[C.PI_WRITE_ALLOCATE] != 0
    llc_on = pi[C.PI_LLC] != 0
    hit_cyc = pf[C.PF_HIT]
    llc_hit = pf[C.PF_LLC_HIT]
    fault_cyc = pf[C.PF_FAULT]
    zero_gap = pf[C.PF_ZERO_GAP]
    nbin = np.int64(pf[C.PF_NBINS])
    bin_inv = pf[C.PF_BIN_INV]
    q_start = pf[C.PF_Q_START]
    kk = route_r.shape[2]
    # this CPU's rows, as views: fewer index computations in the hot loop
    bufc = buf[c]
    histc = hist[c]
    wbqc = wbq[c]
    rr = route_r[cn]
    rw = route_w[cn]
    issue = cs[c, C.CS_ISSUE]
    dprev = cs[c, C.CS_DPREV]
    last = cs[c, C.CS_LAST]
    sl = np.empty(m)
    for k in range(m):
        sl[k] = slots[c, k]
    nn = waits.shape[2]
    wr = np.empty(nn)
    ww = np.empty(nn)
    latr = np.empty(nn)
    for k in range(nn):
        wr[k] = waits[c, 0, k]
        ww[k] = waits[c, 1, k]
        latr[k] = lat[cn, k]
    nres = service.shape[0]
    sfl = np.empty(nres)
    for k in range(nres):
        sfl[k] = sfree[c, k]
    pw = np.zeros(nn * P_NKINDS)  # private-FIFO waits by (node, kind), for burst factors
    # lines by (node, kind) in the current time bin; flushed to pbin when the bin changes
    lb = np.zeros(nn * P_NKINDS, dtype=np.int64)
    bcur = np.int64((issue - q_start) * bin_inv)
    if bcur < 0:
        bcur = 0
    elif bcur >= nbin:
        bcur = nbin - 1
    bend = q_start + (bcur + 1) / bin_inv
    head = ci[c, C.CI_HEAD]
    count = ci[c, C.CI_COUNT]
    nwb = ci[c, C.CI_WBN]
    wbh = ci[c, C.CI_WBH]
    qmask = wbq.shape[1] - 1  # capacity is a power of two
    # the last page looked up in each region: (page-table slot, page, node, writable)
    nreg = regions.shape[0]
    pc_slot = np.full(nreg, -1, dtype=np.int64)
    pc_pg = np.zeros(nreg, dtype=np.int64)
    pc_node = np.zeros(nreg, dtype=np.int64)
    pc_wok = np.zeros(nreg, dtype=np.int64)
    n_acc = 0.0
    # a per-CPU stream of independent uniforms for the wait spread (see below), resumed
    # where the last quantum stopped: a splitmix64 counter keyed by CPU and access number
    dkey = (np.uint64(c) << np.uint64(40)) + np.uint64(st[c, C.ST_ACCESSES])
    n_mem = 0.0
    n_hits = 0.0
    lat_sum = 0.0
    wait_sum = 0.0
    n_local = 0.0
    nbytes = 0.0
    stall = 0.0
    n_wb = 0.0
    q_nreq = 0.0
    q_lat = 0.0
    q_zstall = 0.0
    status = FAULT_OK
    while True:
        if head >= count:
            count = fill_batch(ops, opf, ts, rngs, th, trace, buf, c)
            head = 0
            if count == 0:
                ci[c, C.CI_FINISHED] = 1
                break
        r = bufc[head, B_R]
        line = bufc[head, B_LINE]
        mode = bufc[head, B_MODE]
        gap = bufc[head, B_GAP]
        base = issue + gap
        ti = base
        if bufc[head, B_DEP] != 0 and dprev + gap > ti:
            ti = dprev + gap
        j = 0
        smin = sl[0]
        for k in range(1, m):
            if sl[k] < smin:
                smin = sl[k]
                j = k
        if smin > ti:
            ti = smin
        if ti >= t_end:
            break
        # write-backs that happened before now go through the queues first
        while nwb > 0 and wbqc[wbh, 0] <= ti:
            wm = np.int64(wbqc[wbh, 1])
            w0 = 0.0
            aa = wbqc[wbh, 0]
            for k in range(kk):
                x = rw[wm, k]
                if x < 0:
                    break
                f = sfl[x]
                s0 = aa if aa > f else f
                sfl[x] = s0 + service[x]
                w0 += s0 - aa
                aa = s0 + service[x]
            pw[wm * P_NKINDS + P_WB] += w0
            wbh = (wbh + 1) & qmask
            nwb -= 1
        write = mode == STORE
        off = line >> lpp_shift
        pslot = regions[r, R_PT] + off
        fault = False
        if pc_slot[r] == pslot and (pc_wok[r] != 0 or not write):
            pg = pc_pg[r]
            node = pc_node[r]
        else:
            pg = pt_page[pslot]
            node = -1
            wok = 0
            if pg >= 0:
                node = pages[pg, PG_NODE]
                wok = 1
                if not (pages[pg, PG_KIND] == PGK_ANON and pages[pg, PG_MAPCOUNT] <= 1):
                    wok = 1 if vmas[pt_vma[pslot], V_SHARED] != 0 else 0
                fault = write and wok == 0
            elif not (pg == PT_ZERO and not write):
                fault = True
            if not fault:
                pc_slot[r] = pslot
                pc_pg[r] = pg
                pc_node[r] = node
                pc_wok[r] = wok
        if fault:
            status = core.handle_mm_fault_range(
                zones, zonelist, nodeinfo, cpu_node, sysvars, numastat, vmstat, policies,
                pol_nodes, tasks, task_mems, regions, vmas, objs, sp, pages, pt_page, pt_vma,
                obj_pages, pgtables, t, r, regions[r, R_START] + off, 1, np.int64(write),
                core.OOM_MAY, res)
            if status != FAULT_OK:
                break
            stall += ti - base
            nz = res[core.R_ALLOCATED] * lpp
            pg = pt_page[pslot]
            pc_slot[:] = -1  # the fault may have changed page tables (and COW frees pages)
            node = pages[pg, PG_NODE] if pg >= 0 else -1
            tz = ti + fault_cyc
            fend = tz
            if nz > 0:
                zl = latr[node] + ww[node]
                for _ in range(nz):
                    jz = 0
                    zmin = sl[0]
                    for k in range(1, m):
                        if sl[k] < zmin:
                            zmin = sl[k]
                            jz = k
                    if zmin > tz:
                        stall += zmin - tz
                        tz = zmin
                    while nwb > 0 and wbqc[wbh, 0] <= tz:
                        wm = np.int64(wbqc[wbh, 1])
                        w0 = 0.0
                        aa = wbqc[wbh, 0]
                        for k in range(kk):
                            x = rw[wm, k]
                            if x < 0:
                                break
                            f = sfl[x]
                            s0 = aa if aa > f else f
                            sfl[x] = s0 + service[x]
                            w0 += s0 - aa
                            aa = s0 + service[x]
                        pw[wm * P_NKINDS + P_WB] += w0
                        wbh = (wbh + 1) & qmask
                        nwb -= 1
                    wz = 0.0
                    aa = tz
                    for k in range(kk):
                        x = rw[node, k]
                        if x < 0:
                            break
                        f = sfl[x]
                        s0 = aa if aa > f else f
                        sfl[x] = s0 + service[x]
                        wz += s0 - aa
                        aa = s0 + service[x]
                    pw[node * P_NKINDS + P_WRITE] += wz
                    dz = tz + zl + wz
                    sl[jz] = dz
                    if dz > fend:
                        fend = dz
                    if tz >= bend and bcur < nbin - 1:
                        for k in range(nn * P_NKINDS):
                            pbin[c, k // P_NKINDS, k % P_NKINDS, bcur] += lb[k]
                            lb[k] = 0
                        bcur = np.int64((tz - q_start) * bin_inv)
                        if bcur >= nbin:
                            bcur = nbin - 1
                        bend = q_start + (bcur + 1) / bin_inv
                    lb[node * P_NKINDS + P_WRITE] += 1
                    q_lat += zl + wz
                    tz += zero_gap
                q_nreq += nz
                st[c, C.ST_ZERO_LINES] += nz
                # waiting for the last zeroing lines is a memory stall too (the weave's
                # demand model must see a fault-bound CPU as memory-bound)
                if fend > tz:
                    q_zstall += fend - tz
            st[c, C.ST_FAULTS] += 1
            st[c, C.ST_FAULT_CYCLES] += fend - ti
            if fend > last:
                last = fend
            ti = fend
            j = 0
            smin = sl[0]
            for k in range(1, m):
                if sl[k] < smin:
                    smin = sl[k]
                    j = k
            if smin > ti:
                ti = smin
            base = ti
            while nwb > 0 and wbqc[wbh, 0] <= ti:
                wm = np.int64(wbqc[wbh, 1])
                w0 = 0.0
                aa = wbqc[wbh, 0]
                for k in range(kk):
                    x = rw[wm, k]
                    if x < 0:
                        break
                    f = sfl[x]
                    s0 = aa if aa > f else f
                    sfl[x] = s0 + service[x]
                    w0 += s0 - aa
                    aa = s0 + service[x]
                pw[wm * P_NKINDS + P_WB] += w0
                wbh = (wbh + 1) & qmask
                nwb -= 1
        stall += ti - base
        # ---- the access itself
        head += 1
        n_acc += 1.0
        nbytes += bufc[head - 1, B_BYTES]
        if pg == PT_ZERO:
            latv = hit_cyc
            n_hits += 1.0
        else:
            hit = 0
            if llc_on and (write_allocate or not write):
                key = pg * lpp + (line & (lpp - 1))
                hit, wbn = C.llc_access(llc_tags, llc_meta, llc_clock, cn, key, write, node)
                if wbn >= 0:
                    we = 0.0
                    aa = ti
                    for k in range(kk):
                        x = rw[wbn, k]
                        if x < 0:
                            break
                        f = sfl[x]
                        s0 = aa if aa > f else f
                        sfl[x] = s0 + service[x]
                        we += s0 - aa
                        aa = s0 + service[x]
                    pw[wbn * P_NKINDS + P_WB] += we
                    if ti >= bend and bcur < nbin - 1:
                        for k in range(nn * P_NKINDS):
                            pbin[c, k // P_NKINDS, k % P_NKINDS, bcur] += lb[k]
                            lb[k] = 0
                        bcur = np.int64((ti - q_start) * bin_inv)
                        if bcur >= nbin:
                            bcur = nbin - 1
                        bend = q_start + (bcur + 1) / bin_inv
                    lb[wbn * P_NKINDS + P_WB] += 1
                    n_wb += 1.0
            if hit != 0:
                latv = llc_hit
                n_hits += 1.0
            else:
                # the wait behind others, uniform over [w/2, 3w/2) around its mean
                # (splitmix64 of a per-CPU counter): one wait for all kept CPUs in lockstep
                dkey += np.uint64(1)
                z = dkey * np.uint64(0x9E3779B97F4A7C15)
                z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                z = z ^ (z >> np.uint64(31))
                dith = 0.5 + np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)
                # a non-temporal write goes to memory on the write route, anything else
                # (a read, a read for ownership) comes back on the read route
                if write and not write_allocate:
                    route = rw
                    kind = P_WRITE
                    w = ww[node] * dith
                else:
                    route = rr
                    kind = P_READ
                    w = wr[node] * dith
                ws = 0.0
                aa = ti
                for k in range(kk):
                    x = route[node, k]
                    if x < 0:
                        break
                    f = sfl[x]
                    s0 = aa if aa > f else f
                    sfl[x] = s0 + service[x]
                    ws += s0 - aa
                    aa = s0 + service[x]
                pw[node * P_NKINDS + kind] += ws
                w += ws
                if ti >= bend and bcur < nbin - 1:
                    for k in range(nn * P_NKINDS):
                        pbin[c, k // P_NKINDS, k % P_NKINDS, bcur] += lb[k]
                        lb[k] = 0
                    bcur = np.int64((ti - q_start) * bin_inv)
                    if bcur >= nbin:
                        bcur = nbin - 1
                    bend = q_start + (bcur + 1) / bin_inv
                lb[node * P_NKINDS + kind] += 1
                latv = latr[node] + w
                if write and write_allocate and not llc_on:
                    # the dirty line is written back when it arrives: queue it by time
                    tw = ti + latv
                    if nwb > qmask:  # full (cannot happen: capacity > mlp)
                        wm = np.int64(wbqc[wbh, 1])
                        w0 = 0.0
                        aa = wbqc[wbh, 0]
                        for k in range(kk):
                            x = rw[wm, k]
                            if x < 0:
                                break
                            f = sfl[x]
                            s0 = aa if aa > f else f
                            sfl[x] = s0 + service[x]
                            w0 += s0 - aa
                            aa = s0 + service[x]
                        pw[wm * P_NKINDS + P_WB] += w0
                        wbh = (wbh + 1) & qmask
                        nwb -= 1
                    k = nwb
                    while k > 0 and wbqc[(wbh + k - 1) & qmask, 0] > tw:
                        wbqc[(wbh + k) & qmask, 0] = wbqc[(wbh + k - 1) & qmask, 0]
                        wbqc[(wbh + k) & qmask, 1] = wbqc[(wbh + k - 1) & qmask, 1]
                        k -= 1
                    wbqc[(wbh + k) & qmask, 0] = tw
                    wbqc[(wbh + k) & qmask, 1] = node
                    nwb += 1
                    if ti >= bend and bcur < nbin - 1:
                        for k in range(nn * P_NKINDS):
                            pbin[c, k // P_NKINDS, k % P_NKINDS, bcur] += lb[k]
                            lb[k] = 0
                        bcur = np.int64((ti - q_start) * bin_inv)
                        if bcur >= nbin:
                            bcur = nbin - 1
                        bend = q_start + (bcur + 1) / bin_inv
                    lb[node * P_NKINDS + P_WB] += 1
                    n_wb += 1.0
                n_mem += 1.0
                lat_sum += latv
                wait_sum += w
                if node == cn:
                    n_local += 1.0
                histc[C.hist_bin(latv)] += 1
        done = ti + latv
        sl[j] = done
        issue = ti
        dprev = done
        if done > last:
            last = done
    for k in range(nn * P_NKINDS):
        pbin[c, k // P_NKINDS, k % P_NKINDS, bcur] += lb[k]
    for k in range(m):
        slots[c, k] = sl[k]
    for k in range(nres):
        sfree[c, k] = sfl[k]
    for n in range(nn):
        for k in range(P_NKINDS):
            pwait[c, n, k] += pw[n * P_NKINDS + k]
    ci[c, C.CI_HEAD] = head
    ci[c, C.CI_COUNT] = count
    ci[c, C.CI_WBN] = nwb
    ci[c, C.CI_WBH] = wbh
    cs[c, C.CS_ISSUE] = issue
    cs[c, C.CS_DPREV] = dprev
    cs[c, C.CS_LAST] = last
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
    return status


@njit(cache=True)
def _wait_of(rho, s, other):
    """Mean wait behind *other* CPUs' lines at a deterministic server of service time s and
    utilisation rho; ``other`` is the others' utilisation weighted by their burstiness
    (Pollaczek-Khinchine with batch arrivals: the others' residual work, over the idle
    fraction of the whole server)."""
    if other < 0.0:
        other = 0.0
    return other * s / (2.0 * (1.0 - rho))


@njit(cache=True, inline="always")
def _demand_factor(rate, rfree, meff, latc, phi, dw):
    """How CPU c's request rate changes when the wait on a resource that ``phi`` of its
    requests cross changes by ``dw`` cycles: it runs at the lower of its unstalled rate and
    its miss slots over its latency (Little's law)."""
    if rate <= 0.0 or latc <= 0.0:
        return 1.0
    lat_new = latc + phi * dw
    if lat_new < 1.0:
        lat_new = 1.0
    new = meff / lat_new
    if new > rfree:
        new = rfree
    now = meff / latc
    if now > rfree:
        now = rfree
    return new / now  # relative to the same model at the current wait: 1 when dw = 0


@njit(cache=True)
def estimate_waits(cnt, swait, st, service, kappa, gk, wres, rho_used, active, q, mlp,
                   backlog):
    """The weave: new per-(CPU, resource) waits ``wres`` from this quantum's counts.

    cnt[c, r, 0/1]: lines / latency-bearing requests of CPU c through resource r; swait[c, r]:
    the waits those lines met in c's private FIFO copy of r, which measure how bursty c's
    stream is: for batches of X lines, the mean wait behind one's own batch is
    s (E[X^2]/E[X] - 1) / 2, so the burst factor E[X^2]/E[X] = 1 + 2 swait / (cnt s) is what
    scales the residual work others see (M^X/D/1); st: per-CPU statistics (Q_NREQ, Q_LAT,
    Q_STALL columns); wres[c, r]: the waits the quantum ran with, replaced in place;
    rho_used[r]: the utilisation they were computed for (updated); active[c]: 1 for CPUs that
    ran; q: quantum length in cycles; kappa[r]: the load concentration of
    :func:`concentration` -- the utilisation an average request meets is kappa * rho, so a
    resource whose load comes in bunches saturates at 1 / kappa of its bandwidth on average;
    gk[c, r]: CPU c's wait relative to the average one (its place in a convoy).

    Resources are solved busiest first, and each CPU's demand is scaled by the slowdown the
    resources solved before imposed on it (Gauss-Seidel): a flow through a matrix cap and a
    link is throttled once, by its bottleneck, not once per resource.

    Damping: the idle fraction 1 - rho of a resource moves at most tenfold per quantum, so
    a saturated controller is found in three quanta and an estimate cannot swing from far too
    low to far too high (which a fault-heavy phase, whose demand reacts slowly, would cause).
    A FIFO cannot make a request wait longer than the work queued ahead of it: the fluid
    ``backlog[r]`` (:func:`fluid_backlog`) plus at most ``mlp`` requests in flight per other
    CPU (with the posted write-backs that come with them).  The Pollaczek-Khinchine wait
    grows without bound as the utilisation nears 1, which is right for a demand that slows
    down as it waits; a demand that does not (write-backs behind a slow link, whose CPUs'
    latency-bearing requests do not cross it) would otherwise get a wait of seconds.
    Returns the largest relative change of a resource's mean wait.
    """
    ncpu = cnt.shape[0]
    nres = cnt.shape[1]
    change = 0.0
    lam = np.zeros(ncpu)
    own = np.zeros(ncpu)  # utilisation CPU c's own lines cause
    burst = np.zeros(ncpu)
    phi = np.zeros(ncpu)  # share of c's latency-bearing requests that cross resource r
    rate = np.zeros(ncpu)  # c's latency-bearing requests per cycle
    rfree = np.zeros(ncpu)  # the rate it would have if it never waited for memory
    meff = np.zeros(ncpu)  # requests it keeps in flight when latency-bound
    scale = np.ones(ncpu)  # demand left after the resources already solved
    infl = np.zeros(ncpu)  # work c can have queued at r: mlp requests and their write-backs
    cap = np.zeros(ncpu)  # the most c can wait behind others at r
    latc = np.zeros(ncpu)
    fst = np.zeros(ncpu)
    for c in range(ncpu):
        nreq = st[c, C.ST_Q_NREQ]
        if active[c] != 0 and nreq > 0:
            latc[c] = st[c, C.ST_Q_LAT] / nreq
            f = st[c, C.ST_Q_STALL] / q
            fst[c] = 1.0 if f > 1.0 else f
            rate[c] = nreq / q
            # the rate it could reach without memory stalls -- but extrapolate at most 2x per
            # quantum: part of what is not a stall (fault handling, bursts) does not speed up
            rfree[c] = rate[c] / (1.0 - fst[c]) if fst[c] < 0.5 else 2.0 * rate[c]
            meff[c] = rate[c] * latc[c] if fst[c] > 0.5 else float(mlp)
            if meff[c] < 1.0:
                meff[c] = 1.0
    util = np.zeros(nres)
    for r in range(nres):
        for c in range(ncpu):
            util[r] += cnt[c, r, 0]
        util[r] *= service[r] / q * kappa[r]
    # busiest first (a selection sort: numba's argsort costs seconds of compile time)
    order = np.arange(nres)
    for a in range(nres):
        best = a
        for b in range(a + 1, nres):
            if util[order[b]] > util[order[best]]:
                best = b
        tmp = order[a]
        order[a] = order[best]
        order[best] = tmp
    for oi in range(nres):
        r = order[oi]
        s = service[r]
        total = 0.0
        for c in range(ncpu):
            total += cnt[c, r, 0] * scale[c]
        if total <= 0.0:
            # nothing crossed r: the CPUs that use it are all waiting (a quantum shorter
            # than their latency) or have moved on; either way the estimate stands until
            # traffic returns (forgetting it let every stalled CPU reissue at zero wait)
            continue
        old_mean = 0.0
        for c in range(ncpu):
            lam[c] = cnt[c, r, 0] * scale[c] / q
            own[c] = lam[c] * s
            burst[c] = 1.0
            if cnt[c, r, 0] > 0:
                burst[c] = 1.0 + 2.0 * swait[c, r] / (cnt[c, r, 0] * s)
            old_mean += cnt[c, r, 0] * scale[c] / total * wres[c, r]
            phi[c] = 0.0
            nreq = st[c, C.ST_Q_NREQ]
            if nreq > 0:
                phi[c] = cnt[c, r, 1] / nreq
        itot = 0.0
        for c in range(ncpu):
            infl[c] = 0.0
            if cnt[c, r, 0] > 0:
                ratio = cnt[c, r, 0] / cnt[c, r, 1] if cnt[c, r, 1] > 0 else 1.0
                infl[c] = mlp * ratio * s
            itot += infl[c]
        for c in range(ncpu):
            cap[c] = backlog[r] + itot - infl[c]
        kap = kappa[r]
        rho_now = total / q * s
        weighted = 0.0
        for c in range(ncpu):
            weighted += own[c] * burst[c]
        # bisection on the utilisation an average request meets (kappa * rho): the demand
        # at the waits it implies falls as it rises
        lo = 0.0
        hi = 1.0 - 1e-9
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            dem = 0.0
            for c in range(ncpu):
                if lam[c] > 0.0:
                    w = _wait_of(mid, s, (weighted - own[c] * burst[c]) * mid / (rho_now * kap))
                    w *= gk[c, r]
                    if w > cap[c]:
                        w = cap[c]
                    dem += lam[c] * _demand_factor(rate[c], rfree[c], meff[c], latc[c],
                                                   phi[c], w - wres[c, r])
            if dem * s * kap > mid:
                lo = mid
            else:
                hi = mid
        rho = 0.5 * (lo + hi)
        idle_old = 1.0 - rho_used[r]
        idle = 1.0 - rho
        # demand beyond capacity is unambiguous: let the estimate jump there at once
        lim = 1000.0 if rho_now >= 1.0 else 10.0
        if idle < idle_old / lim:
            idle = idle_old / lim
        elif idle > idle_old * 10.0:
            idle = idle_old * 10.0
        if idle > 1.0:
            idle = 1.0
        # past the utilisation at which every CPU's wait has reached its cap, a higher rho
        # changes no wait; remembering it would only slow the way back (tenfold a quantum)
        idle_min = 1.0
        for c in range(ncpu):
            if lam[c] > 0.0 and cap[c] > 0.0:
                other = (weighted - own[c] * burst[c]) / (rho_now * kap)
                x = other * s * gk[c, r] / (2.0 * cap[c])
                if x < idle_min:
                    idle_min = x
        if idle < idle_min:
            idle = idle_min
        rho = 1.0 - idle
        rho_used[r] = rho
        new_mean = 0.0
        for c in range(ncpu):
            w = _wait_of(rho, s, (weighted - own[c] * burst[c]) * rho / (rho_now * kap))
            w *= gk[c, r]
            if w > cap[c]:
                w = cap[c]
            if lam[c] > 0.0:
                scale[c] *= _demand_factor(rate[c], rfree[c], meff[c], latc[c], phi[c],
                                           w - wres[c, r])
            wres[c, r] = w
            new_mean += cnt[c, r, 0] * scale[c] / total * w
        d = abs(new_mean - old_mean) / (old_mean + 10.0 * s + 1.0)
        if d > change:
            change = d
    return change


@njit(cache=True)
def route_waits(wres, route_r, route_w, cpu_nodes, waits):
    """waits[c, 0/1, n] = sum of wres[c, r] over the read/write route from c's node to n."""
    ncpu = wres.shape[0]
    nn = route_r.shape[1]
    for c in range(ncpu):
        a = cpu_nodes[c]
        for n in range(nn):
            sr = 0.0
            sw = 0.0
            for k in range(route_r.shape[2]):
                x = route_r[a, n, k]
                if x >= 0:
                    sr += wres[c, x]
                y = route_w[a, n, k]
                if y >= 0:
                    sw += wres[c, y]
            waits[c, 0, n] = sr
            waits[c, 1, n] = sw


NBINS = 1024  # time bins per quantum for the load concentration
BIN_CYCLES = 1024  # at least this wide


class FastEngine:
    """Bound-weave over the shared :class:`~numasim.machine.sim.Simulation` arrays."""

    def __init__(self, sim) -> None:
        self.sim = sim
        n = sim.nthreads
        nres = sim.res.count
        nr = sim.machine.nr_node_ids
        self.cnt = np.zeros((n, nres, 2), dtype=np.int64)
        self.pbin = np.zeros((n, nr, P_NKINDS, NBINS), dtype=np.int64)
        self.kappa = np.ones(nres)
        self.sfree = np.zeros((n, nres))
        self.swait = np.zeros((n, nres))
        self.pwait = np.zeros((n, nr, P_NKINDS))
        cap = 1 << int(sim.params.mlp + 2).bit_length()
        self.wbq = np.zeros((n, cap, 2))
        self.wres = np.zeros((n, nres))
        self.rho_used = np.zeros(nres)
        self.backlog = np.zeros(nres)
        self.carry = np.zeros(nres)  # lines queued at the end of the last phase
        self.waits = np.zeros((n, 2, nr))
        self.service = np.ascontiguousarray(sim.res.service)
        mc = sim.res.kinds == KIND_MC
        self.mc_node = np.where(mc, sim.res.ends[:, 1], -1).astype(np.int64)
        self.gk = np.ones((n, nres))
        self.route_r = np.ascontiguousarray(sim.res.route_read)
        self.route_w = np.ascontiguousarray(sim.res.route_write)
        self.lat = np.ascontiguousarray(sim.res.latency)
        self.quanta = 0

    def _args(self) -> None:
        """The argument lists of run_quantum, rebuilt whenever the kernel's arrays may have
        been reallocated (they are the same objects otherwise)."""
        sim = self.sim
        self.args_pre = sim.ks.core_args() + (sim.fault_res,)
        self.args_post = (sim.ci, sim.cs, sim.slots, sim.buf, sim.programs_ops,
                          sim.programs_opf, sim.ts, sim.rngs, sim.trace_arr, self.waits,
                          self.lat, self.route_r, self.route_w, self.service, self.sfree,
                          self.pwait, self.wbq, self.pbin, sim.st, sim.hist, sim.pf, sim.pi,
                          *sim.llc)

    # one quantum of one CPU, with the Python side of faults
    def _run_cpu(self, c: int, t_end: float) -> None:
        sim = self.sim
        while True:
            st = run_quantum(*self.args_pre, c, t_end, *self.args_post)
            if st == FAULT_OK:
                return
            sim.fault_status(st, c)
            sim.ks.ensure_pages(4096)
            self._args()

    def _queue_ends(self) -> np.ndarray:
        """When each CPU's private copy of each server would be free, counting the posted
        write-backs still waiting in its ring (run_quantum serves them when its clock passes
        them); the arrays are not changed."""
        sim = self.sim
        ends = self.sfree.copy()
        qmask = self.wbq.shape[1] - 1
        for c in range(sim.nthreads):
            head, n = int(sim.ci[c, C.CI_WBH]), int(sim.ci[c, C.CI_WBN])
            cn = int(sim.cpu_nodes[c])
            for i in range(n):
                a, node = self.wbq[c, (head + i) & qmask]
                for x in self.route_w[cn, int(node)]:
                    if x < 0:
                        break
                    a = max(a, ends[c, x]) + self.service[x]
                    ends[c, x] = a
        return ends

    def _timeline(self, used, q_start: float, binw: float) -> None:
        """Bytes per memory node and time bin of this quantum into the run's timeline."""
        sim = self.sim
        per_bin = used.sum(axis=(0, 2)).T * float(sim.line)  # [bin, node]
        times = q_start + (np.arange(per_bin.shape[0]) + 0.5) * binw
        sim.ensure_timeline(float(times[-1]))
        idx = np.minimum((times / sim.tl_width).astype(np.int64), sim.tl.shape[0] - 1)
        np.add.at(sim.tl, idx, per_bin)

    def _cpu_proc(self, c: int, first_tick):
        """A CPU: at each tick, run one quantum; stop when the thread has no more work."""
        sim = self.sim
        tick = first_tick
        while True:
            yield tick
            tick = self.tick  # the driver made the next tick before firing this one
            self._run_cpu(c, self.t_end)
            self.reported += 1
            if sim.ci[c, C.CI_FINISHED]:
                self.live -= 1
            if self.reported == self.expect:
                self.all_ran.succeed()
            if sim.ci[c, C.CI_FINISHED]:
                return

    def phase(self, prog, active: list[int], t0: float):
        sim = self.sim
        env = sim.env
        sim.programs_ops, sim.programs_opf = prog.ops, prog.opf
        ep = sim.eparams
        q = float(ep.quantum or ep.quantum_min)
        # a new phase is a new load: estimate it afresh (the first quantum is short)
        self.wres[:] = 0.0
        self.waits[:] = 0.0
        self.rho_used[:] = 0.0
        self.backlog[:] = 0.0
        self.kappa[:] = 1.0
        self.gk[:] = 1.0
        self.tick = env.event()
        self.live = len(active)
        act = np.zeros(sim.nthreads, dtype=np.int64)
        act[active] = 1
        procs = [env.process(self._cpu_proc(c, self.tick)) for c in active]
        q_start = t0
        # accesses each thread still has to do, to end quanta near the first finish
        remaining = np.zeros(sim.nthreads)
        for c in active:
            first, end = prog.ranges[c]
            remaining[c] = sum(op_accesses(prog.ops[k]) for k in range(first, end))
        acc_before = sim.st[:, C.ST_ACCESSES].copy()
        arrived = np.zeros(len(self.service))
        while self.live > 0:
            self.t_end = q_start + q
            nbins_used = max(1, min(NBINS, int(q // BIN_CYCLES)))
            binw = q / nbins_used
            sim.pf[C.PF_Q_START] = q_start
            sim.pf[C.PF_BIN_INV] = 1.0 / binw
            sim.pf[C.PF_NBINS] = nbins_used
            sim.ensure_timeline(self.t_end + q)
            # room for the pages this quantum may fault (the core asks for more if not)
            sim.ks.ensure_pages(4096 * self.live)
            self._args()
            self.expect = self.live
            live_before = self.live
            self.reported = 0
            self.all_ran = env.event()
            old, self.tick = self.tick, env.event()
            old.succeed()
            yield self.all_ran
            self.quanta += 1
            # ---- weave: contention for the next quantum
            used = self.pbin[:, :, :, :nbins_used]
            pair = used.sum(axis=3)
            self.cnt[:] = 0
            self.swait[:] = 0.0
            pairs_to_resources(pair, self.pwait, self.route_r, self.route_w,
                               sim.cpu_nodes, self.cnt, self.swait)
            self.pwait[:] = 0.0
            lines = self.cnt[:, :, 0].sum(axis=0)
            burst = 1.0 + 2.0 * self.swait.sum(axis=0) / np.maximum(lines, 1) / self.service
            if ep.concentration:
                concentration(self.pbin, self.route_r, sim.cpu_nodes, self.service,
                              self.mc_node, nbins_used, binw, burst, self.kappa, self.gk)
            fluid_backlog(self.pbin, self.route_r, self.route_w, sim.cpu_nodes, self.service,
                          nbins_used, binw, self.backlog)
            self._timeline(used, q_start, binw)
            used[:] = 0
            estimate_waits(self.cnt, self.swait, sim.st, self.service, self.kappa, self.gk,
                           self.wres, self.rho_used, act, q, sim.params.mlp, self.backlog)
            self.swait[:] = 0.0
            route_waits(self.wres, self.route_r, self.route_w, sim.cpu_nodes, self.waits)
            arrived += self.cnt[:, :, 0].sum(axis=0)
            self.cnt[:] = 0
            sim.st[:, C.ST_Q_NREQ:C.ST_Q_STALL + 1] = 0.0
            for c in active:
                if sim.ci[c, C.CI_FINISHED]:
                    act[c] = 0
            q_start = self.t_end
            q_ran = q
            done_now = sim.st[:, C.ST_ACCESSES] - acc_before
            acc_before = sim.st[:, C.ST_ACCESSES].copy()
            remaining -= done_now
            if ep.quantum is None:
                # grow while the load is steady; start over when a thread finished (the
                # load changes); end a quantum about when the next thread should finish, so
                # the others do not run on with the contention it caused
                if self.live < live_before:
                    q = float(ep.quantum_min)
                else:
                    q = min(2 * q, float(ep.quantum_max))
                    rates = done_now[act == 1] / q_ran
                    if rates.size and (rates > 0).all():
                        first_end = float((remaining[act == 1] / rates).min())
                        q = max(float(ep.quantum_min), min(q, 0.5 * first_end))
            sim.progress_to()
        yield simpy_all(env, procs)
        end = float(max(sim.cs[c, C.CS_LAST] for c in active))
        # the lines still queued at the end: the CPUs' own FIFOs (the fluid backlog of the
        # shared queue bounds what carried_lines lets through)
        tail = self._queue_ends().max(axis=0) - end
        served, self.carry = carried_lines(arrived, self.carry, tail, end - t0, self.service)
        sim.res_lines += served
        return end


def simpy_all(env, procs):
    import simpy

    return simpy.AllOf(env, procs)
