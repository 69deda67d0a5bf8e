"""numasim's machine YAML: reading, every-problem-at-once errors, sniffing, exact round trip."""

from __future__ import annotations

import dataclasses
import tarfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numasim.errors import ConfigError
from numasim.topology.build import make_machine
from numasim.topology.derive import boot_state
from numasim.topology.loaders import load_machine, yaml_machine
from numasim.topology.model import Link, MemKind, Node, ZoneSpec, ZoneType

DATA = Path(__file__).parent / "data" / "topologies"

SPEC_EXAMPLE = """\
# where the numbers come from (comment)
name: clx-2s
description: 2x Xeon Gold 6252N (Cascade Lake) ...
cpu_clock: 2.3GHz            # optional, default 2GHz
page_size: 4KiB              # optional
huge_page_size: 2MiB         # optional
cache_line: 64B              # optional
nodes:
  - id: 0
    cpus: 0-23,48-71
    memory: 192GiB
    kind: DRAM
    controller_bandwidth: 122GB/s
    movable: 16GiB
  - id: 1
    cpus: [24, 25, 26]
    memory: 192GiB
    zones:
      - {type: DMA32, start_pfn: 4096, spanned: 126976, present: 126976, managed: 115262}
distance:
  - [10, 21]
  - [21, 10]
latency:
  - [81.2ns, 130.2ns]
  - [130.2ns, 81.1ns]
bandwidth:
  - [122.1GB/s, 51.3GB/s]
  - [51.3GB/s, 122.0GB/s]
links:
  - {between: [0, 1], bandwidth: 62GB/s, latency: 20ns}
kernel:
  min_free_kbytes: 4443
  watermark_scale_factor: 10
  lowmem_reserve_ratio: [256, 256, 32, 0, 0]
weighted_interleave: {0: 9, 1: 1}
"""


def problems_of(text: str, file: str = "m.yaml"):
    return yaml_machine.validate_text(textwrap.dedent(text), file=file)


def rendered(text: str) -> str:
    return "\n".join(p.render() for p in problems_of(text))


# ---------------------------------------------------------------------------- reading
def test_spec_example_reads_every_field():
    m = yaml_machine.loads(SPEC_EXAMPLE, file="clx.yaml")
    assert m.name == "clx-2s"
    assert m.description.startswith("2x Xeon Gold 6252N")
    assert m.cpu_ghz == 2.3
    assert (m.page_size, m.huge_page_size, m.cache_line) == (4096, 2 << 20, 64)
    n0, n1 = m.nodes
    assert n0.cpus == tuple(range(24)) + tuple(range(48, 72))
    assert n0.mem_bytes == 192 << 30 and n0.movable_bytes == 16 << 30
    assert n0.kind is MemKind.DRAM and n0.mc_bandwidth_GBps == 122.0
    assert n0.zones is None
    assert n1.cpus == (24, 25, 26) and n1.mc_bandwidth_GBps is None
    assert n1.zones == (ZoneSpec(ZoneType.DMA32, 4096, 126976, 126976, 115262),)
    assert m.distance == ((10, 21), (21, 10))
    assert m.latency_ns == ((81.2, 130.2), (130.2, 81.1))
    assert m.bandwidth_GBps == ((122.1, 51.3), (51.3, 122.0))
    assert m.links == (Link(0, 1, 62.0, 20.0),)
    assert m.min_free_kbytes == 4443 and m.watermark_scale_factor == 10
    assert m.lowmem_reserve_ratio == (256, 256, 32, 0, 0)
    assert m.wi_weights == (9, 1)
    assert m.derived == frozenset()
    assert m.source == "yaml:clx.yaml"


def test_minimal_file_derives_matrices_and_defaults(tmp_path):
    f = tmp_path / "tiny.yaml"
    f.write_text("nodes:\n  - {id: 0, cpus: 0-3, memory: 1GiB}\n  - {id: 2, memory: 512MiB}\n")
    m = yaml_machine.load(f)
    assert m.name == "tiny"  # from the file name when absent
    assert m.node_ids == (0, 2) and m.nodes[1].cpus == () and m.cpu_ghz == 2.0
    assert m.derived == {"distance", "latency", "bandwidth"}
    assert m.distance == ((10, 20), (20, 10))
    assert m.wi_weights is None and m.min_free_kbytes is None
    boot_state(m)  # boots


