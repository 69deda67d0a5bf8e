"""Function shape: no function in numasim/ over 200 lines or 16 parameters (issue 9).

A long function with many positional parameters is where a change must be made in several
places at once and where a newcomer cannot follow one request or one fault from start to end.
The bar is measured on the source (``ast``), nested functions included; a parameter is any
positional, keyword-only or ``*``/``**`` parameter (``self`` counts, as it would in a call).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "numasim"  # the source, not an installed copy
MAX_LINES = 200
MAX_PARAMS = 16

# No function is excepted any more: the last ones (the allocator core's entry points, which
# took the kernel's state arrays one by one) were reshaped in issue 9.


def _n_params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = fn.args
    return (len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
            + (a.vararg is not None) + (a.kwarg is not None))


@functools.cache
def function_shapes() -> dict[str, tuple[int, int]]:
    """``"relative/path.py:name"`` -> (lines, parameters) for every function in numasim/."""
    out: dict[str, tuple[int, int]] = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                key = f"{rel}:{node.name}"
                shape = (node.end_lineno - node.lineno + 1, _n_params(node))
                old = out.get(key, (0, 0))
                out[key] = (max(old[0], shape[0]), max(old[1], shape[1]))
    return out


def test_no_function_over_the_bar():
    shapes = function_shapes()
    over = {k: v for k, v in shapes.items()
            if v[0] > MAX_LINES or v[1] > MAX_PARAMS}
    assert not over, \
        f"over {MAX_LINES} lines or {MAX_PARAMS} parameters (lines, params): {over}"


def test_the_scan_sees_functions():
    """The scan finds the engines' and the kernel's functions (a broken walk would pass
    everything)."""
    shapes = function_shapes()
    assert "machine/exact.py:_cpu" in shapes
    assert shapes["mm/alloc_core.py:handle_mm_fault_range"][0] > 100  # the long fault loop
