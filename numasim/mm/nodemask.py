"""Nodemasks as the kernel handles them: sets of node ids, with the bitmap operations
``mm/mempolicy.c`` uses (``nodes_fold``, ``nodes_onto``, ``node_remap``, ``nodes_remap``) and
the user-space copy rules of ``get_nodes``/``copy_nodes_to_user``."""

from __future__ import annotations

from dataclasses import dataclass

from numasim.mm.constants import EFAULT, EINVAL, MAX_NUMNODES

PAGE_SIZE = 4096
BITS_PER_LONG = 64


def nodes_weight(mask: frozenset[int] | set[int]) -> int:
    return len(mask)


def first_node(mask) -> int:
    return min(mask) if mask else MAX_NUMNODES


def next_node_in(node: int, mask) -> int:
    """``next_node_in``: next node after ``node`` in the mask, wrapping; MAX_NUMNODES if empty."""
    if not mask:
        return MAX_NUMNODES
    later = [n for n in mask if n > node]
    return min(later) if later else min(mask)


def nodes_fold(orig, sz: int) -> set[int]:
    """``bitmap_fold``: bit i of orig -> bit i mod sz."""
    if sz <= 0:
        return set()
    return {n % sz for n in orig}


def nodes_onto(orig, relmap) -> set[int]:
    """``bitmap_onto``: the m-th set bit of relmap is set iff bit m of orig is set."""
    rel = sorted(relmap)
    return {rel[m] for m in orig if m < len(rel)}


def mpol_relative_nodemask(orig, rel) -> set[int]:
    """``mpol_relative_nodemask``: fold the user's mask to weight(rel) bits, then map it
    onto rel (MPOL_F_RELATIVE_NODES)."""
    return nodes_onto(nodes_fold(orig, len(rel)), rel)


def node_remap(oldbit: int, old, new) -> int:
    """``node_remap``/``bitmap_bitremap``: the n-th set bit of old goes to the
    (n mod weight(new))-th set bit of new; bits not in old (or an empty new) stay."""
    olds, news = sorted(old), sorted(new)
    if oldbit not in old or not news:
        return oldbit
    return news[olds.index(oldbit) % len(news)]


def nodes_remap(src, old, new) -> set[int]:
    """``nodes_remap``: node_remap applied to every node of src."""
    return {node_remap(n, old, new) for n in src}


@dataclass(frozen=True)
class UserMask:
    """A nodemask argument as user space passes it: a pointer to ``maxnode`` bits.

    ``bits`` is the bitmap content as a Python int (bit n = node n); ``null`` is a NULL
    pointer; ``fault`` is a pointer the kernel cannot read (unmapped, PROT_NONE...).
    """

    bits: int = 0
    null: bool = False
    fault: bool = False

    @classmethod
    def of(cls, nodes) -> UserMask:
        v = 0
        for n in nodes:
            v |= 1 << n
        return cls(v)


def get_nodes(nmask: UserMask | None, maxnode: int) -> set[int]:
    """``get_nodes``: read a user nodemask of ``maxnode - 1`` bits (the kernel drops one).

    Raises OSError(EINVAL) for maxnode 0 with a pointer, more than 8*PAGE_SIZE bits, or bits
    set at or above MAX_NUMNODES; OSError(EFAULT) for an unreadable pointer.
    """
    maxnode = (maxnode - 1) & ((1 << 64) - 1)  # unsigned long arithmetic
    if maxnode == 0 or nmask is None or nmask.null:
        return set()
    if maxnode > PAGE_SIZE * 8:
        raise OSError(EINVAL, "maxnode too large")
    if nmask.fault:
        raise OSError(EFAULT, "nodemask not readable")
    bits = nmask.bits & ((1 << maxnode) - 1)
    if maxnode > MAX_NUMNODES and bits >> MAX_NUMNODES:
        raise OSError(EINVAL, "nodemask has bits at or above MAX_NUMNODES")
    return {i for i in range(min(maxnode, MAX_NUMNODES)) if bits >> i & 1}


def format_nodes(nodes) -> str:
    """``%*pbl``: ``0-3,5``; empty string for no nodes."""
    from numasim.bitmap import format_list

    return format_list(nodes)
