"""The NUMA system calls, with Linux's argument checks in Linux's order and its errnos.

``set_mempolicy``, ``get_mempolicy``, ``mbind``, ``set_mempolicy_home_node``,
``migrate_pages``, ``move_pages`` -- each takes the :class:`~numasim.mm.kernel.Kernel` and the
calling task, then the raw arguments (addresses in bytes, nodemasks as
:class:`~numasim.mm.nodemask.UserMask` plus ``maxnode``).  A failing call raises ``OSError``
with Linux's errno, as Python's own ``os`` functions do.  Read beside ``mm/mempolicy.c``
(``kernel_set_mempolicy``, ``do_get_mempolicy``, ``do_mbind``, ``mbind_range``,
``kernel_migrate_pages``, ``do_migrate_pages``) and ``mm/migrate.c``
(``kernel_move_pages``, ``do_pages_move``, ``add_page_for_migration``, ``do_pages_stat``).
"""

from __future__ import annotations

from numasim.mm import alloc_core as core
from numasim.mm import state as S
from numasim.mm.constants import (
    EACCES,
    EBUSY,
    EFAULT,
    EINVAL,
    ENODEV,
    ENOENT,
    ENOMEM,
    ENOSYS,
    EOPNOTSUPP,
    EPERM,
    ESRCH,
    GFP_THISNODE,
    GFP_USER_MOVABLE,
    KGEN_2_6_7,
    KGEN_6_1,
    MAX_NUMNODES,
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_ADDR,
    MPOL_F_MEMS_ALLOWED,
    MPOL_F_NODE,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_MF_MOVE,
    MPOL_MF_MOVE_ALL,
    MPOL_MF_STRICT,
    MPOL_MF_VALID,
    MPOL_MODE_FLAGS,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)
from numasim.mm.huge_memory import MADV_HUGEPAGE, MADV_NOHUGEPAGE, VM_HUGEPAGE, VM_NOHUGEPAGE
from numasim.mm.kernel import PAGE_SHIFT, Kernel, Segfault, TaskKilled
from numasim.mm.mempolicy import (
    NewPolicy,
    mpol_new,
    mpol_rebind_policy,
    mpol_set_nodemask,
    mpol_store_user_nodemask,
    sanitize_mpol_flags,
)
from numasim.mm.nodemask import UserMask, get_nodes, next_node_in, node_remap

PAGE_SIZE = 1 << PAGE_SHIFT
ULONG_MASK = (1 << 64) - 1
NO_ILX = core.NO_ILX


# --------------------------------------------------------------------- helpers
def page_range(start: int, length: int, wrap_errno: int = EINVAL) -> tuple[int, int] | None:
    """``len = PAGE_ALIGN(len); end = start + len``: the range as page numbers, None when
    it is empty; OSError(wrap_errno) when it wraps past the top of the address space."""
    length = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & ULONG_MASK
    end = start + length
    if end > ULONG_MASK:
        raise OSError(wrap_errno, "range wraps around")
    if end == start:
        return None
    return start >> PAGE_SHIFT, end >> PAGE_SHIFT


def _mems_allowed(k: Kernel, t: int) -> set[int]:
    return {int(n) for n in k.ks.task_mems[t].nonzero()[0]}


def _n_memory(k: Kernel) -> set[int]:
    return {int(n) for n in k.ks.nodeinfo[:, S.N_MEMORY].nonzero()[0]}


def install_policy(k: Kernel, pol: NewPolicy | None) -> int:
    """A policy row for ``pol`` (-1 for None)."""
    if pol is None:
        return -1
    p = k.ks.new_policy(pol.mode, pol.flags, pol.nodes, pol.home_node)
    k.policy_meta[p] = {"user_nodes": pol.user_nodes, "cpuset_mems": pol.cpuset_mems}
    return p


def policy_of_row(k: Kernel, p: int) -> NewPolicy | None:
    if p < 0:
        return None
    ks = k.ks
    meta = k.policy_meta.get(p, {})
    return NewPolicy(int(ks.policies[p, S.P_MODE]), int(ks.policies[p, S.P_FLAGS]),
                     frozenset(ks.policy_nodes(p)), frozenset(meta.get("user_nodes", ())),
                     frozenset(meta.get("cpuset_mems", ())), int(ks.policies[p, S.P_HOME]))


def mpol_equal(k: Kernel, a: int, b: int) -> bool:
    """``mpol_equal`` on two policy rows (-1 = none)."""
    if a == b:
        return True
    if a < 0 or b < 0:
        return False
    pa, pb = policy_of_row(k, a), policy_of_row(k, b)
    if (pa.mode, pa.flags, pa.home_node) != (pb.mode, pb.flags, pb.home_node):
        return False
    if mpol_store_user_nodemask(pa.flags) and pa.user_nodes != pb.user_nodes:
        return False
    return pa.nodes == pb.nodes


def _make_policy(k: Kernel, t: int, mode_arg: int, nmask: UserMask | None, maxnode: int
                 ) -> tuple[int, int, set[int]]:
    mode, flags = sanitize_mpol_flags(mode_arg, k.kgen)
    nodes = get_nodes(nmask, maxnode)
    if k.kgen == KGEN_2_6_7 and not nodes <= set(k.machine.node_ids):
        raise OSError(EINVAL, "node not online")
    return mode, flags, nodes


