"""Bad machine files: every importer answers with a ConfigError naming the file and the field,
and load_machine() passes it on (never another exception)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from numasim.errors import ConfigError
from numasim.topology.loaders import hwloc_xml, layout, load_machine, numactl_text, sysfs

DATA = Path(__file__).parent / "data" / "topologies"
GOOD_NUMACTL = (DATA / "numactl-hardware" / "2x-opteron-6272-4nodes.txt").read_text()
GOOD_XML = (DATA / "hwloc" / "32em64t-2n8c2t-pci-noio.xml").read_text()


def check(loader, path: Path, fld: str, *words: str) -> ConfigError:
    """``loader(path)`` and ``load_machine(path)`` both raise a ConfigError naming the file
    and ``fld`` (and containing ``words``)."""
    errors = []
    for fn in (loader, load_machine):
        with pytest.raises(ConfigError) as e:
            fn(path)
        err = e.value
        text = str(err)
        assert str(path) in text, text
        assert f"field '{fld}'" in text, text
        for w in words:
            assert w in text, text
        errors.append(err)
    return errors[0]


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------ hwloc XML
def test_truncated_xml(tmp_path):
    p = write(tmp_path, "cut.xml", GOOD_XML[: len(GOOD_XML) // 2])
    err = check(hwloc_xml.load, p, "xml", "not well-formed")
    assert err.problems[0].line is not None


def test_numa_node_without_os_index(tmp_path):
    text = GOOD_XML.replace('<object type="NUMANode" os_index="1"', '<object type="NUMANode"', 1)
    assert text != GOOD_XML
    check(hwloc_xml.load, write(tmp_path, "noid.xml", text), "NUMANode[1].os_index",
          "missing the 'os_index' attribute")


def test_numa_node_without_cpuset(tmp_path):
    text = GOOD_XML.replace('type="NUMANode" os_index="0" cpuset="0x00ff00ff"',
                            'type="NUMANode" os_index="0"', 1)
    assert text != GOOD_XML
    check(hwloc_xml.load, write(tmp_path, "nocpuset.xml", text), "NUMANode[0].cpuset")


def test_numa_node_with_bad_memory(tmp_path):
    text = GOOD_XML.replace('local_memory="34', 'local_memory="lots34', 1)
    assert text != GOOD_XML
    check(hwloc_xml.load, write(tmp_path, "mem.xml", text), "NUMANode[0].local_memory",
          "not a whole number")


def test_xml_entity_expansion_is_refused(tmp_path):
    bomb = ('<?xml version="1.0"?><!DOCTYPE topology [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<topology version="2.0"><object type="Machine">&b;</object></topology>')
    check(hwloc_xml.load, write(tmp_path, "bomb.xml", bomb), "xml", "forbidden")


def test_slit_with_a_bad_diagonal_in_xml(tmp_path):
    text = GOOD_XML.replace(">10 20 20 10 <", ">10 20 20 12 <", 1)
    assert text != GOOD_XML
    check(hwloc_xml.load, write(tmp_path, "diag.xml", text), "distance",
          "diagonal entry for node 1 is 12")


# ------------------------------------------------------------------ numactl text
def test_non_square_distance_table(tmp_path):
    text = GOOD_NUMACTL.replace("  2:  16  16  10  16 ", "  2:  16  16  10 ")
    assert text != GOOD_NUMACTL
    check(numactl_text.load, write(tmp_path, "ns.txt", text), "node distances",
          "row 2 has 3 entries", "square")


def test_distance_table_missing_a_row(tmp_path):
    text = GOOD_NUMACTL.replace("  3:  16  16  16  10 \n", "")
    assert text != GOOD_NUMACTL
    check(numactl_text.load, write(tmp_path, "rows.txt", text), "node distances",
          "3 rows and 4 columns")


def test_diagonal_other_than_10(tmp_path):
    text = GOOD_NUMACTL.replace("  1:  16  10  16  16", "  1:  16  11  16  16")
    assert text != GOOD_NUMACTL
    check(numactl_text.load, write(tmp_path, "diag.txt", text), "distance",
          "diagonal entry for node 1 is 11", "LOCAL_DISTANCE")


def test_cpu_in_two_nodes(tmp_path):
    text = GOOD_NUMACTL.replace("node 1 cpus: 8 9", "node 1 cpus: 7 8 9")
    assert text != GOOD_NUMACTL
    check(numactl_text.load, write(tmp_path, "twice.txt", text), "nodes[1].cpus",
          "CPU 7 is in node 0 and in node 1")


def test_node_without_size_line(tmp_path):
    text = GOOD_NUMACTL.replace("node 2 size: 32768 MB\n", "")
    check(numactl_text.load, write(tmp_path, "size.txt", text), "node 2 size")


def test_node_not_in_the_available_list(tmp_path):
    text = GOOD_NUMACTL.replace("available: 4 nodes (0-3)", "available: 3 nodes (0-2)")
    check(numactl_text.load, write(tmp_path, "avail.txt", text), "node 3 cpus",
          "not in the 'available' list")


def test_unreadable_size(tmp_path):
    text = GOOD_NUMACTL.replace("node 0 size: 32765 MB", "node 0 size: 32 GB")
    err = check(numactl_text.load, write(tmp_path, "gb.txt", text), "node 0 size")
    assert err.problems[0].line == 3


# ------------------------------------------------------------------ missing / wrong files
@pytest.mark.parametrize("loader", [numactl_text.load, hwloc_xml.load, layout.load, sysfs.load])
def test_missing_file(tmp_path, loader):
    p = tmp_path / "nowhere.txt"
    with pytest.raises(ConfigError) as e:
        loader(p)
    assert str(p) in str(e.value) and "field 'path'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_machine(p)
    assert str(p) in str(e.value) and "no such file" in str(e.value)


def test_binary_file_is_not_a_machine(tmp_path):
    p = tmp_path / "blob.bin"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError) as e:
        load_machine(p)
    assert str(p) in str(e.value)
    with pytest.raises(ConfigError) as e:
        numactl_text.load(p)
    assert "field 'path'" in str(e.value)


# ------------------------------------------------------------------ sysfs trees
def tarball(tmp_path: Path, files: dict[str, str], name: str = "t.tar.gz") -> Path:
    out = tmp_path / name
    with tarfile.open(out, "w:gz") as tf:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out


def test_tarball_without_node_directories(tmp_path):
    p = tarball(tmp_path, {"x/proc/cpuinfo": "processor : 0\n",
                           "x/sys/devices/system/cpu/online": "0\n"})
    check(sysfs.load, p, "sys/devices/system/node", "no node directories")


def test_node_without_meminfo(tmp_path):
    p = tarball(tmp_path, {"x/sys/devices/system/node/node0/cpulist": "0-1\n",
                           "x/sys/devices/system/node/node0/distance": "10\n"})
    check(sysfs.load, p, "x/sys/devices/system/node/node0/meminfo", "no meminfo")


def test_distance_row_of_the_wrong_length(tmp_path):
    files = {}
    for nid in (0, 1):
        d = f"x/sys/devices/system/node/node{nid}"
        files[f"{d}/cpulist"] = f"{nid}\n"
        files[f"{d}/meminfo"] = f"Node {nid} MemTotal: 1048576 kB\n"
        files[f"{d}/distance"] = "10 20\n" if nid == 0 else "20 10 30\n"
    check(sysfs.load, tarball(tmp_path, files), "x/sys/devices/system/node/node1/distance",
          "3 entries")


def test_truncated_tarball(tmp_path):
    good = (DATA / "hwloc" / "sysfs" / "fakememinitiators-1np2c+1npp+gi.tar.bz2").read_bytes()
    p = tmp_path / "cut.tar.bz2"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(ConfigError) as e:
        sysfs.load(p)
    assert str(p) in str(e.value) and "field 'tarball'" in str(e.value)


# ------------------------------------------------------------------ layouts
LAYOUT = "node 0 mem=512M cpus=0\nnode 1 mem=256M cpus=1\ndist 10 20\ndist 20 10\n"


@pytest.mark.parametrize("bad, fld, words", [
    (LAYOUT.replace("dist 20 10\n", ""), "dist", "2x2 matrix"),
    (LAYOUT.replace("dist 20 10", "dist 20 10 30"), "dist", "2x2 matrix"),
    (LAYOUT + "memory 5\n", "memory", "unknown line"),
    (LAYOUT.replace("mem=256M", "mem=lots"), "mem", "cannot read"),
    (LAYOUT.replace("mem=256M", "mem=1500K"), "mem", "whole number of MiB"),
    (LAYOUT.replace("cpus=1", "cpus=2"), "cpus", "CPU 1 is in no node"),
    (LAYOUT.replace("cpus=1", "cpus=0"), "cpus", "CPU 0 is in node 0 and in node 1"),
    (LAYOUT.replace("node 1", "node 2"), "node", "node 1 is missing"),
    (LAYOUT.replace("dist 20 10", "dist 20 9"), "distance", "diagonal entry for node 1"),
])
def test_bad_layouts(tmp_path, bad, fld, words):
    check(layout.load, write(tmp_path, "bad.layout", bad), fld, words)
