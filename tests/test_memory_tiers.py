"""numasim.mm.memory_tiers: tiers, abstract distances and demotion targets as Linux derives
them at boot (mm/memory-tiers.c), per kernel generation, and the sysfs files and views that
show them.  The real kernel's answers on the 2node-tier layout are in tests/data/oracle/94-96.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from numasim.cli import main
from numasim.errors import ConfigError
from numasim.mm import memory_tiers as MT
from numasim.mm.script import run_script
from numasim.mm.script.lang import inline_script
from numasim.topology.derive import boot_state
from numasim.topology.loaders import layout, load_machine, yaml_machine

DATA = Path(__file__).parent / "data" / "topologies"
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "machines"
TIER_LAYOUT = DATA / "layouts" / "2node-tier.layout"


def tiers_of(machine, kernel: str = "6.12") -> MT.MemoryTiers:
    return MT.memory_tiers(machine, kernel, boot_state(machine, kernel).fallback_order)


def layout_of(mt: MT.MemoryTiers) -> dict[str, tuple[int, ...]]:
    return {t.name: t.nodes for t in mt.tiers}


# ------------------------------------------------------------------ the arithmetic
def test_constants_and_formula() -> None:
    assert MT.MEMTIER_CHUNK_SIZE == 128
    assert MT.MEMTIER_ADISTANCE_DRAM == 576
    assert MT.MEMTIER_DEFAULT_DAX_ADISTANCE == 2880
    ref = MT.AccessCoordinate(80, 80, 100, 100)
    # 2x latency, half the bandwidth -> 4x the distance: 2304, memory_tier18
    assert MT.mt_perf_to_adistance(MT.AccessCoordinate(160, 160, 50, 50), ref) == 2304
    # the oracle's HMAT: 300 ns / 10G against 80 ns / 100G
    assert MT.mt_perf_to_adistance(MT.AccessCoordinate(300, 300, 10240, 10240),
                                   MT.AccessCoordinate(80, 80, 102400, 102400)) == 21600
    # integer arithmetic left to right: 576*170//160 = 612, then *200//200
    assert MT.mt_perf_to_adistance(MT.AccessCoordinate(85, 85, 100, 100), ref) == 612
    assert MT.mt_perf_to_adistance(MT.AccessCoordinate(0, 0, 1, 1), ref) is None


def test_kstrtobool() -> None:
    assert [MT.kstrtobool(v) for v in ("1", "y", "Yes", "true", "on", "0", "n", "off", "F")] \
        == [True, True, True, True, True, False, False, False, False]
    assert [MT.kstrtobool(v) for v in ("", "maybe", "o", "2")] == [None] * 4


# -------------------------------------------------------------- shipped machines
def test_cxl_1s_cxl_node_in_a_lower_tier() -> None:
    m = yaml_machine.load(CONFIGS / "cxl-1s.yaml")
    mt = tiers_of(m, "6.12")
    # MLC numbers as HMAT would hold them: 85 ns / 30563 MB/s and 565 ns / 4795 MB/s
    assert mt.adistance == {0: 576, 1: 576 * 1130 // 170 * 61126 // 9590}
    assert layout_of(mt) == {"memory_tier4": (0,), "memory_tier190": (1,)}
    assert mt.node_demotion == {0: (1,), 1: ()}
    assert mt.node_get_allowed_targets(0) == (1,)
    assert mt.node_is_toptier(0) and not mt.node_is_toptier(1)
    assert mt.log == ("Demotion targets for Node 0: preferred: 1, fallback: 1",
                      "Demotion targets for Node 1: null")
    # 6.1: no HMAT algorithm; the CXL node, onlined by dax/kmem, gets the dax default
    mt61 = tiers_of(m, "6.1")
    assert layout_of(mt61) == {"memory_tier4": (0,), "memory_tier22": (1,)}
    assert mt61.node_demotion[0] == (1,) and mt61.log == ()


def test_2node_tier_layout_on_both_kernels() -> None:
    """What the real kernels showed (recordings 94 and 95): 6.12 puts the HMAT-slow
    CPU-less node in memory_tier168, 6.1 keeps it with node 0 in the DRAM tier."""
    m = layout.load(TIER_LAYOUT)
    mt = tiers_of(m, "6.12")
    assert layout_of(mt) == {"memory_tier4": (0,), "memory_tier168": (1,)}
    assert mt.adistance[1] == 21600
    assert mt.node_demotion == {0: (1,), 1: ()}
    mt61 = tiers_of(layout.load(TIER_LAYOUT, kernel="6.1"), "6.1")
    assert layout_of(mt61) == {"memory_tier4": (0, 1)}
    assert mt61.node_demotion == {0: (), 1: ()}
    assert mt61.node_is_toptier(1)  # a CPU-less node in the CPUs' tier is top tier
    assert tiers_of(m, "2.6.7").tiers == ()


def test_shipped_oracle_machine_matches_its_layout() -> None:
    m = yaml_machine.load(CONFIGS / "oracle-2node-tier.yaml")
    assert layout_of(tiers_of(m)) == {"memory_tier4": (0,), "memory_tier168": (1,)}


def test_layout_hmat_lb_errors_name_the_line() -> None:
    text = TIER_LAYOUT.read_text().replace("latency=300", "latency=slow")
    with pytest.raises(ConfigError) as e:
        layout.loads(text, file="t.layout")
    assert str(e.value).startswith("t.layout:10, field 'qemu -numa hmat-lb'")


# ------------------------------------------------------ hardware description files
def test_sysfs_tree_with_hmat_and_pmem() -> None:
    """hwloc's fakememinitiators tree: HMAT access1 data, but no node has both CPUs and
    memory, so there is no DRAM reference: every boot node keeps 576, and the kmem-onlined
    PMem nodes 2880.  Each DRAM node demotes to the PMem node of its socket."""
    m = load_machine(DATA / "hwloc" / "sysfs" / "fakememinitiators-1np2c+1npp+gi.tar.bz2")
    mt = tiers_of(m)
    assert mt.dram_perf is None
    assert layout_of(mt) == {"memory_tier4": (5, 6, 8, 9), "memory_tier22": (7, 10)}
    assert mt.node_demotion == {5: (7,), 6: (7,), 7: (), 8: (10,), 9: (10,), 10: ()}
    assert mt.node_get_allowed_targets(5) == (7, 10)
    assert not any(mt.node_is_toptier(n) for n in (5, 7))  # no tier holds a CPU node


def test_hwloc_memattr_bandwidth_only_is_no_hmat_algorithm() -> None:
    """64intel64-heteromem: hwloc gives Bandwidth but no Latency; Linux's HMAT algorithm
    needs both, so the HBM nodes stay in the DRAM tier."""
    m = load_machine(DATA / "hwloc" / "64intel64-heteromem.xml")
    assert MT.node_perf(m) is None
    assert layout_of(tiers_of(m)) == {"memory_tier4": tuple(range(8))}


def two_socket_cxl(latency: bool, cxl_dist: tuple[int, int] = (14, 24)) -> str:
    near, far = cxl_dist
    text = f"""
