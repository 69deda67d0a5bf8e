"""Memory policies: creation (``mpol_new``, ``mpol_set_nodemask``), mode-flag checks
(``sanitize_mpol_flags``), cpuset rebinding (``mpol_rebind_*``) and their text forms.

A policy lives as a row of ``KernelState.policies`` (what the allocator core reads: mode,
flags, home node, effective nodes).  What only the system calls need -- the user's original
nodemask for STATIC/RELATIVE policies and the cpuset mems the policy was made against -- is
kept in ``Kernel.policy_meta[row]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from numasim.mm import state as S
from numasim.mm.constants import (
    EINVAL,
    KGEN_2_6_7,
    KGEN_6_1,
    MODE_NAMES,
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_MOF,
    MPOL_F_MORON,
    MPOL_F_NUMA_BALANCING,
    MPOL_F_RELATIVE_NODES,
    MPOL_F_STATIC_NODES,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_MODE_FLAGS,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)
from numasim.mm.nodemask import mpol_relative_nodemask, nodes_remap


def mpol_max(kgen: int) -> int:
    """MPOL_MAX of a kernel generation: 7 since 6.9, 6 in 6.1, 4 in 2.6.7."""
    return {KGEN_6_1: 6, KGEN_2_6_7: 4}.get(kgen, 7)


def sanitize_mpol_flags(mode: int, kgen: int) -> tuple[int, int]:
    """Split the mode argument into (mode, flags) and check them (``sanitize_mpol_flags``).

    Raises OSError(EINVAL).  Internal flags MOF|MORON are added for NUMA_BALANCING.
    """
    if kgen == KGEN_2_6_7:
        if mode < 0 or mode >= mpol_max(kgen):  # no mode flags in 2.6.7
            raise OSError(EINVAL, "invalid mode")
        return mode, 0
    mode &= 0xFFFFFFFF
    if mode >= 1 << 31:
        mode -= 1 << 32  # back to a C int
    flags = mode & MPOL_MODE_FLAGS
    mode &= ~MPOL_MODE_FLAGS
    if not 0 <= mode < mpol_max(kgen):
        raise OSError(EINVAL, "invalid mode")
    if flags & MPOL_F_STATIC_NODES and flags & MPOL_F_RELATIVE_NODES:
        raise OSError(EINVAL, "STATIC_NODES and RELATIVE_NODES together")
    if flags & MPOL_F_NUMA_BALANCING:
        ok = (MPOL_BIND,) if kgen == KGEN_6_1 else (MPOL_BIND, MPOL_PREFERRED_MANY)
        if mode not in ok:
            raise OSError(EINVAL, "NUMA_BALANCING with this mode")
        flags |= MPOL_F_MOF | MPOL_F_MORON
    return mode, flags


@dataclass
class NewPolicy:
    """A policy being made (``mpol_new`` result before ``mpol_set_nodemask``)."""

    mode: int
    flags: int
    nodes: frozenset[int] = frozenset()
    user_nodes: frozenset[int] = frozenset()
    cpuset_mems: frozenset[int] = frozenset()
    home_node: int = -1


def mpol_new(mode: int, flags: int, nodes: set[int]) -> NewPolicy | None:
    """``mpol_new``: None for MPOL_DEFAULT (the policy is removed), else a new policy.

    PREFERRED with an empty mask becomes LOCAL.  Raises OSError(EINVAL) per the mode rules.
    """
    if mode == MPOL_DEFAULT:
        if nodes:
            raise OSError(EINVAL, "MPOL_DEFAULT takes no nodes")
        return None
    if mode == MPOL_PREFERRED:
        if not nodes:
            if flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES):
                raise OSError(EINVAL, "empty PREFERRED with STATIC/RELATIVE")
            mode = MPOL_LOCAL
    elif mode == MPOL_LOCAL:
        if nodes or flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES):
            raise OSError(EINVAL, "MPOL_LOCAL takes no nodes")
    elif not nodes:
        raise OSError(EINVAL, "empty nodemask")
    return NewPolicy(mode, flags)


def mpol_store_user_nodemask(flags: int) -> bool:
    return bool(flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES))


def mpol_set_nodemask(pol: NewPolicy | None, nodes: set[int], mems_allowed: set[int],
                      n_memory: set[int], kgen: int) -> None:
    """``mpol_set_nodemask``: intersect (or fold, for RELATIVE) the user's nodes with the
    cpuset's memory nodes and build the policy's nodes (``mpol_new_nodemask`` /
    ``mpol_new_preferred``).  Raises OSError(EINVAL) when nothing is left."""
    if pol is None or pol.mode == MPOL_LOCAL:
        return
    allowed = set(mems_allowed) & set(n_memory)
    if pol.flags & MPOL_F_RELATIVE_NODES:
        eff = mpol_relative_nodemask(nodes, allowed)
    else:
        eff = set(nodes) & allowed
    if mpol_store_user_nodemask(pol.flags):
        pol.user_nodes = frozenset(nodes)
    else:
        pol.cpuset_mems = frozenset(mems_allowed)
    if not eff:
        raise OSError(EINVAL, "no allowed node in the mask")
    if pol.mode == MPOL_PREFERRED:
        pol.nodes = frozenset({min(eff)})
    else:
        pol.nodes = frozenset(eff)
    if kgen == KGEN_2_6_7 and pol.mode == MPOL_PREFERRED:
        pol.nodes = frozenset({min(eff)})


def mpol_rebind_policy(mode: int, flags: int, nodes: set[int], meta: dict,
                       newmems: set[int]) -> set[int] | None:
    """``mpol_rebind_policy``: the nodes a policy has after its cpuset's mems change, or
    None when it is left alone.  PREFERRED/PREFERRED_MANY only record the new mems (current
    kernels do not remap them); LOCAL is never rebound."""
    if mode == MPOL_LOCAL:
        return None
    user = set(meta.get("user_nodes", ()))
    old_mems = set(meta.get("cpuset_mems", ()))
    if not mpol_store_user_nodemask(flags) and old_mems == set(newmems):
        return None
    if mode in (MPOL_PREFERRED, MPOL_PREFERRED_MANY):
        meta["cpuset_mems"] = frozenset(newmems)
        return None
    if flags & MPOL_F_STATIC_NODES:
        tmp = user & set(newmems)
    elif flags & MPOL_F_RELATIVE_NODES:
        tmp = mpol_relative_nodemask(user, set(newmems))
    else:
        tmp = nodes_remap(nodes, old_mems, set(newmems))
        meta["cpuset_mems"] = frozenset(newmems)
    if not tmp:
        tmp = set(newmems)
    return tmp


# ------------------------------------------------------------------ text forms
POLICY_MODES_STR = {MPOL_DEFAULT: "default", MPOL_PREFERRED: "prefer", MPOL_BIND: "bind",
                    MPOL_INTERLEAVE: "interleave",
                    MPOL_WEIGHTED_INTERLEAVE: "weighted interleave", MPOL_LOCAL: "local",
                    MPOL_PREFERRED_MANY: "prefer (many)"}


def mpol_to_str(mode: int, flags: int, nodes) -> str:
    """``mpol_to_str``: the policy as /proc/PID/numa_maps prints it, e.g. ``bind:1-2``,
    ``interleave=static:0-3``, ``default``."""
    from numasim.mm.nodemask import format_nodes

    out = POLICY_MODES_STR[mode]
    mflags = flags & MPOL_MODE_FLAGS
    if mflags:
        out += "="
        if flags & MPOL_F_STATIC_NODES:
            out += "static"
        elif flags & MPOL_F_RELATIVE_NODES:
            out += "relative"
        if flags & MPOL_F_NUMA_BALANCING:
            if mflags & (mflags - 1):
                out += "|"
            out += "balancing"
    if nodes and mode not in (MPOL_DEFAULT, MPOL_LOCAL):
        out += ":" + format_nodes(nodes)
    return out


def mode_name(mode: int) -> str:
    return MODE_NAMES.get(mode, str(mode))


def policy_row_view(ks: S.KernelState, p: int) -> tuple[int, int, list[int], int]:
    """(mode, flags, nodes, home_node) of a policy row."""
    return (int(ks.policies[p, S.P_MODE]), int(ks.policies[p, S.P_FLAGS]), ks.policy_nodes(p),
            int(ks.policies[p, S.P_HOME]))


__all__ = ["sanitize_mpol_flags", "mpol_new", "mpol_set_nodemask", "mpol_rebind_policy",
           "mpol_to_str", "NewPolicy", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE"]
