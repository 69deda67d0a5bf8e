"""The fast engine's *weave* phase: the quantum's counts become the next quantum's waits.

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

A controller model that adds latency (:mod:`numasim.memctrl`, e.g. ``curve``) gives its
extra latency at the utilisation an average request meets (``ctrl_n/u/w``: a piecewise-linear
table per resource) on top of the queueing wait, inside the same fixed point: the wait the
utilisation causes (queue + curve) is the wait that lets that utilisation through, and since
the queue term still grows without bound near 1, a saturated controller still delivers its
bandwidth.  Resources without a model (``ctrl_n[r] = 0``) take exactly the old path.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from numasim.machine import cpu as C
from numasim.machine.bound import P_READ, P_WB, P_WRITE


@njit(cache=True)
def pairs_to_resources(pair, pwait, route_r, route_w, cost_r, cost_w, cpu_nodes, cnt, swait):
    """cnt[c, r, 0/1] (all lines / latency-bearing) from the per-(CPU, node) counts, and
    swait[c, r] from the per-(CPU, node) private-FIFO waits (split evenly over the route).
    A hop counts its cost in lines (a protocol message a fraction: links issue)."""
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
                    cnt[c, x, 0] += rd * cost_r[a, n, k]
                    cnt[c, x, 1] += rd * cost_r[a, n, k]
                    swait[c, x] += pwait[c, n, P_READ] / lr
                y = route_w[a, n, k]
                if y >= 0:
                    cnt[c, y, 0] += (wr + wb) * cost_w[a, n, k]
                    cnt[c, y, 1] += wr * cost_w[a, n, k]
                    swait[c, y] += (pwait[c, n, P_WRITE] + pwait[c, n, P_WB]) / lw


@njit(cache=True)
def concentration(pbin, route_r, cost_r, cpu_nodes, service, mc_node, nbins_used, binw, burst,
                  kappa, gk):
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
                    bins[x, b] += (pbin[c, n, P_READ, b] + pbin[c, n, P_WRITE, b]) * \
                        cost_r[a, n, k]
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
def fluid_backlog(pbin, route_r, route_w, cost_r, cost_w, cpu_nodes, service, nbins_used, binw,
                  backlog):
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
                        bins[x, b] += pbin[c, n, P_READ, b] * cost_r[a, n, k]
                y = route_w[a, n, k]
                if y >= 0:
                    for b in range(nbins_used):
                        bins[y, b] += (pbin[c, n, P_WRITE, b] + pbin[c, n, P_WB, b]) * \
                            cost_w[a, n, k]
    for r in range(nres):
        work = backlog[r]
        for b in range(nbins_used):
            work += bins[r, b] * service[r] - binw
            if work < 0.0:
                work = 0.0
        backlog[r] = work


@njit(cache=True)
def _wait_of(rho, s, other):
    """Mean wait behind *other* CPUs' lines at a deterministic server of service time s and
    utilisation rho; ``other`` is the others' utilisation weighted by their burstiness
    (Pollaczek-Khinchine with batch arrivals: the others' residual work, over the idle
    fraction of the whole server)."""
    if other < 0.0:
        other = 0.0
    return other * s / (2.0 * (1.0 - rho))


@njit(cache=True)
def curve_at(n, u, w, x):
    """The piecewise-linear table (u[:n], w[:n]) at x, clamped at both ends (np.interp)."""
    if x <= u[0]:
        return w[0]
    for k in range(1, n):
        if x <= u[k]:
            return w[k - 1] + (w[k] - w[k - 1]) * (x - u[k - 1]) / (u[k] - u[k - 1])
    return w[n - 1]


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
def _cpu_rates(st, active, q, mlp):
    """Per CPU, from this quantum's statistics: its latency-bearing requests per cycle, the
    rate it would have if it never waited for memory, the requests it keeps in flight when
    latency-bound, and its mean latency."""
    ncpu = st.shape[0]
    rate = np.zeros(ncpu)
    rfree = np.zeros(ncpu)
    meff = np.zeros(ncpu)
    latc = np.zeros(ncpu)
    for c in range(ncpu):
        nreq = st[c, C.ST_Q_NREQ]
        if active[c] != 0 and nreq > 0:
            latc[c] = st[c, C.ST_Q_LAT] / nreq
            f = st[c, C.ST_Q_STALL] / q
            fst = 1.0 if f > 1.0 else f
            rate[c] = nreq / q
            # the rate it could reach without memory stalls -- but extrapolate at most 2x per
            # quantum: part of what is not a stall (fault handling, bursts) does not speed up
            rfree[c] = rate[c] / (1.0 - fst) if fst < 0.5 else 2.0 * rate[c]
            meff[c] = rate[c] * latc[c] if fst > 0.5 else float(mlp)
            if meff[c] < 1.0:
                meff[c] = 1.0
    return rate, rfree, meff, latc


@njit(cache=True)
def _busiest_first(cnt, service, kappa, q):
    """Resource ids by utilisation this quantum (times kappa), busiest first (a selection
    sort: numba's argsort costs seconds of compile time)."""
    ncpu = cnt.shape[0]
    nres = cnt.shape[1]
    util = np.zeros(nres)
    for r in range(nres):
        for c in range(ncpu):
            util[r] += cnt[c, r, 0]
        util[r] *= service[r] / q * kappa[r]
    order = np.arange(nres)
    for a in range(nres):
        best = a
        for b in range(a + 1, nres):
            if util[order[b]] > util[order[best]]:
                best = b
        tmp = order[a]
        order[a] = order[best]
        order[best] = tmp
    return order


@njit(cache=True)
def _wait_caps(cnt, r, s, mlp, backlog_r, infl, cap):
    """cap[c]: the most CPU c can wait behind others at resource r -- the backlog plus the
    others' miss slots with the write-backs that come with their lines (infl[c])."""
    ncpu = cnt.shape[0]
    itot = 0.0
    for c in range(ncpu):
        infl[c] = 0.0
        if cnt[c, r, 0] > 0:
            ratio = cnt[c, r, 0] / cnt[c, r, 1] if cnt[c, r, 1] > 0 else 1.0
            infl[c] = mlp * ratio * s
        itot += infl[c]
    for c in range(ncpu):
        cap[c] = backlog_r + itot - infl[c]


@njit(cache=True)
def estimate_waits(cnt, swait, st, service, kappa, gk, wres, rho_used, active, q, mlp,
                   backlog, ctrl_n, ctrl_u, ctrl_w):
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
    ctrl_n[r], ctrl_u[r], ctrl_w[r]: the controller model's extra latency table (n = 0: none).
    Returns the largest relative change of a resource's mean wait.
    """
    ncpu = cnt.shape[0]
    nres = cnt.shape[1]
    change = 0.0
    lam = np.zeros(ncpu)
    own = np.zeros(ncpu)  # utilisation CPU c's own lines cause
    burst = np.zeros(ncpu)
    phi = np.zeros(ncpu)  # share of c's latency-bearing requests that cross resource r
    scale = np.ones(ncpu)  # demand left after the resources already solved
    infl = np.zeros(ncpu)  # work c can have queued at r: mlp requests and their write-backs
    cap = np.zeros(ncpu)  # the most c can wait behind others at r
    rate, rfree, meff, latc = _cpu_rates(st, active, q, mlp)
    order = _busiest_first(cnt, service, kappa, q)
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
        _wait_caps(cnt, r, s, mlp, backlog[r], infl, cap)
        kap = kappa[r]
        rho_now = total / q * s
        weighted = 0.0
        for c in range(ncpu):
            weighted += own[c] * burst[c]
        # bisection on the utilisation an average request meets (kappa * rho): the demand
        # at the waits it implies falls as it rises
        nc = ctrl_n[r]
        lo = 0.0
        hi = 1.0 - 1e-9
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            dem = 0.0
            ex = curve_at(nc, ctrl_u[r], ctrl_w[r], mid) if nc > 0 else 0.0
            for c in range(ncpu):
                if lam[c] > 0.0:
                    w = _wait_of(mid, s, (weighted - own[c] * burst[c]) * mid / (rho_now * kap))
                    w *= gk[c, r]
                    if w > cap[c]:
                        w = cap[c]
                    if nc > 0:
                        w += ex
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
        ex = curve_at(nc, ctrl_u[r], ctrl_w[r], rho) if nc > 0 else 0.0
        for c in range(ncpu):
            w = _wait_of(rho, s, (weighted - own[c] * burst[c]) * rho / (rho_now * kap))
            w *= gk[c, r]
            if w > cap[c]:
                w = cap[c]
            if nc > 0:
                w += ex
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

