"""khugepaged (numasim.mm.khugepaged) and 6.12's THP-aligned anonymous mmap.

Rules from the kernel sources (fact sheet §4.4, mm/khugepaged.c of 6.1 and 6.12) and the
oracle (scenarios 120-121, two boots per kernel): a 2 MiB range collapses iff its empty PTEs
are <= max_ptes_none and it has a page; the huge page goes to the node holding most of the
range's pages, the lowest such node on a tie, whatever the task's policy; the thread scans
pages_to_scan per pass and sleeps scan_sleep_millisecs between passes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from numasim.mm import huge_memory as H
from numasim.mm import khugepaged as KH
from numasim.mm import state as S
from numasim.mm import syscalls as sc
from numasim.mm.kernel import Kernel
from numasim.mm.script import run_script
from numasim.mm.vmstat import vmstat_read
from numasim.topology.loaders import layout

DATA = Path(__file__).parent / "data"
ORACLE = DATA / "oracle"
LAYOUTS = DATA / "topologies" / "layouts"
VPN = 0x40000  # 0x40000000: 2 MiB aligned


@pytest.fixture(scope="module")
def machine():
    return layout.load(LAYOUTS / "4node-asym.layout", kernel="6.12")


def setup(machine, touches: list[tuple[int, int, int]], *, npages: int = 512,
          mode: str = "madvise", **knobs: int):
    """A process with [VPN, VPN+npages) touched as (cpu, first page, count), then
    MADV_HUGEPAGE; khugepaged with ``knobs``."""
    k = Kernel(machine, "6.12", thp=mode)
    t = k.new_process(0)
    k.mmap(t, npages, vpn=VPN)
    for cpu, off, n in touches:
        k.set_cpu(t, cpu)
        k.touch(t, VPN + off, n)
    kh = KH.khugepaged(k)
    for name, v in knobs.items():
        kh.set_knob(name, v)
    if mode == "madvise":
        assert sc.madvise_hugepage(k, t, VPN << 12, npages << 12, H.MADV_HUGEPAGE) == 0
    return k, t, kh


def huge_at(k: Kernel, t: int, vpn: int) -> int | None:
    """The node of the PMD-mapped THP at vpn, or None."""
    mm = k.task_mm(t)
    if (mm, vpn >> 9) not in getattr(k, "thp_pmds", set()):
        return None
    pg = k.pte(mm, vpn)
    assert k.ks.pages[pg, S.PG_ORDER] == 9
    return int(k.ks.pages[pg, S.PG_NODE])


@pytest.mark.parametrize("present", [1, 100, 211, 212, 300, 511, 512])
@pytest.mark.parametrize("max_none", [0, 211, 300, 511])
def test_max_ptes_none_rule(machine, present, max_none) -> None:
    """A range with N present PTEs collapses iff 512 - N <= max_ptes_none."""
    k, t, kh = setup(machine, [(1, 0, present)], max_ptes_none=max_none)
    kh.advance(0.0)
    expect = 512 - present <= max_none
    assert (huge_at(k, t, VPN) is not None) == expect
    assert vmstat_read(k, "thp_collapse_alloc") == int(expect)
    assert vmstat_read(k, "thp_scan_exceed_none_pte") == int(not expect)
    if expect:  # the data moved, empty PTEs became zeroed subpages
        assert {k.page_node(t, VPN + i) for i in range(512)} == {1}
        assert kh.stats["pages_collapsed"] == 1


@pytest.mark.parametrize(("touches", "node"), [
    ([(1, 0, 256), (0, 256, 256)], 0),  # a tie: the lowest node (oracle 121)
    ([(2, 0, 200), (3, 200, 312)], 3),  # the majority
    ([(3, 0, 100), (1, 100, 100), (2, 200, 100)], 1),  # three-way tie
    ([(3, 0, 1)], 3),  # one page decides
])
def test_target_node(machine, touches, node) -> None:
    k, t, kh = setup(machine, touches)
    kh.advance(0.0)
    assert huge_at(k, t, VPN) == node
    assert KH.hpage_collapse_find_target_node(np.array([0, 5, 5, 2])) == 1


def test_mempolicy_is_ignored(machine) -> None:
    """hpage_collapse_find_target_node decides; the task's BIND to node 3 does not."""
    k, t, kh = setup(machine, [(1, 0, 300), (0, 300, 212)])
    from numasim.mm.constants import MPOL_BIND

    assert sc.set_mempolicy(k, t, MPOL_BIND, sc.UserMask.of({3}), 1025) == 0
    kh.advance(0.0)
    assert huge_at(k, t, VPN) == 1


