"""The parameters an experiment can set or sweep, how they are spelled, and how each value is
checked.

Canonical names are the keywords of :func:`numasim.api.run` (``machine``, ``workload``,
``engine``, ``linux`` -- the Linux generation, ``seed``, ``numactl``, ``cpu``, ``weights``,
``quantum``, ``fast_forward``) plus dotted names for the options of a built-in workload
(``workload.threads``, ``workload.size``...) and of the CPU model (``cpu.mlp``...).  Short
spellings read better in a sweep: ``policy`` is ``numactl``, ``threads`` is
``workload.threads``, ``size`` is ``workload.size`` and so on (:data:`ALIASES`); ``kernel``
is the old name of ``linux`` (inside ``workload:``, ``kernel`` names the built-in workload
kernel, ``stream``...).

Every checker takes the value as YAML gave it and returns it normalised (sizes in bytes,
numactl options as a list, the Linux generation as a string) or raises ``ValueError`` with a
message that says what would be valid.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from numasim import units
from numasim.errors import did_you_mean

ENGINES = ("fast", "exact")
TOP_LEVEL = ("machine", "workload", "engine", "linux", "seed", "numactl", "cpu", "weights",
             "quantum", "fast_forward", "numa_balancing", "thp", "khugepaged")


def _kernels() -> tuple[str, ...]:
    from numasim.mm.constants import KERNELS

    return tuple(KERNELS)


def _workload_options() -> tuple[str, ...]:
    from numasim.workloads.kernels import OPTIONS

    return tuple(o for o in OPTIONS if o != "cpu")


def _cpu_fields() -> tuple[str, ...]:
    from numasim.machine.params import CpuParams

    return tuple(f.name for f in fields(CpuParams))


ALIASES = {"policy": "numactl", "threads": "workload.threads", "size": "workload.size",
           "placement": "workload.placement", "init": "workload.init", "op": "workload.op",
           "repeat": "workload.repeat", "stride": "workload.stride", "theta": "workload.theta",
           "count": "workload.count", "compute": "workload.compute",
           "producers": "workload.producers", "write": "workload.write",
           "shift": "workload.shift", "value": "workload.value",
           "write_fraction": "workload.write_fraction",
           "cpus": "workload.cpus", "kernel": "linux"}


def all_names() -> list[str]:
    """Every spelling a case, grid or zip may use (for 'did you mean')."""
    return (list(ALIASES) + list(TOP_LEVEL) + [f"workload.{o}" for o in _workload_options()]
            + [f"cpu.{f}" for f in _cpu_fields()])


def canonical(name: str) -> str | None:
    """The canonical name of a parameter spelling, or None if there is no such parameter."""
    name = ALIASES.get(name, name)
    if name in TOP_LEVEL:
        return name
    head, _, tail = name.partition(".")
    if head == "workload" and tail in _workload_options():
        return name
    if head == "cpu" and tail in _cpu_fields():
        return name
    return None


def unknown_hint(name: str) -> str:
    return did_you_mean(name, all_names())


# ------------------------------------------------------------------------- checkers
def _short(v: Any) -> str:
    t = repr(v)
    return t if len(t) <= 50 else t[:47] + "..."


def _int(v: Any, what: str, lo: int | None = None, none_ok: bool = False) -> int | None:
    if v is None and none_ok:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{what} must be a whole number, got {_short(v)}")
    if lo is not None and v < lo:
        raise ValueError(f"{what} must be at least {lo}, got {v}")
    return v


def _num(v: Any, what: str, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{what} must be a number, got {_short(v)}")
    if positive and v <= 0:
        raise ValueError(f"{what} must be positive, got {v}")
    if not positive and v < 0:
        raise ValueError(f"{what} must not be negative, got {v}")
    return float(v)


def _bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{what} must be true or false, got {_short(v)}")
    return v


def _size(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise ValueError(f"{what} must be a size such as 64MiB, got {_short(v)}")
    # a bare whole number is bytes (as the built-in kernels read it); text needs its unit
    n = v if isinstance(v, int) else units.parse_size(v)  # UnitError is a ValueError
    if n <= 0:
        raise ValueError(f"{what} must be positive, got {_short(v)}")
    return n


def _choice(v: Any, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(v, str) or v not in choices:
        raise ValueError(f"unknown {what} {_short(v)}; " + did_you_mean(str(v), choices))
    return v


def check_engine(v: Any) -> str:
    return _choice(v, ENGINES, "engine")


def check_linux(v: Any) -> str:
    """The Linux generation; YAML reads an unquoted 6.12 as a number, which is fine."""
    if isinstance(v, float | int) and not isinstance(v, bool):
        v = repr(v)
    return _choice(v, _kernels(), "Linux generation")


def check_seed(v: Any) -> int:
    return _int(v, "seed", 0)  # type: ignore[return-value]


def check_numactl(v: Any) -> list[str]:
    """numactl options: one string (split as a shell would) or a list; '' or [] is none."""
    if v is None:
        return []
    if isinstance(v, str):
        try:
            return shlex.split(v)
        except ValueError as e:
            raise ValueError(f"cannot split {v!r} into options: {e}") from None
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise ValueError(f"numactl options must be a string such as '--interleave=all' or a list "
                     f"of strings, got {_short(v)}")


def check_quantum(v: Any) -> int | None:
    return _int(v, "quantum", 1, none_ok=True)


def check_fast_forward(v: Any) -> str | None:
    """Fast-forward as the spec reads it, normalised to ``"WINDOW,SKIP,TOLERANCE"`` (None:
    off) so that a point's config is plain data."""
    from numasim.errors import NumasimError
    from numasim.machine.fastforward import check_fast_forward as check

    try:
        ff = check(v)
    except NumasimError as e:
        p = e.problems[0]
        raise ValueError(f"{p.message} ({p.hint})") from None
    return None if ff is None else ff.text()


