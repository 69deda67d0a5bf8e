"""The traffic mix in timed runs (issue 11): a controller carrying writes or random lines
sustains less than its read-only bandwidth, in both engines.

Sources of the expected sizes: MLC ``--peak_injection_bandwidth`` on the 2x Xeon Gold 6252N
that clx-2s is calibrated from (tests/data/mlc/clx-6252n-csit.txt, SOURCES.md): 3:1, 2:1 and
1:1 read/write mixes reach 0.90, 0.89 and 0.84 of ALL Reads' 243.2 GB/s; the ``dram`` model's
own derived fractions (numasim.memctrl.dram_curve) for DDR4-2933.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from numasim.api import run
from numasim.machine.mix import MixWindow
from numasim.memctrl import ControllerSpec, ParamError, check_spec, make_model
from numasim.topology.calibrate import merge_mlc
from numasim.topology.loaders import load_machine, mlc

MLC = Path(__file__).parent / "data" / "mlc"
BW = 122.0977  # clx-2s node 0's controller bandwidth (MLC read-only, GB/s)


def model(impl, **params):
    return make_model(ControllerSpec.from_dict({"impl": impl, **params}), BW, 64, 2.3)


# ------------------------------------------------------------------ the models, analytically
def test_fifo_ignores_the_mix():
    m = model("fifo")
    assert not m.mix_aware
    assert m.service_factor(0.5, 1.0) == 1.0
    assert m.sustainable_bandwidth(0.5, 1.0) == BW


def test_curve_mix_is_mlcs_peak_injection_table():
    """The default mix is the 6252N's MLC table: a saturated controller's bandwidth per mix
    is read-only x MLC's ratio (1:1 203713.0 / 243159.4 MB/s)."""
    m = model("curve", points=[[0.5, 2], [0.97, 80]])
    assert m.mix_aware
    assert m.sustainable_bandwidth(1.0) == pytest.approx(BW)
    assert m.sustainable_bandwidth(0.75) == pytest.approx(BW * 219132.5 / 243159.4, rel=1e-3)
    assert m.sustainable_bandwidth(2 / 3) == pytest.approx(BW * 216603.1 / 243159.4, rel=1e-3)
    assert m.sustainable_bandwidth(0.5) == pytest.approx(BW * 203713.0 / 243159.4, rel=1e-3)
    assert m.sustainable_bandwidth(0.2) == m.sustainable_bandwidth(0.5)  # clamped
    assert m.service_factor(0.5) == pytest.approx(243159.4 / 203713.0, rel=1e-3)
    # curve has no random-access figure: a random stream costs what a sequential one does
    assert m.sustainable_bandwidth(0.5, 1.0) == m.sustainable_bandwidth(0.5, 0.0)
    flat = model("curve", points=[[0.5, 2]], mix=[[1, 1], [0.5, 1]])
    assert not flat.mix_aware


@pytest.mark.parametrize("mix, text", [
    ([[1, 1], [1, 0.9]], "not below"),
    ([[1, 1.2]], "outside"),
    ("fast", "pairs"),
    ([[1, True]], "pair of numbers"),
])
def test_bad_mix_names_the_parameter(mix, text):
    with pytest.raises(ParamError) as e:
        check_spec(ControllerSpec.from_dict({"impl": "curve", "points": [[0.5, 2]],
                                             "mix": mix}))
    assert e.value.key == "mix" and text in str(e.value)


def test_dram_read_only_beats_writes_beats_random():
    """DDR4-2933 as the model derives it (``anchor: dram``: the banks set the bandwidth):
    writes cost turnaround and drains, random lines row misses.  MLC on the real host: 2:1
    at 0.89 of read-only (the model: ~0.92); random lines have no MLC figure."""
    m = model("dram", preset="ddr4-2933")
    assert m.mix_aware
    peak = m.curve.peak_bytes_per_s / 1e9
    ro = m.sustainable_bandwidth(1.0)
    assert 0.9 * peak < ro < peak  # one stream nearly reaches the burst peak
    two_one = m.sustainable_bandwidth(2 / 3)
    rnd = m.sustainable_bandwidth(1.0, 1.0)
    gups = m.sustainable_bandwidth(0.5, 1.0)
    assert 0.85 * ro < two_one < 0.97 * ro
    assert 0.70 * ro < rnd < 0.9 * ro
    assert gups < rnd < two_one < ro
    # half the lines random: the service times average (harmonic mean of the bandwidths)
    half = m.sustainable_bandwidth(1.0, 0.5)
    assert 1 / half == pytest.approx(0.5 / ro + 0.5 / rnd)
    assert m.service_factor(2 / 3) == pytest.approx(BW / two_one)
    assert m.service_factor(1.0) < 1.0  # the DRAM outruns the measured 122 GB/s
    # anchored on the measured controller bandwidth instead: read-only is exactly it
    c = model("dram", preset="ddr4-2933", anchor="controller")
    assert c.sustainable_bandwidth(1.0) == pytest.approx(BW)
    assert c.sustainable_bandwidth(2 / 3) == pytest.approx(BW * two_one / ro)
    assert c.service_factor(1.0) == 1.0


