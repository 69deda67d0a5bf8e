"""The contract between a run and an engine: what an engine reads, what it writes, what it
returns.

An engine is built once per run from the :class:`~numasim.machine.sim.Simulation` (which
satisfies :class:`SimulationView`) and then asked to run one phase at a time::

    engine = FastEngine(sim)                       # or ExactEngine(sim)
    end = yield from engine.phase(prog, active, t0)  # inside the run's SimPy process

``phase`` is a SimPy generator: it may yield SimPy events of ``sim.env`` and returns the cycle
at which the phase's last thread finished.  Before it is called, the run has pointed every
active thread at its ops (``ts``, ``cs``, ``ci``; :meth:`Simulation.reset_clocks`).  During
it the engine

* reads the program: ``prog.ops``/``prog.opf`` (also ``programs_ops``/``programs_opf``,
  which ``reset_clocks`` pointed at them),
  ``ts``, ``rngs``, ``trace_arr``, ``buf``; the machine: ``res`` (routes, service times,
  latencies), ``cpu_nodes``, ``params`` (CPU model), ``eparams`` (engine knobs), ``pf``/``pi``
  (packed parameters), ``llc``; and the kernel's state ``ks`` (page tables, allocator), into
  which it faults pages through the allocator core, handing any stop it cannot resolve to
  ``fault_status``;
* may ask ``sim.next_event_cycle(now)`` when the simulation has one (optional, default
  absent: the cycle of the next external event at or after ``now``, or None), so that
  fast-forward (:mod:`numasim.machine.fastforward`) never skips over it;
* may say how the host ran the run in ``host_note`` (optional, a short text for the
  summary, never in the result: the fast engine's host threads, :mod:`numasim.machine.ahead`);
* writes, and nothing else: the per-thread state (``ci``, ``cs``, ``slots``, ``buf``, ``ts``),
  the statistics (``st``, ``hist``, ``res_lines``, ``tl`` via ``ensure_timeline``,
  ``fault_res``), and reports progress with ``progress_to``.

Both engines read the same arrays and the same access streams, so a difference between them
is a difference in how queueing is resolved, nothing else.  ``tests/test_engine_contract.py``
checks that both engines and the simulation keep this contract.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol, runtime_checkable

import numpy as np

ENGINE_NAMES = ("fast", "exact")


@runtime_checkable
class SimulationView(Protocol):
    """What an engine may read and write of a run (the :class:`Simulation` attributes)."""

    # the program and the machine (read)
    machine: Any
    ks: Any
    res: Any
    params: Any
    eparams: Any
    nthreads: int
    cpu_nodes: np.ndarray
    line: int
    programs_ops: np.ndarray
    programs_opf: np.ndarray
    trace_arr: np.ndarray
    rngs: np.ndarray
    pf: np.ndarray
    pi: np.ndarray
    llc: tuple
    env: Any
    # per-thread state and statistics (written)
    ci: np.ndarray
    cs: np.ndarray
    slots: np.ndarray
    buf: np.ndarray
    ts: np.ndarray
    st: np.ndarray
    hist: np.ndarray
    res_lines: np.ndarray
    tl: np.ndarray
    tl_width: float
    fault_res: np.ndarray

    def ensure_timeline(self, t: float) -> None: ...

    def fault_status(self, status: int, c: int) -> None: ...

    def progress_to(self) -> None: ...


@runtime_checkable
class Engine(Protocol):
    """An engine: built from a :class:`SimulationView`, runs one phase at a time."""

    sim: Any

    def phase(self, prog: Any, active: list[int], t0: float
              ) -> Generator[Any, Any, float]: ...


EngineFactory = Callable[[Any], Engine]


def engine_class(name: str) -> EngineFactory:
    """The engine called ``name``: ``fast`` (bound-weave, numba) or ``exact`` (SimPy)."""
    if name == "fast":
        from numasim.machine.fast import FastEngine

        return FastEngine
    if name == "exact":
        from numasim.machine.exact import ExactEngine

        return ExactEngine
    from numasim.errors import ConfigError

    raise ConfigError(f"unknown engine {name!r}", field="engine",
                      hint="valid: " + ", ".join(ENGINE_NAMES))