def check_weights(v: Any) -> list[int] | dict[int, int] | None:
    """Weighted-interleave weights: ``"4:1"`` (one per node, in node order), ``"0=4,1=1"``
    (as ``numasim run --weights``) or a mapping ``{node: weight}``; null keeps the machine's
    (sysfs) weights.  Read by :func:`numasim.spec.read_weights`, the one reader of weights."""
    from numasim.spec import read_weights

    return read_weights(v)


def _llc(v: Any) -> dict[str, Any] | None:
    if v is None or v is False:
        return None
    from numasim.machine.params import LlcParams

    base = {f.name: getattr(LlcParams(), f.name) for f in fields(LlcParams)}
    if v is True:
        return base
    if not isinstance(v, dict):
        raise ValueError(f"cpu.llc must be true, false or a mapping with size, ways, hit_ns; "
                         f"got {_short(v)}")
    for k in v:
        if k not in base:
            raise ValueError(f"unknown key {k!r} in cpu.llc; " + did_you_mean(str(k), base))
    if "size" in v:
        base["size"] = _size(v["size"], "cpu.llc.size")
    if "ways" in v:
        base["ways"] = _int(v["ways"], "cpu.llc.ways", 1)
    if "hit_ns" in v:
        base["hit_ns"] = _num(v["hit_ns"], "cpu.llc.hit_ns")
    return base


def _tlb(v: Any) -> dict[str, Any] | None:
    if v is None or v is False:
        return None
    from numasim.errors import NumasimError
    from numasim.spec import tlb_params

    try:
        t = tlb_params(v)
    except NumasimError as e:
        p = e.problems[0]
        raise ValueError(f"{p.message}; {p.hint}" if p.hint else p.message) from None
    return {"entries": t.entries, "ways": t.ways, "walk": t.walk}


