"""`numasim script`: the command line (text, JSON, --check, errors without tracebacks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from numasim.cli import main

LAYOUT = Path(__file__).parent / "data" / "topologies" / "layouts" / "4node-asym.layout"


def test_script_file_with_layout_line(tmp_path: Path, capsys) -> None:
    scen = tmp_path / "s.txt"
    scen.write_text("#@ layout 4node-asym\ncpu 3\nmmap 2 at=0x40000000\ntouch 0 2\n"
                    "query 0 2 brief\n")
    assert main(["script", str(scen)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == "summary region=0 off=0 n=2 node3=2 runs=0-1:3 seq=3,3"
    assert out[-1] == "exit rc=0"


def test_inline_json(capsys) -> None:
    assert main(["script", "-e", "set_mempolicy preferred 2; get_mempolicy", "--machine",
                 str(LAYOUT), "--json"]) == 0
    objs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert objs[0] == {"op": "set_mempolicy", "ret": 0, "line": 1}
    assert objs[1]["mode"] == "preferred" and objs[1]["nodes"] == [2]
    assert objs[1]["line"] == 2


def test_check_against_a_recording(tmp_path: Path, capsys) -> None:
    rec = tmp_path / "expected.txt"
    rec.write_text("## kernel 6.12  layout 4node-asym.layout  scenario x.txt\n"
                   "> set_mempolicy bind 9\nret op=set_mempolicy rc=-1 errno=EINVAL\n"
                   "exit rc=0\n")
    argv = ["script", "-e", "set_mempolicy bind 9", "-m", str(LAYOUT), "--check", str(rec)]
    assert main(argv) == 0
    rec.write_text(rec.read_text().replace("EINVAL", "EFAULT"))
    assert main(argv) == 1
    assert "1 differences" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "words"), [
    (["script", "-e", "mbind 0 8 bnd 1", "-m", str(LAYOUT)], "unknown policy mode 'bnd'"),
    (["script", "-e", "cpu 0"], "names no layout"),
    (["script", "-e", "cpu 0", "-m", "no-such-machine"], "no machine or layout named"),
    (["script", "/no/such/file.txt", "-m", str(LAYOUT)], "no such scenario file"),
    (["script"], "no scenario given"),
])
def test_errors_are_one_paragraph(argv: list[str], words: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err


def test_bad_line_names_file_and_line(tmp_path: Path, capsys) -> None:
    scen = tmp_path / "bad.txt"
    scen.write_text("cpu 0\n\nmmap 4\ntuch 0 4\n")
    assert main(["script", str(scen), "-m", str(LAYOUT)]) == 2
    err = capsys.readouterr().err
    assert f"{scen}:4" in err and "did you mean 'touch'" in err


@pytest.mark.parametrize("kernel", ["6.1", "2.6.7"])
def test_kernel_generation(kernel: str, capsys) -> None:
    assert main(["script", "-e", "set_mempolicy weighted_interleave 0-1", "-m", str(LAYOUT),
                 "--kernel", kernel]) == 0
    assert "errno=EINVAL" in capsys.readouterr().out
