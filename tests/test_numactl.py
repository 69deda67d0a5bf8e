"""numasim.mm.numactl: numactl's node/CPU string grammar and options, the calls it makes,
``--show`` and ``--hardware``.  Checked against the real numactl (recordings in
tests/data/numactl, see SOURCES.md) and against the fact sheet's §13 rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numasim.bitmap import format_list
from numasim.errors import NumasimError
from numasim.mm import syscalls as sc
from numasim.mm.constants import (
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_NUMA_BALANCING,
    MPOL_F_STATIC_NODES,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)
from numasim.mm.kernel import Kernel
from numasim.mm.nodemask import UserMask
from numasim.mm.numactl import (
    numactl_hardware,
    numactl_show,
    parse_cpustring,
    parse_nodestring,
    parse_numactl,
    policy_name,
    strtoul,
)
from numasim.topology.build import make_machine
from numasim.topology.loaders import layout
from numasim.topology.model import Node

DATA = Path(__file__).parent / "data"
LAYOUTS = DATA / "topologies" / "layouts"


@pytest.fixture(scope="module")
def asym():
    return layout.load(LAYOUTS / "4node-asym.layout")


@pytest.fixture(scope="module")
def eight():
    return layout.load(LAYOUTS / "8node.layout")


@pytest.fixture(scope="module")
def host():
    """The machine the recordings were made on: one node, CPUs 0 and 1."""
    return make_machine("host", [Node(0, (0, 1), 1 << 30)], distance=[[10]])


def mempolicy(k, t):
    return sc.get_mempolicy(k, t)


# ----------------------------------------------------------------- strtoul
@pytest.mark.parametrize("s,value,end", [
    ("0x3", 3, 3), ("010", 8, 3), ("08", 0, 1), ("0x", 0, 1), (" 7", 7, 2), ("+5", 5, 2),
    ("-1", (1 << 64) - 1, 2), ("-0", 0, 2), ("", 0, 0), ("x", 0, 0), ("12a", 12, 2),
])
def test_strtoul_is_c_strtoul_base_0(s, value, end):
    assert strtoul(s, 0) == (value, end)


# --------------------------------------------------- grammar vs the real numactl
def host_recording():
    rows = []
    for line in (DATA / "numactl" / "grammar_host_numactl-2.0.16.tsv").read_text().splitlines():
        key, real = line.split("\t")
        rows.append((key[0], key[2:-1], real))
    return rows


@pytest.mark.parametrize("kind,s,real", host_recording())
def test_grammar_matches_real_numactl(host, kind, s, real):
    """numactl 2.0.16 on a 1-node, 2-CPU host: ``-C s`` (physcpubind shown) and ``-i s``
    (interleave mask shown, or policy default for an empty mask)."""
    try:
        if kind == "C":
            r = parse_cpustring(s, host)
            mine = ("physcpubind: " + "".join(f"{c} " for c in sorted(r))) if r else ""
        else:
            r = parse_nodestring(s, host)
            mine = ("policy: interleave|interleavemask: " + "".join(f"{c} " for c in sorted(r))
                    + "|") if r else "policy: default|"
    except NumasimError as e:
        assert str(e).endswith(f"<{s}> is invalid" + f" ({e.problems[0].hint})")
        mine = f"<{s}> is invalid" + ("|" if kind == "i" else "")
    assert mine == real


# ------------------------------------------------------- grammar, fact sheet §13
@pytest.mark.parametrize("s,allowed,expected", [
    ("0x3", {0, 1, 2, 3}, {3}),                  # hex: node 3 (numactl.8's "1 and 2" is wrong)
    ("010", set(range(8)) | {8}, {8}),           # octal
    ("0-3", {0, 2, 3}, {0, 2, 3}),               # 1 not allowed, inside a range: skipped
    ("3-1", {0, 1, 2, 3}, {3}),                  # M < N gives {N}
    ("", {0, 1}, set()),                         # empty string, empty mask
    ("+1", {1, 3}, {3}),                         # the 1st (0-based) allowed node
    ("+0-1", {2, 5, 7}, {2, 5}),
    ("all", {1, 3}, {1, 3}),
    ("1,all", {1, 3}, {1, 3}),
    ("!1", {0, 1, 2, 3}, {0, 2, 3, 4, 5, 6, 7}),  # ! flips all 8 memory nodes, not the cpuset
    ("!all", {0, 1, 2, 3}, {4, 5, 6, 7}),
    ("1,3-2", {0, 1, 2, 3}, {1, 3}),
])
def test_nodestring_rules(eight, s, allowed, expected):
    assert parse_nodestring(s, eight, allowed=allowed) == expected


@pytest.mark.parametrize("s,allowed,why", [
    ("1,", {0, 1}, "unparseable node description `'"),
    ("1,,2", {0, 1, 2}, "unparseable node description `,2'"),
    ("0-2", {0, 2, 3}, None),                    # fine: endpoints allowed
    ("0-1", {0, 2, 3}, "node argument 1 out of range"),   # an endpoint not allowed
    ("1-3", {0, 2, 3}, "node argument 1 is out of range"),
    ("+2", {1, 3}, "node argument 1024 is out of range"),
    ("all,1", {0, 1}, "unparseable node description `all,1'"),
    ("netdev:eth0", {0}, "device node specification"),
    ("-1", {0}, "node argument -1 is out of range"),
])
def test_nodestring_errors(eight, s, allowed, why):
    if why is None:
        assert parse_nodestring(s, eight, allowed=allowed) == {0, 2}
        return
    with pytest.raises(NumasimError) as ei:
        parse_nodestring(s, eight, allowed=allowed, option="--membind")
    e = ei.value
    assert e.problems[0].message == f"<{s}> is invalid"
    assert e.field == "--membind"
    assert why in e.problems[0].hint


def test_invert_flips_count_of_memory_nodes_not_max_id():
    """``!`` inverts bits 0 .. (nodes with memory - 1): with nodes 0, 1 (memoryless) and 2,
    two nodes have memory, so ``!0`` is {1}, never {1, 2}."""
    m = make_machine("memless", [Node(0, (0,), 1 << 30), Node(1, (1,), 0),
                                 Node(2, (2,), 1 << 30)],
                     distance=[[10, 20, 20], [20, 10, 20], [20, 20, 10]])
    assert parse_nodestring("!0", m, allowed={0, 1, 2}) == {1}
    assert parse_nodestring("!0", m) == {1}                 # even though 1 is not allowed
    with pytest.raises(NumasimError):
        parse_nodestring("1", m)                            # default allowed: memory nodes
    assert parse_nodestring("1", m, all_=True) == {1}       # _all: every configured node
    assert parse_nodestring("0-2", m, all_=True) == {0, 1, 2}


def test_same_repeats_previous(asym):
    assert parse_nodestring("same", asym, same_prev="1-2") == {1, 2}
    with pytest.raises(NumasimError, match="same needs previous node specification"):
        parse_nodestring("same", asym)


def test_cpustring_rules(asym):
    assert parse_cpustring("0-3", asym) == {0, 1, 2, 3}
    assert parse_cpustring("!1", asym) == {0, 2, 3}
    assert parse_cpustring("+1-2", asym, allowed={0, 2, 3}) == {2, 3}
    assert parse_cpustring("all", asym, allowed={1, 2}) == {1, 2}
    with pytest.raises(NumasimError, match=r"<4> is invalid"):
        parse_cpustring("4", asym)
    assert parse_cpustring("3", asym, all_=True, allowed={0}) == {3}


@settings(max_examples=300, deadline=None)
@given(allowed=st.sets(st.integers(0, 7), min_size=1),
       picks=st.lists(st.integers(0, 7), max_size=8))
def test_list_round_trip(eight, allowed, picks):
    """Any set of allowed nodes, written as a list, parses back to itself; inverted, to its
    complement among the 8 memory nodes."""
    want = set(picks) & allowed
    s = format_list(want)
    assert parse_nodestring(s, eight, allowed=allowed) == want
    if want:
        assert parse_nodestring("!" + s, eight, allowed=allowed) == set(range(8)) - want


@settings(max_examples=300, deadline=None)
@given(allowed=st.sets(st.integers(0, 7), min_size=1), a=st.integers(0, 7),
       b=st.integers(0, 7))
def test_range_semantics(eight, allowed, a, b):
    s = f"{a}-{b}"
    if a not in allowed or b not in allowed:
        with pytest.raises(NumasimError):
            parse_nodestring(s, eight, allowed=allowed)
    elif b < a:
        assert parse_nodestring(s, eight, allowed=allowed) == {a}
    else:
        assert parse_nodestring(s, eight, allowed=allowed) == {n for n in allowed
                                                               if a <= n <= b}


# ------------------------------------------------------------------ options
def test_long_short_and_equals_forms(asym):
    for argv in (["--membind=1-2", "prog"], ["--membind", "1-2", "prog"], ["-m", "1-2", "prog"],
                 ["-m1-2", "prog"], ["--memb=1-2", "prog"]):
        o = parse_numactl(argv, asym)
        assert (o.policy, set(o.nodes), o.command) == (MPOL_BIND, {1, 2}, ["prog"])


def test_parsing_stops_at_first_non_option_and_double_dash(asym):
    o = parse_numactl(["-i", "all", "prog", "-m", "0"], asym)
    assert o.command == ["prog", "-m", "0"] and o.policy == MPOL_INTERLEAVE
    o = parse_numactl(["-l", "--", "-m", "x"], asym)
    assert o.command == ["-m", "x"] and o.policy == MPOL_LOCAL


def test_clustered_short_options(asym):
    o = parse_numactl(["-lC0-1", "prog"], asym)
    assert o.policy == MPOL_LOCAL and set(o.physcpubind) == {0, 1}


def test_conflicting_policies(asym):
    with pytest.raises(NumasimError) as e:
        parse_numactl(["-i", "0", "-m", "1", "prog"], asym)
    assert e.value.problems[0].message == "Conflicting policies"
    assert e.value.field == "--membind"
    # --membind claims the policy before parsing its nodes: a bad list after a policy is
    # still "Conflicting policies"
    with pytest.raises(NumasimError, match="Conflicting policies"):
        parse_numactl(["-l", "-m", "9", "prog"], asym)
    # --interleave parses first: its bad list is reported
    with pytest.raises(NumasimError, match="<9> is invalid"):
        parse_numactl(["-l", "-i", "9", "prog"], asym)


def test_preferred_needs_exactly_one_node(asym):
    with pytest.raises(NumasimError) as e:
        parse_numactl(["--preferred=1-2", "prog"], asym)
    assert e.value.field == "--preferred"
    o = parse_numactl(["--preferred=0x2", "prog"], asym)
    assert (o.policy, set(o.nodes)) == (MPOL_PREFERRED, {2})
    o = parse_numactl(["--preferred-many=0x3", "prog"], asym)   # hex 3: node 3 only
    assert (o.policy, set(o.nodes)) == (MPOL_PREFERRED_MANY, {3})


def test_all_must_come_first(asym):
    with pytest.raises(NumasimError, match="--all/-a option must be before all cpu/node"):
        parse_numactl(["-N", "0", "--all", "prog"], asym)
    o = parse_numactl(["--all", "-m", "2"], asym, mems_allowed={0, 1})
    assert set(o.nodes) == {2}
    with pytest.raises(NumasimError, match="<2> is invalid"):
        parse_numactl(["-m", "2"], asym, mems_allowed={0, 1})


def test_same_keyword(asym):
    o = parse_numactl(["-N", "1,3", "-m", "same", "prog"], asym)
    assert set(o.cpunodebind) == {1, 3} and set(o.nodes) == {1, 3}
    with pytest.raises(NumasimError, match="same needs previous node specification"):
        parse_numactl(["-m", "same", "prog"], asym)


def test_empty_interleave_is_default(asym):
    o = parse_numactl(["--interleave=", "prog"], asym)
    assert o.policy == MPOL_DEFAULT


def test_balancing_must_precede_membind(asym):
    with pytest.raises(NumasimError, match="specify policy after --shm/--file"):
        parse_numactl(["-m", "0", "-b", "prog"], asym)
    o = parse_numactl(["-b", "-m", "0", "prog"], asym)
    assert o.balancing and o.policy == MPOL_BIND


@pytest.mark.parametrize("argv,msg", [
    (["--pref=1", "x"], "option '--pref' is ambiguous; possibilities: '--preferred' "
                        "'--preferred-many'"),
    (["--bogus", "x"], "unrecognized option '--bogus'"),
    (["-z", "x"], "invalid option -- 'z'"),
    (["--membind"], "option '--membind' requires an argument"),
    (["-m"], "option requires an argument -- 'm'"),
    (["--show=1"], "option '--show' doesn't allow an argument"),
    (["--length=4k", "prog"], "shm related option --length for process"),
    (["--touch", "prog"], "--touch must be after shared memory specification"),
])
def test_getopt_errors(asym, argv, msg):
    with pytest.raises(NumasimError) as e:
        parse_numactl(argv, asym)
    assert e.value.problems[0].message == msg


def test_show_stops_parsing_and_strict_warns(asym):
    o = parse_numactl(["-i", "0-1", "--show", "--bogus"], asym)
    assert o.show and o.policy == MPOL_INTERLEAVE and o.command == []
    o = parse_numactl(["--strict", "-m", "0", "prog"], asym)
    assert o.warnings == ["numactl: warning. Strict flag for process ignored."]
    with pytest.raises(NumasimError, match="no command given"):
        parse_numactl(["-m", "0"], asym, require_command=True)


# ------------------------------------------------------------------ apply
def test_apply_sets_policies(asym):
    k = Kernel(asym)
    t = k.new_process(0)
    cpus = parse_numactl(["-m", "1-2", "-N", "2,3", "prog"], asym).apply(k, t)
    assert cpus == [2, 3]
    assert mempolicy(k, t) == (MPOL_BIND, {1, 2})
    assert int(k.ks.tasks[t, 1]) == 2            # moved onto an allowed CPU
    parse_numactl(["--interleave=", "prog"], asym).apply(k, t)
    assert mempolicy(k, t) == (MPOL_DEFAULT, set())
    parse_numactl(["-i", "all", "prog"], asym).apply(k, t)
    assert mempolicy(k, t) == (MPOL_INTERLEAVE, {0, 1, 2, 3})
    parse_numactl(["-p", "3", "prog"], asym).apply(k, t)
    assert mempolicy(k, t) == (MPOL_PREFERRED, {3})
    parse_numactl(["-P", "1,3", "prog"], asym).apply(k, t)
    assert mempolicy(k, t) == (MPOL_PREFERRED_MANY, {1, 3})
    parse_numactl(["-l", "prog"], asym).apply(k, t)
    assert mempolicy(k, t) == (MPOL_LOCAL, set())
    parse_numactl(["-w", "0,2", "prog"], asym).apply(k, t)
    assert mempolicy(k, t) == (MPOL_WEIGHTED_INTERLEAVE, {0, 2})
    assert parse_numactl(["-C", "+1", "prog"], asym).apply(k, t) == [1]
    assert parse_numactl(["prog"], asym).apply(k, t) == [0, 1, 2, 3]


@pytest.mark.parametrize("gen,mode", [("6.12", MPOL_BIND | MPOL_F_NUMA_BALANCING),
                                      ("6.1", MPOL_BIND | MPOL_F_NUMA_BALANCING),
                                      ("2.6.7", MPOL_BIND)])
def test_balancing_falls_back_to_plain_bind(asym, gen, mode):
    k = Kernel(asym, gen)
    t = k.new_process(0)
    parse_numactl(["-b", "-m", "1", "prog"], asym).apply(k, t)
    assert mempolicy(k, t) == (mode, {1})


def test_apply_errors(asym):
    k = Kernel(asym, "6.1")
    t = k.new_process(0)
    with pytest.raises(NumasimError) as e:
        parse_numactl(["-w", "0-1", "prog"], asym).apply(k, t)    # no weighted on 6.1
    assert e.value.problems[0].message == "setting interleave mask: Invalid argument"
    k = Kernel(asym, "2.6.7")
    t = k.new_process(0)
    with pytest.raises(NumasimError) as e:
        parse_numactl(["-P", "0-1", "prog"], asym).apply(k, t)
    assert e.value.problems[0].message == "preferred-many requested without kernel support"
    with pytest.raises(NumasimError) as e:
        parse_numactl(["-l", "prog"], asym).apply(k, t)           # no MPOL_LOCAL in 2.6.7
    assert e.value.problems[0].message == "local allocation: Invalid argument"
    # the cpuset excludes node 3: --all lets it parse, the kernel refuses it
    k = Kernel(asym)
    t = k.new_process(0)
    sc.cpuset_set_mems(k, [t], {0, 1})
    o = parse_numactl(["--all", "-m", "3", "prog"], asym, mems_allowed={0, 1})
    with pytest.raises(NumasimError) as e:
        o.apply(k, t)
    assert e.value.problems[0].message == "setting membind: Invalid argument"
    # a node without CPUs: nothing to run on
    m = layout.load(LAYOUTS / "4node-flat.layout")               # node 3 has no CPU
    k = Kernel(m)
    t = k.new_process(0)
    with pytest.raises(NumasimError) as e:
        parse_numactl(["-N", "3", "prog"], m).apply(k, t)
    assert e.value.problems[0].message == "sched_setaffinity: Invalid argument"
    with pytest.raises(NumasimError) as e:
        parse_numactl(["-C", "", "prog"], m).apply(k, t)
    assert e.value.problems[0].message == "sched_setaffinity: Invalid argument"


# -------------------------------------------------------------------- --show
def host_shows():
    text = (DATA / "numactl" / "show_host_numactl-2.0.16.txt").read_text()
    out = []
    for block in text.split("### numactl ")[1:]:
        head, _, body = block.partition("\n")
        opts = head.removesuffix(" numactl --show").split()
        out.append((opts, body.removesuffix("### end\n")))
    return out


@pytest.mark.parametrize("opts,real", host_shows())
def test_show_matches_real_numactl(host, opts, real):
    """``numactl OPTS numactl --show`` recorded on the 1-node, 2-CPU host."""
    k = Kernel(host)
    t = k.new_process(0)
    cpus = parse_numactl(opts + ["numactl"], host).apply(k, t)
    assert numactl_show(k, t, cpus=set(cpus)) == real


def test_show_quirks(asym):
    k = Kernel(asym)
    t = k.new_process(0)
    sc.set_mempolicy(k, t, MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, UserMask.of({1, 2}), 1025)
    assert numactl_show(k, t) == (
        "policy: [32771]\n"
        "preferred node: physcpubind: 0 1 2 3 \n"
        "cpubind: 0 1 2 3 \nnodebind: 0 1 2 3 \nmembind: 0 1 2 3 \npreferred: 1 2 \n")
    sc.set_mempolicy(k, t, MPOL_WEIGHTED_INTERLEAVE, UserMask.of({0, 2, 3}), 1025)
    assert numactl_show(k, t, cpus={2}) == (
        "policy: weighted-interleave\npreferred node: 0 (interleave next)\n"
        "interleavemask: 0 2 3 \ninterleaveweights: 1 1 1 \ninterleavenode: 0\n"
        "physcpubind: 2 \ncpubind: 2 \nnodebind: 2 \nmembind: 0 1 2 3 \npreferred: 0 2 3 \n")
    sc.set_mempolicy(k, t, MPOL_BIND, UserMask.of({2, 3}), 1025)
    assert numactl_show(k, t).startswith("policy: bind\npreferred node: 2\n")
    assert "membind: 2 3 \n" in numactl_show(k, t)


def test_show_interleave_next_follows_counter(asym):
    """interleavenode is get_mempolicy(MPOL_F_NODE): the node after il_prev."""
    k = Kernel(asym)
    t = k.new_process(0)
    sc.set_mempolicy(k, t, MPOL_INTERLEAVE, UserMask.of({1, 3}), 1025)
    k.ks.tasks[t, 3] = 1                          # il_prev: the counter last used node 1
    s = numactl_show(k, t)
    assert "preferred node: 3 (interleave next)\n" in s and "interleavenode: 3\n" in s


def test_policy_names():
    assert [policy_name(i) for i in range(7)] == [
        "default", "preferred", "bind", "interleave", "local", "preferred-many",
        "weighted-interleave"]
    assert policy_name(8194) == "[8194]"


def test_hardware(asym):
    k = Kernel(asym)
    free = {n: int(k.ks.zones[k.ks.zones[:, 0] == n, 2].sum()) * 4096 >> 20 for n in range(4)}
    out = numactl_hardware(k)
    assert out.splitlines()[:4] == ["available: 4 nodes (0-3)", "node 0 cpus: 0",
                                    "node 0 size: 512 MB", f"node 0 free: {free[0]} MB"]
    assert out.endswith("node distances:\nnode     0    1    2    3 \n"
                        "   0:   10   20   30   40 \n   1:   20   10   25   35 \n"
                        "   2:   30   25   10   15 \n   3:   40   35   15   10 \n")
    t = k.new_process(0)
    k.mmap(t, 2560, vpn=0x40000)
    k.touch(t, 0x40000, 2560)                     # 10 MiB more used on node 0
    assert f"node 0 free: {free[0] - 10} MB" in numactl_hardware(k).splitlines()[3]
