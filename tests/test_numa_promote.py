"""Memory tiering mode of NUMA balancing (numasim.mm.numa_promote): promotion of slow-tier pages.

The analytic case: on ``2node-tier`` (6.12 puts the CPU-less node 1 in a lower tier) a task on
node 0 keeps reading N pages that sit on node 1, with ``numa_balancing`` 2.  Every scan pass
marks the slow-tier pages still there, each read is a hinting fault with latency 0 (the page is
read in the tick it was marked), so each is a promotion candidate; the rate limit lets
B = ``rate_limit_MBps`` x 256 pages through per window, a window opening at the first
candidate more than 1000 ms after the last opening.  With a fixed scan interval I (period
``scan_period_min_ms`` = ``scan_period_max_ms``, plus 2 ticks) the windows open every
S = I x (floor(1000 / I) + 1) ms at scan passes, so all N pages are on node 0 at
first scan + (ceil(N / B) - 1) x S, and B x k pages before the k-th window: time follows
from the knob.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from numasim.mm.kernel import Kernel
from numasim.mm.numa_balancing import TICK_MS, KnobError, numab
from numasim.mm.numa_promote import promotion
from numasim.mm.script import run_script
from numasim.mm.syscalls import UserMask, set_mempolicy
from numasim.topology.loaders import layout

DATA = Path(__file__).parent / "data"
LAYOUTS = DATA / "topologies" / "layouts"
SECOND = DATA / "oracle" / "second_boot"
VPN = 0x40000
N = 1024
PERIOD = 100
KNOBS = {"scan_delay_ms": 100, "scan_period_min_ms": PERIOD, "scan_period_max_ms": PERIOD}


@pytest.fixture(scope="module")
def tier612():
    return layout.load(LAYOUTS / "2node-tier.layout", kernel="6.12")


def boot(machine, kern: str = "6.12", mode: int = 2, rate: int | None = None, **knobs):
    """A task on CPU 0 whose N pages were first touched on node 1 (task BIND {1}, then the
    default policy again, so the VMA is scanned)."""
    k = Kernel(machine, kern)
    nb = numab(k)
    for name, value in {**KNOBS, **knobs}.items():
        nb.set_knob(name, value)
    if rate is not None:
        nb.set_knob("promote_rate_limit_MBps", rate)
    nb.set_mode(mode)
    t = k.new_process(0)
    set_mempolicy(k, t, 2, UserMask.of({1}), 1025)
    k.mmap(t, N, vpn=VPN)
    k.touch(t, VPN, N, write=True)
    set_mempolicy(k, t, 0, None, 0)
    return k, nb, t


def on_node0(k: Kernel, t: int) -> int:
    return sum(k.page_node(t, VPN + i) == 0 for i in range(N))


def promoted_over_time(nb, t: int, ms: int) -> list[tuple[float, int]]:
    """(time, pgpromote_success) after each tick of a spin over the range."""
    out = []
    for _ in range(ms // TICK_MS):
        nb.spin(t, VPN, N, TICK_MS)
        out.append((nb.now, promotion(nb).vmstat("pgpromote_success")))
    return out


def window_spacing_ms() -> int:
    interval = math.ceil((PERIOD + 2 * TICK_MS) / TICK_MS) * TICK_MS
    return interval * (1000 // interval + 1)


@pytest.mark.parametrize("rate", [1, 2])
def test_promotion_time_follows_the_rate_limit(tier612, rate: int) -> None:
    k, nb, t = boot(tier612, rate=rate)
    budget = rate * 256
    windows = math.ceil(N / budget)
    spacing = window_spacing_ms()
    trace = promoted_over_time(nb, t, 100 + windows * spacing + 400)
    start = next(when for when, n in trace if n)
    assert start == pytest.approx(nb.now - (trace[-1][0] - start))  # (sanity)
    for when, n in trace:
        if when < start:
            assert n == 0
            continue
        opened = min(int((when - start) // spacing) + 1, windows)
        assert n == min(N, budget * opened), (when, n)
    done = next(when for when, n in trace if n == N)
    assert done - start == (windows - 1) * spacing
    assert on_node0(k, t) == N
    cand = promotion(nb).vmstat("pgpromote_candidate")
    assert cand > N  # pages held back were candidates again at every pass


def test_the_default_rate_limit_promotes_everything_at_the_first_pass(tier612) -> None:
    k, nb, t = boot(tier612)
    nb.spin(t, VPN, N, 200)
    assert on_node0(k, t) == N
    c = {key: promotion(nb).vmstat(key) for key in ("pgpromote_success", "pgpromote_candidate")}
    assert c == {"pgpromote_success": N, "pgpromote_candidate": N}
    assert promotion(nb).node_vmstat(0) == c  # node stats of the target
    assert promotion(nb).node_vmstat(1) == {"pgpromote_success": 0, "pgpromote_candidate": 0}
    assert nb.counters["numa_pages_migrated"] == N
    assert nb.counters["numa_hint_faults_local"] == 0
    before = nb.counters["numa_pte_updates"]
    nb.spin(t, VPN, N, 2000)  # every page is top tier now: mode 2 marks none of them
    assert nb.counters["numa_pte_updates"] == before


def test_a_zero_hot_threshold_promotes_nothing(tier612) -> None:
    k, nb, t = boot(tier612, hot_threshold_ms=0)
    nb.spin(t, VPN, N, 1500)
    assert on_node0(k, t) == 0
    assert nb.counters["numa_hint_faults"] >= 4 * N  # marked and faulted at every pass
    assert promotion(nb).vmstat("pgpromote_candidate") == 0


def test_cold_pages_stay_on_the_slow_tier(tier612) -> None:
    """A page read less often than the hot threshold after its scan is not promoted: the
    latency (fault - scan) decides, so the same pages promote with a longer threshold."""
    for threshold, moved in ((50, 0), (1000, N)):
        k, nb, t = boot(tier612, hot_threshold_ms=threshold)
        nb.run(t, 104)  # the first scan marks every slow-tier page (no access yet)
        assert nb.counters["numa_pte_updates"] == N
        nb.run(t, 60)  # 60 ms without touching them
        nb.hinting_faults(t, VPN, N)
        assert on_node0(k, t) == moved


def test_linux_6_1_keeps_the_cpu_less_node_in_the_top_tier() -> None:
    m = layout.load(LAYOUTS / "2node-tier.layout", kernel="6.1")
    k, nb, t = boot(m, "6.1")
    nb.spin(t, VPN, N, 1500)
    assert nb.counters["numa_pte_updates"] == 0
    assert on_node0(k, t) == 0


def test_mode_3_balances_the_top_tier_too(tier612) -> None:
    """With bit 1 set, top-tier pages are marked as in mode 1 (a task on node 0 has none
    to move, but they fault); slow-tier pages still go through the hot-page rule."""
    k, nb, t = boot(tier612, mode=3)
    nb.spin(t, VPN, N, 300)
    assert on_node0(k, t) == N
    assert promotion(nb).vmstat("pgpromote_success") == N


@pytest.mark.parametrize("value", [-1, 1 << 31])
def test_bad_rate_limit_is_refused(tier612, value: int) -> None:
    nb = numab(Kernel(tier612, "6.12"))
    with pytest.raises(KnobError) as e:
        nb.set_knob("promote_rate_limit_MBps", value)
    assert e.value.errno == 22


def test_modes_0_to_4(tier612) -> None:
    nb = numab(Kernel(tier612, "6.12"))
    for mode in range(5):
        nb.set_mode(mode)
    with pytest.raises(KnobError):
        nb.set_mode(5)


def test_script_files(tier612) -> None:
    text = ("cat /proc/sys/kernel/numa_balancing_promote_rate_limit_MBps; "
            "write /proc/sys/kernel/numa_balancing_promote_rate_limit_MBps 12; "
            "cat /proc/sys/kernel/numa_balancing_promote_rate_limit_MBps; "
            "write /proc/sys/kernel/numa_balancing_promote_rate_limit_MBps x; "
            "write /proc/sys/kernel/numa_balancing 3; cat /proc/sys/kernel/numa_balancing; "
            "cat /sys/devices/system/node/node0/vmstat; "
            "vmstat pgpromote_candidate_nrl")
    out = [r.text for r in run_script(text.replace("; ", "\n"), tier612, kernel="6.12")]
    assert out.count("| 65536") == 1 and "| 12" in out and "| 3" in out
    assert any("errno=EINVAL" in x for x in out)
    assert "| pgpromote_success 0" in out and "| pgpromote_candidate 0" in out
    assert "vmstat pgpromote_candidate_nrl=-1" in out  # 6.13+; Debian's 6.12.95 lacks it


def test_yaml_kernel_block_and_cli(tmp_path, capsys) -> None:
    from numasim.cli import main

    lay = str(LAYOUTS / "2node-tier.layout")
    script = ("fork; set_mempolicy bind 1; mmap 256 at=0x40000000; touch 0 256; "
              "set_mempolicy default; spin 0 256 1500; query 0 256 counts; vmstat_delta "
              "pgpromote_success; endfork")
    knobs = ["--balancing-knob", "scan_delay_ms=100", "--balancing-knob",
             "scan_period_min_ms=100"]
    assert main(["script", "-m", lay, "--numa-balancing", "2", *knobs, "-e",
                 "vmstat_mark; " + script]) == 0
    moved = int(re.search(r"pgpromote_success=(\d+)", capsys.readouterr().out).group(1))
    assert moved >= 256 - 30  # all but the pages still in the per-CPU LRU batch
    assert main(["script", "-m", lay, "--numa-balancing", "2", *knobs, "--balancing-knob",
                 "hot_threshold_ms=0", "-e", "vmstat_mark; " + script]) == 0
    assert "node1=256" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["script", "-m", lay, "--numa-balancing", "7", "-e", "cpu 0"])
    assert e.value.code == 2
    assert "numa_balancing mode" in capsys.readouterr().err


def test_yaml_kernel_block(tmp_path) -> None:
    from numasim.errors import NumasimError
    from numasim.topology.loaders import yaml_machine

    doc = ("nodes:\n  - {id: 0, memory: 1GiB, cpus: [0]}\n  - {id: 1, memory: 1GiB, cpus: [1]}\n"
           "kernel:\n  numa_balancing: 2\n  numa_balancing_hot_threshold_ms: 500\n"
           "  numa_balancing_promote_rate_limit_MBps: 30\n")
    f = tmp_path / "m.yaml"
    f.write_text(doc)
    m = yaml_machine.load(str(f))
    nb = numab(Kernel(m, "6.12"))
    assert nb.mode == 2 and nb.knobs["hot_threshold_ms"] == 500
    assert promotion(nb).rate_limit_mbps == 30
    f.write_text(doc.replace("_MBps: 30", "_MBps: -3"))
    with pytest.raises(NumasimError) as e:
        yaml_machine.load(str(f))
    assert "promote_rate_limit_MBps" in str(e.value)


@pytest.mark.parametrize("recording", sorted(SECOND.glob("10[0-9]_*.txt")),
                         ids=lambda p: p.stem)
def test_second_boot_recordings_within_the_tolerances(recording: Path) -> None:
    """The second boots of 100-101 pass the same comparison as the first."""
    from numasim.mm.script.check import check_lines, check_vmstat, lru_batch_of

    scen, kern = recording.name.removesuffix(".txt").split(".", 1)
    text = (DATA / "oracle" / f"{scen}.txt").read_text()
    m = layout.load(LAYOUTS / "2node-tier.layout", kernel=kern)
    got = [r.text for r in run_script(text, m, kernel=kern)]
    exp = [x for x in recording.read_text().splitlines() if not x.startswith("## ")]
    batch = lru_batch_of(kern)
    diffs = check_lines(exp, got, lru_batch=batch) + check_vmstat(exp, got, lru_batch=batch)
    assert not diffs, "\n".join(map(str, diffs[:4]))


def test_promotion_into_a_full_node_demotes_its_cold_pages(tier612) -> None:
    """The TPP loop: node 0 is full of cold pages, node 1 holds 8192 hot ones.  A promotion
    that finds node 0 below HIGH fails and wakes node 0's kswapd, which in tiering mode
    reclaims up to PROMO -- with ``demotion_enabled`` by demoting node 0's coldest pages to
    node 1 -- so the next scan's promotions succeed: the hot set ends on node 0."""
    from numasim.mm.vmscan import reclaim

    k = Kernel(tier612, "6.12")
    k.demotion_enabled = True
    nb = numab(k)
    for name, value in {**KNOBS, "scan_period_max_ms": 1600}.items():
        nb.set_knob(name, value)
    t = k.new_process(0)
    hot, cold, n_hot, n_cold = VPN, 2 * VPN, 8192, 125000
    set_mempolicy(k, t, 2, UserMask.of({1}), 1025)
    k.mmap(t, n_hot, vpn=hot)
    k.touch(t, hot, n_hot, write=True)
    set_mempolicy(k, t, 0, None, 0)
    k.mmap(t, n_cold, vpn=cold)
    k.touch(t, cold, n_cold, write=True)  # node 0 full (the rest spills to node 1)
    assert reclaim(k).counters["pgdemote_kswapd"] == 0
    nb.set_mode(2)
    nb.spin(t, hot, n_hot, 1500)
    assert sum(k.page_node(t, hot + i) == 0 for i in range(n_hot)) == n_hot
    demoted = reclaim(k).counters["pgdemote_kswapd"]
    assert 0 < demoted < n_hot  # the rest came from the guest's reclaimable boot memory
    assert all(k.page_node(t, cold + i) == 1 for i in range(demoted))  # coldest first


def test_timed_run_settings_accept_tiering(tier612) -> None:
    """``numasim run`` / ``numasim.run()`` reach mode 2 and the rate limit through
    numasim.kernel_settings; bad values are one ConfigError naming the field."""
    from numasim.errors import ConfigError
    from numasim.kernel_settings import describe, with_kernel_settings

    m = with_kernel_settings(tier612, numa_balancing=2,
                             knobs={"promote_rate_limit_MBps": 100, "hot_threshold_ms": 0})
    d = describe(m)
    assert d["numa_balancing"] == 2
    assert d["balancing_knobs"]["promote_rate_limit_MBps"] == 100
    nb = numab(Kernel(m, "6.12"))
    assert nb.mode == 2 and promotion(nb).rate_limit_mbps == 100
    for bad in ({"numa_balancing": 5}, {"knobs": {"promote_rate_limit_MBps": -1}},
                {"knobs": {"promote_rate_limit_MBps": 1 << 31}}):
        with pytest.raises(ConfigError) as e:
            with_kernel_settings(tier612, **bad)
        assert "numa_balancing" in str(e.value) or "promote_rate_limit_MBps" in str(e.value)
