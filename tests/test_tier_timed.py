"""Memory tiering in time: promotion (``numa_balancing`` 2) in both timing engines.

The machine is the oracle's ``oracle-2node-tier`` (node 1: CPU-less, 3.75x slower and 10x
narrower by HMAT, so Linux 6.12 puts it in a lower tier).  One thread on node 0 reads a table
first touched on node 1 (region bound to node 1, then rebound to both nodes with
``--balancing``: ``MPOL_F_NUMA_BALANCING`` gives the policy MOF|MORON, so the scanner visits
the VMA and the pages may follow the reading CPU).  With tiering on, the scanner marks the
slow-tier pages, the reads take hinting faults at the simulated times both engines share, and
hot pages are promoted to node 0 -- at most ``promote_rate_limit_MBps`` x 256 pages a window
of a little over a second, since node 0 (512 MiB) never has the 1 GiB free that would let
``pgdat_free_space_enough`` skip the limit.
"""

from __future__ import annotations

import json

import pytest

from numasim.api import run
from numasim.cli import main as cli_main
from numasim.topology.loaders import load_machine
from numasim.workloads.model import Phase, Region, Workload

KNOBS = {"scan_delay_ms": 1, "scan_period_min_ms": 4, "scan_size_mb": 1}


@pytest.fixture(scope="module")
def tier():
    return load_machine("oracle-2node-tier")


def slow_table(size: int, repeat: int) -> Workload:
    """First touch on the slow node 1, then reads by CPU 0 (node 0)."""
    return Workload(name="tier", threads=1, cpus=[0],
                    regions=[Region("a", size, policy="--membind=1")],
                    phases=[Phase("init", "init"),
                            Phase("rebind", "mbind", policy="--balancing --membind=0,1"),
                            Phase("read", "stride", stride=64, repeat=repeat)])


def test_hot_pages_are_promoted_in_time(tier):
    wl = slow_table(4 << 20, 40)
    off = run(tier, wl).to_dict(host=False)
    assert off["pages_per_node"]["a"] == {"0": 0, "1": 1024}  # no balancing: they stay
    r = run(tier, wl, numa_balancing=2, balancing_knobs=KNOBS).to_dict(host=False)
    nb = r["numa_balancing"]
    vm = nb["vmstat"]
    assert r["kernel_mm"]["numa_balancing"] == 2
    assert r["pages_per_node"]["a"] == {"0": 1024, "1": 0}
    assert vm["pgpromote_success"] == vm["numa_pages_migrated"] == nb["pages_migrated"] == 1024
    assert vm["pgpromote_candidate"] >= 1024 and vm["pgdemote_kswapd"] == 0
    rows = nb["intervals"]
    assert rows[0]["pages_per_node"] == {0: 0, 1: 1024}  # on the slow node at first
    first = next(x for x in rows if x["pages_migrated"])
    assert first["t_ms"] > r["phases"][0]["seconds"] * 1e3  # not before the reads began
    late = [x["local_fraction"] for x in rows
            if x["t_ms"] > max(y["t_ms"] for y in rows if y["pages_migrated"]) + 4
            and x["local_fraction"] is not None]
    assert late and min(late) == 1.0
    # the reads got faster: the read phase ends sooner than without promotion
    assert r["phases"][2]["seconds"] < 0.7 * off["phases"][2]["seconds"]


@pytest.mark.parametrize("mbps, promoted", [(1, 256), (2, 512)])
def test_the_rate_limit_bounds_promotion(tier, mbps, promoted):
    """A run shorter than the rate limit's window promotes exactly one window's budget
    (MBps x 256 pages); every hot fault beyond it is still a candidate."""
    r = run(tier, slow_table(4 << 20, 40), numa_balancing=2,
            balancing_knobs=dict(KNOBS, promote_rate_limit_MBps=mbps)).to_dict(host=False)
    vm = r["numa_balancing"]["vmstat"]
    assert r["runtime_s"] < 1.0  # inside the first window
    assert vm["pgpromote_success"] == vm["numa_pages_migrated"] == promoted
    assert r["pages_per_node"]["a"] == {"0": promoted, "1": 1024 - promoted}
    assert vm["pgpromote_candidate"] > 1024


