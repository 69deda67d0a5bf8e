"""numasim's Python API: run one workload on one machine.

    >>> import numasim
    >>> r = numasim.run("clx-2s", "configs/workloads/stream-triad.yaml", seed=1)
    >>> r.bandwidth_GBps, r.latency_ns["p99"]

``run`` takes a machine (a :class:`~numasim.topology.model.Machine`, a file or a shipped name)
and a workload (a :class:`~numasim.workloads.model.Workload`, a YAML file, or a built-in
kernel name with options as keywords: ``run(m, "stream", op="triad", threads=16,
size="1GiB", linux="6.1")``) and returns a :class:`RunResult`.

Determinism: the same machine, workload, engine, Linux generation, seed and options give the same
:meth:`RunResult.to_json` byte for byte, with one exception by design: ``host_seconds`` (how
long the simulation took on this computer).  ``to_json(host=False)`` leaves it out; the
determinism test compares that form.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from numasim._version import __version__
from numasim.errors import ConfigError
from numasim.machine.report import RunResult
from numasim.topology.model import Machine


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


def run(machine, workload, *, engine: str = "fast", linux: str = "6.12", seed: int = 0,
        numactl: list[str] | str | None = None, cpu: dict[str, Any] | None = None,
        quantum: int | None = None, concentration: bool = True,
        weights: Any = None, progress: bool = False, fast_forward: Any = None,
        numa_balancing: bool | int | None = None,
        balancing_knobs: dict[str, int] | None = None,
        thp: str | None = None,
        **options: Any) -> RunResult:
    """Simulate ``workload`` on ``machine`` and return what it measured.

    ``linux``: the Linux generation whose policies place the pages (``"6.12"``, ``"6.1"``,
    ``"2.6.7"``); ``numactl``: options placed in front of the workload
    (``"--interleave=all"``), added after the workload's own; ``cpu``: CPU-model overrides
    (``mlp``, ``l2_mlp``, ``prefetch``: ``"off"``/``"stream"``, ``write_allocate``,
    ``fault_ns``, ``hit_ns``, ``zero_gap_cycles``, ``llc``:
    ``{"size": ..., "ways": ...}``, ``tlb``: True or ``{"entries": 1536, "ways": 12, "walk":
    True}``, a per-CPU TLB with page walks, :mod:`numasim.machine.tlb`); ``quantum``: fixed
    quantum of the fast engine in cycles;
    ``concentration``: let the fast engine see requests bunched in time (convoys; see
    :class:`~numasim.machine.params.EngineParams`); ``weights``: weighted-interleave
    weights per node (as written to sysfs: ``{0: 3, 1: 1}``, ``"0=3,1=1"`` or ``"3:1"``);
    ``fast_forward``: sample long steady phases instead of simulating every access (fast
    engine; off by default; True, ``"WINDOW,SKIP[,TOLERANCE]"`` such as ``"2,20"``, or
    ``{"window": 2, "skip": 20}``; see :mod:`numasim.machine.fastforward`);
    the keyword ``host_threads``: the host threads the fast engine's bound phase runs on
    (default: the ``NUMASIM_HOST_THREADS`` variable, else every CPU this process may use;
    the result is the same bytes whatever the number: :mod:`numasim.machine.ahead`);
    ``numa_balancing`` (True/1; 2 = memory tiering, 3 = both), ``balancing_knobs``
    (``{"scan_delay_ms": 100, "promote_rate_limit_MBps": 256}``...), ``thp``
    (``"always"``...), and the keyword ``thp_defrag`` (``"defer"``...; Linux's default
    ``"madvise"``): the simulated kernel's NUMA balancing and transparent huge pages
    (:mod:`numasim.kernel_settings`; None keeps the machine's, by default off / never;
    ``balancing_knobs={"task_placement": 0}`` keeps unpinned threads where they are);
    the keyword ``khugepaged_knobs`` (``{"scan_sleep_millisecs": 100}``...): khugepaged's knobs
    by their sysfs names (:mod:`numasim.mm.khugepaged`);
    other keywords are built-in kernel options (``op`` is the STREAM operation; ``pin=False``
    lets the threads run on any CPU the task may use, so NUMA balancing may move them:
    :mod:`numasim.mm.task_placement`).

    Everything is checked once into a :class:`~numasim.spec.RunSpec` before the run starts
    (:func:`~numasim.spec.build_spec`); :func:`numasim.wiring.simulate` runs it.
    """
    from numasim.kernel_settings import with_kernel_settings
    from numasim.spec import build_spec
    from numasim.wiring import simulate

    linux = _generation(linux, options)
    khugepaged_knobs = options.pop("khugepaged_knobs", None)
    thp_defrag = options.pop("thp_defrag", None)
    host_threads = options.pop("host_threads", None)
    m = with_kernel_settings(_machine(machine), numa_balancing=numa_balancing,
                             knobs=balancing_knobs, thp=thp, khugepaged=khugepaged_knobs,
                             thp_defrag=thp_defrag)
    spec = build_spec(m, _keyword_fields(_workload, workload, options), engine=engine,
                      linux=linux, seed=seed, numactl=numactl, cpu=cpu, quantum=quantum,
                      concentration=concentration, weights=weights,
                      fast_forward=fast_forward, host_threads=host_threads)
    return simulate(spec, progress=progress)


def _keyword_fields(fn, *args):
    """``fn(*args)``, its input errors naming the keyword a Python caller passed
    (``threads``, ``write_fraction``) where the kernels name the command's flag
    (``--threads``, ``--write-fraction``)."""
    try:
        return fn(*args)
    except ConfigError as e:
        raise ConfigError(problems=[
            dataclasses.replace(p, field=p.field[2:].replace("-", "_"))
            if p.field and p.field.startswith("--") else p for p in e.problems]) from None


def _generation(linux: str, options: dict[str, Any]) -> str:
    """``kernel=`` was the Linux generation's old keyword: still read when its value is a
    generation, refused with the right name when it is a STREAM operation."""
    if "kernel" not in options:
        return linux
    from numasim.spec import linux_generations
    from numasim.workloads.model import STREAM_OPS

    value = options.pop("kernel")
    text = repr(value) if isinstance(value, float) else str(value)
    if text in linux_generations():
        return text
    if text in STREAM_OPS:
        raise ConfigError(f"kernel={value!r}: the STREAM operation is called op",
                          field="kernel", hint=f"write op={value!r} (and linux='6.1' for the "
                                               "Linux generation)")
    raise ConfigError(f"unknown kernel={value!r}", field="kernel",
                      hint="the Linux generation is linux= (" +
                           ", ".join(linux_generations()) + "); the STREAM operation is op= ("
                           + ", ".join(STREAM_OPS) + ")")


__all__ = ["run", "RunResult", "__version__"]
