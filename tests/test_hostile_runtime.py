"""Hostile input against runs, sweeps, traces and scenario scripts (issue 14, section 3).

Every case is bounded: the command line runs in a subprocess under ``RLIMIT_AS`` and a
timeout where memory or time is what the case is about, in this process otherwise.  Each
asserts a clear refusal (exit 2, a message naming the file or the field) or the right
answer.  The seeded fuzz tests at the end mutate the shipped scenarios, workloads,
experiments and traces and accept no exception but :class:`NumasimError`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from numasim.cli import main as cli_main
from numasim.errors import ConfigError, NumasimError

sys.path.insert(0, str(Path(__file__).parent))
from experiments_fake import FAKE_EXPERIMENT, fake_point  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEM_LIMIT = 2 << 30  # every subprocess here must live in 2 GiB of address space
LINUX = sys.platform.startswith("linux")


def run_cli(args: list[str], *, cwd: Path, timeout: float = 120, mem: int = MEM_LIMIT,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``numasim ARGS`` in a subprocess limited to ``mem`` bytes and ``timeout`` seconds."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))

    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "numasim", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limit)


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    """``numasim ARGS`` in this process: (exit code, stdout, stderr)."""
    rc = cli_main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


# ============================================================ sweep folder safety
@pytest.fixture
def exp(tmp_path):
    from numasim.experiments.expand import load_experiment

    p = tmp_path / "fake.yaml"
    p.write_text(FAKE_EXPERIMENT)
    return load_experiment(p)


def test_lock_symlink_is_refused_and_its_target_untouched(tmp_path, exp):
    from numasim.experiments.runner import run_sweep

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    with pytest.raises(NumasimError) as e:
        run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    assert ".lock" in str(e.value) and "symbolic link" in str(e.value)
    assert victim.read_text() == "precious\n"


def test_parquet_temp_name_is_not_followed(tmp_path, exp):
    pytest.importorskip("pyarrow")
    from numasim.experiments.runner import run_sweep

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".results.parquet.tmp").symlink_to(victim)
    s = run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    assert s.parquet is not None and s.parquet.is_file()
    assert victim.read_text() == "precious\n"


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pids: list[int]) -> list[int]:
    out = []
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(p)
    return out


@pytest.mark.skipif(not LINUX, reason="PR_SET_PDEATHSIG and /proc are Linux")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_parallel_sweep_leaves_no_workers(tmp_path, sig):
    (tmp_path / "fake.yaml").write_text(FAKE_EXPERIMENT)
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from experiments_fake import fake_point
        from numasim.experiments.runner import run_sweep
        from numasim.experiments.expand import load_experiment
        s = run_sweep(load_experiment({str(tmp_path / 'fake.yaml')!r}), {str(tmp_path / 'out')!r},
                      jobs=2, point_fn=fake_point, progress=False)
        print("interrupted" if s.interrupted else "done")
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMASIM_FAKE_SLEEP": "60"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 60
        workers: list[int] = []
        while time.time() < deadline and len(workers) < 2:
            time.sleep(0.3)
            workers = _children(proc.pid)
        assert len(workers) >= 2, "the sweep did not start its workers"
        os.kill(proc.pid, sig)
        out, _ = proc.communicate(timeout=30)
        if sig == signal.SIGTERM:  # stopped as Ctrl-C stops it: the table is written
            assert "interrupted" in out
            assert (tmp_path / "out" / "results.csv").exists()
        deadline = time.time() + 15
        while time.time() < deadline and _alive(workers):
            time.sleep(0.2)
        assert not _alive(workers), f"workers {_alive(workers)} outlived the sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in _alive(_children(proc.pid)):
            os.kill(p, signal.SIGKILL)


# ================================================================== point bound
def _expand(text: str, tmp_path: Path, sets: list[str] | None = None):
    from numasim.experiments.expand import expand
    from numasim.experiments.schema import read_source

    return expand(read_source(tmp_path / "e.yaml", text=text, sets=sets))


BIG_GRID = """\
experiment: big
machine: oracle-2node
workload: {kernel: stream, threads: 1, size: 64KiB}
sweep:
  grid:
    seed: [%s]
    repeat: [%s]