def test_units_in_other_spellings():
    m = yaml_machine.loads("""
nodes:
  - {id: 0, cpus: 5, memory: 4096MB, controller_bandwidth: 30562.8MB/s}
latency: [[0.5us]]
bandwidth: [[1GiB/s]]
cpu_clock: 2100MHz
""")
    assert m.nodes[0].cpus == (5,)
    assert m.nodes[0].mem_bytes == 4096 * 10**6
    assert m.nodes[0].mc_bandwidth_GBps == pytest.approx(30.5628, rel=1e-12)
    assert m.latency_ns == ((500.0,),)
    assert m.bandwidth_GBps == ((1024**3 / 1e9,),)
    assert m.cpu_ghz == pytest.approx(2.1)


def test_weighted_interleave_unnamed_nodes_weigh_one():
    m = yaml_machine.loads("nodes: [{id: 0, cpus: 0, memory: 1GiB}, {id: 3, memory: 1GiB},"
                           " {id: 7, memory: 1GiB}]\nweighted_interleave: {3: 4}\n")
    assert m.wi_weights == (1, 4, 1)


def test_zones_without_memory_key_give_memory_from_present_pages():
    m = yaml_machine.loads("""
nodes:
  - id: 0
    cpus: 0
    zones:
      - {type: DMA, start_pfn: 1, spanned: 4095, present: 3998, managed: 3840}
      - {type: DMA32, start_pfn: 4096, spanned: 126976, present: 126976, managed: 120000}
""")
    assert m.nodes[0].mem_bytes == (3998 + 126976) * 4096
    zones = boot_state(m).zones_of(0)
    assert [z.type for z in zones] == [ZoneType.DMA, ZoneType.DMA32]
    assert [z.managed for z in zones] == [3840, 120000]


# ----------------------------------------------------------------------------- errors
def test_unknown_key_names_file_line_field_and_closest_key():
    ps = problems_of("""\
        name: x
        nodes:
          - id: 0
            cpus: 0-3
            memroy: 4GiB
        """, file="typo.yaml")
    assert len(ps) == 1
    p = ps[0]
    assert (p.file, p.line, p.field) == ("typo.yaml", 5, "nodes[0].memroy")
    assert "unknown key 'memroy'" in p.message
    assert "did you mean 'memory'?" in p.hint
    assert "typo.yaml:5" in p.render()


def test_top_level_typo_suggests_key():
    ps = problems_of("cpu_clok: 2GHz\nnodes: [{id: 0, cpus: 0, memory: 1GiB}]\n")
    assert [(p.line, p.field) for p in ps] == [(1, "cpu_clok")]
    assert "'cpu_clock'" in ps[0].hint


def test_bare_numbers_say_which_unit_to_add():
    ps = problems_of("""\
        nodes:
          - {id: 0, cpus: 0, memory: 192}
        latency: [[81.2]]
        bandwidth: [[122]]
        cpu_clock: 2
        """)
    by_field = {p.field: p for p in ps}
    assert set(by_field) == {"nodes[0].memory", "latency[0][0]", "bandwidth[0][0]", "cpu_clock"}
    assert "64GiB" in by_field["nodes[0].memory"].message
    assert "bare number 192" in by_field["nodes[0].memory"].message
    assert "81.2ns" in by_field["latency[0][0]"].message
    assert "GB/s" in by_field["bandwidth[0][0]"].message
    assert "GHz" in by_field["cpu_clock"].message
    assert by_field["latency[0][0]"].line == 3


def test_zero_memory_needs_no_unit():
    m = yaml_machine.loads("nodes: [{id: 0, cpus: 0, memory: 1GiB}, {id: 1, cpus: 1, "
                           "memory: 0}]\n")
    assert m.nodes[1].mem_bytes == 0 and m.memory_nodes == (0,)


