"""numactl's face: its node/CPU string grammar, its options, the system calls it makes, and
what ``numactl --show`` and ``numactl --hardware`` print.

Behaviour follows numactl 2.0.19 and its development head (``numactl.c``, ``libnuma.c``,
``util.c``), read, not copied:

* node strings (``__numa_parse_nodestring``): optional ``!``, optional ``+``, then ``all`` or
  a comma list of ``N`` / ``N-M``.  Numbers are read like C ``strtoul(s, &end, 0)`` (``0x3`` is
  node 3, ``010`` is node 8, leading blanks and a sign are accepted).  Every number and both
  range ends must be allowed; allowed nodes strictly inside a range are taken, others skipped;
  ``N-M`` with M < N gives {N}; ``+N`` is the N-th allowed node; ``!`` inverts bits
  0 .. (number of nodes with memory - 1); an empty string is an empty mask; a trailing or
  doubled comma is an error.  ``same`` (numactl only) repeats the previous node argument.
* options are read as ``getopt_long`` with ``+`` does: long names may be abbreviated while
  unambiguous, ``--opt=val`` and ``--opt val``, clustered short options, parsing stops at the
  first non-option or at ``--``.

Nodemasks and CPU masks are Python sets of ints.  Errors are :class:`NumasimError` with
numactl's own wording (``<9> is invalid``, ``Conflicting policies``...) and ``field`` naming the
option.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from numasim.errors import NumasimError
from numasim.mm.constants import (
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_NUMA_BALANCING,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)
from numasim.mm.nodestring import (  # noqa: F401 - numactl's grammar, re-exported
    ParseFailure,
    parse_cpustring,
    parse_mask_string,
    parse_nodestring,
    possible_cpus,
    strtoul,
)
from numasim.topology.model import Machine

CPU_COMPRESS = 300  # numactl's option codes without a short letter
OPT_VERSION = 301
NUMACTL_VERSION = "2.0.19"

# (long name, takes an argument, code) in numactl's table order (getopt_long's order matters
# for abbreviations: the first exact or unique prefix match wins)
LONG_OPTIONS: tuple[tuple[str, bool, int | str], ...] = (
    ("all", False, "a"), ("interleave", True, "i"), ("weighted-interleave", True, "w"),
    ("preferred", True, "p"), ("preferred-many", True, "P"), ("cpubind", True, "c"),
    ("cpunodebind", True, "N"), ("physcpubind", True, "C"), ("membind", True, "m"),
    ("show", False, "s"), ("localalloc", False, "l"), ("balancing", False, "b"),
    ("hardware", False, "H"), ("shm", True, "S"), ("file", True, "f"), ("offset", True, "o"),
    ("length", True, "L"), ("strict", False, "t"), ("shmmode", True, "M"),
    ("dump", False, "d"), ("dump-nodes", False, "D"), ("shmid", True, "I"),
    ("huge", False, "u"), ("touch", False, "T"), ("cpu-compress", False, CPU_COMPRESS),
    ("verify", False, "V"), ("version", False, OPT_VERSION),
)
SHORT_OPTIONS = {code: has_arg for _, has_arg, code in LONG_OPTIONS if isinstance(code, str)}
LONG_NAME = {code: name for name, _, code in LONG_OPTIONS}

USAGE = ("usage: numactl [--all | -a] [--balancing | -b] [--interleave= | -i <nodes>] "
         "[--weighted-interleave= | -w <nodes>] [--preferred= | -p <node>] "
         "[--preferred-many= | -P <nodes>] [--physcpubind= | -C <cpus>] "
         "[--cpunodebind= | -N <nodes>] [--membind= | -m <nodes>] [--localalloc | -l] "
         "command args ...; numactl [--show | -s]; numactl [--hardware | -H] [--cpu-compress]")

POLICY_NAMES = ("default", "preferred", "bind", "interleave", "local", "preferred-many",
                "weighted-interleave")


# ---------------------------------------------------------------------- options
@dataclass
class Step:
    """One thing numactl does while reading its options, in option order.

    ``kind``: ``policy`` (mode, nodes, balancing), ``cpunodebind`` (nodes), ``physcpubind``
    (cpus), ``show``.
    """

    kind: str
    option: str
    mode: int = MPOL_DEFAULT
    nodes: frozenset[int] = frozenset()
    balancing: bool = False


@dataclass
class NumactlOptions:
    """What a numactl command line asks for."""

    steps: list[Step] = field(default_factory=list)
    policy: int | None = None
    """The MPOL_* mode numactl sets (MPOL_DEFAULT for an empty interleave mask), or None."""
    nodes: frozenset[int] = frozenset()
    balancing: bool = False
    cpunodebind: frozenset[int] | None = None
    physcpubind: frozenset[int] | None = None
    all_: bool = False
    show: bool = False
    hardware: bool = False
    cpu_compress: bool = False
    version: bool = False
    strict: bool = False
    command: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What numactl prints on stderr without stopping (e.g. the --strict warning)."""

    def mbind_mode(self) -> int:
        """The mode argument of an ``mbind`` with this policy: ``--balancing --membind``
        adds ``MPOL_F_NUMA_BALANCING`` (as numactl's ``numa_set_membind_balancing`` does for
        the task), so NUMA balancing may move the pages among the bound nodes (a region's
        or an ``mbind`` phase's policy in a timed run)."""
        mode = MPOL_DEFAULT if self.policy is None else self.policy
        if self.balancing and mode == MPOL_BIND:
            mode |= MPOL_F_NUMA_BALANCING
        return mode

    def apply(self, kernel, task: int) -> list[int]:
        """Make the system calls numactl makes, in option order, for ``task`` (the process
        numactl then execs into; the task policy survives exec).  Returns the CPUs the task
        may run on (its affinity after --cpunodebind/--physcpubind; all CPUs by default).

        Raises NumasimError with numactl's message when numactl would exit 1 (e.g.
        ``setting membind: Invalid argument``)."""
        from numasim.mm.libnuma import Libnuma

        lib = Libnuma(kernel, task)
        for st in self.steps:
            if st.kind == "show":
                break
            lib.errno = 0
            if st.kind == "policy":
                label = _apply_policy(lib, st)
            elif st.kind == "cpunodebind":
                label = "sched_setaffinity"
                lib.numa_run_on_node_mask_all(set(st.nodes))
            else:
                label = "sched_setaffinity"
                lib.numa_sched_setaffinity(0, set(st.nodes))
            if lib.errno:
                raise NumasimError(f"{label}: {os.strerror(lib.errno)}", field=st.option,
                                   hint="; ".join(lib.errors[-2:]) or None)
        self.warnings.extend(w for w in lib.warnings if w not in self.warnings)
        return sorted(lib.affinity)


