"""What numasim ships is reachable from the package alone, not only through the checkout.

A wheel or ``pip install .`` holds the package and nothing else: a machine, layout, workload,
experiment or scenario found only next to the package (``configs/`` of a checkout) is missing
there.  These tests fail when a shipped file is reachable only through the checkout, when the
wheel's package-data globs leave a file out, or when the top-level folders stop being the one
copy in ``numasim/data``.  (``.ci/wheel-smoke`` builds the real wheel and runs it.)
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from numasim import shipped

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "numasim"
DATA = PKG / "data"
# kind -> the checkout folder users read and copy, and what its files end with
TOP_LEVEL = {
    "machines": ("configs/machines", ".yaml"),
    "layouts": ("configs/layouts", ".layout"),
    "workloads": ("configs/workloads", ".yaml"),
    "experiments": ("experiments", ".yaml"),
    "scenarios": ("experiments/scenarios", ".txt"),
}


def _checkout_names(kind: str) -> set[str]:
    folder, suffix = TOP_LEVEL[kind]
    return {p.name.removesuffix(suffix) for p in (REPO / folder).glob(f"*{suffix}")}


def _data_files() -> set[str]:
    """Files under numasim/data, relative to numasim/: what git has (tracked or new, not
    ignored), or every file when this is no git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                              "--", "."], cwd=DATA, capture_output=True, text=True, check=True,
                             timeout=60).stdout
        return {f"data/{line}" for line in out.splitlines() if (DATA / line).is_file()}
    except (OSError, subprocess.SubprocessError):
        return {str(p.relative_to(PKG)) for p in DATA.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}


def test_package_data_globs_cover_every_data_file():
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = conf["package-data"]["numasim"]
    # expanded as setuptools expands them: glob() relative to the package folder
    covered = {os.path.relpath(f, PKG) for g in globs
               for f in glob.glob(str(PKG / g), recursive=True) if os.path.isfile(f)}
    files = _data_files()
    assert len(files) > 50  # the shipped machines, layouts, workloads, experiments...
    assert sorted(files - covered) == []
    assert conf["packages"]["find"].get("namespaces") is False  # data/ is no package


@pytest.mark.parametrize("top", ["configs", "experiments"])
def test_top_level_folders_are_the_package_data(top):
    link = REPO / top
    assert link.is_symlink(), f"{top}/ must be a relative symlink into numasim/data"
    assert not os.path.isabs(os.readlink(link))
    assert link.resolve() == (DATA / top).resolve()


@pytest.mark.parametrize("kind", sorted(TOP_LEVEL))
def test_every_shipped_file_resolves_by_name_inside_the_package(kind):
    want = _checkout_names(kind)
    assert want
    assert set(shipped.names(kind)) == want
    root = Path(str(resources.files("numasim"))).resolve()
    for name in want:
        p = shipped.find(kind, name)
        assert p is not None and p.resolve().is_relative_to(root / "data"), (kind, name)
        assert shipped.find(kind, name + TOP_LEVEL[kind][1]) == p
    assert shipped.find(kind, "no-such-name") is None
    assert shipped.find(kind, "../" + next(iter(want))) is None


def test_a_copy_of_the_package_alone_finds_everything(tmp_path):
    """The package copied away from the checkout (as a wheel installs it) loads a shipped
    machine, layout, workload, experiment and scenario by name, from inside the copy."""
    site = tmp_path / "site"
    shutil.copytree(PKG, site / "numasim", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    code = """
import json, sys
from numasim import shipped
from numasim.api import _workload
from numasim.experiments.expand import load_experiment
from numasim.mm.script import load_machine_for
from numasim.topology.loaders import load_machine

names = {k: sorted(shipped.names(k)) for k in shipped.KINDS}
paths = [str(p) for k in shipped.KINDS for p in shipped.names(k).values()]
load_machine("clx-2s")
load_machine_for("4node-asym")
_workload("stream-triad", {})
exp = load_experiment("policy-comparison", quick=True)
paths.append(str(exp.file))
paths.append(str(shipped.find("scenarios", "01_default_local")))
print(json.dumps({"names": names, "paths": paths, "points": len(exp.points)}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    r = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["names"] == {k: sorted(_checkout_names(k)) for k in TOP_LEVEL}
    assert out["points"] > 0
    outside = [p for p in out["paths"] if not Path(p).resolve().is_relative_to(site)]
    assert outside == []


# ---------------------------------------------------------------- names in every entry point
def test_entry_points_take_shipped_names(tmp_path, monkeypatch, capsys):
    """From a folder with nothing in it, the CLI and Python take the shipped names."""
    from numasim.api import _workload
    from numasim.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["script", "01_default_local"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "exit rc=0"
    assert main(["sweep", "policy-comparison", "--quick", "--list", "--out", "r"]) == 0
    assert "5 point(s); results in r" in capsys.readouterr().out
    assert _workload("stream-triad", {}).name == "stream-triad"
    assert main(["topo", "show", "oracle-4node-asym", "--numactl-only"]) == 0
    assert capsys.readouterr().out.startswith("available: 4 nodes (0-3)")


@pytest.mark.parametrize(("argv", "words"), [
    (["script", "99_no_such_lesson"], "01_default_local"),
    (["sweep", "no-such-experiment", "--list"], "policy-comparison"),
    (["run", "no-such-workload", "--machine", "clx-2s"], "stream-triad"),
])
def test_unknown_names_list_the_shipped_ones(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    from numasim.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and argv[1] in err and "Traceback" not in err
