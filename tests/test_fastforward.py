"""Fast-forward (numasim.machine.fastforward): exact where it must be, within its stated error
where it samples, off by default and then not in the way."""

from __future__ import annotations

import numpy as np
import pytest

from numasim.api import _machine, _workload, run
from numasim.errors import NumasimError
from numasim.machine import cpu as C
from numasim.machine.fastforward import FastForwardParams, check_fast_forward
from numasim.machine.fastforward_stream import advance_stream, safe_accesses
from numasim.spec import build_spec
from numasim.wiring import build_program
from numasim.workloads import gen as G

BOUND = 2.0  # % on throughput: the error the README states


def _program(kernel: str, **opts):
    spec = build_spec(_machine("clx-2s"), _workload(kernel, dict(opts)))
    return build_program(spec)


@pytest.mark.parametrize("kernel,opts", [
    ("stream", dict(op="triad", repeat=3, size="1MiB")),
    ("gups", dict(size="1MiB", repeat=2)),
    ("pointer_chase", dict(size="1MiB", repeat=2)),
    ("zipf", dict(size="1MiB", repeat=2)),
    ("zipf", dict(size="1MiB", repeat=3, shift=0.25, write_fraction=0.1)),
    ("kv", dict(size="1MiB", repeat=3, value="1KiB", write_fraction=0.05, shift="64KiB")),
    ("stride", dict(size="1MiB", stride=8192, repeat=3)),
])
def test_advance_stream_leaves_the_state_generation_leaves(kernel, opts):
    """Skipping n accesses leaves the generator exactly where generating them would: the
    accesses after a skip are the ones a full simulation issues."""
    prog = _program(kernel, threads=2, **opts)
    for ph in prog.programs:
        for n in (0, 1, 255, 256, 4097, 40_000, 10 ** 7):
            ts = np.zeros((2, G.TS_NCOLS), dtype=np.int64)
            rngs = np.array([123, 456], dtype=np.uint64)
            G.start_thread(ts, 0, ph.ops, *ph.ranges[0])
            ts2, rngs2 = ts.copy(), rngs.copy()
            left = got = n
            got = 0
            while left > 0:
                b = np.zeros((1, min(left, C.BUF_LEN), G.B_NCOLS), dtype=np.int64)
                k = G.fill_batch(ph.ops, ph.opf, ts, rngs, 0, prog.trace_arr, b, 0)
                if k == 0:
                    break
                left -= k
                got += k
            assert advance_stream(ph.ops, ph.opf, ts2, rngs2, 0, n) == got
            assert (ts == ts2).all() and (rngs == rngs2).all()


