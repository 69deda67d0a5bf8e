"""numasim.topology.loaders.hwloc_xml: hwloc XML of real machines, v1 and v2/v3."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from numasim.bitmap import format_list, parse_mask
from numasim.topology.loaders import detect_format, hwloc_xml, load_machine
from numasim.topology.model import MemKind

DATA = Path(__file__).parent / "data" / "topologies" / "hwloc"
FILES = sorted(DATA.glob("*.xml"))
GiB = 1 << 30

# file -> (nodes: {id: (number of CPUs, memory bytes)}, SLIT first row or None)
EXPECTED = {
    "192em64t-24n8c2t.xml": (
        {k: 16 for k in range(24)}, None,
        [10, 50, 65, 65, 65, 65, 65, 65, 65, 65, 79, 79, 65, 65, 79, 79, 65, 65, 79, 79, 79, 79,
         79, 79]),
    "32em64t-2n8c2t-pci-noio.xml": ({0: 16, 1: 16}, None, [10, 20]),
    "40intel64-2g2n4c+pcilocality.xml": ({k: 10 for k in range(4)}, None, [10, 20, 20, 20]),
    "64intel64-heteromem.xml": ({0: 16, 1: 16, 2: 16, 3: 16, 4: 0, 5: 0, 6: 0, 7: 0},
                                {**{k: GiB for k in range(4)}, **{k: 2 * GiB for k in range(4, 8)}},
                                None),
    "96em64t-4n4d3ca2co-pci.xml": ({k: 24 for k in range(4)}, None, [10, 26, 26, 26]),
    "eas-tioga.xml": ({k: 32 for k in range(4)},
                      {0: 134731067392, 1: 135237062656, 2: 135282954240, 3: 135265234944},
                      [10, 12, 12, 12]),
    "coral-lassen-hwloc1.xml": ({0: 80, 8: 80, 252: 0, 253: 0, 254: 0, 255: 0}, None,
                                [10, 40, 80, 80, 80, 80]),
    "epyc-corona.xml": ({k: 12 for k in range(8)}, None, [10, 16, 16, 16, 32, 32, 32, 32]),
    "g4dnmetal.xml": ({0: 48, 1: 48}, None, [10, 21]),
    "knl-snc4-flat-hwloc1.xml": ({0: 72, 1: 72, 2: 64, 3: 64, 4: 0, 5: 0, 6: 0, 7: 0},
                                 {k: 4 * GiB for k in range(4, 8)}, None),
}


def raw_numa(path: Path) -> dict[int, int]:
    """os_index -> local_memory, read straight from the XML with the standard library."""
    root = ElementTree.parse(path).getroot()
    return {int(o.get("os_index")): int(o.get("local_memory", "0"))
            for o in root.iter("object") if o.get("type") == "NUMANode"}


def test_every_file_has_an_expectation():
    assert sorted(p.name for p in FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_real_machine(path):
    ncpus, mem, slit_row0 = EXPECTED[path.name]
    m = hwloc_xml.load(path)
    assert m.node_ids == tuple(sorted(ncpus))
    assert {n.id: len(n.cpus) for n in m.nodes} == ncpus
    assert {n.id: n.mem_bytes for n in m.nodes} == raw_numa(path)
    if mem is not None:
        assert {n.id: n.mem_bytes for n in m.nodes if n.id in mem} == mem
    if slit_row0 is None:
        assert "distance" in m.derived
    else:
        assert list(m.distance[0]) == slit_row0
        assert "distance" not in m.derived
        assert m.distance == tuple(zip(*m.distance, strict=True))  # all these SLITs are symmetric
    # every PU is a CPU of exactly one node
    root = ElementTree.parse(path).getroot()
    pus = sorted(int(o.get("os_index")) for o in root.iter("object") if o.get("type") == "PU")
    assert list(m.cpus) == pus
    assert m.name == path.stem and str(path) in m.source
    assert detect_format(path) == "hwloc"


def test_slit_of_the_24_node_sgi_is_read_row_major_by_os_index():
    m = hwloc_xml.load(DATA / "192em64t-24n8c2t.xml")
    assert m.dist(5, 4) == 50 and m.dist(4, 5) == 50
    assert m.dist(0, 23) == 79 and m.dist(23, 23) == 10
    assert sorted({v for r in m.distance for v in r}) == [10, 50, 65, 79]


def test_heteromem_bandwidth_from_memattr():
    m = hwloc_xml.load(DATA / "64intel64-heteromem.xml")
    hbm_of = {0: 7, 1: 4, 2: 5, 3: 6}  # quadrant DRAM node -> its HBM node (same cpuset)
    bw = m.bandwidth_array()
    for dram, hbm in hbm_of.items():
        i = m.index_of(dram)
        assert bw[i][m.index_of(dram)] == pytest.approx(22.5)  # 22500 MB/s
        assert bw[i][m.index_of(hbm)] == pytest.approx(90.0)  # 90000 MB/s
        assert m.node(hbm).kind is MemKind.HBM and m.node(hbm).cpus == ()
        assert m.node(dram).kind is MemKind.DRAM
        # other quadrants' memory: filled from the value given for the same target, scaled
        # by SLIT; without a SLIT every remote pair is 20, the own HBM node included
        other = (dram + 1) % 4
        assert bw[i][m.index_of(other)] == pytest.approx(22.5 * 10 / 20)
        assert bw[i][m.index_of(hbm_of[other])] == pytest.approx(90.0)
        # rows of CPU-less HBM nodes: nothing given, filled the same way
        assert bw[m.index_of(hbm)][i] == pytest.approx(22.5 * 10 / 20)
    assert "bandwidth" not in m.derived and "latency" in m.derived
    assert any("8 of 64 entries from hwloc memattr Bandwidth" in n for n in m.notes)
    assert m.node(0).cpus == tuple(parse_mask("0x000f000f,0x000f000f"))


def test_knl_v1_mcdram_nodes_are_cpu_less_hbm():
    m = hwloc_xml.load(DATA / "knl-snc4-flat-hwloc1.xml")
    assert "v1" in m.source
    for nid in range(4):
        assert m.node(nid).kind is MemKind.DRAM and m.node(nid).cpus
    for nid in range(4, 8):
        assert m.node(nid).kind is MemKind.HBM and m.node(nid).cpus == ()
    assert len(m.cpus) == 272
    # quadrant 0 = cores 0-17 with their 4 hyperthreads (KNL numbers threads core-major)
    assert format_list(m.node(0).cpus) == "0-17,68-85,136-153,204-221"
    assert any("no NUMA distance matrix" in n for n in m.notes)


def test_gpu_matrices_are_ignored():
    m = hwloc_xml.load(DATA / "eas-tioga.xml")
    assert any("XGMIBandwidth" in n for n in m.notes)
    assert any("XGMIHops" in n for n in m.notes)
    assert m.distance == tuple(tuple(10 if i == j else 12 for j in range(4)) for i in range(4))


V1_WITH_DISTANCES = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE topology SYSTEM "hwloc.dtd">
<topology>
  <object type="Machine" os_index="0" cpuset="0x0000000f">
    <object type="NUMANode" os_index="0" cpuset="0x00000003" local_memory="1073741824">
      <object type="Core" os_index="0" cpuset="0x00000003">
        <object type="PU" os_index="0" cpuset="0x00000001"/>
        <object type="PU" os_index="1" cpuset="0x00000002"/>
      </object>
    </object>
    <object type="NUMANode" os_index="1" cpuset="0x0000000c" local_memory="2147483648">
      <object type="Core" os_index="1" cpuset="0x0000000c">
        <object type="PU" os_index="2" cpuset="0x00000004"/>
        <object type="PU" os_index="3" cpuset="0x00000008"/>
      </object>
    </object>
    <distances nbobjs="2" relative_depth="1" latency_base="10.000000">
      <latency value="1.000000"/>
      <latency value="2.100000"/>
      <latency value="2.100000"/>
      <latency value="1.000000"/>
    </distances>
  </object>
</topology>
"""


