"""Semantics: the worked examples of the Linux fact sheet, one assertion each.

(``../shared/reference/linux-mempolicy-facts.md`` is not part of this repository; the section
numbers are quoted so a reader with the sheet can follow.)  The recorded real-kernel scenarios
(tests/test_oracle_scenarios.py) cover the same facts end to end; these tests pin them one by
one against the Python API.
"""

from __future__ import annotations

import pytest

from numasim.mm import syscalls as sc
from numasim.mm.constants import (
    EFAULT,
    EINVAL,
    EIO,
    EPERM,
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_ADDR,
    MPOL_F_NODE,
    MPOL_F_RELATIVE_NODES,
    MPOL_F_STATIC_NODES,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_MF_LAZY,
    MPOL_MF_MOVE,
    MPOL_MF_MOVE_ALL,
    MPOL_MF_STRICT,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)
from numasim.mm.kernel import Kernel
from numasim.mm.mempolicy import mpol_rebind_policy
from numasim.mm.nodemask import UserMask, mpol_relative_nodemask, node_remap
from numasim.topology.build import make_machine
from numasim.topology.derive import boot_state
from numasim.topology.model import Node

GIB = 1 << 30


def machine(dist, cpus=None, name="m", weights=None):
    n = len(dist)
    cpus = cpus if cpus is not None else [(i,) for i in range(n)]
    return make_machine(name, [Node(i, cpus[i], GIB) for i in range(n)], distance=dist,
                        wi_weights=weights)


FLAT4 = [[10 if i == j else 20 for j in range(4)] for i in range(4)]
SNC4 = [[10, 11, 21, 21], [11, 10, 21, 21], [21, 21, 10, 11], [21, 21, 11, 10]]
ASYM4 = [[10, 20, 30, 40], [20, 10, 25, 35], [30, 25, 10, 15], [40, 35, 15, 10]]


def kernel(dist=FLAT4, **kw):
    k = Kernel(machine(dist, **kw))
    return k, k.new_process(0)


def nodes_of(k, t, vpn, n):
    return [k.page_node(t, vpn + i) for i in range(n)]


# ---------------------------------------------------------------- §10 zonelists
def test_s10_flat_four_nodes_rotate_equidistant_nodes():
    d = boot_state(machine(FLAT4))
    assert d.fallback_order == {0: (0, 1, 2, 3), 1: (1, 2, 3, 0), 2: (2, 3, 0, 1),
                                3: (3, 0, 1, 2)}


def test_s10_snc_like_distances():
    d = boot_state(machine(SNC4))
    assert d.fallback_order == {0: (0, 1, 2, 3), 1: (1, 0, 3, 2), 2: (2, 3, 0, 1),
                                3: (3, 2, 1, 0)}


def test_s10_boot_order_ignores_cpu_penalty_but_a_rebuild_does_not():
    """At boot no CPU is in its node yet; a later rebuild prefers CPU-less nodes."""
    from numasim.topology.derive import derive

    m = machine(FLAT4, cpus=[(0,), (1,), (2,), ()])
    assert boot_state(m).fallback_order[0] == (0, 1, 2, 3)
    assert derive(m, cpu_penalty=True).fallback_order[0] == (0, 3, 1, 2)


# --------------------------------------------------------- §3 modes and fallback
def test_s3_bind_uses_the_nearest_node_of_the_mask_not_the_lowest():
    k, t = kernel(ASYM4)
    sc.set_mempolicy(k, t, MPOL_BIND, UserMask.of({2, 3}), 1025)
    k.mmap(t, 8, vpn=0x40000)
    k.touch(t, 0x40000, 8)
    assert nodes_of(k, t, 0x40000, 8) == [2] * 8
    k.set_cpu(t, 3)
    k.mmap(t, 8, vpn=0x50000)
    k.touch(t, 0x50000, 8)
    assert nodes_of(k, t, 0x50000, 8) == [3] * 8


