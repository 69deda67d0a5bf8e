"""Sweep expansion: an experiment document becomes a list of points, each a fully resolved
config (every default filled in, the machine and workload embedded) with its key and seed.

Order: cases x grid (every combination, axes in the order written) x zip (lists advanced
together) x repetitions.  A point's config embeds the machine as canonical numasim YAML and a
workload file's text, so a worker on another computer needs nothing but the config, and
editing a machine file changes the keys of exactly the points that use it.

Seeds: unless a point sets ``seed`` itself, it gets ``derive_seed(experiment seed, identity,
repetition)`` where identity is the resolved config without the seed (``seeds: per-point``)
or nothing at all (``seeds: common``: every point of a repetition draws the same random
numbers, which makes policies differ only by policy).
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numasim._version import __version__
from numasim.errors import NumasimError, Problem, did_you_mean
from numasim.experiments import params as P
from numasim.experiments.hashing import derive_seed, point_key
from numasim.experiments.schema import (
    REQUIRED_HINT,
    ExperimentModel,
    Source,
    check_structure,
    raise_problems,
    read_source,
)
from numasim.yamlutil import Loc, dotted, sort_problems

FILE_WORKLOAD_OVERRIDES = ("threads", "placement", "cpus", "pin")


@dataclass
class Point:
    """One run of a sweep."""

    index: int
    key: str
    config: dict[str, Any]
    labels: dict[str, Any]
    rep: int


@dataclass
class Experiment:
    """An expanded experiment: its points, its axes and how to plot it."""

    name: str
    description: str
    file: str | None
    text: str
    quick: bool
    points: list[Point]
    axes: list[str]
    x: str | None
    machine_metric: str = "latency"
    latency: str = "memory"
    repetitions: int = 1
    sets: list[str] = field(default_factory=list)

    def manifest(self) -> dict[str, Any]:
        """What a results folder needs to be read and plotted (no results, no host data)."""
        return {
            "numasim": __version__,
            "experiment": self.name,
            "description": self.description,
            "file": Path(self.file).name if self.file else None,
            "quick": self.quick,
            "set": list(self.sets),
            "axes": list(self.axes),
            "x": self.x,
            "machine_metric": self.machine_metric,
            "latency": self.latency,
            "repetitions": self.repetitions,
            "points": [{"index": p.index, "key": p.key, "rep": p.rep, "labels": p.labels}
                       for p in self.points],
        }


@dataclass
class Setting:
    value: Any
    loc: Loc


class _Ctx:
    """Problems and caches of one expansion."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.file = src.file
        self.problems: list[Problem] = []
        self.machines: dict[str, Any] = {}
        self.workload_files: dict[str, Any] = {}

    def line(self, loc: Loc) -> int | None:
        return self.src.doc.line(loc) if self.src.doc.lines else None

    def add(self, msg: str, loc: Loc, hint: str | None = None) -> None:
        self.problems.append(Problem(msg, self.file, dotted(loc) or None, self.line(loc), hint))

    def relocate(self, p: Problem, prefix: Loc) -> Problem:
        """A problem found in an inline machine or workload, moved to where it is written."""
        sub = _parse_dotted(p.field) if p.field else ()
        loc = prefix + sub
        return Problem(p.message, self.file, dotted(loc) or None, self.line(loc), p.hint)


def _parse_dotted(text: str) -> Loc:
    out: list[str | int] = []
    for part in text.replace("]", "").split("."):
        name, *idx = part.split("[")
        if name:
            out.append(name)
        out += [int(i) for i in idx if i.isdigit()]
    return tuple(out)


