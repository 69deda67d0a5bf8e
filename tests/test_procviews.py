"""numasim.mm.procviews: /proc/PID/numa_maps, the numastat tool's tables, and the
explanation of one page's placement.  numa_maps is checked against the real 6.1 and 6.12
kernels (oracle recordings), numastat against the real numastat binary fed the same
counters, explain_page against where Kernel.touch then puts the page."""

from __future__ import annotations

import contextlib
import json
import re
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from numasim.bitmap import parse_list
from numasim.mm import state as S
from numasim.mm import syscalls as sc
from numasim.mm.constants import (
    MPOL_BIND,
    MPOL_F_NUMA_BALANCING,
    MPOL_F_RELATIVE_NODES,
    MPOL_F_STATIC_NODES,
    MPOL_INTERLEAVE,
    MPOL_MF_MOVE,
    MPOL_MF_STRICT,
    MPOL_PREFERRED,
    NUMASTAT_NAMES,
)
from numasim.mm.kernel import Kernel, TaskKilled
from numasim.mm.nodemask import UserMask
from numasim.mm.procviews import explain_page, numa_maps, numa_maps_line, numastat_table
from numasim.mm.vmscan import reclaim
from numasim.topology.loaders import layout

DATA = Path(__file__).parent / "data"
PV = DATA / "procviews"
LAYOUTS = DATA / "topologies" / "layouts"
MODES = {"default": 0, "preferred": 1, "bind": 2, "interleave": 3, "local": 4,
         "preferred_many": 5, "weighted_interleave": 6}

_MACHINES: dict = {}


def machine(name: str, gen: str = "6.12"):
    key = (name, "6.1" if gen == "6.1" else "6.12")
    if key not in _MACHINES:
        _MACHINES[key] = layout.load(LAYOUTS / f"{name}.layout", kernel=key[1])
    return _MACHINES[key]


# ------------------------------------------------------- a small scenario player
def replay(script: str, gen: str) -> list[str]:
    """Play the oracle commands these recordings use (cpu, mmap, region, touch, mbind,
    set_mempolicy, fork/endfork, numa_maps; others are ignored) and print numa_maps as the
    oracle's probe does: ``numa_maps region=R page=P | <line>``."""
    k = Kernel(machine("4node-asym", gen), gen)
    stack = [k.new_process(0)]
    regions: list[tuple[int, int]] = []
    cur = 0
    out: list[str] = []

    def policy(words):
        mode, nodes, flags, rest = MODES[words[0]], set(), 0, words[1:]
        if rest and rest[0][0].isdigit():
            nodes, rest = set(parse_list(rest[0])), rest[1:]
        for w in rest:
            mode |= {"static": MPOL_F_STATIC_NODES, "relative": MPOL_F_RELATIVE_NODES,
                     "balancing": MPOL_F_NUMA_BALANCING}.get(w, 0)
            flags |= {"strict": MPOL_MF_STRICT, "move": MPOL_MF_MOVE}.get(w, 0)
        return mode, UserMask.of(nodes), flags

    for raw in script.splitlines():
        w = raw.split("#")[0].split()
        if not w:
            continue
        t = stack[-1]
        if w[0] == "cpu":
            k.set_cpu(t, int(w[1]))
        elif w[0] == "mmap":
            n, kind, at, path, shared = int(w[1]), "anon", 0, "", True
            for x in w[2:]:
                if x in ("anon", "shared", "memfd"):
                    kind = x
                elif x.startswith("at="):
                    at = int(x[3:], 0)
                elif x.startswith("file="):
                    kind, path = "file", x[5:]
                elif x == "private":
                    shared = False
            if kind in ("anon", "shared"):
                k.mmap(t, n, kind=kind, vpn=at >> 12)
            else:
                f = (k.open_file(f"r{len(regions)}", "memfd", n) if kind == "memfd" else
                     k.open_file(path, "ramfs" if "/ramfs/" in path else "tmpfs", n))
                k.mmap(t, n, kind="file", file=f, vpn=at >> 12, shared=shared)
            regions.append((at, n))
            cur = len(regions) - 1
        elif w[0] == "region":
            cur = int(w[1])
        elif w[0] == "touch":
            k.touch(t, (regions[cur][0] >> 12) + int(w[1]), int(w[2]), write="read" not in w)
        elif w[0] == "mbind":
            mode, mask, flags = policy(w[3:])
            with contextlib.suppress(OSError):
                sc.mbind(k, t, regions[cur][0] + int(w[1]) * 4096, int(w[2]) * 4096, mode,
                         mask, 1025, flags)
        elif w[0] == "set_mempolicy":
            mode, mask, _ = policy(w[1:])
            with contextlib.suppress(OSError):
                sc.set_mempolicy(k, t, mode, mask, 1025)
        elif w[0] == "fork":
            stack.append(k.fork(t))
        elif w[0] == "endfork":
            k.exit(stack.pop())
        elif w[0] == "numa_maps":
            out.append("> numa_maps")
            for v in k.mm_vmas(k.task_mm(t)):
                va = int(k.ks.vmas[v, S.V_START]) << 12
                for i, (a, n) in enumerate(regions):
                    if a <= va < a + n * 4096:
                        out.append(f"numa_maps region={i} page={(va - a) // 4096} | "
                                   f"{numa_maps_line(k, t, v)}")
                        break
    return out