def test_s3_preferred_with_empty_mask_becomes_local():
    k, t = kernel()
    sc.set_mempolicy(k, t, MPOL_PREFERRED, UserMask.of(()), 1025)
    assert sc.get_mempolicy(k, t)[0] == MPOL_LOCAL


def test_s3_default_and_local_refuse_nodes_and_others_need_them():
    k, t = kernel()
    for mode, nodes in ((MPOL_DEFAULT, {1}), (MPOL_LOCAL, {1}), (MPOL_BIND, ()),
                        (MPOL_INTERLEAVE, ()), (MPOL_PREFERRED_MANY, ()),
                        (MPOL_WEIGHTED_INTERLEAVE, ()), (MPOL_BIND, {9})):
        with pytest.raises(OSError) as e:
            sc.set_mempolicy(k, t, mode, UserMask.of(nodes), 1025)
        assert e.value.errno == EINVAL, (mode, nodes)


def test_s3_static_and_relative_together_are_einval():
    k, t = kernel()
    with pytest.raises(OSError) as e:
        sc.set_mempolicy(k, t, MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES,
                         UserMask.of({1}), 1025)
    assert e.value.errno == EINVAL


# ---------------------------------------------------------------- §4 interleave
def test_s4_vma_interleave_index_is_the_absolute_virtual_page_number():
    """An anonymous VMA at vpn 0x40001 under interleave {0,1,2,3}: page i goes to node
    (0x40001 + i) mod 4, not i mod 4."""
    k, t = kernel()
    vpn = 0x40001
    k.mmap(t, 8, vpn=vpn)
    sc.mbind(k, t, vpn << 12, 8 << 12, MPOL_INTERLEAVE, UserMask.of({0, 1, 2, 3}), 1025, 0)
    k.touch(t, vpn, 8)
    assert nodes_of(k, t, vpn, 8) == [(vpn + i) % 4 for i in range(8)]


def test_s4_task_interleave_of_anonymous_faults_is_offset_based_too():
    k, t = kernel()
    sc.set_mempolicy(k, t, MPOL_INTERLEAVE, UserMask.of({1, 3}), 1025)
    vpn = 0x40003
    k.mmap(t, 6, vpn=vpn)
    k.touch(t, vpn, 6)
    assert nodes_of(k, t, vpn, 6) == [[1, 3][(vpn + i) % 2] for i in range(6)]


def test_s4_weighted_interleave_offset_form():
    k, t = kernel(weights=(3, 1, 1, 1))
    vpn = 0x40000
    k.mmap(t, 12, vpn=vpn)
    sc.mbind(k, t, vpn << 12, 12 << 12, MPOL_WEIGHTED_INTERLEAVE,
             UserMask.of({0, 1, 2, 3}), 1025, 0)
    k.touch(t, vpn, 12)
    pattern = [0, 0, 0, 1, 2, 3]  # weights 3:1:1:1, total 6
    assert nodes_of(k, t, vpn, 12) == [pattern[(vpn + i) % 6] for i in range(12)]


def test_s4_get_mempolicy_node_reports_the_next_interleave_node():
    k, t = kernel()
    sc.set_mempolicy(k, t, MPOL_INTERLEAVE, UserMask.of({1, 2}), 1025)
    assert sc.get_mempolicy(k, t, want_mask=False, flags=MPOL_F_NODE)[0] == 1
    with pytest.raises(OSError) as e:
        sc.set_mempolicy(k, t, MPOL_BIND, UserMask.of({1}), 1025)
        sc.get_mempolicy(k, t, want_mask=False, flags=MPOL_F_NODE)
    assert e.value.errno == EINVAL