# --------------------------------------------------------------------- settings
def _settings(name: str, value: Any, loc: Loc, ctx: _Ctx) -> dict[str, Setting]:
    """One ``name: value`` of a case, grid or the top level as canonical settings."""
    canon = P.canonical(name)
    if canon is None:
        ctx.add(f"unknown parameter '{name}'", loc, P.unknown_hint(name))
        return {}
    if canon == "workload":
        return _workload_settings(value, loc, ctx)
    if canon == "cpu":
        if value is None:
            return {}
        if not isinstance(value, dict):
            ctx.add(f"cpu must be a mapping such as {{mlp: 12}}, got {value!r}", loc)
            return {}
        out = {}
        for k, v in value.items():
            out.update(_settings(f"cpu.{k}", v, loc + (k,), ctx))
        return out
    return {canon: Setting(value, loc)}


def _workload_settings(value: Any, loc: Loc, ctx: _Ctx) -> dict[str, Setting]:
    from numasim.workloads.kernels import BUILTIN

    if isinstance(value, dict) and "kernel" in value:
        out = {"workload": Setting(value["kernel"], loc + ("kernel",))}
        valid = ["kernel"] + [f"{o}" for o in P._workload_options()]
        for k, v in value.items():
            if k == "kernel":
                continue
            if P.canonical(f"workload.{k}") is None or k == "cpu":
                best = did_you_mean(str(k), valid)
                ctx.add(f"unknown option '{k}' of a built-in workload", loc + (k,), best)
                continue
            out[f"workload.{k}"] = Setting(v, loc + (k,))
        return out
    if isinstance(value, dict) and "file" in value:
        out = {"workload": Setting({"file": value["file"]}, loc + ("file",))}
        for k, v in value.items():
            if k == "file":
                continue
            if k not in FILE_WORKLOAD_OVERRIDES:
                ctx.add(f"'{k}' cannot be changed for a workload file", loc + (k,),
                        "a workload file may be given threads, placement, cpus and pin here; "
                        "edit the file (or use a built-in kernel) for the rest")
                continue
            out[f"workload.{k}"] = Setting(v, loc + (k,))
        return out
    if isinstance(value, str | dict):
        return {"workload": Setting(value, loc)}
    ctx.add(f"a workload is a built-in kernel name ({', '.join(BUILTIN)}), a workload file, "
            f"or a mapping; got {value!r}", loc)
    return {}


def _base(data: dict, ctx: _Ctx) -> dict[str, Setting]:
    out: dict[str, Setting] = {
        "engine": Setting("fast", ()), "linux": Setting("6.12", ()),
        "numactl": Setting("", ()), "weights": Setting(None, ()),
        "quantum": Setting(None, ()), "fast_forward": Setting(None, ()),
        "numa_balancing": Setting(None, ()), "thp": Setting(None, ()),
        "khugepaged": Setting(None, ()),
    }
    for key in ("machine", "workload", "engine", "linux", "kernel", "numactl", "policy", "cpu",
                "weights", "quantum", "fast_forward", "numa_balancing", "thp", "khugepaged"):
        if key in data and not (key == "policy" and "numactl" in data) and \
                not (key == "kernel" and "linux" in data):
            out.update(_settings(key, data[key], (key,), ctx))
    return out


