"""The ``dram`` model in the exact engine, request by request (numasim.memctrl.dram_online),
against the offline model it runs online and against the fast engine's derived estimate.

Tolerances (measured on clx-2s node 0 with DDR4-2933, 24 threads x 40 miss slots, saturated):
fast vs exact within 6 % on STREAM copy and GUPS at 4 MiB (at 8 MiB: copy 0.1 %, GUPS 8.6 %,
read-only stride 5 %; the fast engine's first quanta run a read-only stride ahead of the
banks, 10 % at 4 MiB, so the stride is not asserted at this size).
"""

from __future__ import annotations

import numpy as np
import pytest

from numasim.api import run
from numasim.memctrl import ControllerSpec
from numasim.memctrl.dram_core import ROW_CONFLICT, ROW_HIT, ROW_MISS
from numasim.memctrl.dram_curve import synthetic
from numasim.memctrl.dram_model import dram_config, simulate
from numasim.memctrl.dram_online import OnlineDram
from numasim.topology.loaders import load_machine

CFG = dram_config("ddr4-2933")


def _online(cfg, t, a, w):
    """Drive OnlineDram as the exact engine does: arrivals in time order, a scheduler call
    every period; returns {read index: data end (ns)}."""
    o = OnlineDram(cfg, 1.0, 0.0)
    out: dict[int, float] = {}
    i, call = 0, o.period
    while i < len(t) or o.pending:
        while i < len(t) and t[i] <= call:
            o.arrive(t[i], a[i], bool(w[i]), -1 if w[i] else i)
            i += 1
        for rid, end in o.run_to(call):
            assert end >= call - 1e-6  # no continuation in the past
            out[rid] = end
        call += o.period
    return out, o


def test_one_read_costs_its_datasheet_latency():
    """An idle bank: a row miss is tRCD + CL + burst clocks; the next line of the row a hit
    (CL + burst after its own arrival, once the bus allows); another row of the same bank
    a conflict (tRP more, and no earlier than tRAS after the ACT)."""
    ck = CFG.tck_ns
    row = int(CFG["row_bytes"]) * int(CFG["channels"]) * int(CFG["bankgroups"])
    same_bank_other_row = row * int(CFG["banks"]) * int(CFG["ranks"])
    t = np.array([0.0, 100.0, 200.0])
    a = np.array([0, 64 * int(CFG["channels"]) * int(CFG["bankgroups"]), same_bank_other_row])
    out, o = _online(CFG, t, a, np.zeros(3, dtype=np.int64))
    cl, rcd, rp, burst = CFG["CL"], CFG["tRCD"], CFG["tRP"], CFG["tBURST"]
    assert out[0] == pytest.approx((rcd + cl + burst) * ck, abs=ck)
    assert out[1] - 100.0 == pytest.approx((cl + burst) * ck, abs=ck)
    assert out[2] - 200.0 == pytest.approx((rp + rcd + cl + burst) * ck, abs=ck)
    assert list(o.kinds) == [1, 1, 1]
    assert (ROW_HIT, ROW_MISS, ROW_CONFLICT) == (0, 1, 2)


@pytest.mark.parametrize("pattern, rf, load", [("streams", 1.0, 0.7), ("streams", 2 / 3, 0.7),
                                               ("random", 1.0, 1.3), ("random", 2 / 3, 0.7)])
def test_online_model_is_the_offline_model(pattern, rf, load):
    """Served online (queues kept between calls), the same traffic gets the offline model's
    mean read latency and utilisation within 3 %."""
    t, a, w = synthetic(CFG, load, rf, pattern, 20000, seed=1)
    off = simulate(CFG, t, a, w)
    on, _ = _online(CFG, t, a, w)
    ids = np.array(sorted(on))
    lat_on = float(np.mean(np.array([on[k] for k in ids]) - t[ids]))
    assert lat_on == pytest.approx(float(off.latency_ns[w == 0].mean()), rel=0.03)
    span_off = off.done_ns.max() - t[0]
    span_on = max(max(on.values()), float(t[-1])) - t[0]
    assert span_on == pytest.approx(span_off, rel=0.03)


def _dram_machine(**params):
    return load_machine("clx-2s").with_changes(memory_controller=ControllerSpec.from_dict(
        {"impl": "dram", "preset": "ddr4-2933", **params}))


def _phase(machine, workload, engine, size, **kw):
    r = run(machine, workload, engine=engine, threads=24, size=size, cpus=list(range(24)),
            numactl="--membind=0", cpu={"mlp": 40, "start_skew_ns": 100},
            **kw).to_dict(host=False)
    return [p for p in r["phases"] if p["measured"]][0]


@pytest.mark.parametrize("workload, kw", [("gups", {}), ("stream", {"op": "copy"})])
def test_engines_agree_on_dram(workload, kw):
    """Random read-modify-writes and a streaming copy saturating the DRAM: the exact
    engine's banks and the fast engine's derived fractions give the same time and latency
    within 6 %."""
    m = _dram_machine()
    f = _phase(m, workload, "fast", "4MiB", **kw)
    x = _phase(m, workload, "exact", "4MiB", **kw)
    assert f["cycles"] == pytest.approx(x["cycles"], rel=0.06)
    assert f["latency_ns_mean"] == pytest.approx(x["latency_ns_mean"], rel=0.06)


def test_exact_engine_runs_the_banks():
    """``exact: banks`` (the default) and ``exact: curve`` are different models in the exact
    engine, and each is deterministic."""
    banks = _phase(_dram_machine(), "gups", "exact", "1MiB")
    again = _phase(_dram_machine(), "gups", "exact", "1MiB")
    curve = _phase(_dram_machine(exact="curve"), "gups", "exact", "1MiB")
    assert banks == again
    assert banks["cycles"] != curve["cycles"]