def recorded(name: str) -> list[str]:
    return [ln for ln in (PV / name).read_text().splitlines()
            if ln == "> numa_maps" or ln.startswith("numa_maps region=")]


def without(line: str, *fields: str) -> str:
    for f in fields:
        line = re.sub(rf" {f}=\d+", "", line)
    return line


@pytest.mark.parametrize("gen", ["6.1", "6.12"])
def test_numa_maps_matches_real_kernel(gen):
    """Every numa_maps line of a scenario exercising every mode, flag and mapping kind, a
    split VMA, shared memory and fork, as Linux printed it -- except, on 6.12, ``active``
    for pages still in the CPU's LRU batch (numasim keeps no per-CPU LRU batches)."""
    mine = replay((PV / "numa_maps_formats.txt").read_text(), gen)
    real = recorded(f"expected_numa_maps_formats.{gen}.txt")
    assert len(mine) == len(real) == 189
    drop = ("active",) if gen == "6.12" else ()
    for a, b in zip(real, mine, strict=True):
        assert without(b, *drop) == without(a, *drop)


def test_numa_maps_dirty_of_read_pages():
    """Pages only read are counted as mapped=, written ones as dirty= (PG_DIRTY)."""
    mine = replay((PV / "numa_maps_formats.txt").read_text(), "6.1")
    real = recorded("expected_numa_maps_formats.6.1.txt")
    assert mine == real


def test_numa_maps_03_bind():
    """The oracle's own example: four VMAs, bind and task policies, EIO then MOVE."""
    script = (PV / "03_bind.txt").read_text()
    for gen in ("6.1", "6.12"):
        mine = [ln for ln in replay(script, gen) if ln.startswith("numa_maps")]
        assert mine == recorded(f"expected_03_bind.{gen}.txt")[1:]
        assert mine[0] == ("numa_maps region=0 page=0 | 40000000 bind:1 anon=32 dirty=32 "
                           "active=0 N1=32 kernelpagesize_kB=4")


def test_numa_maps_empty_and_zero_page():
    k = Kernel(machine("4node-asym"))
    t = k.new_process(0)
    k.mmap(t, 4, vpn=0x50000)
    assert numa_maps(k, t) == ["50000000 default"]
    k.touch(t, 0x50000, 4, write=False)                   # zero page: not counted
    assert numa_maps(k, t) == ["50000000 default"]
    sc.set_mempolicy(k, t, MPOL_PREFERRED, UserMask.of({2}), 1025)
    k.touch(t, 0x50001, 2)
    assert numa_maps(k, t) == ["50000000 prefer:2 anon=2 dirty=2 active=0 N2=2 "
                               "kernelpagesize_kB=4"]


