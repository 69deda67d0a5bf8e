"""The gathered results table: one row per point, in sweep order, plain columns.

Columns: ``point`` (its place in the sweep), ``key``, ``rep``, one column per swept axis (a
number when the value is one), ``series`` (the axes other than the plots' x, as one label),
``status``, what ran (``machine``, ``workload``, ``engine``, ``linux`` (the Linux
generation), ``numactl``,
``threads``, ``seed``), and what it measured:

* ``runtime_s`` and ``cycles`` of the whole run;
* over the measured phases (initialisation left out, as STREAM counts): ``bandwidth_GBps``,
  ``latency_mean_ns`` (memory requests), ``ns_per_access`` (per thread, cache hits included:
  for a pointer chase, the time of one dependent load);
  ``local_fraction_measured`` (memory requests served by the requesting CPU's node), and the
  workload's own figure: ``stream_GBps`` (STREAM), ``gups_GUPps`` (GUPS, giga-updates per
  second), ``chase_ns_per_load`` (pointer chase);
* over the whole run, initialisation included: ``latency_all_mean_ns`` and the percentiles
  ``latency_p50_ns``, ``latency_p95_ns``, ``latency_p99_ns``, ``latency_max_ns``,
  ``queueing_mean_ns``, ``local_fraction``/``remote_fraction`` of memory requests,
  ``accesses``, ``page_faults``, ``page_fault_mean_ns``, ``page_fault_ms`` (time in fault
  handlers, summed over the threads); ``pages_node<N>``: pages on each node at the end;
  the kernel's counters where the run has them: ``thp_fault_alloc``, ``thp_fault_fallback``
  (THP on), ``numa_pte_updates``, ``numa_hint_faults``, ``numa_hint_faults_local``,
  ``numa_pages_migrated``, ``pgmigrate_fail`` (NUMA balancing on); on a machine with memory
  tiers ``hot_residency`` (the zipf/kv hot set's share in the top tier at the end),
  ``tiering_promotions``, ``tiering_demotions`` (:mod:`numasim.machine.tiering`);
  ``util_<resource>``: busy fraction of each memory controller and link;
* per phase, ``phase.<name>.<metric>`` (e.g. ``phase.init.local_fraction``,
  ``phase.triad.util_mc0``): ``seconds``, ``bandwidth_GBps``, ``latency_mean_ns``,
  ``local_fraction`` and ``util_<resource>`` of that phase alone;
* ``error`` for a failed point.

Nothing in it depends on the computer or the number of workers, so a sweep gives the same
bytes wherever and however it runs.  Host time is in the point files only.
"""

from __future__ import annotations

import re
from typing import Any

SKIP_IN_SERIES = ("rep",)


def _d(x: Any) -> dict[str, Any]:
    """``x`` if it is a mapping, else an empty one (a damaged point file is read, not
    trusted)."""
    return x if isinstance(x, dict) else {}


def series_label(labels: dict[str, Any], x: str | None) -> str:
    parts = [str(v) for k, v in labels.items() if k != x and k not in SKIP_IN_SERIES]
    return ", ".join(parts) if parts else "all"


def resource_column(name: str) -> str:
    """``mc 0`` -> ``util_mc0``, ``link 0->1`` -> ``util_link0-1``."""
    return "util_" + re.sub(r"[^A-Za-z0-9_.-]", "", name.replace("->", "-"))


def _r(x: float, nd: int = 6) -> float:
    v = round(float(x), nd)
    return 0.0 if v == 0 else v


def _measured(res: dict[str, Any]) -> list[dict[str, Any]]:
    phases = res.get("phases") or []
    return [p for p in phases if p.get("measured")] or phases


def _measured_latency(res: dict[str, Any]) -> float | None:
    """Mean latency of the memory requests of the measured phases (ns)."""
    num = den = 0.0
    for p in _measured(res):
        n = p.get("memory_requests") or 0
        if n and p.get("latency_ns_mean") is not None:
            num += p["latency_ns_mean"] * n
            den += n
    if den == 0:
        return None
    return _r(num / den, 4)


def _ns_per_access(res: dict[str, Any]) -> float | None:
    """Time per access per thread in the measured phases (ns), cache hits included: for a
    pointer chase, the average latency of one dependent load."""
    ph = _measured(res)
    acc = sum(p.get("accesses") or 0 for p in ph)
    secs = sum(p.get("seconds") or 0.0 for p in ph)
    threads = (res.get("config") or {}).get("threads") or 1
    if acc == 0:
        return None
    return _r(secs * 1e9 * threads / acc, 4)


def _phase_columns(res: dict[str, Any], resources: list[str]) -> dict[str, Any]:
    """``phase.<name>.<metric>`` of every phase that ran (a repeated name gets ``#2``)."""
    out: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for p in res.get("phases") or []:
        if p.get("kernel") == "mbind":
            continue
        name = re.sub(r"[^A-Za-z0-9_-]", "_", str(p.get("name")))
        seen[name] = seen.get(name, 0) + 1
        pre = f"phase.{name}" + (f"#{seen[name]}" if seen[name] > 1 else "")
        out[f"{pre}.seconds"] = p.get("seconds")
        out[f"{pre}.bandwidth_GBps"] = p.get("bandwidth_GBps")
        out[f"{pre}.latency_mean_ns"] = p.get("latency_ns_mean")
        out[f"{pre}.local_fraction"] = p.get("local_fraction")
        busy = _d(p.get("resources"))
        for r in resources:
            out[f"{pre}.{resource_column(r)}"] = _d(busy.get(r)).get("utilisation", 0.0)
    return out


