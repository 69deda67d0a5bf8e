"""The figures of a sweep (``numasim plot RESULTS``, and at the end of ``numasim sweep``).

One figure per question, each with a title, units on its axes and a legend:

* ``machine[-NAME]``: the machine (nodes, CPUs, memory, latency between nodes);
* ``throughput``: bandwidth per series (bars), or against the swept x (lines);
* ``latency``: mean memory-access latency per series (p50, p99 marked), or against x;
  with ``plot: {latency: loaded}``, against the busiest memory controller's bandwidth (a
  loaded-latency curve, as MLC ``--loaded_latency`` draws it), one panel per machine, with
  the machine's ``curve`` controller model (its calibration) drawn beside it;
* ``locality``: local vs remote memory accesses per series, stacked to 100 %;
* ``latency_cdf``: distribution of memory-access latency per series;
* ``pages_per_node``: where the pages ended up, per series (heatmap);
* ``bandwidth_timeline``: bandwidth of each memory node over time, one run per series, one
  time unit for every panel;
* ``utilisation``: busy fraction of every memory controller and interconnect link, over the
  whole run and in each phase (initialisation, then the measured phases);
* ``report.pdf``: all of the above, the machine on its first page.

A *series* is everything swept except the x axis (by default the thread count when it is
swept): a case label, a policy, a weight ratio.  Figures that show one run per series use the
run at the largest x, first repetition, and say so in their title.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from numasim.report import style as S
from numasim.report.data import SweepData, load_sweep

MAX_PANELS = 9
SIZE_AXES = ("size", "workload.size", "stride", "workload.stride")


# ----------------------------------------------------------------------- helpers
AXIS_LABELS = {"threads": "threads", "workload.threads": "threads",
               "size": "size (per array or buffer)",
               "workload.size": "size (per array or buffer)", "seed": "seed",
               "mlp": "miss slots per CPU", "cpu.mlp": "miss slots per CPU",
               "kernel": "Linux generation", "linux": "Linux generation"}


def _axis_label(name: str) -> str:
    return AXIS_LABELS.get(name, name)


def _fmt_x(name: str, v: Any) -> str:
    if name in SIZE_AXES:
        from numasim.units import human_bytes

        return human_bytes(float(v)).replace(" ", "")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _subject(data: SweepData) -> str:
    wl = ", ".join(data.workloads)
    ms = ", ".join(data.machines)
    return f"{wl} on {ms}"


def _legend_below(fig, ax, n: int) -> None:
    """The legend under the axes, inside the figure's constrained layout (a legend anchored
    below the axes by hand fell off the bottom of the saved file)."""
    ncol = 1 if n <= 3 else 2 if n <= 8 else 3
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)


def _by_series(data: SweepData):
    for i, s in enumerate(data.series):
        yield i, s, data.df[data.df["series"] == s]


# -------------------------------------------------------------------- throughput
def fig_throughput(data: SweepData):
    x = data.x
    with S.style():
        if x is None:
            n = len(data.series)
            fig = S.figure(8, 1.2 + 0.55 * n)
            ax = fig.add_subplot()
            labels, means, lo, hi = [], [], [], []
            for _, s, d in _by_series(data):
                labels.append(S.wrap(s, 34))
                means.append(d["bandwidth_GBps"].mean())
                lo.append(d["bandwidth_GBps"].min())
                hi.append(d["bandwidth_GBps"].max())
            y = np.arange(n)[::-1]
            bars = ax.barh(y, means, color=[S.colour(i) for i in range(n)], height=0.6,
                           edgecolor="black", linewidth=0.5)
            for i, b in enumerate(bars):
                b.set_hatch(S.hatch(i))
            if any(h > lo_ for h, lo_ in zip(hi, lo, strict=True)):
                ax.errorbar(means, y, xerr=[np.subtract(means, lo), np.subtract(hi, means)],
                            fmt="none", ecolor="black", capsize=3, label="min-max of runs")
                ax.legend(loc="lower right")
            for yi, v in zip(y, means, strict=True):
                ax.text(v, yi, f" {v:.1f}", va="center", ha="left", fontsize=9)
            ax.set_yticks(y, labels)
            ax.set_xlabel("bandwidth (GB/s, bytes the program moves, STREAM-style)")
            ax.set_xlim(0, max(max(hi), 1e-9) * 1.18)
            ax.grid(axis="y", visible=False)
        else:
            fig = S.figure(8, 5)
            ax = fig.add_subplot()
            _lines(ax, data, "bandwidth_GBps")
            ax.set_ylabel("bandwidth (GB/s)")
            ax.set_ylim(bottom=0)
            _legend_below(fig, ax, len(data.series))
        ax.set_title(f"Throughput per {_what(data)}\n{_subject(data)}")
    return fig


def _what(data: SweepData) -> str:
    axes = [a for a in data.manifest.get("axes", []) if a != data.x]
    if axes == ["case"] or not axes:
        return "case"
    return " and ".join(_axis_label(a).split(" (")[0] for a in axes)


def _xpos(data: SweepData, values) -> np.ndarray:
    """Positions on the x axis: the values themselves if numeric, else their rank."""
    if data.x_numeric:
        return np.asarray(list(values), dtype=float)
    order = data.x_values()
    return np.asarray([order.index(v) for v in values], dtype=float)


def _lines(ax, data: SweepData, col: str) -> None:
    """One line per series of ``col`` (mean over repetitions, min-max band) against x."""
    x = data.x
    for i, s, d in _by_series(data):
        g = d.groupby(x, sort=False)[col]
        keys = [v for v in data.x_values() if v in g.groups]
        xs = _xpos(data, keys)
        m = g.mean().reindex(keys).to_numpy(dtype=float)
        lo = g.min().reindex(keys).to_numpy(dtype=float)
        hi = g.max().reindex(keys).to_numpy(dtype=float)
        ax.plot(xs, m, marker=S.marker(i), color=S.colour(i), label=S.wrap(s, 40),
                linewidth=1.8, linestyle=("-", "--", "-.", ":")[i % 4])
        if np.any(hi - lo > 0):
            ax.fill_between(xs, lo, hi, color=S.colour(i), alpha=0.15, linewidth=0)
    _x_axis(ax, data)


def _x_axis(ax, data: SweepData) -> None:
    x = data.x
    vals = data.x_values()
    pos = _xpos(data, vals)
    if data.x_numeric and len(vals) > 2 and all(v > 0 for v in vals) and \
            vals[-1] / vals[0] >= 8:
        ax.set_xscale("log", base=2)
    ax.set_xticks(pos, [_fmt_x(x, v) for v in vals])
    ax.minorticks_off()
    ax.set_xlabel(_axis_label(x))


# ----------------------------------------------------------------------- latency
def fig_latency(data: SweepData):
    """Mean latency per series (bars), or against x (lines): of memory requests in the
    measured phases, or per access with cache hits (``plot: {latency: per-access}``)."""
    if data.manifest.get("latency") == "loaded":
        return fig_loaded_latency(data)
    per_access = data.manifest.get("latency") == "per-access"
    col = "ns_per_access" if per_access else "latency_mean_ns"
    if col not in data.df.columns or data.df[col].isna().all():
        return None
    what = ("time per access per thread (ns, cache hits included)" if per_access else
            "mean memory-access latency (ns, measured phases)")
    with S.style():
        if data.x is None:
            n = len(data.series)
            fig = S.figure(8, 1.2 + 0.55 * n)
            ax = fig.add_subplot()
            y = np.arange(n)[::-1]
            mean = [_mean(d[col]) for _, _, d in _by_series(data)]
            bars = ax.barh(y, mean, color=[S.colour(i) for i in range(n)], height=0.6,
                           edgecolor="black", linewidth=0.5)
            for i, b in enumerate(bars):
                b.set_hatch(S.hatch(i))
            for yi, v in zip(y, mean, strict=True):
                ax.text(v, yi, f" {v:.0f} ns", va="center", ha="left", fontsize=9)
            ax.set_yticks(y, [S.wrap(s, 34) for s in data.series])
            ax.set_xlabel(what)
            ax.set_xlim(0, max(max(mean), 1e-9) * 1.18)
            ax.grid(axis="y", visible=False)
        else:
            fig = S.figure(8, 5)
            ax = fig.add_subplot()
            _lines(ax, data, col)
            ax.set_ylabel(what)
            ax.set_ylim(bottom=0)
            _legend_below(fig, ax, len(data.series))
        ax.set_title(f"{'Time per access' if per_access else 'Memory-access latency'} per "
                     f"{_what(data)}\n{_subject(data)}")
    return fig


# ---------------------------------------------------------------- loaded latency
def _busiest_controller(doc: dict[str, Any]) -> tuple[str, float] | None:
    """(controller, utilisation) of the busiest memory controller over a point's measured
    phases (time-weighted)."""
    busy: dict[str, float] = {}
    total = 0.0
    for ph in doc.get("result", {}).get("phases", []):
        if not ph.get("measured"):
            continue
        sec = float(ph.get("seconds") or 0.0)
        total += sec
        for name, r in (ph.get("resources") or {}).items():
            if name.startswith("mc "):
                busy[name] = busy.get(name, 0.0) + sec * float(r.get("utilisation", 0.0))
    if not busy or total <= 0:
        return None
    name = max(busy, key=busy.get)
    return name, busy[name] / total


def _calibration(machine_doc: dict[str, Any], mc: str):
    """(utilisation %, latency ns) of the ``curve`` model of controller ``mc`` (idle = the
    local latency of its node), or None for a model without a curve."""
    from numasim.experiments.point import point_machine
    from numasim.memctrl import make_model

    m = point_machine(machine_doc["name"], machine_doc["yaml"])
    nid = int(mc.split()[1])
    spec = m.controller_spec(nid)
    if spec is None or spec.impl != "curve":
        return None
    model = make_model(spec, m.mc_bandwidth(nid), m.cache_line, m.cpu_ghz)
    u, w = model.wait_table()
    idle = m.latency_ns[m.index_of(nid)][m.index_of(nid)]
    return u * 100.0, idle + w / m.cpu_ghz


def fig_loaded_latency(data: SweepData):
    """Mean memory latency against the busiest controller's utilisation, per series, one
    panel per machine."""
    rows: dict[str, dict[str, list]] = {}
    calib: dict[str, Any] = {}
    for _, s, d in _by_series(data):
        for _, row in d.iterrows():
            doc = data.docs.get(row["key"])
            got = _busiest_controller(doc) if doc else None
            if got is None or row.get("latency_mean_ns") is None:
                continue
            mname = row["machine"]
            rows.setdefault(mname, {}).setdefault(s, []).append(
                (got[1] * 100.0, float(row["latency_mean_ns"])))
            if calib.get(mname) is None:
                calib[mname] = _calibration(doc["config"]["machine"], got[0])
    if not rows:
        return None
    machines = list(rows)
    with S.style():
        fig = S.figure(5.2 * len(machines) + 0.6, 5.6)
        series = data.series
        for k, mname in enumerate(machines):
            ax = fig.add_subplot(1, len(machines), k + 1)
            if calib.get(mname) is not None:
                cu, cl = calib[mname]
                ax.plot(cu, cl, color="grey", linewidth=3, alpha=0.5,
                        label="calibration: the machine's curve (MLC)")
            for s, pts in rows[mname].items():
                i = series.index(s)
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=S.marker(i),
                        color=S.colour(i), linestyle=("-", "--", "-.", ":")[i % 4],
                        label=S.wrap(s, 36))
            ax.set_xlim(0, 105)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("busiest memory controller's bandwidth (% of its peak)")
            if k == 0:
                ax.set_ylabel("mean memory-access latency (ns, measured phases)")
            ax.set_title(mname, fontsize=10)
            ax.legend(loc="upper left", fontsize=7, frameon=False)
        fig.suptitle(f"Loaded latency: latency against bandwidth as the delay between "
                     f"accesses is swept\n{_subject(data)}", fontweight="bold")
    return fig


# ---------------------------------------------------------------------- locality
def fig_locality(data: SweepData):
    x = data.x
    with S.style():
        if x is None:
            n = len(data.series)
            fig = S.figure(8, 1.3 + 0.5 * n)
            ax = fig.add_subplot()
            y = np.arange(n)[::-1]
            local = [100 * _mean(d["local_fraction"]) for _, _, d in _by_series(data)]
            remote = [100 - v for v in local]
            ax.barh(y, local, color=S.LOCAL_COLOUR, height=0.6, label="local",
                    edgecolor="black", linewidth=0.5)
            ax.barh(y, remote, left=local, color=S.REMOTE_COLOUR, height=0.6, hatch="//",
                    label="remote", edgecolor="black", linewidth=0.5)
            for yi, v in zip(y, local, strict=True):
                ax.text(50, yi, f"{v:.0f}% local", va="center", ha="center", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.25", "facecolor": "white",
                              "edgecolor": "none", "alpha": 0.9})
            ax.set_yticks(y, [S.wrap(s, 34) for s in data.series])
            ax.set_xlim(0, 100)
            ax.set_xlabel("memory accesses (%)")
            ax.grid(axis="y", visible=False)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25 if n < 4 else -0.12),
                      ncol=2, frameon=False)
            ax.set_title(f"Local vs remote memory accesses per {_what(data)}\n"
                         f"{_subject(data)}", pad=16)
            ax.text(0.5, 1.01, "whole run, initialisation included", transform=ax.transAxes,
                    ha="center", va="bottom", fontsize=8, style="italic")
            return fig
        panels = data.series[:MAX_PANELS]
        cols = min(3, len(panels))
        rows = (len(panels) + cols - 1) // cols
        fig = S.figure(3.2 * cols + 0.6, 2.6 * rows + 1.0)
        axs = fig.subplots(rows, cols, squeeze=False, sharey=True)
        xs_all = data.x_values()
        for k, s in enumerate(panels):
            ax = axs[k // cols][k % cols]
            d = data.df[data.df["series"] == s]
            g = d.groupby(x, sort=False)["local_fraction"].mean()
            pos = np.array([xs_all.index(v) for v in g.index])
            loc = 100 * g.to_numpy(dtype=float)
            ax.bar(pos, loc, color=S.LOCAL_COLOUR, label="local", edgecolor="black",
                   linewidth=0.4)
            ax.bar(pos, 100 - loc, bottom=loc, color=S.REMOTE_COLOUR, hatch="//",
                   label="remote", edgecolor="black", linewidth=0.4)
            ax.set_xticks(range(len(xs_all)), [_fmt_x(x, v) for v in xs_all])
            ax.set_ylim(0, 100)
            ax.set_title(S.wrap(s, 36), fontsize=9)
            ax.set_xlabel(_axis_label(x))
            ax.grid(axis="x", visible=False)
            if k % cols == 0:
                ax.set_ylabel("memory accesses (%)")
        for k in range(len(panels), rows * cols):
            axs[k // cols][k % cols].set_visible(False)
        handles, labels = axs[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)
        fig.suptitle(f"Local vs remote memory accesses (whole run, initialisation included)\n"
                     f"{_subject(data)}", fontweight="bold")
        return fig


def _mean(col) -> float:
    v = col.dropna()
    return float(v.mean()) if len(v) else 0.0


# ------------------------------------------------------------------- latency CDF
def _cdf(result: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    h = result.get("latency_histogram") or {}
    starts = np.asarray(h.get("bin_start_ns") or [], dtype=float)
    counts = np.asarray(h.get("count") or [], dtype=float)
    if counts.sum() <= 0:
        return None
    order = np.argsort(starts)
    starts, counts = starts[order], counts[order]
    return starts, np.cumsum(counts) / counts.sum()


def _at(data: SweepData, xv) -> str:
    if data.x is None or xv is None:
        return ""
    return f" (one run per series, {_axis_label(data.x)} = {_fmt_x(data.x, xv)})"


def fig_latency_cdf(data: SweepData):
    with S.style():
        fig = S.figure(8, 5)
        ax = fig.add_subplot()
        xv = None
        drawn = 0
        for i, s in enumerate(data.series):
            run = data.one_run(s)
            if run is None:
                continue
            key, xv = run
            c = _cdf(data.result(key))
            if c is None:
                continue
            xs, ys = c
            ax.step(xs, ys, where="post", color=S.colour(i), label=S.wrap(s, 40),
                    linewidth=1.8, linestyle=("-", "--", "-.", ":")[i % 4])
            drawn += 1
        if not drawn:
            return None
        lo, hi = ax.get_xlim()
        scale = ""
        if lo > 0 and hi / lo > 10:
            from matplotlib.ticker import LogLocator, ScalarFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            fmt = ScalarFormatter()
            fmt.set_scientific(False)
            ax.xaxis.set_major_formatter(fmt)
            ax.minorticks_off()
            scale = ", log scale"
        ax.set_xlabel(f"memory-access latency (ns{scale})")
        ax.set_ylabel("fraction of memory accesses ≤ latency")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"Latency distribution of memory requests\n{_subject(data)}", pad=16)
        ax.text(0.5, 1.01, f"whole run, initialisation included{_at(data, xv)}",
                transform=ax.transAxes, ha="center", va="bottom", fontsize=8, style="italic")
        _legend_below(fig, ax, drawn)
    return fig


# --------------------------------------------------------------- pages per node
def _heatmap(ax, matrix: np.ndarray, rows: list[str], cols: list[str], *, vmax: float,
             fmt, cbar_label: str, fig, annotate: bool = True):
    im = ax.imshow(matrix, cmap=S.HEATMAP, vmin=0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45 if len(cols) > 6 else 0,
                  ha="right" if len(cols) > 6 else "center")
    ax.set_yticks(range(len(rows)), [S.wrap(r, 34) for r in rows])
    ax.grid(False)
    if annotate and len(cols) <= 16:
        for r in range(matrix.shape[0]):
            for c in range(matrix.shape[1]):
                v = matrix[r, c]
                if np.isnan(v):
                    continue
                ax.text(c, r, fmt(v), ha="center", va="center", fontsize=8,
                        color="black" if v > 0.6 * vmax else "white")
    cb = fig.colorbar(im, ax=ax, shrink=0.9)
    cb.set_label(cbar_label)
    return im


def fig_pages(data: SweepData):
    machines = data.machines
    with S.style():
        n = len(data.series)
        fig = S.figure(8, 1.4 + (0.45 * n + 0.9) * len(machines))
        axs = fig.subplots(len(machines), 1, squeeze=False)
        xv = None
        for mi, mname in enumerate(machines):
            ax = axs[mi][0]
            series = [s for s in data.series
                      if (data.df[(data.df["series"] == s)]["machine"] == mname).any()]
            nodes: list[str] = []
            rows = []
            for s in series:
                run = data.one_run(s)
                if run is None:
                    continue
                key, xv = run
                ppn = data.result(key).get("pages_per_node_total") or {}
                for k in ppn:
                    if k not in nodes:
                        nodes.append(k)
                rows.append((s, ppn))
            if not rows:
                continue
            nodes.sort(key=int)
            mat = np.array([[float(p.get(nd, 0)) for nd in nodes] for _, p in rows])
            tot = mat.sum(axis=1, keepdims=True)
            pct = np.divide(100 * mat, tot, out=np.zeros_like(mat), where=tot > 0)
            _heatmap(ax, pct, [s for s, _ in rows], [f"node {nd}" for nd in nodes], vmax=100,
                     fmt=lambda v: f"{v:.0f}%", cbar_label="share of the run's pages (%)",
                     fig=fig)
            ax.set_xlabel(f"memory node ({mname})")
        fig.suptitle(f"Where the pages are: pages per node{_at(data, xv)}\n{_subject(data)}",
                     fontweight="bold")
    return fig


# ------------------------------------------------------------- kernel mm: faults, balance
def _panel(ax, data: SweepData, col: str, label: str, fmt: str = "{:.3g}",
           log: bool = False) -> None:
    """``col`` against x (one line per series; ``log``: a log y axis, for a quantity that
    grows with the x axis over decades), or one bar per series without an x axis."""
    if data.x is not None:
        _lines(ax, data, col)
        ax.set_ylabel(label)
        if log and (data.df[col].fillna(0) > 0).all():
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        return
    labels, vals = [], []
    for _, s, d in _by_series(data):
        labels.append(S.wrap(s, 30))
        vals.append(float(d[col].fillna(0).mean()) if col in d else 0.0)
    y = np.arange(len(vals))[::-1]
    ax.barh(y, vals, color=[S.colour(i) for i in range(len(vals))], height=0.6,
            edgecolor="black", linewidth=0.5)
    for yi, v in zip(y, vals, strict=True):
        ax.text(v, yi, " " + fmt.format(v), va="center", ha="left", fontsize=8)
    ax.set_yticks(y, labels)
    ax.set_xlabel(label)
    ax.set_xlim(0, max(max(vals, default=0), 1e-9) * 1.25)
    ax.grid(axis="y", visible=False)


def fig_kernel_mm(data: SweepData):
    """What THP and NUMA balancing cost and do, per point: time in page faults, the share of
    the pages on node 0, hinting faults and migrations.  Drawn only for sweeps where THP or
    NUMA balancing was on somewhere (otherwise the standard figures say it all)."""
    df = data.df
    thp = "thp_fault_alloc" in df and bool((df["thp_fault_alloc"].fillna(0) > 0).any())
    numab = "numa_hint_faults" in df and bool(df["numa_hint_faults"].notna().any())
    if not (thp or numab) or "page_fault_ms" not in df:
        return None
    df = df.copy()
    nodes = sorted((c for c in df if re.fullmatch(r"pages_node\d+", c)),
                   key=lambda c: int(c[10:]))
    if nodes:
        tot = df[nodes].fillna(0).sum(axis=1).replace(0, np.nan)
        df["node0_share"] = 100 * df[nodes[0]].fillna(0) / tot
    for c in ("numa_hint_faults", "numa_pages_migrated"):
        if c not in df:
            df[c] = np.nan
    view = SweepData(data.root, data.manifest, df, data.docs)
    panels = [("page_fault_ms", "time in page faults (ms, all threads)", "{:.2f}")]
    if nodes:
        panels.append(("node0_share", "pages on node 0 (% of the run's pages)", "{:.1f}"))
    if numab:
        panels += [("numa_hint_faults", "NUMA hinting faults", "{:.0f}"),
                   ("numa_pages_migrated", "pages migrated (numa_pages_migrated)", "{:.0f}")]
    return _panels_figure(view, panels, "Page faults, balance between nodes, NUMA balancing's "
                          "work", log=("page_fault_ms",))


def _panels_figure(view: SweepData, panels: list[tuple[str, str, str]], title: str,
                   log: tuple[str, ...] = ()):
    """One panel per (column, label, format), stacked, sharing the x axis when the sweep has
    one; the series' legend below the last."""
    with S.style():
        n = len(panels)
        if view.x is None:
            fig = S.figure(8, n * (0.6 + 0.42 * len(view.series)) + 1.0)
            axs = fig.subplots(n, 1, squeeze=False)[:, 0]
        else:
            fig = S.figure(8, 2.9 * n + 1.2)
            axs = fig.subplots(n, 1, squeeze=False, sharex=True)[:, 0]
        for ax, (col, label, fmt) in zip(axs, panels, strict=True):
            _panel(ax, view, col, label, fmt, log=col in log)
        if view.x is not None:
            _legend_below(fig, axs[-1], len(view.series))
        fig.suptitle(f"{title}\n{_subject(view)}", fontweight="bold")
    return fig