# ------------------------------------------------------------------ numastat
NT = PV / "numastat_tool"


def counters():
    return np.array(json.loads((NT / "numastat_counters.json").read_text()), dtype=np.int64)


@pytest.mark.parametrize("name,kw", [
    ("legacy_0", dict(mode="legacy")), ("mb_0", dict(mode="mb")),
    ("mb_1", dict(mode="mb", compress=True)), ("legacy_w50", dict(mode="legacy",
                                                                 screen_width=50)),
    ("mb_w50", dict(mode="mb", screen_width=50)), ("meminfo_0", dict(mode="meminfo")),
    ("meminfo_1", dict(mode="meminfo", compress=True)),
    ("meminfo_c_w40", dict(mode="meminfo", compress=True, screen_width=40)),
])
def test_numastat_matches_real_tool(name, kw):
    """The real numastat (numactl 2.0.16) run over a fake /sys/devices/system/node holding
    these counters and meminfo rows prints exactly this."""
    k = Kernel(machine("4node-asym"))
    mem = json.loads((NT / "meminfo_kB.json").read_text())
    out = numastat_table(k, counters=counters(), meminfo_kB=mem, **kw)
    assert out == (NT / f"{name}.txt").read_text()


def test_numastat_live_counts_and_meminfo():
    k = Kernel(machine("4node-asym"))
    t = k.new_process(0)
    k.premap_pgtables(t, [0x40000])
    k.mmap(t, 300, vpn=0x40000)
    sc.mbind(k, t, 0x40000 << 12, 300 << 12, MPOL_BIND, UserMask.of({3}), 1025, 0)
    k.touch(t, 0x40000, 300)
    legacy = numastat_table(k).splitlines()
    assert legacy[0] == " " * 16 + "".join(f"{f'node{n}':>16}" for n in range(4))
    assert legacy[1] == f"{'numa_hit':<16}{0:>16}{0:>16}{0:>16}{300:>16}"
    assert legacy[6] == f"{'other_node':<16}{0:>16}{0:>16}{0:>16}{300:>16}"
    mem = numastat_table(k, mode="meminfo", nodes=[3]).splitlines()
    assert mem[0] == "" and mem[1] == "Per-node system memory usage (in MBs):"
    assert mem[2] == " " * 16 + f"{'Node 3':>16}{'Total':>16}"
    used = 300 + dict(k.machine.boot_used).get(3, 0)  # the booted guest's own pages count too
    assert dict(k.machine.boot_used).get(3, 0) > 0
    assert mem[6] == f"{'MemUsed':<16}{used * 4096 / 2**20:>16.2f}{used * 4096 / 2**20:>16.2f}"
    assert mem[8] == f"{'AnonPages':<16}{1.17:>16.2f}{1.17:>16.2f}"


# --------------------------------------------------------------- explain_page
def _fresh(name="4node-asym", gen="6.12", cpu=0):
    k = Kernel(machine(name, gen), gen)
    t = k.new_process(cpu)
    k.premap_pgtables(t, [0x40000])
    return k, t


def test_explain_bind_remote_and_text():
    k, t = _fresh()
    k.mmap(t, 8, vpn=0x40000)
    sc.mbind(k, t, 0x40000 << 12, 8 << 12, MPOL_BIND, UserMask.of({2, 3}), 1025, 0)
    ex = explain_page(k, t, 0x40000 << 12)
    assert (ex.data.scope, ex.data.nid, ex.data.mask, ex.final_node) == ("vma", 0, [2, 3], 2)
    assert [c.node for c in ex.data.passes[0].checks] == [2]
    assert ex.pgtables == []                              # premapped
    text = ex.text()
    assert "page (GFP_HIGHUSER_MOVABLE): vma policy bind:2-3 (MPOL_BIND, nodes 2-3)" in text
    assert "  start node: the CPU's node (0); nodemask: 2-3 (the policy's nodes)" in text
    assert "    node 2 DMA32: free 62407 > low 294 + reserve 0 -> use it" in text
    assert "Result: the page goes to node 2." in text
    k.touch(t, 0x40000, 1)
    assert k.page_node(t, 0x40000) == 2


