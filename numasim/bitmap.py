"""Linux's textual bitmaps: list format (``0-3,8``) and mask format (``0x00ff00ff,0x1``).

``parse_list``/``format_list`` mirror ``bitmap_parselist``/``bitmap_print_to_pagebuf`` with
``list=true`` (what ``cpulist``, ``cpuset.mems`` and ``/sys/.../has_memory`` use);
``parse_mask`` reads the comma-separated 32-bit hex words of ``cpumap`` and hwloc cpusets.
"""

from __future__ import annotations

from collections.abc import Iterable


def parse_list(text: str) -> list[int]:
    """``'0-3,8,10-11'`` -> ``[0, 1, 2, 3, 8, 10, 11]``; empty -> ``[]``.

    Accepts ``a-b:step/group`` no; only ranges and single numbers, as sysfs prints them.
    Raises ValueError naming the bad part.
    """
    text = text.strip()
    if not text:
        return []
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"empty element in list {text!r}")
        if "-" in part:
            a, _, b = part.partition("-")
            lo, hi = int(a), int(b)
            if hi < lo:
                raise ValueError(f"range {part!r} runs backwards")
            out.extend(range(lo, hi + 1))
        else:
            out.append(int(part))
    return sorted(set(out))


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


def parse_mask(text: str) -> list[int]:
    """``'0x00ff00ff'`` or ``'0x1,0x0000000f'`` (most significant word first) -> bit list."""
    text = text.strip()
    if not text:
        return []
    words = [w.strip() for w in text.split(",")]
    value = 0
    for w in words:
        w = w[2:] if w.lower().startswith("0x") else w
        value = (value << 32) | int(w or "0", 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]
