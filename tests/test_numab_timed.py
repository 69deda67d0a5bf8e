"""NUMA balancing in time, in both timing engines (:mod:`numasim.machine.numab_clock`).

* The analytic case: one thread pinned on node 1 reads pages a thread on node 0 first
  touched.  With balancing on, nothing moves before the scan delay (the reader's own CPU time:
  ``numa_scan_period`` starts at ``scan_delay_ms``), then every scan marks ``scan_size_mb``
  and the pages follow the reader: the local fraction rises to 1.  A run shorter than the
  scan delay moves nothing.
* Balancing on with a scan delay longer than the run changes nothing: the ticks stop and
  resume the engines without moving a single number (the result is today's, bit for bit).
* Fast and exact engines agree, to the bit, on a run where pages migrate and nobody queues
  behind another CPU (the hinting faults, the copies and the scanner happen at the same
  simulated times in both).
"""

from __future__ import annotations

import pytest

from numasim.api import run
from numasim.cli import main as cli_main
from numasim.topology.loaders import load_machine
from numasim.workloads.model import Phase, Region, Workload

COMPARED = ("cycles", "runtime_s", "bandwidth_GBps", "accesses", "latency_ns",
            "latency_histogram", "local_fraction", "pages_per_node", "numastat", "threads",
            "phases", "resources", "page_faults")  # as tests/test_engines_agree.py
SHORT = {"scan_delay_ms": 10, "scan_period_min_ms": 4, "scan_size_mb": 1}


@pytest.fixture(scope="module")
def clx():
    return load_machine("clx-2s")


def trap(size: int, repeat: int) -> Workload:
    """Thread 0 (node 0) first-touches the region; thread 1 (node 1) then reads it."""
    return Workload(name="trap", threads=2, cpus=[0, 24], regions=[Region("a", size)],
                    phases=[Phase("init", "init", threads=[0]),
                            Phase("read", "stride", stride=64, repeat=repeat, threads=[1])])


def _numbers(d: dict) -> dict:
    """A result without what only balancing adds (its own keys, each phase's counts)."""
    out = {k: v for k, v in d.items() if k not in ("kernel_mm", "numa_balancing")}
    out["phases"] = [{k: v for k, v in p.items()
                      if k not in ("numa_hint_faults", "pages_migrated")} for p in d["phases"]]
    return out


def test_local_fraction_rises_to_one_after_the_scan_delay(clx):
    r = run(clx, trap(2 << 20, 300), numa_balancing=True, balancing_knobs=SHORT).to_dict()
    nb = r["numa_balancing"]
    assert r["kernel_mm"]["numa_balancing"] == 1
    assert r["pages_per_node"]["a"] == {"0": 0, "1": 512}
    assert nb["pages_migrated"] == 512 and nb["vmstat"]["numa_pages_migrated"] == 512
    read = r["phases"][1]
    start_ms = r["phases"][0]["seconds"] * 1e3
    rows = nb["intervals"]
    first = next(x for x in rows if x["pages_migrated"])
    # nothing before scan_delay of the reader's CPU time (+ one tick, + one interval)
    assert first["t_ms"] >= start_ms + SHORT["scan_delay_ms"]
    assert first["t_ms"] <= start_ms + SHORT["scan_delay_ms"] + 4 + 2 * nb["interval_ms"]
    # 2 MiB at 1 MiB per scan: two scans, the second a scan period later (task_scan_min:
    # scan_period_min / 2 windows = 2 ms, so the next 4 ms tick): all moved by then
    last = max(x["t_ms"] for x in rows if x["pages_migrated"])
    assert last <= start_ms + SHORT["scan_delay_ms"] + 3 * 4 + 2 * nb["interval_ms"]
    late = [x["local_fraction"] for x in rows if x["t_ms"] > last + nb["interval_ms"]
            and x["local_fraction"] is not None]
    assert late and min(late) > 0.99
    assert read["local_fraction"] > 0.5  # the phase as a whole: remote first, then local
    assert r["phases"][0]["pages_migrated"] == 0 and read["pages_migrated"] == 512
    assert read["numa_hint_faults"] == nb["hint_faults"]


def test_linux_2_6_7_has_no_numa_balancing(clx):
    d = run(clx, trap(1 << 20, 2), linux="2.6.7", numa_balancing=True).to_dict()
    assert d["kernel_mm"]["numa_balancing"] == 0 and "numa_balancing" not in d
    assert any("Linux 2.6.7 has none" in n for n in d["notes"])


def test_a_run_shorter_than_the_scan_delay_moves_nothing(clx):
    wl = trap(2 << 20, 20)
    off = run(clx, wl).to_dict(host=False)
    on = run(clx, wl, numa_balancing=True,
             balancing_knobs=dict(SHORT, scan_delay_ms=1000)).to_dict(host=False)
    assert on["numa_balancing"]["pages_migrated"] == 0
    assert on["numa_balancing"]["hint_faults"] == 0
    assert "numa_balancing" not in off and off["kernel_mm"]["numa_balancing"] == 0
    # the ticks stop and resume the engine; not one number changes
    assert _numbers(on) == _numbers(off)