def _kernel_mm_columns(res: dict[str, Any]) -> dict[str, Any]:
    """Fault time and the kernel's NUMA-balancing and THP counters (/proc/vmstat names), so a
    sweep over THP or the balancing knobs can plot cost against benefit."""
    pf = _d(res.get("page_faults"))
    count, mean = pf.get("count"), pf.get("mean_ns")
    out: dict[str, Any] = {
        "page_fault_mean_ns": mean,
        # summed over the threads: the CPU time the run spent in fault handlers
        "page_fault_ms": (None if count is None or mean is None
                          else _r(count * mean / 1e6, 6)),
    }
    km = _d(res.get("kernel_mm"))
    out.update(_d(km.get("thp_vmstat")))
    nb = _d(res.get("numa_balancing"))
    vm = _d(nb.get("vmstat"))
    for k in ("numa_pte_updates", "numa_hint_faults", "numa_hint_faults_local",
              "numa_pages_migrated", "pgmigrate_fail", "pgpromote_success",
              "pgpromote_candidate", "pgdemote_kswapd", "pgdemote_direct"):
        if k in vm:
            out[k] = vm[k]
    ti = _d(res.get("tiering"))
    if ti:  # memory tiers (numasim.machine.tiering): the hot set's residency at the end
        out["hot_residency"] = ti.get("hot_residency")
        out["tiering_promotions"] = ti.get("promotions")
        out["tiering_demotions"] = ti.get("demotions")
    return out


def row_of(point: dict[str, Any], doc: dict[str, Any] | None, x: str | None) -> dict[str, Any]:
    labels = point["labels"]
    row: dict[str, Any] = {"point": point["index"], "key": point["key"], "rep": point["rep"]}
    row.update(labels)
    row["series"] = series_label(labels, x)
    if doc is None:
        row["status"] = "missing"
        return row
    cfg = _d(doc.get("config"))
    res = _d(doc.get("result"))
    row["status"] = doc["status"]
    w = _d(cfg.get("workload"))
    numactl = cfg.get("numactl") or []
    if not isinstance(numactl, list):
        numactl = [str(numactl)]
    standard = {
        "machine": _d(cfg.get("machine")).get("name"),
        "workload": res.get("workload") or w.get("kernel") or w.get("name"),
        "engine": cfg.get("engine"),
        "linux": cfg.get("linux", cfg.get("kernel")),  # 'kernel': points stored before the rename
        "numactl": " ".join(map(str, numactl)) if numactl else "default",
        "threads": _d(res.get("config")).get("threads",
                                             w.get("threads",
                                                   _d(w.get("overrides")).get("threads"))),
        "seed": cfg.get("seed"),
    }
    for k, v in standard.items():
        row.setdefault(k, v)
    if doc["status"] == "ok":
        lat = _d(res.get("latency_ns"))
        lf = res.get("local_fraction")
        row.update({
            "runtime_s": res.get("runtime_s"),
            "cycles": res.get("cycles"),
            "bandwidth_GBps": res.get("bandwidth_GBps"),
            "latency_mean_ns": _measured_latency(res),
            "ns_per_access": _ns_per_access(res),
            "latency_all_mean_ns": lat.get("mean"),
            "latency_p50_ns": lat.get("p50"),
            "latency_p95_ns": lat.get("p95"),
            "latency_p99_ns": lat.get("p99"),
            "latency_max_ns": lat.get("max"),
            "queueing_mean_ns": lat.get("queueing_mean"),
            "local_fraction": lf,
            "remote_fraction": None if lf is None else _r(1.0 - lf),
            "accesses": res.get("accesses"),
            "memory_requests": res.get("memory_requests"),
            "page_faults": _d(res.get("page_faults")).get("count"),
        })
        measured = _d(res.get("measured"))
        row["local_fraction_measured"] = measured.get("local_fraction")
        fig = measured.get("figure")
        if isinstance(fig, dict) and isinstance(fig.get("column"), str):
            row[fig["column"]] = fig.get("value")
        for n, v in _d(res.get("pages_per_node_total")).items():
            row[f"pages_node{n}"] = v
        row.update(_kernel_mm_columns(res))
        kinds = {}
        resources = res.get("resources")
        for r in resources if isinstance(resources, list) else []:
            if isinstance(r, dict) and r.get("kind") in ("controller", "link"):
                row[resource_column(r["name"])] = r.get("utilisation")
                kinds[r["name"]] = r.get("utilisation")
        row.update(_phase_columns(res, list(kinds)))
        row["error"] = ""
    else:
        err = _d(doc.get("error"))
        row["error"] = f"{err.get('type', 'Error')}: {err.get('message', '')}".strip()
    return row


def build_table(manifest: dict[str, Any], store) -> Any:
    """The DataFrame of a results folder (points without a result are left out)."""
    import pandas as pd

    x = manifest.get("x")
    rows = []
    for p in manifest["points"]:
        doc = store.read_point(p["key"])
        if doc is None:
            continue
        rows.append(row_of(p, doc, x))
    cols: dict[str, None] = {}
    for r in rows:
        for k in r:
            cols.setdefault(k, None)
    # the error column last, so the numbers stay together
    if "error" in cols:
        cols.pop("error")
        cols["error"] = None
    df = pd.DataFrame(rows, columns=list(cols))
    return _keep_integers(df, rows)


def _keep_integers(df: Any, rows: list[dict[str, Any]]) -> Any:
    """Integer columns stay integers when some rows have no value (a failed point): pandas
    would turn them into floats (``48.0``), so they become nullable ``Int64`` (empty in
    results.csv) instead."""
    for col in df.columns:
        vals = [r.get(col) for r in rows]
        present = [v for v in vals if v is not None]
        if len(present) == len(vals) or not present:
            continue
        if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            df[col] = pd_int_column(vals)
    return df


def pd_int_column(vals: list[Any]) -> Any:
    import pandas as pd

    return pd.array(vals, dtype="Int64")
