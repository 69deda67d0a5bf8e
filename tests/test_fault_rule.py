"""Which accesses fault is the kernel's rule, in one place: ``alloc_core.pte_access`` (with
``access_faults``).  The fault path uses it, and an engine asking it about a page-table slot
must get the answer the fault path acts on: an access counts a page fault (vmstat pgfault)
exactly when the rule says it faults."""

from __future__ import annotations

import pytest

from numasim.mm import alloc_core as core
from numasim.mm import state as S
from numasim.mm import syscalls as sc
from numasim.mm.kernel import Kernel
from numasim.topology.build import make_machine
from numasim.topology.model import Node

VPN = 0x40000


@pytest.fixture(scope="module")
def machine():
    return make_machine("two", [Node(0, (0,), 64 << 20), Node(1, (1,), 64 << 20)],
                        distance=[[10, 20], [20, 10]])


def access(k: Kernel, t: int, vpn: int) -> int:
    mm = k.task_mm(t)
    r = k.find_region(mm, vpn)
    slot = int(k.ks.regions[r, S.R_PT]) + vpn - int(k.ks.regions[r, S.R_START])
    ks = k.ks
    return int(core.pte_access(ks.pages, ks.vmas, ks.pt_page, ks.pt_vma, slot))


def faults_counted(k: Kernel, t: int, vpn: int, write: bool) -> bool:
    """Touch one page; did the fault path count a page fault?"""
    before = int(k.ks.vmstat[S.VM_PGFAULT])
    k.touch(t, vpn, 1, write=write)
    return int(k.ks.vmstat[S.VM_PGFAULT]) > before


def check(k: Kernel, t: int, vpn: int, expected: int) -> None:
    """The rule answers ``expected``, and ``access_faults`` reads it the same way."""
    got = access(k, t, vpn)
    assert got == expected
    assert bool(core.access_faults(got, 0)) == (expected == core.ACCESS_FAULT)
    assert bool(core.access_faults(got, 1)) == (expected != core.ACCESS_RW)


def test_private_anonymous_zero_page_cow(machine) -> None:
    k = Kernel(machine, "6.12")
    t = k.new_process(0)
    k.mmap(t, 4, vpn=VPN)
    check(k, t, VPN, core.ACCESS_FAULT)
    assert faults_counted(k, t, VPN, write=False)        # maps the zero page
    check(k, t, VPN, core.ACCESS_RO)
    assert not faults_counted(k, t, VPN, write=False)
    assert faults_counted(k, t, VPN, write=True)         # zero page -> own page
    check(k, t, VPN, core.ACCESS_RW)
    assert not faults_counted(k, t, VPN, write=True)
    child = k.fork(t)
    check(k, t, VPN, core.ACCESS_RO)                     # both copies read-only: COW
    check(k, child, VPN, core.ACCESS_RO)
    assert not faults_counted(k, child, VPN, write=False)
    assert faults_counted(k, child, VPN, write=True)     # the child copies
    check(k, child, VPN, core.ACCESS_RW)
    check(k, t, VPN, core.ACCESS_RW)                     # the parent's page is its own again
    assert not faults_counted(k, t, VPN, write=True)


def test_shared_and_file_mappings(machine) -> None:
    k = Kernel(machine, "6.12")
    t = k.new_process(0)
    k.mmap(t, 2, kind="shared", vpn=VPN)
    assert faults_counted(k, t, VPN, write=True)
    check(k, t, VPN, core.ACCESS_RW)
    child = k.fork(t)
    check(k, t, VPN, core.ACCESS_RW)                     # MAP_SHARED: never COW
    check(k, child, VPN, core.ACCESS_FAULT)              # fork does not copy shared PTEs
    assert faults_counted(k, child, VPN, write=True)
    check(k, child, VPN, core.ACCESS_RW)
    f = k.open_file("/mnt/ramfs/rule", "ramfs", 2)
    k.mmap(t, 2, kind="file", vpn=VPN + 512, file=f, shared=False)
    assert faults_counted(k, t, VPN + 512, write=False)  # maps the page-cache page
    check(k, t, VPN + 512, core.ACCESS_RO)
    assert faults_counted(k, t, VPN + 512, write=True)   # the private copy
    check(k, t, VPN + 512, core.ACCESS_RW)


def test_protection_and_holes(machine) -> None:
    k = Kernel(machine, "6.12")
    t = k.new_process(0)
    k.mmap(t, 4, vpn=VPN)
    k.touch(t, VPN, 4, write=True)
    sc.mprotect(k, t, VPN << 12, 4096, S.PROT_READ)
    check(k, t, VPN, core.ACCESS_RO)                     # a write would be SIGSEGV
    sc.mprotect(k, t, (VPN + 1) << 12, 4096, 0)
    check(k, t, VPN + 1, core.ACCESS_FAULT)
    k.munmap(k.task_mm(t), VPN + 2, 1)
    check(k, t, VPN + 2, core.ACCESS_FAULT)
    check(k, t, VPN + 3, core.ACCESS_RW)
