"""Memory-controller models, chosen by name: ``memory_controller: {impl: NAME, ...}`` in the
machine YAML (machine-wide, or per node to override it).

* ``fifo`` (default): one FIFO server, today's numasim (:mod:`numasim.memctrl.fifo`);
* ``curve``: the FIFO server plus a measured loaded-latency curve (:mod:`numasim.memctrl.curve`);
* ``dram``: banks, rows, read/write queues (:mod:`numasim.memctrl.dram`, when present).

The interface is :mod:`numasim.memctrl.base`.  A new model is a module here with a
:class:`~numasim.memctrl.base.ControllerModel` subclass, named in ``IMPLS``; it is imported
only when a machine names it.
"""

from __future__ import annotations

import importlib

import numpy as np

from numasim.memctrl.base import (
    COMMON_PARAMS,
    REQUIRED,
    WINDOW_CYCLES,
    ControllerModel,
    ControllerSpec,
    Param,
    ParamError,
)

IMPLS: dict[str, tuple[str, str]] = {
    "fifo": ("numasim.memctrl.fifo", "FifoController"),
    "curve": ("numasim.memctrl.curve", "CurveController"),
    "dram": ("numasim.memctrl.dram", "DramController"),
}
"""name -> (module, class) of every model; loaded on first use."""

FIFO = ControllerSpec("fifo")


def model_class(impl: str) -> type[ControllerModel]:
    """The class of model ``impl``; :class:`ParamError` (key ``impl``) naming the valid ones
    when there is none."""
    valid = ", ".join(IMPLS)
    if impl not in IMPLS:
        raise ParamError("impl", f"unknown memory-controller model {impl!r}",
                         f"valid: {valid}")
    mod, cls = IMPLS[impl]
    try:
        return getattr(importlib.import_module(mod), cls)
    except (ImportError, AttributeError):
        raise ParamError("impl", f"memory-controller model {impl!r} is not available in "
                         "this numasim", f"valid: {valid}") from None


def check_spec(spec: ControllerSpec) -> None:
    """Raise :class:`ParamError` if ``spec`` names an unknown model or a bad parameter."""
    model_class(spec.impl).resolve(spec)


def make_model(spec: ControllerSpec | None, bandwidth_GBps: float, line_bytes: int,
               cpu_ghz: float) -> ControllerModel:
    """The controller model of one node (``None``: fifo)."""
    spec = spec or FIFO
    return model_class(spec.impl)(spec, bandwidth_GBps, line_bytes, cpu_ghz)


def controller_tables(machine, mc_of_node: np.ndarray, nres: int
                      ) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """Per resource: its controller model (None for links and caps, and for a model that
    adds no latency and ignores the traffic mix), and the fast engine's tables -- ``n[r]``
    points of utilisation ``u[r, :n]`` and extra cycles ``w[r, :n]`` (n = 0: no extra
    latency, today's server)."""
    models: list = [None] * nres
    ghz, line = float(machine.cpu_ghz), int(machine.cache_line)
    for nid in machine.memory_nodes:
        r = int(mc_of_node[nid])
        m = make_model(machine.controller_spec(nid), machine.mc_bandwidth(nid), line, ghz)
        if m.extra or m.mix_aware:
            models[r] = m
    width = max([len(m.wait_table()[0]) for m in models if m is not None] + [1])
    n = np.zeros(nres, dtype=np.int64)
    u = np.zeros((nres, width))
    w = np.zeros((nres, width))
    for r, m in enumerate(models):
        if m is not None:
            tu, tw = m.wait_table()
            n[r] = len(tu)
            u[r, :n[r]] = tu
            w[r, :n[r]] = tw
    return models, n, u, w


def describe(impl: str) -> str:
    """The model's parameters, one per line, for ``--help`` texts and errors."""
    cls = model_class(impl)
    lines = [f"{impl}: {cls.description}"]
    for p in cls.params:
        d = "required" if p.required else f"default {p.default!r}"
        src = f"; source: {p.source}" if p.source else ""
        lines.append(f"  {p.name}: {p.description} ({d}{src})")
    return "\n".join(lines)


__all__ = ["COMMON_PARAMS", "REQUIRED", "WINDOW_CYCLES", "ControllerModel", "ControllerSpec",
           "Param", "ParamError", "IMPLS", "FIFO", "model_class", "check_spec", "make_model",
           "controller_tables", "describe"]