def _fill(k: Kernel, node: int, leave: int) -> None:
    # the boot min_free_kbytes: khugepaged's raise for THP would leave 512 pages above MIN
    k.setup_per_zone_wmarks(min_free_kbytes=k.ks.derived.min_free_kbytes)
    ks = k.ks
    for z in np.flatnonzero(ks.zones[:, S.Z_NODE] == node):
        top = int(ks.zones[z, S.Z_LOW] + ks.zones[z, S.Z_RES + 3])
        ks.zones[z, S.Z_FREE] = min(int(ks.zones[z, S.Z_FREE]), top + leave)


def test_full_target_node_tied_and_untied(machine) -> None:
    """The allocation may use any node with the same load; without one it fails:
    thp_collapse_alloc_failed, and the thread sleeps alloc_sleep_millisecs."""
    k, t, kh = setup(machine, [(1, 0, 256), (2, 256, 256)], alloc_sleep_millisecs=500,
                     scan_sleep_millisecs=100)
    _fill(k, 1, 100)
    kh.advance(0.0)
    assert huge_at(k, t, VPN) == 2  # tie 1/2, node 1 full: node 2
    k, t, kh = setup(machine, [(1, 0, 300), (2, 300, 212)], alloc_sleep_millisecs=500,
                     scan_sleep_millisecs=100)
    _fill(k, 1, 100)
    kh.advance(0.0)
    assert huge_at(k, t, VPN) is None
    assert vmstat_read(k, "thp_collapse_alloc_failed") == 1
    assert kh.next_run == 500.0


@pytest.mark.parametrize(("mode", "advice", "collapses"), [
    ("madvise", None, False), ("madvise", H.MADV_HUGEPAGE, True), ("always", None, True),
    ("always", H.MADV_NOHUGEPAGE, False), ("never", H.MADV_HUGEPAGE, False)])
def test_which_vmas_are_scanned(machine, mode, advice, collapses) -> None:
    k = Kernel(machine, "6.12", thp=mode)
    t = k.new_process(2)
    k.mmap(t, 512, vpn=VPN)
    if mode == "always":  # 4 KiB pages despite THP always: the range was faulted by PTEs
        k.ks.sysvars[S.SV_THP] = H.THP_NEVER
        k.touch(t, VPN, 512)
        k.ks.sysvars[S.SV_THP] = H.THP_ALWAYS
    else:
        k.touch(t, VPN, 512)
    if advice is not None:
        sc.madvise_hugepage(k, t, VPN << 12, 512 << 12, advice)
    KH.khugepaged(k).advance(0.0)
    assert (huge_at(k, t, VPN) is not None) == collapses