def test_every_problem_of_the_file_at_once():
    text = """\
        name: bad
        cpu_clok: 2.3GHz
        nodes:
          - id: 0
            cpus: 0-3
            memroy: 4GiB
            kind: DRAMM
          - id: 1
            cpus: 4-7
            memory: 192
        latency:
          - [81.2, 130.2ns]
          - [130.2ns, 81.1ns]
        links:
          - {between: [0, 1], bandwith: 62GB/s}
        """
    ps = problems_of(text)
    got = [(p.line, p.field) for p in ps]
    assert got == [(2, "cpu_clok"), (6, "nodes[0].memroy"), (7, "nodes[0].kind"),
                   (10, "nodes[1].memory"), (12, "latency[0][0]"),
                   (15, "links[0].bandwidth"), (15, "links[0].bandwith")]
    assert "did you mean 'DRAM'" in ps[2].message
    assert "missing required key 'bandwidth'" in ps[5].message
    with pytest.raises(ConfigError) as e:
        yaml_machine.loads(textwrap.dedent(text), file="m.yaml")
    assert len(e.value.problems) == 7
    assert str(e.value).startswith("7 problems:")


def test_semantic_problems_point_at_their_lines():
    ps = problems_of("""\
        nodes:
          - id: 0
            cpus: 0-3
            memory: 4GiB
          - id: 1
            cpus: 3-7
            memory: 4GiB
        distance:
          - [10, 21]
          - [21, 9]
        links:
          - {between: [0, 2], bandwidth: 62.4GB/s}
        weighted_interleave: {0: 300, 5: 1}
        """)
    got = {(p.line, p.field) for p in ps}
    assert got == {(6, "nodes[1].cpus"), (10, "distance[1][1]"),
                   (12, "links[0].between"), (13, "weighted_interleave[0]"),
                   (13, "weighted_interleave[5]")}
    texts = " | ".join(p.message for p in ps)
    assert "CPU 3 is in node 0 and in node 1" in texts
    assert "names node 2, which does not exist" in texts
    assert "weight 300" in texts and "node 5 does not exist" in texts


def test_matrix_shape_problem_names_matrix():
    ps = problems_of("nodes: [{id: 0, cpus: 0, memory: 1GiB}, {id: 1, cpus: 1, memory: 1GiB}]\n"
                     "distance: [[10, 20]]\n")
    assert [(p.line, p.field) for p in ps] == [(2, "distance")]
    assert "2x2 matrix" in ps[0].message


def test_duplicate_node_id_and_order():
    ps = problems_of("""\
        nodes:
          - {id: 1, cpus: 0, memory: 1GiB}
          - {id: 0, cpus: 1, memory: 1GiB}
          - {id: 1, cpus: 2, memory: 1GiB}
        """)
    msgs = {(p.line, p.message.split(";")[0]) for p in ps}
    assert (3, "node 0 comes after node 1") in msgs
    assert (4, "node 1 is described twice") in msgs


def test_zone_and_movable_checks():
    ps = problems_of("""\
        nodes:
          - id: 0
            cpus: 0
            memory: 1GiB
            movable: 2GiB
            zones:
              - {type: Normal, start_pfn: 0, spanned: 10, present: 11, managed: 5}
              - {type: normal, start_pfn: 5, spanned: 10, present: 10, managed: 11}
              - {type: HIGHMEM, start_pfn: 100, spanned: 1, present: 1, managed: 1}
        """)
    # the bad zone type stops the structure check; the node's own checks still run on what
    # of it reads (its zones do not: they are what is broken)
    assert [(p.line, p.field) for p in ps] == [(5, "nodes[0].movable"),
                                               (9, "nodes[0].zones[2].type")]
    assert "valid: DMA, DMA32, Normal, Movable, Device" in ps[1].message
    ps = problems_of("""\
        nodes:
          - id: 0
            cpus: 0
            memory: 1GiB
            movable: 2GiB
            zones:
              - {type: Normal, start_pfn: 0, spanned: 10, present: 11, managed: 5}
              - {type: normal, start_pfn: 5, spanned: 10, present: 10, managed: 11}
        """)
    msgs = sorted((p.line, p.message) for p in ps)
    assert msgs == [
        (5, "movable (2GiB) is more than the node's memory (1GiB)"),
        (7, "present (11) exceeds spanned (10)"),
        (8, "managed (11) exceeds present (10)"),
        (8, "node 0 has two Normal zones"),
        (8, "zone overlaps another zone of node 0 (pfn 5 < 10)"),
    ]


def test_node_checks_still_run_when_structure_is_wrong_elsewhere():
    ps = problems_of("""\
        nodes:
          - {id: 0, cpus: 0, memory: 1GiB, movable: 2GiB}
        distance: [[ten]]
        """)
    assert sorted((p.line, p.field) for p in ps) == [(2, "nodes[0].movable"),
                                                     (3, "distance[0][0]")]