# ---------------------------------------------------------------------- machine
def _resolve_machine(s: Setting, ctx: _Ctx):
    import yaml

    from numasim.experiments.hashing import canonical_json
    from numasim.topology.loaders import load_machine, yaml_machine

    v = s.value
    cache_key = v if isinstance(v, str) else canonical_json(v) if isinstance(v, dict) else None
    if cache_key is not None and cache_key in ctx.machines:
        return ctx.machines[cache_key]
    result: Any = (None, None)
    if isinstance(v, str) and v:
        path = ctx.src.base_dir / v
        spec = str(path) if path.exists() else v
        try:
            m = load_machine(spec)
            result = (m, {"name": m.name, "yaml": yaml_machine.dump(m)})
        except NumasimError as e:
            if str(v) == "local" or path.exists() or "/" in v or v.endswith((".yaml", ".yml")):
                # the machine file exists (or was meant to): its own problems, then ours
                ctx.problems += [p for p in e.problems if p.message != "no such file"]
                if any(p.message == "no such file" for p in e.problems):
                    ctx.add(f"machine file {v!r} not found (looked in {ctx.src.base_dir})",
                            s.loc, "give a path relative to the experiment file, or a "
                            "shipped machine name (see `numasim topo list`)")
                else:
                    ctx.add(f"machine {v!r} is not valid (see the problems in that file)",
                            s.loc)
            else:
                from numasim import shipped

                ctx.add(f"no machine file or shipped machine called {v!r}", s.loc,
                        did_you_mean(v, shipped.names("machines")))
    elif isinstance(v, dict):
        text = yaml.safe_dump(v, sort_keys=False)
        try:
            m = yaml_machine.loads(text, file=ctx.file)
            result = (m, {"name": m.name, "yaml": yaml_machine.dump(m)})
        except NumasimError as e:
            ctx.problems += [ctx.relocate(p, s.loc) for p in e.problems]
    else:
        ctx.add("a machine is a shipped machine name, a machine file, or an inline machine "
                f"(a mapping with nodes); got {v!r}", s.loc)
    if cache_key is not None:
        ctx.machines[cache_key] = result
    return result


# --------------------------------------------------------------------- workload
def _builtin_defaults(kernel: str) -> dict[str, Any]:
    from numasim.workloads.kernels import DEFAULT_SIZE, build_kernel

    sig = inspect.signature(build_kernel)
    out: dict[str, Any] = {"kernel": kernel}
    for name, p in sig.parameters.items():
        if name in ("name", "cpu") or p.kind is p.VAR_KEYWORD:  # KEYLESS: set ones only
            continue
        out[name] = p.default
    out["size"] = DEFAULT_SIZE[kernel]
    return out


def _find_workload_file(spec: str, ctx: _Ctx) -> Path | None:
    for base in (ctx.src.base_dir, Path.cwd()):
        p = base / spec
        if p.is_file():
            return p.resolve()
    from numasim import shipped

    p = shipped.find("workloads", spec)
    return p.resolve() if p is not None else None


def _load_workload_file(spec: str, s: Setting, ctx: _Ctx):
    """(Workload, text, path) of a workload file, or (None, None, None) after problems."""
    from numasim.workloads import schema as wschema
    from numasim.yamlutil import read_text

    if spec in ctx.workload_files:
        return ctx.workload_files[spec]
    out: Any = (None, None, None)
    path = _find_workload_file(spec, ctx)
    if path is None:
        from numasim import shipped
        from numasim.workloads.kernels import BUILTIN

        ctx.add(f"no built-in kernel, workload file or shipped workload called {spec!r}",
                s.loc, did_you_mean(spec, list(BUILTIN) + list(shipped.names("workloads"))))
    else:
        try:
            text = read_text(path)
            out = (wschema.loads(text, file=str(path)), text, path)
        except NumasimError as e:
            ctx.problems += e.problems
            ctx.add(f"workload {spec!r} is not valid (see the problems in that file)", s.loc)
    ctx.workload_files[spec] = out
    return out


