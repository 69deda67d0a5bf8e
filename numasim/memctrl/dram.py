"""``impl: dram`` in a machine's ``memory_controller``: the DRAM model behind the
memory-controller interface (:mod:`numasim.memctrl.base`).

The model lives in four modules, one job each:

* :mod:`numasim.memctrl.dram_model` -- configuration (checked, with file/field errors) and
  :func:`~numasim.memctrl.dram_model.simulate`; its docstring says what is modelled (banks,
  bank groups, open rows, FR-FCFS, read/write queues with a write drain, tRTW/tWTR
  turnaround, refresh, CXL's added latency) and what is not;
* :mod:`numasim.memctrl.dram_core` -- the jitted channel model and its scheduler;
* :mod:`numasim.memctrl.dram_presets` -- DDR4-2666/2933/3200, DDR5-4800, HBM2e, CXL-attached
  DDR5, every parameter with its unit, description and source (Micron DDR4 data sheets,
  DRAMsim3's JEDEC configurations, JESD79-5, JESD235C, published CXL measurements);
* :mod:`numasim.memctrl.dram_curve` -- the loaded-latency curves and sustainable fractions
  derived from it with synthetic traffic, cached; ``python -m numasim.memctrl.dram_curve
  PRESET [NAME=VALUE ...]`` prints them.

The controller's FIFO server (the node's ``controller_bandwidth``) stays; what the DRAM
model adds is the *extra* latency load causes and the bandwidth a traffic mix loses:

* :meth:`DramController.extra_latency` / :meth:`wait_table`: the added read latency of the
  derived curve (:func:`numasim.memctrl.dram_curve.loaded_curve`) at the controller's
  utilisation, converted to the DRAM's utilisation (x the read-only fraction of peak) and to
  CPU cycles; between read fractions 1, 2/3 and 1/2 it interpolates linearly;
* both are capped at ``max_extra_ns`` (the open-loop curve climbs without bound at its
  sustainable load; in a machine the cores' miss slots bound the queue);
* the exact engine (``exact: banks``, the default) serves every request through the banks
  instead (:mod:`numasim.memctrl.dram_online`: the same scheduler run online; the node's
  FIFO server, curve and mix factor are then not used there); ``exact: curve`` keeps the
  derived curve in both engines;
* :meth:`sustainable_bandwidth`: with ``anchor: dram`` (the default) the DRAM's peak times
  the model's sustainable fraction for the mix (read fraction; random lines at the
  ``random`` pattern's fraction): the banks set the controller's bandwidth in both engines,
  ``controller_bandwidth`` is not used; with ``anchor: controller``, ``controller_bandwidth``
  (a measured read-only figure) times the fraction over the read-only one.  The fast engine
  scales the controller's service time by :meth:`service_factor`.

The idle latency, the CXL device's included, stays in the machine's latency matrix: the model
adds only what load adds, so a machine calibrated on MLC keeps its idle numbers.

YAML::

    memory_controller: {impl: dram, preset: ddr4-2933}          # machine-wide
    nodes: [{id: 1, memory_controller: {impl: dram, preset: cxl-ddr5, channels: 2}}, ...]

Every DRAM parameter of :mod:`numasim.memctrl.dram_presets` may be overridden by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numasim.errors import ConfigError
from numasim.memctrl.base import ControllerModel, Param, ParamError
from numasim.memctrl.dram_curve import PATTERNS, READ_FRACTIONS, LoadedCurve, loaded_curve
from numasim.memctrl.dram_model import DramConfig, dram_config
from numasim.memctrl.dram_presets import DESCRIPTIONS, PRESETS

_PARAMS = (
    Param("preset", "DRAM preset: " + ", ".join(PRESETS), "ddr4-2933",
          "clx-2s's DDR4-2933 (numasim/memctrl/dram_presets.py)"),
    Param("pattern", "traffic the curve and the fast engine's fractions are derived for: "
          "sequential (one stream), streams (24 interleaved in runs of 8 lines) or random "
          "(random lines always use the random pattern's fractions)", "sequential",
          "numasim's choice: the exact engine's banks fed numasim's own STREAM-like threads "
          "(page frames in order, each thread its own chunk) sustain what the sequential "
          "pattern does (read-only 0.95 of peak, copy 0.90; streams: 0.88 and 0.69), so the "
          "fast engine agrees with the exact one (tests/test_dram_exact.py)"),
    Param("anchor", "what sets the controller's bandwidth: dram (the model's own sustainable "
          "bandwidth for the mix, peak x fraction, in both engines: the exact engine's banks "
          "know no other) or controller (controller_bandwidth x the model's fraction for the "
          "mix over its read-only one)", "dram",
          "numasim's choice: the engines agree; 'controller' keeps a measured read-only "
          "figure (MLC) as the ceiling, for the fast engine"),
    Param("max_extra_ns", "ceiling of the added latency: past it the FIFO server's own queue "
          "(and the cores' miss slots) bound the wait, not an open-loop DRAM queue", 154.0,
          "clx-2s MLC loaded latency, 80.19 ns idle to 233.86 ns saturated "
          "(/work/shared/data/measured/mlc-loaded-latency.md section 3)", "ns"),
    Param("exact", "how the exact engine runs the model: banks (every request through the "
          "banks, rows and queues, numasim.memctrl.dram_online) or curve (the derived curve "
          "and mix factor, as the fast engine)", "banks",
          "numasim's choice: the exact engine is the reference the fast one is measured "
          "against"),
) + tuple(Param(k, d, None, "the preset's value (numasim/memctrl/dram_presets.py)", u)
          for k, (u, d) in DESCRIPTIONS.items())


class DramController(ControllerModel):
    impl = "dram"
    description = "DRAM banks, rows, read/write queues, turnaround and refresh (derived curve)"
    params = _PARAMS

    @classmethod
    def check(cls, values: dict[str, Any]) -> None:
        if not isinstance(values["max_extra_ns"], (int, float)) or values["max_extra_ns"] < 0:
            raise ParamError("max_extra_ns", "max_extra_ns must be a number >= 0",
                             f"got {values['max_extra_ns']!r}")
        if values["exact"] not in ("banks", "curve"):
            raise ParamError("exact", "exact must be 'banks' or 'curve'",
                             f"got {values['exact']!r}")
        if values["anchor"] not in ("dram", "controller"):
            raise ParamError("anchor", "anchor must be 'dram' or 'controller'",
                             f"got {values['anchor']!r}")
        if values["pattern"] not in PATTERNS:
            raise ParamError("pattern", f"pattern must be one of {', '.join(PATTERNS)}",
                             f"got {values['pattern']!r}")
        try:
            cls.config_of(values)
        except ConfigError as e:
            field = (e.field or "memory_controller.preset").rsplit(".", 1)[-1]
            raise ParamError(field, e.problems[0].message, e.problems[0].hint or "") from None

    @staticmethod
    def config_of(values: dict[str, Any]) -> DramConfig:
        over = {k: v for k, v in values.items()
                if k in DESCRIPTIONS and v is not None}
        return dram_config(values["preset"], over)

    @property
    def curve(self) -> LoadedCurve:
        if not hasattr(self, "_curve"):
            self._cfg = self.config_of(self.values)
            self._curve = loaded_curve(self._cfg)
        return self._curve

    def online(self):
        """The exact engine's request-by-request DRAM (``exact: banks``), else None.  Its
        idle latency is the derived curve's lightest-load latency for ``pattern``, what
        the fast engine's curve calls 0 extra."""
        if self.values["exact"] != "banks":
            return None
        from numasim.memctrl.dram_online import OnlineDram

        p = PATTERNS.index(self.values["pattern"])
        return OnlineDram(self._cfg if hasattr(self, "_cfg") else self.config_of(self.values),
                          self.cpu_ghz, float(self.curve.latency_ns[p, 0, 0]))

    def _to_dram(self) -> float:
        """Controller utilisation (of its read-only bandwidth) -> DRAM utilisation."""
        if self.values["anchor"] == "dram":
            return float(self.curve.sustainable[PATTERNS.index(self.values["pattern"]), 0])
        return self.bandwidth_GBps * 1e9 / self.curve.peak_bytes_per_s

    def _added_ns(self, utilisation: float, read_fraction: float) -> float:
        c = self.curve
        p = PATTERNS.index(self.values["pattern"])
        u = utilisation * self._to_dram()
        rf = min(1.0, max(READ_FRACTIONS[-1], read_fraction))
        per_mix = [np.interp(u, c.utilisation[p, m], np.maximum.accumulate(c.added_ns[p, m]))
                   for m in range(len(READ_FRACTIONS))]
        ns = float(np.interp(rf, c.read_fraction[::-1], per_mix[::-1]))
        return min(ns, float(self.values["max_extra_ns"]))

    def extra_latency(self, utilisation: float, read_fraction: float = 1.0) -> float:
        return self._added_ns(utilisation, read_fraction) * self.cpu_ghz

    def wait_table(self) -> tuple[np.ndarray, np.ndarray]:
        c = self.curve
        p = PATTERNS.index(self.values["pattern"])
        u = c.utilisation[p, 0] / self._to_dram()
        ns = np.minimum(np.maximum.accumulate(c.added_ns[p, 0]), self.values["max_extra_ns"])
        return u, ns * self.cpu_ghz

    def _fraction(self, pattern: int, read_fraction: float) -> float:
        """The model's sustainable fraction of peak for ``pattern`` at a read fraction
        (linear between 1, 2/3 and 1/2; clamped below 1/2)."""
        c = self.curve
        rf = min(1.0, max(READ_FRACTIONS[-1], read_fraction))
        return float(np.interp(rf, c.read_fraction[::-1], c.sustainable[pattern, ::-1]))

    def sustainable_bandwidth(self, read_fraction: float = 1.0,
                              random_fraction: float = 0.0) -> float:
        """``controller_bandwidth`` (a measured read-only figure) times the model's
        sustainable fraction for the mix over its read-only one for ``pattern``.  A
        ``random_fraction`` of the lines follows the ``random`` pattern's fraction: the
        server's time per line is the lines' share-weighted mean (time adds, bandwidth
        does not)."""
        p = PATTERNS.index(self.values["pattern"])
        rnd = min(1.0, max(0.0, random_fraction))
        frac = self._fraction(p, read_fraction)
        if rnd > 0.0:
            fr = self._fraction(PATTERNS.index("random"), read_fraction)
            frac = 1.0 / ((1.0 - rnd) / frac + rnd / fr)
        if self.values["anchor"] == "dram":
            return self.curve.peak_bytes_per_s * frac / 1e9
        return self.bandwidth_GBps * frac / float(self.curve.sustainable[p, 0])

    def service_factor(self, read_fraction: float = 1.0, random_fraction: float = 0.0) -> float:
        """controller_bandwidth / the mix's sustainable bandwidth: with ``anchor: dram``
        below 1 when the DRAM outruns controller_bandwidth (its banks set the pace, as in
        the exact engine)."""
        f = self.bandwidth_GBps / self.sustainable_bandwidth(read_fraction, random_fraction)
        return f if self.values["anchor"] == "dram" else max(1.0, f)

    @property
    def mix_aware(self) -> bool:
        return True
