"""numasim.topology.loaders.layout: the oracle's .layout files, zones as the real kernel
built them (checked against /proc/zoneinfo and the boot log of Linux 6.12 and 6.1)."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numasim.bitmap import parse_list
from numasim.topology.derive import boot_state
from numasim.topology.loaders import detect_format, layout, load_machine
from numasim.topology.model import ZoneSpec, ZoneType

DATA = Path(__file__).parent / "data" / "topologies"
LAYOUTS = sorted((DATA / "layouts").glob("*.layout"))
DUMPS = sorted((DATA / "oracle-info").glob("*.linux-*.txt"))
SHIPPED_DUMPS = ("4node-asym", "4node-flat", "4node-normal")


def dump_of(path: Path) -> tuple[str, str]:
    name, kernel = re.fullmatch(r"(.*)\.linux-(.*)\.txt", path.name).groups()
    return name, kernel


def parse_dump(path: Path) -> dict:
    """zones {(node, zone name): {start_pfn, spanned, present, managed}} (populated only),
    early memory ranges {node: [(start_pfn, end_pfn)]}, cpulist/distance per node."""
    zones: dict = {}
    ranges: dict = {}
    sysfs: dict = {}
    cur = None
    for ln in path.read_text().splitlines():
        if m := re.match(r"Node (\d+), zone\s+(\w+)", ln):
            cur = zones.setdefault((int(m.group(1)), m.group(2)), {})
        elif m := re.match(r"\s+(spanned|present|managed)\s+(\d+)$", ln):
            cur[m.group(1)] = int(m.group(2))
        elif m := re.match(r"\s+start_pfn:\s+(\d+)", ln):
            cur["start_pfn"] = int(m.group(1))
        elif m := re.search(r"\]\s+node\s+(\d+): \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\]", ln):
            ranges.setdefault(int(m.group(1)), []).append(
                (int(m.group(2), 16) >> 12, (int(m.group(3), 16) + 1) >> 12))
        elif m := re.match(r"### /sys/devices/system/node/node(\d+) cpulist=(\S*) distance=(.*)",
                           ln):
            sysfs[int(m.group(1))] = (parse_list(m.group(2)),
                                      [int(x) for x in m.group(3).split()])
    zones = {k: v for k, v in zones.items() if v.get("present")}
    return {"zones": zones, "ranges": ranges, "sysfs": sysfs}


def test_every_layout_loads_and_is_detected():
    assert len(LAYOUTS) == 15
    for path in LAYOUTS:
        assert layout.sniff(path.read_text()), path
        assert detect_format(path) == "layout"
        m = load_machine(path)
        assert m.name == path.stem and "oracle .layout" in m.source
        assert all(n.zones for n in m.nodes if n.mem_bytes)


def test_the_shipped_dumps_and_the_extra_boots_are_all_here():
    names = {dump_of(p) for p in DUMPS}
    for name in SHIPPED_DUMPS:
        assert {(name, "6.1"), (name, "6.12")} <= names
    assert len(DUMPS) == 17


@pytest.mark.parametrize("dump", DUMPS, ids=lambda p: p.stem)
def test_zones_match_the_kernel(dump):
    name, kernel = dump_of(dump)
    want = parse_dump(dump)
    m = layout.load(DATA / "layouts" / f"{name}.layout", kernel=kernel)
    got = {(n.id, z.type.kname): z for n in m.nodes for z in n.zones}
    assert set(got) == set(want["zones"])
    for key, w in want["zones"].items():
        z = got[key]
        assert (z.start_pfn, z.spanned, z.present) == (w["start_pfn"], w["spanned"],
                                                       w["present"]), key
        assert abs(z.managed - w["managed"]) <= 4, (key, z.managed, w["managed"])


def test_managed_pages_fit_overall():
    """The numbers the layout module's docstring states."""
    stats = {"6.12": [0, 0, 0], "6.1": [0, 0, 0]}
    for dump in DUMPS:
        name, kernel = dump_of(dump)
        m = layout.load(DATA / "layouts" / f"{name}.layout", kernel=kernel)
        got = {(n.id, z.type.kname): z.managed for n in m.nodes for z in n.zones}
        for key, w in parse_dump(dump)["zones"].items():
            off = abs(got[key] - w["managed"])
            s = stats[kernel]
            s[0] += 1
            s[1] += off == 0
            s[2] = max(s[2], off)
    assert stats["6.12"] == [53, 46, 4]
    assert stats["6.1"] == [41, 39, 3]


