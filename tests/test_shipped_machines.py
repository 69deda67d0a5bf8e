"""Every machine in configs/machines loads, boots, round-trips, and quotes its sources exactly.

The literal numbers below are copied from the measured data the configs cite
(``mlc-matrices.md`` sections 1b, 1c, 2a, 2b and 3, see each config's header); the topology
files the configs were built from are in ``tests/data/topologies`` (see its SOURCES.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from numasim import shipped
from numasim.topology.derive import boot_state
from numasim.topology.loaders import yaml_machine
from numasim.topology.model import MemKind

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "machines"
FILES = sorted(CONFIGS.glob("*.yaml"))
DATA = Path(__file__).parent / "data" / "topologies"
EXPECTED = {"clx-2s", "skx-2s-snc2", "opteron-4s-2004", "epyc-8n-nps4", "gnr-6n-snc3",
            "cxl-1s", "knl-snc4-flat"}
CPU_COUNTS = {"clx-2s": 96, "skx-2s-snc2": 80, "opteron-4s-2004": 4, "epyc-8n-nps4": 96,
              "gnr-6n-snc3": 256, "cxl-1s": 32, "knl-snc4-flat": 272}


def load(name: str):
    return yaml_machine.load(CONFIGS / f"{name}.yaml")


def mbps(rows):
    """MLC's MB/s -> GB/s, as the loader computes it."""
    return [[v * 1e-3 for v in r] for r in rows]


def assert_matrix(got, want, rel=1e-12):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert list(g) == pytest.approx(w, rel=rel)


def test_all_expected_machines_are_shipped():
    assert {p.stem for p in FILES} >= EXPECTED
    assert set(shipped.names("machines")) >= EXPECTED
    assert shipped.find("machines", "clx-2s").resolve() == (CONFIGS / "clx-2s.yaml").resolve()
    assert shipped.find("machines", "clx-2s.yaml") == shipped.find("machines", "clx-2s")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_loads_boots_and_round_trips(path):
    assert yaml_machine.validate_file(path) == []
    m = yaml_machine.load(path)
    assert m.name == path.stem
    assert m.description
    if m.name == "oracle-2node-tier":  # QEMU with an ACPI HMAT: timing from hmat-lb
        assert m.derived == frozenset()
        assert all(n.zones is not None for n in m.nodes)
    elif m.name.startswith("oracle-"):  # QEMU machines: timing derived from the SLIT
        assert m.derived == {"latency", "bandwidth"}
        assert all(n.zones is not None for n in m.nodes)  # the zones Linux built
    else:  # real machines give every matrix
        assert m.derived == frozenset()
    d = boot_state(m)
    for node in m.nodes:
        zones = d.zones_of(node.id)
        assert bool(zones) == node.has_memory
        assert all(z.wmark_min <= z.wmark_low <= z.wmark_high < z.managed for z in zones)
        assert d.fallback_order[node.id][0] == node.id  # local node first
        assert sorted(d.fallback_order[node.id]) == sorted(m.memory_nodes)
    if m.name in CPU_COUNTS:
        assert len(m.cpus) == CPU_COUNTS[m.name]
    text = yaml_machine.dump(m)
    back = yaml_machine.loads(text, file="x.yaml")
    assert dataclasses.replace(back, source=m.source) == m
    assert yaml_machine.dump(back) == text


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_header_says_where_numbers_come_from(path):
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# ")
    header = "\n".join(ln for ln in lines if ln.startswith("#"))
    assert len(header.splitlines()) >= 8
    cites = ("mlc-matrices.md", "/work/shared/data/topologies", "RECONSTRUCTED",
             "/work/shared/oracle/layouts")
    assert any(c in header for c in cites), "header must cite its source"
    assert "assum" in header.lower(), "header must say what is assumed"