def test_v1_relative_distances_become_slit(tmp_path):
    p = tmp_path / "two-v1.xml"
    p.write_text(V1_WITH_DISTANCES)
    m = load_machine(p)
    assert m.distance == ((10, 21), (21, 10))
    assert m.node(0).cpus == (0, 1) and m.node(1).cpus == (2, 3)
    assert m.node(1).mem_bytes == 2 * GiB


def test_memattr_latency_with_object_initiator(tmp_path):
    text = (DATA / "64intel64-heteromem.xml").read_text()
    extra = ('<memattr name="Latency" flags="6">'
             '<memattr_value target_obj_type="NUMANode" target_obj_gp_index="2" value="95" '
             'initiator_obj_type="NUMANode" initiator_obj_gp_index="2"/></memattr>')
    p = tmp_path / "lat.xml"
    p.write_text(text.replace("</topology>", extra + "</topology>"))
    m = hwloc_xml.load(p)
    assert m.latency_ns[m.index_of(0)][m.index_of(0)] == 95.0
    assert "latency" not in m.derived


# ------------------------------------------------------------------ cross-check with hwloc
LSTOPO = shutil.which("lstopo-no-graphics")


def run_lstopo(source: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LSTOPO, "--input", str(source), "--of", "xml", "-"],
                          capture_output=True, timeout=120)


