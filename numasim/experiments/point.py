"""Run one point: a resolved config in, the run's JSON document out.

This is the function workers call.  It needs nothing but the config (the machine and the
workload travel inside it), so it runs the same in this process, in a local worker process
or on a Dask worker on another computer.  It builds the run's :class:`~numasim.spec.RunSpec`
from the config as every other front door does, and does no timing of its own.
"""

from __future__ import annotations

import functools
import os
from typing import Any


@functools.lru_cache(maxsize=16)
def point_machine(name: str, text: str):
    """The machine a point's config embeds (``config["machine"]``: its name and canonical
    YAML), read once per process."""
    from numasim.topology.loaders import yaml_machine

    return yaml_machine.loads(text, file=f"{name} (from the point's config)")


def build_workload(config: dict[str, Any]):
    """The :class:`~numasim.workloads.model.Workload` a resolved config describes."""
    w = config["workload"]
    if "kernel" in w:
        from numasim.workloads.kernels import build_kernel

        opts = {k: v for k, v in w.items() if k != "kernel"}
        return build_kernel(w["kernel"], **opts)
    from numasim.workloads.schema import loads

    local = config.get("_local") or {}
    wl = loads(w["yaml"], file=local.get("workload_file") or w.get("source"))
    for k, v in (w.get("overrides") or {}).items():
        setattr(wl, k, v)
    return wl


def kernel_machine(machine, config: dict[str, Any]):
    """The point's machine with its ``numa_balancing`` / ``thp`` / ``khugepaged`` settings,
    if it has any (:mod:`numasim.kernel_settings`)."""
    nb = config.get("numa_balancing")
    if nb is None and config.get("thp") is None and config.get("khugepaged") is None:
        return machine
    from numasim.kernel_settings import with_kernel_settings

    knobs = {k: v for k, v in (nb or {}).items() if k != "numa_balancing"}
    return with_kernel_settings(machine, numa_balancing=None if nb is None else
                                nb["numa_balancing"], knobs=knobs, thp=config.get("thp"),
                                khugepaged=config.get("khugepaged"))


def run_point(config: dict[str, Any]) -> dict[str, Any]:
    """Simulate one point; returns :meth:`RunResult.to_dict` without host data.

    ``host_seconds`` is left out so that results are the same bytes on every computer; the
    runner measures the time a point took itself.  A point runs on one host thread (the
    sweep runs points in parallel) unless ``NUMASIM_HOST_THREADS`` says otherwise.
    """
    from numasim.machine.ahead import ENV as AHEAD_ENV
    from numasim.spec import build_spec
    from numasim.wiring import simulate

    m = config["machine"]
    spec = build_spec(kernel_machine(point_machine(m["name"], m["yaml"]), config),
                      build_workload(config),
                      engine=config["engine"], linux=config["linux"], seed=config["seed"],
                      numactl=list(config["numactl"]), cpu=dict(config["cpu"]),
                      quantum=config.get("quantum"), weights=config.get("weights"),
                      fast_forward=config.get("fast_forward"),
                      host_threads=None if os.environ.get(AHEAD_ENV) else 1)
    return simulate(spec).to_dict(host=False)
