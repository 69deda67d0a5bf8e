"""numasim.mm.script.lang: the probe's scenario language, parsed and checked up front."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from numasim.errors import ScriptError
from numasim.mm.script.lang import (
    DEFAULT_MAXNODE,
    Addr,
    MaskArg,
    c_strtol,
    inline_script,
    matching_endfork,
    parse_line,
    parse_script,
    script_layout,
    to_int,
    to_ulong,
)


def one(text: str):
    line = parse_line(text, 1, "t.txt")
    assert line is not None
    return line


# ------------------------------------------------------------------ numbers
@pytest.mark.parametrize(("text", "value"), [("12", 12), ("0x40000000", 0x40000000),
                                             ("010", 8), ("-1", -1), ("0", 0), ("+7", 7)])
def test_strtol_base0(text: str, value: int) -> None:
    assert c_strtol(text) == (value, "")


def test_strtol_rest_and_failure() -> None:
    assert c_strtol("12abc") == (12, "abc")
    assert c_strtol("abc")[0] is None


def test_strtoul_and_int_casts() -> None:
    assert to_ulong(-1) == (1 << 64) - 1
    assert to_int(0xFFFFFFFF) == -1
    assert to_int(1 << 15 | 2) == 32770


@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_strtol_roundtrip(v: int) -> None:
    assert c_strtol(str(v)) == (v, "")
    assert c_strtol(hex(v)) == (v, "")


# ------------------------------------------------------------------ lines
def test_comments_and_blank_lines() -> None:
    lines = parse_script("#@ layout 4node-asym\n\n  # a comment\ncpu 1   # trailing\n")
    assert [x.words for x in lines] == [["cpu", "1"]]
    assert lines[0].number == 4
    assert lines[0].echo == "> cpu 1"


def test_layout_line() -> None:
    assert script_layout("# x\n#@ layout 8node\ncpu 0\n") == "8node"
    assert script_layout("cpu 0\n") is None


def test_inline_script() -> None:
    assert inline_script("cpu 1; mmap 4 at=0x40000000") == "cpu 1\nmmap 4 at=0x40000000\n"


def test_mmap_options() -> None:
    a = one("mmap 12 file=/tmp/t/f private keep at=0x40200000 name=x").args
    assert (a["n"], a["kind"], a["path"], a["private"], a["keep"], a["at"], a["name"]) == \
        (12, "file", "/tmp/t/f", True, True, 0x40200000, "x")
    assert one("mmap 4 memfd").args["kind"] == "memfd"
    assert one("mmap 4").args["kind"] == "anon"


def test_policy_arguments() -> None:
    pa = one("mbind 0 16 interleave 0-2,5 static strict move maxnode=9").args["pol"]
    assert pa.mode == 3 | (1 << 15)
    assert pa.mask == MaskArg(frozenset({0, 1, 2, 5}))
    assert pa.flags == 1 | 2
    assert pa.effective_maxnode == 9
    pa = one("set_mempolicy bind 0 relative balancing").args["pol"]
    assert pa.mode == 2 | (1 << 14) | (1 << 13)
    assert pa.effective_maxnode == DEFAULT_MAXNODE


def test_null_mask_means_maxnode_zero_unless_given() -> None:
    assert one("set_mempolicy default").args["pol"].effective_maxnode == 0
    assert one("set_mempolicy default null maxnode=5").args["pol"].effective_maxnode == 5
    pa = one("set_mempolicy bind 0 maskaddr=0x10").args["pol"]
    assert pa.maskaddr == Addr(0x10) and pa.effective_maxnode == DEFAULT_MAXNODE


def test_mflags_override_and_raw_modes() -> None:
    pa = one("mbind 0 16 bind 1 strict mflags=-1").args["pol"]
    assert pa.flags == (1 << 64) - 1
    assert one("mbind 0 16 7 1").args["pol"].mode == 7
    assert one("set_mempolicy -1").args["pol"].mode == -1
    assert one("set_mempolicy weighted 0-1").args["pol"].mode == 6


def test_none_and_empty_masks() -> None:
    assert one("mbind 0 4 bind none").args["pol"].mask == MaskArg()
    assert one("set_mempolicy preferred null").args["pol"].mask.null


def test_raw_addresses() -> None:
    a = one("mbind_raw +4096 0xfffffffffffff000 bind 1").args
    assert a["addr"] == Addr(4096, True) and a["len"] == 0xFFFFFFFFFFFFF000
    assert one("mbind_raw 0x50000000 -1 bind 1").args["len"] == (1 << 64) - 1
    a = one("get_mempolicy rawaddr=+4095 node").args
    assert a["raw"] == Addr(4095, True) and a["flags"] == 3


def test_get_mempolicy_flags_replace_earlier_ones() -> None:
    assert one("get_mempolicy addr=0 flags=0").args["flags"] == 0
    assert one("get_mempolicy mems_allowed node").args["flags"] == 5
    assert one("get_mempolicy addr 3 nomask").args["off"] == 3


def test_move_and_migrate() -> None:
    a = one("move 0 4 2 move_all pid=parent").args
    assert (a["flags"], a["pid"], a["node"]) == (4, "parent", 2)
    assert one("move 0 4 2 flags=1").args["flags"] == 1
    a = one("migrate 0-1 2 pid=99999 maxnode=-1 old=+0 new=-1").args
    assert a["from"] == MaskArg(frozenset({0, 1})) and a["to"] == MaskArg(frozenset({2}))
    assert a["maxnode"] == (1 << 64) - 1 and a["old"] == Addr(0, True)


def test_exec_parses_its_commands() -> None:
    line = one("exec get_mempolicy; mmap 8 at=0x40000000; touch 0 8")
    assert [x.cmd for x in line.sub] == ["get_mempolicy", "mmap", "touch"]
    assert all(x.number == 1 for x in line.sub)


def test_matching_endfork_nests() -> None:
    lines = parse_script("fork\nfork\nendfork\ncpu 1\nendfork\ncpu 0\n")
    assert matching_endfork(lines, 0) == 4
    assert matching_endfork(lines, 1) == 2


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(("text", "words"), [
    ("tuch 0 8", "did you mean 'touch'"),
    ("mbind 0 8 bnd 1", "unknown policy mode"),
    ("mbind 0 8", "missing arguments"),
    ("touch 0 x", "is not a number"),
    ("touch 0 4 writ", "unknown touch mode"),
    ("set_mempolicy bind 0-3,x", "bad policy argument"),
    ("mmap 4 shard", "unknown mmap option"),
    ("move 0 1 2 pid=", "is not a number"),
    ("mprotect 0 1 rx", "unknown protection"),
    ("fork 1", "takes no arguments"),
    ("exec cpu 1; tuch 0", "did you mean 'touch'"),
    ("set_mempolicy bind 40000", "outside"),
])
def test_bad_lines_raise_script_errors(text: str, words: str) -> None:
    with pytest.raises(ScriptError) as e:
        parse_script(f"cpu 0\n{text}\n", "scen.txt")
    msg = str(e.value)
    assert words in msg
    assert "scen.txt:2" in msg
