"""The sweep machinery with a fake point function: identical tables for any -j, failed
points recorded, resume after a kill that recomputes nothing, crashed workers isolated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from numasim.experiments.expand import load_experiment
from numasim.experiments.runner import run_sweep
from numasim.experiments.store import ResultStore, atomic_write

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from experiments_fake import FAKE_EXPERIMENT, fake_point  # noqa: E402

N_POINTS = 12


@pytest.fixture
def exp(tmp_path):
    p = tmp_path / "fake.yaml"
    p.write_text(FAKE_EXPERIMENT)
    return load_experiment(p)


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("NUMASIM_FAKE_LOG", str(log))
    for k in ("NUMASIM_FAKE_SLEEP", "NUMASIM_FAKE_FAIL_SIZE", "NUMASIM_FAKE_CRASH_SIZE",
              "NUMASIM_FAKE_EXIT_AFTER"):
        monkeypatch.delenv(k, raising=False)
    return log


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_serial_and_parallel_tables_are_byte_identical(exp, tmp_path, fake_env):
    s1 = run_sweep(exp, tmp_path / "serial", jobs=1, point_fn=fake_point, progress=False)
    s2 = run_sweep(exp, tmp_path / "par", jobs=2, point_fn=fake_point, progress=False)
    assert s1.ok and s2.ok
    assert (s1.computed, s2.computed) == (N_POINTS, N_POINTS)
    a = (tmp_path / "serial" / "results.csv").read_bytes()
    b = (tmp_path / "par" / "results.csv").read_bytes()
    assert a == b
    assert a.count(b"\n") == N_POINTS + 1
    # every point file holds its resolved config and result
    for p in exp.points:
        doc = json.loads((tmp_path / "par" / "points" / f"{p.key}.json").read_text())
        assert doc["status"] == "ok" and doc["config"] == p.config
        assert doc["result"]["seed"] == p.config["seed"]
        assert doc["host_seconds"] >= 0
    # the table loads straight into pandas, in sweep order
    from numasim.experiments.api import load_results

    df = load_results(tmp_path / "serial")
    assert list(df["point"]) == list(range(N_POINTS))
    assert list(df["case"][:6]) == ["first touch"] * 6
    assert list(df["size"][:3]) == [1 << 20, 2 << 20, 3 << 20]
    assert set(df["status"]) == {"ok"}


def test_failed_point_is_recorded_and_the_sweep_goes_on(exp, tmp_path, fake_env, monkeypatch):
    monkeypatch.setenv("NUMASIM_FAKE_FAIL_SIZE", str(3 << 20))
    s = run_sweep(exp, tmp_path / "out", jobs=2, point_fn=fake_point, progress=False)
    assert s.failed == 2 and s.computed == N_POINTS and not s.interrupted
    df = s.df
    bad = df[df["status"] == "error"]
    assert list(bad["size"]) == [3 << 20, 3 << 20]
    assert all(e.startswith("ValueError: fake failure") for e in bad["error"])
    assert (df["status"] == "ok").sum() == N_POINTS - 2
    # a rerun does not recompute the failures unless asked to
    before = len(calls(fake_env))
    s2 = run_sweep(exp, tmp_path / "out", jobs=1, point_fn=fake_point, progress=False)
    assert s2.computed == 0 and s2.failed == 2 and len(calls(fake_env)) == before
    monkeypatch.delenv("NUMASIM_FAKE_FAIL_SIZE")
    s3 = run_sweep(exp, tmp_path / "out", jobs=1, point_fn=fake_point, progress=False,
                   retry_failed=True)
    assert s3.computed == 2 and s3.failed == 0


def test_resume_recomputes_nothing(exp, tmp_path, fake_env):
    out = tmp_path / "out"
    run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    first = (out / "results.csv").read_bytes()
    n = len(calls(fake_env))
    assert n == N_POINTS
    # remove two results: exactly those two run again
    gone = [exp.points[3].key, exp.points[8].key]
    for k in gone:
        (out / "points" / f"{k}.json").unlink()
    s = run_sweep(exp, out, jobs=2, point_fn=fake_point, progress=False)
    assert s.computed == 2 and s.reused == N_POINTS - 2
    assert sorted(calls(fake_env)[n:]) == sorted(gone)
    assert (out / "results.csv").read_bytes() == first


def _sweep_script(tmp_path: Path, exp_path: Path, out: Path, jobs: int) -> Path:
    script = tmp_path / "run_fake_sweep.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "from experiments_fake import fake_point\n"
        "from numasim.experiments.expand import load_experiment\n"
        "from numasim.experiments.runner import run_sweep\n"
        "if __name__ == '__main__':\n"
        f"    exp = load_experiment({str(exp_path)!r})\n"
        f"    run_sweep(exp, {str(out)!r}, jobs={jobs}, point_fn=fake_point, progress=False)\n")
    return script


def _reference_table(exp, tmp_path) -> bytes:
    env_log = os.environ.pop("NUMASIM_FAKE_LOG", None)
    try:
        run_sweep(exp, tmp_path / "reference", jobs=1, point_fn=fake_point, progress=False)
    finally:
        if env_log is not None:
            os.environ["NUMASIM_FAKE_LOG"] = env_log
    return (tmp_path / "reference" / "results.csv").read_bytes()


def test_process_dying_mid_sweep_then_resume(exp, tmp_path, fake_env):
    """The sweep process itself dies (os._exit) after 5 points; the rerun finishes the other
    points only and the table equals an uninterrupted sweep's."""
    out = tmp_path / "out"
    script = _sweep_script(tmp_path, tmp_path / "fake.yaml", out, jobs=1)
    env = dict(os.environ, NUMASIM_FAKE_EXIT_AFTER="5")
    r = subprocess.run([sys.executable, str(script)], env=env, timeout=120,
                       capture_output=True, text=True)
    assert r.returncode == 9, r.stderr
    done = {p.stem for p in (out / "points").glob("*.json")}
    assert len(done) == 5 and len(calls(fake_env)) == 5
    assert not (out / "results.csv").exists()
    s = run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    assert s.reused == 5 and s.computed == N_POINTS - 5
    second = calls(fake_env)[5:]
    assert not set(second) & done
    assert len(second) == len(set(second)) == N_POINTS - 5
    assert (out / "results.csv").read_bytes() == _reference_table(exp, tmp_path)