def test_clx_quotes_mlc_1c():
    m = load("clx-2s")
    assert m.latency_ns == ((81.2, 130.2), (130.2, 81.1))
    assert m.latency_ns[0][1] == 130.2
    assert_matrix(m.bandwidth_GBps, mbps([[122097.7, 51327.9], [51309.2, 122005.5]]))
    assert m.distance == ((10, 21), (21, 10))
    assert [m.mc_bandwidth(i) for i in (0, 1)] == pytest.approx([122.0977, 122.0055])
    assert [len(n.cpus) for n in m.nodes] == [48, 48]
    assert m.nodes[0].cpus[:24] == tuple(range(24))
    (link,) = m.links
    assert (link.a, link.b) == (0, 1)
    # the UPI link carries at least the measured remote bandwidth
    assert link.bandwidth_GBps >= max(m.bandwidth_GBps[0][1], m.bandwidth_GBps[1][0])
    assert link.latency_ns == pytest.approx(130.2 - 81.2)


def test_skx_snc2_is_scaled_from_mlc_1b():
    m = load("skx-2s-snc2")
    lat = m.latency_ns
    assert lat[0][0] == 81.4 and lat[2][2] == 81.3
    assert lat[0][2] == lat[1][3] == lat[2][0] == lat[3][1] == 131.1
    assert lat[0][1] == pytest.approx(81.4 + 4.5)
    bw = m.bandwidth_GBps
    assert bw[0][0] == pytest.approx(107947.7 / 2 / 1000, rel=1e-12)
    assert bw[2][2] == pytest.approx(108183.4 / 2 / 1000, rel=1e-12)
    assert bw[0][2] == pytest.approx(50951.5 / 2 / 1000, rel=1e-12)
    assert bw[2][0] == pytest.approx(50834.6 / 2 / 1000, rel=1e-12)
    assert m.distance == ((10, 11, 21, 21), (11, 10, 21, 21), (21, 21, 10, 11),
                          (21, 21, 11, 10))


def test_gnr_snc3_quotes_mlc_2a_2b_with_outliers_replaced():
    m = load("gnr-6n-snc3")
    lat_2a = [[138.7, 168.0, 208.5, 394.1, 475.2, 445.1],
              [160.3, 134.4, 170.4, 415.2, 448.2, 479.7],
              [156.2, 123.6, 106.5, 507.8, 513.2, 452.5],
              [396.0, 476.0, 445.6, 102.0, 129.4, 157.5],
              [419.7, 452.6, 421.2, 122.1, 102.4, 130.2],
              [445.4, 449.5, 392.4, 148.3, 122.3, 103.8]]
    bw_2b = [[187911.4, 188622.8, 188716.9, 94137.8, 93596.5, 93730.5],
             [188260.8, 188176.4, 188653.1, 94495.4, 90659.3, 93774.2],
             [188624.6, 188626.7, 188129.6, 94509.6, 27886.4, 93792.7],
             [94161.1, 93415.7, 94558.3, 187851.4, 188418.6, 188691.9],
             [94201.1, 91712.7, 94546.8, 188169.2, 188067.6, 188544.2],
             [94183.2, 44861.0, 94241.8, 188416.4, 188380.0, 187933.8]]
    assert [list(r) for r in m.latency_ns] == lat_2a
    # the two outliers the source calls noise are replaced by their mirror entries
    bw_2b[2][4] = bw_2b[4][2]
    bw_2b[5][1] = bw_2b[1][5]
    assert_matrix(m.bandwidth_GBps, mbps(bw_2b))
    cores = [len(n.cpus) for n in m.nodes]
    assert cores == [43, 43, 42, 43, 43, 42] and sum(cores[:3]) == 128
    for j, node in enumerate(m.nodes):  # controller = column maximum
        assert m.mc_bandwidth(node.id) == pytest.approx(max(r[j] for r in m.bandwidth_GBps))


