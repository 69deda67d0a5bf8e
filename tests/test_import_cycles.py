"""Contract: numasim's modules import each other in one direction only.

Every ``import``/``from ... import`` in numasim/ (at module level and inside functions, which
run later but still make a circle a reader has to untangle) is an edge; imports under
``if TYPE_CHECKING:`` are not (they never run).  A strongly connected group of more than one
module is a circle, and the test names its members and their edges.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in sorted((root / package).rglob("*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (p, is_pkg)
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                skip.update(id(n) for n in ast.walk(sub))
    return skip


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in its code)."""
    mods = _modules(root, package)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, (path, is_pkg) in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_nodes(tree)
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                deps.update(r for a in node.names if (r := resolve(a.name)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    full = f"{target}.{a.name}"
                    r = full if full in mods else resolve(target)
                    if r:
                        deps.add(r)
        deps.discard(mod)
        graph[mod] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(old)
    return out


def test_numasim_has_no_import_circles():
    graph = import_graph(ROOT, "numasim")
    assert len(graph) > 50
    found = circles(graph)
    report = "\n".join(
        ", ".join(g) + "\n" + "\n".join(f"    {m} -> {sorted(graph[m] & set(g))}" for m in g)
        for g in found)
    assert not found, f"import circles in numasim/:\n{report}"


def test_graph_sees_function_level_imports():
    """The walk finds imports inside functions (the ones circles hide in)."""
    graph = import_graph(ROOT, "numasim")
    assert "numasim.machine.fast" in graph["numasim.machine.engine"]  # inside engine_class
    assert "numasim.wiring" in graph["numasim.api"]


def test_detector_finds_a_circle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from pkg import a\n")
    (pkg / "d.py").write_text("import pkg.c\n")
    graph = import_graph(tmp_path, "pkg")
    assert circles(graph) == [["pkg.a", "pkg.sub.b"]]
    assert graph["pkg.c"] == set() and graph["pkg.d"] == {"pkg.c"}


# what each layer may not import: the hardware knows no kernel, the kernel no workload, the
# engines no workload beyond the access streams they consume (workloads.gen), and nothing
# below the front doors knows the front doors
FORBIDDEN = {
    "numasim.topology": ("numasim.mm", "numasim.machine", "numasim.workloads",
                         "numasim.experiments", "numasim.report", "numasim.cli",
                         "numasim.spec", "numasim.wiring", "numasim.api"),
    "numasim.mm": ("numasim.machine", "numasim.workloads", "numasim.experiments",
                   "numasim.report", "numasim.cli", "numasim.spec", "numasim.wiring",
                   "numasim.api"),
    "numasim.workloads": ("numasim.machine", "numasim.mm", "numasim.experiments",
                          "numasim.cli", "numasim.spec", "numasim.wiring", "numasim.api"),
    "numasim.machine": ("numasim.experiments", "numasim.cli", "numasim.spec",
                        "numasim.wiring", "numasim.api"),
}
MACHINE_MAY_READ = ("numasim.workloads.gen",)
# topology.show prints the kernel's view of the machine (its boot log, zones, memory tiers) as
# Linux tools do: a view over the kernel, allowed to ask it
VIEWS_OF_THE_KERNEL = ("numasim.topology.show",)


def _within(mod: str, pkg: str) -> bool:
    return mod == pkg or mod.startswith(pkg + ".")


def test_data_flows_one_way():
    graph = import_graph(ROOT, "numasim")
    bad = []
    for mod, deps in graph.items():
        for layer, banned in FORBIDDEN.items():
            if _within(mod, layer):
                bad += [(mod, d) for d in deps if any(_within(d, b) for b in banned)
                        and not (mod in VIEWS_OF_THE_KERNEL and _within(d, "numasim.mm"))]
        if _within(mod, "numasim.machine"):
            bad += [(mod, d) for d in deps
                    if _within(d, "numasim.workloads") and d not in MACHINE_MAY_READ]
    assert not bad, "imports against the layering:\n" + "\n".join(f"  {a} -> {b}"
                                                                for a, b in sorted(bad))