"""


def test_million_point_grid_is_refused_at_once(tmp_path):
    vals = ", ".join(str(i + 1) for i in range(1000))
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        _expand(BIG_GRID % (vals, vals), tmp_path)
    assert time.perf_counter() - t0 < 20
    assert "1000000 points" in str(e.value) and "max_points" in str(e.value)


def test_a_billion_repetitions_are_refused_and_the_bound_can_be_raised(tmp_path):
    text = ("experiment: reps\nmachine: oracle-2node\n"
            "workload: {kernel: stream, threads: 1, size: 64KiB}\nrepetitions: %d\n")
    with pytest.raises(ConfigError) as e:
        _expand(text % 10**9, tmp_path)
    assert e.value.field == "repetitions" and "max_points" in str(e.value)
    with pytest.raises(ConfigError):
        _expand(text % 3 + "max_points: 2\n", tmp_path)
    assert len(_expand(text % 3, tmp_path, sets=["max_points=3"]).points) == 3


# ============================================================ quadratic spans
def test_ten_thousand_trace_spans_map_in_linear_time(tmp_path):
    from numasim.spec import build_spec
    from numasim.topology.loaders import load_machine
    from numasim.wiring import build_program
    from numasim.workloads.model import Phase, Trace, Workload
    from numasim.workloads.trace import save_trace

    n = 10_000
    addr = np.arange(n, dtype=np.uint64) * np.uint64(64 * 4096) + np.uint64(1 << 30)
    f = tmp_path / "spans.npz"
    save_trace(f, cpu=np.zeros(n, dtype=int), address=addr, write=np.ones(n, dtype=int))
    wl = Workload(name="t", trace=Trace(str(f)), phases=[Phase("replay", "trace")])
    m = load_machine("clx-2s")
    build_program(build_spec(m, wl))  # warm: imports and compiled kernels
    t0 = time.perf_counter()
    sim = build_program(build_spec(m, wl))
    took = time.perf_counter() - t0
    assert len(sim.regions) == n
    assert took < 30, f"mapping {n} spans took {took:.1f} s (was 76 s: quadratic)"


def test_thousands_of_regions_map_in_linear_time():
    from numasim.spec import build_spec
    from numasim.topology.loaders import load_machine
    from numasim.wiring import build_program
    from numasim.workloads.model import Phase, Region, Workload

    m = load_machine("clx-2s")
    n = 5000
    wl = Workload(name="r", regions=[Region(f"r{i}", 4096) for i in range(n)],
                  phases=[Phase("init", "init")])
    build_program(build_spec(m, Workload(name="w", regions=[Region("a", 4096)],
                                         phases=[Phase("i", "init")])))
    t0 = time.perf_counter()
    sim = build_program(build_spec(m, wl))
    took = time.perf_counter() - t0
    starts = sorted(mr.vpn for mr in sim.regions.values())
    assert len(set(starts)) == n  # each its own place below mmap_base
    assert took < 30, f"{n} regions took {took:.1f} s (was ~60 s: a sort per mmap)"


def test_more_same_size_regions_than_an_op_has_streams():
    """An init phase over 5+ regions of one size: every region is touched (main left the
    first and the fifth untouched, writing past an op's four stream slots)."""
    from numasim.api import run
    from numasim.workloads.model import Phase, Region, Workload

    for n in (5, 20):
        wl = Workload(name="r", threads=2, regions=[Region(f"r{i}", 1 << 20) for i in range(n)],
                      phases=[Phase("init", "init")])
        ppn = run("clx-2s", wl).to_dict()["pages_per_node"]
        assert all(sum(v.values()) == 256 for v in ppn.values()), ppn


# ================================================================ output paths
@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder nothing can be created in (a read-only folder for a normal user; for root,
    sysfs, which refuses new files)."""
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    d = Path("/sys")
    try:
        (d / "numasim-probe").touch()
    except OSError:
        yield d
        return
    pytest.skip("no folder here refuses new files")


@pytest.mark.parametrize("args", [
    ["topo", "convert", "oracle-2node", "-o", "{ro}/m.yaml"],
    ["topo", "convert", "oracle-2node", "-o", "{file}/m.yaml"],
    ["topo", "convert", "oracle-2node", "-o", "{dir}"],
    ["topo", "draw", "oracle-2node", "-o", "{ro}/m.png"],
    ["topo", "draw", "oracle-2node", "-o", "{file}/m.png"],
    ["topo", "draw", "oracle-2node", "-o", "{dir}/"],
    ["run", "stream", "--machine", "oracle-2node", "-o", "{dir}"],
    ["run", "stream", "--machine", "oracle-2node", "-o", "{dir}/typo/r.json"],
    ["run", "stream", "--machine", "oracle-2node", "-o", "{ro}/r.json"],
    ["sweep", "{exp}", "--out", "{file}"],
    ["sweep", "{exp}", "--out", "{ro}/out"],
    ["sweep", "{exp}", "--out", "{dir}/out", "--plots", "{file}"],
    ["plot", "{results}", "-o", "{file}"],
    ["plot", "{results}", "-o", "{ro}/plots"],
])
def test_output_path_failures_are_refused_before_the_work(args, tmp_path, unwritable, capsys,
                                                          exp):
    from numasim.experiments.runner import run_sweep

    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "fake.yaml").write_text(FAKE_EXPERIMENT)
    results = tmp_path / "results"
    run_sweep(exp, results, jobs=1, point_fn=fake_point, progress=False)
    subst = {"ro": str(unwritable), "file": str(afile), "dir": str(tmp_path),
             "exp": str(tmp_path / "fake.yaml"), "results": str(results)}
    argv = [a.format(**subst) for a in args]
    t0 = time.perf_counter()
    rc, out, err = cli(argv, capsys)
    assert rc == 2, err
    assert "Traceback" not in err and err.startswith("numasim: error:")
    assert "-o" in err or "--out" in err or "--plots" in err
    assert time.perf_counter() - t0 < 60  # refused before simulating anything
    assert not (tmp_path / "out").exists() or "--plots" in args


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_names_the_file(capsys):
    rc, _, err = cli(["topo", "convert", "oracle-2node", "-o", "/dev/full"], capsys)
    assert rc == 2 and "/dev/full" in err and "No space left" in err


def test_point_file_replaced_by_a_directory(tmp_path, exp):
    from numasim.experiments.runner import run_sweep

    out = tmp_path / "out"
    run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    victim = sorted((out / "points").glob("*.json"))[0]
    victim.unlink()
    victim.mkdir()
    calls = []

    def counting(config):
        calls.append(1)
        return fake_point(config)

    with pytest.raises(NumasimError) as e:
        run_sweep(exp, out, jobs=1, point_fn=counting, progress=False)
    assert e.value.file == str(victim) and "directory" in str(e.value)
    assert not calls  # refused before any work


@pytest.mark.parametrize("manifest", [
    "[1, 2]", '{"points": 3}', '{"points": [1]}', '{"points": [{"key": 5, "labels": {}}]}',
    '{"points": [{"key": "../../etc/passwd", "labels": {}, "index": 0, "rep": 0}]}',
    '{"points": [{"key": "abc", "labels": [], "index": 0}]}', "{", "\xff",
])
def test_malformed_sweep_json_in_plot(manifest, tmp_path, capsys):
    (tmp_path / "sweep.json").write_text(manifest, encoding="latin-1")
    rc, _, err = cli(["plot", str(tmp_path), "-o", str(tmp_path / "p")], capsys)
    assert rc == 2 and "sweep.json" in err and "Traceback" not in err


# ============================================================== silent results
def test_a_failed_point_keeps_integer_columns_integers(tmp_path, exp, monkeypatch):
    from numasim.experiments.runner import run_sweep

    monkeypatch.setenv("NUMASIM_FAKE_FAIL_SIZE", str(3 << 20))
    s = run_sweep(exp, tmp_path / "out", jobs=1, point_fn=fake_point, progress=False)
    assert s.failed == 2
    import csv

    rows = list(csv.DictReader(io.StringIO(s.table.read_text())))
    for col in ("threads", "accesses", "page_faults", "pages_node0", "seed"):
        vals = [r[col] for r in rows if r[col] != ""]
        assert vals and all("." not in v for v in vals), (col, vals)
    assert sum(1 for r in rows if r["accesses"] == "") == 2


@pytest.mark.parametrize("damage", [
    {"status": None}, {"status": "okay"}, {"result": "x"}, {"result": {"timeline": 3}},
    {"result": {"latency_histogram": {"bin_start_ns": [1], "count": "x"}}},
    {"config": {"machine": 5}},
])
def test_a_damaged_point_is_recomputed(damage, tmp_path, exp):
    from numasim.experiments.runner import run_sweep

    out = tmp_path / "out"
    run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    f = sorted((out / "points").glob("*.json"))[0]
    doc = json.loads(f.read_text())
    doc.update(damage)
    f.write_text(json.dumps(doc))
    s = run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    assert s.computed == 1 and s.failed == 0
    assert json.loads(f.read_text())["status"] == "ok"
    assert "failed: None" not in s.table.read_text()


# ================================================================ scripts
def test_400_nested_forks(tmp_path, capsys):
    f = tmp_path / "forks.txt"
    f.write_text("#@ layout 2node\n" + "fork\n" * 400 + "mmap 1\n" + "endfork\n" * 400)
    rc, _, err = cli(["script", str(f)], capsys)
    assert rc == 2 and f"{f}:102" in err and "nested" in err


def test_100_nested_forks_run(tmp_path, capsys):
    f = tmp_path / "forks.txt"
    f.write_text("#@ layout 2node\n" + "fork\n" * 100 + "mmap 1\n" + "endfork\n" * 100)
    rc, out, _ = cli(["script", str(f)], capsys)
    assert rc == 0 and out.count("child exit=0") == 100


def test_non_utf8_scenario(tmp_path, capsys):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"#@ layout 2node\nmmap 1 \xff\xfe\n")
    rc, _, err = cli(["script", str(f)], capsys)
    assert rc == 2 and f"{f}:2" in err and "UTF-8" in err


def test_sysctl_values_beyond_int_are_einval(tmp_path, capsys):
    f = tmp_path / "s.txt"
    f.write_text("#@ layout 2node\nwrite /proc/sys/vm/min_free_kbytes 1e20\n"
                 "write /proc/sys/vm/min_free_kbytes 100000000000000000000\n"
                 "write /proc/sys/vm/watermark_scale_factor 99999999999999999999\n"
                 "write /proc/sys/vm/lowmem_reserve_ratio -1 0 0\n"
                 "cat /proc/sys/vm/min_free_kbytes\n")
    rc, out, _ = cli(["script", str(f)], capsys)
    assert rc == 0
    assert out.count("errno=EINVAL") == 4


# ================================================================= traces
@pytest.mark.parametrize("text,words", [
    (" L -10,8\n", "malformed"),
    (" L 0x1000,8\n", "malformed"),
    (" L 1000,100000000000\n", "4096"),
    ("I  04000000,3\nI  04000003,2\n", "only instruction fetches"),
])
def test_lackey_hostile_records(text, words):
    from numasim.workloads.trace import parse_lackey

    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        parse_lackey(io.StringIO(text), file="t.txt")
    assert words in str(e.value) and e.value.file == "t.txt"
    assert time.perf_counter() - t0 < 1


def test_empty_npz_trace(tmp_path):
    from numasim.workloads.trace import load_trace

    f = tmp_path / "empty.npz"
    np.savez(f, cpu=np.zeros(0, dtype=int), address=np.zeros(0, dtype=np.uint64),
             write=np.zeros(0, dtype=np.uint8))
    with pytest.raises(ConfigError) as e:
        load_trace(f)
    assert "no accesses" in str(e.value) and e.value.file == str(f)


def _npz_with_header(path: Path, shape: tuple[int, ...]) -> None:
    """An .npz whose 'address' array claims ``shape`` but holds a few bytes."""
    from numpy.lib import format as npformat

    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "<u8", "fortran_order": False,
                                          "shape": shape})
    buf.write(b"\0" * 64)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("address.npy", buf.getvalue())
        for k in ("cpu", "write"):
            b = io.BytesIO()
            np.save(b, np.zeros(8, dtype=np.uint8))
            z.writestr(f"{k}.npy", b.getvalue())


def test_npz_claiming_billions_of_accesses(tmp_path):
    from numasim.workloads.trace import load_trace

    f = tmp_path / "bomb.npz"
    _npz_with_header(f, (1 << 40,))
    with pytest.raises(ConfigError) as e:
        load_trace(f)
    assert "address" in str(e.value) and e.value.file == str(f)


def test_npz_zip_bomb(tmp_path, monkeypatch):
    import numasim.workloads.trace as T

    monkeypatch.setattr(T, "NPZ_SMALL", 1 << 20)  # the same rule, at a testable size
    f = tmp_path / "bomb.npz"
    n = 4 << 20
    np.savez_compressed(f, cpu=np.zeros(n, dtype=np.int64), address=np.zeros(n, np.uint64),
                        write=np.zeros(n, dtype=np.uint8))
    with pytest.raises(ConfigError) as e:
        T.load_trace(f)
    assert "zip bomb" in str(e.value)


# ====================================================================== dask
def _server(reply: bytes | None) -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if reply is not None:
                conn.sendall(reply)
            threading.Timer(10, conn.close).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


@pytest.mark.parametrize("address,words", [
    ("not a url", "not a Dask address"),
    ("http://example.org:80", "unknown scheme"),
    ("tcp://:99999", "not a Dask address"),
])
def test_dask_address_is_checked(address, words):
    from numasim.experiments.runner import probe_scheduler

    with pytest.raises(NumasimError) as e:
        probe_scheduler(address)
    assert words in str(e.value) and e.value.field == "--dask"


@pytest.mark.parametrize("reply", [None, b"HTTP/1.1 400 Bad Request\r\n\r\n"])
def test_dask_pointed_at_something_else_fails_fast(reply):
    from numasim.experiments.runner import probe_scheduler

    srv, port = _server(reply)
    try:
        t0 = time.perf_counter()
        with pytest.raises(NumasimError) as e:
            probe_scheduler(f"tcp://127.0.0.1:{port}")
        assert time.perf_counter() - t0 < 15
        assert "does not answer as a Dask scheduler" in str(e.value)
    finally:
        srv.close()


def test_dask_not_a_url_at_the_command_line(tmp_path, capsys):
    (tmp_path / "fake.yaml").write_text(FAKE_EXPERIMENT)
    rc, _, err = cli(["sweep", str(tmp_path / "fake.yaml"), "--out", str(tmp_path / "o"),
                      "--dask", "not a url"], capsys)
    assert rc == 2 and "--dask" in err
    assert not (tmp_path / "o").exists()


# ============================================== memory follows the simulated machine
@pytest.mark.parametrize("script,words,refused", [
    # the kernel answers ENOMEM: an accountable mapping larger than RAM (768 MiB here)
    ("mmap 1000000000\ntouch 0 1000000000\n", "ret op=mmap rc=-1 errno=ENOMEM", False),
    ("mmap 150000\ntouch 0 150000\n", "touched region=0 off=0 n=150000", False),  # 586 MiB
    # not accountable on Linux (memfd is NORESERVE): numasim refuses, naming the line
    ("mmap 1000000000 memfd\n", "s.txt:2", True),
])
def test_scenario_memory_follows_the_machine(tmp_path, script, words, refused):
    (tmp_path / "s.txt").write_text("#@ layout 2node\n" + script)
    r = run_cli(["script", "s.txt"], cwd=tmp_path, timeout=120)
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr
    assert words in r.stdout + r.stderr
    if refused:
        assert r.returncode == 2 and "numasim: error:" in r.stderr
    else:
        assert "exit rc=" in r.stdout


@pytest.mark.parametrize("args,field", [
    (["--size", "1PiB"], "regions[0].size"),
    (["--size", "1MiB", "--llc", "1PiB"], "cpu.llc"),
    (["--size", "100GiB"], "regions"),  # fits clx-2s, not 2 GiB of host memory
])
def test_sizes_beyond_machine_or_host_are_refused(tmp_path, args, field):
    t0 = time.perf_counter()
    r = run_cli(["numactl", "--", "stream", *args, "--machine", "clx-2s"], cwd=tmp_path,
                timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"field '{field}'" in r.stderr and "Traceback" not in r.stderr
    assert time.perf_counter() - t0 < 120


# ======================================================================== fuzz
TOKENS = ["0", "-1", "1", "1e20", "18446744073709551616", "99999999999999999999", "", "all",
          "!", "0x", "-0", "+1", "é", "\x00", "1-", "0-99999999", ",", "=", "[", "{", ":",
          "'", "~", "*", "&a", "*a", "64KiB", "1PiB", "-5MiB", "nan", "inf", "null", "true",
          "- -", "\t", "fork", "endfork"]


def mutate(text: str, rng: random.Random) -> str:
    """One to three edits of ``text``: drop, repeat or swap lines, replace or grow a word,
    cut the text short, insert a hostile token."""
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        if not lines:
            lines = [""]
        i = rng.randrange(len(lines))
        op = rng.randrange(7)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op in (3, 4):
            words = lines[i].split(" ")
            k = rng.randrange(len(words))
            words[k] = rng.choice(TOKENS) if op == 3 else words[k] + rng.choice(TOKENS)
            lines[i] = " ".join(words)
        elif op == 5:
            s = "\n".join(lines)
            lines = s[: rng.randrange(len(s) + 1)].split("\n")
        else:
            p = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:p] + rng.choice(TOKENS) + lines[i][p:]
    return "\n".join(lines)


def _fuzz(name: str, texts: list[str], n: int, seed: int, target) -> None:
    rng = random.Random(seed)
    for i in range(n):
        t = mutate(texts[i % len(texts)], rng)
        try:
            target(t)
        except NumasimError as e:
            assert e.render()
        except Exception as e:  # pragma: no cover - the failure report
            raise AssertionError(f"{name} case {i} (seed {seed}) raised "
                                 f"{type(e).__name__}: {e}\n--- input ---\n{t[:3000]}") from e


def test_fuzz_scenario_scripts():
    from numasim.mm.script import load_machine_for, run_script

    machine = load_machine_for("2node")
    texts = [p.read_text() for p in sorted((ROOT / "experiments" / "scenarios").glob("*.txt"))]
    _fuzz("scenario", texts, 400, 14,
          lambda t: run_script(t, machine, file="fuzz.txt"))


def test_fuzz_workload_yaml():
    from numasim.workloads.schema import loads

    texts = [p.read_text() for p in sorted((ROOT / "configs" / "workloads").glob("*.yaml"))]
    _fuzz("workload", texts, 1000, 14, lambda t: loads(t, file="fuzz.yaml"))


def test_fuzz_experiment_yaml():
    from numasim.experiments.expand import expand
    from numasim.experiments.schema import read_source

    texts = [p.read_text() for p in sorted((ROOT / "experiments").glob("*.yaml"))]
    _fuzz("experiment", texts, 400, 14, lambda t: expand(
        read_source("fuzz.yaml", text=t, base_dir=ROOT / "experiments")))


def test_fuzz_lackey_traces():
    from numasim.workloads.trace import parse_lackey

    text = (ROOT / "tests" / "data" / "traces" / "sum-array.lackey.txt").read_text()[:20000]
    _fuzz("lackey", [text], 1000, 14,
          lambda t: parse_lackey(io.StringIO(t), file="fuzz.txt"))


def test_fuzz_npz_arrays():
    from numasim.workloads.trace import validate_trace

    rng = np.random.default_rng(14)
    dtypes = [np.int8, np.int64, np.uint64, np.float64, np.bool_, np.uint8, object]
    for i in range(500):
        data = {}
        for k in ("cpu", "address", "write", "format"):
            if rng.random() < 0.1:
                continue
            shape = tuple(int(x) for x in rng.integers(0, 4, size=rng.integers(0, 3)))
            dt = dtypes[rng.integers(len(dtypes))]
            arr = rng.integers(-2, 1 << 20, size=shape).astype(dt) if dt is not object \
                else np.array(["x"] * int(np.prod(shape)), dtype=object).reshape(shape)
            data[k] = arr
        try:
            validate_trace(data, file="fuzz.npz")
        except NumasimError:
            pass
        except Exception as e:  # pragma: no cover
            raise AssertionError(f"case {i}: {type(e).__name__}: {e}: {data}") from e


def test_fuzz_point_files_and_manifests(tmp_path, exp):
    """Damaged point files and manifests: the table builds or refuses, never crashes."""
    from numasim.experiments.runner import run_sweep
    from numasim.experiments.store import ResultStore
    from numasim.experiments.table import build_table

    out = tmp_path / "out"
    run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    store = ResultStore(out)
    files = sorted((out / "points").glob("*.json"))
    originals = {f: f.read_text() for f in files}
    manifest_text = (out / "sweep.json").read_text()
    rng = random.Random(14)
    for i in range(300):
        f = files[i % len(files)]
        f.write_text(mutate(originals[f], rng))
        (out / "sweep.json").write_text(mutate(manifest_text, rng) if i % 3 == 0
                                        else manifest_text)
        with contextlib.suppress(NumasimError):
            build_table(store.read_manifest(), store)
        f.write_text(originals[f])