def test_s4_6_1_truncates_the_interleave_index_to_32_bits():
    """Above 2^44 bytes and with a 3-node mask, 6.1 and 6.12 place the same page apart."""
    m = machine([[10, 20, 20], [20, 10, 20], [20, 20, 10]])
    vpn = (1 << 44 >> 12) + 5
    placed = {}
    for gen in ("6.12", "6.1"):
        k = Kernel(m, gen)
        t = k.new_process(0)
        k.mmap(t, 1, vpn=vpn)
        sc.mbind(k, t, vpn << 12, 4096, MPOL_INTERLEAVE, UserMask.of({0, 1, 2}), 1025, 0)
        k.touch(t, vpn, 1)
        placed[gen] = k.page_node(t, vpn)
    assert placed["6.12"] == vpn % 3
    assert placed["6.1"] == (vpn & 0xFFFFFFFF) % 3
    assert placed["6.12"] != placed["6.1"]


# ------------------------------------------------------------ §5 flags, rebinding
def test_s5_relative_nodes_doc_example():
    """RELATIVE interleave user {2,3,4,5} in mems {2-5}; mems -> {3-7}: {3,5,6,7};
    mems -> {0,2,3,5}: {0,2,3,5}."""
    user = {2, 3, 4, 5}
    assert mpol_relative_nodemask(user, {2, 3, 4, 5}) == {2, 3, 4, 5}
    meta = {"user_nodes": frozenset(user)}
    assert mpol_rebind_policy(MPOL_INTERLEAVE, MPOL_F_RELATIVE_NODES, {2, 3, 4, 5}, meta,
                              {3, 4, 5, 6, 7}) == {3, 5, 6, 7}
    assert mpol_rebind_policy(MPOL_INTERLEAVE, MPOL_F_RELATIVE_NODES, {3, 5, 6, 7}, meta,
                              {0, 2, 3, 5}) == {0, 2, 3, 5}


def test_s5_plain_rebind_remaps_and_static_intersects():
    meta = {"cpuset_mems": frozenset({0, 1, 2, 3})}
    assert mpol_rebind_policy(MPOL_BIND, 0, {1, 2}, dict(meta), {4, 5, 6, 7}) == {5, 6}
    smeta = {"user_nodes": frozenset({1, 2})}
    assert mpol_rebind_policy(MPOL_BIND, MPOL_F_STATIC_NODES, {1, 2}, smeta, {2, 3}) == {2}
    # nothing left -> all of the new mems
    assert mpol_rebind_policy(MPOL_BIND, MPOL_F_STATIC_NODES, {1}, {"user_nodes": {1}},
                              {2, 3}) == {2, 3}


def test_s5_preferred_is_not_remapped_on_rebind():
    meta = {"cpuset_mems": frozenset({0, 1})}
    assert mpol_rebind_policy(MPOL_PREFERRED, 0, {1}, meta, {2, 3}) is None
    assert meta["cpuset_mems"] == {2, 3}


def test_s5_static_policy_reports_the_users_mask():
    k, t = kernel()
    sc.set_mempolicy(k, t, MPOL_BIND | MPOL_F_STATIC_NODES, UserMask.of({1, 2, 7}), 1025)
    mode, nodes = sc.get_mempolicy(k, t)
    assert mode == MPOL_BIND | MPOL_F_STATIC_NODES == 32770
    assert nodes == {1, 2, 7}


# -------------------------------------------------------------- §6 argument rules
def test_s6_maxnode_drops_one_bit_and_zero_with_a_pointer_is_einval():
    k, t = kernel()
    with pytest.raises(OSError) as e:  # maxnode=2 reads one bit: node 1 is cut off
        sc.set_mempolicy(k, t, MPOL_BIND, UserMask.of({1}), 2)
    assert e.value.errno == EINVAL
    sc.set_mempolicy(k, t, MPOL_BIND, UserMask.of({0}), 2)
    with pytest.raises(OSError) as e:
        sc.set_mempolicy(k, t, MPOL_BIND, UserMask.of({0}), 0)
    assert e.value.errno == EINVAL


