"""`numasim explain` and `numasim numastat`: the scenario views from the command line."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import pytest

from numasim.cli import main

LAYOUT = str(Path(__file__).parent / "data" / "topologies" / "layouts" / "4node-asym.layout")
INTERLEAVE = "mmap 16; mbind 0 16 interleave 1-3; touch 0 8"


def _query_nodes(capsys, script: str) -> dict[int, int]:
    assert main(["script", "-m", LAYOUT, "-e", script + "; query", "--json"]) == 0
    objs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    return {o["page"]: o["node"] for o in objs if o.get("op") == "query" and "node" in o}


def test_explain_agrees_with_where_pages_land(capsys):
    assert main(["explain", "-m", LAYOUT, "-e", INTERLEAVE, "--page", "0-15", "--json"]) == 0
    ex = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["page"] for e in ex] == list(range(16))
    placed = _query_nodes(capsys, "mmap 16; mbind 0 16 interleave 1-3; touch")
    for e in ex:
        assert e["fault_node"] == placed[e["page"]]  # what a fault does is what happened
        assert (e["node"] is None) == (e["page"] >= 8)  # pages 0-7 were touched
        assert any("interleave" in t for t in e["text"])
    assert {e["fault_node"] for e in ex} == {1, 2, 3}


def test_explain_text_names_policy_zonelist_and_result(capsys):
    assert main(["explain", "-m", LAYOUT, "-e", INTERLEAVE, "--page", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("region 0 (anon, 16 pages), page 10: not present yet\n")
    assert "vma policy interleave:1-3" in out and "zonelist of node" in out
    assert "Result: the page goes to node" in out


def test_explain_before_a_line_explains_that_touch(tmp_path, capsys):
    scen = tmp_path / "s.txt"
    scen.write_text("mmap 4\nset_mempolicy bind 2\ntouch\nset_mempolicy default\n")
    assert main(["explain", str(scen), "-m", LAYOUT, "--page", "1", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["node"] == 2 and after["fault_node"] == 0  # default policy now, CPU 0
    assert main(["explain", str(scen), "-m", LAYOUT, "--page", "1", "--before", "3",
                 "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["node"] is None and before["fault_node"] == 2  # the touch on line 3


@pytest.mark.parametrize("argv, words", [
    (["--page", "16"], ["--page", "page 16 is outside region 0", "0-15"]),
    (["--page", "1", "--region", "3"], ["--region", "no region 3", "regions mapped: 0"]),
    (["--page", "x"], ["not a page index"]),
])
def test_explain_bad_requests_are_one_paragraph(capsys, argv, words):
    with pytest.raises(SystemExit) if words == ["not a page index"] else nullcontext():
        rc = main(["explain", "-m", LAYOUT, "-e", INTERLEAVE, *argv])
        assert rc == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for w in words:
        assert w in err


def test_explain_refuses_a_finished_process_and_a_cut_inside_fork(capsys):
    assert main(["explain", "-m", LAYOUT, "-e", "mmap 4; exit", "--page", "0"]) == 2
    assert "ended before its pages could be explained" in capsys.readouterr().err
    assert main(["explain", "-m", LAYOUT, "-e", "mmap 4; fork; touch; endfork; touch",
                 "--page", "0", "--before", "4"]) == 2
    assert "inside a fork" in capsys.readouterr().err


def test_numastat_tables_in_numastats_formats(capsys):
    scen = "mmap 64; mbind 0 64 interleave 1-3; touch"
    assert main(["numastat", "--machine", LAYOUT, "-e", scen, "--delta"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["node0", "node1", "node2", "node3"]
    rows = {ln.split()[0]: [int(x) for x in ln.split()[1:]] for ln in lines[1:]}
    assert list(rows) == ["numa_hit", "numa_miss", "numa_foreign", "interleave_hit",
                          "local_node", "other_node"]
    assert sum(rows["interleave_hit"]) == 64 and rows["interleave_hit"][0] == 0
    assert len(lines[0]) == 16 * 5  # numastat's 16-wide columns
    assert main(["numastat", "--machine", LAYOUT, "-e", scen, "-n"]) == 0
    out = capsys.readouterr().out
    assert "Per-node numastat info (in MBs):" in out and out.splitlines()[2].split()[-1] \
        == "Total"
    assert main(["numastat", "--machine", LAYOUT, "-e", "mmap 2560; touch", "-m", "-c",
                 "--node", "0"]) == 0
    out = capsys.readouterr().out
    assert "Per-node system memory usage (in MBs):" in out
    used = next(ln for ln in out.splitlines() if ln.startswith("MemUsed")).split()
    assert int(used[1]) >= 10  # the scenario's 10 MiB, still held: its process is alive
    # as numastat(8): any option leaves the legacy table for the new (MB) format
    assert main(["numastat", "--machine", LAYOUT, "-c"]) == 0
    out = capsys.readouterr().out
    assert "Per-node numastat info (in MBs):" in out and "numa_hit" not in out


@pytest.mark.parametrize("argv, word", [
    (["--machine", LAYOUT, "-n", "-m"], "-n/-m"),
    (["--machine", LAYOUT, "--node", "9"], "no node 9"),
    (["--machine", LAYOUT, "--node", "a-"], "not a node list"),
    ([], "no machine given"),
])
def test_numastat_bad_requests(capsys, argv, word):
    assert main(["numastat", *argv]) == 2
    err = capsys.readouterr().err
    assert word in err and "Traceback" not in err


def test_both_are_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "explain" in out and "numastat" in out
