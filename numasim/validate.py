"""``numasim validate``: tell what kind of YAML a file is and list every problem in it."""

from __future__ import annotations

import re
from pathlib import Path

from numasim.errors import NumasimError, Problem

_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:", re.M)


def _kind_of_keys(keys: set[str]) -> str | None:
    if "sweep" in keys or "experiment" in keys:
        return "experiment"
    if "threads" in keys or ("kernel" in keys and "nodes" not in keys) or "phases" in keys:
        return "workload"
    if "nodes" in keys:
        return "machine"
    return None


def yaml_kind(path: Path) -> str:
    """'machine', 'workload' or 'experiment', from the file's top-level keys; 'YAML' when a
    file that is not valid YAML names none of them (its problem is then the syntax)."""
    from numasim.yamlutil import parse_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "YAML"
    try:
        data = parse_yaml(text, file=str(path)).data
    except NumasimError:  # not YAML (or hostile): judge by the keys written at column 0
        return _kind_of_keys(set(_TOP_KEY.findall(text))) or "YAML"
    if isinstance(data, dict):
        return _kind_of_keys({str(k) for k in data}) or "machine"
    return "machine"


def validate_path(spec: str) -> tuple[list[Problem], str]:
    """Every problem of one file and the kind of file it was taken for."""
    path = Path(spec)
    if not path.exists():
        return [Problem("no such file", file=spec)], "missing"
    kind = yaml_kind(path) if path.suffix in (".yaml", ".yml") else "machine"
    try:
        if kind in ("machine", "YAML"):
            if path.suffix in (".yaml", ".yml"):
                from numasim.topology.loaders import yaml_machine

                problems = yaml_machine.validate_file(path)
                return problems, kind
            from numasim.topology.loaders import load_machine

            load_machine(path)
            return [], kind
        if kind == "workload":
            from numasim.workloads.schema import validate_file
        else:
            from numasim.experiments.expand import validate_file
        return validate_file(path), kind
    except NumasimError as e:
        return e.problems, kind