def fig_tiering(data: SweepData):
    """Memory tiering per point: the hot set's share in the top tier at the end, the pages
    promoted and demoted (:mod:`numasim.machine.tiering`).  Drawn only when the sweep ran on
    a machine with memory tiers and a zipf/kv workload."""
    df = data.df
    if "hot_residency" not in df or not bool(df["hot_residency"].notna().any()):
        return None
    df = df.copy()
    for c in ("tiering_promotions", "tiering_demotions"):
        df[c] = df[c].fillna(0) if c in df else 0
    view = SweepData(data.root, data.manifest, df, data.docs)
    panels = [("hot_residency", "hot set in the top tier at the end (fraction)", "{:.3f}"),
              ("tiering_promotions", "pages promoted", "{:.0f}"),
              ("tiering_demotions", "pages demoted (kswapd + direct)", "{:.0f}")]
    return _panels_figure(view, panels, "Memory tiering: the hot set, promotions, demotions")


def fig_tiering_timeline(data: SweepData):
    """The hot set's share in the top tier over time, one line per point that has the
    per-interval series (NUMA balancing on; the first repetition, at most MAX_PANELS), and
    the pages promoted per interval: how fast tiering follows."""
    runs = []
    df = data.df
    for _, r in df.iterrows():
        if "rep" in df and r["rep"] != df["rep"].min() or len(runs) >= MAX_PANELS:
            continue
        rows = (data.result(r["key"]).get("tiering") or {}).get("intervals") or []
        if rows:
            label = r["series"] if data.x is None else \
                f"{r['series']}, {data.x} {_fmt_x(data.x, r[data.x])}"
            runs.append((label, rows))
    if not runs:
        return None
    with S.style():
        fig = S.figure(9, 7.5)
        ax, bx = fig.subplots(2, 1, sharex=True)
        for i, (s, rows) in enumerate(runs):
            t = [float(r["t_ms"]) for r in rows]
            res = [np.nan if r["hot_residency"] is None else r["hot_residency"] for r in rows]
            ax.plot(t, res, color=S.colour(i), linewidth=1.6)
            bx.step(t, [r["promotions"] for r in rows], where="pre", color=S.colour(i),
                    linewidth=1.2, label=S.wrap(s, 40))
        ax.set_ylabel("hot set in the top tier")
        ax.set_ylim(0, 1.05)
        bx.set_ylabel("pages promoted per interval")
        bx.set_xlabel("simulated time (ms)")
        bx.set_ylim(bottom=0)
        _legend_below(fig, bx, len(runs))
        fig.suptitle(f"Memory tiering over time\n{_subject(data)}", fontweight="bold")
    return fig


