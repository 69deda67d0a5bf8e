"""Experiment YAML validation: every problem at once, with file, line, field and the closest
valid key; `numasim validate` and `numasim sweep` report them with exit 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from numasim.errors import ConfigError
from numasim.experiments.expand import load_experiment, validate_file
from numasim.experiments.schema import read_source
from numasim.validate import validate_path, yaml_kind

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
experiment: ok
machine: oracle-2node
workload: {kernel: stream, threads: 2, size: 1MiB}
sweep:
  cases:
    - label: a
    - {label: b, policy: --interleave=all}
  grid:
    threads: [1, 2]
quick:
  workload.size: 256KiB
"""

BAD = """\
experiment: bad
machine: oracle-2node
workload:
  kernel: stream
  thread: 2
  size: 12
engine: quick
kernel: 5.4
repetitons: 2
sweep:
  cases:
    - {label: x, polcy: --interleave=all}
    - {label: y, policy: --membind=7}
  grid:
    threads: [1, 0, 3]
  zip:
    size: [1MiB, 2MiB]
    repeat: [1]
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_file_has_no_problems(tmp_path):
    p = write(tmp_path, GOOD)
    assert validate_file(p) == []
    assert yaml_kind(p) == "experiment"
    problems, kind = validate_path(str(p))
    assert (problems, kind) == ([], "experiment")


def test_every_problem_at_once_with_lines_and_closest_keys(tmp_path):
    p = write(tmp_path, BAD)
    problems = validate_file(p)
    by_line: dict[int, list[str]] = {}
    for pr in problems:
        assert pr.file == str(p)
        by_line.setdefault(pr.line, []).append(pr.render())
    text = "\n".join(pr.render() for pr in problems)
    # unknown top-level key, with the closest valid one
    assert any("unknown key 'repetitons'" in t and "did you mean 'repetitions'" in t
               for t in by_line[9])
    # unknown workload option, closest key
    assert any("thread" in t and "did you mean 'threads'" in t for t in by_line[5])
    # a bare size without a unit is bytes, but 12 bytes is not a whole page... it is valid;
    # the engine and the kernel generation are checked
    assert any("unknown engine 'quick'" in t for t in by_line[7])
    assert any("Linux generation" in t and "5.4" in t for t in by_line[8])
    # unknown parameter in a case
    assert any("unknown parameter 'polcy'" in t and "did you mean 'policy'" in t
               for t in by_line[12])
    # a nodemask naming a node the machine does not have
    assert any("--membind=7" in t for t in by_line[13])
    # bad axis value at its own line (threads 0), and too many threads for 2 CPUs
    assert any("at least 1" in t for t in by_line[15])
    assert any("3 threads" in t and "2 CPUs" in t for t in by_line[15])
    # zip lists of different lengths
    assert "zip lists must have the same length" in text
    assert len(problems) >= 9


def test_load_raises_config_error_listing_all(tmp_path):
    p = write(tmp_path, BAD)
    with pytest.raises(ConfigError) as ei:
        load_experiment(p)
    assert len(ei.value.problems) >= 9
    assert "problems:" in ei.value.render()


def test_structure_errors_do_not_hide_value_errors(tmp_path):
    p = write(tmp_path, "experiment: e\nmachine: oracle-2node\nworkload: stream\n"
                        "plott: {}\nsweep:\n  grid:\n    threads: [1, 5]\n")
    msgs = [pr.render() for pr in validate_file(p)]
    assert any("unknown key 'plott'" in m and "did you mean 'plot'" in m for m in msgs)
    assert any("5 threads" in m for m in msgs)


@pytest.mark.parametrize("text, needle, line", [
    ("experiment: 'has space'\nmachine: oracle-2node\nworkload: stream\n",
     "cannot name a folder", 1),
    ("experiment: e\nmachine: nosuchmachine\nworkload: stream\n",
     "no machine file or shipped machine called 'nosuchmachine'", 2),
    ("experiment: e\nmachine: oracle-2node\nworkload: streem\n",
     "did you mean 'stream'", 3),
    ("experiment: e\nmachine: oracle-2node\nworkload: stream\nweights: '4:1:1'\n",
     "3 weights for the 2 nodes", 4),
    ("experiment: e\nmachine: oracle-2node\nworkload: stream\nsweep:\n  grid:\n"
     "    threads: [1]\n  zip:\n    threads: [2]\n", "swept by both grid and zip", 8),
    ("experiment: e\nmachine: oracle-2node\nworkload: stream\nsweep:\n  cases:\n"
     "    - {threads: 1}\n  grid:\n    threads: [2]\n", "set by case 0 and swept by grid", 6),
    ("experiment: e\nmachine: oracle-2node\nworkload: stream\nplot: {x: threads}\n",
     "not swept", 4),
    ("experiment: e\nmachine: oracle-2node\nworkload: stream\nrepetitions: 2\nsweep:\n"
     "  grid:\n    seed: [1, 2]\n", "runs once per seed", 4),
    ("experiment: e\nworkload: stream\n", "missing required key 'machine'", 1),
    ("experiment: e\nmachine: oracle-2node\nworkload: stream\ncpu: {mpl: 3}\n",
     "did you mean 'cpu.mlp'", 4),
    ("experiment: e\nmachine: oracle-2node\nworkload: {kernel: stream, threads: 1}\n"
     "numactl: --cpunodebind=1 --physcpubind=0\n", "0 CPUs", 3),
])
def test_single_problems(tmp_path, text, needle, line):
    p = write(tmp_path, text)
    problems = validate_file(p)
    hits = [pr for pr in problems if needle in pr.render()]
    assert hits, [pr.render() for pr in problems]
    assert hits[0].line == line, hits[0].render()


def test_inline_machine_problems_point_into_the_experiment(tmp_path):
    text = ("experiment: e\n"
            "machine:\n"
            "  nodes:\n"
            "    - {id: 0, cpus: 0-1, memory: 1GiB}\n"
            "    - {id: 1, cpus: 2-3, memory: 1GiB, kind: HBMM}\n"
            "workload: stream\n")
    problems = validate_file(write(tmp_path, text))
    assert any("memory kind" in p.message and p.line == 5 for p in problems), \
        [p.render() for p in problems]


def test_machine_file_relative_to_experiment(tmp_path):
    (tmp_path / "m").mkdir()
    src = REPO / "configs" / "machines" / "oracle-2node.yaml"
    (tmp_path / "m" / "two.yaml").write_text(src.read_text())
    p = write(tmp_path, "experiment: e\nmachine: m/two.yaml\nworkload: stream\n")
    exp = load_experiment(p)
    assert exp.points[0].config["machine"]["name"] == "oracle-2node"
    p2 = write(tmp_path, "experiment: e\nmachine: m/three.yaml\nworkload: stream\n", "b.yaml")
    msgs = [x.render() for x in validate_file(p2)]
    assert any("machine file 'm/three.yaml' not found" in m for m in msgs)


def test_workload_file_and_overrides(tmp_path):
    wl = REPO / "configs" / "workloads" / "stream-triad.yaml"
    p = write(tmp_path, f"experiment: e\nmachine: clx-2s\nworkload: {{file: {wl}, threads: 4}}\n"
                        "sweep:\n  grid:\n    placement: [spread, compact]\n")
    exp = load_experiment(p)
    assert [pt.config["workload"]["overrides"] for pt in exp.points] == [
        {"threads": 4, "placement": "spread"}, {"threads": 4, "placement": "compact"}]
    assert exp.points[0].config["workload"]["name"] == "stream-triad"
    bad = write(tmp_path, f"experiment: e\nmachine: clx-2s\nworkload: {{file: {wl}}}\n"
                          "sweep:\n  grid:\n    size: [1MiB]\n", "bad.yaml")
    msgs = [x.render() for x in validate_file(bad)]
    assert any("applies to built-in kernels only" in m for m in msgs)


def test_quick_and_set_overrides(tmp_path):
    p = write(tmp_path, GOOD)
    full = load_experiment(p)
    quick = load_experiment(p, quick=True)
    assert {pt.config["workload"]["size"] for pt in full.points} == {1 << 20}
    assert {pt.config["workload"]["size"] for pt in quick.points} == {256 << 10}
    s = load_experiment(p, sets=["sweep.grid.threads=[2]", "engine=exact"])
    assert len(s.points) == 2
    assert {pt.config["engine"] for pt in s.points} == {"exact"}
    with pytest.raises(ConfigError) as ei:
        load_experiment(p, sets=["sweeep.grid.threads=[2]"])
    assert "did you mean 'sweep'" in ei.value.render()
    # quick overrides are checked too, at the line of the quick entry
    bad = write(tmp_path, GOOD.replace("256KiB", "lots"), "badquick.yaml")
    problems = validate_file(bad)
    assert problems and problems[0].line == 11, [x.render() for x in problems]


def test_quick_without_section(tmp_path):
    p = write(tmp_path, "experiment: e\nmachine: oracle-2node\nworkload: stream\n")
    with pytest.raises(ConfigError, match="--quick needs a 'quick:' section"):
        load_experiment(p, quick=True)


def test_dict_experiment_without_file():
    src = read_source(data={"experiment": "d", "machine": "oracle-2node",
                            "workload": {"kernel": "gups", "size": "1MiB"},
                            "sweep": {"grid": {"threds": [1]}}})
    from numasim.experiments.expand import expand

    with pytest.raises(ConfigError) as ei:
        expand(src)
    assert "did you mean 'threads'" in ei.value.render()


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "numasim", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_cli_validate_and_sweep_report_all_problems_exit_2(tmp_path):
    p = write(tmp_path, BAD)
    r = run_cli("validate", str(p))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "repetitons" in r.stderr and "--membind=7" in r.stderr
    assert f"{p}:9" in r.stderr  # file:line
    r = run_cli("sweep", str(p), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "problems:" in r.stderr and "did you mean 'policy'" in r.stderr
    assert not (tmp_path / "out").exists()


def test_shipped_experiments_are_valid():
    files = sorted((REPO / "experiments").glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        assert validate_file(f) == [], f
        text = f.read_text()
        assert "Question:" in text and "Answer" in text, f"{f.name} needs its comment"