def test_s6_mbind_check_order_and_zero_length():
    k, t = kernel()
    k.mmap(t, 4, vpn=0x40000)
    a = 0x40000 << 12
    assert sc.mbind(k, t, a, 0, MPOL_BIND, UserMask.of(()), 1025, 0) == 0  # len 0: mask unread
    for args, err in (((a, 4096, MPOL_BIND, UserMask.of({1}), 1025, MPOL_MF_LAZY), EINVAL),
                      ((a + 1, 4096, MPOL_BIND, UserMask.of({1}), 1025, 0), EINVAL),
                      ((a, 4096, MPOL_BIND, UserMask(fault=True), 1025, 0), EFAULT),
                      ((0x90000 << 12, 4096, MPOL_BIND, UserMask.of({1}), 1025, 0), EFAULT)):
        with pytest.raises(OSError) as e:
            sc.mbind(k, t, *args)
        assert e.value.errno == err, args
    k.ks.tasks[t, 6] = 0  # drop CAP_SYS_NICE
    with pytest.raises(OSError) as e:
        sc.mbind(k, t, a, 4096, MPOL_BIND, UserMask.of({1}), 1025, MPOL_MF_MOVE_ALL)
    assert e.value.errno == EPERM


def test_s6_migrate_pages_pairs_nodes_like_do_migrate_pages():
    """[0-7] -> [3,4,5]: weights differ, so sources inside the target mask stay."""
    frm, to = set(range(8)), {3, 4, 5}
    moved = [s for s in sorted(frm) if not (len(frm) != len(to) and s in to)
             and node_remap(s, frm, to) != s]
    assert moved == [0, 1, 2, 6, 7]


# ---------------------------------------------------------------- §7 get_mempolicy
def test_s7_addr_without_vma_is_efault_and_no_fallback_to_task_policy():
    k, t = kernel()
    sc.set_mempolicy(k, t, MPOL_BIND, UserMask.of({1}), 1025)
    with pytest.raises(OSError) as e:
        sc.get_mempolicy(k, t, addr=0, flags=MPOL_F_ADDR)
    assert e.value.errno == EFAULT
    k.mmap(t, 2, vpn=0x40000)
    assert sc.get_mempolicy(k, t, addr=0x40000 << 12, flags=MPOL_F_ADDR) == (MPOL_DEFAULT,
                                                                             set())


def test_s7_node_and_addr_of_an_untouched_private_page_is_the_zero_pages_node():
    k, t = kernel()
    sc.set_mempolicy(k, t, MPOL_BIND, UserMask.of({3}), 1025)
    k.mmap(t, 2, vpn=0x40000)
    node, _ = sc.get_mempolicy(k, t, want_mask=False, addr=0x40000 << 12,
                               flags=MPOL_F_NODE | MPOL_F_ADDR)
    assert node == 0  # the shared zero page, not a policy-placed page


# --------------------------------------------------------------------- §8 mbind
def test_s8_strict_without_move_is_eio_and_installs_nothing():
    k, t = kernel()
    k.mmap(t, 4, vpn=0x40000)
    k.touch(t, 0x40000, 4)
    with pytest.raises(OSError) as e:
        sc.mbind(k, t, 0x40000 << 12, 4 << 12, MPOL_BIND, UserMask.of({3}), 1025,
                 MPOL_MF_STRICT)
    assert e.value.errno == EIO
    assert sc.get_mempolicy(k, t, addr=0x40000 << 12, flags=MPOL_F_ADDR)[0] == MPOL_DEFAULT
    sc.mbind(k, t, 0x40000 << 12, 4 << 12, MPOL_BIND, UserMask.of({3}), 1025,
             MPOL_MF_STRICT | MPOL_MF_MOVE)
    assert nodes_of(k, t, 0x40000, 4) == [3] * 4


def test_s8_mbind_splits_in_three_and_merges_back_when_pages_share_the_anon_vma():
    k, t = kernel()
    vpn = 0x40000
    k.mmap(t, 12, vpn=vpn)
    k.touch(t, vpn, 12)  # written before the split: one anon_vma for all parts
    sc.mbind(k, t, (vpn + 4) << 12, 4 << 12, MPOL_BIND, UserMask.of({1}), 1025, 0)
    assert len(k.mm_vmas(k.task_mm(t))) == 3
    sc.mbind(k, t, (vpn + 4) << 12, 4 << 12, MPOL_DEFAULT, UserMask.of(()), 1025, 0)
    assert len(k.mm_vmas(k.task_mm(t))) == 1