# ----------------------------------------------------------------- set_mempolicy
def set_mempolicy(k: Kernel, t: int, mode: int, nmask: UserMask | None, maxnode: int) -> int:
    """``set_mempolicy(2)``: the task policy; resets the interleave counter for interleave
    modes."""
    mode, flags, nodes = _make_policy(k, t, mode, nmask, maxnode)
    new = mpol_new(mode, flags, nodes)
    if k.kgen == KGEN_2_6_7 and new is not None and new.mode == MPOL_LOCAL and \
            mode == MPOL_PREFERRED:
        new.mode = MPOL_PREFERRED  # 2.6.7: preferred with no node means "local"
    mpol_set_nodemask(new, nodes, _mems_allowed(k, t), _n_memory(k), k.kgen)
    ks = k.ks
    old = int(ks.tasks[t, S.T_POLICY])
    ks.tasks[t, S.T_POLICY] = install_policy(k, new)
    k.put_policy(old)
    if new is not None and new.mode in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE):
        ks.tasks[t, S.T_IL_PREV] = MAX_NUMNODES - 1
        ks.tasks[t, S.T_IL_WEIGHT] = 0
        if k.kgen == KGEN_2_6_7:  # il_next = first node; same observable order
            ks.tasks[t, S.T_IL_PREV] = MAX_NUMNODES - 1
    return 0


# ----------------------------------------------------------------- get_mempolicy
def _vma_policy_for_addr(k: Kernel, t: int, vpn: int) -> int:
    """``__get_vma_policy``: the VMA's (or shared) policy at vpn, without the task fallback."""
    ks = k.ks
    mm = k.task_mm(t)
    v = k.find_vma(mm, vpn)
    if int(ks.vmas[v, S.V_KIND]) == S.KIND_SHMEM:
        o = int(ks.vmas[v, S.V_OBJ])
        index = int(ks.vmas[v, S.V_PGOFF]) + vpn - int(ks.vmas[v, S.V_START])
        for s in range(ks.sp.shape[0]):
            row = ks.sp[s]
            if row[S.S_ALIVE] and row[S.S_OBJ] == o and row[S.S_START] <= index < row[S.S_END]:
                return int(row[S.S_POLICY])
        return -1
    return int(ks.vmas[v, S.V_POLICY])


def lookup_node(k: Kernel, t: int, vpn: int) -> int:
    """``lookup_node``: fault the page in for reading (get_user_pages) and return its node.
    Untouched private anonymous memory maps the zero page and reports the zero page's node."""
    mm = k.task_mm(t)
    v = k.find_vma(mm, vpn)
    if v < 0 or not k.ks.vmas[v, S.V_PROT] & S.PROT_READ:
        raise OSError(EFAULT, "no page")
    k.touch(t, vpn, 1, write=False)
    node = k.page_node(t, vpn)
    if node is None:
        raise OSError(EFAULT, "no page")
    return node