def test_sigkill_during_parallel_sweep_then_resume(exp, tmp_path, fake_env):
    """kill -9 of the whole process group (sweep and its workers) while -j 2 runs."""
    out = tmp_path / "out"
    script = _sweep_script(tmp_path, tmp_path / "fake.yaml", out, jobs=2)
    env = dict(os.environ, NUMASIM_FAKE_SLEEP="0.4")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if len(list((out / "points").glob("*.json"))) >= 4:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    files = list((out / "points").glob("*.json"))
    done = {p.stem for p in files}
    assert 4 <= len(done) < N_POINTS
    for f in files:  # every file there is whole
        assert json.loads(f.read_text())["status"] == "ok"
    n_before = len(calls(fake_env))
    s = run_sweep(exp, out, jobs=2, point_fn=fake_point, progress=False)
    assert s.reused == len(done) and s.computed == N_POINTS - len(done)
    assert not set(calls(fake_env)[n_before:]) & done
    assert (out / "results.csv").read_bytes() == _reference_table(exp, tmp_path)


def test_a_point_that_kills_its_worker_is_isolated(exp, tmp_path, fake_env, monkeypatch):
    monkeypatch.setenv("NUMASIM_FAKE_CRASH_SIZE", str(5 << 20))
    s = run_sweep(exp, tmp_path / "out", jobs=2, point_fn=fake_point, progress=False)
    df = s.df
    bad = df[df["status"] != "ok"]
    assert list(bad["size"]) == [5 << 20, 5 << 20]
    assert all("WorkerDied" in e for e in bad["error"])
    assert (df["status"] == "ok").sum() == N_POINTS - 2


def test_keyboard_interrupt_keeps_finished_points(exp, tmp_path, fake_env):
    n = {"calls": 0}

    def interrupting(config):
        n["calls"] += 1
        if n["calls"] == 4:
            raise KeyboardInterrupt
        return fake_point(config)

    s = run_sweep(exp, tmp_path / "out", jobs=1, point_fn=interrupting, progress=False)
    assert s.interrupted and s.computed == 3
    assert len(s.df) == 3  # the table of what finished
    s2 = run_sweep(exp, tmp_path / "out", jobs=1, point_fn=fake_point, progress=False)
    assert s2.reused == 3 and s2.computed == N_POINTS - 3 and s2.ok


def test_second_sweep_into_the_same_folder_is_refused(exp, tmp_path):
    from numasim.errors import NumasimError

    store = ResultStore(tmp_path / "out")
    store.lock()
    try:
        with pytest.raises(NumasimError, match="another sweep is writing"):
            run_sweep(exp, tmp_path / "out", jobs=1, point_fn=fake_point, progress=False)
    finally:
        store.unlock()


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "d" / "x.json"
    atomic_write(target, "one\n")

    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # type: ignore[arg-type]
    assert target.read_text() == "one\n"
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_unreadable_point_file_is_recomputed(exp, tmp_path, fake_env):
    out = tmp_path / "out"
    run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    k = exp.points[0].key
    (out / "points" / f"{k}.json").write_text('{"key": "')
    s = run_sweep(exp, out, jobs=1, point_fn=fake_point, progress=False)
    assert s.computed == 1 and calls(fake_env)[-1] == k


def test_progress_bar_shows_points_failed_and_eta(exp, tmp_path, fake_env, monkeypatch,
                                                  capsys):
    monkeypatch.setenv("NUMASIM_FAKE_FAIL_SIZE", str(2 << 20))
    run_sweep(exp, tmp_path / "out", jobs=1, point_fn=fake_point, progress=True)
    err = capsys.readouterr().err
    assert "fake-sweep" in err and "12/12 points" in err and "failed 2" in err
    assert "<" in err  # elapsed<remaining


def test_parquet_table_when_pyarrow_is_installed(exp, tmp_path, fake_env):
    pytest.importorskip("pyarrow")
    import pandas as pd

    s = run_sweep(exp, tmp_path / "out", jobs=1, point_fn=fake_point, progress=False)
    assert s.parquet == tmp_path / "out" / "results.parquet"
    pq = pd.read_parquet(s.parquet)
    csv = pd.read_csv(s.table)
    assert list(pq.columns) == list(csv.columns)
    assert list(pq["key"]) == list(csv["key"])
    assert pq["bandwidth_GBps"].tolist() == csv["bandwidth_GBps"].tolist()
