"""``curve``: the latency a measured loaded-latency curve adds at a controller utilisation.

A real controller's latency is flat up to 60-70 % of its bandwidth and then climbs to 2-4x
idle (bank conflicts, read/write turnaround, scheduling queues; Intel MLC's
``--loaded_latency`` shows it, see ``tests/data/mlc/SOURCES.md``), where one FIFO server
stays flat to ~96 %.  ``curve`` keeps the FIFO server (so saturation is still the
controller's bandwidth) and adds a pure delay read from a table: ``points`` =
``[[utilisation, extra], ...]``, utilisation a fraction of the controller's bandwidth,
extra the latency above idle in ns; linear between points, 0 extra at utilisation 0 unless a
point says otherwise, the last point's value beyond it.  ``numasim topo import-mlc`` writes
the table from an MLC run.

The latency table is the read-only curve (MLC's default traffic, and the only mix its
``--loaded_latency`` tables hold in every MLC output numasim has seen): the extra latency
does not depend on the read fraction, every mix gets the read-only curve at its utilisation.
What a mix does change is the bandwidth: ``mix`` = ``[[read fraction, bandwidth fraction],
...]`` is the sustainable bandwidth of each read/write mix over the read-only one, MLC's
``--peak_injection_bandwidth`` (ALL Reads, 3:1, 2:1, 1:1 Reads-Writes; ``import-mlc`` writes
it when the run holds that table), linear between points, clamped at the ends.  A line then
occupies the controller's server ``1 / fraction`` times longer
(:meth:`~numasim.memctrl.base.ControllerModel.service_factor`).  Random access has no MLC
figure; ``curve`` gives it the same bandwidth as a stream of the same mix (``dram`` models
row misses).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numasim.memctrl.base import ControllerModel, Param, ParamError

_POINTS_HINT = ("points: [[utilisation, extra latency], ...], utilisation ascending in 0..1 "
                "(a fraction of the controller's bandwidth), extra latency in ns (a number or "
                "'15ns'), not decreasing; e.g. [[0.5, 2], [0.8, 20], [0.97, 150]]")


def _ns(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a latency")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        from numasim import units  # numasim.units imports nothing of numasim's
        return units.parse_time_ns(v)
    raise ValueError(f"{v!r} is not a latency")


def parse_points(raw: Any) -> tuple[tuple[float, float], ...]:
    """The checked table, as (utilisation, extra ns) pairs; raises :class:`ParamError`."""
    if not isinstance(raw, list | tuple) or not raw:
        raise ParamError("points", f"expected a list of [utilisation, extra latency] pairs, "
                         f"got {raw!r}", _POINTS_HINT)
    out: list[tuple[float, float]] = []
    for k, p in enumerate(raw):
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise ParamError("points", f"point {k} is {p!r}, not a pair", _POINTS_HINT)
        try:
            u = float(p[0]) if not isinstance(p[0], bool) else float("nan")
            w = _ns(p[1])
        except (TypeError, ValueError) as e:
            raise ParamError("points", f"point {k} ({p!r}): {e}", _POINTS_HINT) from None
        if not 0.0 <= u <= 1.0:
            raise ParamError("points", f"point {k}: utilisation {u} is outside 0..1",
                             _POINTS_HINT)
        if not w >= 0.0 or w > 1e6:
            raise ParamError("points", f"point {k}: extra latency {w} ns is not in "
                             "0..1e6 ns", _POINTS_HINT)
        if out and u <= out[-1][0]:
            raise ParamError("points", f"point {k}: utilisation {u} does not exceed the "
                             f"previous point's {out[-1][0]}", _POINTS_HINT)
        if out and w < out[-1][1]:
            raise ParamError("points", f"point {k}: extra latency {w} ns is below the "
                             f"previous point's {out[-1][1]} ns", _POINTS_HINT +
                             " (import-mlc smooths a measured table to non-decreasing)")
        out.append((u, w))
    return tuple(out)


MIX_HINT = ("mix: [[read fraction, bandwidth fraction], ...], read fractions in 0..1 "
            "descending, bandwidth fractions in 0..1 (over the read-only bandwidth); e.g. MLC "
            "--peak_injection_bandwidth: [[1, 1], [0.75, 0.901], [0.667, 0.891], [0.5, 0.838]]")

CLX_MIX = ((1.0, 1.0), (0.75, 0.9012), (0.6667, 0.8908), (0.5, 0.8378))
"""Cascade Lake-SP 6252N, MLC v3.7 ``--peak_injection_bandwidth`` (FD.io CSIT s32-t27-sut1,
tests/data/mlc/clx-6252n-csit.txt): ALL Reads 243159.4, 3:1 219132.5, 2:1 216603.1, 1:1
203713.0 MB/s, each over ALL Reads."""


def parse_mix(raw: Any) -> tuple[tuple[float, float], ...]:
    """The checked mix table as (read fraction, bandwidth fraction) pairs, read fractions
    descending; raises :class:`ParamError`."""
    if not isinstance(raw, list | tuple) or not raw:
        raise ParamError("mix", f"expected a list of [read fraction, bandwidth fraction] "
                         f"pairs, got {raw!r}", MIX_HINT)
    out: list[tuple[float, float]] = []
    for k, p in enumerate(raw):
        if not isinstance(p, list | tuple) or len(p) != 2 or \
                any(isinstance(x, bool) or not isinstance(x, int | float) for x in p):
            raise ParamError("mix", f"point {k} is {p!r}, not a pair of numbers", MIX_HINT)
        r, f = float(p[0]), float(p[1])
        if not 0.0 <= r <= 1.0 or not 0.0 < f <= 1.0:
            raise ParamError("mix", f"point {k} ({p!r}) is outside 0..1", MIX_HINT)
        if out and r >= out[-1][0]:
            raise ParamError("mix", f"point {k}: read fraction {r} is not below the previous "
                             f"point's {out[-1][0]}", MIX_HINT)
        out.append((r, f))
    return tuple(out)


class CurveController(ControllerModel):
    impl = "curve"
    description = ("FIFO server plus the extra latency of a measured loaded-latency curve at "
                   "the controller's utilisation")
    params = (
        Param("points", "[[utilisation 0..1, extra latency above idle (ns)], ...], "
              "ascending, not decreasing", source="a measured curve (MLC --loaded_latency); "
              "numasim topo import-mlc writes it"),
        Param("mix", "[[read fraction, sustainable bandwidth / read-only bandwidth], ...], "
              "read fractions descending", CLX_MIX,
              "MLC v3.7 --peak_injection_bandwidth on a 2x Xeon Gold 6252N (FD.io CSIT "
              "s32-t27-sut1; shared/data/measured/mlc-loaded-latency.md section 3); "
              "numasim topo import-mlc writes the user's own"),
    )

    @classmethod
    def check(cls, values: dict[str, Any]) -> None:
        values["points"] = parse_points(values["points"])
        values["mix"] = parse_mix(values["mix"])

    def __init__(self, spec, bandwidth_GBps, line_bytes, cpu_ghz) -> None:
        super().__init__(spec, bandwidth_GBps, line_bytes, cpu_ghz)
        pts = self.values["points"]
        u = [p[0] for p in pts]
        w = [p[1] * self.cpu_ghz for p in pts]
        if u[0] > 0.0:
            u.insert(0, 0.0)
            w.insert(0, 0.0)
        self._u = np.array(u, dtype=np.float64)
        self._w = np.array(w, dtype=np.float64)
        mix = self.values["mix"]
        self._mix_r = np.array([m[0] for m in mix][::-1])  # ascending, for np.interp
        self._mix_f = np.array([m[1] for m in mix][::-1])

    def extra_latency(self, utilisation: float, read_fraction: float = 1.0) -> float:
        return float(np.interp(utilisation, self._u, self._w))

    def wait_table(self) -> tuple[np.ndarray, np.ndarray]:
        return self._u, self._w

    def sustainable_bandwidth(self, read_fraction: float = 1.0,
                              random_fraction: float = 0.0) -> float:
        f = float(np.interp(read_fraction, self._mix_r, self._mix_f))
        top = float(np.interp(1.0, self._mix_r, self._mix_f))
        return self.bandwidth_GBps * f / top

    @property
    def mix_aware(self) -> bool:
        return bool(np.ptp(self._mix_f) > 0.0)
