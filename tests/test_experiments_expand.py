"""Sweep expansion: order, resolved configs, keys and derived seeds."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numasim.errors import NumasimError
from numasim.experiments.expand import load_experiment
from numasim.experiments.hashing import canonical_json, derive_seed, point_key
from numasim.experiments.schema import read_source

REPO = Path(__file__).resolve().parents[1]

EXP = """\
experiment: order
machine: oracle-2node
workload: {kernel: stream, size: 1MiB}
seed: 11
repetitions: 2
sweep:
  cases:
    - label: ft
    - {label: il, policy: --interleave=all}
  grid:
    threads: [1, 2]
    op: [copy, triad]
  zip:
    repeat: [1, 2, 3]
    compute: [0, 4, 8]
"""


def load(tmp_path: Path, text: str, name: str = "e.yaml", **kw):
    p = tmp_path / name
    p.write_text(text)
    return load_experiment(p, **kw)


def test_order_is_cases_grid_zip_repetitions(tmp_path):
    exp = load(tmp_path, EXP)
    assert len(exp.points) == 2 * 2 * 2 * 3 * 2
    assert exp.axes == ["case", "threads", "op", "repeat", "compute"]
    expected = []
    for case, th, op, (rp, cp), rep in itertools.product(
            ["ft", "il"], [1, 2], ["copy", "triad"], [(1, 0), (2, 4), (3, 8)], [0, 1]):
        expected.append(({"case": case, "threads": th, "op": op, "repeat": rp, "compute": cp},
                         rep))
    assert [(p.labels, p.rep) for p in exp.points] == expected
    assert [p.index for p in exp.points] == list(range(len(exp.points)))
    p = exp.points[-1]
    w = p.config["workload"]
    assert (w["threads"], w["op"], w["repeat"], w["compute"]) == (2, "triad", 3, 8)
    assert p.config["numactl"] == ["--interleave=all"]
    assert exp.x == "threads"


def test_resolved_config_has_every_default(tmp_path):
    exp = load(tmp_path, EXP)
    c = exp.points[0].config
    assert set(c) == {"numasim", "machine", "workload", "engine", "linux", "numactl", "cpu",
                      "weights", "quantum", "seed"}
    assert c["engine"] == "fast" and c["linux"] == "6.12" and c["weights"] is None
    assert c["cpu"]["mlp"] == 10 and c["cpu"]["llc"] is None
    assert c["workload"]["init"] == "parallel" and c["workload"]["placement"] == "spread"
    assert c["machine"]["name"] == "oracle-2node" and "nodes:" in c["machine"]["yaml"]


def test_keys_unique_and_stable(tmp_path):
    a = load(tmp_path, EXP)
    b = load(tmp_path, EXP, name="copy.yaml")
    assert [p.key for p in a.points] == [p.key for p in b.points]
    assert len({p.key for p in a.points}) == len(a.points)
    for p in a.points:
        assert p.key == point_key(p.config)


def test_seeds_derive_from_identity_not_order(tmp_path):
    a = load(tmp_path, EXP)
    # the same points listed in another order get the same seeds and keys
    reordered = EXP.replace("threads: [1, 2]", "threads: [2, 1]").replace(
        "- label: ft\n    - {label: il, policy: --interleave=all}",
        "- {label: il, policy: --interleave=all}\n    - label: ft")
    b = load(tmp_path, reordered, name="r.yaml")
    seeds_a = {(p.labels["case"], p.labels["threads"], p.labels["op"], p.labels["repeat"],
                p.rep): (p.config["seed"], p.key) for p in a.points}
    seeds_b = {(p.labels["case"], p.labels["threads"], p.labels["op"], p.labels["repeat"],
                p.rep): (p.config["seed"], p.key) for p in b.points}
    assert seeds_a == seeds_b
    assert len({s for s, _ in seeds_a.values()}) == len(seeds_a)  # all different
    # the experiment seed changes every point's seed
    c = load(tmp_path, EXP.replace("seed: 11", "seed: 12"), name="s.yaml")
    assert all(p.config["seed"] != q.config["seed"] for p, q in zip(a.points, c.points,
                                                                   strict=True))


def test_common_seeds_and_explicit_seed_axis(tmp_path):
    common = load(tmp_path, EXP.replace("seed: 11", "seed: 11\nseeds: common"))
    by_rep: dict[int, set[int]] = {}
    for p in common.points:
        by_rep.setdefault(p.rep, set()).add(p.config["seed"])
    assert all(len(s) == 1 for s in by_rep.values()) and by_rep[0] != by_rep[1]
    assert by_rep[0] == {derive_seed(11, None, 0)}
    explicit = load(tmp_path, "experiment: s\nmachine: oracle-2node\nworkload: gups\n"
                              "sweep:\n  grid:\n    seed: [3, 5, 3]\n", name="x.yaml")
    assert [p.config["seed"] for p in explicit.points] == [3, 5, 3]
    assert explicit.points[0].key == explicit.points[2].key  # the same run, one key


def test_machine_file_change_changes_only_its_points(tmp_path):
    src = (REPO / "configs" / "machines" / "oracle-2node.yaml").read_text()
    (tmp_path / "a.yaml").write_text(src)
    text = ("experiment: m\nworkload: {kernel: stream, size: 1MiB}\n"
            "sweep:\n  grid:\n    machine: [a.yaml, oracle-4node-flat]\n")
    before = load(tmp_path, text, name="exp.yaml")
    (tmp_path / "a.yaml").write_text(src.replace("cpu_clock: 2GHz", "cpu_clock: 3GHz"))
    after = load(tmp_path, text, name="exp.yaml")
    assert before.points[0].key != after.points[0].key
    assert before.points[1].key == after.points[1].key


def test_weights_and_kernel_spellings(tmp_path):
    exp = load(tmp_path, "experiment: w\nmachine: cxl-1s\nworkload: stream\n"
                         "policy: --weighted-interleave=all\n"
                         "sweep:\n  grid:\n    weights: ['4:1', '0=2,1=1', {0: 9, 1: 1}]\n"
                         "    kernel: [6.1, '2.6.7']\n")
    ws = [p.config["weights"] for p in exp.points]
    assert ws[0] == ws[1] == {"0": 4, "1": 1}
    assert ws[2] == ws[3] == {"0": 2, "1": 1}
    assert ws[4] == {"0": 9, "1": 1}
    assert [p.config["linux"] for p in exp.points[:2]] == ["6.1", "2.6.7"]
    assert [p.labels["weights"] for p in exp.points[::2]] == ["4:1", "2:1", "9:1"]
    # 'kernel' (above) is the old name of 'linux': the same points, keys and seeds
    new = load(tmp_path, "experiment: w\nmachine: cxl-1s\nworkload: stream\n"
                         "policy: --weighted-interleave=all\n"
                         "sweep:\n  grid:\n    weights: ['4:1', '0=2,1=1', {0: 9, 1: 1}]\n"
                         "    linux: [6.1, '2.6.7']\n")
    assert [(p.key, p.config) for p in new.points] == [(p.key, p.config) for p in exp.points]


def test_keys_and_seeds_survive_the_linux_rename():
    """A point's key and derived seed are hashed with the generation under its old name, so
    results stored before 'kernel' became 'linux' keep their keys and their numbers."""
    import hashlib

    cfg = {"engine": "fast", "linux": "6.1", "seed": 3}
    old = {"engine": "fast", "kernel": "6.1", "seed": 3}
    assert point_key(cfg) == hashlib.sha256(canonical_json(old).encode()).hexdigest()[:16]
    text = "numasim-seed:1:0:" + canonical_json(old)
    assert derive_seed(1, cfg, 0) == int.from_bytes(hashlib.sha256(text.encode()).digest()[:4],
                                                    "big")
    assert point_key(cfg) != point_key({**cfg, "linux": "6.12"})


def test_linux_given_twice_is_refused(tmp_path):
    with pytest.raises(NumasimError, match="give the Linux generation once"):
        load(tmp_path, "experiment: w\nmachine: cxl-1s\nworkload: stream\nlinux: '6.1'\n"
                       "kernel: '6.1'\n")


def test_dict_experiment_matches_file(tmp_path):
    import yaml

    exp_file = load(tmp_path, EXP)
    from numasim.experiments.expand import expand

    exp_dict = expand(read_source(data=yaml.safe_load(EXP)))
    assert [p.key for p in exp_dict.points] == [p.key for p in exp_file.points]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6), st.randoms())
def test_canonical_json_ignores_key_order(d, rnd):
    items = list(d.items())
    rnd.shuffle(items)
    assert canonical_json(dict(items)) == canonical_json(d)
    assert point_key(dict(items)) == point_key(d)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), json_values, st.integers(0, 100))
def test_derive_seed_is_a_function(seed, ident, rep):
    s = derive_seed(seed, ident, rep)
    assert 0 <= s < 2**32
    assert s == derive_seed(seed, ident, rep)


def test_repetitions_get_different_seeds():
    seeds = {derive_seed(1, {"a": 1}, r) for r in range(1000)}
    assert len(seeds) == 1000


def test_point_spec_is_checked_at_expansion(tmp_path):
    """A policy that only this machine can refuse (node 3 of a 2-node machine, in an inline
    workload's region) is found when the experiment is read, with the other problems."""
    text = ("experiment: w\nmachine: cxl-1s\n"
            "workload:\n  name: w\n  regions:\n    - {name: a, size: 1MiB, policy: --membind=3}\n"
            "  phases:\n    - {kernel: init}\n")
    with pytest.raises(NumasimError) as e:
        load(tmp_path, text)
    msgs = [p.render() for p in e.value.problems]
    assert any("<3> is invalid" in m and "regions[0].policy" in m and "cxl-1s" in m
               for m in msgs), msgs
    ok = load(tmp_path, text.replace("--membind=3", "--membind=1"))
    assert len(ok.points) == 1
