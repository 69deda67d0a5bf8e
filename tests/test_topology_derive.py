"""Analytic/semantic: what numasim derives at boot equals what the real kernels printed.

The dumps in ``tests/data/topologies/oracle-info/`` were taken inside Debian's 6.1 and 6.12
kernels booted on the oracle's QEMU layouts (see that folder's SOURCES.md).  From the same
layouts numasim must print the same ``Fallback order for Node N`` lines and ``Policy zone``,
and -- from the same managed page counts -- the same watermarks and lowmem protection.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from numasim.topology.derive import (
    boot_state,
    calculate_min_free_kbytes,
    derive,
    setup_per_zone_lowmem_reserve,
    setup_per_zone_wmarks,
)
from numasim.topology.loaders import layout as layout_loader
from numasim.topology.model import ZoneSpec, ZoneType

DATA = Path(__file__).parent / "data" / "topologies"
DUMPS = sorted((DATA / "oracle-info").glob("*.linux-*.txt"))
WATERMARKS = Path(__file__).parent / "data" / "oracle-watermarks"


def dump_id(p: Path) -> str:
    return p.name.removesuffix(".txt")


def parse_dump(path: Path) -> dict:
    text = path.read_text()
    fallback = {int(m.group(1)): [int(x) for x in m.group(2).split()]
                for m in re.finditer(r"Fallback order for Node (\d+): ([\d ]+)", text)}
    pz = re.search(r"Policy zone: (\w+)", text).group(1)
    zones = []
    for m in re.finditer(r"Node (\d+), zone\s+(\w+)\n(.*?)(?=\nNode |\n###|\Z)", text, re.S):
        body = m.group(3)

        def field(name, body=body):
            mm = re.search(rf"^\s+{name}\s+(\d+)", body, re.M)
            return int(mm.group(1)) if mm else None

        prot = re.search(r"protection: \(([\d, ]+)\)", body)
        zones.append({"node": int(m.group(1)), "zone": m.group(2), "min": field("min"),
                      "low": field("low"), "high": field("high"),
                      "present": field("present"), "managed": field("managed"),
                      "spanned": field("spanned"),
                      "protection": tuple(int(x) for x in prot.group(1).split(","))
                      if prot else None})
    mfk = int(re.search(r"min_free_kbytes: (\d+)", text).group(1))
    return {"fallback": fallback, "policy_zone": pz, "zones": zones, "min_free_kbytes": mfk}


@pytest.mark.parametrize("dump", DUMPS, ids=dump_id)
def test_fallback_order_and_policy_zone_match_the_kernel(dump):
    layout_name, kernel = dump.name.split(".linux-")
    kernel = kernel.removesuffix(".txt")
    machine = layout_loader.load(DATA / "layouts" / f"{layout_name}.layout", kernel=kernel)
    want = parse_dump(dump)
    d = derive(machine, kernel=kernel)
    assert {n: list(o) for n, o in d.fallback_order.items()} == want["fallback"]
    assert d.policy_zone.kname == want["policy_zone"]
    log = d.boot_log()
    for n, order in want["fallback"].items():
        assert f"Fallback order for Node {n}: " + " ".join(map(str, order)) + " " in log


@pytest.mark.parametrize("dump", DUMPS, ids=dump_id)
def test_zone_layout_matches_the_kernel(dump):
    """Spanned and present pages of every populated zone, from the layout alone."""
    layout_name, kernel = dump.name.split(".linux-")
    machine = layout_loader.load(DATA / "layouts" / f"{layout_name}.layout",
                                 kernel=kernel.removesuffix(".txt"))
    ours = {(z.node, z.name): (z.spanned, z.present) for z in boot_state(machine).zones}
    theirs = {(z["node"], z["zone"]): (z["spanned"], z["present"])
              for z in parse_dump(dump)["zones"] if z["present"]}
    assert ours == theirs


def recomputed(path: Path) -> list[dict]:
    """``zone ...`` lines of a scenario that rewrote vm sysctls: the kernel's recomputation."""
    blocks, cur = [], None
    for line in path.read_text().splitlines():
        if line.startswith("> "):
            cur = {"cmd": line[2:], "zones": []}
            blocks.append(cur)
        elif line.startswith("zone ") and cur is not None:
            kv = dict(x.split("=", 1) for x in line.split()[1:])
            cur["zones"].append(kv)
    return blocks


