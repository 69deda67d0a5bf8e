"""Transparent huge pages in the simulated kernel (numasim.mm.huge_memory).

Semantics checked against Linux (fact sheet §4; oracle scenarios 85-88): a THP is one
order-9 folio on one node; under interleave the index counts 2 MiB pages; the default
(local) policy makes a node-only attempt and falls back to 4 KiB pages when the node has no
free 2 MiB above its watermark, unless the VMA is MADV_HUGEPAGE (then the full zonelist);
a read of untouched memory maps the huge zero page; move_pages of a subpage moves it whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from numasim.mm import huge_memory as H
from numasim.mm import state as S
from numasim.mm import syscalls as sc
from numasim.mm.kernel import Kernel
from numasim.mm.script import run_script
from numasim.mm.syscalls import UserMask, mbind, move_pages
from numasim.mm.vmstat import vmstat_read
from numasim.topology.loaders import layout

LAYOUTS = Path(__file__).parent / "data" / "topologies" / "layouts"
VPN = 0x40000  # 0x40000000: 2 MiB aligned
MPOL_INTERLEAVE = 3


@pytest.fixture(scope="module")
def machine():
    return layout.load(LAYOUTS / "4node-asym.layout", kernel="6.12")


def nodes(k: Kernel, t: int, vpn: int, n: int) -> np.ndarray:
    return np.array([k.page_node(t, vpn + i) for i in range(n)])


def rows(k: Kernel, t: int, vpn: int, n: int) -> list[int]:
    return [k.pte(k.task_mm(t), vpn + i) for i in range(n)]


def node_free(k: Kernel, nid: int) -> int:
    ks = k.ks
    return int(ks.zones[ks.zones[:, S.Z_NODE] == nid, S.Z_FREE].sum())


def test_modes_by_name_and_bad_mode() -> None:
    assert H.thp_mode_value("madvise") == H.THP_MADVISE
    assert H.thp_mode_value(None) == H.thp_mode_value(False) == H.THP_NEVER
    from numasim.errors import NumasimError

    with pytest.raises(NumasimError, match="always, madvise, never"):
        H.thp_mode_value("sometimes")


@pytest.mark.parametrize("kern", ["6.12", "6.1"])
def test_interleave_counts_huge_pages(machine, kern) -> None:
    """ilx = (vm_pgoff >> 9) + ((addr - vm_start) >> 21): each aligned block whole on the
    next node of the mask; the unaligned head pages interleave per 4 KiB page."""
    k = Kernel(machine, kern, thp="always")
    t = k.new_process(0)
    start = VPN + 256  # 1 MiB into a 2 MiB block: 256 small pages, then 4 huge blocks
    k.mmap(t, 256 + 4 * 512, vpn=start)
    mbind(k, t, start << 12, (256 + 4 * 512) << 12, MPOL_INTERLEAVE,
          UserMask.of({0, 1, 2, 3}), 1025, 0)
    k.touch(t, start, 256 + 4 * 512)
    got = nodes(k, t, start, 256 + 4 * 512)
    head = np.arange(start, start + 256) % 4  # 4 KiB pages: ilx = page index
    assert (got[:256] == head).all()
    for b in range(4):
        # not the block's own number: vm_pgoff >> 9 plus whole 2 MiB steps from vm_start
        # (the oracle shows the same, scenario 86: 0x40a00000 in a VMA at 0x40900000)
        ilx = (start >> 9) + ((start + 256 + 512 * b - start) >> 9)
        assert (got[256 + 512 * b: 256 + 512 * (b + 1)] == ilx % 4).all()
    # one folio per block: 512 slots share a row of order 9
    r = rows(k, t, start + 256, 512)
    assert len(set(r)) == 1 and k.ks.pages[r[0], S.PG_ORDER] == 9
    assert vmstat_read(k, "thp_fault_alloc") == 4
    assert vmstat_read(k, "thp_fault_fallback") == 0
    # numastat counts one allocation per huge page (interleave_hit per folio)
    hits = k.numastat()
    assert sum(hits[n]["interleave_hit"] for n in range(4)) == 4 + 256


def _fill(k: Kernel, node: int, leave: int) -> None:
    """Eat node ``node``'s free pages (no allocation: the free count itself) until
    ``leave`` pages lie above its LOW mark.  The watermarks go back to the boot
    min_free_kbytes first: with THP on, khugepaged's raise puts LOW so far above MIN that the
    node-only attempt's MIN pass would still find 512 pages."""
    k.setup_per_zone_wmarks(min_free_kbytes=k.ks.derived.min_free_kbytes)
    ks = k.ks
    for z in np.flatnonzero(ks.zones[:, S.Z_NODE] == node):
        top = int(ks.zones[z, S.Z_LOW] + ks.zones[z, S.Z_RES + 3])
        ks.zones[z, S.Z_FREE] = min(int(ks.zones[z, S.Z_FREE]), top + leave)


