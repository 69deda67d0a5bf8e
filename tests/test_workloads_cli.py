"""`numasim numactl ... -- KERNEL ...` and `numasim run WORKLOAD.yaml`, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from numasim.cli import main

WORKLOADS = Path(__file__).resolve().parents[1] / "configs" / "workloads"


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_numactl_interleave_cpunodebind(capsys):
    d = _json(capsys, ["numactl", "--interleave=all", "--cpunodebind=0", "--", "stream",
                       "--kernel", "triad", "--threads", "4", "--size", "1MiB",
                       "--machine", "clx-2s", "--json", "--no-progress"])
    assert d["engine"] == "fast" and d["workload"] == "stream-triad"
    assert all(t["node"] == 0 for t in d["threads"])  # --cpunodebind=0
    assert d["pages_per_node"]["a"] == {"0": 128, "1": 128}  # --interleave=all
    assert d["config"]["numactl"] == ["--interleave=all", "--cpunodebind=0"]
    assert "host_seconds" in d


def test_numactl_without_double_dash_and_exact_engine(capsys):
    d = _json(capsys, ["numactl", "--membind=1", "pointer_chase", "--size", "64KiB",
                       "--machine", "clx-2s", "--engine", "exact", "--json",
                       "--no-host-time"])
    assert d["engine"] == "exact" and "host_seconds" not in d
    assert d["pages_per_node_total"] == {"0": 0, "1": 16}
    # CPU 0 chasing node 1's memory: the idle remote latency, but for the UPI completions of
    # the init phase's last write-backs, still crossing back when the chase starts (2.6 ps)
    assert abs(d["phases"][1]["latency_ns_mean"] - 130.2) < 0.01


def test_numactl_weighted_interleave_weights(capsys):
    d = _json(capsys, ["numactl", "--weighted-interleave=0,1", "--", "stream", "--size",
                       "400KiB", "--machine", "clx-2s", "--weights", "0=3,1=1", "--json"])
    a = d["pages_per_node"]["a"]
    assert a == {"0": 75, "1": 25}


def test_bad_numactl_option_names_the_option(capsys):
    assert main(["numactl", "--membind=9", "--", "stream", "--machine", "clx-2s"]) == 2
    err = capsys.readouterr().err
    assert "--membind" in err and "<9> is invalid" in err


def test_unknown_kernel_option(capsys):
    assert main(["numactl", "--", "stream", "--threds", "4", "--machine", "clx-2s"]) == 2
    assert "--threds" in capsys.readouterr().err


def test_missing_machine(capsys):
    assert main(["numactl", "--localalloc", "--", "stream"]) == 2
    assert "--machine" in capsys.readouterr().err


def test_numactl_help(capsys):
    assert main(["numactl", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--interleave" in out and "--threads" in out


def test_run_yaml_summary_and_json_file(capsys, tmp_path):
    out = tmp_path / "r.json"
    assert main(["run", str(WORKLOADS / "pointer-chase.yaml"), "--machine", "clx-2s",
                 "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "chase-local" in text and "latency" in text
    d = json.loads(out.read_text())
    lat = {p["name"]: p["latency_ns_mean"] for p in d["phases"]}
    assert lat["chase-local"] == 81.2 and lat["chase-remote"] == 130.2


def test_run_yaml_with_typo_exits_2_naming_file_and_field(capsys, tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("name: w\nphases:\n  - {kernel: init, regions: [a]}\nregoins: []\n")
    assert main(["run", str(f), "--machine", "clx-2s"]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "regoins" in err and "regions" in err


def test_validate_command_knows_workloads(capsys):
    assert main(["validate", str(WORKLOADS / "stream-triad.yaml")]) == 0
    assert "ok (workload)" in capsys.readouterr().out


def test_kv_and_shift_from_the_command_line_and_yaml(capsys, tmp_path):
    """numactl -- kv with its options runs and reports the kv phase; a bad value is one
    message naming the option (exit 2, no traceback); the YAML phase keys reach the
    generator (a bad write_fraction names its field and line)."""
    assert main(["numactl", "--machine", "clx-2s", "--", "kv", "--size", "1MiB", "--value",
                 "1KiB", "--count", "500", "--write-fraction", "0.1", "--shift", "0.5",
                 "--repeat", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    kv = [p for p in d["phases"] if p["kernel"] == "kv"][0]
    assert kv["accesses"] == 2 * 500 * 16
    assert main(["numactl", "--machine", "clx-2s", "--", "kv", "--value", "8B"]) == 2
    err = capsys.readouterr().err
    assert "--value" in err and "Traceback" not in err
    f = tmp_path / "kv.yaml"
    f.write_text("name: kv\nregions:\n  - {name: t, size: 1MiB}\nphases:\n"
                 "  - {kernel: init}\n  - {kernel: kv, value: 2KiB, write_fraction: 1.5}\n")
    assert main(["run", str(f), "--machine", "clx-2s"]) == 2
    err = capsys.readouterr().err
    assert "write_fraction" in err and "kv.yaml" in err and "Traceback" not in err
