"""The ``numasim topo`` and ``numasim validate`` commands, end to end.

``topo show`` must print real machines exactly as ``numactl --hardware`` describes them; every
kind of bad input must end in one paragraph naming the file and the field, exit code 2, and no
traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from numasim.cli import main
from numasim.topology.loaders import load_machine

DATA = Path(__file__).parent / "data" / "topologies"
NUMACTL = sorted((DATA / "numactl-hardware").glob("*.txt"))
ROOT = Path(__file__).parent.parent


def parse_numactl(text: str) -> dict:
    nodes = {}
    for m in re.finditer(r"^node (\d+) cpus:(.*)$", text, re.M):
        nodes[int(m.group(1))] = {"cpus": [int(c) for c in m.group(2).split()]}
    for m in re.finditer(r"^node (\d+) size: (\d+) MB$", text, re.M):
        nodes[int(m.group(1))]["size"] = int(m.group(2))
    avail = re.search(r"^available: (\d+) nodes", text, re.M).group(1)
    rows = re.findall(r"^\s*(\d+):((?:\s+\d+)+)\s*$", text, re.M)
    dist = {int(r): [int(x) for x in v.split()] for r, v in rows}
    return {"available": int(avail), "nodes": nodes, "distance": dist}


@pytest.mark.parametrize("path", NUMACTL, ids=lambda p: p.stem)
def test_topo_show_reproduces_numactl_hardware(path, capsys):
    assert main(["topo", "show", str(path)]) == 0
    out = capsys.readouterr().out
    block = out.split("\n\n")[0]
    assert parse_numactl(block) == parse_numactl(path.read_text())
    assert "Fallback order for Node" in out and "Policy zone:" in out
    assert "Idle latency (ns)" in out and "Bandwidth (GB/s)" in out


def test_topo_show_prints_the_kernels_boot_view(capsys):
    assert main(["topo", "show", str(DATA / "layouts" / "4node-asym.layout")]) == 0
    out = capsys.readouterr().out
    for line in ("Fallback order for Node 0: 0 1 2 3 ", "Fallback order for Node 1: 1 0 2 3 ",
                 "Fallback order for Node 2: 2 3 1 0 ", "Fallback order for Node 3: 3 2 1 0 ",
                 "Policy zone: DMA32"):
        assert line in out
    zone_rows = [ln for ln in out.splitlines() if re.match(r"\s+\d+ (DMA|DMA32|Normal) ", ln)]
    assert len(zone_rows) == 5


@pytest.mark.parametrize("src", [
    "numactl-hardware/rrze-2x-epyc-7451-naples.txt",
    "hwloc/64intel64-heteromem.xml",
    "hwloc/knl-snc4-flat-hwloc1.xml",
    "hwloc/sysfs/fakememinitiators-1np2c+1npp+gi.tar.bz2",
    "layouts/8node-2socket.layout",
])
def test_topo_convert_round_trips(src, tmp_path, capsys):
    out = tmp_path / "m.yaml"
    assert main(["topo", "convert", str(DATA / src), "-o", str(out)]) == 0
    assert load_machine(out) == load_machine(DATA / src)


def test_topo_draw_writes_a_picture(tmp_path, capsys):
    png = tmp_path / "m.png"
    assert main(["topo", "draw", "clx-2s", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


BAD = {
    "unknown-key.yaml": ("name: x\nnodes:\n  - id: 0\n    cpus: 0-1\n    memroy: 4GiB\n",
                         ["memroy", "memory", "unknown-key.yaml:5"]),
    "non-square.yaml": ("name: x\nnodes:\n  - {id: 0, cpus: '0', memory: 1GiB}\n"
                        "  - {id: 1, cpus: '1', memory: 1GiB}\ndistance:\n  - [10, 20]\n",
                        ["distance", "2x2"]),
    "diagonal.yaml": ("name: x\nnodes:\n  - {id: 0, cpus: '0', memory: 1GiB}\n"
                      "  - {id: 1, cpus: '1', memory: 1GiB}\ndistance:\n  - [10, 20]\n"
                      "  - [20, 11]\n", ["distance", "10"]),
    "cpu-twice.yaml": ("name: x\nnodes:\n  - {id: 0, cpus: 0-3, memory: 1GiB}\n"
                       "  - {id: 1, cpus: 3-5, memory: 1GiB}\n", ["CPU 3", "cpus"]),
    "truncated.xml": ('<?xml version="1.0"?>\n<topology version="2.0">\n  <object type="Machine"'
                      ' os_index="0" cpuset="0x1">\n    <object type="NUMANode"', ["truncated"]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_machine_files_give_one_paragraph_and_exit_2(name, tmp_path, capsys):
    text, needles = BAD[name]
    path = tmp_path / name
    path.write_text(text)
    assert main(["topo", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(path) in err
    for needle in needles:
        assert needle.lower() in err.lower(), (needle, err)


def test_missing_file_is_a_clean_error(capsys):
    assert main(["topo", "show", "/nonexistent/machine.yaml"]) == 2
    err = capsys.readouterr().err
    assert "/nonexistent/machine.yaml" in err and "no such file" in err.lower()


def test_validate_reports_every_problem_at_once(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("name: x\ncpu_clok: 2GHz\nnodes:\n  - id: 0\n    cpus: 0-1\n"
                    "    memory: 4\n    knd: DRAM\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cpu_clok" in err and "knd" in err and "memory" in err


def test_validate_accepts_every_shipped_machine(capsys):
    files = sorted(str(p) for p in (ROOT / "configs" / "machines").glob("*.yaml"))
    assert files
    assert main(["validate", *files]) == 0


def test_no_traceback_from_a_real_process(tmp_path):
    """The installed console entry point, as a user runs it."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [")
    proc = subprocess.run([sys.executable, "-m", "numasim", "topo", "show", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and str(bad) in proc.stderr


def test_one_namespace_for_machine_names(capsys):
    """`8node` and `oracle-8node` name the same machine for every command (issue 14 §4)."""
    from numasim.topology.loaders import load_machine

    a, b = load_machine("8node"), load_machine("oracle-8node")
    assert [n.id for n in a.nodes] == [n.id for n in b.nodes] == list(range(8))
    assert a.distance == b.distance
    assert main(["topo", "show", "8node", "--numactl-only"]) == 0
    via_layout = capsys.readouterr().out
    assert main(["topo", "show", "oracle-8node", "--numactl-only"]) == 0
    assert capsys.readouterr().out == via_layout
    # a layout without a YAML twin is reachable with the prefix too, from topo and scripts
    assert main(["topo", "show", "oracle-memless", "--numactl-only"]) == 0
    assert "available: 3 nodes" in capsys.readouterr().out
    scenario = "cpu 0; mmap 1; touch 0 1; query 0 1"
    assert main(["script", "-m", "oracle-memless", "-e", scenario]) == 0
    assert "node0=1" in capsys.readouterr().out
    assert main(["topo", "show", "no-such-machine"]) == 2
    assert "layout name" in capsys.readouterr().err