def test_mix_window_counts_lines_and_forgets():
    w = MixWindow()
    assert w.add(0.0, True, False) == (1.0, 0.0)
    rf, rnd = w.add(0.0, False, True)
    assert (rf, rnd) == (0.5, 0.5)
    rf, rnd = w.add(1e6, True, False)  # 500 windows later only this line counts
    assert rf == pytest.approx(1.0) and rnd == pytest.approx(0.0)


# ------------------------------------------------------------------ import-mlc writes the mix
def test_import_mlc_reads_the_mix_table():
    r = mlc.parse_file(MLC / "skx-8180-csit.txt")
    assert r.mix_kind == "peak injection"
    assert r.mix[0] == (1.0, 215733.9) and r.mix[-1] == (0.5, 149911.3)
    pts = mlc.mix_points(r.mix)
    assert pts == ((1.0, 1.0), (0.75, 0.8443), (0.6667, 0.8279), (0.5, 0.6949))
    clx = merge_mlc(load_machine("clx-2s"), mlc.parse_file(MLC / "clx-6252n-csit.txt"))
    spec = clx.controller_spec(0)
    assert spec.get("mix") == ((1.0, 1.0), (0.75, 0.9012), (0.6667, 0.8908), (0.5, 0.8378))
    assert "peak injection" in spec.get("source")


def test_mlc_text_without_a_mix_table_leaves_the_default():
    text = (MLC / "clx-6252n-csit.txt").read_text()
    cut = text.index("$ sudo /home/testuser/mlc --peak_injection_bandwidth")
    end = text.index("$ sudo", cut + 10)
    r = mlc.parse_text(text[:cut] + text[end:])
    assert r.mix == []
    spec = merge_mlc(load_machine("clx-2s"), r).controller_spec(0)
    assert spec.get("mix") is None


# ------------------------------------------------------------------ both engines
def _mc0(machine, workload, engine, size="4MiB", **kw):
    r = run(machine, workload, engine=engine, threads=24, size=size, cpus=list(range(24)),
            numactl="--membind=0", cpu={"mlp": 40, "start_skew_ns": 100},
            **kw).to_dict(host=False)
    ph = [p for p in r["phases"] if p["measured"]][0]
    return ph["resources"]["mc 0"]["GBps"]


@pytest.mark.parametrize("engine", ["fast", "exact"])
def test_saturated_curve_controller_delivers_each_mixs_bandwidth(engine):
    """24 threads with 40 miss slots saturate node 0.  Read-only: the full 122.1 GB/s;
    STREAM copy (a load, a read-for-ownership and a write-back per element: 2:1) and GUPS (a
    read and a write-back per update: 1:1) get MLC's 2:1 and 1:1 fractions."""
    m = load_machine("clx-2s-curve")
    size = "4MiB" if engine == "fast" else "2MiB"  # the exact engine: fewer lines, same load
    assert _mc0(m, "stride", engine, size) == pytest.approx(BW, rel=0.025)
    assert _mc0(m, "stream", engine, size, op="copy") == pytest.approx(BW * 0.8908, rel=0.025)
    assert _mc0(m, "gups", engine, size) == pytest.approx(BW * 0.8378, rel=0.025)


def test_fifo_still_delivers_full_bandwidth_whatever_the_mix():
    m = load_machine("clx-2s")
    for wl, kw in (("stride", {}), ("stream", {"op": "copy"}), ("gups", {})):
        assert _mc0(m, wl, "fast", **kw) == pytest.approx(BW, rel=0.002)
