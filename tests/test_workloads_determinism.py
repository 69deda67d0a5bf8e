"""Same configuration and seed: byte-identical JSON (``host_seconds`` aside, by design)."""

from __future__ import annotations

import json

import pytest

from numasim.api import run
from numasim.topology.loaders import load_machine

M = load_machine("skx-2s-snc2")


def _json(engine, seed, kernel="gups", **kw):
    opts = dict(threads=8, size="2MiB", count=20000)
    opts.update(kw)
    return run(M, kernel, engine=engine, seed=seed, **opts).to_json(host=False)


def test_fast_same_seed_same_bytes():
    assert _json("fast", 7) == _json("fast", 7)


def test_exact_same_seed_same_bytes():
    a = _json("exact", 3, size="256KiB", count=2000)
    assert a == _json("exact", 3, size="256KiB", count=2000)


def test_seed_changes_random_kernels():
    a, b = json.loads(_json("fast", 1)), json.loads(_json("fast", 2))
    assert a["cycles"] != b["cycles"]
    assert a["latency_histogram"] != b["latency_histogram"]


def test_host_seconds_is_the_only_uncompared_field():
    r = run(M, "zipf", threads=4, size="1MiB", count=5000)
    full = r.to_dict()
    assert "host_seconds" in full and full["host_seconds"] >= 0
    bare = r.to_dict(host=False)
    assert set(full) - set(bare) == {"host_seconds"}


def test_required_top_level_keys():
    d = run(M, "stream", threads=4, size="1MiB").to_dict()
    for key in ("runtime_s", "cycles", "bandwidth_GBps", "latency_ns", "local_fraction",
                "pages_per_node", "numastat", "accesses", "host_seconds"):
        assert key in d, key
    assert set(d["latency_ns"]) >= {"mean", "p50", "p95", "p99"}
    assert d["latency_ns"]["p50"] <= d["latency_ns"]["p95"] <= d["latency_ns"]["p99"]
    # bytes as STREAM counts them: 3 arrays x 1 MiB moved by the triad
    triad = d["phases"][1]
    assert triad["bytes"] == 3 << 20
    assert d["runtime_s"] == pytest.approx(d["cycles"] / (M.cpu_ghz * 1e9), rel=1e-6)
    assert d["accesses"] >= d["memory_requests"] > 0