_CPU_CHECKS: dict[str, Callable[[Any], Any]] = {
    "mlp": lambda v: _int(v, "cpu.mlp", 1),
    "l2_mlp": lambda v: _int(v, "cpu.l2_mlp", 1),
    "prefetch": lambda v: _choice(v, ("off", "stream"), "cpu.prefetch"),
    "write_allocate": lambda v: _bool(v, "cpu.write_allocate"),
    "fault_ns": lambda v: _num(v, "cpu.fault_ns"),
    "zero_gap_cycles": lambda v: _num(v, "cpu.zero_gap_cycles"),
    "hit_ns": lambda v: _num(v, "cpu.hit_ns"),
    "llc": _llc,
    "tlb": _tlb,
}


def cpu_defaults() -> dict[str, Any]:
    from numasim.machine.params import CpuParams

    d = CpuParams()
    # the TLB is off unless given: no key, so configs without it stay as they were
    return {f.name: getattr(d, f.name) for f in fields(CpuParams) if f.name != "tlb"}


def check_cpu_field(name: str, v: Any) -> Any:
    check = _CPU_CHECKS.get(name)
    if check is None:  # a CpuParams field this module does not know yet: pass it through
        return v
    return check(v)


def check_cpu(v: Any) -> dict[str, Any]:
    """CPU-model overrides as a mapping; returns only the keys given, checked."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError(f"cpu must be a mapping such as {{mlp: 12}}, got {_short(v)}")
    names = _cpu_fields()
    out = {}
    for k, x in v.items():
        if k not in names:
            raise ValueError(f"unknown CPU parameter {k!r}; " + did_you_mean(str(k), names))
        out[k] = check_cpu_field(k, x)
    return out


def _workload_checks() -> dict[str, Callable[[Any], Any]]:
    from numasim.workloads.kernels import INITS
    from numasim.workloads.model import PLACEMENTS, STREAM_OPS

    return {
        "threads": lambda v: _int(v, "threads", 1),
        "size": lambda v: _size(v, "size"),
        "init": lambda v: _choice(v, INITS, "init"),
        "op": lambda v: _choice(v, STREAM_OPS, "STREAM operation"),
        "repeat": lambda v: _int(v, "repeat", 1),
        "compute": lambda v: _int(v, "compute", 0, none_ok=True),
        "placement": lambda v: _choice(v, PLACEMENTS, "placement"),
        "cpus": _cpus,
        "pin": lambda v: _bool(v, "pin"),
        "stride": lambda v: _size(v, "stride"),
        "theta": lambda v: _num(v, "theta", positive=True),
        "count": lambda v: _int(v, "count", 1, none_ok=True),
        "producers": lambda v: _int(v, "producers", 1, none_ok=True),
        "write": lambda v: _bool(v, "write"),
        "shift": _shift,
        "value": lambda v: _size(v, "value"),
        "write_fraction": lambda v: _num(v, "write_fraction"),
    }


def _shift(v: Any) -> Any:
    """zipf/kv ``shift``: a fraction below 1, or a size."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1:
        return float(v)
    return _size(v, "shift")


def _cpus(v: Any) -> list[int] | None:
    if v is None:
        return None
    from numasim.yamlutil import _id_list

    out = _id_list(v)
    return out or None


def check_workload_option(name: str, v: Any) -> Any:
    check = _workload_checks().get(name)
    if check is None:
        return v
    return check(v)


