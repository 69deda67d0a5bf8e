"""numasim.topology.loaders.sysfs: /sys/devices/system/node trees, tarballs and this machine."""

from __future__ import annotations

import bz2
import io
import re
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
from test_loader_hwloc import LSTOPO, check_against_lstopo

from numasim.bitmap import format_list, parse_list
from numasim.errors import ConfigError
from numasim.topology.loaders import detect_format, load_machine, sysfs
from numasim.topology.model import MemKind

DATA = Path(__file__).parent / "data" / "topologies" / "hwloc" / "sysfs"
ARM = DATA / "128arm-2pa2n8cluster4co.tar.bz2"
PMEM = DATA / "fakememinitiators-1np2c+1npp+gi.tar.bz2"
TARBALLS = sorted(DATA.glob("*.tar.bz2"))


@pytest.fixture(scope="module")
def arm():
    return sysfs.load(ARM)


@pytest.fixture(scope="module")
def pmem():
    return sysfs.load(PMEM)


_NOT_NEEDED = re.compile(r"/cpu\d+/cache(/|$)")


def extract(tarball: Path, dest: Path) -> Path:
    """Unpack test data of our own, without the per-CPU cache files (two thirds of the
    members; neither numasim nor lstopo's NUMA view needs them)."""
    dest.mkdir(parents=True, exist_ok=True)
    raw = io.BytesIO(bz2.decompress(tarball.read_bytes()))
    with tarfile.open(fileobj=raw, mode="r:") as tf:
        members = [m for m in tf if not _NOT_NEEDED.search(m.name)]
        tf.extractall(dest, members=members, filter="fully_trusted")
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    return top


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    """tarball -> its extracted top folder, made once per tarball."""
    done: dict[Path, Path] = {}

    def get(tarball: Path) -> Path:
        if tarball not in done:
            done[tarball] = extract(tarball, tmp_path_factory.mktemp(tarball.name[:20]))
        return done[tarball]
    return get


def same(a, b) -> bool:
    """Equal machines, wherever they were read from."""
    return replace(a, source="") == replace(b, source="")


def test_kunpeng_920(arm):
    assert arm.node_ids == (0, 1, 2, 3)
    assert [format_list(n.cpus) for n in arm.nodes] == ["0-31", "32-63", "64-95", "96-127"]
    # MemTotal kB * 1024, as the tarball's node*/meminfo says
    assert [n.mem_bytes for n in arm.nodes] == [131732940 * 1024, 132117940 * 1024,
                                                132117936 * 1024, 131062408 * 1024]
    assert arm.distance == ((10, 16, 32, 33), (16, 10, 25, 32), (32, 25, 10, 16),
                            (33, 32, 16, 10))
    assert all(n.kind is MemKind.DRAM for n in arm.nodes)
    assert arm.derived == {"latency", "bandwidth"}
    assert arm.name == "128arm-2pa2n8cluster4co" and "tarball" in arm.source


def test_optane_machine_with_hmat(pmem):
    m = pmem
    assert m.node_ids == tuple(range(11))
    # CPU-only nodes 0-3 (cpumap only, no cpulist in this tree), generic initiator 4
    assert [format_list(m.node(k).cpus) for k in range(4)] == ["0-1", "2-3", "4-5", "6-7"]
    assert all(m.node(k).mem_bytes == 0 for k in range(5))
    assert m.node(4).cpus == ()
    assert m.memory_nodes == (5, 6, 7, 8, 9, 10)
    assert m.node(5).mem_bytes == 97447340 * 1024
    assert {k for k in m.node_ids if m.node(k).kind is MemKind.NVM} == {7, 10}
    assert m.dist(0, 5) == 11 and m.dist(4, 1) == 31 and m.dist(10, 10) == 10
    lat, bw = m.latency_array(), m.bandwidth_array()
    i = m.index_of
    # access1 (CPU initiators): node0 -> node5 DRAM 26 ns / 131072 MB/s; node1,3 -> PMem 10
    assert lat[i(0)][i(5)] == 26 and bw[i(0)][i(5)] == pytest.approx(131.072)
    assert lat[i(1)][i(10)] == 77 and lat[i(3)][i(10)] == 77
    assert bw[i(3)][i(10)] == pytest.approx(78.644)
    # not given: node 1 -> node 5 (SLIT 21) filled from node 0 -> node 5 (SLIT 11)
    assert lat[i(1)][i(5)] == pytest.approx(26 + 4.5 * (21 - 11))
    assert bw[i(1)][i(5)] == pytest.approx(131.072 * 11 / 21)
    assert any(n.startswith("latency (ns): 8 of 121 entries from sysfs HMAT") for n in m.notes)
    assert any("node5/access1" in n for n in m.notes)


@pytest.mark.parametrize("tarball", TARBALLS, ids=lambda p: p.name.split(".")[0])
def test_directory_forms_equal_the_tarball(tarball, unpacked):
    from_tar = sysfs.load(tarball)
    top = unpacked(tarball)
    for where in (top, top / "sys", top / "sys/devices/system/node"):
        m = load_machine(where)
        assert same(m, from_tar), where
        assert "sysfs directory" in m.source
    assert same(load_machine(top.parent), from_tar)  # the folder holding the archive's top
    assert detect_format(top) == "sysfs" and detect_format(tarball) == "sysfs"