def test_engines_agree_while_pages_are_promoted(tier):
    """Fast and exact: the same promotions at the same ticks; time within
    tests/test_numab_timed.py's 5 % (the slow node's narrow controller queues the single
    thread's own writes slightly differently in the two engines, balancing or not)."""
    wl = slow_table(1 << 20, 20)
    fast = run(tier, wl, engine="fast", numa_balancing=2,
               balancing_knobs=KNOBS).to_dict(host=False)
    exact = run(tier, wl, engine="exact", numa_balancing=2,
                balancing_knobs=KNOBS).to_dict(host=False)
    nf, ne = fast["numa_balancing"], exact["numa_balancing"]
    assert nf["vmstat"]["pgpromote_success"] == 256
    assert fast["pages_per_node"] == exact["pages_per_node"] == {"a": {"0": 256, "1": 0}}
    assert nf["vmstat"] == ne["vmstat"]
    for xf, xe in zip(nf["intervals"], ne["intervals"], strict=True):
        for k in ("hint_faults", "pages_migrated", "pages_per_node", "t_ms"):
            assert xf[k] == xe[k], k
    for key in ("bandwidth_GBps", "runtime_s"):
        assert fast[key] == pytest.approx(exact[key], rel=0.05), key
    assert fast["latency_ns"]["mean"] == pytest.approx(exact["latency_ns"]["mean"], rel=0.05)


def test_shipped_workload_from_the_command_line(capsys):
    code = cli_main(["run", "tier-promote", "--machine", "oracle-2node-tier",
                     "--numa-balancing", "2", "--json", "--no-progress", "--no-host-time",
                     "--balancing-knob", "scan_delay_ms=1", "--balancing-knob",
                     "scan_period_min_ms=4", "--balancing-knob", "scan_size_mb=1",
                     "--balancing-knob", "promote_rate_limit_MBps=1"])
    assert code in (0, None)
    d = json.loads(capsys.readouterr().out)
    assert d["numa_balancing"]["vmstat"]["pgpromote_success"] == 256
    assert d["pages_per_node"]["table"] == {"0": 256, "1": 768}


SMALL_TIER = """\
# oracle-2node-tier (numasim/data/configs/machines) with a 32 MiB node 0, zones derived
name: small-tier
cpu_clock: 2GHz
nodes:
  - {id: 0, cpus: 0-1, memory: 32MiB, kind: DRAM}
  - {id: 1, cpus: [], memory: 512MiB, kind: DRAM}
distance: [[10, 20], [20, 10]]
latency: [[80ns, 300ns], [125ns, 300ns]]
bandwidth: [[107.3741824GB/s, 10.73741824GB/s], [53.6870912GB/s, 10.73741824GB/s]]
"""


@pytest.mark.parametrize("demote", [False, True])
def test_promotion_into_a_full_dram_node_demotes_in_time(tmp_path, demote):
    """Node 0 nearly full of a cold array: a promotion finds node 0 below its high
    watermark and wakes its kswapd (the promotion path runs it at once, in the hinting
    fault).  With ``kernel: demotion_enabled: true`` kswapd demotes the cold pages to node
    1 and the hot table gets in; without it (no swap either) it cannot reclaim anonymous
    memory and only the pages node 0 still had room for are promoted."""
    f = tmp_path / "small-tier.yaml"
    f.write_text(SMALL_TIER + ("kernel:\n  demotion_enabled: true\n" if demote else ""))
    wl = Workload(name="full", threads=1, cpus=[0],
                  regions=[Region("fill", 30 << 20), Region("a", 4 << 20, policy="--membind=1")],
                  phases=[Phase("init", "init"),
                          Phase("rebind", "mbind", regions=["a"],
                                policy="--balancing --membind=0,1"),
                          Phase("read", "stride", regions=["a"], stride=64, repeat=40)])
    r = run(load_machine(str(f)), wl, numa_balancing=2,
            balancing_knobs=KNOBS).to_dict(host=False)
    vm = r["numa_balancing"]["vmstat"]
    pages = r["pages_per_node"]
    assert vm["pgpromote_candidate"] == 1024
    assert pages["a"]["0"] == vm["pgpromote_success"]
    assert pages["fill"]["1"] == vm["pgdemote_kswapd"]  # nothing lost or duplicated
    assert sum(pages["fill"].values()) == 7680 and sum(pages["a"].values()) == 1024
    if demote:
        assert vm["pgdemote_kswapd"] >= 1000 and vm["pgpromote_success"] >= 1000
    else:
        assert vm["pgdemote_kswapd"] == 0 and 0 < vm["pgpromote_success"] < 512


@pytest.mark.parametrize("text, flagged", [("--balancing --membind=0,1", True),
                                           ("--membind=0,1", False),
                                           ("--balancing --interleave=all", False)])
def test_a_policy_text_gives_mbind_the_balancing_flag_only_with_membind(tier, text, flagged):
    """numactl applies --balancing to --membind only (numa_set_membind_balancing); a region's
    or mbind phase's policy does the same, so other modes never see EINVAL for it."""
    from numasim.mm.constants import MPOL_F_NUMA_BALANCING
    from numasim.spec import memory_policy

    opts = memory_policy(tier, text, file=None, field="policy")
    assert bool(opts.mbind_mode() & MPOL_F_NUMA_BALANCING) == flagged
    assert opts.mbind_mode() & ~MPOL_F_NUMA_BALANCING == opts.policy
