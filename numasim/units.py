"""Quantities with explicit units: sizes, times, bandwidths, frequencies.

A configuration never holds a bare number where a unit matters: ``64GiB``, ``81.2ns``,
``122GB/s``, ``2.1GHz``.  Binary prefixes (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones
(kB, MB, GB, TB) powers of 1000, as MLC and STREAM count bandwidth.  The formatters write the
shortest exact spelling, so a value read back is the value written.
"""

from __future__ import annotations

import re
from fractions import Fraction

_NUM = r"([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"

SIZE_UNITS = {
    "B": 1,
    "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50,
    "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    # numactl/ulimit style single letters are binary, as numactl's memsize() reads them
    "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
    "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
}
TIME_UNITS = {"ps": 1e-3, "ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}
BW_UNITS = {"B/s": 1e-9, "kB/s": 1e-6, "KB/s": 1e-6, "MB/s": 1e-3, "GB/s": 1.0, "TB/s": 1e3,
            "KiB/s": 1024 / 1e9, "MiB/s": 1024**2 / 1e9, "GiB/s": 1024**3 / 1e9}
FREQ_UNITS = {"Hz": 1e-9, "kHz": 1e-6, "MHz": 1e-3, "GHz": 1.0}


MAX_SIZE = (1 << 63) - 1
"""Sizes are bytes in a signed 64-bit integer, as the kernel's and numpy's counters are."""
MAX_EXPONENT = 30
"""``1e30`` reads; ``1e1000000000`` would make a billion-digit number first: refused."""


class UnitError(ValueError):
    """A quantity could not be read; the message says what would be valid."""


def _split(text: str | int | float, kind: str, units: dict) -> tuple[str, str]:
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise UnitError(f"expected a {kind} with a unit such as {_example(kind)}, got {text!r}")
    if isinstance(text, int | float):
        raise UnitError(f"a {kind} needs a unit, e.g. {_example(kind)} "
                        f"(got the bare number {text})")
    m = re.fullmatch(r"\s*" + _NUM + r"\s*([A-Za-zµ/]+)\s*", text)
    if not m:
        raise UnitError(f"cannot read {text!r} as a {kind}; write it like {_example(kind)}")
    unit = m.group(2)
    exp = re.search(r"[eE]([+-]?[0-9]+)$", m.group(1))
    if exp and abs(int(exp.group(1)[:9])) > MAX_EXPONENT:
        raise UnitError(f"the exponent of {text[:40]!r} is beyond +-{MAX_EXPONENT}")
    if unit not in units:
        raise UnitError(f"unknown {kind} unit {unit!r} in {text!r}; valid units: "
                        + ", ".join(units))
    return m.group(1), unit


def _example(kind: str) -> str:
    return {"size": "64GiB or 512MiB", "time": "81.2ns", "bandwidth": "122GB/s",
            "frequency": "2.1GHz"}[kind]


def parse_size(text: str | int) -> int:
    """Bytes from ``'64GiB'``, ``'512MiB'``, ``'4KiB'``, ``'4096B'`` (must be whole bytes)."""
    value, unit = _split(text, "size", SIZE_UNITS)
    nbytes = Fraction(value) * SIZE_UNITS[unit]
    if nbytes.denominator != 1:
        raise UnitError(f"{text!r} is not a whole number of bytes")
    if nbytes > MAX_SIZE:
        raise UnitError(f"{text!r} is 2^63 bytes or more; sizes must fit a signed 64-bit "
                        "count of bytes (less than 8 EiB = 8192 PiB)")
    return int(nbytes)


def parse_time_ns(text: str) -> float:
    """Nanoseconds from ``'81.2ns'``, ``'1.5us'``."""
    value, unit = _split(text, "time", TIME_UNITS)
    return float(value) * TIME_UNITS[unit]


def parse_bandwidth_GBps(text: str) -> float:
    """GB/s (10^9 bytes per second) from ``'122GB/s'``, ``'30562.8MB/s'``."""
    value, unit = _split(text, "bandwidth", BW_UNITS)
    return float(value) * BW_UNITS[unit]


def parse_freq_GHz(text: str) -> float:
    """GHz from ``'2.1GHz'`` or ``'2100MHz'``."""
    value, unit = _split(text, "frequency", FREQ_UNITS)
    return float(value) * FREQ_UNITS[unit]


def _num(x: float) -> str:
    """Shortest exact spelling of a float (repr round-trips), integers without '.0'."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def format_size(nbytes: int) -> str:
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        mult = SIZE_UNITS[unit]
        if nbytes >= mult and nbytes % mult == 0:
            return f"{nbytes // mult}{unit}"
    return f"{nbytes}B"


def format_time_ns(ns: float) -> str:
    return f"{_num(ns)}ns"


def format_bandwidth_GBps(gbps: float) -> str:
    return f"{_num(gbps)}GB/s"


def format_freq_GHz(ghz: float) -> str:
    return f"{_num(ghz)}GHz"


def human_bytes(nbytes: float) -> str:
    """For people, not for round trips: '1.5 GiB'."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        mult = SIZE_UNITS[unit]
        if abs(nbytes) >= mult:
            return f"{nbytes / mult:.4g} {unit}"
    return f"{int(nbytes)} B"
