"""numasim's Python API: run one workload on one machine.

    >>> import numasim
    >>> r = numasim.run("clx-2s", "configs/workloads/stream-triad.yaml", seed=1)
    >>> r.bandwidth_GBps, r.latency_ns["p99"]

``run`` takes a machine (a :class:`~numasim.topology.model.Machine`, a file or a shipped name)
and a workload (a :class:`~numasim.workloads.model.Workload`, a YAML file, or a built-in
kernel name with options as keywords: ``run(m, "stream", kernel="triad", threads=16,
size="1GiB")``) and returns a :class:`RunResult`.

Determinism: the same machine, workload, engine, kernel, seed and options give the same
:meth:`RunResult.to_json` byte for byte, with one exception by design: ``host_seconds`` (how
long the simulation took on this computer).  ``to_json(host=False)`` leaves it out; the
determinism test compares that form.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from numasim import __version__
from numasim.errors import ConfigError
from numasim.topology.model import Machine


@dataclass
class RunResult:
    """What one run measured.  :meth:`to_dict` is the JSON document."""

    data: dict[str, Any]
    host_seconds: float = 0.0
    histogram: np.ndarray | None = field(default=None, repr=False)

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("data")
        if data is not None and name in data:
            return data[name]
        raise AttributeError(name)

    def to_dict(self, host: bool = True) -> dict[str, Any]:
        out = dict(self.data)
        if host:
            out["host_seconds"] = round(self.host_seconds, 3)
        return out

    def to_json(self, host: bool = True, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(host), indent=indent, allow_nan=False) + "\n"

    def summary(self) -> str:
        from numasim.machine.report import summary

        return summary(self)

    def plot(self, path=None):
        """A 2x2 figure of this run (pages per node, latency CDF, bandwidth over time,
        controller and link utilisation); also saved to ``path`` (.png/.svg/.pdf) if given.
        Drawn by :func:`numasim.report.run_plot.plot_run`."""
        from numasim.report.run_plot import plot_run

        return plot_run(self, path)


def _machine(machine) -> Machine:
    if isinstance(machine, Machine):
        return machine
    from numasim.topology.loaders import load_machine

    return load_machine(machine)


def _workload(workload, options: dict[str, Any]):
    from numasim.workloads.model import Workload

    if isinstance(workload, Workload):
        if options:
            raise ConfigError(f"unexpected option {sorted(options)[0]!r} with a Workload "
                              "object", field=sorted(options)[0])
        return workload
    from numasim.workloads.kernels import BUILTIN, build_kernel

    name = str(workload)
    if name in BUILTIN:
        return build_kernel(name, **options)
    if options:
        raise ConfigError(f"options {sorted(options)} only apply to built-in kernels",
                          field=sorted(options)[0], hint="built-in: " + ", ".join(BUILTIN))
    if not os.path.exists(name):
        from numasim import shipped

        found = shipped.find("workloads", name)
        if found is None:
            raise ConfigError("no such workload file, shipped workload or built-in kernel",
                              file=name, hint="built-in: " + ", ".join(BUILTIN) + "; shipped: "
                              + ", ".join(shipped.names("workloads")))
        name = str(found)
    from numasim.workloads.schema import load_workload

    return load_workload(name)


def run(machine, workload, *, engine: str = "fast", kernel: str = "6.12", seed: int = 0,
        numactl: list[str] | str | None = None, cpu: dict[str, Any] | None = None,
        quantum: int | None = None, concentration: bool = True,
        weights: dict[int, int] | None = None, progress: bool = False,
        **options: Any) -> RunResult:
    """Simulate ``workload`` on ``machine`` and return what it measured.

    ``numactl``: options placed in front of the workload (``"--interleave=all"``), added
    after the workload's own; ``cpu``: CPU-model overrides (``mlp``, ``write_allocate``,
    ``fault_ns``, ``hit_ns``, ``zero_gap_cycles``, ``llc``: ``{"size": ..., "ways": ...}``);
    ``quantum``: fixed quantum of the fast engine in cycles; ``concentration``: let the fast
    engine see requests bunched in time (convoys; see
    :class:`~numasim.machine.params.EngineParams`); ``weights``: weighted-interleave
    weights per node (as written to sysfs); other keywords are built-in kernel options.
    """
    from numasim.machine.params import CpuParams, EngineParams, LlcParams
    from numasim.machine.report import build_result
    from numasim.machine.sim import Simulation

    m = _machine(machine)
    wl = _workload(workload, options)
    if numactl:
        extra = numactl.split() if isinstance(numactl, str) else list(numactl)
        wl = replace(wl, numactl=list(wl.numactl) + extra)  # never change the caller's
    overrides = dict(wl.cpu)
    overrides.update(cpu or {})
    llc = overrides.pop("llc", None)
    params = CpuParams().with_overrides(**overrides)
    if llc:
        if isinstance(llc, LlcParams):
            lp = llc
        elif llc is True:
            lp = LlcParams()
        else:
            lp = LlcParams(**{k: v for k, v in dict(llc).items()})
        params = CpuParams(**{**params.__dict__, "llc": lp})
        params.check()
    ep = EngineParams(quantum=quantum, concentration=concentration)
    sim = Simulation(m, wl, kernel=kernel, seed=seed, cpu=params, engine_params=ep,
                     weights=weights, progress=progress)
    sim.run(engine)
    return build_result(sim)


def sweep(*args, **kwargs):
    """Run an experiment sweep (provided by :mod:`numasim.experiments`)."""
    from numasim.experiments import api as exp_api  # type: ignore[attr-defined]

    return exp_api.sweep(*args, **kwargs)


__all__ = ["run", "RunResult", "sweep", "__version__"]
