"""``numasim validate``: tell what kind of YAML a file is and list every problem in it."""

from __future__ import annotations

from pathlib import Path

from numasim.errors import NumasimError, Problem


def yaml_kind(path: Path) -> str:
    """'machine', 'workload' or 'experiment', from the file's top-level keys."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return "machine"
    except UnicodeDecodeError:
        return "machine"
    if isinstance(data, dict):
        if "sweep" in data or "experiment" in data:
            return "experiment"
        if "threads" in data or "kernel" in data and "nodes" not in data or "phases" in data:
            return "workload"
    return "machine"


def validate_path(spec: str) -> tuple[list[Problem], str]:
    path = Path(spec)
    if not path.exists():
        return [Problem("no such file", file=spec)], "missing"
    kind = yaml_kind(path) if path.suffix in (".yaml", ".yml") else "machine"
    try:
        if kind == "machine":
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
            from numasim.experiments.schema import validate_file
        return validate_file(path), kind
    except NumasimError as e:
        return e.problems, kind