def _resolve_workload(st: dict[str, Setting], ctx: _Ctx):
    """(resolved dict, threads, effective workload cpu dict, local paths) or Nones."""
    import yaml

    from numasim.workloads import schema as wschema
    from numasim.workloads.kernels import BUILTIN, build_kernel

    s = st.get("workload")
    if s is None:
        return None, None, None, None
    v = s.value
    opts = {k.split(".", 1)[1]: x for k, x in st.items() if k.startswith("workload.")}
    if isinstance(v, str) and v in BUILTIN:
        res = _builtin_defaults(v)
        ok = True
        for name, x in opts.items():
            try:
                res[name] = P.check_workload_option(name, x.value)
            except ValueError as e:
                ctx.add(str(e), x.loc)
                ok = False
        if not ok:
            return None, None, None, None
        try:
            build_kernel(v, **{k: x for k, x in res.items() if k != "kernel"})
        except NumasimError as e:
            for p in e.problems:
                name = (p.field or "").lstrip("-")
                where = opts[name].loc if name in opts else s.loc
                ctx.add(p.message, where, p.hint)
            return None, None, None, None
        return res, res["threads"], {}, None
    if isinstance(v, str) and v == "":
        ctx.add("the workload is empty", s.loc, "name a built-in kernel such as stream")
        return None, None, None, None
    if isinstance(v, dict) and set(v) == {"file"} or isinstance(v, str):
        spec = v["file"] if isinstance(v, dict) else v
        if not isinstance(spec, str):
            ctx.add(f"workload file must be a path, got {spec!r}", s.loc)
            return None, None, None, None
        wl, text, path = _load_workload_file(spec, s, ctx)
        if wl is None:
            return None, None, None, None
        res = {"name": wl.name, "source": spec, "yaml": text}
        local = {"workload_file": str(path)}
    else:
        text = yaml.safe_dump(v, sort_keys=False)
        try:
            wl = wschema.loads(text, file=ctx.file)
        except NumasimError as e:
            ctx.problems += [ctx.relocate(p, s.loc) for p in e.problems]
            return None, None, None, None
        res = {"name": wl.name, "source": "inline", "yaml": text}
        local = None
    over = {}
    for name, x in opts.items():
        if name not in FILE_WORKLOAD_OVERRIDES:
            ctx.add(f"'{name}' applies to built-in kernels only; this workload is a file or "
                    "an inline workload", x.loc, "a workload file may be given threads, "
                    "placement, cpus and pin; its regions set their own sizes")
            continue
        try:
            over[name] = P.check_workload_option(name, x.value)
        except ValueError as e:
            ctx.add(str(e), x.loc)
    res["overrides"] = over
    threads = over.get("threads", wl.threads)
    return res, threads, dict(wl.cpu), local


# ------------------------------------------------------------------ cross checks
def _allowed_cpus(machine, numactl: list[str], loc: Loc, ctx: _Ctx) -> list[int] | None:
    from numasim.spec import task_cpus, task_options

    try:
        opts = task_options(machine, numactl)
    except NumasimError as e:
        for p in e.problems:
            ctx.add(f"{' '.join(numactl)}: {p.message}", loc, p.hint)
        return None
    return task_cpus(machine, opts)


def _weights(ws: Any, machine, loc: Loc, ctx: _Ctx) -> dict[str, int] | None | bool:
    from numasim.spec import weights_for

    try:
        out = weights_for(machine, ws)
    except NumasimError as e:
        for p in e.problems:
            ctx.add(p.message, loc, p.hint)
        return False
    return None if out is None else {str(n): w for n, w in out.items()}


# ------------------------------------------------------------------------- axes
@dataclass
class _Axis:
    name: str
    canon: str
    values: list[Setting]


