"""NUMA balancing in the simulated kernel (numasim.mm.numa_balancing).

The analytic case: a task on node 1 keeps reading pages first-touched on node 0.  With
balancing on, every page ends on node 1 once the scanner has covered the range; when that
happens follows from the knobs:

* the first scan runs at the first scheduler tick (4 ms) after ``scan_delay_ms`` of the
  task's CPU time (``task_tick_numa``: runtime > node_stamp + period, period starting at
  scan_delay);
* each scan marks ``scan_size_mb`` of populated memory, in chunks rounded up to 2 MiB, so a
  pass with a 1 MiB budget covers 512 pages of an aligned range;
* the scans follow every ``period + 2 ticks`` of CPU time, with period = task_scan_start =
  max(1000 ms / (2560 MB / scan_size_mb), scan_period_min_ms / W), W = RSS / scan size;
* the period only adapts when a full pass over the address space ends (placement), so
  the passes over one range are evenly spaced.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from numasim.mm import state as S
from numasim.mm.kernel import Kernel
from numasim.mm.numa_balancing import TICK_MS, KnobError, numab
from numasim.mm.procviews import numa_maps
from numasim.mm.script import run_script
from numasim.mm.syscalls import UserMask, mbind, set_mempolicy
from numasim.topology.loaders import layout

LAYOUTS = Path(__file__).parent / "data" / "topologies" / "layouts"
VPN = 0x40000  # 0x40000000, 2 MiB aligned
NPAGES = 2048
KNOBS = {"scan_delay_ms": 100, "scan_period_min_ms": 100, "scan_period_max_ms": 1600}


@pytest.fixture(scope="module")
def machine():
    return layout.load(LAYOUTS / "2node.layout", kernel="6.12")


def boot(machine, kern: str = "6.12", on: bool = True, **knobs):
    k = Kernel(machine, kern)
    nb = numab(k)
    for name, value in {**KNOBS, **knobs}.items():
        nb.set_knob(name, value)
    nb.set_mode(int(on))
    t = k.new_process(0)
    k.mmap(t, NPAGES, vpn=VPN)
    k.touch(t, VPN, NPAGES, write=True)  # first touch on node 0
    k.set_cpu(t, 1)  # then the task runs on node 1
    return k, nb, t


def nodes_of(k: Kernel, t: int) -> np.ndarray:
    return np.bincount([k.page_node(t, VPN + i) for i in range(NPAGES)], minlength=2)


def first_scan_ms(delay: int) -> int:
    return (delay // TICK_MS + 1) * TICK_MS


def scan_interval_ms(nb, t: int) -> int:
    """period + 2 ticks of CPU time, rounded up to a tick."""
    return math.ceil((nb.task_scan_start(t) + 2 * TICK_MS) / TICK_MS) * TICK_MS


@pytest.mark.parametrize("kern", ["6.12", "6.1"])
def test_nothing_moves_before_the_scan_delay(machine, kern: str) -> None:
    k, nb, t = boot(machine, kern)
    nb.spin(t, VPN, NPAGES, first_scan_ms(100) - TICK_MS)
    assert list(nodes_of(k, t)) == [NPAGES, 0]
    assert nb.counters["numa_pte_updates"] == 0


@pytest.mark.parametrize("kern", ["6.12", "6.1"])
def test_one_scan_moves_everything_when_the_budget_covers_it(machine, kern: str) -> None:
    k, nb, t = boot(machine, kern)  # scan_size_mb 256 > 8 MiB
    nb.spin(t, VPN, NPAGES, first_scan_ms(100))
    assert list(nodes_of(k, t)) == [0, NPAGES]
    c = nb.counters
    assert c["numa_pte_updates"] == c["numa_hint_faults"] == c["numa_pages_migrated"] == NPAGES
    assert c["numa_hint_faults_local"] == 0
    assert k.ks.vmstat[S.VM_PGMIGRATE_SUCCESS] == NPAGES


@pytest.mark.parametrize("kern", ["6.12", "6.1"])
def test_time_to_cover_the_range_follows_from_the_knobs(machine, kern: str) -> None:
    k, nb, t = boot(machine, kern, scan_size_mb=1)
    chunk = 512  # 1 MiB budget, chunk end rounded up to 2 MiB
    passes = NPAGES // chunk
    # W = 2048 pages / 256 = 8 windows: period = 100 / 8 = 12 ms (the floor is 0 here)
    assert nb.task_scan_start(t) == 12
    step = scan_interval_ms(nb, t)
    t_last = first_scan_ms(100) + (passes - 1) * step
    nb.spin(t, VPN, NPAGES, t_last - TICK_MS)  # one pass short
    assert list(nodes_of(k, t)) == [chunk, NPAGES - chunk]
    nb.spin(t, VPN, NPAGES, TICK_MS)
    assert list(nodes_of(k, t)) == [0, NPAGES]
    assert nb.now == t_last


def test_off_is_todays_static_placement(machine) -> None:
    k, nb, t = boot(machine, on=False)
    nb.spin(t, VPN, NPAGES, 2000)
    assert list(nodes_of(k, t)) == [NPAGES, 0]
    assert all(v == 0 for v in nb.counters.values())


def test_default_is_off(machine) -> None:
    assert not numab(Kernel(machine, "6.12")).enabled


def test_numa_maps_and_numastat_follow_the_pages(machine) -> None:
    k, nb, t = boot(machine)
    before = k.numastat()[1]["numa_hit"]
    nb.spin(t, VPN, NPAGES, 200)
    line = next(x for x in numa_maps(k, t) if x.startswith("40000000 "))
    assert f"N1={NPAGES}" in line and "N0=" not in line
    assert k.numastat()[1]["numa_hit"] - before == NPAGES  # the copies, allocated on node 1
    assert k.ks.node_free_pages(0) >= k.ks.node_free_pages(1)


def _mask(nodes) -> UserMask:
    return UserMask.of(nodes)


def test_vma_policies_without_mof_are_not_scanned(machine) -> None:
    k, nb, t = boot(machine)
    mbind(k, t, VPN << 12, (NPAGES // 2) << 12, 3, _mask({0, 1}), 1025, 0)  # interleave
    nb.spin(t, VPN, NPAGES, 500)
    counts = nodes_of(k, t)
    assert counts[1] == NPAGES // 2  # only the default-policy half moved
    assert all(k.page_node(t, VPN + i) == 0 for i in range(NPAGES // 2))


@pytest.mark.parametrize(("nodes", "moved"), [({0, 1}, True), ({0}, False)])
def test_bind_with_numa_balancing_moves_only_inside_its_mask(machine, nodes, moved) -> None:
    k = Kernel(machine, "6.12")
    nb = numab(k)
    for name, value in KNOBS.items():
        nb.set_knob(name, value)
    nb.set_mode(1)
    t = k.new_process(0)
    set_mempolicy(k, t, 2 | (1 << 13), _mask(nodes), 1025)  # BIND|MPOL_F_NUMA_BALANCING
    k.mmap(t, 256, vpn=VPN)
    k.touch(t, VPN, 256, write=True)
    k.set_cpu(t, 1)
    nb.spin(t, VPN, 256, 300)
    on1 = sum(k.page_node(t, VPN + i) == 1 for i in range(256))
    assert on1 == (256 if moved else 0)
    assert nb.counters["numa_hint_faults"] >= 256  # marked and faulted either way
    set_mempolicy(k, t, 2, _mask({0}), 1025)  # plain BIND: the task is no longer scanned
    before = nb.counters["numa_pte_updates"]
    nb.spin(t, VPN, 256, 3000)
    assert nb.counters["numa_pte_updates"] == before


def test_full_target_node_refuses_and_backs_off(machine) -> None:
    k, nb, t = boot(machine)
    ks = k.ks
    for z in np.flatnonzero(ks.zones[:, S.Z_NODE] == 1):
        ks.zones[z, S.Z_FREE] = ks.zones[z, S.Z_HIGH]  # not above high: not "balanced"
    nb.spin(t, VPN, NPAGES, 1000)
    assert list(nodes_of(k, t)) == [NPAGES, 0]
    assert nb.counters["numa_pages_migrated"] == 0
    assert nb.counters["numa_hint_faults"] >= NPAGES
    assert nb.tasks[t].numa_scan_period > nb.task_scan_start(t)  # doubled after failures


def test_knob_errors() -> None:
    k = Kernel(layout.load(LAYOUTS / "2node.layout", kernel="6.12"), "6.12")
    nb = numab(k)
    with pytest.raises(KnobError, match="accepts 0..4"):
        nb.set_mode(5)  # 2 and 3 (memory tiering) are tests/test_numa_promote.py's
    with pytest.raises(KnobError, match="at least 1"):
        nb.set_knob("scan_period_min_ms", 0)
    with pytest.raises(KnobError, match="unknown NUMA balancing knob"):
        nb.set_knob("scan_sise_mb", 4)


SCRIPT = """\
mount debugfs /sys/kernel/debug
cat /sys/kernel/debug/sched/numa_balancing/scan_period_max_ms
write /sys/kernel/debug/sched/numa_balancing/scan_size_mb 0
write /proc/sys/kernel/numa_balancing 5
write /proc/sys/kernel/numa_balancing 1
cat /proc/sys/kernel/numa_balancing
vmstat numa_pte_updates nr_bogus
"""


def test_script_knobs(machine) -> None:
    out = [r.text for r in run_script(SCRIPT, machine)]
    assert "| 60000" in out
    assert any("scan_size_mb" in x and "errno=EINVAL" in x for x in out)
    assert any("numa_balancing" in x and "rc=-1 errno=EINVAL" in x for x in out)
    assert "| 1" in out
    assert "vmstat numa_pte_updates=0 nr_bogus=-1" in out


MACHINE_YAML = """\
name: two
nodes:
  - {id: 0, cpus: 0-1, memory: 1GiB}
  - {id: 1, cpus: 2-3, memory: 1GiB}
