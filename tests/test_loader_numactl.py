"""numasim.topology.loaders.numactl_text: `numactl --hardware` text of real machines."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numasim.bitmap import format_list
from numasim.topology.loaders import detect_format, load_machine, numactl_text
from numasim.topology.model import MemKind

DATA = Path(__file__).parent / "data" / "topologies" / "numactl-hardware"
FILES = sorted(DATA.glob("*.txt"))


def print_hardware(ids, cpus, size_mb, free_mb, dist, *, compress=False) -> str:
    """A tiny `numactl --hardware` printer (numactl's hardware(), print_distances())."""
    out = [f"available: {len(ids)} nodes ({format_list(ids)})"]
    for nid in ids:
        cs = cpus[nid]
        if compress and cs:
            text = " " + format_list(cs).replace(",", ", ") + f" ({len(cs)})"
        else:
            text = "".join(f" {c}" for c in cs)
        out.append(f"node {nid} cpus:{text}")
        out.append(f"node {nid} size: {size_mb[nid]} MB")
        out.append(f"node {nid} free: {free_mb[nid]} MB")
    if dist is None:
        out.append("No distance information available.")
    else:
        out.append("node distances:")
        out.append("node " + "".join(f"{i:3d} " for i in ids))
        for a, row in zip(ids, dist, strict=True):
            out.append(f"{a:3d}: " + "".join(f"{v:3d} " for v in row))
    return "\n".join(out) + "\n"


# Read off the files by hand: node -> CPU list, size MB, free MB, and the SLIT.
EXPECTED = {
    "2x-epyc-9375f-turin-nps1.txt": (
        {0: "0-31", 1: "32-63"}, {0: 773271, 1: 774028}, {0: 678823, 1: 684984},
        [[10, 32], [32, 10]]),
    "2x-opteron-6272-4nodes.txt": (
        {0: "0-7", 1: "8-15", 2: "16-23", 3: "24-31"},
        {0: 32765, 1: 32768, 2: 32768, 3: 32752}, {0: 8617, 1: 22956, 2: 24745, 3: 25535},
        [[10, 16, 16, 16], [16, 10, 16, 16], [16, 16, 10, 16], [16, 16, 16, 10]]),
    "4x-xeon-e7-4870-redhat-example.txt": (
        {nid: ",".join(str(c) for c in range(first, 40, 4))  # CPUs round-robin over nodes
         for nid, first in ((0, 0), (1, 2), (2, 1), (3, 3))},
        {0: 65415, 1: 65536, 2: 65536, 3: 65536}, {0: 43971, 1: 44321, 2: 44304, 3: 44329},
        [[10, 21, 21, 21], [21, 10, 21, 21], [21, 21, 10, 21], [21, 21, 21, 10]]),
    "aurora-2x-xeon-max-spr-hbm-flat.txt": (
        {0: "0-51,104-155", 1: "52-103,156-207", 2: "", 3: ""},
        {0: 515524, 1: 514994, 2: 65536, 3: 65536}, {0: 497948, 1: 497013, 2: 65424, 3: 65433},
        [[10, 21, 13, 23], [21, 10, 23, 13], [13, 23, 10, 23], [23, 13, 23, 10]]),
    "knl-xeon-phi-272t-flat-mcdram.txt": (
        {0: "0-271", 1: ""}, {0: 98207, 1: 16384}, {0: 88477, 1: 14072}, [[10, 31], [31, 10]]),
    "rrze-2x-epyc-7451-naples.txt": (
        {k: f"{6 * k}-{6 * k + 5},{48 + 6 * k}-{53 + 6 * k}" for k in range(8)},
        {0: 15966, 1: 16124, 2: 16124, 3: 16103, 4: 16124, 5: 16124, 6: 16124, 7: 16122},
        {0: 15829, 1: 15988, 2: 16002, 3: 15965, 4: 15849, 5: 15775, 6: 15661, 7: 15661},
        [[10 if i == j else 16 if i // 4 == j // 4 else 32 for j in range(8)] for i in range(8)]),
    "rrze-2x-xeon-gold-6148-snc2.txt": (
        {0: "0-2,5-6,10-12,15-16,40-42,45-46,50-52,55-56",
         1: "3-4,7-9,13-14,17-19,43-44,47-49,53-54,57-59",
         2: "20-22,25-26,30-32,35-36,60-62,65-66,70-72,75-76",
         3: "23-24,27-29,33-34,37-39,63-64,67-69,73-74,77-79"},
        {0: 22758, 1: 24188, 2: 24188, 3: 24186}, {0: 22303, 1: 23667, 2: 23774, 3: 23729},
        [[10, 11, 21, 21], [11, 10, 21, 21], [21, 21, 10, 11], [21, 21, 11, 10]]),
}


def test_every_file_has_an_expectation():
    assert sorted(p.name for p in FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_real_machine_reproduced_exactly(path):
    cpus, size, free, dist = EXPECTED[path.name]
    m = numactl_text.load(path)
    assert m.node_ids == tuple(sorted(cpus))
    for n in m.nodes:
        assert format_list(n.cpus) == cpus[n.id]
        assert n.mem_bytes == size[n.id] << 20
        assert n.free_bytes == free[n.id] << 20
        assert n.kind is MemKind.DRAM
    assert [list(r) for r in m.distance] == dist
    assert m.name == path.stem
    assert "numactl" in m.source and str(path) in m.source
    assert m.derived == {"latency", "bandwidth"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_printing_the_machine_gives_the_file_back(path):
    m = numactl_text.load(path)
    text = print_hardware(list(m.node_ids), {n.id: list(n.cpus) for n in m.nodes},
                          {n.id: n.mem_bytes >> 20 for n in m.nodes},
                          {n.id: n.free_bytes >> 20 for n in m.nodes}, m.distance)
    original = path.read_text()
    # some sources drop numactl's trailing blank after each column; compare without it
    assert [ln.rstrip() for ln in text.splitlines()] == [ln.rstrip()
                                                         for ln in original.splitlines()]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_load_machine_detects_the_format(path):
    assert detect_format(path) == "numactl"
    assert load_machine(path) == numactl_text.load(path)


def test_cpu_less_nodes_get_a_note():
    m = numactl_text.load(DATA / "aurora-2x-xeon-max-spr-hbm-flat.txt")
    assert any("CPU-less memory node(s) 2, 3" in n for n in m.notes)


def test_gapped_ids_compressed_cpus_and_no_distances():
    text = ("available: 3 nodes (0,2-3)\n"
            "node 0 cpus: 0-3, 8-11 (8)\n"
            "node 0 size: 1024 MB\n"
            "node 0 free: 1000 MB\n"
            "node 2 cpus: 4-7, 12-15 (8)\n"
            "node 2 size: 2048 MB\n"
            "node 2 free: 2000 MB\n"
            "node 3 cpus:\n"
            "node 3 size: 0 MB\n"
            "node 3 free: 0 MB\n"
            "No distance information available.\n")
    m = numactl_text.loads(text, file="x.txt")
    assert m.node_ids == (0, 2, 3)
    assert m.node(0).cpus == (0, 1, 2, 3, 8, 9, 10, 11)
    assert m.node(2).cpus == (4, 5, 6, 7, 12, 13, 14, 15)
    assert m.node(3).cpus == () and m.node(3).mem_bytes == 0
    assert m.distance == ((10, 20, 20), (20, 10, 20), (20, 20, 10))
    assert "distance" in m.derived


def test_prompt_lines_before_available_are_skipped_with_a_note():
    text = "$ numactl -H\n" + (DATA / "2x-epyc-9375f-turin-nps1.txt").read_text()
    m = numactl_text.loads(text)
    assert len(m.nodes) == 2
    assert any("ignored 1 line" in n for n in m.notes)


def test_sniff():
    assert numactl_text.sniff((DATA / "knl-xeon-phi-272t-flat-mcdram.txt").read_text())
    assert not numactl_text.sniff("node 0 mem=512M cpus=0\n")
    assert not numactl_text.sniff("<topology version='2.0'>")


# ------------------------------------------------------------------ property: print, parse back
@st.composite
def machines(draw):
    ids = sorted(draw(st.sets(st.integers(0, 40), min_size=1, max_size=6)))
    ncpu = draw(st.integers(1, 40))
    owner = draw(st.lists(st.sampled_from(ids), min_size=ncpu, max_size=ncpu))
    cpus = {nid: [c for c, o in enumerate(owner) if o == nid] for nid in ids}
    size = {nid: draw(st.integers(0, 1 << 22)) for nid in ids}
    size[draw(st.sampled_from(ids))] = draw(st.integers(1, 1 << 22))  # someone has memory
    free = {nid: draw(st.integers(0, size[nid])) for nid in ids}
    dist = None
    if draw(st.booleans()):
        n = len(ids)
        dist = [[10] * n for _ in range(n)]
        for i in range(n):
            for j in range(i + 1, n):
                dist[i][j] = dist[j][i] = draw(st.integers(11, 254))
    return ids, cpus, size, free, dist


@settings(max_examples=150, deadline=None)
@given(machines(), st.booleans())
def test_print_then_parse_round_trip(machine, compress):
    ids, cpus, size, free, dist = machine
    m = numactl_text.loads(print_hardware(ids, cpus, size, free, dist, compress=compress),
                           file="gen.txt")
    assert m.node_ids == tuple(ids)
    for n in m.nodes:
        assert list(n.cpus) == cpus[n.id]
        assert n.mem_bytes == size[n.id] << 20
        assert n.free_bytes == free[n.id] << 20
    if dist is None:
        assert "distance" in m.derived
    else:
        assert [list(r) for r in m.distance] == dist
        assert "distance" not in m.derived