def _axes(model_data: dict, ctx: _Ctx) -> tuple[list[tuple[str | None, dict[str, Setting]]],
                                                list[_Axis], list[_Axis]]:
    sweep = model_data.get("sweep") or {}
    if not isinstance(sweep, dict):
        return [], [], []
    cases: list[tuple[str | None, dict[str, Setting]]] = []
    raw_cases = sweep.get("cases") or []
    for i, c in enumerate(raw_cases if isinstance(raw_cases, list) else []):
        if not isinstance(c, dict):
            continue
        label = c.get("label")
        if label is not None and not isinstance(label, str | int | float):
            ctx.add("a case label is text", ("sweep", "cases", i, "label"))
            label = None
        st: dict[str, Setting] = {}
        for k, v in c.items():
            if k == "label":
                continue
            for canon, s in _settings(str(k), v, ("sweep", "cases", i, k), ctx).items():
                st[canon] = s
        cases.append((None if label is None else str(label), st))
    grid: list[_Axis] = []
    zipped: list[_Axis] = []
    for part, out in (("grid", grid), ("zip", zipped)):
        axes = sweep.get(part) or {}
        if not isinstance(axes, dict):
            continue
        for name, values in axes.items():
            if not isinstance(values, list) or not values:
                continue  # the structural check reported it
            canon = P.canonical(str(name))
            if canon is None:
                ctx.add(f"unknown parameter '{name}'", ("sweep", part, name),
                        P.unknown_hint(str(name)))
                continue
            if canon == "cpu":
                ctx.add("sweep a CPU parameter by its own name, e.g. cpu.mlp", ("sweep", part,
                                                                                 name))
                continue
            out.append(_Axis(str(name), canon, [Setting(v, ("sweep", part, name, j))
                                                for j, v in enumerate(values)]))
    if zipped:
        n = len(zipped[0].values)
        for a in zipped[1:]:
            if len(a.values) != n:
                ctx.add(f"zip lists must have the same length: '{zipped[0].name}' has {n} "
                        f"values, '{a.name}' has {len(a.values)}", ("sweep", "zip", a.name),
                        "zip advances its lists together; use grid for every combination")
    # one parameter, one place
    owner: dict[str, str] = {}
    for a in grid:
        owner[a.canon] = "grid"
    for a in zipped:
        if a.canon in owner:
            ctx.add(f"'{a.name}' is swept by both grid and zip", ("sweep", "zip", a.name),
                    "sweep each parameter in one place")
        owner.setdefault(a.canon, "zip")
    for i, (_, st) in enumerate(cases):
        for canon, s in st.items():
            if canon in owner:
                ctx.add(f"'{s.loc[-1]}' is set by case {i} and swept by {owner[canon]}", s.loc,
                        "a parameter is either set per case or swept, not both")
    return cases, grid, zipped


def _case_label(label: str | None, st: dict[str, Setting]) -> str:
    if label is not None:
        return label
    if not st:
        return "base"
    parts = []
    for canon, s in st.items():
        try:
            v = P.check_value(canon, s.value)
        except ValueError:
            v = s.value
        text = P.display(canon, v)
        parts.append(text if canon == "numactl" else f"{s.loc[-1]}={text}")
    return ", ".join(parts)


def _table_value(canon: str, raw: Any, config: dict[str, Any]) -> Any:
    """The value of an axis in the results table: a number when it is one."""
    if canon == "machine":
        return config["machine"]["name"]
    if canon == "workload":
        w = config["workload"]
        return w.get("kernel") or w.get("name")
    if canon in ("engine", "linux", "seed", "quantum"):
        return config[canon]
    if canon == "fast_forward":
        return config.get(canon) or "off"
    if canon == "numactl":
        return P.display("numactl", config["numactl"])
    if canon == "weights":
        return P.display("weights", config["weights"])
    if canon in ("numa_balancing", "thp", "khugepaged"):
        return P.display(canon, config.get(canon))
    head, _, tail = canon.partition(".")
    if head == "workload":
        w = config["workload"]
        v = w.get(tail, w.get("overrides", {}).get(tail))
    elif head == "cpu":
        v = config["cpu"].get(tail)
    else:
        v = raw
    if isinstance(v, bool) or v is None or isinstance(v, list | dict):
        return P.display(canon, v)
    return v