def test_pacing_pages_to_scan_and_sleep(machine) -> None:
    """pages_to_scan=512: one range per pass (a collapse ends the pass too); a pass every
    scan_sleep_millisecs of the clock scripts move with spin and sleep."""
    k, t, kh = setup(machine, [(1, 0, 2048)], npages=2048, pages_to_scan=512,
                     scan_sleep_millisecs=100)
    from numasim.mm.numa_balancing import numab

    nb = numab(k)
    nb.sleep(0.0)
    assert kh.stats["pages_collapsed"] == 1
    nb.sleep(150.0)  # passes at 100
    assert kh.stats["pages_collapsed"] == 2
    nb.run(t, 200.0)  # and at 200, 300 while the task runs
    assert kh.stats["pages_collapsed"] == 4
    assert [c.vpn for c in kh.log] == [VPN + 512 * i for i in range(4)]
    assert [c.ms for c in kh.log] == [0.0, 100.0, 200.0, 300.0]
    assert kh.log[0].sources == {1: 512} and kh.log[0].node == 1


def test_shared_and_swapped_ptes(machine) -> None:
    """A forked child shares the pages: more than max_ptes_shared of them stop the
    collapse (thp_scan_exceed_share_pte); the child's mm is registered with its parent's."""
    k, t, kh = setup(machine, [(1, 0, 512)], max_ptes_shared=100)
    child = k.fork(t)
    assert k.task_mm(child) in kh.slots
    kh.advance(0.0)
    assert huge_at(k, t, VPN) is None
    assert vmstat_read(k, "thp_scan_exceed_share_pte") >= 1


def test_collapse_frees_the_small_pages(machine) -> None:
    k, t, kh = setup(machine, [(1, 0, 200), (2, 200, 312)])
    free = k.ks.zones[:, S.Z_FREE].copy()
    kh.advance(0.0)
    assert huge_at(k, t, VPN) == 2
    delta = k.ks.zones[:, S.Z_FREE] - free
    by_node = {n: int(delta[k.ks.zones[:, S.Z_NODE] == n].sum()) for n in range(4)}
    assert by_node[1] == 200 and by_node[2] == 312 - 512 and by_node[0] == by_node[3] == 0


# ------------------------------------------------------------------ alignment (6.12)
@pytest.mark.parametrize(("kern", "npages", "aligned"), [
    ("6.12", 1024, True), ("6.12", 512, True), ("6.12", 1000, False),
    ("6.1", 1024, False), ("6.1", 512, False)])
def test_anonymous_mmap_alignment(kern, npages, aligned) -> None:
    m = layout.load(LAYOUTS / "4node-asym.layout", kernel=kern)
    k = Kernel(m, kern)
    t = k.new_process(0)
    k.mmap(t, 7)  # something unaligned first
    r = k.mmap(t, npages)
    start = int(k.ks.regions[r, S.R_START])
    assert (start % 512 == 0) == aligned
    if aligned:  # as high as it fits: its end is within 2 MiB of the mapping above
        assert 0 <= int(k.ks.regions[r - 1, S.R_START]) - (start + npages) < 512
    shared = k.mmap(t, 1024, kind="shared")
    assert int(k.ks.regions[shared, S.R_START]) == start - 1024 or not aligned


# ------------------------------------------------------------------ scripts and files
def test_knob_files_in_scripts(machine) -> None:
    d = KH.KHUGEPAGED_DIR
    text = "\n".join([f"cat {d}max_ptes_none", f"write {d}max_ptes_none 512",
                      f"write {d}max_ptes_none 17", f"cat {d}max_ptes_none",
                      f"write {d}pages_to_scan 0", f"write {d}defrag 2",
                      f"write {d}full_scans 1", f"cat {d}pages_collapsed", f"cat {d}nope"])
    got = [r.text for r in run_script(text, machine, kernel="6.12")]
    assert "| 511" in got and "| 17" in got and "| 0" in got
    assert sum("errno=EINVAL" in x for x in got) == 3
    assert any("errno=EACCES" in x for x in got)
    assert any("errno=ENOENT" in x for x in got)


@pytest.mark.parametrize("recording", sorted((ORACLE / "second_boot").glob("12[01]_*.txt")),
                         ids=lambda p: p.stem)