def test_node_only_attempt_falls_back_to_small_pages(machine) -> None:
    k = Kernel(machine, "6.12", thp="always")
    _fill(k, 1, 300)
    t = k.new_process(1)
    k.mmap(t, 512, vpn=VPN)
    k.touch(t, VPN, 512)
    assert vmstat_read(k, "thp_fault_alloc") == 0
    assert vmstat_read(k, "thp_fault_fallback") == 1
    got = nodes(k, t, VPN, 512)
    assert (got[:250] == 1).all()  # the 4 KiB path takes what node 1 has, locally
    assert set(got[-100:]) == {0}  # then node 1's fallback order: node 0 (distance 20)
    assert all(k.ks.pages[r, S.PG_ORDER] == 0 for r in rows(k, t, VPN, 512))


def test_madvised_vma_retries_the_whole_zonelist(machine) -> None:
    """defrag=madvise: a MADV_HUGEPAGE VMA has direct reclaim, so after the node-only
    attempt fails the THP comes from the next node of the zonelist."""
    k = Kernel(machine, "6.12", thp="madvise")
    _fill(k, 1, 300)
    t = k.new_process(1)
    k.mmap(t, 512, vpn=VPN)
    assert sc.madvise_hugepage(k, t, VPN << 12, 512 << 12, H.MADV_HUGEPAGE) == 0
    k.touch(t, VPN, 512)
    assert vmstat_read(k, "thp_fault_alloc") == 1
    assert set(nodes(k, t, VPN, 512)) == {0}


def test_madvise_flags_and_modes(machine) -> None:
    for mode, adv, huge in (("madvise", None, False), ("madvise", H.MADV_HUGEPAGE, True),
                            ("always", H.MADV_NOHUGEPAGE, False), ("never", H.MADV_HUGEPAGE,
                                                                  False)):
        k = Kernel(machine, "6.12", thp=mode)
        t = k.new_process(2)
        k.mmap(t, 512, vpn=VPN)
        if adv is not None:
            sc.madvise_hugepage(k, t, VPN << 12, 512 << 12, adv)
        k.touch(t, VPN, 512)
        assert vmstat_read(k, "thp_fault_alloc") == int(huge), (mode, adv)
        assert set(nodes(k, t, VPN, 512)) == {2}
    # the syscall's errors: unaligned start, a hole in the range
    assert sc.madvise_hugepage(k, t, (VPN << 12) + 1, 4096, H.MADV_HUGEPAGE) == -22
    assert sc.madvise_hugepage(k, t, VPN << 12, 1024 << 12, H.MADV_HUGEPAGE) == -12


def test_huge_zero_page_then_write(machine) -> None:
    k = Kernel(machine, "6.12", thp="always")
    t = k.new_process(1)
    k.mmap(t, 1024, vpn=VPN)
    free = node_free(k, 1)
    k.touch(t, VPN, 1024, write=False)
    assert all(r == S.PT_ZERO for r in rows(k, t, VPN, 1024))
    assert vmstat_read(k, "thp_zero_page_alloc") == 1  # allocated once, shared
    assert vmstat_read(k, "thp_fault_alloc") == 0
    assert free - node_free(k, 1) < 8  # page tables only, no data pages
    k.touch(t, VPN, 512)  # a write splits the PMD and takes 4 KiB pages
    assert vmstat_read(k, "thp_split_pmd") == 1
    assert vmstat_read(k, "thp_fault_alloc") == 0
    assert len(set(rows(k, t, VPN, 512))) == 512


def test_move_one_subpage_moves_the_folio(machine) -> None:
    k = Kernel(machine, "6.12", thp="always")
    t = k.new_process(1)
    k.mmap(t, 512, vpn=VPN)
    k.touch(t, VPN, 512)
    f1, f3 = node_free(k, 1), node_free(k, 3)
    rc, status = move_pages(k, t, 0, [(VPN + 88) << 12], [3], 0)
    assert rc == 0 and status == [3]
    assert set(nodes(k, t, VPN, 512)) == {3}
    assert node_free(k, 1) - f1 == 512 and f3 - node_free(k, 3) == 512
    assert vmstat_read(k, "pgmigrate_success") == 512
    assert vmstat_read(k, "thp_migration_success") == 1


