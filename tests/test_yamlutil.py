"""Strict YAML helpers: line tracking, duplicate keys, pydantic errors as located problems."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BeforeValidator, ValidationError

from numasim.errors import ConfigError
from numasim.yamlutil import (
    BandwidthGBps,
    FreqGHz,
    IdList,
    Size,
    StrictModel,
    TimeNs,
    choice_reader,
    dotted,
    model_at,
    parse_yaml,
    validate_model,
    validation_problems,
)

TEXT = """\
# comment
name: demo
threads:
  - cpu: 0
    region: {size: 4GiB}
  -
    cpu: 1
    region:
      size: 1GiB
anchors:
  base: &b {x: 1}
  copy: *b
"""


def test_lines_of_keys_and_items():
    doc = parse_yaml(TEXT, file="w.yaml")
    assert doc.data["threads"][1]["region"]["size"] == "1GiB"
    assert doc.lines[("name",)] == 2
    assert doc.lines[("threads",)] == 3
    assert doc.lines[("threads", 0)] == 4
    assert doc.lines[("threads", 0, "region", "size")] == 5
    assert doc.lines[("threads", 1, "cpu")] == 7
    assert doc.lines[("threads", 1, "region", "size")] == 9
    assert doc.lines[("anchors", "copy", "x")] == 11  # alias: where the anchor's key is
    # unknown paths fall back to the nearest known parent
    assert doc.line(("threads", 1, "region", "size", "nope")) == 9
    assert doc.problems == []


def test_recursive_alias_does_not_hang():
    doc = parse_yaml("a: &x [1, *x]\n")
    assert doc.data["a"][0] == 1 and doc.data["a"][1] is doc.data["a"]


def test_duplicate_keys_at_any_depth():
    doc = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", file="d.yaml")
    assert doc.data == {"a": 3, "b": {"c": 2}}
    assert [(p.line, p.field) for p in doc.problems] == [(4, "b.c"), (5, "a")]
    assert all(p.file == "d.yaml" for p in doc.problems)


def test_merge_keys_are_not_duplicates():
    doc = parse_yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 5\n")
    assert doc.data["d"] == {"x": 5, "y": 2} and doc.problems == []


def test_syntax_error_names_line():
    with pytest.raises(ConfigError) as e:
        parse_yaml("a: 1\nb: [1, 2\nc: 3\n", file="s.yaml")
    p = e.value.problems[0]
    assert p.file == "s.yaml" and p.line in (2, 3) and "not valid YAML" in p.message


def test_unsafe_tags_are_refused():
    with pytest.raises(ConfigError):
        parse_yaml("a: !!python/object/apply:os.system ['true']\n")


def test_dotted():
    assert dotted(("nodes", 1, "memory")) == "nodes[1].memory"
    assert dotted(("latency", 0, 2)) == "latency[0][2]"
    assert dotted(()) == ""


# ------------------------------------------------------------------ a schema reusing these
class Region(StrictModel):
    size: Size
    start: Size = 0


class Thread(StrictModel):
    cpu: int
    region: Region
    cpus: IdList = []
    kind: Annotated[str, BeforeValidator(choice_reader(["stream", "random"], "pattern"))] = \
        "stream"


class Workload(StrictModel):
    name: str
    threads: list[Thread]
    clock: FreqGHz = 2.0
    delay: TimeNs = 0.0
    link: BandwidthGBps | None = None


def test_model_at_walks_lists_and_optionals():
    assert model_at(Workload, ()) is Workload
    assert model_at(Workload, ("threads", 3)) is Thread
    assert model_at(Workload, ("threads", 0, "region")) is Region
    assert model_at(Workload, ("threads", 0, "cpu")) is None
    assert model_at(Workload, ("nope",)) is None


def test_all_problems_with_lines_and_closest_keys():
    text = """\
name: demo
threads:
  - cpu: 0
    region: {size: 4GiB, strat: 0}
  - cpu: one
    region: {size: 4}
    kind: strem
  - cpu: 2
clok: 2GHz
delay: 5
"""
    doc = parse_yaml(text, file="w.yaml")
    obj, problems = validate_model(doc, Workload, what="workload")
    assert obj is None
    got = [(p.line, p.field, p.message) for p in problems]
    assert got == [
        (4, "threads[0].region.strat", "unknown key 'strat'"),
        (5, "threads[1].cpu", "expected a whole number, got 'one'"),
        (6, "threads[1].region.size",
         "a size needs a unit, e.g. 64GiB or 512MiB (got the bare number 4)"),
        (7, "threads[1].kind",
         "unknown pattern 'strem'; did you mean 'stream'? valid: stream, random"),
        (8, "threads[2].region", "missing required key 'region'"),
        (9, "clok", "unknown key 'clok'"),
        (10, "delay", "a time needs a unit, e.g. 81.2ns (got the bare number 5)"),
    ]
    hints = {p.field: p.hint for p in problems}
    assert hints["threads[0].region.strat"].startswith("did you mean 'start'?")
    assert hints["clok"].startswith("did you mean 'clock'?")
    assert all(p.file == "w.yaml" for p in problems)


def test_valid_document_gives_model():
    doc = parse_yaml("name: x\nthreads: [{cpu: 0, region: {size: 2MiB}, cpus: '0-3,8'}]\n"
                     "clock: 1500MHz\nlink: 20GB/s\n")
    obj, problems = validate_model(doc, Workload)
    assert problems == []
    assert obj.threads[0].region.size == 2 << 20
    assert obj.threads[0].cpus == [0, 1, 2, 3, 8]
    assert obj.clock == 1.5 and obj.link == 20.0


def test_non_mapping_document():
    for text in ("", "- a\n", "just text\n"):
        obj, problems = validate_model(parse_yaml(text, file="x.yaml"), Workload,
                                       what="workload")
        assert obj is None and len(problems) == 1
        assert "a workload file must be a mapping" in problems[0].message
        assert "valid top-level keys: name, threads" in problems[0].hint


@pytest.mark.parametrize("value, expected", [
    ("0-2,5", [0, 1, 2, 5]), (3, [3]), ([4, 1], [1, 4]), (None, []), ("", []),
])
def test_id_list_accepts(value, expected):
    class M(StrictModel):
        ids: IdList

    assert M(ids=value).ids == expected


@pytest.mark.parametrize("value, words", [
    ("2-1", "runs backwards"), ([1, 1], "listed twice"), ([-1], "non-negative"),
    (True, "expected a list"), ("a-b", "cannot read"), (-3, "negative"),
])
def test_id_list_rejects(value, words):
    class M(StrictModel):
        ids: IdList

    with pytest.raises(ValidationError) as e:
        M(ids=value)
    doc = parse_yaml("ids: x\n")
    (p,) = validation_problems(e.value, doc, M)
    assert words in p.message and p.field == "ids" and p.line == 1


def test_sizes_need_units_but_zero():
    class M(StrictModel):
        s: Size

    assert M(s="4KiB").s == 4096 and M(s=0).s == 0
    for bad in (4096, 1.5, True, "4 parsecs", [1]):
        with pytest.raises(ValidationError):
            M(s=bad)