# ------------------------------------------------------------------------ expand
def expand(src: Source) -> Experiment:
    """Check an experiment completely and list its points; raises ConfigError with every
    problem found (structure, values, machines, workloads, combinations)."""
    model, problems = check_structure(src)
    ctx = _Ctx(src)
    ctx.problems += problems
    data = src.doc.data if isinstance(src.doc.data, dict) else None
    if data is None:
        raise_problems(ctx.problems)
        raise AssertionError("unreachable")
    base = _base(data, ctx)
    cases, grid, zipped = _axes(data, ctx)
    m = model if isinstance(model, ExperimentModel) else None
    reps = m.repetitions if m else (data.get("repetitions") if isinstance(
        data.get("repetitions"), int) and data.get("repetitions", 0) >= 1 else 1)
    exp_seed = m.seed if m else 0
    seeds_mode = m.seeds if m else "per-point"

    explicit_seed = any("seed" in st for _, st in cases) or any(
        a.canon == "seed" for a in grid + zipped)
    if explicit_seed and reps > 1:
        ctx.add("repetitions derive seeds; a sweep that sets 'seed' itself runs once per seed",
                ("repetitions",), "remove repetitions or the seed axis")

    for key in ("machine", "workload"):
        swept = any(a.canon == key for a in grid + zipped)
        in_cases = bool(cases) and all(key in st for _, st in cases)
        if key not in base and not swept and not in_cases:
            ctx.add(f"missing required key '{key}'", (), REQUIRED_HINT[key])

    case_list: list[tuple[str | None, dict[str, Setting]] | None] = list(cases) or [None]
    nzip = min((len(a.values) for a in zipped), default=1) if zipped else 1
    _check_point_count(data, m, len(case_list) * math.prod(len(a.values) for a in grid)
                       * nzip, reps, ctx)
    grid_combos = list(itertools.product(*[a.values for a in grid])) if grid else [()]

    axes: list[str] = (["case"] if cases else []) + [a.name for a in grid] + \
        [a.name for a in zipped]
    points: list[Point] = []
    checked: set[tuple] = set()
    idx = 0
    for case in case_list:
        for combo in grid_combos:
            for zi in range(nzip):
                st = dict(base)
                if case is not None:
                    st.update(case[1])
                for a, s in zip(grid, combo, strict=True):
                    st.update({a.canon: s} if a.canon != "workload" else
                              _workload_settings(s.value, s.loc, ctx))
                for a in zipped:
                    s = a.values[zi]
                    st.update({a.canon: s} if a.canon != "workload" else
                              _workload_settings(s.value, s.loc, ctx))
                config, local = _resolve(st, ctx, checked)
                for r in range(reps):
                    if config is None:
                        idx += 1
                        continue
                    cfg = dict(config)
                    if "seed" in st:
                        try:
                            cfg["seed"] = P.check_seed(st["seed"].value)
                        except ValueError as e:
                            _add_once(ctx, checked, str(e), st["seed"].loc)
                            idx += 1
                            continue
                    else:
                        identity = None if seeds_mode == "common" else \
                            {k: v for k, v in cfg.items() if k not in ("seed", "numasim")}
                        cfg["seed"] = derive_seed(exp_seed, identity, r)
                    key = point_key(cfg)
                    if local:
                        cfg["_local"] = local
                    labels: dict[str, Any] = {}
                    if cases:
                        labels["case"] = _case_label(case[0], case[1])  # type: ignore[index]
                    for a, s in zip(grid, combo, strict=True):
                        labels[a.name] = _table_value(a.canon, s.value, cfg)
                    for a in zipped:
                        labels[a.name] = _table_value(a.canon, a.values[zi].value, cfg)
                    points.append(Point(idx, key, cfg, labels, r))
                    idx += 1

    x = None
    if m is not None and m.plot.x is not None:
        if m.plot.x not in axes:
            ctx.add(f"plot.x names '{m.plot.x}', which is not swept", ("plot", "x"),
                    "swept: " + (", ".join(a for a in axes if a != "case") or "nothing"))
        else:
            x = m.plot.x
    elif points:
        numeric = [a.name for a in grid + zipped
                   if all(isinstance(p.labels.get(a.name), int | float)
                          and not isinstance(p.labels.get(a.name), bool) for p in points)]
        x = "threads" if "threads" in numeric else (numeric[0] if numeric else None)
    raise_problems(ctx.problems)
    assert m is not None
    return Experiment(name=m.experiment, description=m.description, file=src.file,
                      text=src.text, quick=src.quick, points=points, axes=axes, x=x,
                      machine_metric=m.plot.machine_metric, latency=m.plot.latency,
                      repetitions=reps,
                      sets=list(src.sets))


