"""libnuma's node and CPU string grammar (``__numa_parse_nodestring``,
``__numa_parse_cpustring``, ``get_nr``, C ``strtoul``), shared by :mod:`numasim.mm.numactl`
(the command's options) and :mod:`numasim.mm.libnuma` (the library calls) so that neither
imports the other.  The grammar itself is described in :mod:`numasim.mm.numactl`.
"""

from __future__ import annotations

from dataclasses import dataclass

from numasim.errors import NumasimError
from numasim.mm.constants import MAX_NUMNODES
from numasim.topology.model import Machine

ULONG = 1 << 64
DEVICE_PREFIXES = ("netdev:", "file:", "ip:", "block:", "pci:")


# ------------------------------------------------------------------ string grammar
def strtoul(s: str, i: int) -> tuple[int, int]:
    """C ``strtoul(s + i, &end, 0)``: (value as unsigned long, index of end).  No digits: the
    end is ``i`` itself.  A minus sign negates modulo 2**64; overflow saturates."""
    j = i
    n = len(s)
    while j < n and s[j] in " \t\n\v\f\r":
        j += 1
    neg = False
    if j < n and s[j] in "+-":
        neg = s[j] == "-"
        j += 1
    if j + 1 < n and s[j] == "0" and s[j + 1] in "xX" and j + 2 < n and \
            s[j + 2] in "0123456789abcdefABCDEF":
        base, k = 16, j + 2
    elif j < n and s[j] == "0":
        base, k = 8, j
    else:
        base, k = 10, j
    digits = "0123456789abcdef"[:base]
    start = k
    while k < n and s[k].lower() in digits:
        k += 1
    if k == start:
        return 0, i
    value = int(s[start:k], base)
    if value >= ULONG:
        value = ULONG - 1
    if neg:
        value = (ULONG - value) % ULONG
    return value, k


def _as_c_int(v: int) -> int:
    """What ``printf("%d", unsigned long)`` shows on x86-64 (the low 32 bits, signed)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _get_nr(s: str, i: int, allowed: list[int], relative: bool, size: int) -> tuple[int, int]:
    """libnuma's ``get_nr``: a number, or with ``+`` the N-th (0-based) allowed id.  An N past
    the allowed ids gives ``size`` (never allowed), a negative N gives -1."""
    v, end = strtoul(s, i)
    if not relative or end == i:
        return v, end
    nr = v - ULONG if v >= 1 << 63 else v
    if nr < 0:
        return ULONG - 1, end
    return (allowed[nr] if nr < len(allowed) else size), end


@dataclass
class ParseFailure:
    """Why a string was refused: libnuma's warning text (``numa_warn``)."""

    warning: str


def parse_mask_string(s: str, allowed: set[int], invert_count: int, *, kind: str = "node",
                      size: int = MAX_NUMNODES) -> set[int] | ParseFailure:
    """``__numa_parse_nodestring`` / ``__numa_parse_cpustring`` on a string: the set, or a
    :class:`ParseFailure` carrying libnuma's warning.  ``kind`` is ``node`` or ``cpu``;
    ``invert_count`` is how many low bits ``!`` flips; ``size`` is the bitmask size."""
    if s == "":
        return set()
    order = sorted(allowed)
    i, n = 0, len(s)
    invert = relative = False
    if s[0] == "!":
        invert, i = True, 1
    if s[i:i + 1] == "+":
        relative, i = True, i + 1
    mask: set[int] = set()
    while True:
        rest = s[i:]
        if kind == "cpu" or rest[:1].isalpha():
            if rest == "all":
                mask = set(allowed)
                i = n + 1
                break
            if kind == "node" and rest.startswith(DEVICE_PREFIXES):
                return ParseFailure(f"device node specification `{rest}' is not modeled by "
                                    "numasim")
        arg, end = _get_nr(s, i, order, relative, size)
        if end == i:
            return ParseFailure(f"unparseable {kind} description `{rest}'")
        if arg not in allowed:
            what = f"{_as_c_int(arg)}" if kind == "node" else rest
            return ParseFailure(f"{kind} argument {what} is out of range")
        mask.add(arg)
        i = end
        if s[i:i + 1] == "-":
            i += 1
            arg2, end2 = _get_nr(s, i, order, relative, size)
            if end2 == i:
                return ParseFailure(f"missing {kind} argument {s[i:]}")
            if arg2 not in allowed:
                what = f"{_as_c_int(arg2)}" if kind == "node" else s[i:]
                return ParseFailure(f"{kind} argument {what} out of range")
            mask.update(a for a in allowed if arg <= a <= arg2)
            i = end2
        c = s[i] if i < n else "\0"
        i += 1
        if c != ",":
            break
    if (s[i - 1] if i - 1 < n else "\0") != "\0":
        return ParseFailure(f"unparseable {kind} description `{s}'")
    if invert:
        mask ^= set(range(invert_count))
    return mask


def possible_cpus(machine: Machine) -> int:
    """``numa_num_possible_cpus``: the kernel cpumask size sched_getaffinity reports
    (nr_cpu_ids rounded up to whole longs)."""
    nr = max(machine.cpus) + 1
    return (nr + 63) // 64 * 64


def _invalid(s: str, option: str, why: str, valid: set[int], what: str) -> NumasimError:
    shown = ",".join(map(str, sorted(valid))) or "none"
    return NumasimError(f"<{s}> is invalid", field=option,
                        hint=f"libnuma: {why}; allowed {what}: {shown}")


def parse_nodestring(s: str, machine: Machine, *, allowed: set[int] | None = None,
                     all_: bool = False, same_prev: str | None = None,
                     option: str = "nodes") -> set[int]:
    """``numa_parse_nodestring`` (or ``numa_parse_nodestring_all`` with ``all_``): the nodes
    ``s`` names.  ``allowed`` is the task's mems_allowed (default: every node with memory,
    the top cpuset); ``all_`` parses against every configured node id 0..max instead.
    ``same`` repeats ``same_prev``.  Raises NumasimError ``<s> is invalid``."""
    if s == "same":
        if same_prev is None:
            raise NumasimError("same needs previous node specification", field=option,
                               hint="give a node list first, e.g. --cpunodebind=0 "
                                    "--membind=same")
        s = same_prev
    if all_:
        allowed = set(range(max(machine.node_ids) + 1))
    elif allowed is None:
        allowed = set(machine.memory_nodes)
    r = parse_mask_string(s, set(allowed), len(machine.memory_nodes), kind="node")
    if isinstance(r, ParseFailure):
        raise _invalid(s, option, r.warning, set(allowed), "nodes")
    return r


def parse_cpustring(s: str, machine: Machine, *, allowed: set[int] | None = None,
                    all_: bool = False, option: str = "cpus") -> set[int]:
    """``numa_parse_cpustring`` (``_all``): the CPUs ``s`` names, against the task's
    Cpus_allowed (default: every CPU) or, with ``all_``, every configured CPU 0..max."""
    ncpu = max(machine.cpus) + 1
    if all_:
        allowed = set(range(ncpu))
    elif allowed is None:
        allowed = set(machine.cpus)
    r = parse_mask_string(s, set(allowed), ncpu, kind="cpu", size=possible_cpus(machine))
    if isinstance(r, ParseFailure):
        raise _invalid(s, option, r.warning, set(allowed), "CPUs")
    return r
