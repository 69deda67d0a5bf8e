"""One run at a glance (``RunResult.plot()``): where its pages are, what its accesses cost,
how each memory node's bandwidth moved over time, and how busy controllers and links were;
with NUMA balancing on, also its pages per node and locality over time
(:mod:`numasim.report.numab_plot`), and on a machine with memory tiers its pages per tier,
hot-set residency, promotions and demotions over time (:mod:`numasim.report.tier_plot`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from numasim.report import style as S


def plot_run(result: Any, path: str | os.PathLike | None = None):
    """A 2x2 figure of a :class:`~numasim.api.RunResult` (or its ``to_dict()``); also written
    to ``path`` (.png, .svg or .pdf) when given.  Returns the matplotlib Figure."""
    d = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    with S.style():
        tiers = bool((d.get("tiering") or {}).get("intervals"))
        if d.get("numa_balancing"):  # a third row: the pages and locality over time
            from numasim.report.numab_plot import locality_over_time, pages_over_time

            fig = S.figure(11, 14.5 if tiers else 11)
            rows = fig.subplots(4 if tiers else 3, 2)
            (a, b), (c, e), (f, g) = rows[:3]
            pages_over_time(f, d)
            locality_over_time(g, d)
            if tiers:  # a fourth: the memory tiers over time (numasim.report.tier_plot)
                from numasim.report.tier_plot import moves_over_time, tiers_over_time

                tiers_over_time(rows[3][0], d)
                moves_over_time(rows[3][1], d)
        else:
            fig = S.figure(11, 7.5)
            (a, b), (c, e) = fig.subplots(2, 2)
        _pages(a, d)
        _cdf(b, d)
        _timeline(c, d)
        _resources(e, d)
        fig.suptitle(f"{d.get('workload')} on {d.get('machine')}: "
                     f"{d.get('bandwidth_GBps', 0):.1f} GB/s, "
                     f"{100 * (d.get('local_fraction') or 0):.0f}% local, "
                     f"mean latency {d.get('latency_ns', {}).get('mean', 0):.0f} ns "
                     f"({d.get('engine')} engine, Linux {d.get('linux', d.get('kernel'))}, "
                     f"seed {d.get('seed')})",
                     fontweight="bold")
    if path is not None:
        p = Path(path)
        fmt = p.suffix.lower().lstrip(".")
        if fmt not in ("png", "svg", "pdf"):
            from numasim.errors import NumasimError

            raise NumasimError("cannot tell the picture format", file=str(p),
                               hint="give a file name ending in .png, .svg or .pdf")
        S.save(fig, p.parent, p.stem, (fmt,))
    return fig


def _pages(ax, d: dict[str, Any]) -> None:
    ppn = d.get("pages_per_node") or {}
    regions = list(ppn)
    nodes = sorted({n for per in ppn.values() for n in per}, key=int)
    width = 0.8 / max(1, len(nodes))
    xs = np.arange(len(regions))
    for j, n in enumerate(nodes):
        vals = [ppn[r].get(n, 0) for r in regions]
        ax.bar(xs + (j - (len(nodes) - 1) / 2) * width, vals, width, color=S.colour(j),
               hatch=S.hatch(j), edgecolor="black", linewidth=0.4, label=f"node {n}")
    ax.set_xticks(xs, regions)
    top = max((v for per in ppn.values() for v in per.values()), default=0)
    ax.set_ylim(0, max(1, top) * 1.25)
    ax.set_xlabel("memory region")
    ax.set_ylabel("pages (4 KiB)")
    ax.set_title("Pages per node, per region")
    ax.grid(axis="x", visible=False)
    if nodes:
        ax.legend(ncol=min(4, len(nodes)))


def _cdf(ax, d: dict[str, Any]) -> None:
    h = d.get("latency_histogram") or {}
    xs = np.asarray(h.get("bin_start_ns") or [], dtype=float)
    cs = np.asarray(h.get("count") or [], dtype=float)
    ax.set_title("Memory-access latency (CDF)")
    ax.set_xlabel("latency (ns)")
    ax.set_ylabel("fraction of accesses ≤ latency")
    if cs.sum() <= 0:
        ax.text(0.5, 0.5, "no memory accesses", ha="center", transform=ax.transAxes)
        return
    o = np.argsort(xs)
    ax.step(xs[o], np.cumsum(cs[o]) / cs.sum(), where="post", color=S.colour(0), linewidth=1.8)
    lat = d.get("latency_ns") or {}
    for i, q in enumerate(("p50", "p95", "p99")):
        if q in lat:
            ax.axvline(lat[q], color=S.colour(i + 1), linestyle="--", linewidth=1,
                       label=f"{q} {lat[q]:.0f} ns")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")


def _timeline(ax, d: dict[str, Any]) -> None:
    tl = d.get("timeline") or {}
    step = float(tl.get("interval_ns") or 0)
    series = tl.get("bandwidth_GBps") or {}
    ax.set_title("Bandwidth of each memory node over time")
    ax.set_ylabel("bandwidth (GB/s)")
    if not series or step <= 0:
        ax.set_xlabel("simulated time")
        return
    n = max(len(v) for v in series.values())
    unit, div = S.time_unit(n * step)
    t = (np.arange(n) + 0.5) * step / div
    for j, (node, vals) in enumerate(series.items()):
        ax.plot(t[:len(vals)], vals, color=S.colour(j), linestyle=("-", "--", "-.", ":")[j % 4],
                linewidth=1.5, label=f"node {node}")
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylim(bottom=0)
    ax.legend(ncol=min(4, len(series)))


def _resources(ax, d: dict[str, Any]) -> None:
    res = [r for r in d.get("resources") or [] if r.get("kind") in ("controller", "link")]
    ax.set_title("Memory-controller and link utilisation")
    ax.set_ylabel("busy (% of bandwidth, whole run)")
    if not res:
        return
    names = [r["name"].replace("mc ", "ctrl ").replace("->", "→") for r in res]
    vals = [100 * float(r.get("utilisation") or 0) for r in res]
    cols = [S.colour(0) if r["kind"] == "controller" else S.colour(1) for r in res]
    hatches = ["" if r["kind"] == "controller" else "//" for r in res]
    bars = ax.bar(range(len(res)), vals, color=cols, edgecolor="black", linewidth=0.4)
    for bar, h in zip(bars, hatches, strict=True):
        bar.set_hatch(h)
    ax.set_xticks(range(len(res)), names, rotation=45 if len(res) > 6 else 0,
                  ha="right" if len(res) > 6 else "center")
    ax.set_ylim(0, max(100.0, max(vals) * 1.05))
    ax.grid(axis="x", visible=False)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(facecolor=S.colour(0), edgecolor="black", label="controller"),
                       Patch(facecolor=S.colour(1), hatch="//", edgecolor="black",
                             label="link")])