name: 2s-cxl
nodes:
  - {{id: 0, cpus: 0-3, memory: 4GiB}}
  - {{id: 1, cpus: 4-7, memory: 4GiB}}
  - {{id: 2, memory: 8GiB, kind: CXL}}
  - {{id: 3, memory: 8GiB, kind: CXL}}
distance:
  - [10, 21, {near}, {far}]
  - [21, 10, {far}, {near}]
  - [{near}, {far}, 10, 30]
  - [{far}, {near}, 30, 10]
"""
    if latency:
        text += """latency:
  - [80ns, 130ns, 250ns, 350ns]
  - [130ns, 80ns, 350ns, 250ns]
  - [80ns, 130ns, 250ns, 350ns]
  - [130ns, 80ns, 350ns, 250ns]
bandwidth:
  - [100GB/s, 50GB/s, 30GB/s, 20GB/s]
  - [50GB/s, 100GB/s, 20GB/s, 30GB/s]
  - [100GB/s, 50GB/s, 30GB/s, 20GB/s]
  - [50GB/s, 100GB/s, 20GB/s, 30GB/s]
"""
    return text


@pytest.mark.parametrize("kernel", ["6.12", "6.1"])
@pytest.mark.parametrize("latency", [True, False])
def test_two_sockets_demote_to_their_nearest_cxl_node(kernel: str, latency: bool) -> None:
    m = yaml_machine.loads(two_socket_cxl(latency), file="2s.yaml")
    mt = tiers_of(m, kernel)
    assert mt.node_demotion == {0: (2,), 1: (3,), 2: (), 3: ()}
    assert mt.node_get_allowed_targets(0) == (2, 3)
    slow = [t for t in mt.tiers if 2 in t.nodes][0]
    # with HMAT-like data 6.12 computes it: 576*250/80*100/30 = 6000 -> memory_tier46
    want = "memory_tier46" if (latency and kernel == "6.12") else "memory_tier22"
    assert slow.name == want and slow.nodes == (2, 3)


def test_equidistant_targets_are_all_preferred_and_drawn_at_random() -> None:
    m = yaml_machine.loads(two_socket_cxl(False, cxl_dist=(20, 20)), file="2s.yaml")
    mt = tiers_of(m)
    assert mt.node_demotion[0] == (2, 3) and mt.node_demotion[1] == (2, 3)
    rng = random.Random(1)
    assert {mt.next_demotion_node(0, rng) for _ in range(50)} == {2, 3}
    assert mt.next_demotion_node(2, rng) == -1


def test_dram_reference_mismatch_disables_the_hmat_algorithm() -> None:
    text = two_socket_cxl(True).replace("[130ns, 80ns, 350ns, 250ns]\n  - [80ns",
                                        "[130ns, 95ns, 350ns, 250ns]\n  - [80ns")
    m = yaml_machine.loads(text, file="2s.yaml")
    mt = tiers_of(m)
    assert mt.dram_perf is None and set(mt.adistance.values()) == {576, 2880}
    assert mt.log[0] == ("memory-tiers: the performance of DRAM node 1 mismatches that of "
                         "the reference DRAM node 0.")


# ------------------------------------------------------------------- views
def answers(cmds: str, machine, kernel: str) -> list[str]:
    out = [r.text for r in run_script(inline_script(cmds), machine, kernel=kernel)]
    return [x for x in out if x.startswith(("ret ", "| ", "cat ", "klog "))]


def test_sysfs_files_in_scenarios() -> None:
    m = yaml_machine.load(CONFIGS / "cxl-1s.yaml")
    base = "/sys/devices/virtual/memory_tiering"
    cmds = (f"cat {base}/memory_tier4/nodelist; cat {base}/memory_tier190/nodelist; "
            f"cat {base}/memory_tier5/nodelist; write {base}/memory_tier4/nodelist 1; "
            "write /sys/kernel/mm/numa/demotion_enabled on; "
            "cat /sys/kernel/mm/numa/demotion_enabled; dmesg Demotion")
    assert answers(cmds, m, "6.12") == [
        "| 0", "| 1", f"cat path={base}/memory_tier5/nodelist errno=ENOENT",
        f"ret op=write rc=-1 errno=EACCES path={base}/memory_tier4/nodelist",
        "ret op=write rc=2 path=/sys/kernel/mm/numa/demotion_enabled", "| true",
        "klog | Demotion targets for Node 0: preferred: 1, fallback: 1",
        "klog | Demotion targets for Node 1: null"]
    assert answers(cmds, m, "6.1")[:2] == ["| 0", f"cat path={base}/memory_tier190/nodelist "
                                                  "errno=ENOENT"]
    assert answers(f"cat {base}/memory_tier4/nodelist; cat /sys/kernel/mm/numa/"
                   "demotion_enabled", m, "2.6.7") == [
        f"cat path={base}/memory_tier4/nodelist errno=ENOENT",
        "cat path=/sys/kernel/mm/numa/demotion_enabled errno=ENOENT"]


def test_topo_show_prints_tiers_and_targets(capsys) -> None:
    assert main(["topo", "show", "cxl-1s"]) == 0
    out = capsys.readouterr().out
    assert "  memory_tier190  1        node 1 adistance 24399" in out
    assert "  Node 0: preferred: 1, fallback: 1" in out
    assert main(["topo", "show", "cxl-1s", "--kernel", "6.1"]) == 0
    assert "  memory_tier22   1        node 1 adistance 2880" in capsys.readouterr().out


ORACLE = Path(__file__).parent / "data" / "oracle"


@pytest.mark.parametrize("recording", sorted((ORACLE / "second_boot").glob("9[4-6]_*.txt")),
                         ids=lambda p: p.stem)
def test_second_boot_reproduces_the_first_and_numasim(recording: Path) -> None:
    """Tiers, demotion targets and demotion_enabled are decided at boot from the firmware
    tables: a second boot answered line for line the same, and so does numasim."""
    scen, kern = recording.name.removesuffix(".txt").split(".", 1)
    body = [x for x in recording.read_text().splitlines() if not x.startswith("## ")]
    first = ORACLE / f"expected_{scen}.{kern}.txt"
    assert body == [x for x in first.read_text().splitlines() if not x.startswith("## ")]
    m = layout.load(TIER_LAYOUT, kernel=kern)
    got = [r.text for r in run_script((ORACLE / f"{scen}.txt").read_text(), m, kernel=kern)]
    assert got == body


def reference_targets(machine, tiers, node_load) -> dict[int, tuple[int, ...]]:
    """establish_demotion_targets as the kernel loops: find_next_best_node call by call."""
    where = {n: k for k, (_, nodes) in enumerate(tiers) for n in nodes}
    out = {}
    for nid in machine.memory_nodes:
        k = where[nid]
        if k == len(tiers) - 1:
            out[nid] = ()
            continue
        used = set(machine.memory_nodes) - set(tiers[k + 1][1])
        pref, best = [], -1
        while (t := MT.find_next_best_node(machine, nid, used, node_load)) >= 0:
            d = machine.dist(nid, t)
            if best not in (-1, d):
                break
            best = d
            pref.append(t)
        out[nid] = tuple(sorted(pref))
    return out


@pytest.mark.parametrize("seed", range(60))
def test_sorted_targets_equal_the_kernels_call_by_call_loop(seed: int) -> None:
    """Random SLITs (few distinct values, so ties and CPU penalties matter) and tiers."""
    rng = random.Random(seed)
    n = rng.randrange(3, 9)
    cpus = [rng.random() < 0.5 or i == 0 for i in range(n)]
    d = [[10] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            d[i][j] = d[j][i] = rng.choice((12, 20, 21, 30))
    nodes = "".join(f"  - {{id: {i}, cpus: [{i}], memory: 1GiB}}\n" if cpus[i] else
                    f"  - {{id: {i}, memory: 1GiB}}\n" for i in range(n))
    m = yaml_machine.loads("name: r\nnodes:\n" + nodes + "distance:\n" + "".join(
        f"  - {row}\n" for row in d), file="r.yaml")
    ids = list(m.memory_nodes)
    tiers: dict[int, list[int]] = {}
    for nid in ids:
        tiers.setdefault(rng.randrange(3) * 128, []).append(nid)
    order = sorted(tiers.items())
    load = MT.boot_node_load(m, boot_state(m).fallback_order)
    assert MT.establish_demotion_targets(m, order, load) == reference_targets(m, order, load)


def test_single_tier_boot_log_says_null_for_every_node() -> None:
    """One tier: no targets; 6.12 still logs a null line per node (seen in the oracle's
    4node-asym boot log, /work/shared/oracle/info/4node-asym.linux-6.12.txt); 6.1 nothing."""
    from numasim.mm.kernel import Kernel

    m = layout.load(DATA / "layouts" / "4node-asym.layout")
    assert [x for x in Kernel(m, "6.12").dmesg if x.startswith("Demotion")] == [
        f"Demotion targets for Node {n}: null" for n in range(4)]
    assert not [x for x in Kernel(m, "6.1").dmesg if x.startswith("Demotion")]
