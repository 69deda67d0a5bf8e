"""A run's statistics as one JSON-ready document, and as a readable summary.

Units: times in cycles and seconds (``cycles / cpu_ghz``), latencies in ns, bandwidths in
GB/s (10^9 bytes/s).  ``bandwidth_GBps`` counts the bytes the program itself moves, as STREAM
counts them (a triad line step moves 3 x 64 bytes although the machine moves 4 lines), over
the measured phases (every phase but ``init`` and ``mbind`` unless the workload says
otherwise).  Controller and link bytes count every line the hardware moved: reads, reads for
ownership, write-backs and the zeroing of fresh pages -- in the phase in which the resource
served it (a write-back still queued when a phase ends is moved in the next one; one still
queued when the run ends is not counted), so no utilisation exceeds 100 %.

Counts: ``accesses`` is every memory request simulated (the program's reads, reads for
ownership and non-temporal writes, plus write-backs and the line writes that zero fresh
pages); ``program_accesses`` counts the program's loads and stores, including those served
without memory (zero page, LLC hits); ``memory_requests`` the program's requests that went to
memory (the latency statistics are over these).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numasim._version import __version__
from numasim.kernel_settings import describe
from numasim.machine import cpu as C
from numasim.machine.resources import KIND_NAMES

TIMELINE_POINTS = 64


@dataclass
class RunResult:
    """What one run measured.  :meth:`to_dict` is the JSON document."""

    data: dict[str, Any]
    host_seconds: float = 0.0
    histogram: np.ndarray | None = field(default=None, repr=False)
    # how the host ran it (the fast engine's host threads); never part of the JSON document
    host_note: str = ""

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("data")
        if data is not None and name in data:
            return data[name]
        raise AttributeError(name)

    def to_dict(self, host: bool = True) -> dict[str, Any]:
        out = dict(self.data)
        if host:
            out["host_seconds"] = round(self.host_seconds, 3)
        return out

    def to_json(self, host: bool = True, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(host), indent=indent, allow_nan=False) + "\n"

    def summary(self) -> str:
        return summary(self)

    def plot(self, path=None):
        """A 2x2 figure of this run (pages per node, latency CDF, bandwidth over time,
        controller and link utilisation); also saved to ``path`` (.png/.svg/.pdf) if given.
        Drawn by :func:`numasim.report.run_plot.plot_run`."""
        from numasim.report.run_plot import plot_run

        return plot_run(self, path)


def _r(x: float, nd: int = 6) -> float:
    """Round for the document: stable, short, never -0.0."""
    v = round(float(x), nd)
    return 0.0 if v == 0 else v


def _fast_forward(sim) -> dict:
    """Whether fast-forward sampled this run, and how much it skipped
    (:mod:`numasim.machine.fastforward`)."""
    ff = getattr(sim, "fast_forwarder", None)
    return {"on": False} if ff is None else ff.summary()


def build_result(sim) -> RunResult:
    ghz = sim.ghz
    ns = 1.0 / ghz
    st = sim.st
    cycles = float(sim.end_cycles)
    secs = cycles / (ghz * 1e9)
    hist = sim.hist.sum(axis=0)
    n_mem = float(st[:, C.ST_MEM].sum())
    lat_sum = float(st[:, C.ST_LAT_SUM].sum())
    accesses = int(st[:, C.ST_ACCESSES].sum())
    measured = [p for p in sim.phases if p.measured and p.end > p.start]
    if not measured:
        measured = [p for p in sim.phases if p.end > p.start]
    m_bytes = sum(p.bytes for p in measured)
    m_cycles = sum(p.end - p.start for p in measured)
    bw = m_bytes / (m_cycles / ghz) if m_cycles > 0 else 0.0  # bytes per ns = GB/s

    def lat_ns(q: float) -> float:
        return _r(C.hist_percentile(hist, q) * ns, 3)

    latency = {"mean": _r(lat_sum / n_mem * ns, 4) if n_mem else 0.0,
               "p50": lat_ns(0.50), "p95": lat_ns(0.95), "p99": lat_ns(0.99),
               "max": lat_ns(1.0),
               "queueing_mean": _r(float(st[:, C.ST_WAIT_SUM].sum()) / n_mem * ns, 4)
               if n_mem else 0.0}
    nz = np.flatnonzero(hist)
    edges = C.hist_edges()
    histogram = {"bin_start_ns": [_r(edges[b] * ns, 4) for b in nz],
                 "count": [int(hist[b]) for b in nz]}
    local = float(st[:, C.ST_LOCAL].sum())
    threads = []
    for c in range(sim.nthreads):
        s = st[c]
        tc = float(sim.thread_cycles[c])
        threads.append({
            # where the thread started (NUMA balancing's task placement may move an
            # unpinned one: numa_balancing.task_placement has its moves)
            "thread": c, "cpu": int(sim.cpus[c]),
            "node": int(sim.machine.cpu_to_node[int(sim.cpus[c])]),
            "cycles": _r(tc, 1), "seconds": _r(tc / (ghz * 1e9), 9),
            "accesses": int(s[C.ST_ACCESSES]), "memory_requests": int(s[C.ST_MEM]),
            "local_fraction": _r(s[C.ST_LOCAL] / s[C.ST_MEM], 6) if s[C.ST_MEM] else None,
            "latency_ns_mean": _r(s[C.ST_LAT_SUM] / s[C.ST_MEM] * ns, 4) if s[C.ST_MEM]
            else None,
            "bandwidth_GBps": _r(s[C.ST_BYTES] / (tc / ghz), 4) if tc > 0 else 0.0,
            "page_faults": int(s[C.ST_FAULTS]),
        })
    res = sim.res
    phases = [_phase_doc(sim, p) for p in sim.phases]
    resources = []
    for i, name in enumerate(res.names):
        nbytes = int(round(float(sim.res_lines[i]) * sim.line))
        cap = res.bandwidth_GBps[i] * secs * 1e9
        resources.append({"name": name, "kind": KIND_NAMES[int(res.kinds[i])],
                          "from": int(res.ends[i, 0]), "to": int(res.ends[i, 1]),
                          "bandwidth_GBps": _r(res.bandwidth_GBps[i], 4), "bytes": nbytes,
                          "utilisation": _r(nbytes / cap, 6) if cap > 0 else 0.0})
    faults = int(st[:, C.ST_FAULTS].sum())
    n_wb = int(st[:, C.ST_WRITEBACKS].sum())
    n_zero = int(st[:, C.ST_ZERO_LINES].sum())
    fcyc = float(st[:, C.ST_FAULT_CYCLES].sum())
    ppn = sim.pages_per_node()
    total_pages = {str(n): 0 for n in sim.machine.node_ids}
    for per in ppn.values():
        for n, v in per.items():
            total_pages[str(n)] += v
    data = {
        "numasim": __version__,
        "machine": sim.machine.name,
        "workload": sim.wl.name,
        "engine": sim.engine_name,
        "linux": sim.linux,
        "seed": sim.seed,
        "cpu_ghz": ghz,
        "runtime_s": _r(secs, 12),
        "cycles": _r(cycles, 1),
        "bandwidth_GBps": _r(bw, 4),
        "accesses": int(n_mem) + n_wb + n_zero,
        "program_accesses": accesses,
        "memory_requests": int(n_mem),
        "hits": int(st[:, C.ST_HITS].sum()),
        "accesses_per_cycle": _r((n_mem + n_wb + n_zero) / cycles, 6) if cycles else 0.0,
        "bytes_per_cycle": _r(float(st[:, C.ST_BYTES].sum()) / cycles, 6) if cycles else 0.0,
        "latency_ns": latency,
        "latency_histogram": histogram,
        "local_fraction": _r(local / n_mem, 6) if n_mem else None,
        "measured": _measured_doc(sim, measured, bw),
        "pages_per_node": {name: {str(n): v for n, v in per.items()}
                           for name, per in ppn.items()},
        "pages_per_node_total": total_pages,
        "numastat": {str(n): v for n, v in sim.numastat_delta().items()},
        "threads": threads,
        "phases": phases,
        "resources": resources,
        "page_faults": {"count": faults, "cycles": _r(fcyc, 1),
                        "mean_ns": _r(fcyc / faults * ns, 3) if faults else 0.0,
                        "zeroed_bytes": int(st[:, C.ST_ZERO_LINES].sum()) * sim.line,
                        "writebacks": int(st[:, C.ST_WRITEBACKS].sum())},
        "timeline": _timeline(sim, cycles),
        "config": {"mlp": sim.params.mlp, "write_allocate": sim.params.write_allocate,
                   "fault_ns": sim.params.fault_ns, "hit_ns": sim.params.hit_ns,
                   "llc": None if sim.params.llc is None else
                   {"size": sim.params.llc.size, "ways": sim.params.llc.ways,
                    "hit_ns": sim.params.llc.hit_ns},
                   "threads": sim.nthreads, "cpus": [int(c) for c in sim.cpus],
                   "numactl": list(sim.numactl),
                   "quantum": getattr(sim.eparams, "quantum", None),
                   "fast_forward": _fast_forward(sim)},
        "notes": list(dict.fromkeys(sim.notes)),
        "kernel_mm": describe(sim.machine, sim.k, balancing=sim.numab.on),
    }
    if sim.params.tlb is not None:
        data["tlb"] = _tlb_doc(sim, threads)
    if sim.numab.on:
        data["numa_balancing"] = sim.numab.series(cycles)
    if sim.kswapd.active():  # reclaim ran (kswapd_clock): its section, and its share per
        data["reclaim"] = sim.kswapd.series(cycles)  # interval of the balancing series
        if sim.numab.on:
            nb = data["numa_balancing"]
            for row, extra in zip(nb["intervals"],
                                  sim.kswapd.intervals(cycles, nb["interval_ms"]),
                                  strict=False):
                row.update((k, v) for k, v in extra.items() if k != "t_ms")
    if sim.numab.tier.on:  # more than one memory tier (machine.tiering)
        from numasim.machine.numab_clock import SM_PROMOTED

        on = sim.numab.on
        data["tiering"] = sim.numab.tier.report(
            data, sim.numab.samples[:, SM_PROMOTED] if on else None,
            sim.numab.hotres if on else None)
    if sim.numab.kh is not None:  # khugepaged ran on the clock (machine.khugepaged_clock)
        data["khugepaged"] = sim.numab.kh.report()
    return RunResult(data, sim.host_seconds, hist, getattr(sim, "host_note", ""))


def _tlb_doc(sim, threads: list[dict]) -> dict:
    """The TLB's section (:mod:`numasim.machine.tlb`), and its per-thread counts added to
    ``threads``: misses, page walks, walk latency, walk lines by the node holding the table."""
    st = sim.st
    ns = 1.0 / sim.ghz
    wn = sim.tlb[3]
    nodes = [int(n) for n in sim.machine.node_ids]
    for t in threads:
        s = st[t["thread"]]
        t["tlb_misses"] = int(s[C.ST_TLB_MISSES])
        t["page_walks"] = int(s[C.ST_WALKS])
    walks = int(st[:, C.ST_WALKS].sum())
    acc = int(st[:, C.ST_ACCESSES].sum())
    tp = sim.params.tlb
    return {"entries": tp.entries, "ways": tp.ways, "walk": tp.walk,
            "tlb_misses": int(st[:, C.ST_TLB_MISSES].sum()), "page_walks": walks,
            "miss_rate": _r(float(st[:, C.ST_TLB_MISSES].sum()) / acc, 6) if acc else None,
            "walk_ns_mean": _r(float(st[:, C.ST_WALK_CYC].sum()) / walks * ns, 4)
            if walks else None,
            "walk_lines_per_node": {str(n): int(wn[:, n].sum()) for n in nodes}}


# A workload's own figure, the one its users quote, per phase kernel: (name, unit, what).
# A workload's own figure, the one its users quote, per phase kernel:
# (name, unit, results-table column, what it is).
FIGURES = {
    "stream": ("STREAM", "GB/s", "stream_GBps",
               "bytes the program moves per second, as STREAM counts them"),
    "gups": ("GUPS", "GUP/s", "gups_GUPps",
             "giga-updates per second (random read-modify-writes)"),
    "pointer_chase": ("latency per load", "ns", "chase_ns_per_load",
                      "time of one dependent load, per thread"),
}


def workload_figure(kernel: str, seconds: float, nbytes: float, accesses: int,
                    thread_seconds: float) -> dict | None:
    """The customary figure of a phase of kind ``kernel`` (None for kinds without one):
    STREAM's GB/s, GUPS's GUP/s (one update is one program access), a pointer chase's ns
    per dependent load (time the threads spent over the loads they made)."""
    if kernel not in FIGURES or seconds <= 0 or accesses <= 0:
        return None
    name, unit, column, what = FIGURES[kernel]
    if kernel == "stream":
        value = nbytes / seconds / 1e9
    elif kernel == "gups":
        value = accesses / seconds / 1e9
    else:
        value = thread_seconds * 1e9 / accesses
    return {"name": name, "unit": unit, "value": _r(value, 6), "column": column,
            "what": what}


def _phase_doc(sim, p) -> dict:
    """One phase: its time, traffic, latency, locality, busy resources and own figure."""
    ghz, ns = sim.ghz, 1.0 / sim.ghz
    res = sim.res
    dc = p.end - p.start
    busy = {}
    for i, n in enumerate(p.res_lines):
        if n > 0 and dc > 0:
            gbps = n * sim.line / (dc / ghz)
            busy[res.names[i]] = {"GBps": _r(gbps, 4),
                                  "utilisation": _r(gbps / res.bandwidth_GBps[i], 6)}
    secs = dc / (ghz * 1e9)
    thread_secs = sum(p.thread_cycles) / (ghz * 1e9)
    doc = {"name": p.name, "kernel": p.kernel, "measured": p.measured,
            "start_cycles": _r(p.start, 1), "cycles": _r(dc, 1),
            "seconds": _r(secs, 9), "accesses": p.accesses,
            "bytes": int(p.bytes), "memory_requests": int(p.mem),
            "latency_ns_mean": _r(p.lat_sum / p.mem * ns, 4) if p.mem else None,
            "local_fraction": _r(p.local / p.mem, 6) if p.mem else None,
            "bandwidth_GBps": _r(p.bytes / (dc / ghz), 4) if dc > 0 else 0.0,
            "figure": workload_figure(p.kernel, secs, p.bytes, p.accesses, thread_secs),
            "resources": busy}
    if getattr(p, "numab", None) is not None:  # NUMA balancing on: this phase's share
        doc["numa_hint_faults"], doc["pages_migrated"] = p.numab
    return doc


def _measured_doc(sim, measured, bw: float) -> dict:
    """The scope of ``bandwidth_GBps``: the measured phases (initialisation left out), with
    their latency, locality and own figure over the same phases."""
    ghz = sim.ghz
    mem = sum(p.mem for p in measured)
    cycles = sum(p.end - p.start for p in measured)
    kinds = {p.kernel for p in measured}
    figure = None
    if len(kinds) == 1:  # one figure only when every measured phase is the same kind
        figure = workload_figure(kinds.pop(), cycles / (ghz * 1e9),
                                 sum(p.bytes for p in measured),
                                 sum(p.accesses for p in measured),
                                 sum(sum(p.thread_cycles) for p in measured) / (ghz * 1e9))
    return {"phases": [p.name for p in measured],
            "seconds": _r(cycles / (ghz * 1e9), 9),
            "bandwidth_GBps": _r(bw, 4),
            "latency_ns_mean": _r(sum(p.lat_sum for p in measured) / mem / ghz, 4)
            if mem else None,
            "local_fraction": _r(sum(p.local for p in measured) / mem, 6) if mem else None,
            "figure": figure}


def _timeline(sim, cycles: float) -> dict:
    """Bandwidth per memory node over time, in at most TIMELINE_POINTS intervals."""
    width = sim.tl_width
    used = int(np.ceil(cycles / width)) if cycles > 0 else 1
    used = max(1, min(used, sim.tl.shape[0]))
    tl = sim.tl[:used]
    group = max(1, int(np.ceil(used / TIMELINE_POINTS)))
    pad = (-used) % group
    if pad:
        tl = np.vstack([tl, np.zeros((pad, tl.shape[1]))])
    agg = tl.reshape(-1, group, tl.shape[1]).sum(axis=1)
    interval = width * group
    ns = interval / sim.ghz
    return {"interval_ns": _r(ns, 3),
            "bandwidth_GBps": {str(n): [_r(v / ns, 4) for v in agg[:, n]]
                               for n in sim.machine.memory_nodes}}


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _kernel_line(d: dict) -> str:
    """Which of the kernel's page-moving features were active (issue 10: every result
    says so)."""
    km = d.get("kernel_mm") or {"numa_balancing": 0, "thp": "never"}
    kh = d.get("khugepaged")
    khl = "" if kh is None else (f", khugepaged {kh['collapses']} collapses (scan_sleep "
                                 f"{kh['knobs']['scan_sleep_millisecs']} ms)")
    if not km["numa_balancing"]:
        return f"  kernel      NUMA balancing off (pages stay where they were placed), " \
               f"THP {km['thp']}{khl}"
    k = km["balancing_knobs"]
    nb = d.get("numa_balancing", {})
    mode = {1: "on", 2: "on in memory-tiering mode 2",
            3: "on in modes normal + memory tiering (3)"}.get(km["numa_balancing"],
                                                             f"on in mode {km['numa_balancing']}")
    return (f"  kernel      NUMA balancing {mode} (scan_delay {k['scan_delay_ms']} ms, period "
            f"{k['scan_period_min_ms']}-{k['scan_period_max_ms']} ms, scan_size "
            f"{k['scan_size_mb']} MiB): {nb.get('hint_faults', 0)} hinting faults, "
            f"{nb.get('pages_migrated', 0)} pages migrated{_placement_text(nb)}; "
            f"THP {km['thp']}{khl}")


def _placement_text(nb: dict) -> str:
    """Task placement in the kernel line: off, or what moved (threads that changed node)."""
    tp = nb.get("task_placement")
    if not tp:
        return ""
    if not tp["on"]:
        return ", task placement off"
    free = [t for t in tp["threads"] if not t["pinned"]]
    if not free:
        return ", threads pinned"
    moved = [f"{t['thread']}:{t['node_start']}->{t['node_end']}" for t in tp["threads"]
             if t["nr_migrations"]]
    return (f", {tp['numa_task_migrated']} task moves + {tp['numa_task_swapped']} swaps"
            + (f" (thread:node {' '.join(moved[:8])}{' ...' if len(moved) > 8 else ''})"
               if moved else ""))


def summary(result) -> str:
    """A readable report of a run."""
    d = result.to_dict()
    lines = [f"numasim {d['numasim']}: {d['workload']} on {d['machine']} "
             f"({d['engine']} engine, Linux {d['linux']}, seed {d['seed']})"]
    lines.append(f"  runtime     {d['runtime_s'] * 1e3:.4f} ms  ({d['cycles']:.0f} cycles at "
                 f"{d['cpu_ghz']} GHz)")
    m = d["measured"]
    fig = m["figure"]
    own = f"; {fig['name']} {fig['value']:.4g} {fig['unit']}" if fig else ""
    lines.append(f"  measured    {', '.join(m['phases']) or '-'}: {d['bandwidth_GBps']:.2f} GB/s "
                 f"(program bytes), latency mean {_num(m['latency_ns_mean'], '.1f')} ns, "
                 f"local {_num(m['local_fraction'], '.3f')}{own}")
    ff = d["config"]["fast_forward"]
    if ff["on"]:
        lines.append(f"  fast-forward on (window {ff['window']}, skip {ff['skip']:g}, "
                     f"tolerance {ff['tolerance']:g}): {ff['skipped_fraction']:.1%} of the "
                     f"simulated time skipped in {ff['skips']} stretch(es), advanced at "
                     "measured rates")
    lat = d["latency_ns"]
    lines.append(f"  whole run   latency mean {lat['mean']:.1f} ns  p50 {lat['p50']:.1f}  p95 "
                 f"{lat['p95']:.1f}  p99 {lat['p99']:.1f}  (queueing {lat['queueing_mean']:.1f}"
                 f" ns on average), local {_num(d['local_fraction'], '.3f')} "
                 "(initialisation included)")
    lines.append(f"  accesses    {d['program_accesses']} by the program ({d['memory_requests']} "
                 f"to memory, {d['hits']} hits); {d['accesses']} memory requests in all, "
                 f"{d['accesses_per_cycle']:.4f} per cycle")
    pf = d["page_faults"]
    lines.append(f"  page faults {pf['count']} (mean {pf['mean_ns']:.0f} ns each, "
                 f"{pf['zeroed_bytes'] / 2**20:.1f} MiB zeroed)")
    tl = d.get("tlb")
    if tl:
        where = "  ".join(f"{n}:{v}" for n, v in tl["walk_lines_per_node"].items())
        lines.append(f"  tlb         {tl['entries']} entries {tl['ways']}-way: "
                     f"{tl['tlb_misses']} misses ({_num(tl['miss_rate'], '.3f')} of the "
                     f"accesses), {tl['page_walks']} page walks (mean "
                     f"{_num(tl['walk_ns_mean'], '.1f')} ns), walk lines per node {where}")
    lines.append("  phases (each its own scope: time, program GB/s, mean latency, local "
                 "fraction, busiest resource):")
    for p in d["phases"]:
        note = "" if p["measured"] else "  (not measured)"
        busiest = max(p.get("resources", {}).items(), key=lambda kv: kv[1]["utilisation"],
                      default=None)
        busy = f"  {busiest[0]} {100 * busiest[1]['utilisation']:.0f}%" if busiest else ""
        f = p.get("figure")
        own = f"  {f['name']} {f['value']:.4g} {f['unit']}" if f and f["unit"] != "GB/s" \
            else ""
        lines.append(f"    {p['name']:<12} {p['kernel']:<13} {p['seconds'] * 1e3:10.4f} ms "
                     f"{p['bandwidth_GBps']:9.2f} GB/s {_num(p.get('latency_ns_mean'), '7.1f')}"
                     f" ns  local {_num(p.get('local_fraction'), '.3f')}{busy}{own}{note}")
    lines.append("  pages per node:")
    for name, per in d["pages_per_node"].items():
        lines.append(f"    {name:<16} " + "  ".join(f"{n}:{v}" for n, v in per.items()))
    lines.append("  threads (whole run, all phases: time busy, program bytes per second, "
                 "local fraction):")
    tp = (d.get("numa_balancing") or {}).get("task_placement") or {}
    ends = {x["thread"]: x for x in tp.get("threads", ()) if x["nr_migrations"]}
    for t in d["threads"]:
        lf = t["local_fraction"]
        e = ends.get(t["thread"])
        moved = f"  (moved {e['nr_migrations']}x, now cpu {e['cpu_end']} node " \
                f"{e['node_end']})" if e else ""
        lines.append(f"    {t['thread']:>3} cpu {t['cpu']:>4} node {t['node']:>2} "
                     f"{t['seconds'] * 1e3:10.4f} ms {t['bandwidth_GBps']:8.2f} GB/s  local "
                     f"{'-' if lf is None else f'{lf:.3f}'}{moved}")
    lines.append("  controllers and links over the whole run (busiest first):")
    busy = sorted(d["resources"], key=lambda r: (-r["utilisation"], r["name"]))
    for r in busy[:12]:
        if r["bytes"] == 0:
            continue
        lines.append(f"    {r['name']:<12} {r['bytes'] / 2**20:10.1f} MiB  "
                     f"{100 * r['utilisation']:6.2f}% of {r['bandwidth_GBps']:.1f} GB/s")
    lines.append("  numastat (delta): " + "; ".join(
        f"node {n}: hit {v['numa_hit']} miss {v['numa_miss']} foreign {v['numa_foreign']} "
        f"interleave {v['interleave_hit']}" for n, v in d["numastat"].items()))
    lines.append(_kernel_line(d))
    rc = d.get("reclaim")
    if rc:
        v = rc["vmstat"]
        lines.append(f"  reclaim     kswapd: {v.get('pgsteal_kswapd', 0)} pages reclaimed "
                     f"({v.get('pgdemote_kswapd', 0)} demoted), {rc['kswapd_cpu_ms']:.3f} ms "
                     f"CPU; direct: {v.get('pgsteal_direct', 0)} reclaimed "
                     f"({v.get('pgdemote_direct', 0)} demoted), {rc['direct_reclaim_ms']:.3f} "
                     f"ms; {v.get('pswpout', 0)} pages swapped out")
    tier = d.get("tiering")
    if tier:
        res = tier["hot_residency"]
        hot = (f"hot set ({tier['hot_set']['pages']} pages, {tier['hot_set']['mass']:.0%} of "
               f"the accesses) {res:.1%} in the top tier" if res is not None
               else "no zipf/kv hot set")
        lines.append("  tiering     " + ", ".join(f"{k} {v}" for k, v in
                                                  tier["pages_per_tier"].items())
                     + f" pages; {tier['promotions']} promoted, {tier['demotions']} demoted; "
                     + hot)
    for note in d["notes"]:
        lines.append(f"  note: {note}")
    lines.append(f"  simulated in {d['host_seconds']:.2f} s"
                 + (f" ({result.host_note})" if result.host_note else ""))
    return "\n".join(lines) + "\n"
