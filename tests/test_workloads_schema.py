"""The workload YAML: shipped files validate, mistakes name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from numasim.api import run
from numasim.errors import ConfigError, NumasimError
from numasim.validate import validate_path
from numasim.workloads.schema import load_workload, loads, validate_file

WORKLOADS = Path(__file__).resolve().parents[1] / "configs" / "workloads"
GOOD = """\
name: w
threads: 2
regions:
  - {name: a, size: 1MiB}
phases:
  - {name: init, kernel: init}
  - {name: read, kernel: stride, stride: 4KiB}
"""


@pytest.mark.parametrize("path", sorted(WORKLOADS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_workloads_validate(path):
    assert validate_file(path) == []
    problems, kind = validate_path(str(path))
    assert (problems, kind) == ([], "workload")


def test_good_file_builds_the_model():
    wl = loads(GOOD, file="w.yaml")
    assert wl.threads == 2
    assert wl.regions[0].size == 1 << 20
    assert [p.kernel for p in wl.phases] == ["init", "stride"]
    assert wl.phases[1].stride == 4096


def test_typo_in_a_key_names_file_line_field_and_the_fix(tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text(GOOD.replace("threads: 2", "thread: 2"))
    problems = validate_file(f)
    assert len(problems) == 1
    p = problems[0]
    assert p.file == str(f) and p.line == 2 and p.field == "thread"
    assert "did you mean 'threads'" in p.hint
    with pytest.raises(ConfigError) as e:
        load_workload(f)
    assert "thread" in str(e.value) and str(f) in str(e.value)


def test_every_problem_at_once(tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text(GOOD.replace("kernel: stride", "kernel: strid").replace("size: 1MiB",
                                                                          "size: 1"))
    problems = validate_file(f)
    fields = {p.field for p in problems}
    assert fields == {"regions[0].size", "phases[1].kernel"}
    kernel = next(p for p in problems if p.field == "phases[1].kernel")
    assert "did you mean 'stride'" in kernel.message and kernel.line == 7


@pytest.mark.parametrize("text,field,words", [
    (GOOD.replace("kernel: stride, stride: 4KiB", "kernel: stream"), "phases[1].regions",
     "needs 3 region"),
    (GOOD.replace("{name: init, kernel: init}", "{name: init, kernel: init, regions: [b]}"),
     "phases[0].regions[0]", "unknown region 'b'"),
    (GOOD + "  - {kernel: mbind}\n", "phases[2].policy", "needs a 'policy'"),
    (GOOD.replace("phases:\n", "trace: {file: nowhere.txt}\nphases:\n"), "trace.file",
     "not found"),
])
def test_semantic_problems(text, field, words):
    with pytest.raises(ConfigError) as e:
        loads(text, file="w.yaml")
    assert e.value.field == field
    assert words in str(e.value)


def test_bad_region_policy_is_reported_at_run_time_with_the_field():
    wl = loads(GOOD.replace("size: 1MiB}", "size: 1MiB, policy: --membind=7}"), file="w.yaml")
    with pytest.raises(NumasimError) as e:
        run("clx-2s", wl)
    assert "<7> is invalid" in str(e.value)


def test_region_policy_must_be_one_memory_policy():
    wl = loads(GOOD.replace("size: 1MiB}", "size: 1MiB, policy: --cpunodebind=0}"),
               file="w.yaml")
    with pytest.raises(ConfigError) as e:
        run("clx-2s", wl)
    assert e.value.field == "regions[0].policy" and e.value.file == "w.yaml"


def test_too_many_threads():
    wl = loads(GOOD.replace("threads: 2", "threads: 5").replace(
        "name: w\n", "name: w\nnumactl: --physcpubind=0-3\n"), file="w.yaml")
    with pytest.raises(ConfigError) as e:
        run("clx-2s", wl)
    assert e.value.field == "threads" and "0-3" in str(e.value)
