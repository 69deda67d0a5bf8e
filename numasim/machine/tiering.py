"""Memory tiering over time: pages per tier, promotions and demotions per interval, and how
much of the workload's hot set sits in the top tier (a timed run's ``tiering`` section).

The section is there when the machine's memory has more than one tier
(:mod:`numasim.mm.memory_tiers`; ``node_is_toptier`` decides which nodes are the top
tier).  Its fields, the same in both engines:

* ``tiers``: each tier's name (``memory_tierN``) and nodes, fastest first; ``top_tier_nodes``;
* ``pages_per_tier``, ``hot_residency``, ``promotions``, ``demotions``: at the end of the run
  (promotions: ``pgpromote_success``; demotions: ``pgdemote_kswapd + pgdemote_direct``);
* ``intervals``: per interval of the NUMA-balancing series (only when balancing is on: the
  snapshots are taken at its ticks) the pages per tier at the interval's end, the pages
  promoted (hinting-fault migrations from a lower tier into the top tier) and demoted in it,
  and the hot set's residency at its end.

**The hot set** of a ``zipf`` or ``kv`` op (:mod:`numasim.workloads.gen`) is the fewest
hottest items that receive :data:`HOT_MASS` (80 %) of its accesses, by the Zipf law the
generator samples (``P(rank <= K) = (H(K + 1/2) - H(3/2) + 1) / (H(n + 1/2) - H(3/2) + 1)``,
the integral its rejection-inversion inverts), at the repetition the thread is in (a
``shift`` moves it), and its pages are those holding those items' lines.  The run's hot set at
a moment is the union over the threads running such an op then; at the end of the run, the
hot set of the last repetition of the last such phase.  ``hot_residency`` is the fraction of
the hot set's pages that are mapped on a top-tier node (a page not yet faulted counts as not
resident).  A run without a zipf or kv phase has no hot set (``null``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from numasim.mm import state as S
from numasim.workloads import gen as G

HOT_MASS = 0.8
"""The share of a Zipf op's accesses its hot set receives."""


def hot_ranks(nitems: int, theta: float, mass: float = HOT_MASS) -> int:
    """The fewest top ranks of a Zipf(theta) law over ``nitems`` that get ``mass`` of the
    draws (by the integral :func:`numasim.workloads.gen.zipf_rank` inverts)."""
    hx1, hn, _ = G.zipf_constants(nitems, theta)

    def share(k: int) -> float:
        return (float(G._zipf_h(k + 0.5, theta)) - hx1) / (hn - hx1)

    lo, hi = 1, max(1, nitems)
    while lo < hi:
        mid = (lo + hi) // 2
        if share(mid) >= mass:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def _hot_pages(ops, k, rep, nhot, lpp_shift):
    """Page offsets (in the op's region) of the ``nhot`` hottest items of ZIPF op ``k`` in
    repetition ``rep`` (the generator's rank-to-item mapping, ``gen.zipf_item``)."""
    vl = G.zipf_vlines(ops, k)
    nitems = (ops[k, G.O_HI] - ops[k, G.O_LO]) // vl
    base = ops[k, G.O_B] + ops[k, G.O_LO]
    off = (rep * ops[k, G.O_SHIFT]) % nitems if ops[k, G.O_SHIFT] != 0 else 0
    out = np.empty(2 * nhot, dtype=np.int64)
    n = 0
    for j in range(nhot):
        item = G.permute((j + off) % nitems, nitems, ops[k, G.O_SEED])
        first = (base + item * vl) >> lpp_shift
        last = (base + item * vl + vl - 1) >> lpp_shift
        out[n] = first
        n += 1
        if last != first:  # a value over a page boundary (values larger than a page:
            out[n] = last  # their middle pages count through their first and last)
            n += 1
    return out[:n]


