"""The run specification: every front door builds one :class:`~numasim.spec.RunSpec`, checked
once, and refuses bad run options with one paragraph and exit 2 (issue 14 section 3)."""

from __future__ import annotations

import pytest

import numasim.spec as spec_mod
from numasim.cli import main
from numasim.errors import ConfigError
from numasim.spec import build_spec, read_weights, split_command, weights_for
from numasim.topology.loaders import load_machine
from numasim.workloads.kernels import build_kernel
from numasim.workloads.model import Phase, Region, Workload

RUN = ["--machine", "clx-2s", "--no-progress", "--json"]


@pytest.fixture(scope="module")
def clx():
    return load_machine("clx-2s")


@pytest.mark.parametrize(("argv", "words"), [
    (["numactl", "--", "stream", "--quantum=-5", *RUN], ["quantum -5", "positive"]),
    (["numactl", "--", "stream", "--quantum", "0", *RUN], ["quantum 0", "positive"]),
    (["run", "stream", "--quantum", "0", *RUN], ["quantum 0"]),
    (["numactl", "--interleave=", "--", "stream", *RUN], ["--interleave= names no nodes"]),
    (["numactl", "--membind=", "--", "stream", *RUN], ["--membind= names no nodes"]),
    (["numactl", "--", "stream", "--seed=-1", *RUN], ["seed -1", "0..2**64-1"]),
    (["run", "stream", "--seed=-1", *RUN], ["seed -1"]),
    (["run", "stream", "--linux", "5.4", *RUN], ["Linux generation '5.4'", "6.12"]),
    (["run", "stream", "--weights", "0=300", *RUN], ["weight 300", "1..255"]),
    (["run", "stream", "--weights", "7=1", *RUN], ["node 7 does not exist"]),
    (["run", "stream", "--weights=", *RUN], ["names no weights"]),
    (["run", "stream", "--numactl=--interleave=", *RUN], ["names no nodes"]),
])
def test_bad_run_options_are_one_paragraph_and_exit_2(capsys, argv, words):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("numasim: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err


def test_numactl_options_are_parsed_once(monkeypatch, clx):
    calls = []
    real = spec_mod.parse_numactl

    def counting(argv, machine, **kw):
        calls.append(list(argv))
        return real(argv, machine, **kw)

    monkeypatch.setattr(spec_mod, "parse_numactl", counting)
    task, words, command = split_command(clx, ["--interleave=all", "--", "stream", "-t", "2"])
    assert words == ["--interleave=all"] and command == ["stream", "-t", "2"]
    spec = build_spec(clx, build_kernel("stream"), numactl=words, parsed=task)
    assert spec.task is task and len(calls) == 1
    assert spec.numactl == ("--interleave=all",)


def test_policies_are_parsed_into_the_spec(clx):
    wl = Workload("w", threads=2, numactl=["--cpunodebind=0"],
                  regions=[Region("a", 1 << 20, policy="--membind=1"), Region("b", 1 << 20)],
                  phases=[Phase("init", "init"),
                          Phase("move", "mbind", policy="--interleave=all", move=True)])
    spec = build_spec(clx, wl, numactl="--localalloc", weights="3:1")
    assert spec.numactl == ("--cpunodebind=0", "--localalloc")
    assert spec.region_policies[0].nodes == {1} and spec.region_policies[1] is None
    assert set(spec.phase_policies) == {1} and spec.phase_policies[1].nodes == {0, 1}
    assert dict(spec.weights) == {0: 3, 1: 1}


@pytest.mark.parametrize(("policy", "match"), [
    ("--cpunodebind=0", "must be exactly one numactl memory policy option"),
    ("--interleave=", "names no nodes"),
    ("--membind=5", "<5> is invalid"),
])
def test_region_policy_refused_before_the_run(clx, policy, match):
    wl = Workload("w", regions=[Region("a", 4096, policy=policy)], phases=[Phase("i", "init")],
                  file="w.yaml")
    with pytest.raises(ConfigError, match=match) as e:
        build_spec(clx, wl)
    p = e.value.problems[0]
    assert (p.file, p.field) == ("w.yaml", "regions[0].policy")


@pytest.mark.parametrize(("text", "want"), [
    ("0=9,1=1", {0: 9, 1: 1}), ("4:1", [4, 1]), ([2, 3], [2, 3]), ({"1": 5, 0: 2}, {0: 2, 1: 5}),
    (None, None), ("", None),
])
def test_weights_read_in_every_spelling(text, want):
    assert read_weights(text) == want


@pytest.mark.parametrize("bad", ["0=x", "4:a", "0=0", [1, 256], {0: True}, 3.5])
def test_bad_weights_say_what_is_valid(bad):
    with pytest.raises(ValueError, match="weight|NODE=WEIGHT|whole number"):
        read_weights(bad)


def test_weights_against_the_machine(clx):
    assert weights_for(clx, "4:1") == {0: 4, 1: 1}
    with pytest.raises(ConfigError, match="3 weights for the 2 nodes"):
        weights_for(clx, "1:1:1")


def test_python_api_names(clx):
    """``linux=`` is the generation, ``op=`` the STREAM operation; the old ``kernel=`` still
    reads a generation and says which name a STREAM operation has."""
    from numasim.api import run

    with pytest.raises(ConfigError, match="the STREAM operation is called op"):
        run(clx, "stream", kernel="triad", threads=2, size="64KiB")
    with pytest.raises(ConfigError, match="Linux generation '5.4'"):
        run(clx, "stream", linux="5.4")
    a = run(clx, "stream", op="copy", threads=2, size="64KiB", linux="6.1")
    b = run(clx, "stream", op="copy", threads=2, size="64KiB", kernel="6.1")
    assert a.to_json(host=False) == b.to_json(host=False)
    assert a.phases[-1]["name"] == "copy"


def test_llc_from_python_takes_sizes_as_the_yaml_writes_them():
    """``cpu={'llc': {'size': '1MiB'}}`` from Python reads the size as the YAML does; a bad
    one is a ConfigError naming cpu.llc, not a TypeError from inside the dataclass."""
    from numasim.spec import cpu_params

    llc = cpu_params({}, {"llc": {"size": "1MiB", "ways": 8}}).llc
    assert (llc.size, llc.ways) == (1 << 20, 8)
    with pytest.raises(ConfigError, match="cpu.llc"):
        cpu_params({}, {"llc": {"size": "1 furlong"}})
    with pytest.raises(ConfigError, match="cpu.llc"):
        cpu_params({}, {"llc": {"ways": "many"}})