def test_second_boot_reproduces_the_first_and_numasim(recording: Path) -> None:
    """Alignment and khugepaged's choices do not depend on timing (knobs short enough):
    a second boot answered line for line the same, and so does numasim."""
    scen, kern = recording.name.removesuffix(".txt").split(".", 1)
    body = [x for x in recording.read_text().splitlines() if not x.startswith("## ")]
    first = ORACLE / f"expected_{scen}.{kern}.txt"
    assert body == [x for x in first.read_text().splitlines() if not x.startswith("## ")]
    m = layout.load(LAYOUTS / "4node-asym.layout", kernel=kern)
    got = [r.text for r in run_script((ORACLE / f"{scen}.txt").read_text(), m, kernel=kern)]
    assert got == body


def test_bad_knobs_one_config_error(tmp_path) -> None:
    from numasim.errors import ConfigError
    from numasim.kernel_settings import parse_khugepaged_knob

    with pytest.raises(ConfigError, match="max_ptes_none"):
        parse_khugepaged_knob("max_ptes_none=512")
    with pytest.raises(ConfigError, match="unknown khugepaged knob"):
        parse_khugepaged_knob("max_pte_none=5")
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_khugepaged_knob("pages_to_scan")
    assert parse_khugepaged_knob("pages_to_scan=64") == ("pages_to_scan", 64)


# ------------------------------------------------------------------ timed runs
READ_THEN_WRITE = """\
name: read-then-write
description: a table read before it is written (huge zero page, then 4 KiB pages), then read
threads: 2
placement: spread
regions:
  - {name: table, size: 4MiB}
phases:
  - {name: peek, kernel: stride, stride: 4KiB}
  - {name: init, kernel: init, split: parallel}
  - {name: read, kernel: stride, stride: 4KiB, repeat: 4, compute: 20000}
"""


@pytest.fixture(scope="module")
def timed(tmp_path_factory):
    """The read-then-write workload under THP always: the reads map the huge zero page, the
    writes split it and fault 4 KiB pages (half per node), khugepaged collapses them at the
    first pass after that (scan_sleep_millisecs=1, i.e. the leader's first tick at 4 ms).
    A workload's table is malloc'ed, so not 2 MiB-aligned: one whole 2 MiB range lies inside
    it, 511 of its pages written by thread 0 (node 0) and one by thread 1 (node 1)."""
    import numasim

    wl = tmp_path_factory.mktemp("kh") / "rtw.yaml"
    wl.write_text(READ_THEN_WRITE)
    out = {}
    for engine in ("fast", "exact"):
        for sleep in (1, 10000):
            r = numasim.run("clx-2s", str(wl), engine=engine, thp="always",
                            khugepaged_knobs={"scan_sleep_millisecs": sleep})
            out[engine, sleep] = r.to_dict()
    return out


def test_timed_collapse_in_both_engines(timed) -> None:
    fast, exact = timed["fast", 1], timed["exact", 1]
    for d in (fast, exact):
        kh = d["khugepaged"]
        assert kh["collapses"] == 1 and kh["vmstat"]["thp_collapse_alloc"] == 1
        # the range goes to the node holding most of its pages
        assert [(x["node"], x["sources"]) for x in kh["log"]] == [(0, {0: 511, 1: 1})]
        assert all(x["t_ms"] == 4.0 for x in kh["log"])
        assert kh["copies_charged"] == 1
        assert d["kernel_mm"]["thp_vmstat"]["thp_collapse_alloc"] == 1
        assert d["pages_per_node"]["table"] == {"0": 513, "1": 511}
    from numasim.machine.report import _kernel_line

    assert _kernel_line(fast).endswith("THP always, khugepaged 1 collapses (scan_sleep 1 ms)")
    assert fast["khugepaged"]["log"] == exact["khugepaged"]["log"]
    # measured: 19.40027 vs 19.40077 ms (2.6e-5 apart), well inside the engines' general
    # tolerance (tests/test_engines_agree.py)
    assert fast["runtime_s"] == pytest.approx(exact["runtime_s"], rel=1e-4)
    assert fast["page_faults"]["count"] == exact["page_faults"]["count"]


