"""Lab 20: the loaded-latency curves of numasim's DRAM model, as a table and a plot.

Run from this folder: ``python dram_plot.py [PRESET]`` (default ddr4-2933, clx-2s's DIMMs).
It prints, per access pattern and read fraction, the sustainable bandwidth (fraction of the
datasheet peak), the row-hit share at half load, the idle and half-load read latency, and draws
``plots/dram-curve.png``: read latency against delivered bandwidth, with and without
refresh.  Same preset, same bytes: the curves come from a seeded simulation
(``numasim.memctrl.dram_curve``), the figure from ``numasim.report.style.save``.
"""

from __future__ import annotations

import sys

import numpy as np

from numasim.memctrl.dram_core import ROW_HIT
from numasim.memctrl.dram_curve import _one_channel, loaded_curve, synthetic
from numasim.memctrl.dram_model import dram_config, simulate
from numasim.report import style

LABEL = {"sequential": "one sequential stream", "streams": "24 interleaved streams",
         "random": "random lines"}


def row_hits(cfg, pattern: str, read_fraction: float, load: float = 0.5) -> float:
    """Share of requests that hit an open row, one channel offered ``load`` x its peak."""
    one = _one_channel(cfg)
    t, a, w = synthetic(one, load, read_fraction, pattern, 20000, seed=0)
    return float(np.mean(simulate(one, t, a, w).kind == ROW_HIT))


def at_load(curve, p: int, m: int, u: float) -> float:
    """Read latency (ns) at utilisation ``u`` of the peak, interpolated on the curve."""
    return float(np.interp(u, curve.utilisation[p, m], curve.latency_ns[p, m]))


def table(cfg, curve) -> None:
    peak = cfg.peak_bytes_per_s / 1e9
    print(f"{cfg.name}: peak {peak:.1f} GB/s, refresh tRFC/tREFI = "
          f"{100 * cfg.refresh_fraction:.1f} % of the time")
    print(f"{'pattern':11s} {'reads':>5s} {'sustainable':>12s} {'GB/s':>6s} {'row hits':>9s} "
          f"{'idle ns':>8s} {'ns at 50%':>10s}")
    for p, pattern in enumerate(curve.patterns):
        for m, rf in enumerate(curve.read_fraction):
            sus = curve.sustainable[p, m]
            print(f"{pattern:11s} {rf:5.2f} {100 * sus:11.1f}% {sus * peak:6.1f} "
                  f"{100 * row_hits(cfg, pattern, rf):8.1f}% {curve.idle_ns[p, m]:8.0f} "
                  f"{at_load(curve, p, m, 0.5):10.0f}")


def plot(cfg, curve, no_refresh) -> None:
    peak = cfg.peak_bytes_per_s / 1e9
    with style.style():
        fig = style.figure(9.0, 5.0)
        ax = fig.add_subplot()
        for p, pattern in enumerate(curve.patterns):
            for m, dash in ((0, "-"), (1, ":")):
                u, lat = curve.utilisation[p, m], curve.latency_ns[p, m]
                keep = lat < 400
                mix = "reads only" if m == 0 else "2 reads : 1 write"
                ax.plot(u[keep] * peak, lat[keep], dash, color=style.colour(p),
                        marker=style.marker(p), label=f"{LABEL[pattern]}, {mix}")
        u, lat = no_refresh.utilisation[0, 0], no_refresh.latency_ns[0, 0]
        keep = lat < 400
        ax.plot(u[keep] * peak, lat[keep], "--", color=style.colour(6),
                label="one sequential stream, reads only, refresh off")
        ax.axvline(peak, color="grey", lw=1)
        ax.text(peak, 395, f" datasheet peak\n {peak:.1f} GB/s", va="top", ha="right",
                fontsize=9)
        ax.set_xlim(0, peak * 1.02)
        ax.set_ylim(0, 400)
        ax.set_xlabel("bandwidth delivered by the controller (GB/s)")
        ax.set_ylabel("mean read latency in the DRAM (ns)")
        ax.set_title(f"{cfg.name}, {int(cfg['channels'])} channels: latency climbs long "
                     "before the peak")
        ax.legend(loc="upper left", fontsize=8)
        style.save(fig, "plots", "dram-curve", formats=("png",))


def main(argv: list[str]) -> int:
    preset = argv[0] if argv else "ddr4-2933"
    cfg = dram_config(preset)
    curve = loaded_curve(cfg)
    table(cfg, curve)
    plot(cfg, curve, loaded_curve(dram_config(preset, {"refresh": 0})))
    print("wrote plots/dram-curve.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
