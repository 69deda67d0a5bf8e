"""Conservation under memory tiering: seeded random kv/zipf runs (moving hot sets, writes,
several phases) on a DRAM + CXL machine with promotion (numa_balancing=2) and demotion
(kswapd, direct reclaim) both at work.  After the run every page is accounted for (the
kernel-wide check of tests/test_vmscan.py), every page of the workload's table is mapped
once on exactly one node, and the counters equal the pages that moved:

    pages in DRAM at the end = pages first touch put there + pgpromote_success
                               - (pgdemote_kswapd + pgdemote_direct)

(first touch's share comes from the same run stopped after its initialisation, which the
scanner's delay keeps free of balancing), with ``numa_pages_migrated == pgpromote_success``
(tiering mode migrates only promotions) and ``pgmigrate_success`` = promotions + demotions.
Machine: tests/data/machines/tier-tiny.yaml (16 MiB DRAM + 64 MiB CXL, demotion on)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from test_vmscan import check_conservation

from numasim.kernel_settings import with_kernel_settings
from numasim.machine.sim import Simulation
from numasim.mm import state as S
from numasim.mm.vmstat import vmstat_read
from numasim.spec import build_spec
from numasim.topology.loaders import load_machine
from numasim.wiring import build_program
from numasim.workloads.model import Phase, Region, Workload

MACHINE = Path(__file__).parent / "data" / "machines" / "tier-tiny.yaml"
MIB = 1 << 20


@pytest.fixture(scope="module")
def tiny():
    return load_machine(str(MACHINE))


def random_workload(seed: int, init_only: bool = False) -> Workload:
    """A table of 20-32 MiB (larger than the 16 MiB DRAM node), first touched by two
    threads, then 2-3 random zipf/kv phases (theta, value size, shift, writes)."""
    rng = random.Random(seed)
    size = rng.choice((20, 24, 28, 32)) * MIB
    phases = [Phase("init", "init", ["t"])]
    for i in range(rng.randint(2, 3)):
        kern = rng.choice(("kv", "kv", "zipf"))
        phases.append(Phase(f"p{i}", kern, ["t"], theta=rng.choice((0.6, 0.9, 0.99, 1.2)),
                            count=rng.randint(4000, 12000) * (1 if kern == "kv" else 32),
                            repeat=rng.randint(1, 3), shift=rng.choice((0, 0.1, 0.3, MIB)),
                            value=rng.choice((1024, 4096, 8192)),
                            write_fraction=rng.choice((0.0, 0.05, 0.3)),
                            split=rng.choice(("parallel", "each"))))
    return Workload(name=f"random-{seed}", threads=2, regions=[Region("t", size)],
                    phases=phases[:1] if init_only else phases)


def timed(machine, wl: Workload, knobs: dict) -> Simulation:
    m = with_kernel_settings(machine, numa_balancing=2, knobs=knobs)
    return Simulation(build_program(build_spec(m, wl, engine="fast", seed=11))).run("fast")


def table_pages(sim: Simulation) -> np.ndarray:
    """The page rows mapping the table, every slot of it."""
    ks = sim.ks
    row = ks.regions[sim.regions["t"].rid]
    base, n = int(row[S.R_PT]), int(row[S.R_END] - row[S.R_START])
    return ks.pt_page[base: base + n]


@pytest.mark.parametrize("seed", [1, 4])
def test_every_page_accounted_for_and_counters_match_the_moves(tiny, seed):
    knobs = {"scan_delay_ms": 20, "scan_period_min_ms": 4, "scan_size_mb": 4}
    sim = timed(tiny, random_workload(seed), knobs)
    check_conservation(sim.k)
    pt = table_pages(sim)
    assert (pt >= 0).all(), "a page of the table lost (or swapped: this machine has no swap)"
    assert np.unique(pt).size == pt.size, "two table slots map one page"
    nodes = sim.ks.pages[pt, S.PG_NODE]
    assert set(np.unique(nodes)) <= {0, 1}
    k = sim.k
    promoted = vmstat_read(k, "pgpromote_success")
    demoted = vmstat_read(k, "pgdemote_kswapd") + vmstat_read(k, "pgdemote_direct")
    assert promoted > 0 and demoted > 0, "both directions must be exercised"
    assert vmstat_read(k, "numa_pages_migrated") == promoted
    assert vmstat_read(k, "pgmigrate_success") == promoted + demoted
    first = timed(tiny, random_workload(seed, init_only=True), knobs)
    assert vmstat_read(first.k, "pgpromote_success") == 0  # the scan delay: init untouched
    dram0 = int((first.ks.pages[table_pages(first), S.PG_NODE] == 0).sum())
    assert int((nodes == 0).sum()) == dram0 + promoted - demoted