def lstopo_xml(source: Path, tmp: Path) -> bytes:
    """hwloc's export of ``source`` as XML."""
    done = run_lstopo(source)
    if done.returncode and b"cannot import XML version 3.0" in done.stderr:
        # hwloc 2.x refuses XML 3.0 outright; its NUMA/PU/memory content is 2.0-compatible
        patched = tmp / source.name
        patched.write_text(source.read_text().replace('<topology version="3.0">',
                                                      '<topology version="2.0">', 1))
        done = run_lstopo(patched)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def lstopo_numa(source: Path, tmp: Path) -> tuple[dict[int, tuple[int, frozenset[int]]],
                                                  set[int]]:
    """hwloc's own reading: os_index -> (local_memory, cpuset), and the set of PU indexes."""
    root = ElementTree.fromstring(lstopo_xml(source, tmp))
    numa = {int(o.get("os_index")): (int(o.get("local_memory", "0")),
                                      frozenset(parse_mask(o.get("cpuset"))))
            for o in root.iter("object") if o.get("type") == "NUMANode"}
    pus = {int(o.get("os_index")) for o in root.iter("object") if o.get("type") == "PU"}
    return numa, pus


def check_against_lstopo(machine, source: Path, tmp: Path) -> None:
    numa, pus = lstopo_numa(source, tmp)
    with_memory = {n.id for n in machine.nodes if n.mem_bytes}
    assert set(numa) == with_memory  # hwloc drops memoryless nodes
    for nid, (mem, cpuset) in numa.items():
        node = machine.node(nid)
        assert node.mem_bytes == mem, nid
        if node.cpus:
            assert set(node.cpus) == cpuset, nid
        else:  # a CPU-less node's hwloc locality is made of whole nodes' CPUs
            covering = [set(n.cpus) for n in machine.nodes if set(n.cpus) & cpuset]
            assert set().union(*covering) == cpuset, nid
    assert set(machine.cpus) == pus


@pytest.mark.skipif(LSTOPO is None, reason="lstopo-no-graphics (Debian package hwloc) is not "
                                           "installed")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_same_nodes_cpus_and_memory_as_lstopo(path, tmp_path):
    check_against_lstopo(hwloc_xml.load(path), path, tmp_path)


def lstopo_distances(source: Path, tmp: Path) -> dict[tuple[int, int], int]:
    """hwloc's own NUMA latency matrix (as it exports it in v2 XML), by OS index."""
    root = ElementTree.fromstring(lstopo_xml(source, tmp))
    for d in root.iter("distances2"):
        if d.get("type") == "NUMANode" and int(d.get("kind", "0")) & hwloc_xml.KIND_LATENCY:
            idx = [int(t) for c in d if c.tag == "indexes" for t in (c.text or "").split()]
            vals = [int(t) for c in d if c.tag == "u64values" for t in (c.text or "").split()]
            n = len(idx)
            return {(idx[a], idx[b]): vals[a * n + b] for a in range(n) for b in range(n)}
    return {}


@pytest.mark.skipif(LSTOPO is None, reason="lstopo-no-graphics (Debian package hwloc) is not "
                                           "installed")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_same_distances_as_lstopo(path, tmp_path):
    """Where hwloc 2.x reads a SLIT from the file, numasim reads the same one."""
    theirs = lstopo_distances(path, tmp_path)
    m = hwloc_xml.load(path)
    if not theirs:  # no matrix for hwloc: the file has none, and numasim invents none
        assert b"distances" not in path.read_bytes()
        assert all(m.dist(a.id, b.id) == (10 if a.id == b.id else 20)
                   for a in m.nodes for b in m.nodes)
        return
    ours = {(a.id, b.id): m.dist(a.id, b.id) for a in m.nodes for b in m.nodes
            if (a.id, b.id) in theirs}
    assert ours == theirs
