"""Traces: the canonical numpy format and its validator, the lackey reader, replay, and a
trace of a real program made with valgrind."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from numasim.api import run
from numasim.errors import ConfigError
from numasim.topology.loaders import load_machine
from numasim.workloads.model import Phase, Trace, Workload
from numasim.workloads.trace import (
    load_trace,
    parse_lackey,
    save_trace,
    trace_spans,
    validate_trace,
)

DATA = Path(__file__).parent / "data" / "traces"
CLX = load_machine("clx-2s")


def _trace_workload(path, llc=None, **trace_kw):
    cpu = {"llc": llc} if llc else {}
    return Workload(name="trace", trace=Trace(str(path), **trace_kw), cpu=cpu,
                    phases=[Phase("replay", "trace")])


def test_canonical_round_trip(tmp_path):
    f = tmp_path / "t.npz"
    addr = np.array([0x10000, 0x10040, 0x20000, 0x10000], dtype=np.uint64)
    save_trace(f, cpu=[0, 0, 24, 24], address=addr, write=[1, 0, 1, 0])
    tr = load_trace(f)
    assert tr.cpu.tolist() == [0, 0, 24, 24]
    assert tr.address.tolist() == addr.tolist()
    assert tr.write.tolist() == [1, 0, 1, 0]
    r = run(CLX, _trace_workload(f)).to_dict()
    # two threads, on CPU 0 (node 0) and CPU 24 (node 1)
    assert [t["cpu"] for t in r["threads"]] == [0, 24]
    assert r["program_accesses"] == 4
    # one span (the 15-page gap is bridged): CPU 0 first-touched page 0x10 (node 0), CPU 24
    # page 0x20 (node 1)
    assert r["pages_per_node"] == {"trace0": {"0": 1, "1": 1}}


@pytest.mark.parametrize("data,field,words", [
    ({"cpu": [0], "address": [1]}, "write", "missing array"),
    ({"cpu": [0, 1], "address": [1], "write": [0]}, "address", "1 elements"),
    ({"cpu": [0], "address": [1 << 50], "write": [0]}, "address", "user-space"),
    ({"cpu": [0], "address": [1], "write": [2]}, "write", "write[0] is 2"),
    ({"cpu": [-1], "address": [1], "write": [0]}, "cpu", "cpu[0]"),
    ({"cpu": [0.5], "address": [1], "write": [0]}, "cpu", "integers"),
])
def test_validator_names_array_and_element(data, field, words):
    with pytest.raises(ConfigError) as e:
        validate_trace({k: np.array(v) for k, v in data.items()}, file="t.npz")
    assert e.value.field == field
    assert e.value.file == "t.npz"
    assert words in str(e.value)


def test_truncated_npz_names_the_file(tmp_path):
    f = tmp_path / "cut.npz"
    save_trace(f, cpu=np.zeros(5000, dtype=int), address=np.arange(5000) * 64,
               write=np.zeros(5000, dtype=int))
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError) as e:
        load_trace(f)
    assert e.value.file == str(f)
    assert "cut short" in str(e.value)


def test_lackey_records_and_line_splitting():
    text = ["==1== Lackey\n", "I  04000000,3\n", " L 1000,8\n", " S 103c,8\n",
            " M 2000,4\n"]
    tr = parse_lackey(text, file="x", cpu=3)
    # the store at 0x103c..0x1043 crosses a line: two records; instructions skipped
    assert tr.address.tolist() == [0x1000, 0x103C, 0x1040, 0x2000]
    assert tr.write.tolist() == [0, 1, 1, 1]
    assert set(tr.cpu.tolist()) == {3}
    with_i = parse_lackey(text, file="x", instructions=True)
    assert len(with_i) == 5


def test_truncated_lackey_names_file_and_line(tmp_path):
    f = tmp_path / "cut.txt"
    f.write_text("==1== Lackey\n L 1000,8\n S 10")
    with pytest.raises(ConfigError) as e:
        load_trace(f)
    assert e.value.file == str(f)
    assert e.value.problems[0].line == 3
    assert "cut off" in str(e.value)


def test_not_a_trace():
    with pytest.raises(ConfigError) as e:
        parse_lackey(["hello world\n"], file="x.txt")
    assert e.value.problems[0].line == 1


def test_spans_bridge_small_gaps():
    addr = np.array([0x1000, 0x5000, 0x100000], dtype=np.uint64)
    assert trace_spans(addr) == [(1, 6), (0x100, 0x101)]


def test_shipped_lackey_sample_replays_with_and_without_llc():
    f = DATA / "sum-array.lackey.txt"
    plain = run(CLX, _trace_workload(f)).to_dict()
    cached = run(CLX, _trace_workload(f, llc={"size": 1 << 20})).to_dict()
    assert plain["program_accesses"] == cached["program_accesses"] > 1000
    # without a cache every access goes to memory; with one, most hit
    assert cached["hits"] > 0.8 * cached["program_accesses"]
    assert cached["cycles"] < plain["cycles"]


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("valgrind") is None,
                    reason="needs gcc and valgrind (.ci/run installs valgrind)")
def test_trace_a_real_program_with_valgrind(tmp_path):
    exe = tmp_path / "sum-array"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(DATA / "sum-array.c")], check=True)
    log = tmp_path / "trace.txt"
    subprocess.run(["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-file={log}",
                    str(exe)], check=True, capture_output=True, timeout=120)
    tr = load_trace(log)
    # the program stores 4096 longs (32 KiB) and loads them twice: at least that many records
    assert int(tr.write.sum()) >= 4096
    assert len(tr) - int(tr.write.sum()) >= 2 * 4096
    for engine in ("fast", "exact"):
        r = run(CLX, _trace_workload(log, llc={"size": 1 << 20}), engine=engine).to_dict()
        assert r["program_accesses"] == len(tr)
        assert r["local_fraction"] == 1.0
    fast = run(CLX, _trace_workload(log, llc={"size": 1 << 20})).to_dict(host=False)
    exact = run(CLX, _trace_workload(log, llc={"size": 1 << 20}),
                engine="exact").to_dict(host=False)
    assert fast["cycles"] == exact["cycles"]  # one thread, nothing to contend with
