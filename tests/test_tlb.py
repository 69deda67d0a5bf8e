"""The per-CPU TLB and its page walks (numasim.machine.tlb; issue 11), off by default.

Analytic counts on a small TLB (16 entries, 4-way: 64 KiB of 4 KiB pages), where page tables
live, THP's 512-fold reach, the engines' agreement with walks on, and bad input.
"""

from __future__ import annotations

import numpy as np
import pytest

from numasim.api import run
from numasim.cli import main
from numasim.errors import ConfigError
from numasim.machine.tlb import tlb_lookup
from numasim.spec import tlb_params
from numasim.topology.loaders import load_machine
from numasim.workloads.model import Phase, Region, Workload

MIB = 1 << 20
SMALL = {"entries": 16, "ways": 4}
TOLERANCE = 0.05  # as tests/test_engines_agree.py


def _gups(size: int, count: int, policy: str | None = None, threads: int = 1,
          numactl: list[str] | None = None) -> Workload:
    return Workload(name="g", threads=threads, cpus=list(range(threads)),
                    numactl=numactl or [], regions=[Region("a", size, policy=policy)],
                    phases=[Phase("init", "init"), Phase("gups", "gups", count=count)])


def test_lookup_hits_fills_lru_and_misses_after_a_shootdown():
    tags = np.full((1, 1, 2), -1, dtype=np.int64)
    meta = np.zeros((1, 1, 2, 2), dtype=np.int64)
    clock = np.zeros(1, dtype=np.int64)
    assert tlb_lookup(tags, meta, clock, 0, 10, 5) == 0  # first touch fills
    assert tlb_lookup(tags, meta, clock, 0, 10, 5) == 1
    assert tlb_lookup(tags, meta, clock, 0, 11, 6) == 0
    assert tlb_lookup(tags, meta, clock, 0, 10, 5) == 1  # 10 is now the most recent
    assert tlb_lookup(tags, meta, clock, 0, 12, 7) == 0  # evicts 11, the LRU way
    assert tlb_lookup(tags, meta, clock, 0, 10, 5) == 1
    assert tlb_lookup(tags, meta, clock, 0, 11, 6) == 0
    # the page behind 10 migrated (new page row): its entry was shot down
    assert tlb_lookup(tags, meta, clock, 0, 10, 9) == 0
    assert tlb_lookup(tags, meta, clock, 0, 10, 9) == 1


def test_random_over_a_large_region_misses_almost_every_access():
    pages, n = 1024, 4000  # 4 MiB: 64 times the TLB's reach
    d = run(load_machine("clx-2s"), _gups(pages * 4096, n), cpu={"tlb": SMALL}).to_dict()
    t = d["tlb"]
    gups_misses = t["tlb_misses"] - pages  # the init sweep misses once per page
    assert n * (1 - 16 / pages) * 0.97 <= gups_misses <= n
    assert t["page_walks"] == t["tlb_misses"]
    assert d["threads"][0]["tlb_misses"] == t["tlb_misses"]


def test_random_within_the_reach_misses_only_the_first_touch():
    pages = 32  # 128 KiB: two pages per set of a 64-entry 4-way TLB
    d = run(load_machine("clx-2s"), _gups(pages * 4096, 4000),
            cpu={"tlb": {"entries": 64, "ways": 4}}).to_dict()
    assert d["tlb"]["tlb_misses"] == pages
    walks_off = run(load_machine("clx-2s"), _gups(pages * 4096, 4000),
                    cpu={"tlb": {"entries": 64, "ways": 4, "walk": False}}).to_dict()
    assert walks_off["tlb"]["tlb_misses"] == pages and walks_off["tlb"]["page_walks"] == 0


def test_thp_needs_512_times_fewer_entries():
    wl = Workload(name="sweep", threads=1, cpus=[0], regions=[Region("a", 8 * MIB)],
                  phases=[Phase("init", "init")])
    m = load_machine("clx-2s")
    small = run(m, wl, cpu={"tlb": SMALL}).to_dict()["tlb"]
    d = run(m, wl, cpu={"tlb": SMALL}, thp="always").to_dict()
    huge = d["tlb"]
    nthp = d["kernel_mm"]["thp_vmstat"]["thp_fault_alloc"]
    assert nthp >= 3  # the region is not 2 MiB aligned: its unaligned ends get 4 KiB pages
    assert small["tlb_misses"] == 2048
    # one 2 MiB entry per huge page (its PMD line walked), one per 4 KiB page elsewhere
    assert huge["tlb_misses"] == nthp + (2048 - 512 * nthp)
    assert huge["page_walks"] == huge["tlb_misses"]
    huge_only = small["tlb_misses"] - huge["tlb_misses"]
    assert huge_only == nthp * 511  # 512 misses became 1 for each huge page


