"""Every shipped experiment runs at its reduced (--quick) size, its plots are produced, and
its pages land where the kernel's policies put them."""

from __future__ import annotations

from pathlib import Path

import pytest

import numasim

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["policy-comparison", "thread-scaling-epyc", "cxl-tiering", "opteron-2.6.7-vs-6.12",
           "pointer-chase-latency", "loaded-latency", "first-touch-balancing", "thp-placement",
           "scan-period-sweep", "tiering-policies", "tiering-rate-limit",
           "tiering-moving-hot-set"]


def test_the_five_are_shipped():
    names = {p.stem for p in (REPO / "experiments").glob("*.yaml")}
    assert set(SHIPPED) <= names


@pytest.fixture(scope="module", params=SHIPPED)
def quick(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    df = numasim.sweep(REPO / "experiments" / f"{request.param}.yaml", quick=True,
                       out=d / "results", plots=d / "plots", progress=False,
                       plot_formats=("png",))
    return request.param, df, d


def row(df, **where):
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) >= 1, where
    return sel.iloc[0]


def test_quick_run_and_plots(quick):
    name, df, d = quick
    assert len(df) > 0 and set(df["status"]) == {"ok"}, df.get("error")
    pngs = {p.stem for p in (d / "plots").glob("*.png")}
    pngs |= {"machine"} if any(p.startswith("machine-") for p in pngs) else set()  # several
    assert {"machine", "throughput", "latency", "locality", "latency_cdf", "pages_per_node",
            "bandwidth_timeline", "utilisation"} <= pngs
    assert (d / "results" / "results.csv").exists()

    if name == "policy-comparison":
        serial = row(df, case="first-touch, serial init")
        assert serial["pages_node1"] == 0
        il = row(df, case="--interleave=all")
        assert il["pages_node0"] == il["pages_node1"]
        remote = row(df, case="--membind=1 (remote), threads on socket 0")
        assert remote["pages_node0"] == 0 and remote["local_fraction"] == 0
        par = row(df, case="first-touch, parallel init")
        assert par["local_fraction"] > 0.99
    elif name == "first-touch-balancing":
        static = row(df, case="serial init, static")
        moved = row(df, case="serial init, NUMA balancing")
        assert static["pages_node1"] == 0 and moved["pages_node1"] > 0
        assert moved["local_fraction_measured"] > static["local_fraction_measured"] + 0.3
        assert moved["bandwidth_GBps"] > static["bandwidth_GBps"]
    elif name == "thp-placement":
        # 4 MiB arrays: one huge page each (the rest 4 KiB), interleaved per huge page, so
        # the nodes are out of balance and STREAM loses bandwidth; 512x fewer faults
        never = row(df, case="STREAM triad, --interleave=all", thp="never")
        always = row(df, case="STREAM triad, --interleave=all", thp="always")
        assert never["pages_node0"] == never["pages_node1"]
        assert always["thp_fault_alloc"] > 0
        assert always["pages_node0"] != always["pages_node1"]
        assert always["page_faults"] < never["page_faults"] / 1.5
        assert always["bandwidth_GBps"] < never["bandwidth_GBps"]
        assert "kernel_mm" in pngs
    elif name == "tiering-policies":
        # quick: an 8 MiB table fits the DRAM tier: first touch keeps the hot set there,
        # weighted interleave 6:1 sends a seventh of it to CXL
        ft = row(df, case="first touch", theta=0.99)
        wi = row(df, case="weighted interleave 6:1", theta=0.99)
        assert ft["pages_node1"] == 0 and ft["hot_residency"] == 1.0
        assert wi["pages_node1"] > 0 and 0.7 < wi["hot_residency"] < 0.95
        assert {"tiering", "tiering_timeline"} <= pngs
    elif name in ("tiering-rate-limit", "tiering-moving-hot-set"):
        assert df["hot_residency"].notna().all() and "tiering_timeline" in pngs
    elif name == "scan-period-sweep":
        import pandas as pd

        static = row(df, case="static (no balancing)")
        # no balancing counters at all without balancing
        assert static["pages_node1"] == 0 and pd.isna(static["numa_hint_faults"])
        fast = row(df, case="scan 256 MB, period 2 ms")
        assert fast["numa_hint_faults"] > 0 and fast["pages_node1"] > 0
        assert "kernel_mm" in pngs
    elif name == "opteron-2.6.7-vs-6.12":
        old = row(df, case="--membind=0,1", linux="2.6.7")
        new = row(df, case="--membind=0,1", linux="6.12")
        assert old["pages_node0"] > 0 and old["pages_node1"] == 0
        assert new["pages_node1"] > 0 and new["pages_node0"] == 0
        assert old["latency_mean_ns"] > new["latency_mean_ns"]
        d1 = row(df, case="default (local)", linux="2.6.7")
        d2 = row(df, case="default (local)", linux="6.12")
        assert d1["pages_node3"] == d2["pages_node3"] > 0
    elif name == "cxl-tiering":
        w4 = row(df, case="weighted 4:1")
        assert w4["pages_node0"] / w4["pages_node1"] == pytest.approx(4, rel=0.05)
        assert row(df, case="CXL only (--membind=1)")["pages_node0"] == 0
    elif name == "thread-scaling-epyc":
        one = df[df["case"] == "--membind=0 (one node)"]
        assert (one["pages_node1"] == 0).all()
        ft = df[df["case"] == "first-touch (parallel init)"].set_index("threads")
        assert ft.loc[8, "bandwidth_GBps"] > ft.loc[1, "bandwidth_GBps"]
    elif name == "loaded-latency":
        fifo = row(df, case="clx-2s fifo fast", compute=40)["latency_mean_ns"]
        curve = row(df, case="clx-2s-curve fast", compute=40)["latency_mean_ns"]
        light = row(df, case="clx-2s-curve fast", compute=400)["latency_mean_ns"]
        assert fifo < 86 and curve > fifo + 25 and light < 90, (fifo, curve, light)
        for m in ("clx-2s-curve", "skx-2s-snc2-curve", "cxl-1s-curve"):
            peak = row(df, case=f"{m} fast", compute=0)["latency_mean_ns"]
            idle = row(df, case=f"{m} fast", compute=400)["latency_mean_ns"]
            assert peak > 2 * idle, (m, peak, idle)
    elif name == "pointer-chase-latency":
        loc = df[df["case"] == "local (--membind=0)"]
        rem = df[df["case"] == "remote (--membind=1)"]
        assert (loc["pages_node1"] == 0).all() and (rem["pages_node0"] == 0).all()
        big = int(df["size"].max())
        assert row(rem, size=big)["ns_per_access"] > row(loc, size=big)["ns_per_access"]
