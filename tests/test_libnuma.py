"""numasim.mm.libnuma: libnuma's API over the simulated kernel (calls, arguments, and
libnuma's error conventions)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from numasim.mm import syscalls as sc
from numasim.mm.constants import (
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_ADDR,
    MPOL_F_NUMA_BALANCING,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)
from numasim.mm.kernel import Kernel
from numasim.mm.libnuma import Libnuma, LibnumaExit
from numasim.mm.nodemask import UserMask
from numasim.topology.loaders import layout

LAYOUTS = Path(__file__).parent / "data" / "topologies" / "layouts"
PAGE = 4096


@pytest.fixture(scope="module")
def asym():
    return layout.load(LAYOUTS / "4node-asym.layout")


@pytest.fixture
def lib(asym):
    k = Kernel(asym)
    return Libnuma(k, k.new_process(0))


def nodes_of(lib, addr, n):
    return [lib.kernel.page_node(lib.task, (addr >> 12) + i) for i in range(n)]


def vma_policy(lib, addr):
    return sc.get_mempolicy(lib.kernel, lib.task, addr=addr, flags=MPOL_F_ADDR)


# ---------------------------------------------------------------- topology
def test_topology_queries(lib):
    assert lib.numa_available() == 0
    assert lib.numa_max_node() == 3
    assert lib.numa_max_possible_node() == 1023
    assert lib.numa_num_possible_nodes() == 1024
    assert lib.numa_num_configured_nodes() == 4
    assert lib.numa_num_configured_cpus() == 4
    assert lib.numa_num_possible_cpus() == 64
    assert lib.numa_num_task_nodes() == 4 and lib.numa_num_task_cpus() == 4
    assert lib.numa_pagesize() == 4096
    assert lib.numa_distance(2, 3) == 15 and lib.numa_distance(0, 9) == 0
    assert lib.numa_node_of_cpu(3) == 3
    assert lib.numa_node_of_cpu(7) == -1 and lib.errno == errno.EINVAL
    assert lib.numa_node_to_cpus(1) == {1}
    assert lib.numa_node_to_cpus(4) is None and lib.errno == errno.ERANGE
    size, free = lib.numa_node_size64(1)
    ks = lib.kernel.ks
    assert size == int(ks.zones[ks.zones[:, 0] == 1, 3].sum()) * PAGE
    assert free == int(ks.zones[ks.zones[:, 0] == 1, 2].sum()) * PAGE
    assert lib.numa_node_size64(7) == (-1, -1)
    assert lib.numa_all_nodes_ptr == {0, 1, 2, 3} and lib.numa_no_nodes_ptr == set()


def test_memless_node_is_configured_not_counted():
    m = layout.load(LAYOUTS / "memless.layout")
    k = Kernel(m)
    lib = Libnuma(k, k.new_process(0))
    mem = set(m.memory_nodes)
    assert lib.numa_num_configured_nodes() == len(mem) < len(m.node_ids)
    assert lib.numa_get_mems_allowed() == mem
    assert lib.numa_parse_nodestring_all(",".join(map(str, m.node_ids))) == set(m.node_ids)


# ------------------------------------------------------------- task policy
def test_task_policy_setters_and_getters(lib):
    k, t = lib.kernel, lib.task
    lib.numa_set_interleave_mask({1, 2})
    assert sc.get_mempolicy(k, t) == (MPOL_INTERLEAVE, {1, 2})
    assert lib.numa_get_interleave_mask() == {1, 2}
    assert lib.numa_get_interleave_node() == 1
    assert lib.numa_preferred() == 1                 # __numa_preferred leaves the mask
    assert lib.numa_get_membind() == {0, 1, 2, 3}    # not BIND: every allowed node
    lib.numa_set_interleave_mask(set())
    assert sc.get_mempolicy(k, t) == (MPOL_DEFAULT, set())
    assert lib.numa_preferred() == -1
    assert lib.numa_get_interleave_node() == 0       # MPOL_F_NODE fails: 0
    lib.numa_set_membind({2, 3})
    assert lib.numa_get_membind() == {2, 3} and lib.numa_get_interleave_mask() == set()
    lib.numa_set_preferred(3)
    assert sc.get_mempolicy(k, t) == (MPOL_PREFERRED, {3}) and lib.numa_preferred() == 3
    lib.numa_set_preferred(-1)
    assert sc.get_mempolicy(k, t) == (MPOL_LOCAL, set())
    lib.numa_set_preferred_many({0, 2})
    assert sc.get_mempolicy(k, t) == (MPOL_PREFERRED_MANY, {0, 2})
    assert lib.numa_preferred_many() == {0, 2}
    assert lib.errors == ["libnuma.c: Success"]      # numa_preferred_many: > 1 node
    lib.numa_set_localalloc()
    assert sc.get_mempolicy(k, t) == (MPOL_LOCAL, set())
    lib.numa_set_weighted_interleave_mask({1, 3})
    assert lib.numa_get_weighted_interleave_mask() == {1, 3}
    assert lib.numa_get_interleave_mask() == set()
    lib.numa_set_membind_balancing({1})
    assert sc.get_mempolicy(k, t) == (MPOL_BIND | MPOL_F_NUMA_BALANCING, {1})
    assert lib.numa_get_membind() == {0, 1, 2, 3}    # BIND|flag is not exactly BIND


def test_set_errors_are_reported_not_raised(lib):
    lib.numa_set_membind(set())
    assert lib.errors == ["set_mempolicy: Invalid argument"] and lib.errno == errno.EINVAL
    strict = Libnuma(lib.kernel, lib.task, exit_on_error=True)
    with pytest.raises(LibnumaExit, match="set_mempolicy: Invalid argument"):
        strict.numa_set_membind({9})


def test_weighted_on_6_1_and_2_6_7_fallbacks(asym):
    k = Kernel(asym, "6.1")
    lib = Libnuma(k, k.new_process(0))
    lib.numa_set_weighted_interleave_mask({0, 1})
    assert lib.errors == ["set_mempolicy: Invalid argument"]
    k = Kernel(asym, "2.6.7")
    lib = Libnuma(k, k.new_process(0))
    assert lib.numa_has_preferred_many() == 0
    lib.numa_set_preferred_many({2, 3})               # falls back to the first node
    assert sc.get_mempolicy(k, lib.task) == (MPOL_PREFERRED, {2})
    assert lib.warnings == ["libnuma: Warning: Unable to handle MANY preferred nodes. "
                            "Falling back to first node"]
    lib.numa_set_membind_balancing({1})               # EINVAL -> plain BIND
    assert sc.get_mempolicy(k, lib.task) == (MPOL_BIND, {1}) and lib.errors == []


def test_preferred_many_probe_restores_policy(asym):
    """The start-up probe puts the old policy back -- and so restarts its counter."""
    k = Kernel(asym)
    t = k.new_process(0)
    sc.set_mempolicy(k, t, MPOL_INTERLEAVE, UserMask.of({0, 1, 2}), 1025)
    k.ks.tasks[t, 3] = 1                              # il_prev after some allocations
    lib = Libnuma(k, t)
    assert lib.numa_has_preferred_many() == 1
    assert sc.get_mempolicy(k, t) == (MPOL_INTERLEAVE, {0, 1, 2})
    assert lib.numa_get_interleave_node() == 0


# ------------------------------------------------------------ range policy
def test_alloc_onnode_binds_and_touch_places(lib):
    addr = lib.numa_alloc_onnode(8 * PAGE, 2)
    assert vma_policy(lib, addr) == (MPOL_BIND, {2})
    assert nodes_of(lib, addr, 8) == [None] * 8      # nothing until first touch
    lib.numa_police_memory(addr, 8 * PAGE)
    assert nodes_of(lib, addr, 8) == [2] * 8
    lib.numa_free(addr, 8 * PAGE)
    assert lib.kernel.find_vma(lib.kernel.task_mm(lib.task), addr >> 12) == -1


def test_bind_policy_switch(lib):
    lib.numa_set_bind_policy(0)
    assert lib.bind_policy == MPOL_PREFERRED_MANY
    addr = lib.numa_alloc_onnode(4 * PAGE, 3)
    assert vma_policy(lib, addr) == (MPOL_PREFERRED_MANY, {3})
    lib.numa_tonodemask_memory(addr, 4 * PAGE, {1, 2})
    assert vma_policy(lib, addr) == (MPOL_PREFERRED_MANY, {1, 2})
    lib.numa_set_bind_policy(1)
    lib.numa_tonode_memory(addr, 4 * PAGE, 1)
    assert vma_policy(lib, addr) == (MPOL_BIND, {1})
    k = Kernel(lib.kernel.machine, "2.6.7")
    old = Libnuma(k, k.new_process(0))
    old.numa_set_bind_policy(0)
    assert old.bind_policy == MPOL_PREFERRED


def test_alloc_interleaved_and_local(lib):
    addr = lib.numa_alloc_interleaved(8 * PAGE)
    lib.numa_police_memory(addr, 8 * PAGE)
    vpn = addr >> 12
    assert nodes_of(lib, addr, 8) == [(vpn + i) % 4 for i in range(8)]
    sub = lib.numa_alloc_interleaved_subset(6 * PAGE, {1, 3})
    lib.numa_police_memory(sub, 6 * PAGE)
    assert nodes_of(lib, sub, 6) == [(1, 3)[((sub >> 12) + i) % 2] for i in range(6)]
    w = lib.numa_alloc_weighted_interleaved_subset(4 * PAGE, {0, 2})
    assert vma_policy(lib, w) == (MPOL_WEIGHTED_INTERLEAVE, {0, 2})
    lib.kernel.set_cpu(lib.task, 2)
    loc = lib.numa_alloc_local(3 * PAGE)
    assert vma_policy(lib, loc) == (MPOL_LOCAL, set())
    lib.numa_police_memory(loc, 3 * PAGE)
    assert nodes_of(lib, loc, 3) == [2, 2, 2]


def test_numa_alloc_touches_under_task_policy(lib):
    lib.numa_set_preferred(1)
    addr = lib.numa_alloc(5 * PAGE)
    assert nodes_of(lib, addr, 5) == [1] * 5
    assert lib.numa_alloc(0) is None and lib.errno == errno.EINVAL


def test_interleave_memory_and_setlocal(lib):
    addr = lib.numa_alloc_onnode(4 * PAGE, 0)
    lib.numa_interleave_memory(addr, 4 * PAGE, {2, 3})
    assert vma_policy(lib, addr) == (MPOL_INTERLEAVE, {2, 3})
    lib.numa_setlocal_memory(addr, 4 * PAGE)
    assert vma_policy(lib, addr) == (MPOL_LOCAL, set())
    lib.numa_interleave_memory(addr, 4 * PAGE, set())
    assert lib.errors == ["mbind: Invalid argument"]


def test_strict_mbind_reports_eio(lib):
    addr = lib.numa_alloc(4 * PAGE)                   # on node 0 (local)
    lib.numa_set_strict(1)
    lib.numa_tonode_memory(addr, 4 * PAGE, 3)
    assert lib.errors == ["mbind: Input/output error"] and lib.errno == errno.EIO
    assert vma_policy(lib, addr) == (MPOL_DEFAULT, set())   # STRICT alone: not installed
    lib.numa_set_strict(0)
    lib.numa_tonode_memory(addr, 4 * PAGE, 3)
    assert vma_policy(lib, addr) == (MPOL_BIND, {3})


def test_fail_alloc_on_error(lib):
    lib.fail_alloc_on_error = True
    assert lib.numa_alloc_onnode(4 * PAGE, 7) is None   # no node 7: mbind EINVAL
    assert lib.errors == ["mbind: Invalid argument"]
    lib.fail_alloc_on_error = False
    assert lib.numa_alloc_onnode(4 * PAGE, 7) is not None


def test_home_node(lib):
    addr = lib.numa_alloc_onnode(4 * PAGE, 1)
    assert lib.numa_has_home_node() == 1
    assert lib.numa_set_mempolicy_home_node(addr, 4 * PAGE, 2) == 0
    lib.numa_setlocal_memory(addr, 4 * PAGE)
    assert lib.numa_set_mempolicy_home_node(addr, 4 * PAGE, 2) == -1
    assert lib.errno == errno.EOPNOTSUPP


# -------------------------------------------------------------------- CPUs
def test_run_on_node(lib):
    k, t = lib.kernel, lib.task
    assert lib.numa_run_on_node(2) == 0
    assert lib.numa_sched_getaffinity() == {2} and int(k.ks.tasks[t, 1]) == 2
    assert lib.numa_get_run_node_mask() == {2}
    assert lib.numa_run_on_node(-1) == 0 and lib.affinity == {0, 1, 2, 3}
    assert int(k.ks.tasks[t, 1]) == 2                  # still allowed: stays
    assert lib.numa_run_on_node(1024) == -1 and lib.errno == errno.EINVAL
    assert lib.numa_run_on_node_mask({1, 3}) == 0 and lib.affinity == {1, 3}
    assert int(k.ks.tasks[t, 1]) == 1
    lib.numa_bind({0})
    assert lib.affinity == {0} and sc.get_mempolicy(k, t) == (MPOL_BIND, {0})


def test_run_on_node_mask_respects_cpuset(asym):
    k = Kernel(asym)
    t = k.new_process(0)
    sc.cpuset_set_mems(k, [t], {0, 1})
    lib = Libnuma(k, t)
    assert lib.numa_run_on_node_mask({1, 2}) == 0 and lib.affinity == {1}
    assert lib.warnings == ["libnuma: Warning: node 2 not allowed"]
    assert lib.numa_run_on_node_mask_all({2, 3}) == 0 and lib.affinity == {2, 3}
    assert lib.numa_run_on_node_mask({3}) == -1
    assert lib.errors == ["numa_sched_setaffinity_v2_int() failed: Invalid argument"]
    assert lib.warnings == ["libnuma: Warning: node 2 not allowed"]   # once per kind


# --------------------------------------------------------------- migration
def test_move_pages(lib):
    addr = lib.numa_alloc(3 * PAGE)
    pages = [addr, addr + PAGE, addr + 2 * PAGE]
    assert lib.numa_move_pages(0, pages, None) == (0, [0, 0, 0])
    assert lib.numa_move_pages(0, pages, [1, 2, 3]) == (0, [1, 2, 3])
    assert nodes_of(lib, addr, 3) == [1, 2, 3]
    assert lib.numa_move_pages(0, pages, [4, 4, 4]) == (-1, None)
    assert lib.errno == errno.ENODEV
    assert lib.numa_move_pages(99, pages, None) == (-1, None) and lib.errno == errno.ESRCH


def test_migrate_pages(lib):
    addr = lib.numa_alloc(4 * PAGE)
    assert lib.numa_migrate_pages(0, {0}, {3}) == 0
    assert nodes_of(lib, addr, 4) == [3] * 4
    assert lib.numa_migrate_pages(0, {3}, {9}) == -1 and lib.errno == errno.EINVAL


# ---------------------------------------------------------------- parsing
def test_parse_functions(asym):
    k = Kernel(asym)
    t = k.new_process(0)
    sc.cpuset_set_mems(k, [t], {1, 3})
    lib = Libnuma(k, t)
    assert lib.numa_parse_nodestring("+1") == {3}
    assert lib.numa_parse_nodestring("all") == {1, 3}
    assert lib.numa_parse_nodestring("2") is None
    assert lib.warnings == ["libnuma: Warning: node argument 2 is out of range"]
    assert lib.numa_parse_nodestring("0") is None
    assert len(lib.warnings) == 1                     # each kind once
    assert lib.numa_parse_nodestring_all("0-3") == {0, 1, 2, 3}
    assert lib.numa_parse_cpustring("!0") == {1, 2, 3}
    assert lib.numa_parse_cpustring("5") is None
    assert lib.warnings[-1] == "libnuma: Warning: cpu argument 5 is out of range"
    assert lib.numa_parse_cpustring_all("0x3") == {3}
    strict = Libnuma(k, t, exit_on_warn=True)
    with pytest.raises(LibnumaExit, match="node argument 0 is out of range"):
        strict.numa_parse_nodestring("0")
    assert Libnuma.numa_bitmask_equal({1}, {1}) and Libnuma.numa_bitmask_weight({1, 5}) == 2
