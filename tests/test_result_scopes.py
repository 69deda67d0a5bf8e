"""Which part of a run each figure covers: the measured phases (initialisation left out),
each phase alone, or the whole run; and each workload's own figure beside the common ones
(STREAM's GB/s, GUPS's GUP/s, a pointer chase's ns per load)."""

from __future__ import annotations

import pytest

from numasim.api import run
from numasim.experiments.table import row_of
from numasim.topology.loaders import load_machine

CLX = load_machine("clx-2s")


@pytest.fixture(scope="module")
def serial_triad():
    # serial first touch: every page on node 0; threads on both sockets, so the triad is
    # half local while the initialisation (thread 0 alone, on node 0) is all local
    return run(CLX, "stream", threads=4, size="1MiB", init="serial").to_dict()


def test_measured_scope_leaves_initialisation_out(serial_triad):
    d = serial_triad
    init, triad = d["phases"]
    assert (init["name"], triad["name"]) == ("init", "triad")
    assert init["local_fraction"] == 1.0
    assert triad["local_fraction"] == pytest.approx(0.5, abs=0.01)
    m = d["measured"]
    assert m["phases"] == ["triad"]
    assert m["local_fraction"] == triad["local_fraction"]
    assert m["latency_ns_mean"] == pytest.approx(triad["latency_ns_mean"], rel=1e-6)
    assert m["bandwidth_GBps"] == d["bandwidth_GBps"] == triad["bandwidth_GBps"]
    # the whole run mixes both: between the two, weighted by memory requests
    n0, n1 = init["memory_requests"], triad["memory_requests"]
    whole = (init["local_fraction"] * n0 + triad["local_fraction"] * n1) / (n0 + n1)
    assert d["local_fraction"] == pytest.approx(whole, abs=1e-5)
    assert d["local_fraction"] > m["local_fraction"] + 0.1


def test_utilisation_per_phase(serial_triad):
    init, triad = serial_triad["phases"]
    # initialisation writes node 0 only; the triad reads node 0 from both sockets
    assert set(init["resources"]) == {"mc 0"}
    assert "mc 1" not in triad["resources"]
    assert any(k.startswith(("link", "cap")) for k in triad["resources"])
    for p in (init, triad):
        for r in p["resources"].values():
            assert 0 < r["utilisation"] <= 1.0


def test_table_columns_name_their_scope(serial_triad):
    point = {"index": 0, "key": "k", "rep": 0, "labels": {"case": "serial"}}
    doc = {"status": "ok", "config": {"machine": {"name": "clx-2s"}, "workload": {}},
           "result": serial_triad}
    row = row_of(point, doc, None)
    assert row["local_fraction"] == serial_triad["local_fraction"]  # whole run, as before
    assert row["local_fraction_measured"] == serial_triad["measured"]["local_fraction"]
    assert row["phase.init.local_fraction"] == 1.0
    assert row["phase.triad.local_fraction"] == row["local_fraction_measured"]
    assert row["phase.triad.bandwidth_GBps"] == row["bandwidth_GBps"]
    assert row["phase.init.util_mc0"] > 0 and row["phase.init.util_mc1"] == 0.0
    assert row["stream_GBps"] == pytest.approx(row["bandwidth_GBps"], rel=1e-5)


def test_console_table_says_which_scope_each_column_has(serial_triad):
    import pandas as pd

    from numasim.cli.sweep import format_table

    point = {"index": 0, "key": "k", "rep": 0, "labels": {"case": "serial init"}}
    doc = {"status": "ok", "config": {"machine": {"name": "clx-2s"}, "workload": {}},
           "result": serial_triad}
    text = format_table(pd.DataFrame([row_of(point, doc, None)]), ["case"])
    header, row, note = text.splitlines()
    assert header.split()[-3:] == ["local", "local,", "run"]  # STREAM's figure is GB/s
    assert f"{serial_triad['measured']['local_fraction']:.3f}" in row
    assert f"{serial_triad['local_fraction']:.3f}" in row
    assert "measured phases" in note and "whole run" in note


def test_console_table_shows_gups_in_gup_per_second():
    import pandas as pd

    from numasim.cli.sweep import format_table

    d = run(CLX, "gups", threads=2, size="1MiB", count=4096).to_dict()
    point = {"index": 0, "key": "k", "rep": 0, "labels": {"case": "gups"}}
    row = row_of(point, {"status": "ok", "config": {}, "result": d}, None)
    header, line, note = format_table(pd.DataFrame([row]), ["case"]).splitlines()
    assert header.split()[-2:] == ["own", "figure"]
    assert line.endswith(f"{d['measured']['figure']['value']:.4g} GUP/s")


def test_gups_reports_gup_per_second():
    updates = 4096
    d = run(CLX, "gups", threads=2, size="1MiB", count=updates).to_dict()
    g = d["phases"][-1]
    assert g["kernel"] == "gups" and g["accesses"] == updates
    f = g["figure"]
    assert (f["name"], f["unit"]) == ("GUPS", "GUP/s")
    assert f["value"] == pytest.approx(updates / g["seconds"] / 1e9, rel=1e-4)
    assert d["measured"]["figure"]["value"] == pytest.approx(f["value"], rel=1e-4)
    point = {"index": 0, "key": "k", "rep": 0, "labels": {}}
    row = row_of(point, {"status": "ok", "config": {}, "result": d}, None)
    assert row["gups_GUPps"] == d["measured"]["figure"]["value"]
    assert "stream_GBps" not in row


def test_pointer_chase_reports_ns_per_load():
    d = run(CLX, "pointer_chase", threads=1, size="1MiB").to_dict()
    chase = d["phases"][-1]
    f = chase["figure"]
    assert (f["name"], f["unit"]) == ("latency per load", "ns")
    # one thread, dependent loads, every one to memory: a load takes its latency, no less
    assert f["value"] >= chase["latency_ns_mean"]
    assert f["value"] == pytest.approx(chase["seconds"] * 1e9 / chase["accesses"], rel=1e-3)


def test_run_summary_shows_scopes_and_the_own_figure(capsys):
    from numasim.machine.report import summary

    text = summary(run(CLX, "gups", threads=2, size="1MiB", count=2048))
    assert "measured    gups:" in text and "GUP/s" in text
    assert "whole run" in text and "(initialisation included)" in text
    init_line = next(ln for ln in text.splitlines() if ln.strip().startswith("init "))
    assert "local 1.000" in init_line and "mc " in init_line
