"""Memory-controller models (numasim.memctrl): the interface, the ``curve`` model against
the measured curves it is calibrated from, both engines with it, and ``fifo`` unchanged.

The curves are MLC ``--loaded_latency`` tables of real servers (tests/data/mlc, SOURCES.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from numasim.api import run
from numasim.errors import NumasimError
from numasim.memctrl import (
    ControllerSpec,
    ParamError,
    check_spec,
    describe,
    make_model,
    model_class,
)
from numasim.topology.loaders import load_machine, mlc, yaml_machine

MLC = Path(__file__).parent / "data" / "mlc"


def clx_points():
    return mlc.curve_points(mlc.parse_file(MLC / "clx-6252n-csit.txt").loaded)


def curve_model(points, bw=122.0977, ghz=2.3):
    return make_model(ControllerSpec("curve", (("points", points),)), bw, 64, ghz)


# ------------------------------------------------------------------ the interface
def test_every_model_declares_its_parameters():
    for impl in ("fifo", "curve"):
        cls = model_class(impl)
        assert cls.impl == impl and cls.description
        for p in cls.params:
            assert p.description and (p.required or p.source)
        assert impl in describe(impl)


def test_fifo_adds_nothing_and_sustains_its_bandwidth():
    m = make_model(None, 100.0, 64, 2.0)
    assert m.impl == "fifo" and not m.extra
    assert m.service_cycles() == pytest.approx(64 / 100.0 * 2.0)
    assert m.extra_latency(0.99, 0.5) == 0.0
    assert m.sustainable_bandwidth(0.5) == 100.0


@pytest.mark.parametrize("spec, key, text", [
    ({"impl": "dramm"}, "impl", "unknown memory-controller model"),
    ({"impl": "curve"}, "points", "needs 'points'"),
    ({"impl": "curve", "points": [[0.5, 2]], "knee": 3}, "knee", "no parameter 'knee'"),
    ({"impl": "curve", "points": [[0.5, 2], [0.4, 3]]}, "points", "does not exceed"),
    ({"impl": "curve", "points": [[0.5, 20], [0.9, 3]]}, "points", "below the previous"),
    ({"impl": "curve", "points": [[1.5, 2]]}, "points", "outside 0..1"),
    ({"impl": "curve", "points": [[0.5, "fast"]]}, "points", "point 0"),
    ({"impl": "fifo", "points": [[0.5, 2]]}, "points", "no parameter 'points'"),
])
def test_bad_specs_name_the_parameter(spec, key, text):
    with pytest.raises(ParamError) as e:
        check_spec(ControllerSpec.from_dict(spec))
    assert e.value.key == key and text in str(e.value)


def test_machine_yaml_reports_bad_controller_with_file_and_field(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("name: t\nnodes:\n  - {id: 0, cpus: 0-3, memory: 1GiB,\n"
                 "     memory_controller: {impl: curve, points: [[0.5, 2], [0.4, 3]]}}\n")
    with pytest.raises(NumasimError) as e:
        yaml_machine.load(p)
    msg = e.value.render()
    assert str(p) in msg and "nodes[0].memory_controller.points" in msg


def test_machine_yaml_round_trips_controllers():
    for name in ("clx-2s-curve", "cxl-1s-curve"):
        m = load_machine(name)
        assert yaml_machine.loads(yaml_machine.dump(m)) == m
    cxl = load_machine("cxl-1s-curve")
    assert cxl.controller_spec(0).impl == "curve"
    assert cxl.controller_spec(1).impl == "fifo"  # the node's own overrides the machine's
    assert load_machine("clx-2s").controller_spec(0) is None  # shipped default: fifo


# ------------------------------------------------------------------ the curve, analytically
def test_curve_is_flat_at_low_load_and_climbs_past_2x_idle_before_peak():
    idle = 80.19  # the lightest-load latency of the table
    m = curve_model(clx_points())
    ns = lambda u: idle + m.extra_latency(u) / 2.3  # noqa: E731
    assert ns(0.0) == pytest.approx(idle)
    assert ns(0.10) < idle + 5  # flat: within 5 ns up to 10 % of peak
    assert ns(0.50) < idle * 1.3  # still within 30 % at half the bandwidth
    assert ns(0.99) >= 2 * idle  # >= 2x idle before the peak
    # the knee: past 55 % of peak the latency rises over 3x faster than below it
    assert (ns(0.9) - ns(0.55)) / 0.35 > 3 * (ns(0.55) - ns(0.0)) / 0.55
    # not decreasing anywhere
    us = [k / 200 for k in range(201)]
    assert all(m.extra_latency(a) <= m.extra_latency(b) for a, b in zip(us, us[1:], strict=False))


def test_curve_matches_the_measured_table_at_its_points():
    rows = mlc.parse_file(MLC / "clx-6252n-csit.txt").loaded
    m = curve_model(clx_points())
    peak = max(bw for _, _, bw in rows)
    for d, lat, bw in rows:
        if d in (200, 100):  # below saturation, where the table is monotone
            assert 80.19 + m.extra_latency(round(bw / peak, 4)) / 2.3 == pytest.approx(lat)


def test_curve_sustains_the_controllers_bandwidth():
    m = curve_model(clx_points())
    assert m.sustainable_bandwidth() == pytest.approx(122.0977)
    assert m.service_cycles() == pytest.approx(64 / 122.0977 * 2.3)


# ------------------------------------------------------------------ the MLC parser
def test_mlc_parser_reads_the_real_tables():
    r = mlc.parse_file(MLC / "clx-6252n-csit.txt")
    assert r.latency_nodes == [0, 1] and r.latency_ns == [[81.2, 130.2], [130.2, 81.1]]
    assert r.bandwidth_MBps == [[122097.7, 51327.9], [51309.2, 122005.5]]
    assert len(r.loaded) == 19
    assert r.loaded[0] == (0, 233.86, 243421.9) and r.loaded[-1] == (20000, 80.19, 2179.9)
    s = mlc.parse_file(MLC / "skx-8180-csit.txt")
    assert s.latency_ns == [[81.4, 131.1], [131.1, 81.3]]
    assert s.loaded[5] == (100, 227.05, 215075.0)


def test_mlc_parser_accepts_indented_output():
    text = (MLC / "clx-6252n-csit.txt").read_text()
    indented = "\n".join("    " + ln for ln in text.splitlines())
    assert mlc.parse_text(indented).loaded == mlc.parse_text(text).loaded


def _cli(argv, capsys):
    from numasim.cli import main
    rc = main(argv)
    return rc, capsys.readouterr()


BAD_MLC = {
    "no table": ("hello\n", "no MLC table found", None),
    "no rule": ("Measuring Loaded Latencies for the system\nInject Latency Bandwidth\n\n",
                "no '=====' rule", 1),
    "two numbers": ("Measuring Loaded Latencies for the system\nInject  Latency Bandwidth\n"
                    "Delay   (ns)    MB/sec\n=====================\n 00000  233.86\n",
                    "not three numbers", 5),
    "short row": ("Measuring idle latencies (in ns)...\n     Numa node\nNuma node  0  1\n"
                  "  0  81.2\n", "has 1 values for 2 columns", 4),
    "one row": ("Measuring Loaded Latencies\n=====\n 00000  233.86   243421.9\n\n",
                "has 1 row(s)", 3),
}


@pytest.mark.parametrize("case", sorted(BAD_MLC))
def test_bad_mlc_input_is_one_paragraph_and_exit_2(case, tmp_path, capsys):
    text, what, line = BAD_MLC[case]
    p = tmp_path / "mlc.txt"
    p.write_text(text)
    rc, out = _cli(["topo", "import-mlc", str(p), "--machine", "clx-2s"], capsys)
    assert rc == 2 and "Traceback" not in out.err
    assert what in out.err and str(p) in out.err
    if line is not None:
        assert f"{p}:{line}" in out.err
    assert len(out.err.strip().splitlines()) == 1


def test_import_mlc_writes_a_calibrated_machine(tmp_path, capsys):
    out = tmp_path / "clx.yaml"
    rc, _ = _cli(["topo", "import-mlc", str(MLC / "clx-6252n-csit.txt"), "-m", "clx-2s",
                  "-o", str(out)], capsys)
    assert rc == 0
    m = load_machine(str(out))
    base = load_machine("clx-2s")
    assert m.latency_ns == base.latency_ns  # clx-2s quotes the same MLC run
    assert m.mc_bandwidth(0) == pytest.approx(122.0977)
    assert m.controller_spec(0).impl == "curve"
    assert curve_model(m.controller_spec(0).get("points")).extra_latency(0.9) == \
        pytest.approx(curve_model(clx_points()).extra_latency(0.9))
    rc, res = _cli(["topo", "import-mlc", str(MLC / "clx-6252n-csit.txt"), "-m",
                    "skx-2s-snc2"], capsys)
    assert rc == 2 and "has nodes [0, 1]" in res.err


# ------------------------------------------------------------------ the engines
def _loaded(machine, engine, compute, size="4MiB", mlp=20):
    r = run(machine, "stride", engine=engine, threads=24, size=size, compute=compute,
            cpus=list(range(24)), numactl="--membind=0",
            cpu={"mlp": mlp, "start_skew_ns": 100}).to_dict(host=False)
    ph = [p for p in r["phases"] if p["measured"]][0]
    return ph, r


def test_fifo_named_explicitly_is_bit_identical_to_no_model():
    base = load_machine("clx-2s")
    named = base.with_changes(memory_controller=ControllerSpec("fifo"))
    for engine in ("fast", "exact"):
        a = run(base, "stream", engine=engine, threads=4, size="1MiB").to_dict(host=False)
        b = run(named, "stream", engine=engine, threads=4, size="1MiB").to_dict(host=False)
        a.pop("machine", None)
        b.pop("machine", None)
        assert a == b


def test_curve_flat_at_low_load_and_saturates_at_the_controllers_bandwidth():
    m = load_machine("clx-2s-curve")
    light, _ = _loaded(m, "fast", 2000)
    assert light["latency_ns_mean"] == pytest.approx(81.2, abs=2.0)
    heavy, _ = _loaded(m, "fast", 0)
    assert heavy["latency_ns_mean"] > 2 * 81.2
    # the curve adds latency, not service time: the controller still runs full
    assert heavy["resources"]["mc 0"]["utilisation"] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("compute", [0, 40, 60])
def test_engines_agree_on_the_curve(compute):
    """Both engines on the loaded-latency sweep, within test_engines_agree's 5 %."""
    m = load_machine("clx-2s-curve")
    f, _ = _loaded(m, "fast", compute)
    x, _ = _loaded(m, "exact", compute)
    assert f["cycles"] / x["cycles"] == pytest.approx(1.0, abs=0.05)
    assert f["latency_ns_mean"] / x["latency_ns_mean"] == pytest.approx(1.0, abs=0.05)


def test_curve_runs_are_deterministic_and_the_skew_is_seeded():
    """Same seed, same bytes (the exact engine's utilisation average is event-ordered); a
    different seed moves the threads' start skew, so the result changes."""
    m = load_machine("clx-2s-curve")

    def once(seed):
        return run(m, "stride", engine="exact", threads=8, size="512KiB", compute=20,
                   seed=seed, cpu={"mlp": 8, "start_skew_ns": 100}).to_dict(host=False)

    a, b, c = once(3), once(3), once(4)
    assert a == b
    assert a["latency_ns"] != c["latency_ns"]