def test_timed_collapse_costs_its_copy(timed) -> None:
    """With Linux's 10 s sleep nothing collapses in 20 ms (the pass at mmap time found the
    table untouched); the collapse's copy (512 pages read and written, one fault with its
    TLB flush) makes the run longer."""
    for engine in ("fast", "exact"):
        lazy, busy = timed[engine, 10000], timed[engine, 1]
        assert lazy["khugepaged"]["collapses"] == 0
        assert busy["page_faults"]["count"] == lazy["page_faults"]["count"] + 1
        extra = busy["runtime_s"] - lazy["runtime_s"]
        assert 0.1e-3 < extra < 5e-3


@pytest.mark.parametrize("argv", [
    ["numactl", "--khugepaged-knob", "max_ptes_none=512", "--", "stream", "--threads", "1",
     "--size", "64KiB", "--machine", "clx-2s"],
    ["run", "stream-triad", "--machine", "clx-2s", "--khugepaged-knob", "pages_to_scan=0"],
    ["script", "--khugepaged-knob", "scan_sleep_milisecs=5", "-m", "4node-asym", "-e",
     "getcpu"],
])
def test_bad_knob_on_the_command_line_is_one_paragraph(capsys, argv) -> None:
    from numasim.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "khugepaged" in err and "Traceback" not in err


def test_script_command_line_and_yaml_reach_the_knobs(capsys, tmp_path) -> None:
    from numasim.cli import main

    d = KH.KHUGEPAGED_DIR
    assert main(["script", "--thp", "madvise", "--khugepaged-knob", "max_ptes_none=100",
                 "-m", str(LAYOUTS / "4node-asym.layout"), "-e",
                 f"cat {d}max_ptes_none; cat {d}pages_to_scan"]) == 0
    out = capsys.readouterr().out
    assert "| 100" in out and "| 4096" in out
    import yaml

    m = tmp_path / "m.yaml"
    doc = yaml.safe_load((Path(__file__).parents[1] / "numasim" / "data" / "configs"
                          / "machines" / "oracle-4node-normal.yaml").read_text())
    doc.setdefault("kernel", {})["khugepaged"] = {"scan_sleep_millisecs": 7}
    m.write_text(yaml.safe_dump(doc))
    assert main(["script", "-m", str(m), "-e", f"cat {d}scan_sleep_millisecs"]) == 0
    assert "| 7" in capsys.readouterr().out
    assert main(["topo", "convert", str(m)]) == 0
    assert "khugepaged: {scan_sleep_millisecs: 7}" in capsys.readouterr().out


def test_experiment_yaml_reaches_khugepaged(tmp_path) -> None:
    from numasim.errors import ConfigError
    from numasim.experiments.expand import load_experiment
    from numasim.experiments.point import kernel_machine
    from numasim.topology.loaders import load_machine

    f = tmp_path / "e.yaml"
    f.write_text("experiment: e\nmachine: clx-2s\n"
                 "workload: {kernel: stream, threads: 2, size: 1MiB}\n"
                 "sweep:\n  cases:\n    - {label: lazy}\n"
                 "    - {label: eager, thp: always, khugepaged: {scan_sleep_millisecs: 5}}\n")
    lazy, eager = (p.config for p in load_experiment(f).points)
    assert "khugepaged" not in lazy  # old keys, old hashes
    assert eager["khugepaged"] == {"scan_sleep_millisecs": 5}
    m = kernel_machine(load_machine("clx-2s"), eager)
    assert dict(m.khugepaged) == {"scan_sleep_millisecs": 5} and m.thp == "always"
    f.write_text(f.read_text().replace("scan_sleep_millisecs: 5", "max_ptes_none: 600"))
    with pytest.raises(ConfigError, match="max_ptes_none"):
        load_experiment(f)
