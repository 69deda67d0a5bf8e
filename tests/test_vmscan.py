"""Reclaim (numasim.mm.vmscan): LRU aging, kswapd and direct reclaim, demotion instead of
swap, swap to a RAM disk, and the conservation of pages over a long random run.

The recorded real-kernel behaviour (97-99 in tests/data/oracle) is checked by
test_oracle_scenarios.py; these tests pin the mechanisms with small machines."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from numasim.mm import state as S
from numasim.mm import syscalls as SC
from numasim.mm.constants import MPOL_BIND, MPOL_MF_MOVE
from numasim.mm.kernel import Kernel, TaskKilled
from numasim.mm.nodemask import UserMask
from numasim.mm.script import run_script
from numasim.mm.vmscan import BOOT_RECLAIMABLE, LRU_ACTIVE, lru_sizes, reclaim
from numasim.topology.loaders import layout
from numasim.topology.model import PAGE_SIZE

# node 0 DRAM, node 1 a CPU-less node in a lower tier (HMAT), 128 MiB each
TIER_LAYOUT = Path(__file__).parent / "data" / "machines" / "tier-128m.layout"
BASE = 0x40000  # vpn of the first mapping


@pytest.fixture(scope="module")
def tier_machine():
    return layout.load(TIER_LAYOUT, kernel="6.12")


def bind(k: Kernel, t: int, vpn: int, n: int, node: int, move: bool = False) -> None:
    SC.mbind(k, t, vpn * PAGE_SIZE, n * PAGE_SIZE, MPOL_BIND, UserMask(1 << node), 65,
             MPOL_MF_MOVE if move else 0)


def node_counts(k: Kernel, r: int) -> dict[int, int]:
    ks = k.ks
    base, n = int(ks.regions[r, S.R_PT]), int(ks.regions[r, S.R_END] - ks.regions[r, S.R_START])
    pgs = ks.pt_page[base: base + n]
    out: dict[int, int] = {}
    for nid in ks.pages[pgs[pgs >= 0], S.PG_NODE]:
        out[int(nid)] = out.get(int(nid), 0) + 1
    out[-2] = int((pgs == S.PT_SWAP).sum())
    return out


def test_demotion_takes_the_oldest_pages(tier_machine) -> None:
    """A BIND {0} allocation that does not fit wakes kswapd; with demotion on the first
    pages touched (the inactive tail) move to node 1 and the bound range fits."""
    k = Kernel(tier_machine, "6.12")
    k.demotion_enabled = True
    t = k.new_process(0)
    free0 = k.ks.node_free_pages(0)
    a = k.mmap(t, free0 - 2000, vpn=BASE)
    k.touch(t, BASE, free0 - 2000)
    b = k.mmap(t, 6000, vpn=BASE + (1 << 20))
    bind(k, t, BASE + (1 << 20), 6000, 0)
    k.touch(t, BASE + (1 << 20), 6000)
    assert node_counts(k, b).get(0) == 6000
    ca = node_counts(k, a)
    assert ca.get(1, 0) > 0
    r = reclaim(k)
    assert r.counters["pgdemote_kswapd"] + r.counters["pgdemote_direct"] == ca[1]
    # the oldest first: the demoted pages are a prefix of the first mapping
    ks = k.ks
    base = int(ks.regions[a, S.R_PT])
    nodes = ks.pages[ks.pt_page[base: base + free0 - 2000], S.PG_NODE]
    first0 = int(np.flatnonzero(nodes == 0)[0])
    assert (nodes[:first0] == 1).all() and (nodes[first0:] == 0).all()
    assert r.pgdat_balanced(0)  # kswapd left node 0 above its high watermark


def test_young_pages_get_a_second_chance(tier_machine) -> None:
    """Pages touched again after a reclaim pass rotated them are activated, not demoted:
    the other pages go first."""
    k = Kernel(tier_machine, "6.12")
    k.demotion_enabled = True
    r = reclaim(k)
    t = k.new_process(0)
    k.mmap(t, 4000, vpn=BASE)
    k.touch(t, BASE, 4000)
    r.boot_cache.clear()  # only the mapping's pages to reclaim
    # one pass over the tail: every page was young, all rotate with PG_referenced set
    assert r.shrink_folio_list(0, r._inactive_tail(0, 4000), "direct") == 0
    k.touch(t, BASE, 100)  # the first 100 pages are used again
    assert r.shrink_node(0, 1000, "direct") == 1000
    slots = int(k.ks.regions[0, S.R_PT])
    nodes = k.ks.pages[k.ks.pt_page[slots: slots + 4000], S.PG_NODE]
    assert (nodes[:100] == 0).all() and (nodes[100:1100] == 1).all()
    pgs = k.ks.pt_page[slots: slots + 100]
    assert ((r.flags[pgs] & LRU_ACTIVE) != 0).all()
    assert r.counters["pgactivate"] == 100


def test_no_target_no_swap_means_oom(tier_machine) -> None:
    """Without a demotion target (6.1: one tier) and without swap, anonymous pages are
    not reclaimable: a BIND allocation that does not fit ends in the OOM killer."""
    k = Kernel(tier_machine, "6.1")
    k.demotion_enabled = True
    t = k.new_process(0)
    n = k.ks.node_free_pages(0) + 5000  # more than the boot's reclaimable slab
    k.mmap(t, n, vpn=BASE)
    bind(k, t, BASE, n, 0)
    with pytest.raises(TaskKilled):
        k.touch(t, BASE, n)
    assert reclaim(k).counters["pgdemote_direct"] == 0


def test_swap_when_demotion_is_off(tier_machine) -> None:
    """demotion_enabled 0 and a swap device: reclaim writes the oldest pages to swap."""
    k = Kernel(tier_machine, "6.12")
    r = reclaim(k)
    r.swap_pages = 8192
    t = k.new_process(0)
    free0 = k.ks.node_free_pages(0)
    k.mmap(t, free0 + 7000, vpn=BASE)
    bind(k, t, BASE, free0 + 7000, 0)
    k.touch(t, BASE, free0 + 7000)
    c = node_counts(k, 0)
    assert c[-2] == k.ks.vmstat[S.VM_SWPOUT] == r.swap_used > 3000
    assert c.get(1, 0) == 0 and r.counters["pgdemote_kswapd"] == 0
    assert r.counters["pgsteal_kswapd"] + r.counters["pgsteal_direct"] == c[-2]


def test_spill_does_not_wake_kswapd(tier_machine) -> None:
    """Default policy: node 0 runs down to LOW and the rest goes to node 1 in the fast
    path; no zone failed everywhere, so nothing is demoted (97)."""
    k = Kernel(tier_machine, "6.12")
    k.demotion_enabled = True
    t = k.new_process(0)
    n = k.ks.node_free_pages(0) + 5000
    k.mmap(t, n, vpn=BASE)
    k.touch(t, BASE, n)
    r = reclaim(k)
    assert r.counters["pgdemote_kswapd"] == r.counters["pgdemote_direct"] == 0
    assert node_counts(k, 0)[1] > 5000


def test_swap_header_and_vmstat_names(tier_machine) -> None:
    """``#@ swap SIZE`` gives the boot swap; the reclaim counters read by Linux name
    (pgdemote_khugepaged only exists on 6.12)."""
    text = "#@ swap 16M\nvmstat pgscan_kswapd pgsteal_direct pgdemote_khugepaged pswpout\n"
    for kern, khp in (("6.12", "0"), ("6.1", "-1")):
        got = [r.text for r in run_script(text, tier_machine, kernel=kern)]
        assert f"vmstat pgscan_kswapd=0 pgsteal_direct=0 pgdemote_khugepaged={khp} pswpout=0" \
            in got


# ------------------------------------------------------------------ conservation
def check_conservation(k: Kernel) -> None:
    """Every page accounted for: per zone, managed = free + pages in use + what the boot
    still holds; the LRU lists hold exactly the resident user pages; every PTE points at a
    live page and every live anonymous page is mapped as often as its mapcount says;
    reclaim's counters agree with the pages that moved."""
    ks = k.ks
    r = reclaim(k)
    n = int(ks.sysvars[S.SV_NEXT_PAGE])
    pages = ks.pages[:n]
    live = pages[:, S.PG_ZONE] >= 0
    for z in range(ks.zones.shape[0]):
        inz = live & (pages[:, S.PG_ZONE] == z)
        used = int((1 << pages[inz, S.PG_ORDER]).sum())
        assert ks.zones[z, S.Z_FREE] + used + ks.boot_held[z] == ks.zones[z, S.Z_MANAGED], \
            f"zone {z}"
    for nid, used in k.machine.boot_used:  # what the boot held, minus what reclaim freed
        held = int(ks.boot_held[ks.zones[:, S.Z_NODE] == nid].sum())
        assert held == used - (int(used * BOOT_RECLAIMABLE) - r.boot_cache.get(nid, 0))
    user = live & np.isin(pages[:, S.PG_KIND], (S.PGK_ANON, S.PGK_SHMEM))
    on_lru = np.concatenate([r.lru_pages(nid) for nid in k.machine.memory_nodes])
    assert sorted(on_lru.tolist()) == np.flatnonzero(user).tolist()
    lru_total = sum(sum(lru_sizes(k, nid).values()) for nid in k.machine.memory_nodes)
    assert lru_total == int((1 << pages[user, S.PG_ORDER]).sum())
    # page tables of live regions: no dangling entry, mapcounts right
    refs = np.zeros(n, dtype=np.int64)
    for reg in np.flatnonzero(ks.regions[:, S.R_ALIVE] == 1):
        base = int(ks.regions[reg, S.R_PT])
        pt = ks.pt_page[base: base + int(ks.regions[reg, S.R_END] - ks.regions[reg, S.R_START])]
        present = pt[pt >= 0]
        assert live[present].all(), "a PTE points at a freed page"
        np.add.at(refs, present, 1)
    anon = live & (pages[:, S.PG_KIND] == S.PGK_ANON) & (pages[:, S.PG_ORDER] == 0)
    assert (refs[anon] == pages[anon, S.PG_MAPCOUNT]).all()
    assert (refs[anon] > 0).all(), "an anonymous page nobody maps"
    c = r.counters
    demoted = c["pgdemote_kswapd"] + c["pgdemote_direct"]
    assert c["pgsteal_kswapd"] + c["pgsteal_direct"] == demoted + r.swapped
    assert ks.vmstat[S.VM_PGMIGRATE_SUCCESS] >= demoted
    assert r.swap_used <= r.swap_pages
    assert len(set(r.brd_pages)) == len(r.brd_pages)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_conservation_over_a_random_run(tier_machine, seed: int) -> None:
    """A long seeded random run -- mmap, touch, munmap, mbind MOVE, fork/exit, BIND
    pressure, demotion switched on and off, a swap device -- keeps every page accounted
    for after every step."""
    rng = random.Random(seed)
    k = Kernel(tier_machine, "6.12")
    r = reclaim(k)
    r.swap_pages = 4096
    tasks = [k.new_process(0)]
    maps: list[tuple[int, int, int]] = []  # (task, vpn, npages)
    nxt = BASE
    for _step in range(60):
        op = rng.choice(("mmap", "touch", "touch", "pressure", "munmap", "move", "fork",
                         "exit", "demotion"))
        t = rng.choice(tasks)
        try:
            if op == "mmap" or not maps:
                npg = rng.randrange(2000, 14000)
                k.mmap(t, npg, vpn=nxt)
                maps.append((t, nxt, npg))
                nxt += 1 << 14
            elif op == "touch":
                tt, vpn, npg = rng.choice(maps)
                off = rng.randrange(npg)
                k.touch(tt, vpn + off, rng.randrange(1, npg - off + 1), write=rng.random() < .8)
            elif op == "pressure":  # a new range bound to one node, larger than its free
                node = rng.choice((0, 0, 1))
                npg = k.ks.node_free_pages(node) + rng.randrange(500, 5000)
                k.mmap(t, npg, vpn=nxt)
                maps.append((t, nxt, npg))
                nxt += 1 << 16
                bind(k, t, nxt - (1 << 16), npg, node)
                k.touch(t, nxt - (1 << 16), npg)
            elif op == "munmap":
                tt, vpn, npg = maps.pop(rng.randrange(len(maps)))
                k.munmap(k.task_mm(tt), vpn, npg)
            elif op == "move":
                tt, vpn, npg = rng.choice(maps)
                bind(k, tt, vpn, npg, rng.choice((0, 1)), move=True)
            elif op == "fork" and len(tasks) < 4:
                child = k.fork(t)
                tasks.append(child)
                maps += [(child, v, n) for (p, v, n) in maps if p == t]
            elif op == "exit" and len(tasks) > 1:
                victim = tasks.pop(rng.randrange(1, len(tasks)))
                k.exit(victim)
                maps = [m for m in maps if m[0] != victim]
            elif op == "demotion":
                k.demotion_enabled = not k.demotion_enabled
        except TaskKilled as e:
            if e.task in tasks:
                tasks.remove(e.task)
            maps = [m for m in maps if m[0] in tasks and k.alive(m[0])]
            if not tasks:
                tasks.append(k.new_process(0))
        except OSError:
            pass
        maps = [m for m in maps if k.alive(m[0])]
        tasks = [x for x in tasks if k.alive(x)] or [k.new_process(0)]
        check_conservation(k)
    c = r.counters
    assert c["pgdemote_kswapd"] + c["pgdemote_direct"] + r.swapped > 0, "no reclaim happened"
