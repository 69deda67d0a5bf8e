"""The simulated kernel's memory-management switches for a run: NUMA balancing
(``kernel.numa_balancing`` and its debugfs scan knobs) and transparent huge pages
(``transparent_hugepage/enabled`` and ``defrag``).

They travel on the :class:`~numasim.topology.model.Machine` (``numa_balancing``, ``thp``), as
the machine YAML's ``kernel:`` block sets them, so every way of starting a run reaches them
the same way: the machine YAML, ``numasim run`` / ``numasim numactl`` (``--numa-balancing``,
``--balancing-knob NAME=VALUE``, ``--thp MODE``, ``--thp-defrag MODE``), ``numasim script``,
and Python (``numasim.run(..., numa_balancing=True, balancing_knobs={...}, thp="always",
thp_defrag="defer")``; YAML ``kernel: transparent_hugepage_defrag: defer``).
khugepaged's knobs (:mod:`numasim.mm.khugepaged`) travel the same way: YAML ``kernel:
khugepaged: {NAME: VALUE}``, ``--khugepaged-knob NAME=VALUE``, ``khugepaged_knobs={...}``.

numasim's default is today's static placement: balancing off, THP ``never`` (reproducible,
and what the oracle boots with); Debian's 6.1 and 6.12 kernels boot with balancing on and THP
``always``.  Every result says which is active (``kernel_mm`` in the JSON, the summary's
``kernel`` line).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from numasim.errors import ConfigError

THP_CHOICES = ("always", "madvise", "never")
THP_DEFRAG_CHOICES = ("always", "defer", "defer+madvise", "madvise", "never")
"""``transparent_hugepage/defrag`` (Linux's default ``madvise``)."""
NONZERO_KNOBS = ("scan_size_mb", "scan_period_min_ms", "scan_period_max_ms")


def knob_names() -> tuple[str, ...]:
    """The debugfs knobs, the tiering rate limit (a sysctl, numasim.mm.numa_promote) and
    numasim's task-placement switch (numasim.mm.task_placement)."""
    from numasim.mm.numa_balancing import KNOB_DEFAULTS, PLACEMENT_KNOB

    return (*KNOB_DEFAULTS, "promote_rate_limit_MBps", PLACEMENT_KNOB)


def check_knob(name: str, value: Any, field: str) -> int:
    """A scan knob's value as Linux's debugfs file takes it (refusing 0 where Linux would
    divide by it), or one clear ConfigError."""
    if name not in knob_names():
        raise ConfigError(f"unknown NUMA-balancing knob {name!r}", field=field,
                          hint="valid knobs: " + ", ".join(knob_names()))
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if name == "task_placement" and value not in (0, 1) or isinstance(value, bool):
        raise ConfigError(f"task_placement must be 0 (off) or 1 (on), got {value!r}",
                          field=field, hint="task_placement=0 keeps every thread on its "
                                            "CPU while pages still migrate")
    top = 1 << 31 if name == "promote_rate_limit_MBps" else 1 << 32
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < top:
        unit = "MB/s" if name.endswith("MBps") else "MiB" if name.endswith("_mb") else "ms"
        raise ConfigError(f"NUMA-balancing knob {name} must be a whole number of {unit} "
                          f"below {top}, got {value!r}", field=field,
                          hint="e.g. scan_delay_ms=100, promote_rate_limit_MBps=256")
    if value == 0 and name in NONZERO_KNOBS:
        raise ConfigError(f"NUMA-balancing knob {name} must be at least 1 (0 would divide by "
                          "zero in task_scan_min/task_scan_max)", field=field,
                          hint=f"e.g. {name}=" + ("1" if name.endswith("_mb") else "100"))
    return int(value)


def parse_knob(item: str, field: str = "--balancing-knob") -> tuple[str, int]:
    """``NAME=VALUE`` as the command line gives a knob."""
    name, eq, value = item.partition("=")
    if not eq:
        raise ConfigError(f"bad NUMA-balancing knob {item!r}: not NAME=VALUE", field=field,
                          hint="e.g. --balancing-knob scan_delay_ms=100; knobs: "
                               + ", ".join(knob_names()))
    return name.strip(), check_knob(name.strip(), value, field)


def check_thp(mode: Any, field: str = "--thp") -> str:
    if mode not in THP_CHOICES:
        raise ConfigError(f"unknown transparent_hugepage mode {mode!r}", field=field,
                          hint="valid: " + ", ".join(THP_CHOICES))
    return str(mode)


def check_thp_defrag(mode: Any, field: str = "--thp-defrag") -> str:
    """A ``transparent_hugepage/defrag`` mode, or one clear ConfigError."""
    if mode not in THP_DEFRAG_CHOICES:
        raise ConfigError(f"unknown transparent_hugepage defrag mode {mode!r}", field=field,
                          hint="valid: " + ", ".join(THP_DEFRAG_CHOICES) + " (Linux's "
                               "default madvise: only MADV_HUGEPAGE regions reclaim for a THP; "
                               "defer wakes kswapd, always reclaims directly)")
    return str(mode)


def parse_khugepaged_knob(item: str, field: str = "--khugepaged-knob") -> tuple[str, int]:
    """``NAME=VALUE`` for a khugepaged knob (the file name under
    ``/sys/kernel/mm/transparent_hugepage/khugepaged/``), checked as its ``*_store`` does."""
    from numasim.khugepaged_knobs import KNOBS, validate_knobs

    name, eq, value = item.partition("=")
    if not eq:
        raise ConfigError(f"bad khugepaged knob {item!r}: not NAME=VALUE", field=field,
                          hint="e.g. --khugepaged-knob scan_sleep_millisecs=100; knobs: "
                               + ", ".join(KNOBS))
    name = name.strip()
    return name, validate_knobs({name: value.strip()}, field)[name]


def with_kernel_settings(machine, *, numa_balancing: bool | int | None = None,
                         knobs: dict[str, Any] | None = None, thp: str | None = None,
                         field: str = "numa_balancing",
                         khugepaged: dict[str, Any] | None = None,
                         thp_defrag: str | None = None):
    """The machine with these switches set (None: keep the machine's own);
    ``khugepaged``: knobs by their sysfs names, merged over the machine's."""
    settings = dict(machine.numa_balancing)
    if numa_balancing is not None:
        if numa_balancing not in (0, 1, 2, 3, 4, True, False):
            raise ConfigError(f"numa_balancing must be 0-4 (or false/true), got "
                              f"{numa_balancing!r}", field=field,
                              hint="0 off, 1 normal, 2 memory tiering (promotion, "
                                   "numasim.mm.numa_promote), 3 both, 4 scanner only")
        settings["numa_balancing"] = int(numa_balancing)
    for name, value in (knobs or {}).items():
        settings[name] = check_knob(name, value, f"{field}.{name}")
    changes: dict[str, Any] = {}
    if thp is not None:
        changes["thp"] = check_thp(thp, "thp")
    if thp_defrag is not None:
        changes["thp_defrag"] = check_thp_defrag(thp_defrag, "thp_defrag")
    if settings != dict(machine.numa_balancing):
        changes["numa_balancing"] = tuple(settings.items())
    if khugepaged:
        from numasim.khugepaged_knobs import validate_knobs

        kh = dict(getattr(machine, "khugepaged", ()))
        kh.update(validate_knobs(dict(khugepaged), "khugepaged"))
        changes["khugepaged"] = tuple(kh.items())
    return dataclasses.replace(machine, **changes) if changes else machine


def describe(machine, k=None, balancing: bool | None = None) -> dict[str, Any]:
    """What a result prints: is balancing on, with which knobs, which THP mode (and, with
    THP on and the run's kernel ``k`` given, its fault counters from /proc/vmstat).
    ``balancing``: whether the run really had it on (Linux 2.6.7 has none), if known."""
    from numasim.mm.numa_balancing import KNOB_DEFAULTS

    settings = dict(machine.numa_balancing)
    mode = int(settings.pop("numa_balancing", 0))
    on = bool(mode) if balancing is None else balancing
    placement = bool(settings.pop("task_placement", 1))
    knobs = dict(KNOB_DEFAULTS, **settings)
    out: dict[str, Any] = {"numa_balancing": (mode or 1) if on else 0,
                           "balancing_knobs": knobs if on else None,
                           "thp": getattr(machine, "thp", "never")}
    if on:  # numasim.mm.task_placement: unpinned threads move toward their memory
        out["task_placement"] = placement
    if k is not None and out["thp"] != "never":
        from numasim.mm import state as S
        from numasim.mm.huge_memory import thp_event
        from numasim.mm.khugepaged import EVENTS, vm_event

        out["thp_vmstat"] = {
            "thp_fault_alloc": int(k.ks.vmstat[S.VM_THP_FAULT_ALLOC]),
            "thp_fault_fallback": int(k.ks.vmstat[S.VM_THP_FAULT_FALLBACK]),
            "thp_zero_page_alloc": int(thp_event(k, "thp_zero_page_alloc") or 0),
            **{e: int(vm_event(k, e) or 0) for e in EVENTS[:2]}}
    if out["thp"] != "never":
        from numasim.khugepaged_knobs import KNOBS

        out["thp_defrag"] = getattr(machine, "thp_defrag", "madvise")

        out["khugepaged"] = dict(KNOBS, **dict(getattr(machine, "khugepaged", ())))
    return out