def test_watermarks_equal_the_kernel_recomputed_from_the_same_managed_pages():
    """On 4node-asym (Linux 6.12), after writing min_free_kbytes, watermark_scale_factor and
    lowmem_reserve_ratio the kernel recomputes every zone's marks from the managed pages it has
    then; from those managed counts numasim's formulas give the same numbers to the page.
    (At boot the kernel computed them from smaller, earlier managed counts.)"""
    blocks = [b for b in recomputed(WATERMARKS / "4node-asym.6.12.txt") if b["zones"]]
    settings = [(4443, 10, (256, 256, 32, 0, 0)), (4443, 200, (256, 256, 32, 0, 0)),
                (4443, 10, (64, 64, 32, 0, 0))]
    for block, (mfk, wsf, ratio) in zip(blocks[1:], settings, strict=True):
        zs = block["zones"]
        specs = [(int(z["node"]), ZoneSpec(ZoneType.from_name(z["zone"]), 0, 0,
                                           int(z["present"]), int(z["managed"]))) for z in zs]
        marks = setup_per_zone_wmarks(specs, mfk, wsf, 4096)
        for z, (wmin, wlow, whigh) in zip(zs, marks, strict=True):
            assert (wmin, wlow, whigh) == (int(z["min"]), int(z["low"]), int(z["high"])), z
        by_node: dict[int, dict] = {}
        for nid, spec in specs:
            by_node.setdefault(nid, {})[spec.type] = spec
        for z in zs:
            node_zones = by_node[int(z["node"])]
            reserve = setup_per_zone_lowmem_reserve(node_zones, ratio)
            want = tuple(int(x) for x in z["protection"].split(","))
            got = reserve[ZoneType.from_name(z["zone"])]
            if z["zone"] == "DMA" and block is blocks[1]:
                # the kernel does not recompute lowmem_reserve when min_free_kbytes is written
                continue
            if ratio != (256, 256, 32, 0, 0) or z["zone"] != "DMA":
                assert got == want, z


def test_min_free_kbytes_formula():
    """calculate_min_free_kbytes: sqrt(16 * lowmem kB), clamped to [128, 262144]."""
    assert calculate_min_free_kbytes(308442, 4096) == 4443  # 4443^2 = 16 * 4 * 308442
    assert calculate_min_free_kbytes(10, 4096) == 128
    assert calculate_min_free_kbytes(10**12, 4096) == 262144


# ------------------------------------------- the sorted build equals the kernel's step by step
def _reference_build(machine, zones_by_node, cpu_penalty, kernel):
    """``__build_all_zonelists`` one ``find_next_best_node`` call at a time (O(n^3))."""
    from numasim.topology.derive import find_next_best_node

    node_load = {n: 0 for n in machine.node_ids}
    orders, zonelists, policy_zone = {}, {}, ZoneType.DMA
    skip = kernel not in ("6.1", "2.6.7")
    for local in machine.node_ids:
        used: set[int] = set()
        order, prev = [], local
        while (nxt := find_next_best_node(machine, local, used, node_load, cpu_penalty,
                                          skip)) >= 0:
            if machine.dist(local, nxt) != machine.dist(local, prev):
                node_load[nxt] += 1
            order.append(nxt)
            prev = nxt
        zl = []
        for nid in order:
            for z in sorted(zones_by_node.get(nid, ()), key=lambda z: -z.type):
                if z.present > 0:
                    zl.append(z.index)
                    if z.type > policy_zone and z.type != ZoneType.MOVABLE:
                        policy_zone = z.type
        orders[local], zonelists[local] = tuple(order), tuple(zl)
    return orders, zonelists, policy_zone


def _random_machine(rng, n):
    from numasim.topology.build import make_machine
    from numasim.topology.model import Node

    ids = sorted(rng.sample(range(64), n))
    nodes = []
    for k, nid in enumerate(ids):
        cpus = (k,) if rng.random() < 0.6 or k == 0 else ()
        mem = 0 if (rng.random() < 0.2 and k) else rng.choice([1, 2, 6]) << 30
        nodes.append(Node(id=nid, cpus=cpus, mem_bytes=mem, movable_bytes=(
            (1 << 30) if mem > (2 << 30) and rng.random() < 0.3 else 0)))
    levels = [rng.choice([11, 12, 16, 20, 21, 32]) for _ in range(4)]
    dist = [[10 if i == j else 0 for j in range(n)] for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            dist[i][j] = dist[j][i] = rng.choice(levels)  # many ties: node_load decides
    return make_machine("random", nodes, distance=dist)


@pytest.mark.parametrize("seed", range(40))
def test_sorted_build_equals_step_by_step_kernel(seed):
    import random

    from numasim.topology.derive import build_zonelists, derive

    rng = random.Random(seed)
    m = _random_machine(rng, rng.randint(1, 24))
    d = derive(m)
    by_node = {nid: d.zones_of(nid) for nid in m.node_ids}
    for penalty in (False, True):
        for kernel in ("6.1", "6.12"):
            assert build_zonelists(m, by_node, penalty, kernel) == \
                _reference_build(m, by_node, penalty, kernel)


def test_a_1024_node_machine_derives_in_seconds():
    """MAX_NUMNODES nodes (Linux allows them): the O(n^3) build took minutes."""
    import time

    from numasim.topology.build import make_machine
    from numasim.topology.derive import derive
    from numasim.topology.model import Node

    n = 1024
    nodes = [Node(id=i, cpus=(i,) if i % 2 == 0 else (), mem_bytes=1 << 30) for i in range(n)]
    dist = [[10 if i == j else (16 if i // 256 == j // 256 else 32) for j in range(n)]
            for i in range(n)]
    m = make_machine("big", nodes, distance=dist)
    t0 = time.perf_counter()
    d = derive(m)
    assert time.perf_counter() - t0 < 20
    assert d.fallback_order[0][:3] == (0, 1, 2) and len(d.fallback_order[0]) == n
    assert d.fallback_order[1023][0] == 1023 and set(d.fallback_order[1023][1:256]) == \
        set(range(768, 1023))