def _check_point_count(data: dict, m: Any, combos: int, reps: int, ctx: _Ctx) -> None:
    """Refuse a sweep of more points than ``max_points`` before listing them (a grid of
    10^6 points, or ``repetitions: 1e9``, would otherwise sit expanding for ever)."""
    from numasim.experiments.schema import MAX_POINTS

    limit = m.max_points if m is not None else data.get("max_points", MAX_POINTS)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        limit = MAX_POINTS
    total = combos * reps
    if total > limit:
        where = ("repetitions",) if reps > limit else ("sweep",)
        ctx.add(f"the sweep has {total} points (cases x grid x zip = {combos}, x "
                f"{reps} repetition(s)), more than max_points = {limit}", where,
                "shrink the sweep, or raise the bound: 'max_points: N' in the file or "
                "--set max_points=N")
        raise_problems(ctx.problems)


def _add_once(ctx: _Ctx, checked: set, msg: str, loc: Loc, hint: str | None = None) -> None:
    k = (msg, loc)
    if k not in checked:
        checked.add(k)
        ctx.add(msg, loc, hint)


# a point's settings besides the workload's and the CPU's (a point with one unreadable is
# dropped after its problem is reported)
POINT_SETTINGS = ("engine", "linux", "numactl", "weights", "quantum", "fast_forward",
                  "numa_balancing", "thp", "khugepaged")