def test_bounds_and_lengths_are_explained():
    ps = problems_of("nodes: [{id: -1, cpus: 0, memory: 1GiB}]\n"
                     "kernel: {watermark_scale_factor: 0}\n"
                     "links: [{between: [0, 1, 2], bandwidth: 1GB/s}]\n")
    assert [(p.line, p.field, p.message) for p in ps] == [
        (1, "nodes[0].id", "must be at least 0, got -1"),
        (2, "kernel.watermark_scale_factor", "must be at least 1, got 0"),
        (3, "links[0].between", "needs at most 2 entries, got 3: [0, 1, 2]"),
    ]
    ps = problems_of("nodes: []\n")
    assert [p.message for p in ps] == ["needs at least 1 entry, got 0: []"]


def test_duplicate_yaml_key_is_reported():
    ps = problems_of("name: a\nname: b\nnodes: [{id: 0, cpus: 0, memory: 1GiB}]\n")
    assert [(p.line, p.field) for p in ps] == [(2, "name")]
    assert "appears twice (first on line 1)" in ps[0].message


def test_yaml_syntax_error_has_line():
    ps = problems_of("nodes:\n  - id: 0\n   cpus: [0\n")
    assert len(ps) == 1 and ps[0].line is not None and "not valid YAML" in ps[0].message


def test_not_a_mapping_and_missing_nodes():
    assert "must be a mapping" in rendered("- 1\n- 2\n")
    assert "must be a mapping" in rendered("")
    ps = problems_of("name: x\n")
    assert [(p.field, p.message) for p in ps] == [("nodes", "missing required key 'nodes'")]


def test_bad_cpulist_and_kind():
    ps = problems_of("nodes: [{id: 0, cpus: 3-1, memory: 1GiB, kind: dram}]\n")
    assert [p.field for p in ps] == ["nodes[0].cpus"]
    assert "runs backwards" in ps[0].message
    # kinds are read in any case
    m = yaml_machine.loads("nodes: [{id: 0, cpus: '0', memory: 1GiB, kind: hbm}]\n")
    assert m.nodes[0].kind is MemKind.HBM and m.nodes[0].cpus == (0,)


def test_validate_file_never_raises(tmp_path):
    ps = yaml_machine.validate_file(tmp_path / "missing.yaml")
    assert [p.message for p in ps] == ["no such file"]
    f = tmp_path / "bin.yaml"
    f.write_bytes(b"\xff\xfe\x00nodes")
    assert "not UTF-8" in yaml_machine.validate_file(f)[0].message
    good = tmp_path / "good.yaml"
    good.write_text(SPEC_EXAMPLE)
    assert yaml_machine.validate_file(good) == []