def test_engines_agree_to_the_bit_while_pages_migrate(clx):
    knobs = {"scan_delay_ms": 1, "scan_period_min_ms": 4, "scan_size_mb": 1}
    wl = trap(1 << 20, 20)
    fast = run(clx, wl, engine="fast", numa_balancing=True,
               balancing_knobs=knobs).to_dict(host=False)
    exact = run(clx, wl, engine="exact", numa_balancing=True,
                balancing_knobs=knobs).to_dict(host=False)
    assert fast["numa_balancing"]["pages_migrated"] == 256
    for key in COMPARED:
        assert fast[key] == exact[key], key
    nf, ne = fast["numa_balancing"], exact["numa_balancing"]
    assert nf["vmstat"] == ne["vmstat"] and nf["interval_ms"] == ne["interval_ms"]
    # per interval: faults, migrations and pages exactly; the requests are counted at each
    # tick, when the fast engine has issued them and the exact engine completed them
    for xf, xe in zip(nf["intervals"], ne["intervals"], strict=True):
        for k in ("hint_faults", "pages_migrated", "pages_per_node", "t_ms"):
            assert xf[k] == xe[k], k
        assert xf["local_fraction"] == pytest.approx(xe["local_fraction"], abs=0.01)
    # the copies are traffic: 1 MiB read on the source controller, 1 MiB written on the
    # target's, on top of the same program requests (served locally once moved)
    off = run(clx, wl, engine="fast").to_dict(host=False)

    def mc_bytes(d):
        return sum(x["bytes"] for x in d["resources"] if x["name"].startswith("mc"))

    assert mc_bytes(fast) - mc_bytes(off) == pytest.approx(2 << 20, abs=4096)


@pytest.mark.parametrize("argv, word", [
    (["--balancing-knob", "scan_dlay_ms=5"], "scan_dlay_ms"),
    (["--balancing-knob", "scan_period_min_ms=0"], "at least 1"),
    (["--thp", "allways"], "allways"),
    (["--balancing-knob", "scan_size_mb"], "NAME=VALUE"),
])
def test_bad_kernel_settings_are_one_paragraph(capsys, argv, word):
    rc = cli_main(["numactl", "--", "stream", "--threads", "1", "--size", "64KiB",
                   "--numa-balancing", *argv, "--machine", "clx-2s"])
    err = capsys.readouterr().err
    assert rc == 2
    assert word in err and "Traceback" not in err


def test_every_result_says_what_is_active(clx, capsys):
    rc = cli_main(["numactl", "--", "stream", "--threads", "1", "--size", "64KiB",
                   "--machine", "clx-2s"])
    assert rc == 0
    assert "NUMA balancing off" in capsys.readouterr().out
    rc = cli_main(["numactl", "--", "stream", "--threads", "1", "--size", "64KiB",
                   "--numa-balancing", "--machine", "clx-2s"])
    assert rc == 0
    assert "NUMA balancing on (scan_delay 1000 ms" in capsys.readouterr().out
    rc = cli_main(["numactl", "--", "stream", "--threads", "1", "--size", "64KiB",
                   "--numa-balancing", "2", "--machine", "cxl-1s"])
    assert rc == 0
    assert "NUMA balancing on in memory-tiering mode 2 (scan_delay" in capsys.readouterr().out


def test_thp_in_a_timed_run_both_engines(clx):
    """THP ``always`` in a timed run: write faults allocate 2 MiB folios (512 x the zeroed
    lines in one fault), through the kernel's own huge fault path, the same in both engines
    (one thread: to the bit)."""
    wl = Workload(name="thp", threads=1, cpus=[0], regions=[Region("a", 4 << 20)],
                  phases=[Phase("init", "init"), Phase("read", "stride", stride=64)])
    never = run(clx, wl).to_dict(host=False)
    fast = run(clx, wl, thp="always").to_dict(host=False)
    exact = run(clx, wl, engine="exact", thp="always").to_dict(host=False)
    for key in COMPARED + ("kernel_mm",):
        assert fast[key] == exact[key], key
    assert fast["kernel_mm"]["thp"] == "always" and never["kernel_mm"]["thp"] == "never"
    thps = fast["kernel_mm"]["thp_vmstat"]["thp_fault_alloc"]
    assert thps >= 1
    pf, pf0 = fast["page_faults"], never["page_faults"]
    assert pf["zeroed_bytes"] == pf0["zeroed_bytes"]  # every byte zeroed once either way
    assert pf["count"] == pf0["count"] - thps * 511  # one fault per THP instead of 512