distance:
  - [10, 21]
  - [21, 10]
kernel:
  numa_balancing: 1
  numa_balancing_scan_delay_ms: 100
  numa_balancing_scan_size_mb: 64
"""


def test_machine_yaml_kernel_block(tmp_path) -> None:
    from numasim.errors import NumasimError
    from numasim.topology.loaders import load_machine
    from numasim.topology.loaders.yaml_machine import dump

    f = tmp_path / "m.yaml"
    f.write_text(MACHINE_YAML)
    m = load_machine(f)
    nb = numab(Kernel(m, "6.12"))
    assert nb.enabled and nb.knobs["scan_delay_ms"] == 100 and nb.knobs["scan_size_mb"] == 64
    assert nb.knobs["scan_period_min_ms"] == 1000  # Linux's default where not given
    g = tmp_path / "g.yaml"
    g.write_text(dump(m))
    assert load_machine(g) == m
    for bad, what in (("numa_balancing: 1", "numa_balancing: 5"),
                      ("scan_size_mb: 64", "scan_size_mb: 0")):
        f.write_text(MACHINE_YAML.replace(bad, what))
        with pytest.raises(NumasimError, match="kernel.numa_balancing"):
            load_machine(f)


@pytest.mark.parametrize("kern", ["6.12", "6.1"])
@pytest.mark.parametrize("scenario", ["81_balancing_first_touch", "82_balancing_not_scanned",
                                      "83_balancing_flag"])
def test_jitted_fault_loop_matches_the_python_reference(machine, monkeypatch, kern,
                                                        scenario) -> None:
    """numab_core.numa_hint_faults and NumaBalancing.do_numa_page give the same answers."""
    import numasim.mm.numa_balancing as nbmod

    text = (Path(__file__).parent / "data" / "oracle" / f"{scenario}.txt").read_text()
    m = layout.load(LAYOUTS / "4node-asym.layout", kernel=kern)
    fast = [r.text for r in run_script(text, m, kernel=kern)]
    made = nbmod.NumaBalancing.__init__

    def slow_init(self, *a, **kw):
        made(self, *a, **kw)
        self.use_numba = False

    monkeypatch.setattr(nbmod.NumaBalancing, "__init__", slow_init)
    slow = [r.text for r in run_script(text, m, kernel=kern)]
    assert fast == slow


def test_jitted_fault_loop_matches_on_a_long_run(machine) -> None:
    answers = []
    for use_numba in (True, False):
        k, nb, t = boot(machine, scan_size_mb=1)
        nb.use_numba = use_numba
        ks = k.ks
        for z in np.flatnonzero(ks.zones[:, S.Z_NODE] == 1):  # room for about half the pages
            ks.zones[z, S.Z_FREE] = ks.zones[z, S.Z_HIGH] + NPAGES // 2
        nb.spin(t, VPN, NPAGES, 3000)
        tn = nb.tasks[t]
        answers.append((list(nodes_of(k, t)), nb.counters, tn.numa_scan_period,
                        tn.numa_preferred_nid, tn.mem.tolist(), tn.locality.tolist(),
                        k.ks.vmstat.tolist(), k.ks.numastat.tolist()))
    assert answers[0] == answers[1]
    assert 0 < answers[0][0][1] < NPAGES  # some moved, the node then filled up


LRU_SCRIPT = """\
mount debugfs /sys/kernel/debug
write /sys/kernel/debug/sched/numa_balancing/scan_delay_ms 100
write /proc/sys/kernel/numa_balancing 1
fork
mmap 512 at=0x40000000
touch 0 512
{drain}
cpu 1
spin 0 512 1000 read
query 0 512 counts
endfork
"""


@pytest.mark.parametrize(("kern", "stuck"), [("6.12", (11 + 512) % 31), ("6.1", (11 + 512) % 15)])
def test_pages_in_a_per_cpu_lru_batch_stay_until_drained(kern, stuck) -> None:
    m = layout.load(LAYOUTS / "4node-asym.layout", kernel=kern)
    out = [r.text for r in run_script(LRU_SCRIPT.format(drain=""), m, kernel=kern)]
    assert f"summary region=0 off=0 n=512 node0={stuck} node1={512 - stuck}" in out
    # move_pages drains every CPU's batch (lru_add_drain_all): then everything moves
    out = [r.text for r in run_script(LRU_SCRIPT.format(drain="move 0 1 0"), m, kernel=kern)]
    assert "summary region=0 off=0 n=512 node1=512" in out


SECOND = Path(__file__).parent / "data" / "oracle" / "second_boot"


@pytest.mark.parametrize("recording", sorted(SECOND.glob("8*.txt")), ids=lambda p: p.stem)
def test_second_boot_recordings_within_the_tolerances(recording: Path) -> None:
    """The tolerances of check_vmstat / moved_summary_ok cover the second boot too."""
    from numasim.mm.script.check import check_lines, check_vmstat, lru_batch_of

    scen, kern = recording.name.removesuffix(".txt").split(".", 1)
    text = (Path(__file__).parent / "data" / "oracle" / f"{scen}.txt").read_text()
    m = layout.load(LAYOUTS / "4node-asym.layout", kernel=kern)
    got = [r.text for r in run_script(text, m, kernel=kern)]
    exp = [x for x in recording.read_text().splitlines() if not x.startswith("## ")]
    batch = lru_batch_of(kern)
    diffs = check_lines(exp, got, lru_batch=batch) + check_vmstat(exp, got, lru_batch=batch)
    assert not diffs, "\n".join(map(str, diffs[:4]))


def test_cli_numa_balancing_flags(capsys) -> None:
    from numasim.cli import main

    script = ("fork; mmap 512 at=0x40000000; touch 0 512; cpu 1; spin 0 512 300; "
              "query 0 512 counts; endfork")
    lay = str(LAYOUTS / "4node-asym.layout")
    assert main(["script", "-m", lay, "-e", script]) == 0
    assert "summary region=0 off=0 n=512 node0=512" in capsys.readouterr().out  # off
    assert main(["script", "-m", lay, "--numa-balancing", "--balancing-knob",
                 "scan_delay_ms=50", "-e", script]) == 0
    out = capsys.readouterr().out
    assert "node1=" in out and "node0=512" not in out
    assert main(["script", "-m", lay, "--balancing-knob", "scan_period_min_ms=0",
                 "-e", "getcpu"]) == 2
    assert "--balancing-knob" in capsys.readouterr().err
