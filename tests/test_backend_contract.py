"""Contract: the numba allocator core and its plain-Python twin implement the same
:class:`numasim.mm.backend.AllocatorBackend` entry points, with the same parameters."""

from __future__ import annotations

import inspect

import pytest

from numasim.errors import ConfigError
from numasim.mm import alloc_core, alloc_ref
from numasim.mm.backend import BACKENDS, ENTRY_POINTS, AllocatorBackend, backend_module
from numasim.mm.kernel import Kernel
from numasim.topology.loaders import load_machine


def _params(fn) -> list[str]:
    return list(inspect.signature(getattr(fn, "py_func", fn)).parameters)


def test_entry_points_are_the_protocol():
    members = {n for n, v in vars(AllocatorBackend).items()
               if callable(v) and not n.startswith("_")}
    assert members == set(ENTRY_POINTS)


@pytest.mark.parametrize("module", [alloc_core, alloc_ref], ids=["numba", "python"])
def test_backend_implements_the_protocol(module):
    assert isinstance(module, AllocatorBackend)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_core_and_twin_take_the_same_parameters(name):
    core, twin = getattr(alloc_core, name), getattr(alloc_ref, name)
    assert hasattr(core, "py_func"), f"alloc_core.{name} is not a numba function"
    assert _params(core) == _params(twin)


@pytest.mark.parametrize("name", BACKENDS)
def test_kernel_uses_the_backend_it_is_given(name):
    k = Kernel(load_machine("oracle-2node"), backend=name)
    assert k.core is backend_module(name)
    assert isinstance(k.core, AllocatorBackend)


def test_unknown_backend_is_refused():
    class Half:
        def free_page(self, *args):
            return None

    assert not isinstance(Half(), AllocatorBackend)
    with pytest.raises(ConfigError, match="unknown allocator backend 'rust'"):
        Kernel(load_machine("oracle-2node"), backend="rust")


def test_kern_bundle_is_the_state_in_core_arrays_order():
    """``kern`` (KernelState.core_args()) holds the state arrays in CORE_ARRAYS order, and
    numba sees it as exactly the tuple type the core was compiled for (jit.ARG_TYPES): a
    reordered or retyped array would otherwise reach the wrong parameter at run time or
    fail to dispatch."""
    from numba import typeof

    from numasim.jit import ARG_TYPES
    from numasim.mm import state as S

    ks = Kernel(load_machine("oracle-2node")).ks
    kern = ks.core_args()
    assert len(kern) == len(S.CORE_ARRAYS)
    for i, name in enumerate(S.CORE_ARRAYS):
        assert kern[i] is getattr(ks, name), name
        assert getattr(S, "K_" + name.upper()) == i
    assert typeof(kern) == ARG_TYPES["kern"]


@pytest.mark.parametrize("name", ["handle_mm_fault_range", "alloc_pages_mpol",
                                  "alloc_pages_nid", "pgtable_alloc"])
def test_entry_points_take_the_bundle(name):
    """The state arrays travel as one ``kern`` argument, first, in the core and the twin."""
    assert _params(getattr(alloc_core, name))[0] == "kern"
    assert _params(getattr(alloc_ref, name))[0] == "kern"