def test_load_raises_config_error_with_file(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("nodes: [{id: 0, cpus: 0, memory: 1GiB, color: red}]\n")
    with pytest.raises(ConfigError) as e:
        yaml_machine.load(f)
    assert e.value.file == str(f) and e.value.problems[0].line == 1


# ------------------------------------------------------------------------------ sniff
@pytest.mark.parametrize("text, expected", [
    (SPEC_EXAMPLE, True),
    ("nodes:\n  - id: 0\n", True),
    ("# comment\n\nnodes: []\n", True),
    ("nodes:\n  - id: 0\n    cpus: [0, 1", True),  # cut short
    ("threads: 4\nphases: []\n", False),
    ("available: 2 nodes (0-1)\nnode 0 cpus: 0 1\n", False),
    ('<?xml version="1.0"?>\n<topology>\n', False),
    ("node 0 mem=512M cpus=0\ndist 10 20\n", False),
    ("- 1\n- 2\n", False),
    ("", False),
])
def test_sniff(text, expected):
    assert yaml_machine.sniff(text) is expected


def test_sniff_rejects_every_other_format_in_test_data():
    files = [p for p in DATA.rglob("*") if p.is_file() and not tarfile.is_tarfile(p)]
    assert files, "tests/data/topologies is empty"
    for p in files:
        head = p.read_bytes()[:65536].decode("utf-8", errors="replace")
        assert not yaml_machine.sniff(head), p


# ------------------------------------------------------------------------------- dump
def test_dump_of_spec_example():
    m = yaml_machine.loads(SPEC_EXAMPLE)
    text = yaml_machine.dump(m)
    assert "    cpus: 0-23,48-71\n" in text
    assert "    cpus: 24-26\n" in text
    assert "    movable: 16GiB\n" in text
    assert ("      - {type: DMA32, start_pfn: 4096, spanned: 126976, present: 126976, "
            "managed: 115262}\n") in text
    assert "  - [81.2ns, 130.2ns]\n" in text
    assert "  - [122.1GB/s, 51.3GB/s]\n" in text
    assert "  - {between: [0, 1], bandwidth: 62GB/s, latency: 20ns}\n" in text
    assert "weighted_interleave: {0: 9, 1: 1}\n" in text
    assert "min_free_kbytes: 4443" in text
    assert "watermark_scale_factor" not in text  # defaults are left out
    assert "zones" not in text.split("  - id: 1")[0]  # node 0 had no explicit zones
    assert yaml_machine.loads(text) == m


def test_dump_leaves_out_derived_matrices_and_marks_cpuless():
    m = yaml_machine.loads("nodes: [{id: 0, cpus: 0, memory: 1GiB}, {id: 1, memory: 1GiB, "
                           "kind: CXL}]\ndistance: [[10, 14], [14, 10]]\n")
    text = yaml_machine.dump(m)
    assert "distance:" in text and "latency:" not in text and "bandwidth:" not in text
    assert "    cpus: []\n    memory: 1GiB\n    kind: CXL\n" in text
    assert yaml_machine.loads(text) == m


def test_dump_quotes_names_yaml_would_misread():
    for name in ["yes", "123", "a: b", "- x", "'quoted'", "#hash", "two\nlines", "  pad ",
                 "\x85", "a\u2028b", "tab\there", "😀 µs –", "null", "~"]:
        m = yaml_machine.loads("nodes: [{id: 0, cpus: 0, memory: 1GiB}]\n")
        m = dataclasses.replace(m, name=name, description=name)
        back = yaml_machine.loads(yaml_machine.dump(m))
        assert (back.name, back.description) == (name, name)
    m = dataclasses.replace(m, description="Granite Rapids – 128 cores, µ-arch")
    assert "description: Granite Rapids – 128 cores, µ-arch\n" in yaml_machine.dump(m)


# ------------------------------------------------------------------ round trip property
POS = st.floats(min_value=1e-3, max_value=1e7, allow_nan=False, allow_infinity=False,
                allow_subnormal=False)
KINDS = list(MemKind)


@st.composite
def zone_lists(draw):
    types = draw(st.lists(st.sampled_from(list(ZoneType)), unique=True, max_size=3))
    zones, pfn = [], draw(st.integers(0, 1 << 20))
    for t in sorted(types):
        spanned = draw(st.integers(0, 1 << 22))
        present = draw(st.integers(0, spanned))
        managed = draw(st.integers(0, present))
        zones.append(ZoneSpec(t, pfn, spanned, present, managed))
        pfn += spanned + draw(st.integers(0, 1000))
    return tuple(zones)


@st.composite
def machines(draw):
    n = draw(st.integers(1, 6))
    ids = sorted(draw(st.sets(st.integers(0, 60), min_size=n, max_size=n)))
    ncpu = draw(st.integers(1, 20))
    owners = draw(st.lists(st.none() | st.integers(0, n - 1), min_size=ncpu, max_size=ncpu))
    if all(o is None for o in owners):
        owners[0] = draw(st.integers(0, n - 1))
    nodes = []
    for k, nid in enumerate(ids):
        mem = draw(st.sampled_from([0, 1 << 30]) | st.integers(0, 1 << 44))
        zones = draw(st.none() | zone_lists())
        nodes.append(Node(
            id=nid, cpus=tuple(c for c, o in enumerate(owners) if o == k), mem_bytes=mem,
            kind=draw(st.sampled_from(KINDS)), zones=zones,
            mc_bandwidth_GBps=draw(st.none() | POS),
            movable_bytes=draw(st.integers(0, mem)),
            free_bytes=draw(st.none() | st.integers(0, 1 << 44))))
    if not any(nd.has_memory for nd in nodes):
        nodes[-1] = dataclasses.replace(nodes[-1], mem_bytes=1 << 30)

    def square(elem):
        return st.lists(st.lists(elem, min_size=n, max_size=n), min_size=n, max_size=n)

    distance = draw(st.none() | square(st.integers(11, 254)))
    if distance is not None:
        for i in range(n):
            distance[i][i] = 10
    links = []
    if n > 1:
        for _ in range(draw(st.integers(0, 3))):
            a, b = draw(st.lists(st.sampled_from(ids), min_size=2, max_size=2, unique=True))
            links.append(Link(a, b, draw(POS), draw(st.just(0.0) | POS)))
    return make_machine(
        draw(st.text(max_size=20)), nodes, distance=distance,
        latency_ns=draw(st.none() | square(POS)), bandwidth_GBps=draw(st.none() | square(POS)),
        links=links, description=draw(st.text(max_size=40)),
        cpu_ghz=draw(POS), page_size=draw(st.sampled_from([4096, 16384, 65536])),
        huge_page_size=draw(st.sampled_from([2 << 20, 1 << 30]) | st.integers(1, 1 << 40)),
        cache_line=draw(st.sampled_from([64, 128]) | st.integers(1, 4096)),
        min_free_kbytes=draw(st.none() | st.integers(0, 1 << 30)),
        watermark_scale_factor=draw(st.integers(1, 3000)),
        lowmem_reserve_ratio=tuple(draw(st.lists(st.integers(0, 1000), min_size=5,
                                                 max_size=5))),
        wi_weights=draw(st.none() | st.lists(st.integers(0, 255), min_size=n, max_size=n)
                        .map(tuple)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machines())
def test_round_trip_is_exact(m):
    text = yaml_machine.dump(m)
    back = yaml_machine.loads(text, file="rt.yaml")
    assert back.source == "yaml:rt.yaml"
    assert dataclasses.replace(back, source=m.source) == m
    assert back.description == m.description  # not part of machine equality
    assert back.derived == m.derived
    assert yaml_machine.dump(back) == text


# --------------------------------------------------------- other formats -> YAML -> back
def _load_other(path: Path):
    """Load with the loader ``load_machine`` picks by content (every format has one)."""
    return load_machine(path)


OTHER_FILES = sorted(p for sub in ("numactl-hardware", "hwloc", "layouts")
                     for p in (DATA / sub).rglob("*") if p.is_file()
                     and p.suffix in (".txt", ".xml", ".layout", ".bz2", ".gz", ".tar"))


@pytest.mark.parametrize("path", OTHER_FILES, ids=lambda p: p.name)
def test_other_formats_convert_to_yaml_and_back(path):
    m = _load_other(path)
    text = yaml_machine.dump(m)
    back = yaml_machine.loads(text, file="converted.yaml")
    assert dataclasses.replace(back, source=m.source) == m
    assert yaml_machine.dump(back) == text


ASYM_LINK = """\
nodes:
  - {id: 0, cpus: 0-3, memory: 1GiB}
  - {id: 1, cpus: 4-7, memory: 1GiB}
links:
  - {between: [1, 0], bandwidth: [10GB/s, 40GB/s], latency: 20ns}
"""


def test_link_bandwidth_per_direction_reads_and_round_trips():
    m = yaml_machine.loads(ASYM_LINK, file="asym.yaml")
    (ln,) = m.links
    # the first bandwidth carries data from the first node of 'between' to the second
    assert (ln.a, ln.b) == (1, 0)
    assert ln.bandwidth_towards(1, 0) == 10.0
    assert ln.bandwidth_towards(0, 1) == 40.0
    assert not ln.symmetric
    back = yaml_machine.loads(yaml_machine.dump(m))
    assert back.links == m.links
    # one bandwidth still means both directions
    sym = yaml_machine.loads(ASYM_LINK.replace("[10GB/s, 40GB/s]", "10GB/s"))
    assert sym.links[0].bandwidth_towards(0, 1) == sym.links[0].bandwidth_towards(1, 0) == 10


@pytest.mark.parametrize("bw,msg", [
    ("[10GB/s, 40GB/s, 5GB/s]", "expected one bandwidth or two"),
    ("[10GB/s, 40]", "needs a unit"),
    ("[10GB/s, 0GB/s]", "positive bandwidth"),
])
def test_bad_link_bandwidth_names_the_field(bw, msg):
    with pytest.raises(ConfigError) as e:
        yaml_machine.loads(ASYM_LINK.replace("[10GB/s, 40GB/s]", bw), file="asym.yaml")
    text = str(e.value)
    assert "links[0].bandwidth" in text and msg in text and "asym.yaml:5" in text