def check_numa_balancing(v: Any) -> dict[str, int] | None:
    """NUMA balancing for a point: false/true, a mode 0-3 (``kernel.numa_balancing``; 2 is
    memory tiering), or a mapping of debugfs knobs (which turns it on; a ``numa_balancing``
    key in it gives the mode), as the machine's ``numa_balancing`` settings (``{"numa_balancing": 1,
    "scan_delay_ms": 100}``); null keeps the machine's own (:mod:`numasim.kernel_settings`)."""
    from numasim.errors import NumasimError
    from numasim.kernel_settings import check_knob

    if v is None:
        return None
    if isinstance(v, bool) or v in (0, 1, 2, 3):
        return {"numa_balancing": int(v)}
    if not isinstance(v, dict):
        raise ValueError(f"numa_balancing must be true, false, a mode 0-3 (2: memory tiering) "
                         f"or a mapping of knobs such as {{scan_delay_ms: 100}}, got "
                         f"{_short(v)}")
    out = {"numa_balancing": 1}
    for name, value in v.items():
        if name == "numa_balancing":  # the sysctl's mode beside the knobs (2: tiering)
            if isinstance(value, bool) or value not in (1, 2, 3):
                raise ValueError(f"numa_balancing.numa_balancing is the mode with the knobs: "
                                 f"1, 2 (memory tiering) or 3, got {_short(value)}")
            out["numa_balancing"] = int(value)
            continue
        try:
            out[str(name)] = check_knob(str(name), value, f"numa_balancing.{name}")
        except NumasimError as e:
            p = e.problems[0]
            raise ValueError(p.message + (f" ({p.hint})" if p.hint else "")) from None
    return out


def check_thp(v: Any) -> str | None:
    from numasim.kernel_settings import THP_CHOICES

    if v is None:
        return None
    if v not in THP_CHOICES:
        raise ValueError(f"thp must be one of {', '.join(THP_CHOICES)}, got {_short(v)}")
    return str(v)


def check_khugepaged(v: Any) -> dict[str, int] | None:
    """khugepaged's knobs by their sysfs names (:mod:`numasim.khugepaged_knobs`)."""
    from numasim.errors import NumasimError
    from numasim.khugepaged_knobs import validate_knobs

    if v is None:
        return None
    try:
        return validate_knobs(v, "khugepaged")
    except NumasimError as e:
        p = e.problems[0]
        raise ValueError(p.message + (f" ({p.hint})" if p.hint else "")) from None


def check_value(name: str, v: Any) -> Any:
    """Check one value of canonical parameter ``name`` (not machine/workload: see expand)."""
    if name == "engine":
        return check_engine(v)
    if name == "linux":
        return check_linux(v)
    if name == "seed":
        return check_seed(v)
    if name == "numactl":
        return check_numactl(v)
    if name == "quantum":
        return check_quantum(v)
    if name == "fast_forward":
        return check_fast_forward(v)
    if name == "weights":
        return check_weights(v)
    if name == "numa_balancing":
        return check_numa_balancing(v)
    if name == "thp":
        return check_thp(v)
    if name == "khugepaged":
        return check_khugepaged(v)
    if name == "cpu":
        return check_cpu(v)
    head, _, tail = name.partition(".")
    if head == "workload" and tail:
        return check_workload_option(tail, v)
    if head == "cpu" and tail:
        return check_cpu_field(tail, v)
    return v


def display(name: str, v: Any) -> str:
    """How a value reads in a table column or a plot legend."""
    if name == "numactl":
        if isinstance(v, list):
            v = " ".join(v)
        return v if v else "default"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if name == "numa_balancing" and isinstance(v, dict):
        if not v.get("numa_balancing"):
            return "off"
        knobs = ",".join(f"{k}={x}" for k, x in v.items() if k != "numa_balancing")
        return f"on ({knobs})" if knobs else "on"
    if isinstance(v, dict):
        if name == "weights":
            return ":".join(str(w) for w in v.values())
        if name == "machine":
            return str(v.get("name", "inline"))
        if name == "workload":
            return str(v.get("kernel", v.get("name", "inline")))
        return ",".join(f"{k}={x}" for k, x in v.items())
    if isinstance(v, list):
        return ":".join(map(str, v)) if name == "weights" else ",".join(map(str, v))
    if name == "machine" and isinstance(v, str):
        from pathlib import Path

        return Path(v).stem if v.endswith((".yaml", ".yml")) else v
    return str(v)