def test_page_tables_follow_the_task_policy_and_remote_walks_cost():
    """A VMA policy (mbind) places the data on node 1 but the page tables under the task's
    policy (pgtable_alloc: GFP_KERNEL, local node 0); numactl --membind=1 puts both on 1."""
    m = load_machine("clx-2s")
    size, n = 4 * MIB, 3000
    vma = run(m, _gups(size, n, policy="--membind=1"), cpu={"tlb": SMALL}).to_dict()
    task = run(m, _gups(size, n, numactl=["--membind=1"]), cpu={"tlb": SMALL}).to_dict()
    assert vma["pages_per_node"]["a"]["1"] == task["pages_per_node"]["a"]["1"] == 1024
    wv, wt = vma["tlb"]["walk_lines_per_node"], task["tlb"]["walk_lines_per_node"]
    assert wv["1"] == 0 and wv["0"] == vma["tlb"]["page_walks"] > n * 0.9
    assert wt["0"] == 0 and wt["1"] == task["tlb"]["page_walks"]
    assert task["tlb"]["walk_ns_mean"] > 1.4 * vma["tlb"]["walk_ns_mean"]
    gv = vma["measured"]["figure"]["value"]
    gt = task["measured"]["figure"]["value"]
    assert gt < 0.9 * gv  # remote walks slow GUPS


def test_engines_agree_on_gups_with_walks():
    m = load_machine("clx-2s")
    wl = _gups(2 * MIB, 6000, threads=4)
    both = {e: run(m, wl, engine=e, cpu={"tlb": SMALL}).to_dict(host=False)
            for e in ("fast", "exact")}
    f, x = both["fast"], both["exact"]
    assert f["tlb"]["tlb_misses"] == x["tlb"]["tlb_misses"]
    assert f["tlb"]["walk_lines_per_node"] == x["tlb"]["walk_lines_per_node"]
    for key in (("measured", "figure", "value"), ("tlb", "walk_ns_mean"),
                ("measured", "latency_ns_mean")):
        a, b = f, x
        for k in key:
            a, b = a[k], b[k]
        assert abs(a - b) <= TOLERANCE * b, (key, a, b)


@pytest.mark.parametrize("bad", [{"entries": 100, "ways": 12}, {"entries": "lots"},
                                 {"walk": "maybe"}, {"size": 4}, {"ways": 0}])
def test_bad_tlb_values_name_the_field(bad):
    with pytest.raises(ConfigError) as e:
        tlb_params(bad)
    assert "cpu.tlb" in str(e.value.problems[0].field)


def test_cli_tlb_option(capsys):
    assert main(["numactl", "gups", "--machine", "clx-2s", "--size", "1MiB", "--count", "2000",
                 "--tlb", "entries=16,ways=4", "--no-progress"]) == 0
    assert "tlb         16 entries 4-way" in capsys.readouterr().out
    assert main(["numactl", "gups", "--machine", "clx-2s", "--size", "1MiB",
                 "--tlb", "entries=15,ways=4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cpu.tlb" in err and "Traceback" not in err


def test_workload_yaml_cpu_tlb(tmp_path, capsys):
    f = tmp_path / "w.yaml"
    f.write_text("name: w\ncpu: {tlb: {entries: 16, ways: 4}}\nregions: [{name: a, size: 1MiB}]\n"
                 "phases:\n  - {kernel: init}\n")
    assert main(["run", str(f), "--machine", "clx-2s", "--no-progress"]) == 0
    assert "256 misses" in capsys.readouterr().out
    f.write_text("name: w\ncpu: {tlb: {entrys: 16}}\nregions: [{name: a, size: 1MiB}]\n"
                 "phases:\n  - {kernel: init}\n")
    assert main(["run", str(f), "--machine", "clx-2s", "--no-progress"]) == 2
    assert "entrys" in capsys.readouterr().err


def test_experiment_cpu_tlb(tmp_path):
    from numasim.experiments.expand import load_experiment, validate_file

    text = ("experiment: e\nmachine: oracle-2node\nworkload: {kernel: gups, size: 1MiB}\n"
            "cpu: {tlb: {entries: 16, ways: 4}}\n")
    p = tmp_path / "e.yaml"
    p.write_text(text)
    c = load_experiment(p).points[0].config
    assert c["cpu"]["tlb"] == {"entries": 16, "ways": 4, "walk": True}
    p.write_text(text.replace("ways: 4", "ways: 5"))
    problems = [pr.render() for pr in validate_file(p)]
    assert any("cpu.tlb" in r and "multiple of ways" in r for r in problems), problems
    # without a tlb key the resolved config is as before (no tlb entry at all)
    p.write_text(text.replace("cpu: {tlb: {entries: 16, ways: 4}}\n", ""))
    assert "tlb" not in load_experiment(p).points[0].config["cpu"]
