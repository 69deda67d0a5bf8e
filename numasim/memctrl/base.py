"""What a memory-controller model is: its declared parameters and what each engine asks of it.

A memory controller ``mc N`` sits on the route of every line read from or written to node N.
How its latency grows with load is the *model*, chosen by name in the machine YAML
(``memory_controller: {impl: curve, ...}``, machine-wide or per node; see
:mod:`numasim.memctrl`).  The interface follows Ramulator 2's: an interface (this module) and
implementations (``fifo.py``, ``curve.py``, ``dram.py``...), each declaring every parameter
once with a description, a default (or ``REQUIRED``) and where the default comes from.

Every model keeps the controller's single FIFO server (one line per ``line / bandwidth``), so a
saturated controller still delivers its bandwidth and no more.  What a model adds is an extra
*latency* on top of that queue, a pure delay that occupies no server:

* the exact engine asks :meth:`ControllerModel.extra_latency` for every request, with the
  utilisation the controller had over a recent window (:data:`WINDOW_CYCLES`) and the read
  fraction of its traffic;
* the fast engine asks :meth:`ControllerModel.wait_table` once: the extra latency as a
  piecewise-linear function of the utilisation, which its weave adds to the wait at the
  quantum's utilisation (inside its fixed point, see :mod:`numasim.machine.weave`);
* :meth:`ControllerModel.sustainable_bandwidth` is the bandwidth a traffic mix can get, and
  :meth:`ControllerModel.service_factor` what that does to the FIFO server: under a mix that
  sustains less than the controller's bandwidth (writes: read/write turnaround; random lines:
  row misses) a line occupies the server ``factor`` times longer.  The exact engine applies it
  per request from the mix of the controller's recent window (read fraction and random
  fraction, :data:`WINDOW_CYCLES`), the fast engine per quantum from the lines the quantum
  carried (:mod:`numasim.machine.mix`).  A model whose factor is always 1 (``fifo``) leaves
  the engines' arithmetic untouched.

This module imports nothing from the rest of numasim, so the topology can name a
:class:`ControllerSpec` without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

REQUIRED = object()
"""The default of a parameter a machine must give."""

WINDOW_CYCLES = 2000.0
"""The exact engine's utilisation window (an exponential average with this time constant, in
CPU cycles, about 1 us at 2 GHz).  It is the fast engine's shortest quantum, so both engines
look at the load over the same span; it is long against one request's latency (a request's
own burst does not count as load) and short against a phase (a load change is seen within a
few microseconds)."""


@dataclass(frozen=True)
class Param:
    """One declared parameter: its name, what it means, its default and where that comes
    from (a datasheet, a measurement, "numasim's choice")."""

    name: str
    description: str
    default: Any = REQUIRED
    source: str = ""
    unit: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


COMMON_PARAMS = (
    Param("impl", "which model (fifo, curve, dram)", "fifo", "numasim's default"),
    Param("source", "where the numbers come from (informative, not used)", ""),
)


@dataclass(frozen=True)
class ControllerSpec:
    """A controller model as a machine names it: the implementation and its parameters
    (hashable, so machines with the same controllers compare equal)."""

    impl: str = "fifo"
    params: tuple[tuple[str, Any], ...] = ()

    def get(self, name: str, default: Any = None) -> Any:
        for k, v in self.params:
            if k == name:
                return v
        return default

    def as_dict(self) -> dict[str, Any]:
        """The spec as the YAML writes it (tuples as lists)."""
        out: dict[str, Any] = {"impl": self.impl}
        for k, v in self.params:
            out[k] = _listify(v)
        return out

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ControllerSpec:
        params = tuple(sorted((str(k), _tupleify(v)) for k, v in d.items() if k != "impl"))
        return ControllerSpec(str(d.get("impl", "fifo")), params)


def _tupleify(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_tupleify(x) for x in v)
    return v


def _listify(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return [_listify(x) for x in v]
    return v


class ParamError(ValueError):
    """A bad parameter: ``key`` names it, ``hint`` says what would be valid."""

    def __init__(self, key: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.hint = hint


class ControllerModel:
    """The interface.  A subclass sets ``impl``, ``description`` and ``params`` and overrides
    what it models; the defaults are today's FIFO server (no extra latency)."""

    impl: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, spec: ControllerSpec, bandwidth_GBps: float, line_bytes: int,
                 cpu_ghz: float) -> None:
        self.spec = spec
        self.bandwidth_GBps = float(bandwidth_GBps)
        self.line_bytes = int(line_bytes)
        self.cpu_ghz = float(cpu_ghz)
        self.values = self.resolve(spec)

    @classmethod
    def resolve(cls, spec: ControllerSpec) -> dict[str, Any]:
        """Every declared parameter's value (given or default), checked by :meth:`check`;
        raises :class:`ParamError` for an unknown, missing or bad one."""
        known = {p.name: p for p in cls.params}
        given = dict(spec.params)
        for k in given:
            if k not in known and k not in {p.name for p in COMMON_PARAMS}:
                valid = ", ".join(["impl", "source"] + sorted(known)) or "none"
                raise ParamError(k, f"{cls.impl} has no parameter {k!r}",
                                 f"parameters of {cls.impl}: {valid}")
        values: dict[str, Any] = {}
        for name, p in known.items():
            if name in given:
                values[name] = given[name]
            elif p.required:
                raise ParamError(name, f"{cls.impl} needs {name!r} ({p.description})")
            else:
                values[name] = p.default
        cls.check(values)
        return values

    @classmethod
    def check(cls, values: dict[str, Any]) -> None:
        """Raise :class:`ParamError` for a value out of range (subclasses)."""

    # ------------------------------------------------------------ what engines ask
    def service_cycles(self) -> float:
        """Cycles the controller's server takes per line (``line / bandwidth``)."""
        return self.line_bytes / self.bandwidth_GBps * self.cpu_ghz

    def extra_latency(self, utilisation: float, read_fraction: float = 1.0) -> float:
        """Exact engine: cycles added to a request's latency when the controller was
        ``utilisation`` busy (0..1, of its bandwidth) over the recent window and
        ``read_fraction`` of its lines were reads.  0 for the plain FIFO server."""
        return 0.0

    def wait_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Fast engine: (utilisation, extra cycles) points of a non-decreasing
        piecewise-linear function (clamped at the ends); empty for no extra latency."""
        return np.zeros(0), np.zeros(0)

    def extra_wait(self, rho: float, read_fraction: float = 1.0) -> float:
        """Fast engine: the extra wait at utilisation rho (by default the exact engine's
        :meth:`extra_latency`, which the weave reads from :meth:`wait_table`)."""
        return self.extra_latency(rho, read_fraction)

    def sustainable_bandwidth(self, read_fraction: float = 1.0,
                              random_fraction: float = 0.0) -> float:
        """GB/s a traffic mix can sustain: ``read_fraction`` of its lines reads (a
        read-for-ownership is a read, a write-back a write), ``random_fraction`` of them from
        random-access loops (GUPS, pointer chasing) rather than streams.  By default the
        controller's bandwidth whatever the mix."""
        return self.bandwidth_GBps

    def service_factor(self, read_fraction: float = 1.0, random_fraction: float = 0.0) -> float:
        """How many times longer a line occupies the controller's server under this mix than
        under the read-only streams its ``controller_bandwidth`` was measured with:
        bandwidth / sustainable bandwidth, never below 1 (the measured read-only figure is
        the controller's best case)."""
        return max(1.0, self.bandwidth_GBps /
                   self.sustainable_bandwidth(read_fraction, random_fraction))

    @property
    def mix_aware(self) -> bool:
        """True when the traffic mix changes the service time (the engines skip the work
        otherwise, so ``fifo`` stays bit-identical)."""
        return False

    @property
    def extra(self) -> bool:
        """True when the model adds latency (the engines skip the work otherwise)."""
        return len(self.wait_table()[0]) > 0