def _apply_policy(lib, st: Step) -> str:
    nodes = set(st.nodes)
    if st.mode in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE) or \
            (st.mode == MPOL_DEFAULT and st.option in ("--interleave",
                                                       "--weighted-interleave")):
        if st.option == "--weighted-interleave":
            lib.numa_set_weighted_interleave_mask(nodes)
        else:
            lib.numa_set_interleave_mask(nodes)
        return "setting interleave mask"
    if st.mode == MPOL_BIND:
        lib.numa_set_bind_policy(1)
        if st.balancing:
            lib.numa_set_membind_balancing(nodes)
        else:
            lib.numa_set_membind(nodes)
        lib.numa_set_bind_policy(0)
        return "setting membind"
    if st.mode == MPOL_PREFERRED:
        lib.numa_set_bind_policy(0)
        lib.numa_set_preferred(min(nodes))
        return "setting preferred node"
    if st.mode == MPOL_PREFERRED_MANY:
        if not lib.numa_has_preferred_many():
            raise NumasimError("preferred-many requested without kernel support",
                               field=st.option,
                               hint=f"kernel {lib.kernel.kernel} has no MPOL_PREFERRED_MANY "
                                    "(Linux 5.15+)")
        lib.numa_set_bind_policy(0)
        lib.numa_set_preferred_many(nodes)
        return "setting preferred node"
    lib.numa_set_localalloc()
    return "local allocation"


