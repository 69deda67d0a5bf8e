"""Memory tiering over time (numasim.machine.tiering): the ``tiering`` section of a timed run,
its per-interval series, the hot set's definition, the summary line and the run figure's
panel.  Machine: tests/data/machines/tier-tiny.yaml (16 MiB DRAM + 64 MiB CXL, demotion on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from numasim.api import run
from numasim.machine.tiering import HOT_MASS, hot_ranks
from numasim.topology.loaders import load_machine
from numasim.workloads import gen as G

MACHINE = Path(__file__).parent / "data" / "machines" / "tier-tiny.yaml"
KNOBS = {"scan_delay_ms": 1, "scan_period_min_ms": 4, "scan_size_mb": 4}


@pytest.fixture(scope="module")
def tiny():
    return load_machine(MACHINE)


@pytest.fixture(scope="module")
def tiered(tiny):
    """A 24 MiB kv table (1.5x the DRAM tier) read by two threads with tiering on."""
    return run(tiny, "kv", threads=2, size="24MiB", count=40_000, numa_balancing=2,
               balancing_knobs=KNOBS).to_dict(host=False)


def test_hot_ranks_hold_the_mass_the_generator_gives_them():
    """hot_ranks(n, theta) is the smallest K whose ranks get HOT_MASS of the draws: counted
    on the generator's own stream, within sampling error."""
    n = 2000
    k = hot_ranks(n, 0.99)
    op = np.zeros(G.O_NCOLS, dtype=np.int64)
    op[[G.O_KIND, G.O_HI, G.O_COUNT, G.O_REPS, G.O_SEED]] = (G.OP_ZIPF, n, 100_000, 1, 7)
    opf = np.array([(0.99,) + G.zipf_constants(n, 0.99)])
    ts = np.zeros((1, G.TS_NCOLS), dtype=np.int64)
    G.start_thread(ts, 0, op[None], 0, 1)
    buf = np.zeros((1, 100_000, G.B_NCOLS), dtype=np.int64)
    got = G.fill_batch(op[None], opf, ts, np.array([3], dtype=np.uint64), 0,
                       np.zeros((1, 3), dtype=np.int64), buf, 0)
    hot = {G.permute(j, n, 7) for j in range(k)}
    share = np.isin(buf[0, :got, G.B_LINE], list(hot)).mean()
    assert abs(share - HOT_MASS) < 0.01
    # a flatter law, a larger hot set: theta 1/2 gives P(rank <= K) ~ sqrt(K/n), K ~ 0.64 n
    assert abs(hot_ranks(n, 0.5) - 0.64 * n) < 0.03 * n


def test_tiering_follows_the_hot_set_and_counts_every_move(tiered):
    """With tiering on, the hot set's share in DRAM rises from its first-touch share; the
    per-interval promotions and demotions add up to the run's counters; every interval's
    pages per tier add up to the table."""
    ti = tiered["tiering"]
    assert [t["nodes"] for t in ti["tiers"]] == [[0], [1]] and ti["top_tier_nodes"] == [0]
    rows = ti["intervals"]
    res = [r["hot_residency"] for r in rows if r["hot_residency"] is not None]
    assert res[0] < 0.75 and ti["hot_residency"] > 0.85 and ti["hot_residency"] > res[0] + 0.2
    vm = tiered["numa_balancing"]["vmstat"]
    assert sum(r["promotions"] for r in rows) == ti["promotions"] == vm["pgpromote_success"] > 0
    assert sum(r["demotions"] for r in rows) == ti["demotions"] == \
        vm["pgdemote_kswapd"] + vm["pgdemote_direct"] > 0
    table = 24 << 20 >> 12
    for r in rows[1:]:
        assert sum(r["pages_per_tier"].values()) == table
    assert sum(ti["pages_per_tier"].values()) == table
    assert ti["hot_set"] == {"mass": HOT_MASS, "pages": ti["hot_set"]["pages"]}
    assert 0 < ti["hot_set"]["pages"] < table


def test_without_tiering_the_hot_set_stays_where_first_touch_put_it(tiny, tiered):
    """First touch alone: no promotions, and the hot set's DRAM share is the share of the
    table first touch left in DRAM (the hot items are scattered over the table)."""
    d = run(tiny, "kv", threads=2, size="24MiB", count=2000).to_dict(host=False)
    ti = d["tiering"]
    assert ti["promotions"] == 0 and ti["intervals"] == []
    dram = ti["pages_per_tier"][ti["tiers"][0]["name"]] / sum(ti["pages_per_tier"].values())
    assert abs(ti["hot_residency"] - dram) < 0.1
    assert ti["hot_residency"] < tiered["tiering"]["hot_residency"] - 0.2


def test_engines_give_the_same_shape(tiny):
    """The exact engine's tiering section has the fast engine's keys, row by row."""
    kw = dict(threads=1, size="2MiB", count=300, numa_balancing=2, balancing_knobs=KNOBS)
    f = run(tiny, "kv", **kw).to_dict(host=False)["tiering"]
    e = run(tiny, "kv", engine="exact", **kw).to_dict(host=False)["tiering"]
    assert set(f) == set(e) and f["tiers"] == e["tiers"]
    assert f["intervals"] and e["intervals"]
    assert set(f["intervals"][0]) == set(e["intervals"][0])
    assert f["hot_set"] == e["hot_set"]


def test_summary_line_and_figure(tiny, tmp_path):
    """The summary says pages per tier, moves and the residency; the run figure gains the
    tiering row (two more panels)."""
    r = run(tiny, "kv", threads=1, size="24MiB", count=4000, numa_balancing=2,
            balancing_knobs=KNOBS)
    tiered = r.to_dict(host=False)
    from numasim.machine.report import summary
    from numasim.report.run_plot import plot_run

    line = next(x for x in summary(r).splitlines() if x.strip().startswith("tiering"))
    ti = tiered["tiering"]
    assert f"{ti['promotions']} promoted, {ti['demotions']} demoted" in line
    assert f"{ti['hot_residency']:.1%} in the top tier" in line
    fig = plot_run(tiered, tmp_path / "run.png")
    titles = [a.get_title() for a in fig.axes]
    assert any("pages per tier" in t for t in titles)
    assert any("promotions and demotions" in t for t in titles)


def test_machines_with_one_tier_have_no_section():
    d = run("clx-2s", "kv", size="1MiB", count=100).to_dict(host=False)
    assert "tiering" not in d


def test_experiment_numa_balancing_takes_the_tiering_mode(tmp_path):
    """An experiment's numa_balancing: a mode (2: tiering), or the mode as the
    ``numa_balancing`` key beside the knobs; a bad mode is one problem naming the field."""
    from numasim.experiments.expand import validate_file
    from numasim.experiments.params import check_numa_balancing

    assert check_numa_balancing(2) == {"numa_balancing": 2}
    assert check_numa_balancing({"numa_balancing": 2, "promote_rate_limit_MBps": 16}) == \
        {"numa_balancing": 2, "promote_rate_limit_MBps": 16}
    f = tmp_path / "e.yaml"
    f.write_text("experiment: e\nmachine: cxl-small\nworkload: {kernel: kv, size: 1MiB}\n"
                 "numa_balancing: {numa_balancing: 7, scan_delay_ms: 10}\n")
    problems = validate_file(f)
    assert len(problems) == 1 and "numa_balancing" in (problems[0].field or "") + \
        problems[0].message and "1, 2 (memory tiering) or 3" in problems[0].message