class TierTracker:
    """The run's tiers and its hot set (see the module)."""

    def __init__(self, sim) -> None:
        self.sim = sim
        mt = sim.k.memory_tiers
        self.tiers = [(t.name, [int(n) for n in t.nodes]) for t in mt.tiers]
        self.on = len(self.tiers) > 1
        nr = sim.machine.nr_node_ids
        self.top = np.array([mt.node_is_toptier(n) for n in range(nr)], dtype=bool)
        self.tier_of = np.full(nr, -1, dtype=np.int64)
        for i, (_, nodes) in enumerate(self.tiers):
            self.tier_of[nodes] = i
        self._nhot: dict[tuple[int, int], int] = {}
        self.last_hot: np.ndarray | None = None
        self._hot_key: tuple | None = None

    def _nhot_of(self, ops, opf, k: int) -> int:
        vl = max(1, int(ops[k, G.O_VLINES]))
        nitems = int(ops[k, G.O_HI] - ops[k, G.O_LO]) // vl
        key = (nitems, float(opf[k, G.OF_THETA]))
        if key not in self._nhot:
            self._nhot[key] = hot_ranks(nitems, key[1])
        return self._nhot[key]

    def _slots(self, ops, opf, k: int, rep: int) -> np.ndarray:
        sim = self.sim
        pages = _hot_pages(ops, k, rep, self._nhot_of(ops, opf, k), sim.lpp_shift)
        return int(sim.ks.regions[int(ops[k, G.O_R]), S.R_PT]) + pages

    def hot_now(self) -> np.ndarray | None:
        """Page-table slots of the hot set of the zipf/kv ops the threads run now."""
        sim = self.sim
        ops, opf = getattr(sim, "programs_ops", None), getattr(sim, "programs_opf", None)
        if ops is None:
            return None
        now = []  # (op, repetition) of every thread in a zipf/kv op
        for t in range(sim.nthreads):
            k = int(sim.ts[t, G.TS_OP])
            if k < int(sim.ts[t, G.TS_END]) and int(ops[k, G.O_KIND]) == G.OP_ZIPF:
                now.append((k, int(sim.ts[t, G.TS_REP])))
        if not now:
            return None
        key = (id(ops), tuple(now))
        if key != self._hot_key:  # the hot set changes only with an op or a repetition
            parts = [self._slots(ops, opf, k, rep) for k, rep in sorted(set(now))]
            self._hot_key, self.last_hot = key, np.unique(np.concatenate(parts))
        return self.last_hot

    def hot_at_end(self) -> np.ndarray | None:
        """The hot set of the last repetition of the last zipf/kv phase."""
        for prog in reversed(self.sim.programs):
            parts = [self._slots(prog.ops, prog.opf, k, int(prog.ops[k, G.O_REPS]) - 1)
                     for k in range(prog.ops.shape[0])
                     if int(prog.ops[k, G.O_KIND]) == G.OP_ZIPF and prog.ops[k, G.O_COUNT]]
            if parts:
                return np.unique(np.concatenate(parts))
        return None

    def residency(self, slots: np.ndarray | None) -> float | None:
        """The fraction of ``slots`` mapped on a top-tier node."""
        if slots is None or slots.size == 0:
            return None
        ks = self.sim.ks
        pg = ks.pt_page[slots]
        mapped = pg >= 0
        nodes = ks.pages[pg[mapped], S.PG_NODE]
        return round(float(self.top[nodes].sum()) / float(slots.size), 6)

    def per_tier(self, per_node) -> dict[str, int] | None:
        """Pages per tier from pages per node (a dict or an array by node id)."""
        if per_node is None:
            return None
        items = per_node.items() if isinstance(per_node, dict) else enumerate(per_node)
        out = {name: 0 for name, _ in self.tiers}
        for n, v in items:
            i = int(self.tier_of[int(n)])
            if i >= 0:
                out[self.tiers[i][0]] += int(v)
        return out

    def report(self, data: dict, promoted: np.ndarray | None, hotres: np.ndarray | None
               ) -> dict:
        """The ``tiering`` section, from the finished result ``data`` (its balancing and
        reclaim series) and the per-interval promotions and hot residency."""
        sim = self.sim
        total = np.zeros(sim.machine.nr_node_ids, dtype=np.int64)
        for per in data["pages_per_node"].values():
            for n, v in per.items():
                total[int(n)] += int(v)
        hot = self.hot_at_end()
        end_res = self.residency(hot)
        rows = []
        nb = data.get("numa_balancing")
        for b, r in enumerate(nb["intervals"] if nb else ()):
            res = None
            if b == len(nb["intervals"]) - 1:
                res = end_res
            elif hotres is not None and b < hotres.shape[0] and hotres[b] >= 0:
                res = round(float(hotres[b]), 6)
            rows.append({"t_ms": r["t_ms"],
                         "pages_per_tier": self.per_tier(r["pages_per_node"]),
                         "promotions": int(promoted[b]) if promoted is not None else 0,
                         "demotions": int(r.get("pgdemote_kswapd", 0))
                         + int(r.get("pgdemote_direct", 0)),
                         "hot_residency": res})
        rc = (data.get("reclaim") or {}).get("vmstat") or {}
        promos = ((nb or {}).get("vmstat") or {}).get("pgpromote_success", 0)
        return {"tiers": [{"name": n, "nodes": nodes} for n, nodes in self.tiers],
                "top_tier_nodes": [int(n) for n in np.flatnonzero(self.top)
                                   if n in sim.machine.memory_nodes],
                "hot_set": {"mass": HOT_MASS, "pages": int(hot.size) if hot is not None
                            else 0},
                "pages_per_tier": self.per_tier(total),
                "hot_residency": end_res,
                "promotions": int(promos),
                "demotions": int(rc.get("pgdemote_kswapd", 0)) + int(rc.get("pgdemote_direct", 0)),
                "intervals": rows}