@pytest.mark.parametrize("dump", DUMPS, ids=lambda p: p.stem)
def test_memory_ranges_cpus_and_distances_match_the_kernel(dump):
    name, kernel = dump_of(dump)
    want = parse_dump(dump)
    lay = layout.parse_layout((DATA / "layouts" / f"{name}.layout").read_text(), None)[0]
    ids = layout.linux_node_ids(lay)
    ram = layout.node_ram(lay)
    got = {ids[lid]: r for lid, r in ram.items() if r and lid in ids}
    # the boot log splits ranges only at holes; ours too
    assert got == want["ranges"]
    m = layout.load(DATA / "layouts" / f"{name}.layout", kernel=kernel)
    assert set(m.node_ids) == set(want["sysfs"])
    for nid, (cpus, dist) in want["sysfs"].items():
        assert list(m.node(nid).cpus) == cpus
        assert [m.dist(nid, j) for j in m.node_ids] == dist


def test_4node_asym_exact_numbers():
    m = layout.load(DATA / "layouts" / "4node-asym.layout")
    z = {(n.id, zz.type): zz for n in m.nodes for zz in n.zones}
    assert z[(0, ZoneType.DMA)] == ZoneSpec(ZoneType.DMA, 1, 4095, 3998, 3840)
    assert z[(0, ZoneType.DMA32)] == ZoneSpec(ZoneType.DMA32, 4096, 126976, 126976,
                                                     115262)
    assert z[(3, ZoneType.DMA32)] == ZoneSpec(ZoneType.DMA32, 262144, 65504, 65504, 64358)
    assert boot_state(m).policy_zone is ZoneType.DMA32
    assert m.distance == ((10, 20, 30, 40), (20, 10, 25, 35), (30, 25, 10, 15),
                          (40, 35, 15, 10))


def test_4node_normal_puts_nodes_1_to_3_above_4gib():
    m = layout.load(DATA / "layouts" / "4node-normal.layout")
    assert [z.type for z in m.node(0).zones] == [ZoneType.DMA, ZoneType.DMA32]
    for nid in (1, 2, 3):
        (zone,) = m.node(nid).zones
        assert zone.type is ZoneType.NORMAL and zone.start_pfn >= 1 << 20
    assert boot_state(m).policy_zone is ZoneType.NORMAL


def test_2node_normal_node0_has_three_zones_and_a_hole():
    m = layout.load(DATA / "layouts" / "2node-normal.layout")
    dma, dma32, normal = m.node(0).zones
    assert (dma.type, dma32.type, normal.type) == (ZoneType.DMA, ZoneType.DMA32, ZoneType.NORMAL)
    assert dma32.spanned == (1 << 20) - 4096 and dma32.present == 0xBFFE0 - 4096
    assert normal.start_pfn == 1 << 20 and normal.present == 262144


@pytest.mark.parametrize("name", ["8node", "8node-2socket"])
def test_8node_layouts_have_cpu_less_nodes(name):
    m = layout.load(DATA / "layouts" / f"{name}.layout")
    assert m.node_ids == tuple(range(8))
    assert [n.cpus for n in m.nodes] == [(0,), (1,), (2,), (3,), (), (), (), ()]
    assert m.cpu_nodes == (0, 1, 2, 3) and m.memory_nodes == tuple(range(8))
    assert all(n.mem_bytes == 128 << 20 for n in m.nodes[1:])
    if name == "8node-2socket":
        assert m.dist(0, 3) == 12 and m.dist(3, 4) == 32 and m.dist(5, 7) == 12
    else:
        assert {m.dist(a, b) for a in range(8) for b in range(8) if a != b} == {20}