def test_munmap_whole_and_part_of_a_thp(machine) -> None:
    k = Kernel(machine, "6.12", thp="always")
    t = k.new_process(1)
    mm = k.task_mm(t)
    k.mmap(t, 1024, vpn=VPN)
    k.touch(t, VPN, 1024)
    f = node_free(k, 1)
    k.munmap(mm, VPN + 512, 512)  # a whole block: the folio goes back at once
    assert node_free(k, 1) - f >= 512
    f = node_free(k, 1)
    k.munmap(mm, VPN, 100)  # part of a block: split, only the unmapped pages are freed
    assert node_free(k, 1) - f == 100
    r = rows(k, t, VPN + 100, 412)
    assert len(set(r)) == 412 and all(k.ks.pages[x, S.PG_ORDER] == 0 for x in r)
    assert set(nodes(k, t, VPN + 100, 412)) == {1}


def test_fork_splits_and_cow_stays_correct(machine) -> None:
    k = Kernel(machine, "6.12", thp="always")
    t = k.new_process(1)
    k.mmap(t, 512, vpn=VPN)
    k.touch(t, VPN, 512)
    child = k.fork(t)
    k.set_cpu(child, 2)
    k.touch(child, VPN, 10)  # copy-on-write of 10 small pages, on the child's node
    assert set(nodes(k, child, VPN, 10)) == {2}
    assert set(nodes(k, child, VPN + 10, 502)) == {1}
    assert set(nodes(k, t, VPN, 512)) == {1}


def test_never_changes_nothing(machine) -> None:
    """THP off (the default) is today's behaviour: no order-9 rows, no THP counters."""
    text = (Path(__file__).parent / "data" / "oracle" / "86_thp_always_interleave.txt"
            ).read_text()
    recs = run_script(text, machine, kernel="6.12", thp="never")
    k = Kernel(machine, "6.12")
    assert int(k.ks.sysvars[S.SV_THP]) == H.THP_NEVER
    deltas = [r.text for r in recs if r.text.startswith("vmstat_delta")]
    assert deltas and all("thp_fault_alloc=0" in d for d in deltas)
    # the interleaved 2048 pages alternate per 4 KiB page, as before THP existed
    summ = next(r.text for r in recs if r.text.startswith("summary region=0"))
    assert "runs=0-0:0,1-1:1,2-2:2,3-3:3" in summ


def test_sysfs_file_and_append_header(machine) -> None:
    text = ("#@ layout 4node-asym\n#@ append transparent_hugepage=madvise\n"
            "cat /sys/kernel/mm/transparent_hugepage/enabled\n"
            "write /sys/kernel/mm/transparent_hugepage/enabled sometimes\n"
            "write /sys/kernel/mm/transparent_hugepage/enabled always\n"
            "cat /sys/kernel/mm/transparent_hugepage/enabled\n")
    out = [r.text for r in run_script(text, machine, kernel="6.12")]
    assert "| always [madvise] never" in out
    assert any("errno=EINVAL" in x for x in out)
    assert out[-2] == "| [always] madvise never"


def test_machine_yaml_kernel_block(tmp_path) -> None:
    from numasim.errors import NumasimError
    from numasim.topology.loaders import load_machine
    from numasim.topology.loaders.yaml_machine import dump

    yaml = ("name: two\nnodes:\n  - {id: 0, cpus: 0-1, memory: 2GiB}\n"
            "  - {id: 1, cpus: 2-3, memory: 2GiB}\nkernel:\n  transparent_hugepage: madvise\n")
    f = tmp_path / "m.yaml"
    f.write_text(yaml)
    m = load_machine(f)
    assert m.thp == "madvise"
    assert int(Kernel(m, "6.12").ks.sysvars[S.SV_THP]) == H.THP_MADVISE
    g = tmp_path / "g.yaml"
    g.write_text(dump(m))
    assert load_machine(g) == m
    f.write_text(yaml.replace("madvise", "sometimes"))
    with pytest.raises(NumasimError, match="transparent_hugepage"):
        load_machine(f)


@pytest.mark.parametrize("scenario", ["85_thp_always_local", "86_thp_always_interleave",
                                      "88_thp_zero_page_move"])
