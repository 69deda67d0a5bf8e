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
    ours = {(z.node, z.name): (z.spanned, z.present) for z in machine.derived_state.zones}
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