@pytest.mark.skipif(LSTOPO is None, reason="lstopo-no-graphics (Debian package hwloc) is not "
                                           "installed")
@pytest.mark.parametrize("tarball", TARBALLS, ids=lambda p: p.name.split(".")[0])
def test_same_nodes_cpus_and_memory_as_lstopo(tarball, unpacked, tmp_path):
    top = unpacked(tarball)
    check_against_lstopo(sysfs.load(tarball), top, tmp_path)


def make_tree(root: Path, nodes: dict[int, tuple[str, int, str]]) -> Path:
    """A minimal node tree: id -> (cpulist, MemTotal kB, distance row)."""
    base = root / "sys/devices/system/node"
    for nid, (cpus, kb, dist) in nodes.items():
        d = base / f"node{nid}"
        d.mkdir(parents=True)
        (d / "cpulist").write_text(cpus + "\n")
        (d / "meminfo").write_text(f"Node {nid} MemTotal: {kb:>15} kB\n"
                                   f"Node {nid} MemFree:  {kb // 2:>15} kB\n")
        (d / "distance").write_text(dist + "\n")
    (base / "online").write_text(format_list(nodes) + "\n")
    return root


def test_gapped_node_ids_and_cxl_dax(tmp_path):
    root = make_tree(tmp_path, {0: ("0-3", 4 << 20, "10 20"), 2: ("", 2 << 20, "20 10")})
    dev = root / "sys/devices/platform/ACPI0017:00/root0/decoder0.0/region0/dax_region0/dax0.0"
    dev.mkdir(parents=True)
    (dev / "target_node").write_text("2\n")
    (root / "sys/bus/dax/devices").mkdir(parents=True)
    (root / "sys/bus/dax/devices/dax0.0").symlink_to(
        "../../../devices/platform/ACPI0017:00/root0/decoder0.0/region0/dax_region0/dax0.0")
    m = sysfs.load(root)
    assert m.node_ids == (0, 2)
    assert m.node(0).cpus == (0, 1, 2, 3) and m.node(2).cpus == ()
    assert m.node(2).mem_bytes == 2 << 30 and m.node(2).free_bytes == 1 << 30
    assert m.node(2).kind is MemKind.CXL and m.node(0).kind is MemKind.DRAM
    assert m.distance == ((10, 20), (20, 10))


def test_offline_node_directory_is_left_out(tmp_path):
    root = make_tree(tmp_path, {0: ("0-1", 1 << 20, "10"), 1: ("2-3", 1 << 20, "10")})
    (root / "sys/devices/system/node/online").write_text("0\n")
    m = sysfs.load(root)
    assert m.node_ids == (0,)
    assert any("not online" in n for n in m.notes)


def test_tarball_is_never_extracted(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("extracted to disk")
    monkeypatch.setattr(tarfile.TarFile, "extractall", refuse)
    monkeypatch.setattr(tarfile.TarFile, "extract", refuse)
    before = set(tmp_path.iterdir())
    monkeypatch.chdir(tmp_path)
    assert len(sysfs.load(PMEM).nodes) == 11
    assert set(tmp_path.iterdir()) == before


def tarball_with(tmp_path: Path, name: str) -> Path:
    out = tmp_path / "evil.tar"
    with tarfile.open(out, "w") as tf:
        info = tarfile.TarInfo(name)
        data = b"Node 0 MemTotal: 1024 kB\n"
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return out


@pytest.mark.parametrize("member", ["../outside/sys/devices/system/node/node0/meminfo",
                                    "/etc/sys/devices/system/node/node0/meminfo",
                                    "a/../../b/meminfo"])
def test_tarball_members_climbing_out_are_refused(tmp_path, member):
    with pytest.raises(ConfigError) as e:
        sysfs.load(tarball_with(tmp_path, member))
    assert e.value.field == "tarball member" and "evil.tar" in str(e.value)


@pytest.mark.skipif(not Path("/sys/devices/system/node/node0").is_dir(),
                    reason="this machine has no /sys/devices/system/node")
def test_this_machine():
    m = sysfs.load_local()
    base = Path("/sys/devices/system/node")
    ids = sorted(int(p.name[4:]) for p in base.glob("node[0-9]*"))
    assert list(m.node_ids) == ids
    online_cpus = parse_list(Path("/sys/devices/system/cpu/online").read_text())
    assert set(m.cpus) == set(online_cpus)
    assert m.total_mem_bytes > 0
    again = load_machine("local")  # free memory moves between two reads: compare the rest
    assert again.with_changes(nodes=tuple(replace(n, free_bytes=None)
                                          for n in again.nodes)) == \
        m.with_changes(nodes=tuple(replace(n, free_bytes=None) for n in m.nodes))
    assert m.source.startswith("/sys/devices/system/node")


def test_sniff_is_false_for_text():
    assert not sysfs.sniff("node0/meminfo")
