"""khugepaged's knobs: names, Linux's defaults, what each ``*_store`` accepts.

A leaf module (it imports nothing of numasim's but the errors), so the machine YAML loader,
the command line and the simulated kernel (:mod:`numasim.mm.khugepaged`) check them the same
way without importing each other.  The names are the files under
``/sys/kernel/mm/transparent_hugepage/khugepaged/``.
"""

from __future__ import annotations

from typing import Any

KNOBS = {"pages_to_scan": 4096, "scan_sleep_millisecs": 10000,
         "alloc_sleep_millisecs": 60000, "max_ptes_none": 511, "max_ptes_swap": 64,
         "max_ptes_shared": 256, "defrag": 1}
"""khugepaged's knobs and Linux's defaults (``khugepaged_init``; defrag: ``transparent_
hugepage_flags`` has TRANSPARENT_HUGEPAGE_DEFRAG_KHUGEPAGED_FLAG set)."""
KNOB_RANGE = {"pages_to_scan": (1, 0xFFFFFFFF), "scan_sleep_millisecs": (0, 0xFFFFFFFF),
              "alloc_sleep_millisecs": (0, 0xFFFFFFFF), "max_ptes_none": (0, 511),
              "max_ptes_swap": (0, 511), "max_ptes_shared": (0, 511), "defrag": (0, 1)}
"""What each ``*_store`` accepts (else EINVAL): pages_to_scan non-zero, max_ptes_* at most
HPAGE_PMD_NR - 1, defrag 0 or 1."""


def check_knob(name: str, value: Any) -> int:
    """The knob's value as its sysfs store takes it; ValueError saying why not."""
    if name not in KNOBS:
        raise ValueError(f"unknown khugepaged knob {name!r}")
    lo, hi = KNOB_RANGE[name]
    if isinstance(value, bool):
        value = int(value)
    try:
        v = int(str(value).strip(), 10)
    except ValueError:
        raise ValueError(f"khugepaged/{name} must be a whole number, not {value!r}") from None
    if not lo <= v <= hi:
        raise ValueError(f"khugepaged/{name} = {v} is out of range (Linux's store answers "
                         "EINVAL)")
    return v


def validate_knobs(settings: Any, where: str = "kernel.khugepaged") -> dict[str, int]:
    """Knobs from YAML or the command line, checked: one ConfigError naming the field and
    what is valid for an unknown name or a value out of range."""
    from numasim.errors import ConfigError

    if not isinstance(settings, dict):
        raise ConfigError(f"{where} must be a mapping of knob: value", field=where,
                          hint=f"knobs: {', '.join(KNOBS)}")
    out: dict[str, int] = {}
    for name, value in settings.items():
        try:
            out[str(name)] = check_knob(str(name), value)
        except ValueError as e:
            lo_hi = KNOB_RANGE.get(str(name))
            hint = (f"valid: {lo_hi[0]}..{lo_hi[1]}" if lo_hi else
                    f"knobs: {', '.join(KNOBS)}")
            raise ConfigError(str(e), field=f"{where}.{name}", hint=hint) from None
    return out