class _Getopt:
    """``getopt_long(argc, argv, "+...", opts)``: yields (code, name shown, argument)."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = list(argv)
        self.i = 0
        self.cluster = ""

    def _err(self, msg: str, opt: str) -> NumasimError:
        return NumasimError(msg, field=opt, hint=USAGE)

    def next(self) -> tuple[int | str, str, str | None] | None:
        if self.cluster:
            return self._short()
        if self.i >= len(self.argv):
            return None
        a = self.argv[self.i]
        if a == "--":
            self.i += 1
            return None
        if not a.startswith("-") or a == "-":
            return None
        self.i += 1
        if a.startswith("--"):
            return self._long(a)
        self.cluster = a[1:]
        return self._short()

    def _long(self, a: str) -> tuple[int | str, str, str | None]:
        name, eq, val = a[2:].partition("=")
        exact = [o for o in LONG_OPTIONS if o[0] == name]
        cands = exact or [o for o in LONG_OPTIONS if o[0].startswith(name)]
        if not cands:
            raise self._err(f"unrecognized option '--{name}'", a)
        if len(cands) > 1 and len({(o[1], o[2]) for o in cands}) > 1:
            poss = " ".join(f"'--{o[0]}'" for o in cands)
            raise self._err(f"option '--{name}' is ambiguous; possibilities: {poss}", a)
        lname, has_arg, code = cands[0]
        shown = f"--{lname}"
        if has_arg:
            if not eq:
                if self.i >= len(self.argv):
                    raise self._err(f"option '{shown}' requires an argument", shown)
                val = self.argv[self.i]
                self.i += 1
            return code, shown, val
        if eq:
            raise self._err(f"option '{shown}' doesn't allow an argument", shown)
        return code, shown, None

    def _short(self) -> tuple[int | str, str, str | None]:
        c, self.cluster = self.cluster[0], self.cluster[1:]
        if c not in SHORT_OPTIONS:
            self.cluster = ""
            raise self._err(f"invalid option -- '{c}'", f"-{c}")
        if not SHORT_OPTIONS[c]:
            return c, f"-{c}", None
        if self.cluster:
            val, self.cluster = self.cluster, ""
            return c, f"-{c}", val
        if self.i >= len(self.argv):
            raise self._err(f"option requires an argument -- '{c}'", f"-{c}")
        val = self.argv[self.i]
        self.i += 1
        return c, f"-{c}", val

    def rest(self) -> list[str]:
        return self.argv[self.i:]


def _show_name(code: int | str, shown: str) -> str:
    """The option's long name, for messages (``-m`` -> ``--membind``)."""
    return f"--{LONG_NAME[code]}" if code in LONG_NAME else shown


