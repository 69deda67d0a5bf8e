"""The experiment YAML: what it may contain, how overrides (``quick:``, ``--set``) apply, and
strict validation that reports every problem at once with file, line and the closest key.

A file::

    # Question: ...   Answer: ...
    experiment: policy-comparison        # a name: results/<name>/, plots/<name>/
    description: STREAM triad on a 2-socket Cascade Lake under five placement policies
    machine: clx-2s                      # shipped name, file (relative to this file), or inline
    workload:                            # a built-in kernel with its options ...
      kernel: stream
      op: triad
      threads: 48
      size: 256MiB                       # ... or a workload file, or an inline workload
    engine: fast                         # fast | exact
    linux: "6.12"                        # Linux generation: 6.12 | 6.1 | 2.6.7 ('kernel'
                                         # is its old name)
    numactl: ""                          # task policy and binding, numactl syntax (or
                                         # 'policy:', the same thing)
    cpu: {mlp: 10}                       # CPU-model overrides
    weights: null                        # weighted-interleave weights ("4:1" or {0: 4, 1: 1})
    numa_balancing: false                # NUMA balancing: false | true | {scan_delay_ms: 100,
                                         # ...} (knobs: on); null keeps the machine's
    thp: never                           # transparent_hugepage: always | madvise | never
    khugepaged: {scan_sleep_millisecs: 100}  # khugepaged's knobs (sysfs names); null keeps
                                         # the machine's
    seed: 1                              # the experiment's seed; every point derives its own
    seeds: per-point                     # per-point | common (same seeds for every point)
    repetitions: 1                       # runs per point, each with its own derived seed
    max_points: 20000                    # refuse a sweep of more points than this (a guard
                                         # against a typo'd grid; raise it to run more)
    sweep:
      cases:                             # a list of named settings ...
        - {label: first-touch, parallel init}
        - {label: interleave, policy: --interleave=all}
      grid:                              # ... crossed with every combination of these ...
        threads: [1, 2, 4]
      zip:                               # ... and these, advanced together
        size: [1MiB, 4MiB]
        repeat: [4, 1]
    plot:
      x: threads                         # the x axis of the plots (default: a numeric axis)
      latency: memory                    # latency plot: memory requests, or per-access (hits
                                         # included: a pointer chase's load-to-load time)
    quick:                               # what --quick changes (CI runs every experiment so)
      workload.size: 8MiB
      sweep.grid.threads: [1, 4]

Parameters that cases, grid and zip may set are listed in :mod:`numasim.experiments.params`.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from numasim import yamlutil
from numasim.errors import ConfigError, Problem, closest
from numasim.yamlutil import (
    Loc,
    StrictModel,
    YamlDoc,
    dotted,
    parse_yaml,
    read_text,
    sort_problems,
    valid_keys,
    validate_model,
)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
AxisValues = Annotated[list[Any], Field(min_length=1)]


class SweepModel(StrictModel):
    cases: list[dict[str, Any]] = []
    grid: dict[str, AxisValues] = {}
    zip_: dict[str, AxisValues] = Field(default={}, alias="zip")


class PlotModel(StrictModel):
    x: str | None = None
    latency: Literal["memory", "per-access", "loaded"] = "memory"
    machine_metric: Literal["distance", "latency", "bandwidth"] = "latency"


MAX_POINTS = 20_000  # default bound on a sweep's points (cases x grid x zip x repetitions)


class ExperimentModel(StrictModel):
    experiment: str
    description: str = ""
    machine: Any = None
    workload: Any = None
    engine: Any = "fast"
    linux: Any = "6.12"
    kernel: Any = None  # the old name of linux
    seed: Annotated[int, Field(ge=0)] = 0
    seeds: Literal["per-point", "common"] = "per-point"
    numactl: Any = ""
    policy: Any = None
    cpu: Any = None
    weights: Any = None
    quantum: Any = None
    fast_forward: Any = None
    numa_balancing: Any = None
    thp: Any = None
    khugepaged: Any = None
    repetitions: Annotated[int, Field(ge=1)] = 1
    max_points: Annotated[int, Field(ge=1)] = MAX_POINTS
    sweep: SweepModel = SweepModel()
    plot: PlotModel = PlotModel()
    quick: dict[str, Any] = {}


TOP_KEYS = valid_keys(ExperimentModel)


@dataclass
class Source:
    """An experiment document ready for expansion: data, lines, where relative paths start."""

    doc: YamlDoc
    base_dir: Path
    text: str
    quick: bool = False
    sets: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def file(self) -> str | None:
        return self.doc.file


# ----------------------------------------------------------------------- overrides
def _resolve_path(data: Any, parts: list[str]) -> tuple[Loc, bool]:
    """Where a dotted override path points in ``data``: the loc, and whether it exists.

    Keys of a mapping may themselves contain dots (``sweep.grid.workload.size``), so at each
    mapping the longest run of parts that is an existing key wins; list items are numbers.
    """
    loc: list[str | int] = []
    cur = data
    i = 0
    while i < len(parts):
        if isinstance(cur, list):
            if not parts[i].isdigit() or int(parts[i]) >= len(cur):
                return tuple(loc) + tuple(parts[i:]), False
            loc.append(int(parts[i]))
            cur = cur[int(parts[i])]
            i += 1
            continue
        if not isinstance(cur, dict):
            return tuple(loc) + (".".join(parts[i:]),), False
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in cur:
                loc.append(key)
                cur = cur[key]
                i = j
                break
        else:
            # a new key: the first part names it at the top level (a typo there is reported
            # as an unknown key); deeper down the rest is one (possibly dotted) key
            rest = parts[i:]
            if not loc:
                loc.append(rest[0])
                if len(rest) > 1:
                    loc.append(".".join(rest[1:]))
            else:
                loc.append(".".join(rest))
            return tuple(loc), False
    return tuple(loc), True


def _set(data: dict, loc: Loc, value: Any) -> None:
    cur: Any = data
    for part in loc[:-1]:
        if isinstance(cur, dict):
            cur = cur.setdefault(part, {})
        else:
            cur = cur[part]
    if isinstance(cur, dict) or (isinstance(cur, list) and isinstance(loc[-1], int)):
        cur[loc[-1]] = value
    else:
        raise TypeError("cannot set inside a scalar")


def apply_override(doc: YamlDoc, path: str, value: Any, *, src: Loc | None = None,
                   line: int | None = None, what: str = "override") -> Problem | None:
    """Set ``path`` (dotted) to ``value`` in ``doc``; lines under it come from ``src``."""
    if not isinstance(doc.data, dict):
        return None
    parts = [p for p in path.split(".") if p]
    if not parts:
        return Problem(f"empty {what} path", doc.file, None, line)
    loc, _exists = _resolve_path(doc.data, parts)
    top = loc[0]
    if top not in TOP_KEYS or top == "quick":
        best = closest(str(top), TOP_KEYS)
        return Problem(f"{what} '{path}' names no key of an experiment", doc.file, path, line,
                       (f"did you mean '{best}'? " if best else "") + "valid top-level keys: "
                       + ", ".join(TOP_KEYS))
    try:
        _set(doc.data, loc, copy.deepcopy(value))
    except (TypeError, IndexError, KeyError):
        return Problem(f"{what} '{path}' goes inside a value that is not a mapping", doc.file,
                       path, line, "override a whole value, e.g. 'workload.size' or "
                       "'sweep.grid.threads'")
    # lines: what was under loc goes away; what was under src moves there
    for k in [k for k in doc.lines if k[:len(loc)] == loc]:
        del doc.lines[k]
    if src is not None:
        for k, ln in list(doc.lines.items()):
            if k[:len(src)] == src:
                doc.lines[loc + k[len(src):]] = ln
    elif line is not None:
        doc.lines[loc] = line
    return None


def read_source(path: str | os.PathLike | None = None, *, text: str | None = None,
                data: dict | None = None, quick: bool = False,
                sets: list[str] | None = None, base_dir: str | os.PathLike | None = None
                ) -> Source:
    """Read an experiment (a file, the name of a shipped one, YAML text or a dict) and apply
    ``quick``/``--set``."""
    import yaml

    if data is not None:
        text = yaml.safe_dump(data, sort_keys=False)
        file = None
    elif text is None:
        assert path is not None
        if not os.path.exists(path):
            from numasim import shipped

            found = shipped.find("experiments", str(path))
            if found is None:
                raise ConfigError("no such file", file=str(path), hint="give an experiment "
                                  "file, or the name of a shipped one: "
                                  + ", ".join(shipped.names("experiments")))
            path = found
        text = read_text(path)
        file = str(path)
    else:
        file = str(path) if path is not None else None
    doc = parse_yaml(text, file=file)
    if data is not None:
        doc.lines = {}  # lines of our own dump mean nothing to the user
    base = Path(base_dir) if base_dir is not None else (
        Path(file).resolve().parent if file else Path.cwd())
    src = Source(doc, base, text, quick, list(sets or []))
    if quick and isinstance(doc.data, dict):
        q = doc.data.get("quick")
        if not isinstance(q, dict) or not q:
            src.problems.append(Problem("--quick needs a 'quick:' section in the experiment",
                                        file, "quick", doc.line(("quick",)),
                                        "add e.g. quick: {workload.size: 8MiB}"))
        else:
            for k, v in list(q.items()):
                p = apply_override(doc, str(k), v, src=("quick", k), line=doc.line(("quick", k)),
                                   what="quick override")
                if p:
                    src.problems.append(p)
    for s in sets or []:
        key, eq, raw = s.partition("=")
        if not eq or not key.strip():
            src.problems.append(Problem(f"--set {s!r} is not PATH=VALUE", file, "--set", None,
                                        "e.g. --set workload.size=8MiB"))
            continue
        try:
            value = yamlutil.safe_load(raw, file="--set") if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        p = apply_override(doc, key.strip(), value, what="--set")
        if p:
            src.problems.append(p)
    return src


def check_structure(src: Source) -> tuple[ExperimentModel | None, list[Problem]]:
    """The pydantic pass: unknown keys (with the closest valid one), wrong types, bounds."""
    model, problems = validate_model(src.doc, ExperimentModel, what="experiment")
    problems = list(src.problems) + problems
    data = src.doc.data
    if isinstance(data, dict):
        name = data.get("experiment")
        if isinstance(name, str) and not NAME_RE.match(name):
            problems.append(Problem(
                f"experiment name {name!r} cannot name a folder", src.file, "experiment",
                src.doc.line(("experiment",)), "use letters, digits, '-', '_' and '.', e.g. "
                "policy-comparison"))
        if "kernel" in data and "linux" in data:
            problems.append(Problem("give the Linux generation once: 'kernel' is the old name "
                                    "of 'linux'", src.file, "kernel",
                                    src.doc.line(("kernel",))))
        if "policy" in data and "numactl" in data:
            problems.append(Problem("give the task policy once: 'policy' and 'numactl' are "
                                    "the same thing", src.file, "policy",
                                    src.doc.line(("policy",))))
    # a model with a bad name is of no use further on
    if problems and any(p.field == "experiment" for p in problems):
        model = None
    return model, problems


REQUIRED_HINT = {
    "machine": "a shipped machine name (see `numasim topo list`), a machine file, or an "
               "inline machine",
    "workload": "a built-in kernel (stream, gups, pointer_chase, stride, zipf, prodcons) "
                "with options, e.g. {kernel: stream, threads: 4}, or a workload file",
}


def raise_problems(problems: list[Problem]) -> None:
    if problems:
        raise ConfigError(problems=sort_problems(_dedupe(problems)))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple] = set()
    out = []
    for p in problems:
        k = (p.file, p.line, p.field, p.message)
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


def field_of(loc: Loc) -> str:
    return dotted(loc)
