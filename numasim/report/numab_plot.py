"""NUMA balancing over time, for the run figure (:func:`numasim.report.run_plot.plot_run`):
the pages of the run's regions per node and the fraction of memory requests served by the
requesting CPU's node, per interval, with the hinting faults and the pages migrated in each
(``result["numa_balancing"]["intervals"]``, :mod:`numasim.machine.numab_clock`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from numasim.report import style as S


def _rows(d: dict[str, Any]) -> tuple[np.ndarray, list[dict]]:
    rows = (d.get("numa_balancing") or {}).get("intervals") or []
    return np.array([float(r["t_ms"]) for r in rows]), rows


def pages_over_time(ax, d: dict[str, Any]) -> None:
    """Pages per node at the end of each interval (steps over the interval), pages migrated
    per interval (bars)."""
    t, rows = _rows(d)
    ax.set_title("NUMA balancing: pages per node over time")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("pages (4 KiB)")
    if not rows:
        return
    nodes = sorted({n for r in rows if r["pages_per_node"] for n in r["pages_per_node"]},
                   key=int)
    for j, n in enumerate(nodes):
        vals = [r["pages_per_node"].get(n, 0) if r["pages_per_node"] else np.nan
                for r in rows]
        ax.step(t, vals, where="pre", color=S.colour(j),
                linestyle=("-", "--", "-.", ":")[j % 4], linewidth=1.5, label=f"node {n}")
    mig = np.array([r["pages_migrated"] for r in rows], dtype=float)
    if mig.any():
        ax2 = ax.twinx()
        width = float(t[0]) if t.size else 1.0
        ax2.bar(t - width / 2, mig, width * 0.9, color="0.6", alpha=0.5,
                label="pages migrated / interval")
        ax2.set_ylabel("pages migrated per interval")
        ax2.grid(False)
        ax2.legend(loc="center right")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", ncol=min(4, len(nodes)))


def locality_over_time(ax, d: dict[str, Any]) -> None:
    """Fraction of memory requests served locally, and hinting faults, per interval."""
    t, rows = _rows(d)
    ax.set_title("NUMA balancing: locality and hinting faults over time")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("local fraction of memory requests")
    if not rows:
        return
    loc = [np.nan if r["local_fraction"] is None else r["local_fraction"] for r in rows]
    ax.plot(t, loc, color=S.colour(0), linewidth=1.8, marker="o", markersize=2.5,
            label="local fraction")
    ax.set_ylim(0, 1.05)
    hint = np.array([r["hint_faults"] for r in rows], dtype=float)
    ax2 = ax.twinx()
    ax2.plot(t, hint, color=S.colour(1), linestyle="--", linewidth=1.2,
             label="hinting faults / interval")
    ax2.set_ylabel("hinting faults per interval")
    ax2.set_ylim(bottom=0)
    ax2.grid(False)
    ax.legend(loc="lower right")
    ax2.legend(loc="center right")