def test_python_twin_agrees(machine, monkeypatch, scenario) -> None:
    """The huge fault goes through ``Kernel.core``: the plain-Python allocator twin must
    place every page where the jitted core does."""
    text = (Path(__file__).parent / "data" / "oracle" / f"{scenario}.txt").read_text()
    fast = [r.text for r in run_script(text, machine, kernel="6.12")]
    orig = Kernel.__init__

    def python_backend(self, *a, **kw):
        kw["backend"] = "python"
        orig(self, *a, **kw)

    monkeypatch.setattr(Kernel, "__init__", python_backend)
    slow = [r.text for r in run_script(text, machine, kernel="6.12")]
    assert fast == slow


@pytest.mark.parametrize("kern", ["6.12", "6.1"])
def test_numa_balancing_moves_a_thp_whole(machine, kern) -> None:
    """A PMD-mapped THP is marked as one unit (512 numa_pte_updates, 1
    numa_huge_pte_updates), takes one hinting fault per pass and migrates whole."""
    from numasim.mm.numa_balancing import numab

    k = Kernel(machine, kern, thp="always")
    nb = numab(k)
    for name, value in {"scan_delay_ms": 100, "scan_period_min_ms": 100,
                        "scan_period_max_ms": 1600}.items():
        nb.set_knob(name, value)
    nb.set_mode(1)
    t = k.new_process(0)
    k.mmap(t, 512, vpn=VPN)
    k.touch(t, VPN, 512)
    row = k.pte(k.task_mm(t), VPN)
    k.set_cpu(t, 1)
    nb.spin(t, VPN, 512, 1000)
    assert set(nodes(k, t, VPN, 512)) == {1}
    new = rows(k, t, VPN, 512)
    assert len(set(new)) == 1 and new[0] != row and k.ks.pages[new[0], S.PG_ORDER] == 9
    c = {key: vmstat_read(k, key) for key in ("numa_pte_updates", "numa_huge_pte_updates",
                                              "numa_hint_faults", "numa_pages_migrated",
                                              "thp_migration_success")}
    assert c["numa_pages_migrated"] == 512 and c["thp_migration_success"] == 1
    assert c["numa_huge_pte_updates"] >= 2  # two passes: last_cpupid's two-stage filter
    assert c["numa_pte_updates"] == 512 * c["numa_huge_pte_updates"]
    assert c["numa_hint_faults"] == c["numa_huge_pte_updates"]  # one fault per PMD


def test_numastat_meminfo_shows_anon_huge_pages(machine) -> None:
    from numasim.mm.procviews import numastat_table

    k = Kernel(machine, "6.12", thp="always")
    t = k.new_process(3)
    k.mmap(t, 1024 + 100, vpn=VPN)
    k.touch(t, VPN, 1024 + 100)
    row = next(x for x in numastat_table(k, mode="meminfo").splitlines()
               if x.startswith("AnonHugePages"))
    assert row.split()[1:] == ["0.00", "0.00", "0.00", "4.00", "4.00"]  # 2 THPs on node 3
    assert "AnonHugePages" not in numastat_table(Kernel(machine, "6.12"), mode="meminfo")


def test_mbind_move_and_migrate_pages_move_each_thp_once(machine) -> None:
    """MPOL_MF_MOVE and migrate_pages list a THP once per subpage; it moves once, whole."""
    from numasim.mm.syscalls import migrate_pages

    k = Kernel(machine, "6.12", thp="always")
    t = k.new_process(1)
    k.mmap(t, 1024, vpn=VPN)
    k.touch(t, VPN, 1024)
    mbind(k, t, VPN << 12, 1024 << 12, 2, UserMask.of({3}), 1025, 2)  # BIND{3}, MF_MOVE
    assert set(nodes(k, t, VPN, 1024)) == {3}
    assert vmstat_read(k, "pgmigrate_success") == 1024
    assert vmstat_read(k, "thp_migration_success") == 2
    assert migrate_pages(k, t, 0, 1025, UserMask.of({3}), UserMask.of({2})) == 0
    assert set(nodes(k, t, VPN, 1024)) == {2}
    assert vmstat_read(k, "thp_migration_success") == 4
    on3 = k.ks.zones[:, S.Z_NODE] == 3  # all free again, but what the booted guest holds
    assert node_free(k, 3) == int((k.ks.zones[on3, S.Z_MANAGED] - k.ks.boot_held[on3]).sum())