def test_explain_fallback_at_low_mark_and_slow_path():
    """The preferred node's zone at exactly LOW + reserve fails the fast path (strict >), so
    the page goes to the next node of the preferred node's zonelist; with every zone at MIN
    the slow path finds the first zone above MIN."""
    k, t = _fresh()
    k.mmap(t, 8, vpn=0x40000)
    sc.mbind(k, t, 0x40000 << 12, 8 << 12, MPOL_PREFERRED, UserMask.of({2}), 1025, 0)
    ks = k.ks
    z2 = int(k.ks.derived.zones_of(2)[0].index)
    ks.zones[z2, S.Z_FREE] = ks.zones[z2, S.Z_LOW] + ks.zones[z2, S.Z_RES + 3]
    ex = explain_page(k, t, 0x40000 << 12)
    checks = ex.data.passes[0].checks
    assert [(c.node, c.passed) for c in checks] == [(2, False), (3, True)]
    assert ex.final_node == 3 and ex.data.counters == {3: {"numa_miss": 1, "other_node": 1},
                                                       2: {"numa_foreign": 1}}
    for z in range(ks.zones.shape[0]):
        ks.zones[z, S.Z_FREE] = ks.zones[z, S.Z_MIN] + ks.zones[z, S.Z_RES + 3]
    ks.zones[z2 + 0, S.Z_FREE] += 0
    z1 = int(k.ks.derived.zones_of(1)[0].index)
    ks.zones[z1, S.Z_FREE] += 1
    ex = explain_page(k, t, 0x40000 << 12)
    assert [p.mark_name for p in ex.data.passes] == ["low", "min"]
    assert ex.final_node == 1                             # order 2 3 1 0: node 1 above MIN
    before = ks.numastat.copy()
    k.touch(t, 0x40000, 1)
    assert k.page_node(t, 0x40000) == 1
    assert (ks.numastat - before)[1].tolist() == [0, 1, 0, 0, 0, 1]


def test_explain_interleave_offset_and_counter():
    k, t = _fresh()
    sc.set_mempolicy(k, t, MPOL_INTERLEAVE, UserMask.of({1, 2, 3}), 1025)
    k.mmap(t, 8, vpn=0x40000)
    ex = explain_page(k, t, (0x40000 + 5) << 12)
    assert (ex.data.scope, ex.data.il_how, ex.data.ilx) == ("task", "offset", 0x40005)
    assert ex.final_node == (1, 2, 3)[0x40005 % 3]
    assert 0x40005 % 3 == 0
    assert "interleave index 262149 mod 3 nodes = 0 -> node 1" in ex.text()
    f = k.open_file("/mnt/ramfs/x", "ramfs", 4)
    k.mmap(t, 4, kind="file", file=f, vpn=0x80000)
    ex = explain_page(k, t, 0x80000 << 12)                # page cache: the task's counter
    assert ex.data.il_how == "counter"
    assert [tr.what for tr in ex.pgtables] == ["PMD table page", "PTE table page"]
    assert [tr.node for tr in ex.pgtables] == [1, 2]      # tables take counter turns first
    assert ex.final_node == 3
    k.touch(t, 0x80000, 1)
    assert k.page_node(t, 0x80000) == 3


def test_explain_shared_policy_scope_and_existing_page():
    k, t = _fresh()
    k.mmap(t, 8, kind="shared", vpn=0x40000)
    sc.mbind(k, t, 0x40000 << 12, 4 << 12, MPOL_BIND, UserMask.of({3}), 1025, 0)
    ex = explain_page(k, t, 0x40001 << 12)
    assert (ex.data.scope, ex.final_node) == ("shared", 3)
    k.touch(t, 0x40001, 1)
    ex = explain_page(k, t, 0x40001 << 12)
    assert ex.fault == "present" and ex.hypothetical and ex.existing_node == 3
    assert "The page is on node 3 now." in ex.text()
    assert explain_page(k, t, 0x40005 << 12).data.scope == "default"