def test_experiment_yaml_reaches_the_kernel_settings(tmp_path):
    from numasim.errors import ConfigError
    from numasim.experiments.expand import load_experiment

    f = tmp_path / "e.yaml"
    f.write_text("experiment: e\nmachine: clx-2s\n"
                 "workload: {kernel: stream, threads: 2, size: 1MiB}\n"
                 "sweep:\n  cases:\n    - {label: static}\n"
                 "    - {label: balancing, numa_balancing: {scan_delay_ms: 100}, thp: always}\n")
    points = load_experiment(f).points
    static, on = (p.config for p in points)
    assert "numa_balancing" not in static and "thp" not in static  # old keys, old hashes
    assert on["numa_balancing"] == {"numa_balancing": 1, "scan_delay_ms": 100}
    assert on["thp"] == "always"
    f.write_text(f.read_text().replace("scan_delay_ms: 100", "scan_period_min_ms: 0")
                 .replace("thp: always", "thp: alwys"))
    with pytest.raises(ConfigError) as e:
        load_experiment(f)
    text = str(e.value)
    assert "scan_period_min_ms must be at least 1" in text and "alwys" in text


def test_engines_agree_with_contention_while_pages_migrate(clx):
    """Two threads (one per socket) of a serial-init STREAM triad, pages migrating while a
    controller and the link are shared: the engines agree within test_engines_agree's 5 %."""
    knobs = {"scan_delay_ms": 1, "scan_period_min_ms": 4, "scan_size_mb": 4}
    kw = dict(threads=2, size="1MiB", init="serial", repeat=20, numa_balancing=True,
              balancing_knobs=knobs)
    fast = run(clx, "stream", engine="fast", **kw).to_dict(host=False)
    exact = run(clx, "stream", engine="exact", **kw).to_dict(host=False)
    for d in (fast, exact):
        assert d["numa_balancing"]["pages_migrated"] > 0
    assert fast["pages_per_node"] == exact["pages_per_node"]
    assert fast["numa_balancing"]["vmstat"] == exact["numa_balancing"]["vmstat"]
    assert fast["bandwidth_GBps"] == pytest.approx(exact["bandwidth_GBps"], rel=0.05)
    assert fast["latency_ns"]["mean"] == pytest.approx(exact["latency_ns"]["mean"], rel=0.05)


def test_fast_forward_stops_at_the_scanner(clx):
    """Fast-forward skips settled stretches but never past a tick where the scanner acts
    or over PTEs still protected: the same hinting faults and migrations, the same
    bandwidth within fast-forward's 2 %."""
    kw = dict(threads=16, size="4MiB", init="serial", repeat=200, numa_balancing=True,
              balancing_knobs={"scan_delay_ms": 10, "scan_period_min_ms": 10})
    full = run(clx, "stream", **kw).to_dict(host=False)
    ff = run(clx, "stream", fast_forward=True, **kw).to_dict(host=False)
    for key in ("hint_faults", "pages_migrated"):
        assert ff["numa_balancing"][key] == full["numa_balancing"][key] > 0
    assert ff["pages_per_node"] == full["pages_per_node"]
    assert ff["config"]["fast_forward"]["skipped_fraction"] > 0.2  # it did skip
    assert ff["bandwidth_GBps"] == pytest.approx(full["bandwidth_GBps"], rel=0.02)


def test_numactl_takes_the_switches_before_the_command_too(capsys):
    rc = cli_main(["numactl", "--numa-balancing", "--balancing-knob", "scan_delay_ms=5",
                   "--thp=madvise", "--cpunodebind=0", "--", "stream", "--threads", "1",
                   "--size", "64KiB", "--machine", "clx-2s"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "NUMA balancing on (scan_delay 5 ms" in out and "THP madvise" in out


def test_many_threads_fault_huge_pages_as_fast_as_two(clx):
    """A THP fault zeroes 32768 lines; issued in one go past a short quantum's end, they
    once counted as a burst far beyond any bandwidth, the weave's next wait estimate was
    ~100 us a line, and the next huge faults took 100x too long (8 threads of GUPS on
    48 MiB: 602 us a fault against 18 us with 2 threads).  The lines of a pending fault now
    issue quantum by quantum: more threads fault no slower (less memory each)."""
    pf = {}
    for th in (2, 8):
        d = run(clx, "gups", threads=th, size="48MiB", numactl="--interleave=all",
                thp="always").to_dict(host=False)
        assert d["kernel_mm"]["thp_vmstat"]["thp_fault_alloc"] >= 20
        pf[th] = d["page_faults"]
    assert pf[8]["zeroed_bytes"] == pf[2]["zeroed_bytes"] == 48 << 20
    assert pf[8]["mean_ns"] < 1.5 * pf[2]["mean_ns"]
