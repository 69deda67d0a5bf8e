"""Built-in kernels: what they allocate, where first touch puts it, how they count bytes."""

from __future__ import annotations

import pytest

from numasim.api import run
from numasim.errors import ConfigError
from numasim.topology.loaders import load_machine
from numasim.workloads.kernels import build_kernel

CLX = load_machine("clx-2s")


def test_parallel_first_touch_is_local():
    d = run(CLX, "stream", threads=4, size="1MiB").to_dict()
    assert d["local_fraction"] == 1.0
    assert d["pages_per_node"]["a"] == {"0": 128, "1": 128}


def test_serial_first_touch_puts_everything_on_thread_0s_node():
    d = run(CLX, "stream", threads=4, size="1MiB", init="serial").to_dict()
    assert d["pages_per_node_total"] == {"0": 768, "1": 0}
    assert d["local_fraction"] < 0.8
    assert d["numastat"]["0"]["numa_hit"] >= 768


def test_interleave_spreads_pages_and_counts_interleave_hits():
    d = run(CLX, "stream", threads=4, size="1MiB", numactl="--interleave=all").to_dict()
    assert d["pages_per_node"]["b"] == {"0": 128, "1": 128}
    assert d["numastat"]["1"]["interleave_hit"] >= 384


def test_stream_kernels_count_bytes_as_stream_does():
    for op, arrays in (("copy", 2), ("scale", 2), ("add", 3), ("triad", 3)):
        d = run(CLX, "stream", op=op, threads=2, size="256KiB", repeat=2).to_dict()
        assert d["phases"][1]["bytes"] == arrays * 2 * (256 << 10), op


def test_gups_writes_back_what_it_updates():
    d = run(CLX, "gups", threads=2, size="1MiB", count=4000).to_dict()
    assert d["phases"][1]["accesses"] == 4000
    assert d["page_faults"]["writebacks"] >= 4000  # every update dirties its line


def test_prodcons_producers_own_the_buffer():
    d = run(CLX, "prodcons", threads=4, size="1MiB").to_dict()
    # spread: producers are threads 0 and 1 on nodes 0 and 1; each first-touched its half
    assert d["pages_per_node"]["buffer"] == {"0": 128, "1": 128}
    assert [p["name"] for p in d["phases"]] == ["init", "prodcons"]


def test_prodcons_without_a_thread_count_runs_a_producer_and_a_consumer(capsys):
    """`numasim run prodcons` (or `numactl -- prodcons`) without --threads failed: one thread."""
    w = build_kernel("prodcons", size="1MiB")
    assert w.threads == 2 and [p.threads for p in w.phases] == [[0], None]
    from numasim.cli import main

    assert main(["numactl", "--", "prodcons", "--size", "1MiB", "--machine", "clx-2s"]) == 0
    assert main(["numactl", "--", "prodcons", "--threads", "1", "--machine", "clx-2s"]) == 2
    assert "prodcons needs at least 2 threads" in capsys.readouterr().err


def test_no_write_allocate_halves_store_traffic():
    wa = run(CLX, "stream", op="copy", threads=1, size="1MiB", init="none").to_dict()
    nt = run(CLX, "stream", op="copy", threads=1, size="1MiB", init="none",
             cpu={"write_allocate": False}).to_dict()
    assert nt["page_faults"]["writebacks"] == 0 < wa["page_faults"]["writebacks"]


@pytest.mark.parametrize("kw,field", [({"op": "triadd"}, "--op"),
                                      ({"threads": 0}, "--threads"),
                                      ({"size": "12 parsecs"}, "size"),
                                      ({"init": "lazy"}, "--init")])
def test_bad_options(kw, field):
    with pytest.raises(ConfigError) as e:
        build_kernel("stream", **kw)
    assert e.value.field == field


@pytest.mark.parametrize("kernel,kw,field", [("stream", {"op": "triadd"}, "op"),
                                             ("prodcons", {"threads": 1}, "threads"),
                                             ("kv", {"write_fraction": 2}, "write_fraction")])
def test_python_callers_see_their_keyword_not_the_flag(kernel, kw, field, capsys):
    """``numasim.run`` names the keyword its caller passed; the command keeps the flag."""
    with pytest.raises(ConfigError) as e:
        run(CLX, kernel, **kw)
    assert e.value.field == field
    from numasim.cli import main

    flag = "--" + field.replace("_", "-")
    argv = ["numactl", "--", kernel, flag, str(next(iter(kw.values()))), "--machine", "clx-2s"]
    assert main(argv) == 2
    assert f"field '{flag}'" in capsys.readouterr().err


def test_unknown_kernel_suggests():
    with pytest.raises(ConfigError) as e:
        build_kernel("straem")
    assert "did you mean 'stream'" in str(e.value)


def test_bound_region_larger_than_its_node_is_an_oom_kill():
    from numasim.machine.sim import OutOfMemory
    from numasim.topology.build import make_machine
    from numasim.topology.model import Node

    small = make_machine("small", [Node(0, (0,), 64 << 20), Node(1, (1,), 8 << 20)])
    for engine in ("fast", "exact"):
        with pytest.raises(OutOfMemory) as e:
            run(small, "stride", size="12MiB", numactl="--membind=1", engine=engine,
                cpu={"fault_ns": 0, "zero_gap_cycles": 0})
        assert "OOM killer" in str(e.value) and "'data'" in str(e.value)


def test_kv_reads_values_of_its_size_from_every_thread():
    """kv: every get moves one value (value/64 lines); the threads share the hot keys, so
    two threads' hottest pages overlap; a bad value is a clear error."""
    import numasim
    from numasim.errors import NumasimError

    r = numasim.run("clx-2s", "kv", threads=2, size="1MiB", value="1KiB", count=2000,
                    init="parallel")
    d = r.to_dict()
    kv = [p for p in d["phases"] if p["name"] == "kv"][0]
    assert kv["accesses"] == 2000 * 16
    with pytest.raises(NumasimError, match="value"):
        numasim.run("clx-2s", "kv", size="1MiB", value="8B")
    with pytest.raises(NumasimError, match="write_fraction"):
        numasim.run("clx-2s", "kv", size="1MiB", write_fraction=1.5)