def test_safe_accesses_stop_at_the_first_fault():
    """Nothing mapped: a sweep's first access faults; once its pages are faulted, the whole
    stretch (and later repetitions) is safe."""
    prog = _program("stream", threads=1, size="1MiB", repeat=5, init="none")
    ks = prog.kernel.ks
    ph = prog.programs[-1]
    ts = np.zeros((1, G.TS_NCOLS), dtype=np.int64)
    G.start_thread(ts, 0, ph.ops, *ph.ranges[0])
    args = (prog.trace_arr, ks.regions, ks.pages, ks.vmas, ks.pt_page, ks.pt_vma,
            int(prog.lpp).bit_length() - 1)
    assert safe_accesses(ph.ops, ts, 0, 10_000, *args) == 0
    # fault the first half of every page of a, b, c for writing, through the kernel
    half = {}
    for mr in prog.regions.values():
        npages = -(-mr.lines // prog.lpp)
        half[mr.name] = npages // 2
        prog.kernel.touch(prog.main, mr.vpn, npages // 2, True)
    # the triad's lines up to the first unfaulted page of any array: 3 accesses per line
    got = safe_accesses(ph.ops, ts, 0, 10_000_000, *args)
    first = ph.ops[ph.ranges[0][0]]
    lo = int(first[G.O_LO])
    assert got == 3 * (min(half.values()) * prog.lpp - lo) > 0
    for mr in prog.regions.values():
        npages = -(-mr.lines // prog.lpp)
        prog.kernel.touch(prog.main, mr.vpn + npages // 2, npages - npages // 2, True)
    args = (prog.trace_arr, ks.regions, ks.pages, ks.vmas, ks.pt_page, ks.pt_vma,
            int(prog.lpp).bit_length() - 1)
    # everything mapped: every access of the 5 repetitions (no more: the phase ends)
    assert safe_accesses(ph.ops, ts, 0, 10_000_000, *args) == ph.accesses
    assert safe_accesses(ph.ops, ts, 0, 100_000, *args) == 100_000


def _ff_pair(kernel: str, ff="2,20", **opts):
    off = run("clx-2s", kernel, **opts)
    on = run("clx-2s", kernel, fast_forward=ff, **opts)
    return off.to_dict(host=False), on.to_dict(host=False)


@pytest.mark.parametrize("kernel,opts", [
    ("stream", dict(op="triad", threads=4, size="32MiB", repeat=20)),
    ("gups", dict(threads=4, size="32MiB", repeat=8)),
])
def test_error_within_the_stated_bound(kernel, opts):
    """Throughput with fast-forward within BOUND % of the full simulation, on runs where
    most of the measured phase was skipped (the test fails if nothing is skipped)."""
    d0, d1 = _ff_pair(kernel, **opts)
    ff = d1["config"]["fast_forward"]
    assert ff["on"] and ff["skips"] >= 1 and ff["skipped_fraction"] > 0.3
    assert d0["config"]["fast_forward"] == {"on": False}
    for p0, p1 in zip(d0["phases"], d1["phases"], strict=True):
        if p0["measured"]:
            assert abs(p1["bandwidth_GBps"] / p0["bandwidth_GBps"] - 1) * 100 <= BOUND
            assert abs(p1["seconds"] / p0["seconds"] - 1) * 100 <= BOUND
            assert p1["accesses"] == p0["accesses"]  # every access counted, skipped or not
    assert abs(d1["runtime_s"] / d0["runtime_s"] - 1) * 100 <= BOUND


def test_faults_placed_exactly_and_not_skipped():
    """A phase that first-touches its pages (--init none) and then repeats: every fault
    happens (same count, same zeroing), every page lands where it does without
    fast-forward, and the repetitions after the faulting one are skipped."""
    opts = dict(op="triad", threads=4, size="16MiB", repeat=30, init="none")
    d0, d1 = _ff_pair("stream", numactl="--interleave=all", **opts)
    assert d1["config"]["fast_forward"]["skipped_fraction"] > 0.3
    assert d1["pages_per_node"] == d0["pages_per_node"]
    assert d1["numastat"] == d0["numastat"]
    assert d1["page_faults"]["count"] == d0["page_faults"]["count"]
    assert d1["page_faults"]["zeroed_bytes"] == d0["page_faults"]["zeroed_bytes"]


def test_same_seed_same_bytes_with_fast_forward():
    kw = dict(threads=4, size="16MiB", repeat=20, seed=5, fast_forward="2,10")
    a = run("clx-2s", "gups", **kw).to_json(host=False)
    b = run("clx-2s", "gups", **kw).to_json(host=False)
    assert a == b and '"skips": 0' not in a


def test_off_by_default_and_then_untouched(monkeypatch):
    """Off, the engine never builds a forwarder (the hooks are skipped): results are the
    run's as before; False and None are the same run."""
    import numasim.machine.fastforward as ff

    def boom(*a, **k):
        raise AssertionError("fast-forward code ran while off")

    monkeypatch.setattr(ff.FastForwarder, "__init__", boom)
    kw = dict(threads=4, size="8MiB", repeat=10)
    a = run("clx-2s", "stream", **kw).to_json(host=False)
    b = run("clx-2s", "stream", fast_forward=False, **kw).to_json(host=False)
    assert a == b and '"fast_forward": {\n   "on": false\n  }' in a


def test_skips_stop_before_external_events():
    """next_event_cycle (the NUMA-balancing scanner's hook): no skipped stretch passes an
    event; skips still happen between events."""
    from numasim.machine.sim import Simulation

    spec = build_spec(_machine("clx-2s"), _workload("stream", dict(threads=4, size="32MiB",
                                                                   repeat=20)),
                      fast_forward="2,20")
    sim = Simulation(build_program(spec))
    period = 30_000_000.0
    sim.next_event_cycle = lambda now: (now // period + 1) * period
    sim.run("fast")
    st = sim.fast_forwarder.stretches
    assert st
    for a, b in st:
        assert np.floor(a / period) == np.floor((b - 1e-6) / period), (a, b)


@pytest.mark.parametrize("value,expect", [
    (None, None), (False, None), ("off", None), (True, FastForwardParams()),
    ("2,20", FastForwardParams(2, 20.0)), ("4,10,0.01", FastForwardParams(4, 10.0, 0.01)),
    ({"window": 3, "skip": 5}, FastForwardParams(3, 5.0)),
])
def test_settings_read(value, expect):
    assert check_fast_forward(value) == expect


@pytest.mark.parametrize("value", ["1,20", "2,0", "2,-3", "2,20,1.5", "x", "1,2,3,4", "2.5,3",
                                   {"windows": 2}, 7, "2,nan"])
def test_bad_settings_are_one_paragraph(value):
    with pytest.raises(NumasimError) as e:
        check_fast_forward(value)
    text = str(e.value)
    assert "fast_forward" in text and "WINDOW,SKIP" in text and "\n" not in text


def test_cli_bad_value_exits_2_and_exact_engine_refuses(capsys):
    from numasim.cli import main

    assert main(["numactl", "--fast-forward=1,20", "--", "stream", "--machine", "clx-2s"]) == 2
    assert "WINDOW 1" in capsys.readouterr().err
    assert main(["numactl", "--", "stream", "--machine", "clx-2s", "--engine", "exact",
                 "--fast-forward"]) == 2
    assert "needs the fast engine" in capsys.readouterr().err


def test_cli_fast_forward_before_the_kernel(capsys):
    from numasim.cli import main

    assert main(["numactl", "--interleave=all", "--fast-forward=2,20", "--", "stream",
                 "--threads", "2", "--size", "1MiB", "--machine", "clx-2s", "--json",
                 "--no-host-time", "--no-progress"]) == 0
    assert '"window": 2' in capsys.readouterr().out


def test_experiment_yaml_knob(tmp_path):
    from numasim.experiments.expand import load_experiment

    text = ("experiment: ff\nmachine: oracle-2node\nworkload: {kernel: stream, size: 1MiB}\n"
            "fast_forward: '2,10'\n")
    p = tmp_path / "e.yaml"
    p.write_text(text)
    exp = load_experiment(p)
    assert exp.points[0].config["fast_forward"] == "2,10,0.02"
    p.write_text(text.replace("'2,10'", "'0,10'"))
    with pytest.raises(NumasimError) as e:
        load_experiment(p)
    assert "WINDOW 0" in str(e.value)
    # off: the config (and so the point's key) is what it was without the knob
    p.write_text(text.replace("fast_forward: '2,10'\n", ""))
    assert "fast_forward" not in load_experiment(p).points[0].config


def test_trace_replay_faults_then_skips(tmp_path):
    """A trace (the TRACE op: records checked one by one) that writes 2 MiB, replayed 40
    times: the first replay faults every page in detail, the later ones are sampled."""
    from numasim.workloads.model import Phase, Trace, Workload
    from numasim.workloads.trace import save_trace

    lines = (2 << 20) // 64
    addr = (0x10000000 + 64 * np.arange(lines)).astype(np.uint64)
    path = tmp_path / "sweep.npz"
    save_trace(path, np.zeros(lines, dtype=np.int64), addr, np.ones(lines, dtype=np.uint8))

    def wl():
        return Workload(name="trace", trace=Trace(str(path)),
                        phases=[Phase("replay", "trace", repeat=40)])

    d0 = run("clx-2s", wl()).to_dict(host=False)
    d1 = run("clx-2s", wl(), fast_forward="2,20").to_dict(host=False)
    assert d1["config"]["fast_forward"]["skipped_fraction"] > 0.3
    assert d1["pages_per_node"] == d0["pages_per_node"]
    assert d1["page_faults"]["count"] == d0["page_faults"]["count"] == 512
    assert abs(d1["runtime_s"] / d0["runtime_s"] - 1) * 100 <= BOUND