# ------------------------------------------------------------- bandwidth timeline
def _timelines(data: SweepData, panels: list[str]):
    """[(series, x value, interval ns, {node: GB/s per interval}) or None] per panel."""
    out = []
    for s in panels:
        run = data.one_run(s)
        tl = (data.result(run[0]).get("timeline") or {}) if run else {}
        step = float(tl.get("interval_ns") or 0)
        series = tl.get("bandwidth_GBps") or {}
        out.append((s, run[1], step, series) if run and series and step > 0 else None)
    return out


def fig_timeline(data: SweepData):
    panels = data.series[:MAX_PANELS]
    runs = _timelines(data, panels)
    if not any(runs):
        return None
    longest = max(r[2] * max(len(v) for v in r[3].values()) for r in runs if r)
    unit, div = S.time_unit(longest)  # one unit for every panel
    with S.style():
        cols = min(3, len(panels))
        rows = (len(panels) + cols - 1) // cols
        fig = S.figure(3.4 * cols + 0.6, 2.5 * rows + 1.2)
        # one bandwidth scale for every panel, so they compare at a glance (and the inner
        # panels need no tick labels of their own)
        axs = fig.subplots(rows, cols, squeeze=False, sharey=True)
        xv = None
        ymax = 0.0
        handles: dict[str, Any] = {}
        for k, r in enumerate(runs):
            ax = axs[k // cols][k % cols]
            if r is None:
                ax.set_visible(False)
                continue
            s, xv, step, series = r
            n = max(len(v) for v in series.values())
            t = (np.arange(n) + 0.5) * step / div
            for j, (node, vals) in enumerate(series.items()):
                (h,) = ax.plot(t[:len(vals)], vals, color=S.colour(j),
                               linestyle=("-", "--", "-.", ":")[j % 4], linewidth=1.5,
                               label=f"node {node}")
                handles.setdefault(f"node {node}", h)
                ymax = max(ymax, max(vals, default=0.0))
            ax.set_title(S.wrap(s, 36), fontsize=9)
            ax.set_xlabel(f"simulated time ({unit})")
            if k % cols == 0:
                ax.set_ylabel("bandwidth (GB/s)")
        for k in range(len(panels), rows * cols):
            axs[k // cols][k % cols].set_visible(False)
        axs[0][0].set_ylim(0, ymax * 1.08 if ymax > 0 else 1)
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=min(len(handles), 8), frameon=False, title="memory traffic at")
        more = "" if len(data.series) <= MAX_PANELS else \
            f" (first {MAX_PANELS} of {len(data.series)} series)"
        fig.suptitle(f"Bandwidth of each memory node over time{_at(data, xv)}{more}\n"
                     f"{_subject(data)}", fontweight="bold")
    return fig


# ------------------------------------------------------------------ utilisation
MAX_LINK_COLUMNS = 8
LINK_RE = __import__("re").compile(r"(\d+)\s*->\s*(\d+)")


def _utilisation_rows(data: SweepData, mname: str):
    """[(series, {resource name: (kind, from, to, busy %)})] over the whole run for one
    machine; x value; and the heatmap's rows: per series the whole run, then each phase."""
    rows = []
    heat = []
    xv = None
    for s in data.series:
        if not (data.df[data.df["series"] == s]["machine"] == mname).any():
            continue
        run = data.one_run(s)
        if run is None:
            continue
        key, xv = run
        util = {}
        for r in data.result(key).get("resources") or []:
            if r.get("kind") not in ("controller", "link"):
                continue
            a, b = r.get("from"), r.get("to")
            m = LINK_RE.search(r["name"])
            if (a is None or b is None) and m:
                a, b = int(m.group(1)), int(m.group(2))
            util[r["name"]] = (r["kind"], a, b, 100 * float(r.get("utilisation") or 0))
        rows.append((s, util))
        phases = [p for p in data.result(key).get("phases") or []
                  if "resources" in p and (p.get("cycles") or p.get("seconds"))]
        heat.append((f"{s} · whole run" if phases else s, util))
        for p in phases:
            busy = p["resources"]
            label = f"{s} · {p['name']}" + ("" if p.get("measured") else " (not measured)")
            heat.append((label,
                         {nm: v[:3] + (100 * float((busy.get(nm) or {}).get("utilisation")
                                                   or 0),)
                          for nm, v in util.items()}))
    return rows, xv, heat


def fig_utilisation(data: SweepData):
    """Busy fraction of controllers and links, one run per series.  With few links: one
    heatmap (series x resource).  With many (an 8-node mesh has 56): controllers in one
    heatmap, then per series a from -> to matrix of link utilisation."""
    machines = data.machines
    per_machine = {m: _utilisation_rows(data, m) for m in machines}
    many = [m for m, (rows, _, _) in per_machine.items()
            if rows and sum(1 for v in rows[0][1].values() if v[0] == "link")
            > MAX_LINK_COLUMNS]
    n = max(len(heat) for _, _, heat in per_machine.values())
    link_panels = data.series[:MAX_PANELS] if many else []
    cols = min(3, len(link_panels)) if link_panels else 1
    link_rows = (len(link_panels) + cols - 1) // cols if link_panels else 0
    with S.style():
        top_h = (0.45 * n + 1.1) * len(machines)
        fig = S.figure(9.5 if many else 9, 1.6 + top_h + 3.0 * link_rows)
        gs = fig.add_gridspec(len(machines) + link_rows, cols,
                              height_ratios=[0.45 * n + 1.1] * len(machines) + [3.0] * link_rows)
        xv = None
        drawn = False
        for mi, mname in enumerate(machines):
            ax = fig.add_subplot(gs[mi, :])
            _, x_here, rows = per_machine[mname]
            xv = x_here if x_here is not None else xv
            if not rows:
                ax.set_visible(False)
                continue
            names: list[str] = []
            for _, u in rows:
                for nm, v in u.items():
                    if nm not in names and (mname not in many or v[0] == "controller"):
                        names.append(nm)
            if not names:
                ax.set_visible(False)
                continue
            mat = np.array([[u[nm][3] if nm in u else np.nan for nm in names]
                            for _, u in rows])
            vmax = max(100.0, float(np.nanmax(mat)) if mat.size else 100.0)
            labels = [nm.replace("mc ", "controller ").replace("->", "→") for nm in names]
            _heatmap(ax, mat, [s for s, _ in rows], labels, vmax=vmax,
                     fmt=lambda v: f"{v:.0f}%", cbar_label="busy (% of its bandwidth)",
                     fig=fig)
            for i, (label, _) in enumerate(rows):  # a white rule between series
                if i and label.endswith("· whole run"):
                    ax.axhline(i - 0.5, color="white", linewidth=2.5)
            what = "memory controller" if mname in many else \
                "memory controller or interconnect link"
            ax.set_xlabel(f"{what} ({mname})")
            drawn = True
        if many:
            mname = many[0]
            rows = dict(per_machine[mname][0])
            nodes = sorted({x for u in rows.values() for v in u.values() if v[0] == "link"
                            for x in (v[1], v[2]) if x is not None})
            idx = {nd: i for i, nd in enumerate(nodes)}
            vmax = max([100.0] + [v[3] for u in rows.values() for v in u.values()
                                  if v[0] == "link"])
            im = None
            for k, s in enumerate(link_panels):
                ax = fig.add_subplot(gs[len(machines) + k // cols, k % cols])
                mat = np.full((len(nodes), len(nodes)), np.nan)
                for v in (rows.get(s) or {}).values():
                    if v[0] == "link" and v[1] in idx and v[2] in idx:
                        mat[idx[v[1]], idx[v[2]]] = v[3]
                im = ax.imshow(mat, cmap=S.HEATMAP, vmin=0, vmax=vmax)
                ax.set_xticks(range(len(nodes)), [str(x) for x in nodes])
                ax.set_yticks(range(len(nodes)), [str(x) for x in nodes])
                ax.grid(False)
                ax.set_title(S.wrap(s, 36), fontsize=9)
                ax.set_xlabel("link to node")
                if k % cols == 0:
                    ax.set_ylabel("link from node")
            if im is not None:
                cb = fig.colorbar(im, ax=fig.axes[-len(link_panels):], shrink=0.8)
                cb.set_label(f"link busy over the whole run (% of its bandwidth, {mname})")
        if not drawn:
            return None
        fig.suptitle(S.wrap(f"Memory-controller and link utilisation, whole run and per phase"
                            f"{_at(data, xv)}", 90) + f"\n{_subject(data)}",
                     fontweight="bold")
    return fig


# ------------------------------------------------------------------- machine(s)
def machine_figures(data: SweepData) -> list[tuple[str, Any]]:
    """(file stem, Figure) of each machine the sweep ran on, built once: the same figure is
    saved in every format and becomes the report's first page."""
    from numasim.experiments.point import point_machine
    from numasim.topology.draw import machine_figure

    seen: dict[str, dict[str, Any]] = {}
    for doc in data.docs.values():
        m = doc["config"]["machine"]
        seen.setdefault(m["name"], m)
    metric = data.manifest.get("machine_metric") or "latency"
    out = []
    for name, m in seen.items():
        stem = "machine" if len(seen) == 1 else f"machine-{name}"
        with S.style():
            out.append((stem, machine_figure(point_machine(name, m["yaml"]), metric)))
    return out


# ------------------------------------------------------------------------- all
FIGURES = (("throughput", fig_throughput), ("latency", fig_latency),
           ("locality", fig_locality),
           ("latency_cdf", fig_latency_cdf), ("pages_per_node", fig_pages),
           ("bandwidth_timeline", fig_timeline), ("utilisation", fig_utilisation),
           ("kernel_mm", fig_kernel_mm), ("tiering", fig_tiering),
           ("tiering_timeline", fig_tiering_timeline))


def figures(data: SweepData) -> list[tuple[str, Any]]:
    """(name, Figure) of every figure that has something to show."""
    out = []
    for name, fn in FIGURES:
        fig = fn(data)
        if fig is not None:
            out.append((name, fig))
    return out


def plot_results(results: str | os.PathLike, out_dir: str | os.PathLike,
                 formats: tuple[str, ...] = S.FORMATS, pdf: bool = True,
                 progress: bool = False) -> list[Path]:
    """Draw every figure of a results folder into ``out_dir``; returns the files written.

    Each figure is built once and laid out once (the first format fixes the layout, the
    others and the PDF page reuse it).  ``progress`` shows a bar over the figures on stderr.
    """
    data = load_sweep(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cold = font_cache_cold()
    bar = _bar(progress, len(FIGURES) + len(data.machines) + (1 if pdf else 0) + cold)
    if cold:  # matplotlib scans every font on the host once, silently, for seconds
        bar.set_postfix_str("matplotlib's font cache (first use on this computer)")
        import matplotlib.font_manager  # noqa: F401
        bar.update(1)
    paths: list[Path] = []
    machines = []
    for stem, fig in machine_figures(data):
        bar.set_postfix_str(stem)
        written = S.save(fig, out, stem, formats)
        paths += written
        machines.append((fig, next((p for p in written if p.suffix == ".png"), None)))
        bar.update(1)
    figs = []
    for name, fn in FIGURES:
        bar.set_postfix_str(name)
        fig = fn(data)
        if fig is not None:
            paths += S.save(fig, out, name, formats)
            figs.append((name, fig))
        bar.update(1)
    if pdf:
        bar.set_postfix_str("report.pdf")
        paths.append(_report_pdf(data, machines[0] if machines else None, figs, out))
        bar.update(1)
    bar.close()
    return paths


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def font_cache_cold() -> bool:
    """Whether matplotlib has yet to build its font list (a scan of every font on the host,
    which takes seconds the first time matplotlib is used on a computer)."""
    import sys

    if "matplotlib.font_manager" in sys.modules:
        return False
    import matplotlib

    return not any(Path(matplotlib.get_cachedir()).glob("fontlist-v*.json"))


def _bar(enabled: bool, total: int):
    """A tqdm bar over the figures on stderr (figures take seconds each), or nothing."""
    if not enabled:
        return _NoBar()
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc="plots", unit="figure", file=sys.stderr,
                dynamic_ncols=True, mininterval=0.2,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                           "figures [{elapsed}<{remaining}{postfix}]")


def _report_pdf(data: SweepData, machine: Any, figs: list[tuple[str, Any]], out: Path) -> Path:
    """All figures in one PDF; the first page names the experiment and shows the machine
    (the machine figure already drawn, as a raster; the other pages are vector)."""
    import io

    import matplotlib.image as mpimg
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    path = out / "report.pdf"
    tmp = out / ".report.pdf.tmp"
    with S.style(), PdfPages(tmp, metadata={"CreationDate": None, "ModDate": None,
                                            "Title": data.name}) as pdf:
        first = Figure(figsize=(8.5, 11))
        first.suptitle(f"numasim experiment: {data.name}", fontsize=14, fontweight="bold")
        desc = data.manifest.get("description") or ""
        n_ok = len(data.df)
        text = (f"{desc}\n\n{n_ok} run(s); workload: {', '.join(data.workloads)}; "
                f"machine: {', '.join(data.machines)}")
        first.text(0.06, 0.93, S.wrap(text, 95), va="top", ha="left", fontsize=10)
        if machine is not None:
            fig, png = machine  # the PNG written a moment ago, if PNG is one of the formats
            buf = io.BytesIO(png.read_bytes()) if png is not None else io.BytesIO()
            if png is None:
                fig.savefig(buf, format="png", dpi=S.DPI)
                buf.seek(0)
            ax = first.add_axes((0.04, 0.05, 0.92, 0.72))
            ax.imshow(mpimg.imread(buf, format="png"))
            ax.set_axis_off()
        pdf.savefig(first)
        for _, fig in figs:
            pdf.savefig(fig)
    os.replace(tmp, path)
    return path


def describe_plots(files: list[Path]) -> str:
    """One line naming the figures a plot run wrote, for the CLI's summary."""
    names = sorted({f.stem for f in files if f.suffix != ".pdf"})
    fmts = sorted({f.suffix.lstrip(".").upper() for f in files if f.suffix != ".pdf"})
    pdf = [f.name for f in files if f.suffix == ".pdf"]
    text = f"{len(names)} figures as {' and '.join(fmts)}: {', '.join(names)}"
    return text + (f"; all of them in {pdf[0]}" if pdf else "")