def test_cxl_quotes_mlc_3():
    m = load("cxl-1s")
    assert m.latency_ns[0] == (84.5, 564.5)
    assert list(m.bandwidth_GBps[0]) == pytest.approx([30.5628, 4.7953], rel=1e-12)
    dram, cxl = m.nodes
    assert cxl.kind is MemKind.CXL and not cxl.has_cpus and cxl.mem_bytes == 34359738368
    assert dram.has_cpus and m.distance == ((10, 14), (14, 10))
    assert m.wi_weights == (6, 1)


def test_knl_hbm_nodes_and_bandwidth_ratio():
    m = load("knl-snc4-flat")
    assert [n.kind for n in m.nodes] == [MemKind.DRAM] * 4 + [MemKind.HBM] * 4
    assert [n.has_cpus for n in m.nodes] == [True] * 4 + [False] * 4
    assert [len(n.cpus) for n in m.nodes[:4]] == [72, 72, 64, 64]
    for q in range(4):
        assert m.bandwidth_GBps[q][q + 4] / m.bandwidth_GBps[q][q] == pytest.approx(4.0)
        assert m.dist(q, q + 4) == 31
    assert m.bandwidth_GBps[0][0] == pytest.approx(22500 * 2**20 / 1e9)


def test_opteron_square():
    m = load("opteron-4s-2004")
    ring = {frozenset((ln.a, ln.b)) for ln in m.links}
    assert ring == {frozenset(p) for p in ((0, 1), (1, 3), (3, 2), (2, 0))}
    for a in range(4):
        for b in range(4):
            if a == b:
                continue
            hops = 1 if frozenset((a, b)) in ring else 2
            assert m.dist(a, b) == {1: 16, 2: 22}[hops]
            assert m.latency_ns[a][b] == {1: 140.0, 2: 180.0}[hops]
    assert all(len(n.cpus) == 1 for n in m.nodes)


@pytest.mark.parametrize("name, source", [
    ("skx-2s-snc2", "rrze-2x-xeon-gold-6148-snc2.txt"),
    ("epyc-8n-nps4", "rrze-2x-epyc-7451-naples.txt"),
])
def test_topology_matches_numactl_source(name, source):
    numactl_text = pytest.importorskip("numasim.topology.loaders.numactl_text")
    src = numactl_text.load(DATA / "numactl-hardware" / source)
    m = load(name)
    assert m.distance == src.distance
    assert [n.cpus for n in m.nodes] == [n.cpus for n in src.nodes]
    assert [n.mem_bytes for n in m.nodes] == [n.mem_bytes for n in src.nodes]


def test_knl_topology_matches_hwloc_source():
    hwloc_xml = pytest.importorskip("numasim.topology.loaders.hwloc_xml")
    src = hwloc_xml.load(DATA / "hwloc" / "knl-snc4-flat-hwloc1.xml")
    m = load("knl-snc4-flat")
    assert m.node_ids == src.node_ids
    assert [n.cpus for n in m.nodes] == [n.cpus for n in src.nodes]
    for mine, theirs in zip(m.nodes, src.nodes, strict=True):  # 24 GiB rounded up
        assert 0 <= mine.mem_bytes - theirs.mem_bytes <= 128 << 20


ORACLE = sorted(CONFIGS.glob("oracle-*.yaml"))


@pytest.mark.parametrize("path", ORACLE, ids=lambda p: p.stem)
def test_oracle_machines_match_the_layout_loader(path):
    """The shipped copies stay what the layout loader makes of the oracle's layouts."""
    layout = pytest.importorskip("numasim.topology.loaders.layout")
    src = DATA / "layouts" / (path.stem.removeprefix("oracle-") + ".layout")
    m = yaml_machine.load(path)
    want = layout.load(src)
    assert dataclasses.replace(m, name=want.name, source=want.source) == want


def test_oracle_machines_shipped():
    assert {"oracle-4node-asym", "oracle-4node-flat", "oracle-4node-normal",
            "oracle-8node-2socket"} <= {p.stem for p in ORACLE}