def parse_numactl(argv: list[str], machine: Machine, *, mems_allowed: set[int] | None = None,
                  cpus_allowed: set[int] | None = None,
                  require_command: bool = False) -> NumactlOptions:
    """Read a numactl command line (without the leading ``numactl``) as numactl does.

    ``mems_allowed``/``cpus_allowed`` are the task's cpuset (node strings are parsed against
    them unless ``--all``); default: every node with memory and every CPU.  Parsing stops at
    ``--show`` and ``--version`` (numactl acts and exits there), at the first non-option and
    at ``--``; what is left is :attr:`NumactlOptions.command`.  With ``require_command`` a
    missing command is the usage error numactl gives.

    Errors that need the kernel (``preferred-many requested without kernel support``, a
    refused set_mempolicy) come from :meth:`NumactlOptions.apply`, so they are reported
    after every string error, where numactl would report the earlier one first.
    """
    o = NumactlOptions()
    g = _Getopt(argv)
    mems = set(machine.memory_nodes) if mems_allowed is None else set(mems_allowed)
    cpus = set(machine.cpus) if cpus_allowed is None else set(cpus_allowed)
    set_policy: int | None = None
    parse_all = did_node_cpu_parse = balancing = weighted = False
    last: str | None = None
    shmoption: str | None = None

    def usage_msg(msg: str, opt: str) -> NumasimError:
        return NumasimError(msg, field=opt, hint=USAGE)

    def setpolicy(pol: int, opt: str) -> None:
        nonlocal set_policy
        if set_policy is not None:
            raise usage_msg("Conflicting policies", opt)
        set_policy = pol

    def nodes_of(arg: str, opt: str) -> set[int]:
        nonlocal last
        if arg == "same":
            if last is None:
                raise usage_msg("same needs previous node specification", opt)
            arg = last
        else:
            last = arg
        return parse_nodestring(arg, machine, allowed=mems, all_=parse_all, option=opt)

    while (got := g.next()) is not None:
        code, shown, arg = got
        opt = _show_name(code, shown)
        if code == "s":
            o.show = True
            o.steps.append(Step("show", opt))
            return o
        if code == OPT_VERSION:
            if set_policy is not None:
                raise usage_msg("specify policy after --shm/--file", opt)
            o.version = True
            return o
        if code == "H":
            if set_policy is not None:
                raise usage_msg("specify policy after --shm/--file", opt)
            o.hardware = True
        elif code == "b":
            if set_policy is not None:
                raise usage_msg("specify policy after --shm/--file", opt)
            balancing = True
        elif code in ("i", "w"):
            weighted = weighted or code == "w"
            mask = nodes_of(arg, opt)
            did_node_cpu_parse = True
            mode = MPOL_WEIGHTED_INTERLEAVE if weighted else MPOL_INTERLEAVE
            setpolicy(mode, opt)
            eff = mode if mask else MPOL_DEFAULT
            o.steps.append(Step("policy", "--weighted-interleave" if weighted
                                else "--interleave", eff, frozenset(mask)))
            o.policy, o.nodes = eff, frozenset(mask)
        elif code in ("N", "c"):
            if shmoption:
                raise usage_msg(f"{shmoption} shm option is not allowed before "
                                "-c/--cpubind/--cpunodebind", opt)
            mask = nodes_of(arg, opt)
            did_node_cpu_parse = True
            o.steps.append(Step("cpunodebind", opt, nodes=frozenset(mask)))
            o.cpunodebind = frozenset(mask)
        elif code == "C":
            if shmoption:
                raise usage_msg(f"{shmoption} shm option is not allowed before "
                                "-C/--physcpubind", opt)
            cmask = parse_cpustring(arg, machine, allowed=cpus, all_=parse_all, option=opt)
            did_node_cpu_parse = True
            o.steps.append(Step("physcpubind", opt, nodes=frozenset(cmask)))
            o.physcpubind = frozenset(cmask)
        elif code == "m":
            setpolicy(MPOL_BIND, opt)
            mask = nodes_of(arg, opt)
            did_node_cpu_parse = True
            o.steps.append(Step("policy", opt, MPOL_BIND, frozenset(mask), balancing))
            o.policy, o.nodes, o.balancing = MPOL_BIND, frozenset(mask), balancing
        elif code in ("p", "P"):
            mask = nodes_of(arg, opt)
            did_node_cpu_parse = True
            if code == "p":
                if len(mask) != 1:
                    raise usage_msg(f"--preferred takes exactly one node, <{arg}> names "
                                    f"{len(mask)}", opt)
                setpolicy(MPOL_PREFERRED, opt)
                mode = MPOL_PREFERRED
            else:
                setpolicy(MPOL_PREFERRED_MANY, opt)
                mode = MPOL_PREFERRED_MANY
            o.steps.append(Step("policy", opt, mode, frozenset(mask)))
            o.policy, o.nodes = mode, frozenset(mask)
        elif code == "l":
            setpolicy(MPOL_LOCAL, opt)
            o.steps.append(Step("policy", opt, MPOL_LOCAL))
            o.policy, o.nodes = MPOL_LOCAL, frozenset()
        elif code == "a":
            if did_node_cpu_parse:
                raise usage_msg("--all/-a option must be before all cpu/node specifications",
                                opt)
            parse_all = True
            o.all_ = True
        elif code == CPU_COMPRESS:
            o.cpu_compress = True
        elif code == "t":
            o.strict = True
        elif code in ("L", "M", "u", "o"):
            shmoption = opt
        elif code in ("d", "D"):
            raise NumasimError(f"Cannot do {opt} without shared memory.", field=opt,
                               hint="--shm/--file come first")
        elif code in ("T", "V"):
            raise usage_msg(f"{opt} must be after shared memory specification", opt)
        elif code == "I":
            v, end = strtoul(arg, 0)
            if end == 0 or end != len(arg):
                raise usage_msg(f"bad --shmid <{arg}>", opt)
        elif code in ("S", "f"):
            raise NumasimError(f"{opt} (shared-memory policy) is not modeled by numasim's "
                               "numactl", field=opt,
                               hint="use the scenario language (mmap shared/memfd, mbind) "
                                    "for shared-memory policies")
    o.command = g.rest()
    if o.hardware:
        return o
    if o.strict:
        o.warnings.append("numactl: warning. Strict flag for process ignored.")
    if shmoption:
        raise usage_msg(f"shm related option {shmoption} for process", shmoption)
    if require_command and not o.command:
        raise usage_msg("no command given", "command")
    return o