def get_mempolicy(k: Kernel, t: int, *, want_mask: bool = True, maxnode: int = 1025,
                  addr: int = 0, flags: int = 0) -> tuple[int, set[int] | None]:
    """``get_mempolicy(2)``: returns (mode-or-node, nodes or None when no mask asked for)."""
    ks = k.ks
    nr_node_ids = k.machine.nr_node_ids
    limit = MAX_NUMNODES if k.kgen == KGEN_2_6_7 else nr_node_ids
    if want_mask and maxnode < limit:
        raise OSError(EINVAL, "maxnode too small")
    known = MPOL_F_NODE | MPOL_F_ADDR | (0 if k.kgen == KGEN_2_6_7 else MPOL_F_MEMS_ALLOWED)
    if flags & ~known & ULONG_MASK:
        raise OSError(EINVAL, "unknown flags")
    if flags & MPOL_F_MEMS_ALLOWED:
        if flags & (MPOL_F_NODE | MPOL_F_ADDR):
            raise OSError(EINVAL, "MEMS_ALLOWED with NODE or ADDR")
        return 0, (_mems_allowed(k, t) if want_mask else None)
    task_pol = int(ks.tasks[t, S.T_POLICY])
    pol = task_pol
    vpn = (addr & ULONG_MASK) >> PAGE_SHIFT
    if flags & MPOL_F_ADDR:
        if k.find_vma(k.task_mm(t), vpn) < 0:
            raise OSError(EFAULT, "no VMA at addr")
        pol = _vma_policy_for_addr(k, t, vpn)
    elif addr:
        raise OSError(EINVAL, "addr without MPOL_F_ADDR")
    p = policy_of_row(k, pol)
    if flags & MPOL_F_NODE:
        if flags & MPOL_F_ADDR:
            value = lookup_node(k, t, vpn)
        elif pol == task_pol and p is not None and p.mode == MPOL_INTERLEAVE:
            value = next_node_in(int(ks.tasks[t, S.T_IL_PREV]), p.nodes)
        elif pol == task_pol and p is not None and p.mode == MPOL_WEIGHTED_INTERLEAVE:
            if ks.tasks[t, S.T_IL_WEIGHT]:
                value = int(ks.tasks[t, S.T_IL_PREV])
            else:
                value = next_node_in(int(ks.tasks[t, S.T_IL_PREV]), p.nodes)
        else:
            raise OSError(EINVAL, "MPOL_F_NODE without an interleave task policy")
    else:
        value = MPOL_DEFAULT if p is None else p.mode | (p.flags & MPOL_MODE_FLAGS)
    if not want_mask:
        return value, None
    if p is None or p.mode == MPOL_LOCAL:
        nodes: set[int] = set()
    elif mpol_store_user_nodemask(p.flags):
        nodes = set(p.user_nodes)
    else:
        nodes = set(p.nodes)
    copy = ((maxnode - 1 + 63) // 64) * 8
    if copy > PAGE_SIZE and k.kgen != KGEN_2_6_7:
        nbytes = ((nr_node_ids + 63) // 64) * 8
        if copy > nbytes:
            raise OSError(EINVAL, "maxnode too large")
    return value, nodes


# ------------------------------------------------------------------------ mbind
def _vmas_in(k: Kernel, mm: int, start: int, end: int) -> list[int]:
    ks = k.ks
    return [v for v in k.mm_vmas(mm)
            if ks.vmas[v, S.V_START] < end and start < ks.vmas[v, S.V_END]]


def check_range_holes(k: Kernel, mm: int, start: int, end: int, discontig_ok: bool) -> None:
    """``queue_pages_test_walk``'s hole checks: EFAULT for an unmapped start, middle or end
    (MPOL_DEFAULT tolerates holes if at least one VMA exists)."""
    ks = k.ks
    vmas = _vmas_in(k, mm, start, end)
    if not vmas:
        raise OSError(EFAULT, "range not mapped")
    if discontig_ok:
        return
    if ks.vmas[vmas[0], S.V_START] > start:
        raise OSError(EFAULT, "hole at the start of the range")
    for a, b in zip(vmas, vmas[1:], strict=False):
        if ks.vmas[a, S.V_END] < ks.vmas[b, S.V_START]:
            raise OSError(EFAULT, "hole in the range")
    if ks.vmas[vmas[-1], S.V_END] < end:
        raise OSError(EFAULT, "hole at the end of the range")


def _page_shared(k: Kernel, pg: int) -> bool:
    """``folio_likely_mapped_shared``: mapped by more than one process."""
    return int(k.ks.pages[pg, S.PG_MAPCOUNT]) > 1


def _present_pages(k: Kernel, mm: int, start: int, end: int) -> list[tuple[int, int, int]]:
    """(vpn, vma, page row) for every present, normal (non-zero-page) page in the range."""
    ks = k.ks
    out = []
    for r in k.mms[mm].regions:
        row = ks.regions[r]
        rs, re_ = int(row[S.R_START]), int(row[S.R_END])
        a, b = max(start, rs), min(end, re_)
        base = int(row[S.R_PT])
        for vpn in range(a, b):
            pg = int(ks.pt_page[base + vpn - rs])
            v = int(ks.pt_vma[base + vpn - rs])
            if pg >= 0 and v >= 0:
                out.append((vpn, v, pg))
    out.sort()
    return out


def queue_pages_range(k: Kernel, t: int, start: int, end: int, nmask: set[int], flags: int,
                      invert: bool) -> tuple[list[tuple[int, int, int]], int]:
    """``queue_pages_range``: pages whose node is outside (``invert``) or inside ``nmask``,
    as (vpn, vma, page); returns (queued, failures).  STRICT without MOVE stops at the first
    misplaced page with EIO; shared pages are skipped (not failures) without MOVE_ALL."""
    mm = k.task_mm(t)
    queued, failed = [], 0
    strict_only = (flags & (MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)) == MPOL_MF_STRICT
    if not flags & (MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL):
        return [], 0
    for vpn, v, pg in _present_pages(k, mm, start, end):
        node = int(k.ks.pages[pg, S.PG_NODE])
        if (node in nmask) != (not invert):
            continue
        if not flags & (MPOL_MF_MOVE | MPOL_MF_MOVE_ALL):
            failed += 1
            if strict_only:
                raise OSError(5, "misplaced page")  # EIO
            continue
        if flags & MPOL_MF_MOVE_ALL or not _page_shared(k, pg):
            queued.append((vpn, v, pg))
    return queued, failed


def is_mergeable_vma(k: Kernel, a: int, b: int) -> bool:
    """Could VMA b (right after a) join a, leaving anon_vmas aside (``is_mergeable_vma``
    plus contiguity of the file offset)?  VMAs of different regions never merge here (each
    region is its own slice of the page-table arrays); the probe's /proc/self/maps view joins
    them where Linux would have one VMA."""
    ks = k.ks
    ra, rb = ks.vmas[a], ks.vmas[b]
    if ra[S.V_END] != rb[S.V_START] or ra[S.V_MM] != rb[S.V_MM]:
        return False
    if ra[S.V_REGION] != rb[S.V_REGION]:
        return False
    for col in (S.V_OBJ, S.V_PROT, S.V_SHARED, S.V_KIND, S.V_HUGEPAGE):
        if ra[col] != rb[col]:
            return False
    if rb[S.V_PGOFF] != ra[S.V_PGOFF] + (ra[S.V_END] - ra[S.V_START]):
        return False
    return mpol_equal(k, int(ra[S.V_POLICY]), int(rb[S.V_POLICY]))


def anon_chain_singular(k: Kernel, v: int) -> bool:
    """``list_is_singular(&vma->anon_vma_chain)``: the VMA has an anon_vma of its own and was
    not cloned from a parent by fork (a forked VMA's chain also links the parent's)."""
    av = int(k.ks.vmas[v, S.V_ANON_VMA])
    return av != 0 and av not in k.forked_anon


def is_mergeable_anon_vma(k: Kernel, av1: int, av2: int, v: int | None) -> bool:
    """``is_mergeable_anon_vma``: a VMA without an anon_vma merges with one that has one only
    when that other VMA's chain is singular; so a written VMA does NOT absorb an unwritten
    neighbour (seen on the real 6.1 and 6.12: mbind leaves 3 VMAs)."""
    if (not av1 or not av2) and (v is None or anon_chain_singular(k, v)):
        return True
    return av1 == av2


def vma_merge_candidate(k: Kernel, a: int, b: int, vmg: int | None = None) -> bool:
    """Could VMA b (right after a) be merged with a?  ``vmg`` is the VMA being changed (its
    anon_vma is the proposed one; the neighbour's chain decides, as in
    ``can_vma_merge_after``/``can_vma_merge_before``); None = b."""
    if not is_mergeable_vma(k, a, b):
        return False
    ks = k.ks
    vmg = b if vmg is None else vmg
    other = a if vmg == b else b
    return is_mergeable_anon_vma(k, int(ks.vmas[vmg, S.V_ANON_VMA]),
                                 int(ks.vmas[other, S.V_ANON_VMA]), other)


def mbind_range(k: Kernel, mm: int, start: int, end: int, new: int, only: int | None = None
                ) -> None:
    """``mbind_range``: give [start, end) policy ``new`` (a row, -1 = none), VMA by VMA,
    splitting at the range's edges and merging with neighbours that end up identical
    (``vma_modify_policy``).  ``only`` restricts it to one VMA (set_mempolicy_home_node)."""
    ks = k.ks
    cursor = start
    while cursor < end:
        if only is not None:
            v = only if ks.vmas[only, S.V_ALIVE] else -1
            if v >= 0 and ks.vmas[v, S.V_END] <= cursor:
                v = -1
        else:
            nxt = [u for u in _vmas_in(k, mm, cursor, end)]
            v = nxt[0] if nxt else -1
        if v < 0:
            return
        vs, ve = int(ks.vmas[v, S.V_START]), int(ks.vmas[v, S.V_END])
        if mpol_equal(k, int(ks.vmas[v, S.V_POLICY]), new):
            cursor = ve
            if only is not None:
                return
            continue
        target = v
        if vs < start:
            target = k.split_vma(v, start)
        if ve > end:
            k.split_vma(target, end)
        vma_replace_policy(k, target, new)
        _try_merge_around(k, mm, target)
        cursor = min(ve, end)
        if only is not None:
            return


def _try_merge_around(k: Kernel, mm: int, v: int) -> None:
    """``vma_merge_existing_range``: join v with its previous and/or next VMA; merging with
    both also needs prev's and next's anon_vmas to agree (``can_vma_merge_right``)."""
    ks = k.ks
    vmas = k.mm_vmas(mm)
    i = vmas.index(v)
    prev = vmas[i - 1] if i > 0 else None
    nxt = vmas[i + 1] if i + 1 < len(vmas) else None
    left = prev is not None and vma_merge_candidate(k, prev, v, vmg=v)
    right = nxt is not None and vma_merge_candidate(k, v, nxt, vmg=v)
    if left and right:
        right = is_mergeable_anon_vma(k, int(ks.vmas[prev, S.V_ANON_VMA]),
                                      int(ks.vmas[nxt, S.V_ANON_VMA]), None)
    if left:
        k.merge_vmas(prev, v)
        v = prev
    if right:
        k.merge_vmas(v, nxt)


def vma_replace_policy(k: Kernel, v: int, new: int) -> None:
    """``vma_replace_policy``: a private copy of ``new`` on the VMA; shmem VMAs also write
    the shared policy of their pages (``shmem_set_policy``)."""
    ks = k.ks
    k.put_policy(int(ks.vmas[v, S.V_POLICY]))
    ks.vmas[v, S.V_POLICY] = k.dup_policy(new)
    if int(ks.vmas[v, S.V_KIND]) == S.KIND_SHMEM:
        o = int(ks.vmas[v, S.V_OBJ])
        lo = int(ks.vmas[v, S.V_PGOFF])
        hi = lo + int(ks.vmas[v, S.V_END] - ks.vmas[v, S.V_START])
        shared_policy_replace(k, o, lo, hi, new)


def shared_policy_replace(k: Kernel, o: int, lo: int, hi: int, new: int) -> None:
    """``shared_policy_replace``: [lo, hi) of the object's shared policy becomes ``new``
    (trimming or splitting overlapping ranges; -1 deletes)."""
    ks = k.ks
    for s in range(ks.sp.shape[0]):
        row = ks.sp[s]
        if not row[S.S_ALIVE] or row[S.S_OBJ] != o:
            continue
        a, b, pol = int(row[S.S_START]), int(row[S.S_END]), int(row[S.S_POLICY])
        if b <= lo or a >= hi:
            continue
        if a < lo and b > hi:  # split around the new range
            ks.sp[s, S.S_END] = lo
            ks.new_sp(o, hi, b, k.dup_policy(pol))
        elif a < lo:
            ks.sp[s, S.S_END] = lo
        elif b > hi:
            ks.sp[s, S.S_START] = hi
        else:
            ks.sp[s, S.S_ALIVE] = 0
            k.put_policy(pol)
    if new >= 0:
        ks.new_sp(o, lo, hi, k.dup_policy(new))


def migrate_pages_list(k: Kernel, t: int, pages: list[tuple[int, int, int]], *, pol: int = -1,
                       ilx_base: int = 0, dest: int | None = None) -> int:
    """``migrate_pages`` over a list of (vpn, vma, page): allocate each new page -- with
    policy ``pol`` and ilx = ilx_base + page index (``alloc_migration_target_by_mpol``), or
    on node ``dest`` only (``alloc_migration_target``, __GFP_THISNODE) -- copy, remap, free
    the old page.  Returns the number of pages that could not be migrated."""
    ks = k.ks
    failed = 0
    res = k._res
    seen: set[int] = set()  # a THP is listed once per subpage and moves once, whole
    for _vpn, _v, pg in pages:
        if pg in seen:
            continue
        seen.add(pg)
        ks.ensure_pages(4)
        kind = int(ks.pages[pg, S.PG_KIND])
        if not folio_migratable(k, pg):
            failed += 1
            ks.vmstat[S.VM_PGMIGRATE_FAIL] += 1
            continue
        index = int(ks.pages[pg, S.PG_INDEX])
        obj = int(ks.pages[pg, S.PG_OBJ])
        order = int(ks.pages[pg, S.PG_ORDER])  # a THP (order 9) moves whole
        if dest is not None:
            res[core.R_NID] = dest
            res[core.R_MASK_KIND] = core.MASK_NODE
            res[core.R_MASK_IDX] = dest
            new = k.core.alloc_pages_nid(ks.core_args(), t, GFP_THISNODE, order, -1, -1, kind,
                                         obj, index, core.OOM_NEVER, res)
        else:
            ilx = ilx_base + index
            new = k.core.alloc_pages_mpol(ks.core_args(), t, GFP_USER_MOVABLE, order, pol, ilx,
                                          kind, obj, index, core.OOM_NEVER, res)
        if new < 0:
            failed += 1
            ks.vmstat[S.VM_PGMIGRATE_FAIL] += 1 << order
            if order:
                from numasim.mm.huge_memory import count_event

                count_event(k, "thp_migration_fail")
            continue
        _replace_page(k, pg, int(new))
        ks.vmstat[S.VM_PGMIGRATE_SUCCESS] += 1 << order
        if order:
            from numasim.mm.huge_memory import count_event

            count_event(k, "thp_migration_success")
    return failed


def folio_migratable(k: Kernel, pg: int) -> bool:
    """Can ``move_to_new_folio`` move this page?  ramfs page cache (numasim's regular
    files) has neither ``migrate_folio`` nor ``writepage``: a dirty page goes through
    ``fallback_migrate_folio`` -> ``writeout`` -> -EINVAL and stays where it is (every ramfs
    page written through a mapping or write(2) is dirty; FINDINGS.md F13).  Anonymous and
    shmem pages, and clean ramfs pages, migrate."""
    ks = k.ks
    return not (int(ks.pages[pg, S.PG_KIND]) == S.PGK_FILE and ks.pages[pg, S.PG_DIRTY])


def _replace_page(k: Kernel, old: int, new: int) -> None:
    """Every mapping of ``old`` (in any process, and the object's page cache slot) now
    points at ``new``; ``old`` is freed."""
    ks = k.ks
    ks.pages[new, S.PG_MAPCOUNT] = ks.pages[old, S.PG_MAPCOUNT]
    ks.pages[new, S.PG_DIRTY] = ks.pages[old, S.PG_DIRTY]  # folio_migrate_flags
    hits = (ks.pt_page[: ks.pt_used] == old).nonzero()[0]
    ks.pt_page[hits] = new
    obj = int(ks.pages[old, S.PG_OBJ])
    if obj >= 0:
        slots = (ks.obj_pages[: ks.obj_pages_used] == old).nonzero()[0]
        ks.obj_pages[slots] = new
    ks.pages[old, S.PG_MAPCOUNT] = 0
    k.core.free_page(ks.zones, ks.vmstat, ks.pages, old)


def mbind(k: Kernel, t: int, start: int, length: int, mode: int, nmask: UserMask | None,
          maxnode: int, flags: int) -> int:
    """``mbind(2)``: set the policy of [start, start+len) and optionally check or move the
    pages already there."""
    ks = k.ks
    flags &= 0xFFFFFFFF
    mode, mode_flags, nodes = _make_policy(k, t, mode, nmask, maxnode)
    valid = MPOL_MF_STRICT if k.kgen == KGEN_2_6_7 else MPOL_MF_VALID
    if flags & ~valid:
        raise OSError(EINVAL, "invalid flags")
    if flags & MPOL_MF_MOVE_ALL and not ks.tasks[t, S.T_CAP_SYS_NICE]:
        raise OSError(EPERM, "MPOL_MF_MOVE_ALL needs CAP_SYS_NICE")
    start &= ULONG_MASK
    if start & (PAGE_SIZE - 1):
        raise OSError(EINVAL, "start not page aligned")
    if mode == MPOL_DEFAULT:
        flags &= ~MPOL_MF_STRICT
    span = page_range(start, length)
    if span is None:
        return 0
    svpn, evpn = span
    new = mpol_new(mode, mode_flags, nodes)
    if k.kgen == KGEN_2_6_7 and new is not None and new.mode == MPOL_LOCAL:
        new.mode = MPOL_PREFERRED
    mpol_set_nodemask(new, nodes, _mems_allowed(k, t), _n_memory(k), k.kgen)
    mm = k.task_mm(t)
    check_range_holes(k, mm, svpn, evpn, discontig_ok=new is None)
    queued, failed = queue_pages_range(k, t, svpn, evpn, nodes, flags, invert=True)
    row = install_policy(k, new)
    try:
        mbind_range(k, mm, svpn, evpn, row)
        if queued:
            pol = row if row >= 0 else int(ks.tasks[t, S.T_POLICY])
            first_vpn, first_v, first_pg = queued[0]
            base = 0
            p = policy_of_row(k, pol)
            if p is not None and p.mode in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE):
                v = k.find_vma(mm, first_vpn)
                if int(ks.vmas[v, S.V_KIND]) == S.KIND_SHMEM:
                    base = int(ks.objs[int(ks.vmas[v, S.V_OBJ]), S.O_INO])
            failed += migrate_pages_list(k, t, queued, pol=pol, ilx_base=base)
    finally:
        k.put_policy(row)
    if failed and flags & MPOL_MF_STRICT:
        raise OSError(5, "some pages could not be moved")  # EIO
    return 0


# ---------------------------------------------------------------------- mprotect
def mprotect(k: Kernel, t: int, start: int, length: int, prot: int) -> int:
    """``mprotect(2)``: change the protection of [start, start+len), splitting VMAs at the
    edges and merging them with neighbours that end up identical (``mprotect_fixup``)."""
    ks = k.ks
    start &= ULONG_MASK
    if start & (PAGE_SIZE - 1):
        raise OSError(EINVAL, "start not page aligned")
    span = page_range(start, length, ENOMEM)
    if span is None:
        return 0
    mm = k.task_mm(t)
    svpn, evpn = span
    vmas = _vmas_in(k, mm, svpn, evpn)
    if not vmas or ks.vmas[vmas[0], S.V_START] > svpn:
        raise OSError(ENOMEM, "range not mapped")
    for a, b in zip(vmas, vmas[1:], strict=False):
        if ks.vmas[a, S.V_END] < ks.vmas[b, S.V_START]:
            raise OSError(ENOMEM, "hole in the range")
    if ks.vmas[vmas[-1], S.V_END] < evpn:
        raise OSError(ENOMEM, "range not mapped at the end")
    cursor = svpn
    while cursor < evpn:
        v = next(u for u in _vmas_in(k, mm, cursor, evpn))
        vs, ve = int(ks.vmas[v, S.V_START]), int(ks.vmas[v, S.V_END])
        if int(ks.vmas[v, S.V_PROT]) == prot:
            cursor = ve
            continue
        target = v
        if vs < cursor:
            target = k.split_vma(v, cursor)
        if ve > evpn:
            k.split_vma(target, evpn)
        ks.vmas[target, S.V_PROT] = prot
        _try_merge_around(k, mm, target)
        cursor = min(ve, evpn)
    return 0


# -------------------------------------------------------- set_mempolicy_home_node
def set_mempolicy_home_node(k: Kernel, t: int, start: int, length: int, home_node: int,
                            flags: int) -> int:
    if k.kgen == KGEN_2_6_7:
        raise OSError(ENOSYS, "set_mempolicy_home_node came with Linux 5.17")
    ks = k.ks
    start &= ULONG_MASK
    if start & (PAGE_SIZE - 1):
        raise OSError(EINVAL, "start not page aligned")
    if flags != 0:
        raise OSError(EINVAL, "flags must be 0")
    home_node &= ULONG_MASK
    if home_node >= MAX_NUMNODES or home_node not in k.machine.node_ids:
        raise OSError(EINVAL, "home node not online")
    span = page_range(start, length)
    if span is None:
        return 0
    mm = k.task_mm(t)
    svpn, evpn = span
    err = ENOENT
    for v in _vmas_in(k, mm, svpn, evpn):
        if not ks.vmas[v, S.V_ALIVE]:
            continue
        old = int(ks.vmas[v, S.V_POLICY])
        if old < 0:
            continue
        mode = int(ks.policies[old, S.P_MODE])
        if mode not in (MPOL_BIND, MPOL_PREFERRED_MANY):
            raise OSError(EOPNOTSUPP, "policy is not bind or preferred-many")
        new = k.dup_policy(old)
        ks.policies[new, S.P_HOME] = home_node
        mbind_range(k, mm, svpn, evpn, new, only=v)
        k.put_policy(new)
        err = 0
    if err:
        raise OSError(err, "no VMA in the range has a policy")
    return 0


# ------------------------------------------------------------------ migrate_pages
def find_task(k: Kernel, t: int, pid: int) -> int:
    """pid 0 = the caller; pids are task ids here.  ESRCH if there is no such live task."""
    if pid == 0:
        return t
    if pid < 0 or pid >= k.ks.tasks.shape[0] or not k.ks.tasks[pid, S.T_ALIVE]:
        raise OSError(ESRCH, "no such process")
    return pid


def migrate_pages(k: Kernel, t: int, pid: int, maxnode: int, old: UserMask | None,
                  new: UserMask | None) -> int:
    """``migrate_pages(2)``: move every page of a process from the old nodes to the new
    ones, pairing nodes as ``do_migrate_pages`` does; returns pages that could not move."""
    if k.kgen == KGEN_2_6_7:
        raise OSError(ENOSYS, "migrate_pages came with Linux 2.6.16")
    ks = k.ks
    frm = get_nodes(old, maxnode)
    to = get_nodes(new, maxnode)
    target = find_task(k, t, pid)
    cap = bool(ks.tasks[t, S.T_CAP_SYS_NICE])
    if not to <= _mems_allowed(k, target) and not cap:
        raise OSError(EPERM, "target nodes outside the task's cpuset")
    to &= _mems_allowed(k, t)
    if not to:
        raise OSError(EINVAL, "no allowed target node")
    return do_migrate_pages(k, t, target, frm, to, MPOL_MF_MOVE_ALL if cap else MPOL_MF_MOVE)


def do_migrate_pages(k: Kernel, t: int, target: int, frm: set[int], to: set[int],
                     flags: int) -> int:
    busy = 0
    tmp = set(frm)
    while tmp:
        source, dest = -1, 0
        for s in sorted(tmp):
            if len(frm) != len(to) and s in to:
                continue
            d = node_remap(s, frm, to)
            if s == d:
                continue
            source, dest = s, d
            if dest not in tmp:
                break
        if source < 0:
            break
        tmp.discard(source)
        busy += migrate_to_node(k, t, target, source, dest, flags)
    return busy


def migrate_to_node(k: Kernel, t: int, target: int, source: int, dest: int, flags: int) -> int:
    """``migrate_to_node``: every page of the target's mm on ``source`` goes to ``dest``."""
    ks = k.ks
    mm = k.task_mm(target)
    pages = []
    for vpn, v, pg in _present_pages(k, mm, 0, 1 << 40):
        if int(ks.pages[pg, S.PG_NODE]) != source:
            continue
        if flags & MPOL_MF_MOVE_ALL or not _page_shared(k, pg):
            pages.append((vpn, v, pg))
    return migrate_pages_list(k, t, pages, dest=dest)


# --------------------------------------------------------------------- move_pages
def move_pages(k: Kernel, t: int, pid: int, addrs: list[int], nodes: list[int] | None,
               flags: int, status_init: int = 0) -> tuple[int, list[int]]:
    """``move_pages(2)``: with ``nodes`` None, report each page's node (or -errno); else
    move each page to its node.  Returns (return value, status per page).

    ``do_pages_move``: consecutive pages bound for one node are queued and migrated as a
    batch when the target changes or a page is not queued (already there, absent,
    shared).  A batch in which some page fails to migrate ends the call: it returns the
    number of pages not migrated plus those never attempted, and the status of that batch
    and of everything after it is left unwritten -- ``status_init``, what the caller's
    array held (the oracle's probe callocs it: 0)."""
    if k.kgen == KGEN_2_6_7:
        raise OSError(ENOSYS, "move_pages came with Linux 2.6.18")
    ks = k.ks
    if flags & ~(MPOL_MF_MOVE | MPOL_MF_MOVE_ALL):
        raise OSError(EINVAL, "invalid flags")
    if flags & MPOL_MF_MOVE_ALL and not ks.tasks[t, S.T_CAP_SYS_NICE]:
        raise OSError(EPERM, "MPOL_MF_MOVE_ALL needs CAP_SYS_NICE")
    target = find_task(k, t, pid)
    mm = k.task_mm(target)
    if nodes is None:
        return 0, [page_status(k, mm, a) for a in addrs]
    return _do_pages_move(k, t, mm, _mems_allowed(k, target), addrs, nodes,
                          bool(flags & MPOL_MF_MOVE_ALL), status_init)


def _do_pages_move(k: Kernel, t: int, mm: int, task_nodes: set[int], addrs: list[int],
                   nodes: list[int], move_all: bool, status_init: int) -> tuple[int, list[int]]:
    ks = k.ks
    n = len(addrs)
    status = [status_init] * n
    queued: list[tuple[int, int, int]] = []
    current, start = -1, 0

    def flush(node: int, start: int, i: int) -> int:
        """``move_pages_and_store_status``: migrate the batch [start, i)."""
        if not queued:
            return 0
        failed = migrate_pages_list(k, t, queued, dest=node)
        queued.clear()
        if failed:
            return failed + n - i
        status[start:i] = [node] * (i - start)
        return 0

    for i, (addr, node) in enumerate(zip(addrs, nodes, strict=True)):
        if node < 0 or node >= MAX_NUMNODES or not (node < ks.nodeinfo.shape[0]
                                                    and ks.nodeinfo[node, S.N_MEMORY]):
            flush(current, start, i)
            raise OSError(ENODEV, "bad target node")
        if node not in task_nodes:
            flush(current, start, i)
            raise OSError(EACCES, "target node outside the task's cpuset")
        if current < 0:
            current, start = node, i
        elif node != current:
            err = flush(current, start, i)
            if err:
                return err, status
            current, start = node, i
        st = add_page_for_migration(k, t, mm, addr, node, move_all)
        if st == 1:
            vpn = (addr & ULONG_MASK) >> PAGE_SHIFT
            pg = k.pte(mm, vpn)
            if all(q[2] != pg for q in queued):
                queued.append((vpn, k.find_vma(mm, vpn), pg))
                continue
            st = -EBUSY  # the same page twice: already isolated (folio_isolate_lru fails)
        status[i] = st
        err = flush(current, start, i)
        if err:
            return err - 1, status  # page i is accounted for
        current = -1
    return flush(current, start, n), status


def page_status(k: Kernel, mm: int, addr: int) -> int:
    """``do_pages_stat``: the node of the page at addr, or -EFAULT (no VMA, zero page;
    on 6.1 also an anonymous page never touched), or -ENOENT (not present).  A swapped-out
    page is -ENOENT on both kernels: 6.1's ``follow_page_pte`` returns NULL for a swap entry
    (only an empty pte is -EFAULT under FOLL_DUMP); recorded in oracle scenario 45."""
    vpn = (addr & ULONG_MASK) >> PAGE_SHIFT
    v = k.find_vma(mm, vpn)
    if v < 0:
        return -EFAULT
    pg = k.pte(mm, vpn)
    if pg == S.PT_ZERO:
        return -EFAULT
    if pg < 0:
        if k.kgen == KGEN_6_1 and pg != S.PT_SWAP and int(k.ks.vmas[v, S.V_KIND]) == S.KIND_ANON:
            return -EFAULT
        return -ENOENT
    return int(k.ks.pages[pg, S.PG_NODE])


def add_page_for_migration(k: Kernel, t: int, mm: int, addr: int, node: int,
                           migrate_all: bool) -> int:
    """1 = queue it; 0 via the node = already there; else -errno for the status array."""
    vpn = (addr & ULONG_MASK) >> PAGE_SHIFT
    v = k.find_vma(mm, vpn)
    if v < 0:
        return -EFAULT
    pg = k.pte(mm, vpn)
    if pg == S.PT_ZERO:
        return -EFAULT
    if pg < 0:
        if k.kgen == KGEN_6_1 and pg != S.PT_SWAP:  # a swap entry: NULL, -ENOENT (as above)
            return -EFAULT
        return -ENOENT
    if int(k.ks.pages[pg, S.PG_NODE]) == node:
        return node
    if _page_shared(k, pg) and not migrate_all:
        return -EACCES
    if int(k.ks.pages[pg, S.PG_KIND]) not in (S.PGK_ANON, S.PGK_SHMEM, S.PGK_FILE):
        return -EBUSY
    return 1


# ------------------------------------------------------------------------ cpusets
def cpuset_set_mems(k: Kernel, tasks: list[int], newmems: set[int], migrate: bool = True
                    ) -> None:
    """A cpuset's mems change (or tasks move into it): each task's mems_allowed becomes
    ``newmems``, its task and VMA policies are rebound, and (cgroup v2 always migrates)
    its pages move from the old mems to the new."""
    ks = k.ks
    ks.sysvars[S.SV_CPUSETS_ENABLED] = 1
    for t in tasks:
        old = _mems_allowed(k, t)
        ks.task_mems[t, :] = 0
        for n in newmems:
            if n < ks.task_mems.shape[1]:
                ks.task_mems[t, n] = 1
        rebind_row(k, int(ks.tasks[t, S.T_POLICY]), newmems)
        for v in k.mm_vmas(k.task_mm(t)):
            rebind_row(k, int(ks.vmas[v, S.V_POLICY]), newmems)
        if migrate and old != set(newmems):
            do_migrate_pages(k, t, t, old, set(newmems), MPOL_MF_MOVE_ALL)


def rebind_row(k: Kernel, p: int, newmems: set[int]) -> None:
    if p < 0:
        return
    ks = k.ks
    meta = k.policy_meta.setdefault(p, {})
    nodes = mpol_rebind_policy(int(ks.policies[p, S.P_MODE]), int(ks.policies[p, S.P_FLAGS]),
                               set(ks.policy_nodes(p)), meta, newmems)
    if nodes is not None:
        ks.set_policy_row(p, int(ks.policies[p, S.P_MODE]), int(ks.policies[p, S.P_FLAGS]),
                          nodes, int(ks.policies[p, S.P_HOME]))


__all__ = ["set_mempolicy", "get_mempolicy", "mbind", "mprotect", "set_mempolicy_home_node",
           "migrate_pages", "move_pages", "cpuset_set_mems", "UserMask", "Segfault",
           "TaskKilled", "EBUSY", "ENOMEM", "MPOL_F_NODE"]


def madvise_hugepage(k: Kernel, t: int, start: int, length: int, advice: int) -> int:
    """``madvise(MADV_HUGEPAGE | MADV_NOHUGEPAGE)`` (``hugepage_madvise`` through
    ``madvise_update_vma``): set the VMA flag over [start, start+len), splitting VMAs at the
    edges and merging neighbours that end up identical.  -errno like the syscall: EINVAL
    for an unaligned start or unknown advice, ENOMEM when part of the range is unmapped
    (the mapped parts are still changed).  Here, beside the VMA split/merge helpers it uses,
    so that the THP code (:mod:`numasim.mm.huge_memory`) does not import the system calls."""
    ks = k.ks
    if start & 0xFFF or length < 0 or advice not in (MADV_HUGEPAGE, MADV_NOHUGEPAGE):
        return -22
    svpn = start >> 12
    evpn = (start + length + 0xFFF) >> 12
    if evpn == svpn:
        return 0
    flag = VM_HUGEPAGE if advice == MADV_HUGEPAGE else VM_NOHUGEPAGE
    mm = k.task_mm(t)
    covered = 0
    cursor = svpn
    while cursor < evpn:
        vs_ = _vmas_in(k, mm, cursor, evpn)
        if not vs_:
            break
        v = vs_[0]
        vs, ve = int(ks.vmas[v, S.V_START]), int(ks.vmas[v, S.V_END])
        a, b = max(vs, cursor), min(ve, evpn)
        covered += b - a
        if int(ks.vmas[v, S.V_HUGEPAGE]) != flag:
            target = v
            if vs < a:
                target = k.split_vma(v, a)
            if ve > b:
                k.split_vma(target, b)
            ks.vmas[target, S.V_HUGEPAGE] = flag
            if flag == VM_HUGEPAGE:  # hugepage_madvise: khugepaged_enter_vma
                k.khugepaged.enter_vma(target)
            _try_merge_around(k, mm, target)
        cursor = b
    return 0 if covered == evpn - svpn else -12