def _resolve(st: dict[str, Setting], ctx: _Ctx, checked: set
             ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The resolved config of one point's settings (without the seed), or None."""
    n_before = len(ctx.problems)
    vals: dict[str, Any] = {}
    for canon in POINT_SETTINGS:
        s = st[canon]
        try:
            vals[canon] = P.check_value(canon, s.value)
        except ValueError as e:
            _add_once(ctx, checked, str(e), s.loc)
    cpu_over: dict[str, Any] = {}
    cpu_bad = False
    for canon, s in st.items():
        if canon.startswith("cpu."):
            try:
                cpu_over[canon[4:]] = P.check_cpu_field(canon[4:], s.value)
            except ValueError as e:
                _add_once(ctx, checked, str(e), s.loc)
                cpu_bad = True
    if "machine" not in st:
        return None, None
    machine, mres = _resolve_machine(st["machine"], ctx)
    wres, threads, wl_cpu, local = _resolve_workload(st, ctx)
    if machine is None or wres is None or len(ctx.problems) > n_before:
        return None, None
    # cross checks against this point's machine
    ok = True
    allowed = _allowed_cpus(machine, vals["numactl"], st["numactl"].loc, ctx) \
        if "numactl" in vals else None
    if allowed is None:
        ok = False
    else:
        tloc = st["workload.threads"].loc if "workload.threads" in st else st["workload"].loc
        cpus = wres.get("cpus") or wres.get("overrides", {}).get("cpus")
        if cpus:
            bad = [c for c in cpus if c not in allowed]
            if bad:
                _add_once(ctx, checked, f"CPU {bad[0]} is not one the task may run on on "
                          f"{machine.name}", st.get("workload.cpus", st["workload"]).loc)
                ok = False
        elif threads is not None and threads > len(allowed):
            _add_once(ctx, checked, f"{threads} threads but the task may use only "
                      f"{len(allowed)} CPUs of {machine.name}", tloc,
                      "numasim runs one thread per CPU")
            ok = False
    weights = _weights(vals["weights"], machine, st["weights"].loc, ctx) \
        if "weights" in vals else False
    if weights is False:
        ok = False
    cpu = P.cpu_defaults()
    for k, v in {**wl_cpu, **cpu_over}.items():
        if k in ("llc", "tlb"):
            v = P.check_cpu_field(k, v if not hasattr(v, "__dataclass_fields__")
                                  else v.__dict__)
        cpu[k] = v
    if cpu.get("llc") is not None and not isinstance(cpu["llc"], dict):
        cpu["llc"] = P.check_cpu_field("llc", cpu["llc"])
    try:
        from numasim.machine.params import CpuParams

        CpuParams().with_overrides(**{k: v for k, v in cpu.items() if k not in ("llc", "tlb")})
    except NumasimError as e:
        for p in e.problems:
            name = (p.field or "cpu").split(".")[-1]
            s = st.get(f"cpu.{name}")
            _add_once(ctx, checked, p.message, s.loc if s else ("cpu",), p.hint)
        ok = False
    # a problem met at an earlier point is reported once, so this point's own bad values
    # (a setting it could not read) are counted here, after the cross checks
    if not ok or cpu_bad or len(vals) < len(POINT_SETTINGS):
        return None, None
    config = {
        "numasim": __version__,
        "machine": mres,
        "workload": wres,
        "engine": vals["engine"],
        "linux": vals["linux"],
        "numactl": vals["numactl"],
        "cpu": cpu,
        "weights": weights,
        "quantum": vals["quantum"],
    }
    if vals["fast_forward"] is not None:  # absent when off: the points' keys stay as they were
        config["fast_forward"] = vals["fast_forward"]
    # the kernel's switches only when set: the keys (and so the hashes) of points that do
    # not set them stay what they were
    for key in ("numa_balancing", "thp", "khugepaged"):
        if vals[key] is not None:
            config[key] = vals[key]
    if not _check_spec(config, machine, local, st, ctx, checked):
        return None, None
    return config, local


def _check_spec(config: dict[str, Any], machine, local: dict[str, Any] | None,
                st: dict[str, Setting], ctx: _Ctx, checked: set) -> bool:
    """Build the point's :class:`~numasim.spec.RunSpec` as its worker will, so that what
    only the spec can check (a region's or an mbind phase's policy against this machine)
    is refused now, with every other problem, not when the point runs."""
    from numasim.experiments.point import build_workload
    from numasim.spec import build_spec

    try:
        build_spec(machine, build_workload({**config, "_local": local}),
                   engine=config["engine"], linux=config["linux"], numactl=config["numactl"],
                   cpu=config["cpu"], quantum=config["quantum"], weights=config["weights"],
                   fast_forward=config.get("fast_forward"))
    except NumasimError as e:
        for p in e.problems:
            head = (p.field or "").split(".")[0].split("[")[0]
            s = st.get(head) if head in ("numactl", "weights", "quantum", "linux",
                                         "engine", "fast_forward") else None
            where = s.loc if s else st["workload"].loc
            what = f"{p.file}: {p.message}" if p.file not in (None, "inline", ctx.file) \
                else p.message
            if p.field and s is None:
                what = f"{what} (field '{p.field}' of the workload, on {machine.name})"
            _add_once(ctx, checked, what, where, p.hint)
        return False
    return True


def load_experiment(path: str | os.PathLike, *, quick: bool = False,
                    sets: list[str] | None = None):
    """Read, check and expand an experiment file; raises ConfigError with every problem."""
    src = read_source(path, quick=quick, sets=sets)
    return expand(src)


def validate_file(path: str | os.PathLike) -> list[Problem]:
    """Every problem of an experiment file, also under ``--quick`` (empty: the file is good).

    Never raises: this is what ``numasim validate`` calls.
    """
    out: list[Problem] = []
    seen: set[tuple] = set()
    for quick in (False, True):
        try:
            src = read_source(path, quick=quick)
            if quick and isinstance(src.doc.data, dict) and not src.doc.data.get("quick"):
                continue
            expand(src)
        except NumasimError as e:
            for p in e.problems:
                k = (p.file, p.line, p.field, p.message)
                if k not in seen:
                    seen.add(k)
                    out.append(p)
    return sort_problems(out)