def test_s8_parts_written_after_the_split_do_not_merge_back():
    k, t = kernel()
    vpn = 0x40000
    k.mmap(t, 12, vpn=vpn)
    sc.mbind(k, t, (vpn + 4) << 12, 4 << 12, MPOL_BIND, UserMask.of({1}), 1025, 0)
    k.touch(t, vpn, 12)  # each part gets its own anon_vma
    sc.mbind(k, t, (vpn + 4) << 12, 4 << 12, MPOL_DEFAULT, UserMask.of(()), 1025, 0)
    assert len(k.mm_vmas(k.task_mm(t))) == 3


# --------------------------------------------------------------------- §12 numastat
def delta(k, before):
    return {n: tuple(int(x) for x in k.ks.numastat[n] - before[n]) for n in range(4)}


def test_s12_remote_bind_counts_hit_and_other_node():
    k, t = kernel(ASYM4)
    k.mmap(t, 8, vpn=0x40000)
    k.touch(t, 0x40000, 1)  # page tables first
    sc.mbind(k, t, 0x40000 << 12, 8 << 12, MPOL_BIND, UserMask.of({1}), 1025, 0)
    before = k.ks.numastat.copy()
    k.touch(t, 0x40001, 7)
    d = delta(k, before)
    # (numa_hit, numa_miss, numa_foreign, interleave_hit, local_node, other_node)
    assert d[1] == (7, 0, 0, 0, 0, 7)
    assert d[0] == (0, 0, 0, 0, 0, 0)


def test_s12_preferred_remote_counts_hit_on_the_preferred_node():
    k, t = kernel(ASYM4)
    k.mmap(t, 8, vpn=0x40000)
    k.touch(t, 0x40000, 1)
    sc.set_mempolicy(k, t, MPOL_PREFERRED, UserMask.of({2}), 1025)
    before = k.ks.numastat.copy()
    k.touch(t, 0x40001, 7)
    assert delta(k, before)[2] == (7, 0, 0, 0, 0, 7)


def test_s12_interleave_counts_interleave_hit_on_the_target():
    k, t = kernel()
    vpn = 0x40000
    k.mmap(t, 8, vpn=vpn)
    k.touch(t, vpn, 1)
    sc.mbind(k, t, vpn << 12, 8 << 12, MPOL_INTERLEAVE, UserMask.of({0, 1, 2, 3}), 1025,
             MPOL_MF_MOVE)
    before = k.ks.numastat.copy()
    k.touch(t, vpn + 1, 4)  # vpns 0x40001..4 -> nodes 1, 2, 3, 0
    d = delta(k, before)
    assert d[1] == (1, 0, 0, 1, 0, 1) and d[0] == (1, 0, 0, 1, 1, 0)


def test_s12_spill_outside_the_preferred_node_counts_miss_and_foreign():
    """Fill node 0 down to its LOW mark, then a local fault spills to node 1: numa_miss on
    node 1, numa_foreign on node 0 (the preferred zone's node)."""
    k, t = kernel(ASYM4)
    ks = k.ks
    for z in range(ks.zones.shape[0]):
        if ks.zones[z, 0] == 0:
            ks.zones[z, 2] = ks.zones[z, 5] + ks.zones[z, 7 + 3]  # free = LOW + reserve
    k.mmap(t, 4, vpn=0x40000)
    k.set_cpu(t, 1)
    k.touch(t, 0x40000, 1)  # page tables on node 1
    k.set_cpu(t, 0)
    before = ks.numastat.copy()
    k.touch(t, 0x40001, 3)
    d = delta(k, before)
    assert d[1] == (0, 3, 0, 0, 0, 3)
    assert d[0] == (0, 0, 3, 0, 0, 0)