def test_cpu_less_node_before_a_cpu_node_is_renumbered():
    m = layout.load(DATA / "layouts" / "renumber.layout")
    # layout: 0 cpu=0, 1 no cpu, 2 cpu=1  ->  Linux: 0, 2, 1
    assert [n.cpus for n in m.nodes] == [(0,), (1,), ()]
    assert m.distance == ((10, 30, 20), (30, 10, 25), (20, 25, 10))
    assert any("layout node 1 is Linux node 2" in n for n in m.notes)


def test_memoryless_node_with_a_cpu():
    m = layout.load(DATA / "layouts" / "memless.layout")
    assert m.node(1).cpus == (1,) and m.node(1).zones == () and m.node(1).mem_bytes == 0
    assert m.memory_nodes == (0, 2)


def test_e820_map_of_a_small_and_a_large_machine():
    assert layout.e820_ram(1280 << 20) == [(1, 0x9F), (0x100, 0x4FFE0)]
    assert layout.e820_ram(3840 << 20) == [(1, 0x9F), (0x100, 0xBFFE0),
                                           (0x100000, 0x100000 + (768 << 8))]
    # 3.5 GiB exactly is where QEMU starts splitting
    assert layout.e820_ram((3584 << 20) - (1 << 20))[-1][1] == ((3583 << 20) - (128 << 10)) >> 12
    assert layout.e820_ram(3584 << 20)[-1] == (0x100000, 0x100000 + (512 << 8))


def test_6_1_profile_differs_only_in_managed():
    a = layout.load(DATA / "layouts" / "4node-asym.layout", kernel="6.1")
    b = layout.load(DATA / "layouts" / "4node-asym.layout")
    za = [(z.start_pfn, z.spanned, z.present) for n in a.nodes for z in n.zones]
    zb = [(z.start_pfn, z.spanned, z.present) for n in b.nodes for z in n.zones]
    assert za == zb
    assert a.node(0).zones[1].managed == 113501 and b.node(0).zones[1].managed == 115262


def test_append_and_qemu_lines_are_noted_not_applied():
    text = ("node 0 mem=512M cpus=0\nnode 1 mem=256 cpus=1\n"
            "append movablecore=64M\nqemu -cpu max\ndist 10 20\ndist 20 10\n")
    m = layout.loads(text, file="x.layout")
    assert m.node(1).mem_bytes == 256 << 20  # a bare number is MiB
    assert sum(" ignored " in n for n in m.notes) == 2
    assert m.node(0).movable_bytes == 0


@st.composite
def layouts(draw):
    n = draw(st.integers(1, 6))
    mem = [draw(st.sampled_from([0, 1, 16, 100, 128, 256, 1000, 1500, 3072])) for _ in range(n)]
    if not any(mem):
        mem[0] = 512
    ncpu = draw(st.integers(1, 8))
    owner = [draw(st.integers(0, n - 1)) for _ in range(ncpu)]
    lines = []
    for k in range(n):
        cpus = [c for c in range(ncpu) if owner[c] == k]
        lines.append(f"node {k} mem={mem[k]}M cpus={','.join(map(str, cpus)) or '-'}")
    return "\n".join(lines) + "\n", mem, owner


@settings(max_examples=120, deadline=None)
@given(layouts(), st.sampled_from(sorted(layout.PROFILES)))
def test_any_layout_boots_consistently(case, kernel):
    text, mem, owner = case
    m = layout.loads(text, file="gen.layout", kernel=kernel)
    total = sum(mem) << 20
    ram_pages = sum(b - a for a, b in layout.e820_ram(total))
    zones = [z for node in m.nodes for z in node.zones]
    assert sum(z.present for z in zones) == ram_pages  # every usable frame in one zone
    for z in zones:
        assert 0 <= z.managed <= z.present <= z.spanned
    spans = sorted((z.start_pfn, z.start_pfn + z.spanned) for z in zones)
    assert all(a[1] <= b[0] for a, b in pairwise(spans))  # zones never overlap
    # Linux ids: nodes with CPUs first, in the order of their lowest CPU
    first_cpu = [min(n.cpus) for n in m.nodes if n.cpus]
    assert first_cpu == sorted(first_cpu)
    assert [bool(n.cpus) for n in m.nodes] == sorted((bool(n.cpus) for n in m.nodes),
                                                     reverse=True)
    assert sorted(c for n in m.nodes for c in n.cpus) == list(range(len(owner)))