def test_explain_cpuset_and_2_6_7_bind_order():
    k, t = _fresh(cpu=3)
    sc.cpuset_set_mems(k, [t], {0, 1})
    k.mmap(t, 4, vpn=0x40000)
    ex = explain_page(k, t, 0x40000 << 12)
    assert ex.cpuset == [0, 1] and ex.data.mask == [0, 1] and ex.final_node == 1
    k, t = _fresh(gen="2.6.7", cpu=3)
    k.mmap(t, 4, vpn=0x40000)
    sc.mbind(k, t, 0x40000 << 12, 4 << 12, MPOL_BIND, UserMask.of({1, 3}), 1025, 0)
    ex = explain_page(k, t, 0x40000 << 12)
    assert ex.final_node == 1                             # 2.6.7: ascending ids, not nearest
    k.touch(t, 0x40000, 1)
    assert k.page_node(t, 0x40000) == 1


def test_explain_oom_victim_and_no_vma():
    k = Kernel(machine("4node-asym"))
    k.new_process(0)                                      # task 0: never an OOM victim
    t = k.new_process(0)
    k.premap_pgtables(t, [0x40000])
    k.mmap(t, 4, vpn=0x40000)
    sc.mbind(k, t, 0x40000 << 12, 4 << 12, MPOL_BIND, UserMask.of({2}), 1025, 0)
    ks = k.ks
    z2 = int(k.ks.derived.zones_of(2)[0].index)
    ks.zones[z2, S.Z_FREE] = ks.zones[z2, S.Z_MIN]
    reclaim(k).boot_cache.clear()  # nothing left to reclaim either
    ex = explain_page(k, t, 0x40000 << 12)
    assert ex.oom and ex.final_node is None and ex.data.result == "oom"
    assert [p.mark_name for p in ex.data.passes] == ["low", "min"]
    retry = ex.oom_retry
    assert retry.passes[-1].label == "OOM victim, nodemask dropped"
    assert retry.node == 0                                # the victim ignores the nodemask
    assert "the OOM killer runs" in ex.text()
    with pytest.raises(TaskKilled):
        k.touch(t, 0x40000, 1)
    assert explain_page(k, k.new_process(0), 0x40000 << 12).fault == "segv"


