"""The optional per-node last-level cache."""

from __future__ import annotations

import numpy as np

from numasim.api import run
from numasim.machine import cpu as C
from numasim.topology.loaders import load_machine

CLX = load_machine("clx-2s")


def test_lru_set_associative():
    tags, meta, clock = C.make_llc(1, 2 * 64 * 2, 2, 64)  # 2 sets x 2 ways
    assert tags.shape == (1, 2, 2)
    hit, wb = C.llc_access(tags, meta, clock, 0, 0, 1, 5)  # line 0 (set 0), dirty, node 5
    assert (hit, wb) == (0, -1)
    assert C.llc_access(tags, meta, clock, 0, 2, 0, 5) == (0, -1)  # line 2: set 0, way 2
    assert C.llc_access(tags, meta, clock, 0, 0, 0, 5)[0] == 1  # line 0 still there
    # line 4 evicts the least recently used of set 0: line 2 (clean) -> no write-back
    assert C.llc_access(tags, meta, clock, 0, 4, 0, 5) == (0, -1)
    # line 6 evicts line 0, which is dirty: write-back to its node
    assert C.llc_access(tags, meta, clock, 0, 6, 0, 5) == (0, 5)


def test_small_buffer_hits_after_the_first_pass():
    common = dict(threads=1, size="256KiB", repeat=4)
    with_llc = run(CLX, "stride", cpu={"llc": {"size": 1 << 20}}, **common).to_dict()
    without = run(CLX, "stride", **common).to_dict()
    lines = (256 << 10) // 64
    # the init writes bring every line in; all four reading passes then hit
    assert with_llc["hits"] == 4 * lines and without["hits"] == 0
    assert with_llc["phases"][1]["memory_requests"] == 0
    assert with_llc["phases"][1]["cycles"] < without["phases"][1]["cycles"] / 3


def test_dirty_lines_are_written_back_on_eviction():
    d = run(CLX, "stream", op="copy", threads=1, size="4MiB",
            cpu={"llc": {"size": 1 << 20, "ways": 4}}).to_dict()
    assert d["page_faults"]["writebacks"] > 0
    assert np.isfinite(d["latency_ns"]["mean"])


def test_engines_see_the_same_hits_when_two_cpus_fault_turn_about():
    """Two threads on two nodes, each chasing 512 KiB through its node's 256 KiB cache.  The
    exact engine faults their pages turn about, the fast one CPU after CPU within a quantum,
    so each thread's page rows differ; with the row itself as the cache's colour, every other
    row left the exact engine half of the sets (577 hits against 2666).  A page's colour is
    now a mix of its row (``cpu.llc_key``): both see the same cache."""
    skx = load_machine("skx-2s-snc2")
    kw = dict(threads=2, size="1MiB", seed=6, cpu={"llc": {"size": "256KiB"}})
    fast = run(skx, "pointer_chase", engine="fast", **kw).to_dict()
    exact = run(skx, "pointer_chase", engine="exact", **kw).to_dict()
    assert [t["node"] for t in fast["threads"]] == [0, 1]
    assert fast["hits"] > 2000
    assert abs(fast["hits"] / exact["hits"] - 1) < 0.05, (fast["hits"], exact["hits"])
    assert abs(fast["cycles"] / exact["cycles"] - 1) < 0.03


def test_a_pages_lines_fill_consecutive_sets_and_no_two_pages_share_a_key():
    lpp = 64
    keys = [C.llc_key(pg, line, lpp) for pg in range(2000) for line in (0, 1, 63)]
    assert len(set(keys)) == len(keys)
    assert all(C.llc_key(7, k, lpp) == C.llc_key(7, 0, lpp) + k for k in range(lpp))
    colours = {C.llc_key(pg, 0, lpp) // lpp % 4 for pg in range(0, 64, 2)}  # even rows only
    assert colours == {0, 1, 2, 3}
