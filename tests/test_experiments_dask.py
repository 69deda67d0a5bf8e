"""The real engine through the sweep: a serial run, `-j 2` and a Dask LocalCluster (by its
address, as `--dask ADDRESS` does) give byte-identical result tables; the CLI resumes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from numasim.experiments.expand import load_experiment
from numasim.experiments.runner import run_sweep

SMALL = """\
experiment: tiny-real
machine: clx-2s
workload: {kernel: stream, op: triad, size: 256KiB}
seed: 21
sweep:
  cases:
    - label: first touch
    - {label: serial init, init: serial}
    - {label: interleave, policy: --interleave=all}
  grid:
    threads: [1, 4]
"""


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    p = d / "tiny.yaml"
    p.write_text(SMALL)
    return load_experiment(p)


def test_serial_parallel_and_dask_tables_identical(exp, tmp_path):
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    serial = run_sweep(exp, tmp_path / "serial", jobs=1, progress=False)
    assert serial.ok, serial.failures
    par = run_sweep(exp, tmp_path / "par", jobs=2, progress=False)
    assert par.ok, par.failures
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        dask = run_sweep(exp, tmp_path / "dask", dask=cluster.scheduler_address,
                         progress=False)
    assert dask.ok, dask.failures
    a = (tmp_path / "serial" / "results.csv").read_bytes()
    assert a == (tmp_path / "par" / "results.csv").read_bytes()
    assert a == (tmp_path / "dask" / "results.csv").read_bytes()
    # and the numbers are the engine's, not placeholders
    df = serial.df
    assert len(df) == 6 and set(df["status"]) == {"ok"}
    ft = df[(df["case"] == "first touch") & (df["threads"] == 4)].iloc[0]
    si = df[(df["case"] == "serial init") & (df["threads"] == 4)].iloc[0]
    il = df[(df["case"] == "interleave") & (df["threads"] == 4)].iloc[0]
    assert ft["local_fraction"] > 0.99
    assert il["local_fraction"] == pytest.approx(0.5, abs=0.01)
    assert si["pages_node1"] == 0 and si["pages_node0"] > 0
    assert ft["bandwidth_GBps"] > si["bandwidth_GBps"]


def test_cli_sweep_resume_and_plot(exp, tmp_path):
    exp_file = tmp_path / "tiny.yaml"
    exp_file.write_text(SMALL)
    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "numasim", "sweep", str(exp_file), "--out", str(out), "-j",
           "1", "--no-progress", "--no-plots"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "6 computed now, 0 already done, 0 failed" in r.stdout
    first = (out / "results.csv").read_bytes()
    victim = next((out / "points").glob("*.json"))
    victim.unlink()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "1 computed now, 5 already done, 0 failed" in r.stdout
    assert (out / "results.csv").read_bytes() == first
    r = subprocess.run([sys.executable, "-m", "numasim", "sweep", str(exp_file), "--out",
                        str(out), "--list"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.count(" ok ") == 6


def test_bad_dask_address_is_a_user_error(exp, tmp_path):
    pytest.importorskip("dask.distributed")
    import dask

    from numasim.errors import NumasimError

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), \
            pytest.raises(NumasimError, match="cannot reach the Dask scheduler"):
        run_sweep(exp, tmp_path / "x", dask="tcp://127.0.0.1:1", progress=False)
    assert Path(tmp_path / "x" / "sweep.json").exists()