# ------------------------------------------------------------------------ views
def _printmask(name: str, mask) -> str:
    return f"{name}: " + "".join(f"{i} " for i in sorted(mask)) + "\n"


def policy_name(policy: int) -> str:
    """numactl's ``policy_name``: the mode's name, or ``[value]`` outside the table (a mode
    carrying STATIC/RELATIVE/NUMA_BALANCING flags)."""
    if 0 <= policy < len(POLICY_NAMES):
        return POLICY_NAMES[policy]
    return f"[{policy}]"


def numactl_show(kernel, task: int, *, cpus: set[int] | None = None) -> str:
    """``numactl --show`` for ``task`` whose CPU affinity is ``cpus`` (default: all CPUs).

    Quirks kept: a mode with flags prints as ``[32771]``; for ``local`` and flag-carrying
    modes nothing follows ``preferred node: `` and no newline, so ``physcpubind:`` is glued
    on; ``preferred-many`` prints ``0 (preferred-many)`` (MPOL_F_NODE fails, libnuma says 0);
    ``preferred:`` shows the policy's mask for every mode but default/local (libnuma's
    ``__numa_preferred`` leaves it), ``membind:`` every allowed node unless the mode is
    exactly BIND.  Unlike the real tool, reading does not re-set the policy (real numactl's
    start-up probe for preferred-many restores the policy, which restarts the interleave
    counter).
    """
    from numasim.mm import libnuma as L

    k, t = kernel, task
    affinity = set(k.machine.cpus) if cpus is None else set(cpus)
    all_nodes = L.mems_allowed(k, t)
    policy, pmask = L.getpol(k, t)
    cur = L.interleave_node(k, t)
    membind = pmask if policy == MPOL_BIND else all_nodes
    preferred = pmask if policy not in (MPOL_DEFAULT, MPOL_LOCAL) else set()
    run_nodes = L.run_node_mask(k, affinity, all_nodes)
    out = [f"policy: {policy_name(policy)}\n", "preferred node: "]
    if policy == MPOL_PREFERRED:
        out.append(f"{min(preferred) if preferred else 0}\n")
    elif policy == MPOL_DEFAULT:
        out.append("current\n")
    elif policy in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE):
        out.append(f"{cur} (interleave next)\n")
    elif policy == MPOL_BIND:
        out.append(f"{min(membind) if membind else -1}\n")
    elif policy == MPOL_PREFERRED_MANY:
        out.append(f"{cur} (preferred-many)\n")
    if policy in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE):
        out.append(_printmask("interleavemask", pmask))
        if policy == MPOL_WEIGHTED_INTERLEAVE:
            w = L.node_weights(k)
            out.append("interleaveweights: " + "".join(f"{w[n]} " for n in sorted(pmask))
                       + "\n")
        out.append(f"interleavenode: {cur}\n")
    out.append(_printmask("physcpubind", affinity))
    out.append(_printmask("cpubind", run_nodes))
    out.append(_printmask("nodebind", run_nodes))
    out.append(_printmask("membind", membind))
    out.append(_printmask("preferred", preferred))
    return "".join(out)


def numactl_hardware(kernel, *, cpu_compress: bool = False) -> str:
    """``numactl --hardware`` for the simulated machine now: node sizes, the free memory the
    kernel state has (MemFree per node), distances."""
    from numasim.mm import state as S
    from numasim.topology.show import numactl_hardware as _hw

    ks = kernel.ks
    page = kernel.machine.page_size
    free = {nid: int(ks.zones[ks.zones[:, S.Z_NODE] == nid, S.Z_FREE].sum()) * page
            for nid in kernel.machine.node_ids}
    return _hw(kernel.machine, cpu_compress=cpu_compress, free_bytes=free)


__all__ = ["parse_nodestring", "parse_cpustring", "parse_numactl", "NumactlOptions", "Step",
           "numactl_show", "numactl_hardware", "policy_name", "strtoul"]
