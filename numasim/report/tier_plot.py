"""Memory tiering over time, for the run figure (:func:`numasim.report.run_plot.plot_run`):
pages per tier and the hot set's residency in the top tier, and the pages promoted and
demoted per interval (``result["tiering"]["intervals"]``, :mod:`numasim.machine.tiering`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from numasim.report import style as S


def _rows(d: dict[str, Any]) -> tuple[np.ndarray, list[dict]]:
    rows = (d.get("tiering") or {}).get("intervals") or []
    return np.array([float(r["t_ms"]) for r in rows]), rows


def tiers_over_time(ax, d: dict[str, Any]) -> None:
    """Pages per tier at each interval's end (steps), the hot set's top-tier residency."""
    t, rows = _rows(d)
    ax.set_title("Memory tiers: pages per tier and hot-set residency")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("pages (4 KiB)")
    if not rows:
        return
    names = [x["name"] for x in d["tiering"]["tiers"]]
    for j, n in enumerate(names):
        vals = [r["pages_per_tier"].get(n, 0) if r["pages_per_tier"] else np.nan
                for r in rows]
        ax.step(t, vals, where="pre", color=S.colour(j),
                linestyle=("-", "--", "-.", ":")[j % 4], linewidth=1.5, label=n)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    res = [np.nan if r["hot_residency"] is None else r["hot_residency"] for r in rows]
    if not np.isnan(res).all():
        ax2 = ax.twinx()
        ax2.plot(t, res, color=S.colour(3), linewidth=1.8, marker="o", markersize=2.5,
                 label="hot set in top tier")
        ax2.set_ylabel("fraction of the hot set in the top tier")
        ax2.set_ylim(0, 1.05)
        ax2.grid(False)
        ax2.legend(loc="lower right")


def moves_over_time(ax, d: dict[str, Any]) -> None:
    """Pages promoted and demoted per interval."""
    t, rows = _rows(d)
    ax.set_title("Memory tiers: promotions and demotions")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("pages per interval")
    if not rows:
        return
    width = float(t[0]) if t.size else 1.0
    pro = np.array([r["promotions"] for r in rows], dtype=float)
    dem = np.array([r["demotions"] for r in rows], dtype=float)
    ax.bar(t - width * 0.7, pro, width * 0.45, color=S.colour(0), label="promoted")
    ax.bar(t - width * 0.25, dem, width * 0.45, color=S.colour(1), label="demoted")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right")
