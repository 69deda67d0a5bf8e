"""Linux's textual bitmaps: list format (``0-3,8``) and mask format (``0x00ff00ff,0x1``).

``parse_list``/``format_list`` mirror ``bitmap_parselist``/``bitmap_print_to_pagebuf`` with
``list=true`` (what ``cpulist``, ``cpuset.mems`` and ``/sys/.../has_memory`` use);
``parse_mask`` reads the comma-separated 32-bit hex words of ``cpumap`` and hwloc cpusets.

Both are bounded as the kernel's own bitmaps are: a bit at or past ``limit`` (``NR_CPUS`` for
CPUs, ``MAX_NUMNODES`` for nodes) is an error naming the bound, never a list of 10^20 items.
"""

from __future__ import annotations

from collections.abc import Iterable

NR_CPUS = 8192
"""``CONFIG_NR_CPUS`` at its x86-64 maximum (``MAXSMP``): no CPU number reaches it."""
MAX_NUMNODES = 1024
"""``1 << CONFIG_NODES_SHIFT`` (10, as Debian's x86-64 kernels): no node id reaches it."""


def _q(text: str) -> str:
    """A part of the input for a message: quoted, at most 40 characters."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _number(text: str, whole: str) -> int:
    t = text.strip()
    if not t.isdigit() or not t.isascii():
        raise ValueError(f"{_q(t)} in {_q(whole)} is not a non-negative whole number")
    if len(t) > 20:  # int() of a million digits is slow (and refused); no bitmap is that wide
        raise ValueError(f"{_q(t)} in {_q(whole)} is far too large")
    return int(t)


def _bound(n: int, limit: int, what: str, whole: str) -> None:
    if n >= limit:
        raise ValueError(f"{what} {n} in {_q(whole)} is not below {limit} "
                         f"({_bound_name(limit, what)})")


def _bound_name(limit: int, what: str) -> str:
    if limit == NR_CPUS:
        return "NR_CPUS, the most CPUs Linux supports"
    if limit == MAX_NUMNODES:
        return "MAX_NUMNODES, the most nodes Linux supports"
    return f"the largest {what} allowed here"


def parse_list(text: str, limit: int = NR_CPUS, what: str = "number") -> list[int]:
    """``'0-3,8,10-11'`` -> ``[0, 1, 2, 3, 8, 10, 11]``; empty -> ``[]``.

    Only ranges and single numbers, as sysfs prints them (no ``a-b:step/group``).  Every
    number must be below ``limit`` (``what`` names it in the message: "CPU", "node").
    Raises ValueError naming the bad part and, for a number too large, the bound crossed.
    """
    text = text.strip()
    if not text:
        return []
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"empty element in list {_q(text)}")
        if "-" in part:
            a, _, b = part.partition("-")
            lo, hi = _number(a, part), _number(b, part)
            _bound(hi, limit, what, part)
            if hi < lo:
                raise ValueError(f"range {_q(part)} runs backwards")
            out.update(range(lo, hi + 1))
        else:
            n = _number(part, part)
            _bound(n, limit, what, part)
            out.add(n)
    return sorted(out)


def format_list(items: Iterable[int]) -> str:
    """``[0, 1, 2, 3, 8]`` -> ``'0-3,8'`` (the kernel's ``%*pbl``)."""
    xs = sorted(set(items))
    runs: list[str] = []
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        runs.append(str(xs[i]) if i == j else f"{xs[i]}-{xs[j]}")
        i = j + 1
    return ",".join(runs)


def parse_mask(text: str, limit: int = NR_CPUS, what: str = "bit") -> list[int]:
    """``'0x00ff00ff'`` or ``'0x1,0x0000000f'`` (most significant word first) -> bit list.

    An empty word (hwloc writes ``0xff,,,0x0``) is zero.  Linear in the text: a mask of
    millions of zero words is read quickly; a set bit at or past ``limit`` is an error.
    """
    text = text.strip()
    if not text:
        return []
    words = text.split(",")
    out: list[int] = []
    for k, w in enumerate(reversed(words)):
        w = w.strip()
        w = w[2:] if w.lower().startswith("0x") else w
        if len(w) > 8:
            raise ValueError(f"word {_q(w)} has more than 8 hex digits (32 bits)")
        try:
            value = int(w or "0", 16)
        except ValueError:
            raise ValueError(f"word {_q(w)} is not hexadecimal") from None
        if not value:
            continue
        top = 32 * k + value.bit_length() - 1
        if top >= limit:
            raise ValueError(f"{what} {top} is set, not below {limit} "
                             f"({_bound_name(limit, what)})")
        out.extend(32 * k + b for b in range(32) if value >> b & 1)
    return sorted(out)