FLAGS = st.sampled_from([0, MPOL_F_STATIC_NODES, MPOL_F_RELATIVE_NODES,
                         MPOL_F_NUMA_BALANCING])


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_explanation_predicts_touch(data):
    """For a random machine, kernel generation, CPU, cpuset, task and VMA policy, mapping
    kind, earlier faults and zones pushed to their watermarks, the node (and the numastat
    increments) explain_page predicts is where Kernel.touch puts the page."""
    name = data.draw(st.sampled_from(["4node-asym", "4node-flat", "4node-normal",
                                      "3node-memonly", "8node", "memless"]), label="machine")
    gen = data.draw(st.sampled_from(["6.12", "6.1", "2.6.7"]), label="kernel")
    m = machine(name, gen)
    k = Kernel(m, gen)
    t = k.new_process(data.draw(st.sampled_from(list(m.cpus)), label="cpu"))
    if data.draw(st.booleans()):
        sc.cpuset_set_mems(k, [t], data.draw(st.sets(st.sampled_from(list(m.memory_nodes)),
                                                     min_size=1), label="cpuset"))
    ids = list(m.node_ids)
    with contextlib.suppress(OSError):
        sc.set_mempolicy(k, t, data.draw(st.integers(0, 6)) | data.draw(FLAGS),
                         UserMask.of(data.draw(st.sets(st.sampled_from(ids), max_size=3))),
                         1025)
    kind = data.draw(st.sampled_from(["anon", "shared", "tmpfs", "ramfs", "ramfs-private"]))
    n = 64
    vpn = data.draw(st.sampled_from([0x40000, 0x401ec, (1 << 35) + 3]), label="vpn")
    if kind in ("anon", "shared"):
        k.mmap(t, n, kind=kind, vpn=vpn)
    else:
        f = k.open_file(f"/mnt/{kind}/x", "ramfs" if kind.startswith("ramfs") else "tmpfs", n)
        k.mmap(t, n, kind="file", file=f, vpn=vpn, shared=kind != "ramfs-private")
    if data.draw(st.booleans()):
        a = data.draw(st.integers(0, n - 1))
        with contextlib.suppress(OSError):
            sc.mbind(k, t, (vpn + a) << 12, data.draw(st.integers(1, n - a)) << 12,
                     data.draw(st.integers(0, 6)) | data.draw(FLAGS),
                     UserMask.of(data.draw(st.sets(st.sampled_from(ids), max_size=3))), 1025,
                     0)
    for _ in range(data.draw(st.integers(0, 3))):
        k.touch(t, vpn + data.draw(st.integers(0, n - 1)), 1, write=data.draw(st.booleans()))
    ks = k.ks
    for z in range(ks.zones.shape[0]):
        if data.draw(st.booleans()):
            base = data.draw(st.sampled_from([S.Z_MIN, S.Z_LOW]))
            res = int(ks.zones[z, S.Z_RES + data.draw(st.sampled_from([2, 3]))])
            ks.zones[z, S.Z_FREE] = max(0, int(ks.zones[z, base]) + res
                                        + data.draw(st.integers(-2, 2)))
    reclaim(k).boot_cache.clear()  # explain_page does not model reclaim: nothing to reclaim
    off = data.draw(st.integers(0, n - 1))
    write = data.draw(st.booleans())
    ex = explain_page(k, t, (vpn + off) << 12, write=write)
    note(ex.text())
    before = ks.numastat.copy()
    try:
        k.touch(t, vpn + off, 1, write=write)
    except TaskKilled:
        assert ex.oom
        return
    assert not ex.oom
    if ex.data is not None and not ex.hypothetical:
        assert k.page_node(t, vpn + off) == ex.final_node
    expected = np.zeros_like(before)
    for node, d in ex.counters.items():
        for name_, v in d.items():
            expected[node, NUMASTAT_NAMES.index(name_)] += v
    assert (ks.numastat - before == expected).all()


def _alarm(*_):
    raise TimeoutError("Kernel.touch did not return")


def test_touch_returns_when_memory_is_exhausted():
    """An OOM victim that cannot get a page even from the reserves dies (an earlier
    kernel.py looped here for ever); explain_page says the OOM killer runs."""
    k, t = _fresh()
    k.mmap(t, 4, vpn=0x40000)
    k.touch(t, 0x40000, 1)
    k.ks.zones[:, S.Z_FREE] = 0
    reclaim(k).boot_cache.clear()  # nothing left to reclaim either
    ex = explain_page(k, t, 0x40001 << 12)
    assert ex.oom and ex.oom_retry.node is None
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        with pytest.raises(TaskKilled):
            k.touch(t, 0x40001, 1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_numa_maps_file_names():
    k = Kernel(machine("4node-asym"))
    t = k.new_process(0)
    f = k.open_file("/mnt/tmpfs/my file=x", "tmpfs", 2)
    k.mmap(t, 2, kind="file", file=f, vpn=0x50000)
    m = k.open_file("buf", "memfd", 2)
    k.mmap(t, 2, kind="file", file=m, vpn=0x60000)
    k.mmap(t, 2, kind="shared", vpn=0x70000)
    assert numa_maps(k, t) == ["50000000 default file=/mnt/tmpfs/my\\040file\\075x",
                               "60000000 default file=/memfd:buf\\040(deleted)",
                               "70000000 default file=/dev/zero\\040(deleted)"]
    assert numa_maps(k, t, names={f.obj: "/mnt/tmpfs/gone (deleted)"})[0] == \
        "50000000 default file=/mnt/tmpfs/gone\\040(deleted)"
